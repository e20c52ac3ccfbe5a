//! Choosing how to answer a search: rings at the coarse level, rings at the fine level, or a scan.
//!
//! Every method is exact; the choice only changes the cost. The model, calibrated on the
//! 1M-point Korea benchmark (`examples/stats.rs`):
//! - a ring walk pays per cell visited (ring step, hash probe, cold cache lines) and per point it
//!   examines; points are stored in fine-cell order, so a fine cell's points are contiguous while
//!   a coarse cell's are spread over ~49 fine blocks and cost more each;
//! - it examines about `density * 2 * reach * width of the visited disk` points, because each
//!   cell is scanned only within the latitude band `center ± bound`;
//! - the coarse level needs one more point-to-cell conversion (the fine one is computed anyway);
//! - a scan costs `n` prefilter steps.
//!
//! Local density comes from the number of points in the query's coarse cell. For a nearest-k
//! search the expected reach is the radius of a disk that holds k points at that density.

use crate::level::Level;
use crate::rings::min_gap_m;
use crate::LatLng;
use h3o::CellIndex;

/// How a search finds its candidates. All strategies return the same, exact, result.
///
/// [`Strategy::Auto`] (the default) picks by estimated cost; the others pin one method, for tests
/// that must exercise each path and for benchmarks that compare them (`Scan` is the brute force).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Estimate the cost of each method and use the cheapest.
    #[default]
    Auto,
    /// Compute the distance to every point.
    Scan,
    /// Walk rings of coarse cells.
    Coarse,
    /// Walk rings of fine cells.
    Fine,
}

/// The method a search will run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    Scan,
    /// Walk rings at `levels[level]` from `origin` (the centre's cell there), giving up for a scan
    /// after `budget` cells.
    Rings {
        level: usize,
        origin: CellIndex,
        budget: Option<usize>,
    },
}

/// Cost of visiting one cell, ns (mostly cache misses when the query lands somewhere new).
const CELL_NS: f64 = 150.0;
/// Cost of examining one point of a fine cell (contiguous in memory), ns.
const FINE_POINT_NS: f64 = 10.0;
/// Cost of examining one point of a coarse cell (scattered over fine blocks), ns.
const COARSE_POINT_NS: f64 = 34.0;
/// Cost of one point-to-cell conversion in h3o, ns.
const TO_CELL_NS: f64 = 1_300.0;
/// Cost per point of a scan (sequential, mostly rejected by the prefilter), ns.
const SCAN_POINT_NS: f64 = 5.0;

/// What a search needs the planner to know.
pub(crate) struct Ask {
    pub(crate) center: LatLng,
    pub(crate) radius_m: f64,
    /// `Some(limit)` for a nearest-k search, `None` for "all within".
    pub(crate) limit: Option<usize>,
}

/// Picks the plan for `ask` under `strategy`. `levels` is `[coarse, fine]`; `n` the point count.
pub(crate) fn choose(strategy: Strategy, levels: &[Level; 2], n: usize, ask: &Ask) -> Plan {
    let rings = |level: usize, budget| Plan::Rings {
        level,
        origin: levels[level].origin_of(ask.center),
        budget,
    };
    match strategy {
        Strategy::Scan => Plan::Scan,
        Strategy::Coarse => rings(0, None),
        Strategy::Fine => rings(1, None),
        Strategy::Auto => cheapest(levels, n, ask),
    }
}

/// Estimated cost of walking rings at `level` out to `reach_m` at `density` points/m².
fn walk_ns(level: &Level, density: f64, reach_m: f64, point_ns: f64) -> (f64, f64) {
    let area = level.res().area_m2();
    // Rings 0..=k are visited, where ring k + 1 is the first whose lower bound exceeds the reach.
    let k = ((reach_m + level.slack_m()) / min_gap_m(level.res())).floor() + 1.0;
    let cells = 3.0 * k * (k + 1.0) + 1.0;
    let width = 2.0 * (cells * area / std::f64::consts::PI).sqrt();
    let examined = (density * 2.0 * reach_m * width).min(density * cells * area);
    (cells * CELL_NS + examined * point_ns, cells)
}

fn cheapest(levels: &[Level; 2], n: usize, ask: &Ask) -> Plan {
    let [coarse, fine] = levels;
    let fine_origin = fine.origin_of(ask.center);
    // The coarse bucket the centre itself would be filed under gives the local density.
    let local = coarse.count(coarse.bucket_of(fine_origin));
    let density = local as f64 / coarse.res().area_m2();
    let reach_m = match ask.limit {
        Some(k) if density > 0.0 => (k as f64 / (std::f64::consts::PI * density))
            .sqrt()
            .min(ask.radius_m),
        _ => ask.radius_m,
    };
    let scan_ns = n as f64 * SCAN_POINT_NS;
    let (fine_ns, fine_cells) = walk_ns(fine, density, reach_m, FINE_POINT_NS);
    let (coarse_ns, coarse_cells) = walk_ns(coarse, density, reach_m, COARSE_POINT_NS);
    let coarse_ns = coarse_ns + TO_CELL_NS;
    // Give up on a walk that visits several times the cells expected and more than a scan costs.
    let budget = |cells: f64| Some((4.0 * cells).max(scan_ns / CELL_NS) as usize);
    if scan_ns <= fine_ns.min(coarse_ns) {
        Plan::Scan
    } else if fine_ns <= coarse_ns {
        Plan::Rings {
            level: 1,
            origin: fine_origin,
            budget: budget(fine_cells),
        }
    } else {
        Plan::Rings {
            level: 0,
            origin: coarse.origin_of(ask.center),
            budget: budget(coarse_cells),
        }
    }
}
