//! One H3 resolution's view of the points: cell -> slots of the points inside it, kept sorted by
//! latitude so a search can scan a cell outward from the query's latitude and stop early.

use crate::hash::MixState;
use crate::store::Point;
use crate::LatLng;
use h3o::{CellIndex, Resolution};
use hashbrown::HashMap;

/// The points bucketed by H3 cell at one resolution.
///
/// A point is filed under the ancestor, at this resolution, of its cell at the index's fine
/// resolution (for the fine level, that cell itself). Ancestors stick out of their own outline by
/// at most `slack_m`, which the ring lower bound takes into account.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    res: Resolution,
    slack_m: f64,
    /// Slots of the points in each non-empty cell, sorted by latitude (ties in any order).
    cells: HashMap<u64, Vec<u32>, MixState>,
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

    /// Slots of the points in `cell`, sorted by latitude (empty if none).
    pub(crate) fn slots(&self, cell: CellIndex) -> &[u32] {
        self.cells.get(&u64::from(cell)).map_or(&[], Vec::as_slice)
    }

    /// How many cells hold at least one point.
    pub(crate) fn occupied_cells(&self) -> usize {
        self.cells.len()
    }

    /// Files `slot` (whose point is already stored in `points`) under `cell`, in latitude order.
    pub(crate) fn add(&mut self, cell: CellIndex, slot: u32, points: &[Point]) {
        let slots = self.cells.entry(u64::from(cell)).or_default();
        let at = lat(points, slot);
        // Appending is the common case in a bulk build, where points arrive in latitude order.
        if slots.last().is_none_or(|&last| lat(points, last) <= at) {
            slots.push(slot);
        } else {
            let i = slots.partition_point(|&s| lat(points, s) <= at);
            slots.insert(i, slot);
        }
    }

    /// Files `slot` under `cell` at the end of its list, leaving the list unsorted until
    /// [`Level::sort_lists`] (bulk loads: one sort per cell instead of one insertion per point).
    pub(crate) fn push_unsorted(&mut self, cell: CellIndex, slot: u32) {
        self.cells.entry(u64::from(cell)).or_default().push(slot);
    }

    /// Restores the latitude order of every list after [`Level::push_unsorted`].
    pub(crate) fn sort_lists(&mut self, points: &[Point]) {
        for slots in self.cells.values_mut() {
            if !slots.is_sorted_by(|&a, &b| lat(points, a) <= lat(points, b)) {
                slots.sort_unstable_by(|&a, &b| lat(points, a).total_cmp(&lat(points, b)));
            }
        }
    }

    pub(crate) fn remove(&mut self, cell: CellIndex, slot: u32) {
        let key = u64::from(cell);
        if let Some(slots) = self.cells.get_mut(&key) {
            if let Some(i) = slots.iter().position(|&s| s == slot) {
                slots.remove(i);
            }
            if slots.is_empty() {
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
            .and_then(|slots| slots.iter_mut().find(|s| **s == from))
        {
            *s = to;
        }
    }

    /// Trims every list to its length (after a bulk build).
    pub(crate) fn shrink_to_fit(&mut self) {
        for slots in self.cells.values_mut() {
            slots.shrink_to_fit();
        }
        self.cells.shrink_to_fit();
    }

    /// Heap bytes held (allocated capacity, not just what is in use).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.cells.allocation_size()
            + self
                .cells
                .values()
                .map(|v| v.capacity() * std::mem::size_of::<u32>())
                .sum::<usize>()
    }

    /// Whether every list is in latitude order (for tests).
    #[cfg(test)]
    pub(crate) fn is_sorted(&self, points: &[Point]) -> bool {
        self.cells
            .values()
            .all(|slots| slots.is_sorted_by(|&a, &b| lat(points, a) <= lat(points, b)))
    }
}
