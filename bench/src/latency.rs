//! Latency summaries (nearest-rank percentiles) and timed query loops.

use crate::Nearest;
use geo_index::LatLng;
use std::time::{Duration, Instant};

/// Mean and percentiles of a set of per-query latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: Duration,
    /// Median (nearest rank).
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Slowest sample.
    pub max: Duration,
}

impl Summary {
    /// Summarises `samples`, or `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let max = *sorted.last()?;
        let total: Duration = sorted.iter().sum();
        let mean = Duration::from_secs_f64(total.as_secs_f64() / n as f64);
        // Nearest rank: the smallest sample with at least q·n samples at or below it.
        let at = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some(Self {
            n,
            mean,
            p50: at(0.50),
            p99: at(0.99),
            max,
        })
    }
}

/// `slow / fast`, e.g. how many times longer another engine takes than ours.
pub fn ratio(slow: Duration, fast: Duration) -> f64 {
    slow.as_secs_f64() / fast.as_secs_f64()
}

/// Per-query latencies and the answers, in query order.
#[derive(Debug, Default)]
pub struct Timed {
    /// Wall time of each query as the client saw it.
    pub latencies: Vec<Duration>,
    /// Each query's answer: `(id, distance_m)` as the engine reports it.
    pub answers: Vec<Vec<(i64, f64)>>,
}

/// Runs `warmup` untimed, then each of `queries` one at a time, timing each from the client side.
pub async fn time_engine<E: Nearest>(
    engine: &mut E,
    warmup: &[LatLng],
    queries: &[LatLng],
) -> anyhow::Result<Timed> {
    for &q in warmup {
        engine.nearest(q).await?;
    }
    let mut timed = Timed {
        latencies: Vec::with_capacity(queries.len()),
        answers: Vec::with_capacity(queries.len()),
    };
    for &q in queries {
        let start = Instant::now();
        let answer = engine.nearest(q).await?;
        timed.latencies.push(start.elapsed());
        timed.answers.push(answer);
    }
    Ok(timed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).rev().map(us).collect();
        let s = Summary::of(&samples).unwrap();
        assert_eq!((s.n, s.p50, s.p99, s.max), (100, us(50), us(99), us(100)));
        assert_eq!(s.mean, Duration::from_nanos(50_500));
    }

    #[test]
    fn a_single_sample_is_every_percentile_and_none_is_no_summary() {
        let s = Summary::of(&[us(7)]).unwrap();
        assert_eq!((s.mean, s.p50, s.p99, s.max), (us(7), us(7), us(7), us(7)));
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn ratio_is_slow_over_fast() {
        assert_eq!(ratio(Duration::from_millis(40), us(50)), 800.0);
    }
}
