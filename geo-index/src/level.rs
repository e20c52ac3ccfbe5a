//! One H3 resolution's view of the points: cell -> the slots of the points filed under it, kept
//! sorted by latitude so a search can scan a cell outward from the query's latitude and stop
//! early, plus the box around those points so a search can skip the whole cell.

use crate::hash::MixState;
use crate::prefilter::LatLngBox;
use crate::store::Point;
use crate::LatLng;
use h3o::{CellIndex, Resolution};
use hashbrown::HashMap;

/// Coarse level: cells of ~5.2 km² (minimum edge 988 m). Used where points are sparse or the
/// radius is large, and to estimate local density. Points are filed under the coarse parent of
/// their fine cell. See the crate README for the measurements.
pub const COARSE_RESOLUTION: Resolution = Resolution::Seven;
/// Fine level: cells of ~0.1 km² (minimum edge 141 m). Used where points are dense, so that the
/// few cells around the query hold the nearest points and not thousands of others.
pub const FINE_RESOLUTION: Resolution = Resolution::Nine;

/// The points bucketed by H3 cell at one resolution.
///
/// A point is filed under the ancestor, at this resolution, of its cell at the index's fine
/// resolution (for the fine level, that cell itself). Ancestors stick out of their own outline by
/// at most `slack_m`, which the ring lower bound takes into account.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    res: Resolution,
    slack_m: f64,
    cells: HashMap<u64, Bucket, MixState>,
}

/// The points filed under one non-empty cell.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    /// Their slots, sorted by latitude (ties in any order).
    pub(crate) slots: Vec<u32>,
    /// A box containing all of them (it may grow stale, larger than needed, after removals).
    pub(crate) bbox: LatLngBox,
}

impl Bucket {
    fn new(at: LatLng) -> Self {
        Bucket {
            slots: Vec::new(),
            bbox: LatLngBox::around(at),
        }
    }
}

fn lat(points: &[Point], slot: u32) -> f64 {
    points[slot as usize].at.lat()
}

impl Level {
    /// A level at `res` whose points may lie up to `slack_m` outside the cell they are filed under.
    pub(crate) fn new(res: Resolution, slack_m: f64) -> Self {
        Level {
            res,
            slack_m,
            cells: HashMap::default(),
        }
    }

    pub(crate) fn res(&self) -> Resolution {
        self.res
    }

    /// How far a point may lie outside the cell it is filed under, in metres.
    pub(crate) fn slack_m(&self) -> f64 {
        self.slack_m
    }

    /// The cell a search centred on `at` starts from: the exact cell holding it.
    pub(crate) fn origin_of(&self, at: LatLng) -> CellIndex {
        at.cell(self.res)
    }

    /// The cell a point whose fine cell is `fine` is filed under.
    pub(crate) fn bucket_of(&self, fine: CellIndex) -> CellIndex {
        // The index only builds levels at or above the fine resolution, where a parent exists.
        fine.parent(self.res).unwrap_or(fine)
    }

    /// No point filed `k` rings from the search's origin cell is closer than this, in metres.
    pub(crate) fn ring_lower_bound_m(&self, k: u32) -> f64 {
        crate::rings::ring_lower_bound_m(self.res, self.slack_m, k)
    }

    /// The points filed under `cell`, if any.
    pub(crate) fn bucket(&self, cell: CellIndex) -> Option<&Bucket> {
        self.cells.get(&u64::from(cell))
    }

    /// How many points are filed under `cell`.
    pub(crate) fn count(&self, cell: CellIndex) -> usize {
        self.bucket(cell).map_or(0, |b| b.slots.len())
    }

    /// How many cells hold at least one point.
    pub(crate) fn occupied_cells(&self) -> usize {
        self.cells.len()
    }

    /// Files `slot` (whose point is already stored in `points`) under `cell`, in latitude order.
    pub(crate) fn add(&mut self, cell: CellIndex, slot: u32, points: &[Point]) {
        let point = points[slot as usize].at;
        let bucket = self
            .cells
            .entry(u64::from(cell))
            .or_insert_with(|| Bucket::new(point));
        bucket.bbox.grow(point);
        let slots = &mut bucket.slots;
        let at = point.lat();
        // Appending is the common case in a bulk build, where points arrive in latitude order.
        if slots.last().is_none_or(|&last| lat(points, last) <= at) {
            slots.push(slot);
        } else {
            let i = slots.partition_point(|&s| lat(points, s) <= at);
            slots.insert(i, slot);
        }
    }

    /// Bulk filing into an empty level: slot `i` holds `points[i]`, whose fine cell is
    /// `fines[i]`, and slots are in (fine cell, latitude) order. So every bucket's points form one
    /// run of slots (H3 numbers the descendants of a cell contiguously): one map insertion per run
    /// instead of per point. Fine buckets come out sorted; coarse ones are sorted afterwards.
    pub(crate) fn file_sorted(&mut self, fines: &[CellIndex], points: &[Point]) {
        let res = self.res;
        let bucket_of = |fine: CellIndex| fine.parent(res).unwrap_or(fine);
        let mut start = 0;
        for run in fines.chunk_by(|a, b| bucket_of(*a) == bucket_of(*b)) {
            let slots = start..start + run.len();
            start = slots.end;
            let bucket = self
                .cells
                .entry(u64::from(bucket_of(run[0])))
                .or_insert_with(|| Bucket::new(points[slots.start].at));
            bucket.slots.reserve_exact(run.len());
            for slot in slots {
                bucket.bbox.grow(points[slot].at);
                bucket.slots.push(slot as u32);
            }
        }
        self.sort_lists(points);
    }

    /// Restores the latitude order of every list.
    fn sort_lists(&mut self, points: &[Point]) {
        for bucket in self.cells.values_mut() {
            let slots = &mut bucket.slots;
            if !slots.is_sorted_by(|&a, &b| lat(points, a) <= lat(points, b)) {
                // Stable sort: it merges the already sorted runs a bulk load leaves (one per fine
                // cell) instead of sorting from scratch.
                slots.sort_by(|&a, &b| lat(points, a).total_cmp(&lat(points, b)));
            }
        }
    }

    pub(crate) fn remove(&mut self, cell: CellIndex, slot: u32) {
        let key = u64::from(cell);
        if let Some(bucket) = self.cells.get_mut(&key) {
            if let Some(i) = bucket.slots.iter().position(|&s| s == slot) {
                bucket.slots.remove(i);
            }
            if bucket.slots.is_empty() {
                self.cells.remove(&key);
            }
        }
    }

    /// Renames `from` to `to` in `cell`'s list, after the slot array moved that point (its
    /// coordinates, hence its place in the latitude order, are unchanged).
    pub(crate) fn relabel(&mut self, cell: CellIndex, from: u32, to: u32) {
        if let Some(s) = self
            .cells
            .get_mut(&u64::from(cell))
            .and_then(|bucket| bucket.slots.iter_mut().find(|s| **s == from))
        {
            *s = to;
        }
    }

    /// Trims every list to its length (after a bulk build).
    pub(crate) fn shrink_to_fit(&mut self) {
        for bucket in self.cells.values_mut() {
            bucket.slots.shrink_to_fit();
        }
        self.cells.shrink_to_fit();
    }

    /// Heap bytes held (allocated capacity, not just what is in use).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.cells.allocation_size()
            + self
                .cells
                .values()
                .map(|b| b.slots.capacity() * std::mem::size_of::<u32>())
                .sum::<usize>()
    }

    /// Whether every list is in latitude order and inside its box (for tests).
    #[cfg(test)]
    pub(crate) fn is_consistent(&self, points: &[Point]) -> bool {
        self.cells.values().all(|b| {
            b.slots
                .is_sorted_by(|&x, &y| lat(points, x) <= lat(points, y))
                && b.slots.iter().all(|&s| {
                    let mut grown = b.bbox;
                    grown.grow(points[s as usize].at);
                    grown == b.bbox
                })
        })
    }
}
