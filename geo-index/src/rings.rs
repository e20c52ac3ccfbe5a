//! Walking H3 grid rings outward from a cell, and how far away ring `k` is at the least.
//!
//! # The lower bound
//! Take a query point `p` in cell `c0` and a point `x` in a cell at grid distance `k >= 2`. The
//! great-circle path from `p` to `x` must cross rings `1..k-1`; crossing ring `j` means going from
//! a cell at distance `j - 1` to a cell at distance `j + 1`, and two cells two grid steps apart are
//! separated by at least one whole cell edge (they are not adjacent, and H3 cells meet three at a
//! vertex, so they cannot even share a vertex). Those `k - 1` crossings are disjoint pieces of the
//! path, hence `distance(p, x) >= (k - 1) * g`, where `g` is the smallest gap between two cells two
//! steps apart at that resolution.
//!
//! `g` is NOT the average edge length that `h3o::Resolution::edge_length_m` returns: cells shrink
//! by ~30% towards the 12 pentagons, and a ring count derived from the average misses points. The
//! minima below were measured with `examples/h3_bounds.rs` (h3o 0.11): every edge of every cell
//! within 8 rings of each pentagon, plus the edges of 200k uniformly random cells worldwide, plus
//! the sampled boundary gap between every pair of cells two apart next to each pentagon (it equals
//! the shortest edge, as the argument above predicts). The smallest edges sit next to the
//! pentagons; the random sample finds nothing shorter anywhere else. We then keep only 90% of
//! the measured value ([`SAFETY`]): that covers floating-point rounding in H3's point-to-cell
//! assignment, cells the measurement did not sample, and the kinked edges of class III cells that
//! straddle an icosahedron edge; it costs ~10% more rings. The property tests check the bound
//! directly on random point pairs near pentagons, the poles, the antimeridian and icosahedron edges.

use crate::hash::MixState;
use h3o::{CellIndex, Resolution};
use hashbrown::HashSet;

/// Share of the measured minimum gap that the lower bound relies on (see module docs).
pub(crate) const SAFETY: f64 = 0.9;

/// Smallest gap in metres between two cells two grid steps apart (= the shortest edge), as
/// measured by `examples/h3_bounds.rs`, for resolutions 5 to 11.
fn measured_min_gap_m(res: Resolution) -> Option<f64> {
    Some(match u8::from(res) {
        5 => 6_931.3,
        6 => 2_771.1,
        7 => 988.1,
        8 => 395.6,
        9 => 141.1,
        10 => 56.5,
        11 => 20.2,
        _ => return None,
    })
}

/// The gap `g` the lower bound uses at `res`: the measured minimum times [`SAFETY`].
///
/// Unmeasured resolutions fall back to 0.6 x the average edge, below the min/average ratio of
/// 0.70 to 0.74 observed at every measured resolution; the index itself only uses measured ones.
pub(crate) fn min_gap_m(res: Resolution) -> f64 {
    measured_min_gap_m(res).unwrap_or(0.6 * res.edge_length_m() / SAFETY) * SAFETY
}

/// No point filed under a cell at grid distance `k` from the query's cell is closer than this
/// (metres), when points may lie up to `slack_m` outside the cell they are filed under (0 when
/// filed under their own cell; see [`PARENT_SLACK_M`]).
pub(crate) fn ring_lower_bound_m(res: Resolution, slack_m: f64, k: u32) -> f64 {
    if k < 2 {
        0.0
    } else {
        (f64::from(k - 1) * min_gap_m(res) - slack_m).max(0.0)
    }
}

/// How far a point can lie outside the resolution-7 cell it is filed under when it is filed under
/// the res-7 *parent* of its res-9 cell (H3 children stick out of their parent), in metres.
///
/// Filing by parent saves the index a second point-to-cell projection per point, half of the
/// build time. Measured with `examples/h3_bounds.rs`: over the res-9 descendants of every res-7
/// cell within 2 rings of each pentagon and of 5,000 random res-7 cells worldwide (20,000 in a
/// longer run, same figure), no descendant
/// vertex lies more than 191.8 m outside its ancestor (0.153 of that ancestor's shortest edge);
/// descendants are convex, so neither does any point in them. We use 250 m (30% margin). The
/// query itself is placed with an exact projection, so only the far side needs this slack:
/// ring `k` is at least `(k - 1) * gap - slack` away.
pub(crate) const PARENT_SLACK_M: f64 = 250.0;

/// Yields the hollow rings `0, 1, 2, ...` around an origin cell.
///
/// Uses h3o's fast ring algorithm, which gives up near pentagons; from then on it switches to a
/// breadth-first walk over neighbours (always correct, and it keeps its state so each further ring
/// costs only its own size).
pub(crate) struct Rings {
    origin: CellIndex,
    next_k: u32,
    bfs: Option<Bfs>,
}

struct Bfs {
    seen: HashSet<u64, MixState>,
    frontier: Vec<CellIndex>,
}

impl Rings {
    pub(crate) fn new(origin: CellIndex) -> Self {
        Rings {
            origin,
            next_k: 0,
            bfs: None,
        }
    }

    /// The grid distance of the ring the next [`Rings::fill_next`] produces.
    pub(crate) fn next_k(&self) -> u32 {
        self.next_k
    }

    /// Replaces `out` with the next ring. An empty ring means the whole globe has been walked.
    pub(crate) fn fill_next(&mut self, out: &mut Vec<CellIndex>) {
        let k = self.next_k;
        self.next_k += 1;
        out.clear();
        if self.bfs.is_none() {
            for cell in self.origin.grid_ring_fast(k) {
                match cell {
                    Some(cell) => out.push(cell),
                    None => {
                        out.clear();
                        self.bfs = Some(Bfs::up_to(self.origin, k));
                        break;
                    }
                }
            }
            if self.bfs.is_none() {
                return;
            }
        }
        if let Some(bfs) = &mut self.bfs {
            bfs.advance(out);
        }
    }
}

impl Bfs {
    /// A walk whose frontier is ring `k - 1`, ready to yield ring `k` (`k >= 1`; the fast path
    /// never fails on ring 0).
    fn up_to(origin: CellIndex, k: u32) -> Self {
        let mut bfs = Bfs {
            seen: HashSet::default(),
            frontier: vec![origin],
        };
        bfs.seen.insert(u64::from(origin));
        let mut ring = Vec::new();
        for _ in 1..k {
            bfs.advance(&mut ring);
        }
        bfs
    }

    /// Moves the frontier one ring out and copies the new ring into `out`.
    fn advance(&mut self, out: &mut Vec<CellIndex>) {
        out.clear();
        for cell in std::mem::take(&mut self.frontier) {
            for n in cell.grid_disk::<Vec<_>>(1) {
                if self.seen.insert(u64::from(n)) {
                    out.push(n);
                }
            }
        }
        self.frontier.extend_from_slice(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(r: u8) -> Resolution {
        Resolution::try_from(r).unwrap()
    }

    fn rings_of(origin: CellIndex, n: u32) -> Vec<Vec<CellIndex>> {
        let mut rings = Rings::new(origin);
        let mut out = Vec::new();
        (0..n)
            .map(|_| {
                rings.fill_next(&mut out);
                let mut ring = out.clone();
                ring.sort();
                ring
            })
            .collect()
    }

    fn expected_rings(origin: CellIndex, n: u32) -> Vec<Vec<CellIndex>> {
        let mut by_k = vec![Vec::new(); n as usize];
        for (cell, k) in origin.grid_disk_distances_safe(n - 1) {
            by_k[k as usize].push(cell);
        }
        for ring in &mut by_k {
            ring.sort();
        }
        by_k
    }

    #[test]
    fn rings_around_an_ordinary_cell_match_grid_distances() {
        let seoul = crate::LatLng::new(37.5665, 126.978).unwrap().cell(res(9));
        assert_eq!(rings_of(seoul, 6), expected_rings(seoul, 6));
    }

    #[test]
    fn rings_around_and_next_to_pentagons_match_grid_distances() {
        for pentagon in res(7).pentagons() {
            assert_eq!(rings_of(pentagon, 6), expected_rings(pentagon, 6));
            let neighbour = pentagon.grid_ring::<Vec<_>>(2)[0];
            assert_eq!(rings_of(neighbour, 6), expected_rings(neighbour, 6));
        }
    }

    #[test]
    fn the_lower_bound_is_zero_for_the_first_two_rings_then_grows_by_the_minimum_gap() {
        assert_eq!(ring_lower_bound_m(res(7), 0.0, 0), 0.0);
        assert_eq!(ring_lower_bound_m(res(7), 0.0, 1), 0.0);
        assert!((ring_lower_bound_m(res(7), 0.0, 3) - 2.0 * 988.1 * SAFETY).abs() < 1e-9);
        let with_slack = ring_lower_bound_m(res(7), PARENT_SLACK_M, 3);
        assert!((with_slack - (2.0 * 988.1 * SAFETY - PARENT_SLACK_M)).abs() < 1e-9);
        assert_eq!(ring_lower_bound_m(res(9), 1e9, 5), 0.0);
    }

    #[test]
    fn the_minimum_gap_is_below_the_average_edge_at_every_resolution() {
        for r in 0..=15 {
            let res = res(r);
            assert!(min_gap_m(res) < 0.75 * res.edge_length_m(), "res {r}");
        }
    }
}
