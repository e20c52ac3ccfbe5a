//! Where a search puts the hits it accepts: the `limit` best so far, or all of them.

use crate::Hit;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Receives accepted hits and tells the search how far out it still needs to look.
pub(crate) trait Collector {
    /// Hits farther than this cannot be kept; a search may stop once nothing unvisited can be
    /// this close. Hits exactly at the bound may still be kept (ties are broken by id).
    fn bound(&self) -> f64;
    /// Takes a hit that is within the radius, after the cursor and passes the filter.
    fn offer(&mut self, hit: Hit);
    /// Forgets everything (when a search restarts with another method).
    fn clear(&mut self);
    /// The kept hits, sorted by `(distance_m, id)`.
    fn into_sorted(self) -> Vec<Hit>;
}

/// A hit ordered by `(distance_m, id)` for the heap.
struct Ranked(Hit);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank_cmp(&other.0)
    }
}

/// Keeps the `limit` smallest hits in a max-heap; its bound shrinks to the worst kept hit once
/// full, which is what lets the ring walk stop early.
pub(crate) struct TopK {
    limit: usize,
    radius_m: f64,
    heap: BinaryHeap<Ranked>,
}

impl TopK {
    pub(crate) fn new(limit: usize, radius_m: f64) -> Self {
        TopK {
            limit,
            radius_m,
            heap: BinaryHeap::with_capacity(limit.min(1024) + 1),
        }
    }
}

impl Collector for TopK {
    fn bound(&self) -> f64 {
        match self.heap.peek() {
            Some(worst) if self.heap.len() >= self.limit => worst.0.distance_m,
            _ => self.radius_m,
        }
    }

    fn offer(&mut self, hit: Hit) {
        if self.heap.len() < self.limit {
            self.heap.push(Ranked(hit));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if hit.rank_cmp(&worst.0) == Ordering::Less {
                // Replacing through `PeekMut` re-sifts the heap when `worst` is dropped.
                *worst = Ranked(hit);
            }
        }
    }

    fn clear(&mut self) {
        self.heap.clear();
    }

    fn into_sorted(self) -> Vec<Hit> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0)
            .collect()
    }
}

/// Keeps every hit within the radius.
pub(crate) struct All {
    radius_m: f64,
    hits: Vec<Hit>,
}

impl All {
    pub(crate) fn new(radius_m: f64) -> Self {
        All {
            radius_m,
            hits: Vec::new(),
        }
    }
}

impl Collector for All {
    fn bound(&self) -> f64 {
        self.radius_m
    }

    fn offer(&mut self, hit: Hit) {
        self.hits.push(hit);
    }

    fn clear(&mut self) {
        self.hits.clear();
    }

    fn into_sorted(mut self) -> Vec<Hit> {
        self.hits.sort_unstable_by(Hit::rank_cmp);
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: i64, d: f64) -> Hit {
        Hit { id, distance_m: d }
    }

    #[test]
    fn top_k_keeps_the_k_smallest_and_its_bound_shrinks_once_full() {
        let mut top = TopK::new(2, 100.0);
        assert_eq!(top.bound(), 100.0);
        for h in [
            hit(1, 50.0),
            hit(2, 10.0),
            hit(3, 30.0),
            hit(4, 30.0),
            hit(0, 30.0),
        ] {
            top.offer(h);
        }
        assert_eq!(top.bound(), 30.0);
        assert_eq!(top.into_sorted(), vec![hit(2, 10.0), hit(0, 30.0)]);
    }

    #[test]
    fn all_returns_every_hit_sorted_by_distance_then_id() {
        let mut all = All::new(10.0);
        for h in [hit(3, 5.0), hit(1, 5.0), hit(2, 1.0)] {
            all.offer(h);
        }
        assert_eq!(
            all.into_sorted(),
            vec![hit(2, 1.0), hit(1, 5.0), hit(3, 5.0)]
        );
    }
}
