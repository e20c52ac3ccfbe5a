//! [`LatLng`]: a coordinate that has been checked once, so nothing downstream re-checks it.

use crate::GeoError;
use h3o::{CellIndex, Resolution};

/// A WGS84 coordinate in degrees, guaranteed finite with latitude in [-90, 90] and longitude in
/// [-180, 180].
///
/// Construct it with [`LatLng::new`]; holding one proves the value is valid ("parse, don't
/// validate"), so the index and the distance function never see NaN or out-of-range input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatLng {
    lat: f64,
    lng: f64,
}

impl LatLng {
    /// Checks `lat` and `lng` (degrees) and wraps them, or says which one is wrong.
    pub fn new(lat: f64, lng: f64) -> Result<Self, GeoError> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(GeoError::InvalidLatitude(lat));
        }
        if !(lng.is_finite() && (-180.0..=180.0).contains(&lng)) {
            return Err(GeoError::InvalidLongitude(lng));
        }
        Ok(Self { lat, lng })
    }

    /// Latitude in degrees.
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    pub fn lng(self) -> f64 {
        self.lng
    }

    /// A coordinate h3o produced (always valid degrees).
    pub(crate) fn from_h3(p: h3o::LatLng) -> Self {
        Self {
            lat: p.lat(),
            lng: p.lng(),
        }
    }

    /// The H3 cell holding this coordinate at `res`.
    pub(crate) fn cell(self, res: Resolution) -> CellIndex {
        // `h3o::LatLng::new` only rejects non-finite values, which `LatLng::new` already refused.
        h3o::LatLng::new(self.lat, self.lng)
            .expect("a LatLng holds finite degrees")
            .to_cell(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_coordinates_including_the_bounds_are_accepted() {
        for (lat, lng) in [
            (0.0, 0.0),
            (90.0, 180.0),
            (-90.0, -180.0),
            (37.5665, 126.978),
        ] {
            let p = LatLng::new(lat, lng).unwrap();
            assert_eq!((p.lat(), p.lng()), (lat, lng));
        }
    }

    #[test]
    fn out_of_range_or_non_finite_latitude_is_named_in_the_error() {
        for lat in [
            90.000_001,
            -90.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert!(matches!(
                LatLng::new(lat, 0.0),
                Err(GeoError::InvalidLatitude(_))
            ));
        }
    }

    #[test]
    fn out_of_range_or_non_finite_longitude_is_named_in_the_error() {
        for lng in [180.000_001, -181.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                LatLng::new(0.0, lng),
                Err(GeoError::InvalidLongitude(_))
            ));
        }
    }

    #[test]
    fn latitude_is_checked_before_longitude() {
        assert!(matches!(
            LatLng::new(f64::NAN, f64::NAN),
            Err(GeoError::InvalidLatitude(_))
        ));
    }
}
