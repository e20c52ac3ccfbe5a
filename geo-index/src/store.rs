//! The points themselves: a dense slot array plus an id -> slot table.
//!
//! Slots are `u32` so the per-cell lists stay 4 bytes per point. Removal swaps the last slot
//! into the hole, keeping the array dense (the caller relabels that point in its cell lists).

use crate::hash::mix;
use crate::{GeoError, LatLng};
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

/// One indexed point: 24 bytes, coordinates kept exactly as given so distances are exact.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    pub(crate) id: i64,
    pub(crate) at: LatLng,
}

/// What [`Slots::push_new`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The point was stored in this new slot.
    New(u32),
    /// The id was already stored, in this slot; nothing changed.
    Exists(u32),
}

/// Dense point storage with lookup by id.
#[derive(Debug, Default, Clone)]
pub(crate) struct Slots {
    points: Vec<Point>,
    /// Slot numbers, hashed by the id stored in that slot: 4 bytes + 1 control byte per bucket,
    /// against 16 + 1 for a `HashMap<i64, u32>`.
    by_id: HashTable<u32>,
}

fn id_hash(id: i64) -> u64 {
    mix(id as u64)
}

impl Slots {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Slots {
            points: Vec::with_capacity(n),
            by_id: HashTable::with_capacity(n),
        }
    }

    /// The id table for `points` (slot `i` holds `points[i]`), or `None` if an id repeats.
    pub(crate) fn id_table(points: &[Point]) -> Option<HashTable<u32>> {
        let mut table = HashTable::with_capacity(points.len());
        for (slot, point) in points.iter().enumerate() {
            match table.entry(
                id_hash(point.id),
                |&s: &u32| points[s as usize].id == point.id,
                |&s: &u32| id_hash(points[s as usize].id),
            ) {
                Entry::Occupied(_) => return None,
                Entry::Vacant(vacant) => {
                    vacant.insert(slot as u32);
                }
            }
        }
        Some(table)
    }

    /// Slots from `points` and their [`Slots::id_table`].
    pub(crate) fn from_parts(points: Vec<Point>, by_id: HashTable<u32>) -> Self {
        Slots { points, by_id }
    }

    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }

    pub(crate) fn points(&self) -> &[Point] {
        &self.points
    }

    pub(crate) fn get(&self, slot: u32) -> Point {
        self.points[slot as usize]
    }

    pub(crate) fn slot_of(&self, id: i64) -> Option<u32> {
        let points = &self.points;
        self.by_id
            .find(id_hash(id), |&s| points[s as usize].id == id)
            .copied()
    }

    /// Appends `point` unless its id is already stored; either way says which slot holds the id.
    /// [`GeoError::Full`] once slots would no longer fit a `u32`.
    pub(crate) fn push_new(&mut self, point: Point) -> Result<Pushed, GeoError> {
        let slot = u32::try_from(self.points.len()).map_err(|_| GeoError::Full)?;
        let points = &self.points;
        match self.by_id.entry(
            id_hash(point.id),
            |&s| points[s as usize].id == point.id,
            |&s| id_hash(points[s as usize].id),
        ) {
            Entry::Occupied(found) => Ok(Pushed::Exists(*found.get())),
            Entry::Vacant(_) if slot == u32::MAX => Err(GeoError::Full),
            Entry::Vacant(vacant) => {
                vacant.insert(slot);
                self.points.push(point);
                Ok(Pushed::New(slot))
            }
        }
    }

    pub(crate) fn set_at(&mut self, slot: u32, at: LatLng) {
        self.points[slot as usize].at = at;
    }

    /// Removes the point in `slot`. Returns it, and the old slot of the point that moved into
    /// `slot` (the former last one) if any.
    pub(crate) fn swap_remove(&mut self, slot: u32) -> (Point, Option<u32>) {
        let removed = self.points[slot as usize];
        let points = &self.points;
        if let Ok(entry) = self.by_id.find_entry(id_hash(removed.id), |&s| {
            points[s as usize].id == removed.id
        }) {
            entry.remove();
        }
        let last = (self.points.len() - 1) as u32;
        self.points.swap_remove(slot as usize);
        if last == slot {
            return (removed, None);
        }
        let moved_id = self.points[slot as usize].id;
        if let Some(s) = self.by_id.find_mut(id_hash(moved_id), |&s| s == last) {
            *s = slot;
        }
        (removed, Some(last))
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.points.shrink_to_fit();
        let points = &self.points;
        self.by_id
            .shrink_to_fit(|&s| id_hash(points[s as usize].id));
    }

    /// Heap bytes held (allocated capacity, not just what is in use).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<Point>() + self.by_id.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: i64) -> Point {
        Point {
            id,
            at: LatLng::new(1.0, id as f64 / 10.0).unwrap(),
        }
    }

    #[test]
    fn removing_a_middle_slot_moves_the_last_point_into_it_and_keeps_ids_findable() {
        let mut slots = Slots::default();
        for id in [10, 20, 30] {
            assert!(matches!(slots.push_new(point(id)), Ok(Pushed::New(_))));
        }
        assert_eq!(slots.push_new(point(20)), Ok(Pushed::Exists(1)));
        let (removed, moved_from) = slots.swap_remove(0);
        assert_eq!(removed.id, 10);
        assert_eq!(moved_from, Some(2));
        assert_eq!(slots.slot_of(30), Some(0));
        assert_eq!(slots.slot_of(20), Some(1));
        assert_eq!(slots.slot_of(10), None);
        let (removed, moved_from) = slots.swap_remove(1);
        assert_eq!((removed.id, moved_from), (20, None));
        assert_eq!(slots.len(), 1);
    }

    #[test]
    fn a_point_takes_24_bytes_in_the_slot_array() {
        assert_eq!(std::mem::size_of::<Point>(), 24);
    }
}
