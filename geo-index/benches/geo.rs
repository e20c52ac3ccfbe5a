//! Criterion benchmarks on 1,000,000 points clustered on Korean cities (`synth`, seed 42).
//!
//! Run: `cargo bench -p gonggu-geo-index --features synth --bench geo`
//! (criterion gives means; `examples/stats.rs` gives the latency percentiles).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use geo_index::synth::{korea_points, korea_queries};
use geo_index::{GeoIndex, LatLng, Strategy};
use std::hint::black_box;
use std::time::Duration;

const N: usize = 1_000_000;
const RADIUS_M: f64 = 10_000.0;

fn setup() -> (Vec<(i64, LatLng)>, GeoIndex, Vec<LatLng>) {
    let points = korea_points(N, 42);
    let index = GeoIndex::from_points(points.iter().copied()).expect("valid synthetic points");
    (points, index, korea_queries(10_000, 7))
}

/// Runs `f` on each query in turn, one query per iteration.
fn cycling<'a>(queries: &'a [LatLng]) -> impl FnMut() -> LatLng + 'a {
    let mut i = 0;
    move || {
        i = (i + 1) % queries.len();
        queries[i]
    }
}

fn benches(c: &mut Criterion) {
    let (points, index, queries) = setup();

    let mut build = c.benchmark_group("build");
    build
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    build.bench_function("from_points 1M", |b| {
        b.iter_batched(
            || points.clone(),
            |points| GeoIndex::from_points(points).expect("valid"),
            BatchSize::PerIteration,
        )
    });
    build.finish();

    let mut search = c.benchmark_group("search 1M");
    search
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, strategy) in [
        ("auto", Strategy::Auto),
        ("coarse", Strategy::Coarse),
        ("fine", Strategy::Fine),
    ] {
        let s = index.using(strategy);
        let mut next = cycling(&queries);
        search.bench_function(format!("nearest 20 within 10 km ({name})"), |b| {
            b.iter(|| black_box(s.nearest(next(), RADIUS_M, 20, None, |_| true)))
        });
    }
    let mut next = cycling(&queries);
    search.bench_function("nearest 20 within 10 km, filter keeps 1 in 10", |b| {
        b.iter(|| black_box(index.nearest(next(), RADIUS_M, 20, None, |id| id % 10 == 0)))
    });
    let mut next = cycling(&queries);
    search.bench_function("within 1 km", |b| {
        b.iter(|| black_box(index.within(next(), 1_000.0, |_| true)))
    });
    search.finish();

    let mut slow = c.benchmark_group("search 1M, slow");
    slow.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let mut next = cycling(&queries);
    slow.bench_function("within 10 km", |b| {
        b.iter(|| black_box(index.within(next(), RADIUS_M, |_| true)))
    });
    let scan = index.using(Strategy::Scan);
    let mut next = cycling(&queries);
    slow.bench_function("brute force: nearest 20 within 10 km", |b| {
        b.iter(|| black_box(scan.nearest(next(), RADIUS_M, 20, None, |_| true)))
    });
    slow.finish();
}

criterion_group!(geo, benches);
criterion_main!(geo);
