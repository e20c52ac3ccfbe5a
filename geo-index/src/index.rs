//! [`GeoIndex`]: the public index, keeping the point store and both cell levels in step.

use crate::bulk;
use crate::collect::{All, Collector, TopK};
use crate::level::Level;
use crate::plan::{choose, Ask, Plan, Strategy};
use crate::rings::PARENT_SLACK_M;
use crate::search::Query;
use crate::store::{Point, Pushed, Slots};
use crate::{Cursor, GeoError, Hit, LatLng};

pub use crate::level::{COARSE_RESOLUTION, FINE_RESOLUTION};

/// An exact in-memory index of `(id, lat, lng)` points answering "what is near here".
///
/// Points are bucketed by H3 cell at two resolutions; a search walks rings of cells outward from
/// the query and stops once no unvisited cell can hold a qualifying point, so results equal a
/// brute-force haversine scan, but cost about what is near the query rather than the whole set.
/// Memory is about 57 bytes per point after a bulk build (see the crate README).
#[derive(Debug, Clone)]
pub struct GeoIndex {
    slots: Slots,
    /// `[coarse, fine]`.
    levels: [Level; 2],
}

impl Default for GeoIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl GeoIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty index with room for `n` points before it reallocates.
    pub fn with_capacity(n: usize) -> Self {
        GeoIndex {
            slots: Slots::with_capacity(n),
            levels: [
                Level::new(COARSE_RESOLUTION, PARENT_SLACK_M),
                Level::new(FINE_RESOLUTION, 0.0),
            ],
        }
    }

    /// Builds an index from `points` in one go (a later duplicate id replaces an earlier one), then
    /// trims spare capacity.
    ///
    /// Faster and smaller than inserting one by one: points are stored in fine-cell order, so the
    /// points of one cell sit together in memory and a search touches few cache lines. From 20,000
    /// points on, the H3 projections and sorting run on up to 4 scoped threads (no pool, nothing
    /// left running); call it from a blocking context, not an async task.
    pub fn from_points<I>(points: I) -> Result<Self, GeoError>
    where
        I: IntoIterator<Item = (i64, LatLng)>,
    {
        let points: Vec<(i64, LatLng)> = points.into_iter().collect();
        if points.len() >= u32::MAX as usize {
            return Err(GeoError::Full);
        }
        let mut index = Self::new();
        if let Some(slots) = bulk::build(&points, &mut index.levels) {
            index.slots = slots;
        } else {
            // Some id repeats: keep its last position and build again.
            let points = bulk::last_of_each_id(points);
            index = Self::new();
            match bulk::build(&points, &mut index.levels) {
                Some(slots) => index.slots = slots,
                // Unreachable (ids are unique now), but one-by-one inserts are correct anyway.
                None => {
                    index = Self::new();
                    for (id, at) in points {
                        index.insert(id, at)?;
                    }
                }
            }
        }
        index.shrink_to_fit();
        Ok(index)
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the index holds no point.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a point with this id is indexed.
    pub fn contains(&self, id: i64) -> bool {
        self.slots.slot_of(id).is_some()
    }

    /// Where the point with this id is, if indexed.
    pub fn get(&self, id: i64) -> Option<LatLng> {
        self.slots.slot_of(id).map(|slot| self.slots.get(slot).at)
    }

    /// Every `(id, position)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, LatLng)> + '_ {
        self.slots.points().iter().map(|p| (p.id, p.at))
    }

    /// Adds a point, or moves it if the id is already indexed. Returns the previous position.
    ///
    /// Fails only with [`GeoError::Full`] past `u32::MAX - 1` points.
    pub fn insert(&mut self, id: i64, at: LatLng) -> Result<Option<LatLng>, GeoError> {
        match self.slots.push_new(Point { id, at })? {
            Pushed::Exists(_) => self.move_point(id, at).map(Some),
            Pushed::New(slot) => {
                let fine = at.cell(FINE_RESOLUTION);
                let points = self.slots.points();
                for level in &mut self.levels {
                    level.add(level.bucket_of(fine), slot, points);
                }
                Ok(None)
            }
        }
    }

    /// Moves an indexed point to `to` and returns where it was; [`GeoError::UnknownId`] if the
    /// id is not indexed (use [`GeoIndex::insert`] to add-or-move).
    pub fn move_point(&mut self, id: i64, to: LatLng) -> Result<LatLng, GeoError> {
        let slot = self.slots.slot_of(id).ok_or(GeoError::UnknownId(id))?;
        let from = self.slots.get(slot).at;
        let (old, new) = (from.cell(FINE_RESOLUTION), to.cell(FINE_RESOLUTION));
        for level in &mut self.levels {
            level.remove(level.bucket_of(old), slot);
        }
        self.slots.set_at(slot, to);
        let points = self.slots.points();
        for level in &mut self.levels {
            level.add(level.bucket_of(new), slot, points);
        }
        Ok(from)
    }

    /// Removes a point; returns where it was, or `None` if the id was not indexed.
    pub fn remove(&mut self, id: i64) -> Option<LatLng> {
        let slot = self.slots.slot_of(id)?;
        let at = self.slots.get(slot).at;
        let fine = at.cell(FINE_RESOLUTION);
        for level in &mut self.levels {
            level.remove(level.bucket_of(fine), slot);
        }
        let (_, moved_from) = self.slots.swap_remove(slot);
        if let Some(last) = moved_from {
            let fine = self.slots.get(slot).at.cell(FINE_RESOLUTION);
            for level in &mut self.levels {
                level.relabel(level.bucket_of(fine), last, slot);
            }
        }
        Some(at)
    }

    /// Releases spare capacity (after a bulk load).
    pub fn shrink_to_fit(&mut self) {
        self.slots.shrink_to_fit();
        for level in &mut self.levels {
            level.shrink_to_fit();
        }
    }

    /// Heap bytes held by the index (allocated capacity of every table and list, not counting
    /// the allocator's own overhead), plus the struct itself.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.slots.heap_bytes()
            + self.levels.iter().map(Level::heap_bytes).sum::<usize>()
    }

    /// Number of non-empty cells at `(coarse, fine)` resolution; for diagnostics and tuning.
    pub fn occupied_cells(&self) -> (usize, usize) {
        (
            self.levels[0].occupied_cells(),
            self.levels[1].occupied_cells(),
        )
    }

    /// Up to `limit` points within `radius_m` metres of `center` (inclusive) that pass `filter`,
    /// sorted by `(distance_m, id)`, starting strictly after `after` when given.
    ///
    /// Paging: pass the [`Hit::cursor`] of the last hit of one page as `after` for the next; the
    /// pages concatenate to the full sorted list, with no repeats or gaps, as long as the points
    /// do not change in between. `filter` runs inside the search (on points already known to be
    /// in range), so filtering by item, category or status costs no over-fetching.
    ///
    /// Errors: [`GeoError::InvalidRadius`] for a negative or non-finite radius,
    /// [`GeoError::InvalidCursor`] for a cursor with an impossible distance.
    pub fn nearest<F: Fn(i64) -> bool>(
        &self,
        center: LatLng,
        radius_m: f64,
        limit: usize,
        after: Option<Cursor>,
        filter: F,
    ) -> Result<Vec<Hit>, GeoError> {
        self.using(Strategy::Auto)
            .nearest(center, radius_m, limit, after, filter)
    }

    /// Every point within `radius_m` metres of `center` (inclusive) that passes `filter`, sorted by
    /// `(distance_m, id)`. Meant for counts and small radii; prefer [`GeoIndex::nearest`] with
    /// paging when the answer may be large.
    pub fn within<F: Fn(i64) -> bool>(
        &self,
        center: LatLng,
        radius_m: f64,
        filter: F,
    ) -> Result<Vec<Hit>, GeoError> {
        self.using(Strategy::Auto).within(center, radius_m, filter)
    }

    /// The same searches with the method pinned (tests exercise each path; benches compare them
    /// with the brute-force [`Strategy::Scan`]). Results do not depend on the strategy.
    pub fn using(&self, strategy: Strategy) -> Search<'_> {
        Search {
            index: self,
            strategy,
        }
    }
}

/// Searches over a [`GeoIndex`] with a pinned [`Strategy`]; see [`GeoIndex::using`].
#[derive(Debug, Clone, Copy)]
pub struct Search<'a> {
    index: &'a GeoIndex,
    strategy: Strategy,
}

impl Search<'_> {
    /// [`GeoIndex::nearest`] with this search's strategy.
    pub fn nearest<F: Fn(i64) -> bool>(
        &self,
        center: LatLng,
        radius_m: f64,
        limit: usize,
        after: Option<Cursor>,
        filter: F,
    ) -> Result<Vec<Hit>, GeoError> {
        check_radius(radius_m)?;
        if let Some(cursor) = &after {
            cursor.check()?;
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ask = Ask {
            center,
            radius_m,
            limit: Some(limit),
        };
        Ok(self.run(
            &ask,
            Query {
                center,
                after,
                filter,
            },
            TopK::new(limit, radius_m),
        ))
    }

    /// [`GeoIndex::within`] with this search's strategy.
    pub fn within<F: Fn(i64) -> bool>(
        &self,
        center: LatLng,
        radius_m: f64,
        filter: F,
    ) -> Result<Vec<Hit>, GeoError> {
        check_radius(radius_m)?;
        let ask = Ask {
            center,
            radius_m,
            limit: None,
        };
        Ok(self.run(
            &ask,
            Query {
                center,
                after: None,
                filter,
            },
            All::new(radius_m),
        ))
    }

    fn run<F: Fn(i64) -> bool, C: Collector>(
        &self,
        ask: &Ask,
        query: Query<F>,
        mut out: C,
    ) -> Vec<Hit> {
        let GeoIndex { slots, levels } = self.index;
        match choose(self.strategy, levels, slots.len(), ask) {
            Plan::Scan => query.scan(slots, &mut out),
            Plan::Rings {
                level,
                origin,
                budget,
            } => {
                if !query.walk_rings(&levels[level], origin, slots, &mut out, budget) {
                    out.clear();
                    query.scan(slots, &mut out);
                }
            }
        }
        out.into_sorted()
    }
}

fn check_radius(radius_m: f64) -> Result<(), GeoError> {
    if radius_m.is_finite() && radius_m >= 0.0 {
        Ok(())
    } else {
        Err(GeoError::InvalidRadius(radius_m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every point is filed exactly once per level, under its own cell, in latitude order.
    fn assert_consistent(index: &GeoIndex) {
        let points = index.slots.points();
        for level in &index.levels {
            assert!(level.is_consistent(points));
            let mut seen = vec![0u8; points.len()];
            for (slot, p) in points.iter().enumerate() {
                let bucket = level.bucket_of(p.at.cell(FINE_RESOLUTION));
                assert!(level.bucket(bucket).unwrap().slots.contains(&(slot as u32)));
                assert_eq!(index.slots.slot_of(p.id), Some(slot as u32));
                seen[slot] += 1;
            }
            assert!(seen.iter().all(|&n| n == 1));
        }
    }

    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn a_bulk_build_large_enough_for_threads_is_consistent_and_keeps_the_last_duplicate() {
        let mut x = 0x0DDB_1A5E_5BAD_5EED;
        let mut points: Vec<(i64, LatLng)> = (0..30_000)
            .map(|i| {
                let lat = 35.0 + (next(&mut x) % 100_000) as f64 * 3e-5;
                let lng = 127.0 + (next(&mut x) % 100_000) as f64 * 2e-5;
                (i, LatLng::new(lat, lng).unwrap())
            })
            .collect();
        let unique = GeoIndex::from_points(points.iter().copied()).unwrap();
        assert_eq!(unique.len(), 30_000);
        assert_consistent(&unique);
        let moved = LatLng::new(36.0, 128.0).unwrap();
        points.push((7, moved));
        points.push((29_999, moved));
        let with_duplicates = GeoIndex::from_points(points).unwrap();
        assert_eq!(with_duplicates.len(), 30_000);
        assert_eq!(with_duplicates.get(7), Some(moved));
        assert_eq!(with_duplicates.get(29_999), Some(moved));
        assert_consistent(&with_duplicates);
    }

    #[test]
    fn random_edits_keep_every_level_consistent_with_the_points() {
        let mut x = 0x1234_5678_9ABC_DEF1;
        let coord = |x: &mut u64| {
            let lat = 37.5 + (next(x) % 10_000) as f64 * 1e-5;
            let lng = 127.0 + (next(x) % 10_000) as f64 * 1e-5;
            LatLng::new(lat, lng).unwrap()
        };
        let seed: Vec<(i64, LatLng)> = (0..300).map(|i| (i % 250, coord(&mut x))).collect();
        let mut index = GeoIndex::from_points(seed).unwrap();
        assert_eq!(index.len(), 250);
        assert_consistent(&index);
        for _ in 0..2_000 {
            let id = (next(&mut x) % 400) as i64;
            match next(&mut x) % 3 {
                0 => drop(index.insert(id, coord(&mut x)).unwrap()),
                1 => drop(index.move_point(id, coord(&mut x))),
                _ => drop(index.remove(id)),
            }
        }
        assert_consistent(&index);
    }
}
