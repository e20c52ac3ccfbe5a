//! Great-circle distance: the one definition of "how far" that the index and its callers share.

use crate::LatLng;

/// Mean earth radius in metres (IUGG R1), the sphere on which all distances are measured.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres between `a` and `b` by the haversine formula on a sphere of
/// radius [`EARTH_RADIUS_M`].
///
/// The index reports exactly this value as [`crate::Hit::distance_m`], always computed as
/// `haversine_m(center, point)`, so callers that recompute it with the same argument order get
/// bit-identical results (useful for cursors and for checking the index against a scan).
pub fn haversine_m(a: LatLng, b: LatLng) -> f64 {
    let lat1 = a.lat().to_radians();
    haversine_from(lat1, lat1.cos(), a.lng(), b)
}

/// [`haversine_m`] with the centre's latitude in radians and its cosine computed once per search.
/// The same operations in the same order, so the result is bit-identical.
#[inline]
fn haversine_from(lat1: f64, cos_lat1: f64, lng1_deg: f64, b: LatLng) -> f64 {
    let lat2 = b.lat().to_radians();
    let dlat = lat2 - lat1;
    let dlng = (b.lng() - lng1_deg).to_radians();
    let s_lat = (dlat * 0.5).sin();
    let s_lng = (dlng * 0.5).sin();
    let h = s_lat * s_lat + cos_lat1 * lat2.cos() * s_lng * s_lng;
    // Rounding can push `h` a hair above 1 for antipodal points; clamp so `asin` stays defined.
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// A cheap, conservative test that a point is farther than a bound, run before the exact
/// [`haversine_m`] so that most far points cost a few multiplications instead of four
/// transcendental functions.
///
/// It evaluates a lower bound of the haversine term `h = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2)`
/// using `sin² x >= x² (1 - x²/3)` for `|x| <= π/2` and `cos φ2 >= cos φ1 - |Δφ|` (cos is
/// 1-Lipschitz), and compares it with the `h` of the bound inflated by a relative 1e-9 (plus a
/// tiny absolute slack) that dwarfs floating-point rounding. So it only ever answers "beyond"
/// for points whose exact distance is beyond the bound; everything else gets the exact distance.
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

    /// Exactly [`haversine_m`]`(center, at)`, one cosine cheaper.
    #[inline]
    pub(crate) fn distance_m(&self, at: LatLng) -> f64 {
        haversine_from(self.lat1, self.cos1, self.lng1_deg, at)
    }

    /// Whether `at` is certainly farther than `bound_m` metres from the centre.
    #[inline]
    pub(crate) fn surely_beyond(&mut self, at: LatLng, bound_m: f64) -> bool {
        if bound_m != self.bound_m {
            self.set_bound(bound_m);
        }
        // Same operations as `haversine_m` for Δφ and Δλ, so the two agree on them exactly.
        let dlat = at.lat().to_radians() - self.lat1;
        let mut dlng = (at.lng() - self.lng1_deg).to_radians().abs();
        if dlng > std::f64::consts::PI {
            dlng = std::f64::consts::TAU - dlng; // sin²(Δλ/2) has period 2π
        }
        let (a, b) = (0.5 * dlat, 0.5 * dlng);
        let (a2, b2) = (a * a, b * b);
        let cos_product = self.cos1 * (self.cos1 - dlat.abs()).max(0.0);
        let h_low = a2 * (1.0 - a2 / 3.0) + cos_product * b2 * (1.0 - b2 / 3.0);
        h_low > self.h_bound
    }

    /// How many degrees of latitude away a point can be and still be within `bound_m`, with the
    /// same safety margin: a great-circle distance is never less than the latitude difference
    /// (`h >= sin²(Δφ/2)`), so a point further in latitude than this is certainly beyond.
    #[inline]
    pub(crate) fn lat_reach_deg(&mut self, bound_m: f64) -> f64 {
        if bound_m != self.bound_m {
            self.set_bound(bound_m);
        }
        self.lat_reach_deg
    }

    fn set_bound(&mut self, bound_m: f64) {
        self.bound_m = bound_m;
        self.lat_reach_deg = (bound_m * (1.0 + 1e-9) / EARTH_RADIUS_M).to_degrees() + 1e-12;
        let half_angle = bound_m / (2.0 * EARTH_RADIUS_M);
        self.h_bound = if half_angle >= std::f64::consts::FRAC_PI_2 {
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

    fn p(lat: f64, lng: f64) -> LatLng {
        LatLng::new(lat, lng).unwrap()
    }

    #[test]
    fn seoul_city_hall_to_busan_city_hall_is_about_325_km() {
        let seoul = p(37.566_535, 126.977_969);
        let busan = p(35.179_554, 129.075_642);
        let d = haversine_m(seoul, busan);
        assert!((d - 325_000.0).abs() < 3_000.0, "got {d}");
    }

    #[test]
    fn a_point_is_zero_metres_from_itself() {
        for q in [p(0.0, 0.0), p(37.5, 127.0), p(90.0, 0.0), p(-33.9, 151.2)] {
            assert_eq!(haversine_m(q, q), 0.0);
        }
    }

    #[test]
    fn antipodal_points_are_half_a_circumference_apart() {
        let half = std::f64::consts::PI * EARTH_RADIUS_M;
        for (a, b) in [
            (p(0.0, 0.0), p(0.0, 180.0)),
            (p(90.0, 0.0), p(-90.0, 0.0)),
            (p(37.5, 127.0), p(-37.5, -53.0)),
        ] {
            assert!((haversine_m(a, b) - half).abs() < 1e-3, "{a:?} {b:?}");
        }
    }

    #[test]
    fn the_antimeridian_is_crossed_the_short_way() {
        let d = haversine_m(p(0.0, 179.999), p(0.0, -179.999));
        let expected = 0.002_f64.to_radians() * EARTH_RADIUS_M;
        assert!((d - expected).abs() < 1e-6, "got {d}");
    }

    #[test]
    fn the_prefilter_never_rejects_a_point_within_the_bound() {
        let centers = [
            p(37.5, 127.0),
            p(89.99, 10.0),
            p(-89.9, -170.0),
            p(0.0, 179.99),
            p(0.0, 0.0),
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for c in centers {
            let mut pre = Prefilter::new(c);
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                let v = ((x >> 3) % 1_000_003) as f64 / 1_000_003.0;
                let scale = [1e-6, 1e-3, 0.1, 1.0, 30.0][(x % 5) as usize];
                let lat = (c.lat() + (u - 0.5) * scale).clamp(-90.0, 90.0);
                let mut lng = c.lng() + (v - 0.5) * scale * 3.0;
                if lng > 180.0 {
                    lng -= 360.0;
                } else if lng < -180.0 {
                    lng += 360.0;
                }
                let q = p(lat, lng);
                let d = haversine_m(c, q);
                assert_eq!(pre.distance_m(q).to_bits(), d.to_bits());
                assert!(!pre.surely_beyond(q, d), "{c:?} {q:?} at {d} m");
            }
        }
    }

    #[test]
    fn the_prefilter_rejects_most_points_well_beyond_the_bound() {
        let c = p(37.5, 127.0);
        let mut pre = Prefilter::new(c);
        assert!(pre.surely_beyond(p(37.51, 127.0), 1_000.0));
        assert!(pre.surely_beyond(p(37.5, 127.02), 1_000.0));
        assert!(!pre.surely_beyond(p(37.5, 127.005), 1_000.0));
    }

    #[test]
    fn one_degree_of_latitude_is_about_111_km() {
        let d = haversine_m(p(10.0, 20.0), p(11.0, 20.0));
        assert!((d - 111_195.08).abs() < 0.1, "got {d}");
    }
}
