//! Helpers for gonggu's benchmark binaries (see the crate README): latency summaries, the check
//! that another engine's nearest-neighbour answers agree with ours, and thin Redis and PostgreSQL
//! clients for the geo comparison.

pub mod agree;
pub mod latency;
pub mod pg;
pub mod redis_geo;

use geo_index::LatLng;
use std::future::Future;

/// The query every engine answers: the nearest [`LIMIT`] points within [`RADIUS_M`].
pub const RADIUS_M: f64 = 10_000.0;

/// How many hits a query asks for.
pub const LIMIT: usize = 20;

/// An engine that answers "nearest [`LIMIT`] within [`RADIUS_M`]" with `(id, distance in metres
/// as that engine measures it)`, nearest first.
pub trait Nearest {
    /// Answers one query.
    fn nearest(&mut self, at: LatLng) -> impl Future<Output = anyhow::Result<Vec<(i64, f64)>>>;
}
