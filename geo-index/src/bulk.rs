//! Bulk loading, the fast way to build a [`crate::GeoIndex`]:
//!
//! 1. compute every point's fine cell (the expensive part: one H3 projection, about 1 µs) and
//!    sort each part by (fine cell, latitude), on a few threads;
//! 2. merge the parts, so each fine cell's points are contiguous in the slot array and already in
//!    the latitude order the cell lists keep, and every coarse cell's points form one run;
//! 3. build the id table and file both levels, side by side.
//!
//! It assumes unique ids and says so if they are not (the caller then deduplicates and retries).

use crate::level::{Level, FINE_RESOLUTION};
use crate::store::{Point, Slots};
use crate::LatLng;
use h3o::CellIndex;
use std::thread::{Scope, ScopedJoinHandle};

/// Below this many points one thread is quicker than starting more.
const PARALLEL_FROM: usize = 20_000;
/// Cell computation scales to a few threads; more would only contend with the caller's work.
const MAX_THREADS: usize = 4;

/// How many threads a bulk load of `n` points uses.
fn threads_for(n: usize) -> usize {
    if n < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
    }
}

/// Waits for a worker, re-raising its panic if it had one. Workers only compute cells, sort and
/// fill tables from valid data, so this is not expected; re-raising beats silently losing points.
fn join<T>(worker: ScopedJoinHandle<'_, T>) -> T {
    worker
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Work that runs on another thread of a scope, or that already ran on this one.
enum Task<'scope, T> {
    Spawned(ScopedJoinHandle<'scope, T>),
    Done(T),
}

impl<'scope, T: Send + 'scope> Task<'scope, T> {
    /// Runs `f` on another thread of `scope` if `parallel`, else right away.
    fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        parallel: bool,
        f: impl FnOnce() -> T + Send + 'scope,
    ) -> Self {
        if parallel {
            Task::Spawned(scope.spawn(f))
        } else {
            Task::Done(f())
        }
    }

    fn wait(self) -> T {
        match self {
            Task::Spawned(worker) => join(worker),
            Task::Done(value) => value,
        }
    }
}

/// Builds the slot store and fills `levels` from `points`, or returns `None` if an id repeats.
pub(crate) fn build(points: &[(i64, LatLng)], levels: &mut [Level; 2]) -> Option<Slots> {
    let parallel = threads_for(points.len()) > 1;
    let (fines, points) = sorted(points, threads_for(points.len()));
    let [coarse, fine] = levels;
    let table = std::thread::scope(|scope| {
        let table = Task::start(scope, parallel, || Slots::id_table(&points));
        let filed = Task::start(scope, parallel, || coarse.file_sorted(&fines, &points));
        fine.file_sorted(&fines, &points);
        filed.wait();
        table.wait()
    });
    table.map(|table| Slots::from_parts(points, table))
}

/// The points as slot-array entries in (fine cell, latitude) order, and the fine cell of each.
fn sorted(points: &[(i64, LatLng)], threads: usize) -> (Vec<CellIndex>, Vec<Point>) {
    let chunk = points.len().div_ceil(threads).max(1);
    let mut rows: Vec<(CellIndex, Point)> = Vec::with_capacity(points.len());
    std::thread::scope(|scope| {
        let workers: Vec<_> = points
            .chunks(chunk)
            .map(|part| scope.spawn(move || rows_of(part)))
            .collect();
        for worker in workers {
            rows.extend(join(worker));
        }
    });
    // Each worker sorted its part; the stable sort finds those runs and merges them in one pass.
    rows.sort_by(row_order);
    rows.into_iter().unzip()
}

/// Fine cell, then latitude.
fn row_order(a: &(CellIndex, Point), b: &(CellIndex, Point)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then(a.1.at.lat().total_cmp(&b.1.at.lat()))
}

/// One part of the input with its fine cells, sorted.
fn rows_of(points: &[(i64, LatLng)]) -> Vec<(CellIndex, Point)> {
    let mut rows: Vec<(CellIndex, Point)> = points
        .iter()
        .map(|&(id, at)| (at.cell(FINE_RESOLUTION), Point { id, at }))
        .collect();
    rows.sort_unstable_by(row_order);
    rows
}

/// `points` with only the last occurrence of each id, in input order (for the retry).
pub(crate) fn last_of_each_id(points: Vec<(i64, LatLng)>) -> Vec<(i64, LatLng)> {
    let mut last = std::collections::HashMap::with_capacity(points.len());
    for (i, &(id, _)) in points.iter().enumerate() {
        last.insert(id, i);
    }
    points
        .into_iter()
        .enumerate()
        .filter(|&(i, (id, _))| last.get(&id) == Some(&i))
        .map(|(_, p)| p)
        .collect()
}
