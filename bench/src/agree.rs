//! Whether another engine's "nearest `limit` within `radius`" answer agrees with ours, up to the
//! documented differences in how each engine measures distance.
//!
//! Our reference is the haversine on the mean earth radius ([`EARTH_RADIUS_M`]). Another engine
//! may legitimately disagree only about points whose haversine distance lies within a tolerance
//! of a decision it makes: the radius (is the point in?) or the distance of the last hit (is it
//! among the first `limit`?). Anything else is a mismatch.

use geo_index::{Hit, EARTH_RADIUS_M};
use std::collections::HashSet;

/// Redis's earth radius (`EARTH_RADIUS_IN_METERS` in its `geohash_helper.c`).
pub const REDIS_EARTH_RADIUS_M: f64 = 6_372_797.560_856;

/// Redis stores each point as a 52-bit geohash (26 bits per axis) and measures from the centre of
/// that cell; these are the cell sizes in degrees (its latitude range is ±85.05112878°).
const REDIS_LAT_STEP_DEG: f64 = 2.0 * 85.051_128_78 / (1u64 << 26) as f64;
const REDIS_LNG_STEP_DEG: f64 = 360.0 / (1u64 << 26) as f64;

/// WGS84, the spheroid PostGIS measures `geography` on by default.
const WGS84_A_M: f64 = 6_378_137.0;
const WGS84_F: f64 = 1.0 / 298.257_223_563;

/// Floating-point slack for engines that measure on (almost) our sphere.
const SLACK_M: f64 = 0.01;

/// How far, in our haversine metres, a point may be from a decision for engines to disagree on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Around the radius: the engine's "within r" is our "within r ± boundary_m".
    pub boundary_m: f64,
    /// Around the last hit: points whose distances differ by less than this may swap order.
    pub rank_m: f64,
}

impl Tolerance {
    /// Redis: haversine on [`REDIS_EARTH_RADIUS_M`] (2.8 m longer than ours at 10 km) from the
    /// query to the centre of the point's geohash cell (at most half a cell away on each axis).
    pub fn redis(radius_m: f64) -> Self {
        let scale_m = radius_m * (1.0 - EARTH_RADIUS_M / REDIS_EARTH_RADIUS_M);
        let cell_m = redis_cell_error_m();
        Self {
            boundary_m: scale_m + cell_m + SLACK_M,
            // Scaling every distance by the same factor keeps the order; the cell error does not.
            rank_m: 2.0 * cell_m + SLACK_M,
        }
    }

    /// PostGIS `geography`: `ST_DWithin` measures on the WGS84 spheroid, where a distance `d`
    /// around latitude `lat_deg` is between `d·M/R` and `d·N/R` (meridional and prime-vertical
    /// radii of curvature over our radius): about −19 m to +24 m at 10 km in Korea. The `<->`
    /// ordering is on PostGIS's sphere of radius (2a+b)/3, which is ours to 1e-8.
    pub fn postgis(lat_deg: f64, radius_m: f64) -> Self {
        let e2 = WGS84_F * (2.0 - WGS84_F);
        let w = 1.0 - e2 * lat_deg.to_radians().sin().powi(2);
        let n = WGS84_A_M / w.sqrt();
        let m = WGS84_A_M * (1.0 - e2) / (w * w.sqrt());
        let rel = (m / EARTH_RADIUS_M - 1.0)
            .abs()
            .max((n / EARTH_RADIUS_M - 1.0).abs());
        Self {
            // 0.5 m covers the curvature's change across the circle (about 0.15 m at 10 km).
            boundary_m: radius_m * rel + 0.5,
            rank_m: SLACK_M,
        }
    }

    /// `earthdistance`: great circles on a sphere of `earth_radius_m` (its `earth()`, 6,378,168 m
    /// by default: 11.2 m longer than ours at 10 km); ordering by the chord (`<->` on the cubes)
    /// is the same order as by the arc.
    pub fn earthdistance(earth_radius_m: f64, radius_m: f64) -> Self {
        Self {
            boundary_m: radius_m * (earth_radius_m / EARTH_RADIUS_M - 1.0).abs() + SLACK_M,
            rank_m: SLACK_M,
        }
    }
}

/// Upper bound, in metres, of how far Redis's stored position is from the one given to `GEOADD`.
pub fn redis_cell_error_m() -> f64 {
    let m_per_deg = EARTH_RADIUS_M.to_radians();
    (REDIS_LAT_STEP_DEG + REDIS_LNG_STEP_DEG) / 2.0 * m_per_deg
}

/// The outcome of comparing one answer with ours.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The same ids in the same order.
    Identical,
    /// Differences only in points within tolerance of the radius or of the last hit.
    Tolerated,
    /// A difference the tolerance does not explain.
    Mismatch(String),
}

/// Compares `theirs` (ids, nearest first) with `ours`. `distance_of` gives our haversine
/// distance from the query to a point id, or `None` for an id we do not know.
pub fn compare(
    ours: &[Hit],
    theirs: &[i64],
    limit: usize,
    radius_m: f64,
    tol: Tolerance,
    distance_of: impl Fn(i64) -> Option<f64>,
) -> Verdict {
    if ours.len() == theirs.len() && ours.iter().zip(theirs).all(|(h, &id)| h.id == id) {
        return Verdict::Identical;
    }
    if theirs.len() > limit {
        return Verdict::Mismatch(format!("{} hits, more than {limit}", theirs.len()));
    }
    let mut their_d = Vec::with_capacity(theirs.len());
    let mut seen = HashSet::with_capacity(theirs.len());
    for &id in theirs {
        let Some(d) = distance_of(id) else {
            return Verdict::Mismatch(format!("unknown id {id}"));
        };
        if !seen.insert(id) {
            return Verdict::Mismatch(format!("id {id} twice"));
        }
        if d > radius_m + tol.boundary_m {
            return Verdict::Mismatch(format!("id {id} at {d:.3} m, beyond the radius"));
        }
        their_d.push((id, d));
    }
    for pair in their_d.windows(2) {
        let ((a, da), (b, db)) = (pair[0], pair[1]);
        if db < da - tol.rank_m {
            return Verdict::Mismatch(format!(
                "id {b} ({db:.3} m) listed after id {a} ({da:.3} m)"
            ));
        }
    }
    let last = (ours.len() == limit)
        .then(|| ours.last().map(|h| h.distance_m))
        .flatten();
    let explained = |d: f64| {
        (d - radius_m).abs() <= tol.boundary_m || last.is_some_and(|l| (d - l).abs() <= tol.rank_m)
    };
    let ours_ids: HashSet<i64> = ours.iter().map(|h| h.id).collect();
    let missing = ours.iter().filter(|h| !seen.contains(&h.id));
    let extra = their_d.iter().filter(|(id, _)| !ours_ids.contains(id));
    for (what, id, d) in missing
        .map(|h| ("missing", h.id, h.distance_m))
        .chain(extra.map(|&(id, d)| ("extra", id, d)))
    {
        if !explained(d) {
            let last = last.map_or_else(|| "none".to_owned(), |l| format!("{l:.3} m"));
            return Verdict::Mismatch(format!(
                "{what} id {id} at {d:.3} m (radius {radius_m} m, our last hit {last})"
            ));
        }
    }
    Verdict::Tolerated
}

/// Agreement counts over many queries.
#[derive(Debug, Default, Clone)]
pub struct Agreement {
    /// Answers with the same ids in the same order as ours.
    pub identical: usize,
    /// Answers that differ only within tolerance.
    pub tolerated: usize,
    /// Answers with an unexplained difference.
    pub mismatched: usize,
    /// The first few mismatches, described.
    pub examples: Vec<String>,
    /// Largest `|their distance - our distance|` over all returned points, metres.
    pub max_distance_gap_m: f64,
}

impl Agreement {
    /// How many mismatch descriptions are kept.
    const EXAMPLES: usize = 5;

    /// Compares one answer (see [`compare`]) and counts the verdict. `theirs` holds `(id, their
    /// distance in metres)`; `label` names the query in a mismatch description.
    pub fn check(
        &mut self,
        label: &str,
        ours: &[Hit],
        theirs: &[(i64, f64)],
        tol: Tolerance,
        distance_of: impl Fn(i64) -> Option<f64>,
    ) {
        for &(id, d) in theirs {
            if let Some(ours_d) = distance_of(id) {
                self.max_distance_gap_m = self.max_distance_gap_m.max((d - ours_d).abs());
            }
        }
        let ids: Vec<i64> = theirs.iter().map(|&(id, _)| id).collect();
        match compare(ours, &ids, crate::LIMIT, crate::RADIUS_M, tol, distance_of) {
            Verdict::Identical => self.identical += 1,
            Verdict::Tolerated => self.tolerated += 1,
            Verdict::Mismatch(why) => {
                self.mismatched += 1;
                if self.examples.len() < Self::EXAMPLES {
                    self.examples.push(format!("{label}: {why}"));
                }
            }
        }
    }

    /// Number of answers checked.
    pub fn total(&self) -> usize {
        self.identical + self.tolerated + self.mismatched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Tolerance = Tolerance {
        boundary_m: 3.0,
        rank_m: 0.5,
    };

    fn hits(v: &[(i64, f64)]) -> Vec<Hit> {
        v.iter()
            .map(|&(id, distance_m)| Hit { id, distance_m })
            .collect()
    }

    /// Compares with `limit` 3 and radius 100 m; `all` gives our distance of every known id.
    fn check(ours: &[(i64, f64)], theirs: &[i64], all: &[(i64, f64)]) -> Verdict {
        let lookup = |id: i64| all.iter().find(|p| p.0 == id).map(|p| p.1);
        compare(&hits(ours), theirs, 3, 100.0, TOL, lookup)
    }

    const ALL: &[(i64, f64)] = &[(1, 10.0), (2, 20.0), (3, 30.0), (4, 30.2), (5, 99.0)];

    #[test]
    fn the_same_ids_in_the_same_order_are_identical() {
        let ours = [(1, 10.0), (2, 20.0), (3, 30.0)];
        assert_eq!(check(&ours, &[1, 2, 3], ALL), Verdict::Identical);
    }

    #[test]
    fn a_swap_at_the_last_hit_within_the_rank_tolerance_is_tolerated() {
        let ours = [(1, 10.0), (2, 20.0), (3, 30.0)];
        assert_eq!(check(&ours, &[1, 2, 4], ALL), Verdict::Tolerated);
    }

    #[test]
    fn a_point_dropped_at_the_boundary_is_tolerated() {
        let ours = [(1, 10.0), (5, 99.0)];
        assert_eq!(check(&ours, &[1], ALL), Verdict::Tolerated);
    }

    #[test]
    fn a_missing_near_point_is_a_mismatch() {
        let ours = [(1, 10.0), (2, 20.0), (3, 30.0)];
        assert!(matches!(
            check(&ours, &[1, 3, 4], ALL),
            Verdict::Mismatch(why) if why.contains("missing id 2")
        ));
    }

    #[test]
    fn an_order_beyond_the_rank_tolerance_is_a_mismatch() {
        let ours = [(1, 10.0), (2, 20.0), (3, 30.0)];
        assert!(matches!(
            check(&ours, &[2, 1, 3], ALL),
            Verdict::Mismatch(why) if why.contains("listed after")
        ));
    }

    #[test]
    fn unknown_repeated_or_too_far_ids_are_mismatches() {
        let ours = [(1, 10.0)];
        let far = [(1, 10.0), (9, 150.0)];
        assert!(matches!(check(&ours, &[1, 42], ALL), Verdict::Mismatch(_)));
        assert!(matches!(check(&ours, &[1, 1], ALL), Verdict::Mismatch(_)));
        assert!(matches!(check(&ours, &[1, 9], &far), Verdict::Mismatch(_)));
        assert!(matches!(
            check(&ours, &[1, 2, 3, 4], ALL),
            Verdict::Mismatch(_)
        ));
    }

    #[test]
    fn tolerances_match_the_documented_earth_radius_differences() {
        let redis = Tolerance::redis(10_000.0);
        assert!(
            redis.boundary_m > 3.0 && redis.boundary_m < 3.5,
            "{redis:?}"
        );
        let seoul = Tolerance::postgis(37.5665, 10_000.0);
        assert!(
            seoul.boundary_m > 23.0 && seoul.boundary_m < 25.5,
            "{seoul:?}"
        );
        let earth = Tolerance::earthdistance(6_378_168.0, 10_000.0);
        assert!((earth.boundary_m - 11.25).abs() < 0.05, "{earth:?}");
    }

    #[test]
    fn agreement_counts_verdicts_and_the_largest_distance_gap() {
        let ours = hits(&[(1, 10.0), (2, 20.0), (3, 30.0)]);
        let lookup = |id: i64| ALL.iter().find(|p| p.0 == id).map(|p| p.1);
        let mut a = Agreement::default();
        a.check("q0", &ours, &[(1, 10.0), (2, 20.5), (3, 30.0)], TOL, lookup);
        a.check("q1", &ours, &[(1, 10.0), (3, 30.0)], TOL, lookup);
        assert_eq!((a.identical, a.tolerated, a.mismatched), (1, 0, 1));
        assert_eq!(a.total(), 2);
        assert!(a.examples[0].starts_with("q1: missing id 2"));
        assert_eq!(a.max_distance_gap_m, 0.5);
    }
}
