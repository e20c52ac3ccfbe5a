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
pub(crate) fn haversine_from(lat1: f64, cos_lat1: f64, lng1_deg: f64, b: LatLng) -> f64 {
    let lat2 = b.lat().to_radians();
    let dlat = lat2 - lat1;
    let dlng = (b.lng() - lng1_deg).to_radians();
    let s_lat = (dlat * 0.5).sin();
    let s_lng = (dlng * 0.5).sin();
    let h = s_lat * s_lat + cos_lat1 * lat2.cos() * s_lng * s_lng;
    // Rounding can push `h` a hair above 1 for antipodal points; clamp so `asin` stays defined.
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
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
    fn one_degree_of_latitude_is_about_111_km() {
        let d = haversine_m(p(10.0, 20.0), p(11.0, 20.0));
        assert!((d - 111_195.08).abs() < 0.1, "got {d}");
    }
}
