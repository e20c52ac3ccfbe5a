//! An exact in-memory geo index: nearest points within a radius, by H3 cells and haversine distance.
//!
//! ```
//! use geo_index::{GeoIndex, LatLng};
//!
//! let mut index = GeoIndex::new();
//! index.insert(1, LatLng::new(37.5665, 126.9780)?)?; // Seoul City Hall
//! index.insert(2, LatLng::new(37.5700, 126.9830)?)?;
//! index.insert(3, LatLng::new(35.1796, 129.0756)?)?; // Busan
//!
//! let here = LatLng::new(37.5660, 126.9770)?;
//! let page = index.nearest(here, 10_000.0, 1, None, |_id| true)?;
//! assert_eq!(page[0].id, 1);
//! let next = index.nearest(here, 10_000.0, 10, Some(page[0].cursor()), |_id| true)?;
//! assert_eq!(next.iter().map(|h| h.id).collect::<Vec<_>>(), vec![2]);
//! # Ok::<(), geo_index::GeoError>(())
//! ```
//!
//! Pure library: no I/O, no async, no global state. See the crate README for the design and the
//! measured figures.

pub mod area;
mod bulk;
mod collect;
mod distance;
mod error;
mod hash;
mod hit;
mod index;
mod latlng;
mod level;
mod plan;
mod prefilter;
mod rings;
mod search;
mod store;
#[cfg(feature = "synth")]
pub mod synth;

pub use distance::{haversine_m, EARTH_RADIUS_M};
pub use error::GeoError;
pub use hit::{Cursor, Hit};
pub use index::{GeoIndex, Search, COARSE_RESOLUTION, FINE_RESOLUTION};
pub use latlng::LatLng;
pub use plan::Strategy;

/// The ring lower bound of the coarse (`fine = false`) or fine level, exposed for the tests that
/// check it geometrically. Not part of the API.
#[doc(hidden)]
pub fn ring_lower_bound_m(fine: bool, k: u32) -> f64 {
    if fine {
        rings::ring_lower_bound_m(FINE_RESOLUTION, 0.0, k)
    } else {
        rings::ring_lower_bound_m(COARSE_RESOLUTION, rings::PARENT_SLACK_M, k)
    }
}
