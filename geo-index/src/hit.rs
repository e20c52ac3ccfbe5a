//! Search results and the cursor that pages through them.

use crate::GeoError;
use std::cmp::Ordering;

/// One point found by a search: its id and its distance from the search centre.
///
/// Results are always sorted by `(distance_m, id)`, which is a total order (ids are unique), so a
/// page boundary is unambiguous even when many points share a distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The caller's id for the point.
    pub id: i64,
    /// [`crate::haversine_m`]`(center, point)` in metres.
    pub distance_m: f64,
}

impl Hit {
    /// The cursor that asks for the hits after this one.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            distance_m: self.distance_m,
            id: self.id,
        }
    }

    /// The result order: by distance, then by id.
    pub(crate) fn rank_cmp(&self, other: &Hit) -> Ordering {
        self.distance_m
            .total_cmp(&other.distance_m)
            .then(self.id.cmp(&other.id))
    }
}

/// A position in the `(distance_m, id)` order: a search given a cursor returns only hits strictly
/// after it, so consecutive pages neither repeat nor skip a point.
///
/// Typically the [`Hit::cursor`] of the last hit of the previous page. It is plain data, so an API
/// can hand it to a client (e.g. encoded in a token) and take it back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    /// Distance of the last hit already seen, in metres.
    pub distance_m: f64,
    /// Id of the last hit already seen.
    pub id: i64,
}

impl Cursor {
    /// Builds a cursor, refusing a distance that no hit could have (NaN, infinite, negative).
    pub fn new(distance_m: f64, id: i64) -> Result<Self, GeoError> {
        let cursor = Cursor { distance_m, id };
        cursor.check()?;
        Ok(cursor)
    }

    /// Re-checks a cursor whose public fields may have been filled in by hand.
    pub(crate) fn check(&self) -> Result<(), GeoError> {
        if self.distance_m.is_finite() && self.distance_m >= 0.0 {
            Ok(())
        } else {
            Err(GeoError::InvalidCursor(self.distance_m))
        }
    }

    /// Whether `hit` comes strictly after this cursor in the result order.
    pub(crate) fn is_before(&self, hit: &Hit) -> bool {
        hit.rank_cmp(&Hit {
            id: self.id,
            distance_m: self.distance_m,
        }) == Ordering::Greater
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_order_by_distance_then_id() {
        let a = Hit {
            id: 9,
            distance_m: 1.0,
        };
        let b = Hit {
            id: 1,
            distance_m: 2.0,
        };
        let c = Hit {
            id: 2,
            distance_m: 2.0,
        };
        assert_eq!(a.rank_cmp(&b), Ordering::Less);
        assert_eq!(b.rank_cmp(&c), Ordering::Less);
        assert_eq!(c.rank_cmp(&c), Ordering::Equal);
    }

    #[test]
    fn a_cursor_admits_only_hits_strictly_after_it() {
        let cursor = Hit {
            id: 5,
            distance_m: 10.0,
        }
        .cursor();
        assert!(!cursor.is_before(&Hit {
            id: 5,
            distance_m: 10.0
        }));
        assert!(!cursor.is_before(&Hit {
            id: 4,
            distance_m: 10.0
        }));
        assert!(cursor.is_before(&Hit {
            id: 6,
            distance_m: 10.0
        }));
        assert!(cursor.is_before(&Hit {
            id: 1,
            distance_m: 10.5
        }));
        assert!(!cursor.is_before(&Hit {
            id: 99,
            distance_m: 9.9
        }));
    }

    #[test]
    fn a_cursor_with_an_impossible_distance_is_refused() {
        for d in [f64::NAN, f64::INFINITY, -1.0] {
            assert!(matches!(Cursor::new(d, 1), Err(GeoError::InvalidCursor(_))));
        }
        assert!(Cursor::new(0.0, 1).is_ok());
    }
}
