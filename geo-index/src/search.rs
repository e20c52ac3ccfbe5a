//! The search loops: walk rings outward from the query's cell at one level, or scan every point.

use crate::collect::Collector;
use crate::level::Bucket;
use crate::level::Level;
use crate::prefilter::Prefilter;
use crate::rings::Rings;
use crate::store::{Point, Slots};
use crate::{Cursor, Hit, LatLng};
use h3o::CellIndex;

/// What a search looks for, apart from how many (that is the collector's business).
pub(crate) struct Query<F> {
    pub(crate) center: LatLng,
    pub(crate) after: Option<Cursor>,
    pub(crate) filter: F,
}

impl<F: Fn(i64) -> bool> Query<F> {
    /// Offers `point` to `out` if it is within the collector's bound, after the cursor and
    /// accepted by the filter (checked last: it is the caller's code and may be the dearest).
    #[inline]
    fn consider(&self, pre: &mut Prefilter, point: &Point, out: &mut impl Collector) {
        if pre.surely_beyond(point.at, out.bound()) {
            return;
        }
        let distance_m = pre.distance_m(point.at);
        if distance_m > out.bound() {
            return;
        }
        let hit = Hit {
            id: point.id,
            distance_m,
        };
        if self.after.is_some_and(|cursor| !cursor.is_before(&hit)) {
            return;
        }
        if (self.filter)(point.id) {
            out.offer(hit);
        }
    }

    /// Brute force: every point. Exact by definition; the reference the index is tested against.
    pub(crate) fn scan(&self, store: &Slots, out: &mut impl Collector) {
        let mut pre = Prefilter::new(self.center);
        for point in store.points() {
            self.consider(&mut pre, point, out);
        }
    }

    /// Looks at the points filed under one cell: none if their box is beyond the collector's
    /// bound, otherwise from the query's latitude outward (the slots are sorted by latitude),
    /// north then south, stopping each way once the latitude difference alone puts the rest
    /// beyond the bound.
    fn scan_cell(
        &self,
        bucket: &Bucket,
        store: &Slots,
        pre: &mut Prefilter,
        out: &mut impl Collector,
    ) {
        if pre.box_surely_beyond(&bucket.bbox, out.bound()) {
            return;
        }
        let slots = bucket.slots.as_slice();
        let lat = self.center.lat();
        // Guess where the centre's latitude falls from the box (points are spread fairly evenly
        // over a cell), then gallop: a few probes near the guess, on memory close together,
        // instead of a binary search's scattered cache misses. Any split would be correct.
        let (south, north) = bucket.bbox.lat_range();
        let share = if north > south {
            ((lat - south) / (north - south)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let guess = (share * slots.len() as f64) as usize;
        let split = first_at_least(slots, guess, |s| store.get(s).at.lat() < lat);
        for &slot in &slots[split..] {
            let point = store.get(slot);
            if point.at.lat() - lat > pre.lat_reach_deg(out.bound()) {
                break;
            }
            self.consider(pre, &point, out);
        }
        for &slot in slots[..split].iter().rev() {
            let point = store.get(slot);
            if lat - point.at.lat() > pre.lat_reach_deg(out.bound()) {
                break;
            }
            self.consider(pre, &point, out);
        }
    }

    /// Visits rings 0, 1, 2, ... around `origin`, the query's cell at `level`, until the ring
    /// lower bound exceeds the collector's bound (nothing unvisited can qualify): exact.
    ///
    /// Returns `false`, with `out` holding partial results, if it gave up after more than `budget`
    /// cells (the caller then scans instead).
    pub(crate) fn walk_rings(
        &self,
        level: &Level,
        origin: CellIndex,
        store: &Slots,
        out: &mut impl Collector,
        budget: Option<usize>,
    ) -> bool {
        let mut rings = Rings::new(origin);
        let mut ring = Vec::new();
        let mut buckets = Vec::new();
        let mut visited = 0usize;
        let mut pre = Prefilter::new(self.center);
        loop {
            if level.ring_lower_bound_m(rings.next_k()) > out.bound() {
                return true;
            }
            rings.fill_next(&mut ring);
            if ring.is_empty() {
                return true; // the whole globe has been visited
            }
            visited += ring.len();
            if budget.is_some_and(|budget| visited > budget) {
                return false;
            }
            // All lookups first: independent probes whose cache misses the CPU can overlap.
            buckets.clear();
            buckets.extend(ring.iter().filter_map(|&cell| level.bucket(cell)));
            for bucket in &buckets {
                self.scan_cell(bucket, store, &mut pre, out);
            }
        }
    }
}

/// The first index `i` in `slots` such that `below(slots[i])` is false (`below` must be true on a
/// prefix and false after it), found by galloping outward from `guess`: O(log distance) probes.
fn first_at_least(slots: &[u32], guess: usize, below: impl Fn(u32) -> bool) -> usize {
    let n = slots.len();
    let g = guess.min(n);
    let (lo, hi) = if g < n && below(slots[g]) {
        // The answer is after `g`: step forward 1, 2, 4, ... until an element is not below.
        let (mut lo, mut step) = (g + 1, 1);
        loop {
            let probe = lo + step - 1;
            if probe >= n {
                break (lo, n);
            }
            if !below(slots[probe]) {
                break (lo, probe);
            }
            lo = probe + 1;
            step *= 2;
        }
    } else {
        // The answer is at or before `g`: step backward until an element is below.
        let (mut hi, mut step) = (g, 1);
        loop {
            if hi < step {
                break (0, hi);
            }
            let probe = hi - step;
            if below(slots[probe]) {
                break (probe + 1, hi);
            }
            hi = probe;
            step *= 2;
        }
    };
    lo + slots[lo..hi].partition_point(|&s| below(s))
}

#[cfg(test)]
mod tests {
    use super::first_at_least;

    #[test]
    fn galloping_from_any_guess_finds_the_same_split_as_a_binary_search() {
        for n in 0..40u32 {
            let slots: Vec<u32> = (0..n).map(|i| i * 2).collect();
            for key in 0..(2 * n + 2) {
                let expected = slots.partition_point(|&s| s < key);
                for guess in 0..(n as usize + 3) {
                    assert_eq!(
                        first_at_least(&slots, guess, |s| s < key),
                        expected,
                        "{n} {key} {guess}"
                    );
                }
            }
        }
    }
}
