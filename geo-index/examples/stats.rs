//! Prints the figures in the README: build time, bytes per point, and latency percentiles
//! (criterion reports means; tails need our own timing loop).
//!
//! Run: `cargo run --release -p gonggu-geo-index --features synth --example stats`

use geo_index::synth::{korea_points, korea_queries, seoul_city_hall};
use geo_index::{haversine_m, GeoIndex, Hit, LatLng, Strategy};
use std::time::{Duration, Instant};

const N: usize = 1_000_000;
const RADIUS_M: f64 = 10_000.0;

fn percentiles(mut t: Vec<Duration>) -> String {
    t.sort();
    let at = |q: f64| t[((t.len() as f64 * q) as usize).min(t.len() - 1)];
    let mean = t.iter().sum::<Duration>() / t.len() as u32;
    format!(
        "n={:>6}  mean {:>9.1?}  p50 {:>9.1?}  p90 {:>9.1?}  p99 {:>9.1?}  p99.9 {:>9.1?}  max {:>9.1?}",
        t.len(),
        mean,
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        t[t.len() - 1]
    )
}

fn time<T>(queries: &[LatLng], mut f: impl FnMut(LatLng) -> T) -> (Vec<Duration>, usize) {
    let mut sink = 0usize;
    let times = queries
        .iter()
        .map(|&q| {
            let start = Instant::now();
            let out = f(q);
            let took = start.elapsed();
            sink += std::hint::black_box(&out) as *const T as usize & 1;
            took
        })
        .collect();
    (times, sink)
}

/// The machine's load average, printed with the figures: on a shared 2-core machine the
/// latencies depend on what else runs.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(|_| "unknown".into(), |s| s.trim().into())
}

/// CPU time this process has used so far (all threads, user + system), from /proc/self/stat.
/// Reported next to wall time because wall time on a busy machine includes waiting for a core.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit(')').next().unwrap_or("");
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Median latency of each strategy by how far the 20th hit is (a proxy for local density): why
/// the index keeps a fine level for dense places and a coarse one for sparse ones.
fn by_density(
    index: &GeoIndex,
    queries: &[LatLng],
    times: &[Vec<Duration>],
) -> Result<(), geo_index::GeoError> {
    let mut reach = Vec::with_capacity(queries.len());
    for &q in queries {
        let hits = index.nearest(q, RADIUS_M, 20, None, |_| true)?;
        reach.push(hits.last().map_or(f64::INFINITY, |h| h.distance_m));
    }
    println!("median nearest-20 latency by distance to the 20th hit: auto / coarse / fine");
    for (lo, hi) in [
        (0.0, 100.0),
        (100.0, 200.0),
        (200.0, 400.0),
        (400.0, 800.0),
        (800.0, 1600.0),
        (1600.0, f64::INFINITY),
    ] {
        let picked: Vec<usize> = (0..queries.len())
            .filter(|&i| reach[i] >= lo && reach[i] < hi)
            .collect();
        if picked.is_empty() {
            continue;
        }
        let median = |t: &Vec<Duration>| {
            let mut v: Vec<Duration> = picked.iter().map(|&i| t[i]).collect();
            v.sort();
            v[v.len() / 2]
        };
        println!(
            "  {lo:>5} to {hi:>5} m ({:>5} queries): {:>8.1?} / {:>8.1?} / {:>8.1?}",
            picked.len(),
            median(&times[0]),
            median(&times[1]),
            median(&times[2])
        );
    }
    Ok(())
}

fn main() -> Result<(), geo_index::GeoError> {
    println!("load average at start: {}", load());
    let points = korea_points(N, 42);
    let hall = seoul_city_hall();
    let near_hall = points
        .iter()
        .filter(|(_, p)| haversine_m(hall, *p) <= RADIUS_M)
        .count();
    println!("{N} points (seed 42); within 10 km of Seoul City Hall: {near_hall}");

    let mut builds = Vec::new();
    let mut index = GeoIndex::new();
    for _ in 0..3 {
        drop(index);
        let (start, cpu) = (Instant::now(), cpu_time());
        index = GeoIndex::from_points(points.iter().copied())?;
        builds.push((start.elapsed(), cpu_time() - cpu));
    }
    builds.sort();
    println!(
        "build (from_points, best of 3): {:.2?} wall, {:.2?} CPU (runs, wall and CPU: {builds:.2?})",
        builds[0].0, builds[0].1
    );
    let bytes = index.memory_bytes();
    let (coarse, fine) = index.occupied_cells();
    println!(
        "memory: {bytes} bytes = {:.1} bytes/point; occupied cells coarse {coarse}, fine {fine}",
        bytes as f64 / N as f64
    );
    let mut grown = GeoIndex::new();
    let start = Instant::now();
    for &(id, at) in &points {
        grown.insert(id, at)?;
    }
    println!(
        "incremental insert of {N}: {:?}, {:.1} bytes/point",
        start.elapsed(),
        grown.memory_bytes() as f64 / N as f64
    );
    drop(grown);

    let queries = korea_queries(100_000, 7);
    // Check exactness on a sample before timing anything.
    for &q in queries.iter().take(300) {
        let fast = index.nearest(q, RADIUS_M, 20, None, |_| true)?;
        let slow = index
            .using(Strategy::Scan)
            .nearest(q, RADIUS_M, 20, None, |_| true)?;
        assert_eq!(fast, slow, "mismatch at {q:?}");
    }

    let mut by_strategy = Vec::new();
    for (name, strategy, n) in [
        ("auto", Strategy::Auto, 100_000),
        ("coarse", Strategy::Coarse, 20_000),
        ("fine", Strategy::Fine, 20_000),
    ] {
        let search = index.using(strategy);
        let (t, _) = time(&queries[..n], |q| {
            search.nearest(q, RADIUS_M, 20, None, |_| true)
        });
        by_strategy.push(t[..20_000].to_vec());
        println!("nearest 20 within 10 km [{name:>6}]: {}", percentiles(t));
    }
    by_density(&index, &queries[..20_000], &by_strategy)?;
    let (t, _) = time(&queries[..20_000], |q| {
        index.nearest(q, RADIUS_M, 20, None, |id| id % 10 == 0)
    });
    println!(
        "nearest 20 within 10 km, filter keeps 1 in 10: {}",
        percentiles(t)
    );
    let (t, _) = time(&queries[..20_000], |q| {
        index.nearest(q, 1_000.0, 20, None, |_| true)
    });
    println!("nearest 20 within 1 km: {}", percentiles(t));

    let mut hits = 0usize;
    let (t, _) = time(&queries[..1_000], |q| {
        let all: Vec<Hit> = index.within(q, RADIUS_M, |_| true).unwrap_or_default();
        hits += all.len();
        all.len()
    });
    println!(
        "within 10 km (mean {} hits): {}",
        hits / 1_000,
        percentiles(t)
    );
    let (t, _) = time(&queries[..10_000], |q| index.within(q, 1_000.0, |_| true));
    println!("within 1 km: {}", percentiles(t));

    let scan = index.using(Strategy::Scan);
    let (t, _) = time(&queries[..100], |q| {
        scan.nearest(q, RADIUS_M, 20, None, |_| true)
    });
    println!(
        "brute-force scan, nearest 20 within 10 km: {}",
        percentiles(t)
    );
    Ok(())
}
