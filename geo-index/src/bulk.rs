//! Bulk loading: compute every point's fine cell (the expensive part: an H3 projection, ~1 µs)
//! on a few threads, then order the points so that each fine cell's points are contiguous.

use crate::index::FINE_RESOLUTION;
use crate::LatLng;
use h3o::CellIndex;

/// One input point with its fine cell and its position in the input (later duplicates win).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) fine: CellIndex,
    pub(crate) order: u32,
    pub(crate) id: i64,
    pub(crate) at: LatLng,
}

/// Below this many points one thread is quicker than starting more.
const PARALLEL_FROM: usize = 20_000;
/// Cell computation scales to a few threads; more would only contend with the caller's work.
const MAX_THREADS: usize = 4;

/// How many threads a bulk load of `n` points uses.
pub(crate) fn threads_for(n: usize) -> usize {
    if n < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
    }
}

/// `points` with their cells, sorted by fine cell then latitude (the order cell lists keep).
pub(crate) fn sorted_rows(points: &[(i64, LatLng)]) -> Vec<Row> {
    let threads = if points.len() < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
    };
    let chunk = points.len().div_ceil(threads).max(1);
    let mut rows: Vec<Row> = Vec::with_capacity(points.len());
    std::thread::scope(|scope| {
        let workers: Vec<_> = points
            .chunks(chunk)
            .enumerate()
            .map(|(i, part)| scope.spawn(move || rows_of(part, i * chunk)))
            .collect();
        for worker in workers {
            // A worker only maps coordinates to cells and cannot panic on valid `LatLng`s; if it
            // somehow did, re-raise the panic here rather than lose points.
            match worker.join() {
                Ok(part) => rows.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    // Each worker sorted its part; the stable sort finds those runs and merges them in one pass.
    rows.sort_by(row_order);
    rows
}

/// Fine cell, then latitude: each cell's points become contiguous and already in the latitude
/// order the cell lists keep.
fn row_order(a: &Row, b: &Row) -> std::cmp::Ordering {
    a.fine.cmp(&b.fine).then(a.at.lat().total_cmp(&b.at.lat()))
}

/// The rows of one part of the input, sorted.
fn rows_of(points: &[(i64, LatLng)], first: usize) -> Vec<Row> {
    let mut rows: Vec<Row> = points
        .iter()
        .enumerate()
        .map(|(i, &(id, at))| Row {
            fine: at.cell(FINE_RESOLUTION),
            order: (first + i) as u32,
            id,
            at,
        })
        .collect();
    rows.sort_unstable_by(row_order);
    rows
}
