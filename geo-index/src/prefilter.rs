//! Cheap, conservative "certainly farther than the bound" tests, run before the exact haversine
//! so that most far points (and whole far cells) cost a few multiplications instead of four
//! transcendental functions.
//!
//! They evaluate a lower bound of the haversine term `h = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2)`
//! using `sin² x >= x² (1 - x²/3)` for `|x| <= π/2` and `cos φ2 >= cos φ1 - |Δφ|` (cos is
//! 1-Lipschitz), and compare it with the `h` of the bound inflated by a relative 1e-9 (plus a tiny
//! absolute slack) that dwarfs floating-point rounding. So they only ever answer "beyond" when
//! the exact distance is beyond the bound; everything else gets the exact distance.

use crate::distance::{haversine_from, EARTH_RADIUS_M};
use crate::LatLng;
use std::f64::consts::{FRAC_PI_2, PI, TAU};

/// A latitude/longitude box, in degrees, stored as `f32` rounded outward (so it always contains
/// what it was grown around). Used as the extent of the points filed under one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LatLngBox {
    south: f32,
    west: f32,
    north: f32,
    east: f32,
}

/// The largest `f32` that is `<= x`.
fn f32_at_most(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) <= x {
        f
    } else if f > 0.0 {
        f32::from_bits(f.to_bits() - 1)
    } else if f < 0.0 {
        f32::from_bits(f.to_bits() + 1)
    } else {
        -f32::from_bits(1)
    }
}

/// The smallest `f32` that is `>= x`.
fn f32_at_least(x: f64) -> f32 {
    -f32_at_most(-x)
}

impl LatLngBox {
    /// The box around one point.
    pub(crate) fn around(at: LatLng) -> Self {
        LatLngBox {
            south: f32_at_most(at.lat()),
            west: f32_at_most(at.lng()),
            north: f32_at_least(at.lat()),
            east: f32_at_least(at.lng()),
        }
    }

    /// `(south, north)` in degrees.
    pub(crate) fn lat_range(&self) -> (f64, f64) {
        (f64::from(self.south), f64::from(self.north))
    }

    /// Grows the box to contain `at`. (Longitudes are not wrapped: points on both sides of the
    /// antimeridian make a box spanning all longitudes, which is still a correct superset.)
    pub(crate) fn grow(&mut self, at: LatLng) {
        let other = LatLngBox::around(at);
        self.south = self.south.min(other.south);
        self.west = self.west.min(other.west);
        self.north = self.north.max(other.north);
        self.east = self.east.max(other.east);
    }
}

/// Per-search precomputation around the centre, plus the `h` threshold of the current bound.
pub(crate) struct Prefilter {
    lng1_deg: f64,
    lat1: f64,
    cos1: f64,
    bound_m: f64,
    h_bound: f64,
    lat_reach_deg: f64,
}

impl Prefilter {
    pub(crate) fn new(center: LatLng) -> Self {
        let lat1 = center.lat().to_radians();
        Prefilter {
            lng1_deg: center.lng(),
            lat1,
            cos1: lat1.cos(),
            bound_m: f64::NAN,
            h_bound: f64::INFINITY,
            lat_reach_deg: f64::INFINITY,
        }
    }

    /// Exactly [`crate::haversine_m`]`(center, at)`, one cosine cheaper.
    #[inline]
    pub(crate) fn distance_m(&self, at: LatLng) -> f64 {
        haversine_from(self.lat1, self.cos1, self.lng1_deg, at)
    }

    /// Lower bound of `h` for points whose `|Δφ|` lies in `[dlat_min, dlat_max]` and whose
    /// `|Δλ|` (already folded into `[0, π]`) is at least `dlng_min`, all in radians.
    #[inline]
    fn h_low(&self, dlat_min: f64, dlat_max: f64, dlng_min: f64) -> f64 {
        let (a, b) = (0.5 * dlat_min, 0.5 * dlng_min);
        let (a2, b2) = (a * a, b * b);
        let cos_product = self.cos1 * (self.cos1 - dlat_max).max(0.0);
        a2 * (1.0 - a2 / 3.0) + cos_product * b2 * (1.0 - b2 / 3.0)
    }

    /// Whether `at` is certainly farther than `bound_m` metres from the centre.
    #[inline]
    pub(crate) fn surely_beyond(&mut self, at: LatLng, bound_m: f64) -> bool {
        self.set_bound(bound_m);
        // Same operations as `haversine_m` for Δφ and Δλ, so the two agree on them exactly.
        let dlat = (at.lat().to_radians() - self.lat1).abs();
        let mut dlng = (at.lng() - self.lng1_deg).to_radians().abs();
        if dlng > PI {
            dlng = TAU - dlng; // sin²(Δλ/2) has period 2π
        }
        self.h_low(dlat, dlat, dlng) > self.h_bound
    }

    /// Whether every point inside `bbox` is certainly farther than `bound_m` from the centre.
    #[inline]
    pub(crate) fn box_surely_beyond(&mut self, bbox: &LatLngBox, bound_m: f64) -> bool {
        self.set_bound(bound_m);
        let lat = self.lat1.to_degrees();
        let (south, north) = (f64::from(bbox.south), f64::from(bbox.north));
        let (west, east) = (f64::from(bbox.west), f64::from(bbox.east));
        let dlat_min = (south - lat).max(lat - north).max(0.0);
        let dlat_max = (south - lat).abs().max((north - lat).abs());
        let dlng_min = if (west..=east).contains(&self.lng1_deg) {
            0.0
        } else {
            let east_of = (west - self.lng1_deg).rem_euclid(360.0);
            let west_of = (self.lng1_deg - east).rem_euclid(360.0);
            east_of.min(west_of).min(180.0)
        };
        // Shave a relative 1e-9 off the gaps to absorb the degree/radian conversions.
        let shave = 1.0 - 1e-9;
        let h = self.h_low(
            dlat_min.to_radians() * shave,
            dlat_max.to_radians() / shave,
            dlng_min.to_radians() * shave,
        );
        h > self.h_bound
    }

    /// How many degrees of latitude away a point can be and still be within `bound_m`, with the
    /// same safety margin: a great-circle distance is never less than the latitude difference
    /// (`h >= sin²(Δφ/2)`), so a point further in latitude than this is certainly beyond.
    #[inline]
    pub(crate) fn lat_reach_deg(&mut self, bound_m: f64) -> f64 {
        self.set_bound(bound_m);
        self.lat_reach_deg
    }

    #[inline]
    fn set_bound(&mut self, bound_m: f64) {
        if bound_m == self.bound_m {
            return;
        }
        self.bound_m = bound_m;
        self.lat_reach_deg = (bound_m * (1.0 + 1e-9) / EARTH_RADIUS_M).to_degrees() + 1e-12;
        let half_angle = bound_m / (2.0 * EARTH_RADIUS_M);
        self.h_bound = if half_angle >= FRAC_PI_2 {
            f64::INFINITY
        } else {
            let s = half_angle.sin();
            s * s * (1.0 + 1e-9) + 1e-30
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haversine_m;

    fn p(lat: f64, lng: f64) -> LatLng {
        LatLng::new(lat, lng).unwrap()
    }

    /// Deterministic points around `c` at mixed scales, wrapped into range.
    fn around(c: LatLng, n: usize) -> Vec<LatLng> {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut unit = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|i| {
                let scale = [1e-6, 1e-3, 0.1, 1.0, 30.0][i % 5];
                let lat = (c.lat() + (unit() - 0.5) * scale).clamp(-90.0, 90.0);
                let lng = c.lng() + (unit() - 0.5) * scale * 3.0;
                p(lat, (lng + 540.0).rem_euclid(360.0) - 180.0)
            })
            .collect()
    }

    const CENTERS: [(f64, f64); 5] = [
        (37.5, 127.0),
        (89.99, 10.0),
        (-89.9, -170.0),
        (0.0, 179.99),
        (0.0, 0.0),
    ];

    #[test]
    fn the_prefilter_never_rejects_a_point_within_the_bound() {
        for (lat, lng) in CENTERS {
            let c = p(lat, lng);
            let mut pre = Prefilter::new(c);
            for q in around(c, 20_000) {
                let d = haversine_m(c, q);
                assert_eq!(pre.distance_m(q).to_bits(), d.to_bits());
                assert!(!pre.surely_beyond(q, d), "{c:?} {q:?} at {d} m");
                assert!(
                    !pre.box_surely_beyond(&LatLngBox::around(q), d),
                    "{c:?} box {q:?}"
                );
            }
        }
    }

    #[test]
    fn a_box_is_never_rejected_while_a_point_inside_it_is_within_the_bound() {
        for (lat, lng) in CENTERS {
            let c = p(lat, lng);
            let mut pre = Prefilter::new(c);
            let points = around(p(lat * 0.99, lng * 0.99), 4_000);
            for group in points.chunks(7) {
                let mut bbox = LatLngBox::around(group[0]);
                group.iter().for_each(|q| bbox.grow(*q));
                let nearest = group
                    .iter()
                    .map(|q| haversine_m(c, *q))
                    .fold(f64::MAX, f64::min);
                assert!(!pre.box_surely_beyond(&bbox, nearest), "{c:?} {bbox:?}");
            }
        }
    }

    #[test]
    fn far_points_and_boxes_are_rejected() {
        let mut pre = Prefilter::new(p(37.5, 127.0));
        assert!(pre.surely_beyond(p(37.51, 127.0), 1_000.0));
        assert!(pre.surely_beyond(p(37.5, 127.02), 1_000.0));
        assert!(!pre.surely_beyond(p(37.5, 127.005), 1_000.0));
        let mut bbox = LatLngBox::around(p(37.6, 127.1));
        bbox.grow(p(37.7, 127.2));
        assert!(pre.box_surely_beyond(&bbox, 10_000.0));
        assert!(!pre.box_surely_beyond(&bbox, 20_000.0));
    }

    #[test]
    fn boxes_are_measured_across_the_antimeridian() {
        let mut pre = Prefilter::new(p(0.0, -179.95));
        let mut bbox = LatLngBox::around(p(0.0, 170.0));
        bbox.grow(p(0.0, 179.9));
        // 0.15 degrees of longitude at the equator is about 16.7 km.
        assert!(!pre.box_surely_beyond(&bbox, 17_000.0));
        assert!(pre.box_surely_beyond(&bbox, 16_000.0));
    }

    #[test]
    fn f32_rounding_goes_outward() {
        for x in [
            37.566_535_1,
            -126.977_969_3,
            0.0,
            1e-40,
            -1e-40,
            89.999_999_9,
        ] {
            assert!(f64::from(f32_at_most(x)) <= x);
            assert!(f64::from(f32_at_least(x)) >= x);
        }
    }
}
