//! The one error type of this crate.

/// Why an input to the index was refused.
///
/// Every public entry point validates its input and answers with one of these instead of panicking,
/// so callers can map a bad request straight to a client error naming the offending field.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum GeoError {
    /// Latitude is NaN, infinite or outside [-90, 90] degrees.
    #[error("latitude {0} is not a finite number of degrees in [-90, 90]")]
    InvalidLatitude(f64),
    /// Longitude is NaN, infinite or outside [-180, 180] degrees.
    #[error("longitude {0} is not a finite number of degrees in [-180, 180]")]
    InvalidLongitude(f64),
    /// Search radius is NaN, infinite or negative.
    #[error("radius {0} m is not a finite, non-negative number of metres")]
    InvalidRadius(f64),
    /// Paging cursor carries a NaN, infinite or negative distance.
    #[error("cursor distance {0} m is not a finite, non-negative number of metres")]
    InvalidCursor(f64),
    /// `move_point` was asked to move an id the index does not hold.
    #[error("no point with id {0} in the index")]
    UnknownId(i64),
    /// The index addresses points with `u32` slots; it cannot hold more than `u32::MAX` of them.
    #[error("the index is full ({} points)", u32::MAX)]
    Full,
}
