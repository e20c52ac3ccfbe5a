//! Measures the two H3 facts the ring lower bound in `src/rings.rs` relies on:
//!
//! 1. the shortest edge per resolution, and the shortest gap between two cells two grid steps
//!    apart (the same number: such cells are separated by at least one whole edge);
//! 2. how far the fine (res 9) descendants of a coarse (res 7) cell stick out of it, since the
//!    coarse level files points under the parent of their fine cell.
//!
//! H3 cells shrink towards the 12 pentagons (the icosahedron's vertices), so the minima are found
//! around them; uniformly random cells worldwide confirm nothing elsewhere is worse.
//!
//! Run: `cargo run --release -p gonggu-geo-index --example h3_bounds` (about a minute).

use h3o::{CellIndex, LatLng, Resolution};

/// A deterministic xorshift generator, so the run is reproducible without extra dependencies.
struct Xorshift(u64);

impl Xorshift {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A point uniformly distributed on the sphere.
    fn point(&mut self) -> Option<LatLng> {
        let lat = (self.unit() * 2.0 - 1.0).asin().to_degrees();
        LatLng::new(lat, self.unit() * 360.0 - 180.0).ok()
    }
}

fn wrap(lng: f64) -> f64 {
    if lng > 180.0 {
        lng - 360.0
    } else if lng < -180.0 {
        lng + 360.0
    } else {
        lng
    }
}

/// The boundary of `cell`, `per_edge` samples per edge.
fn outline(cell: CellIndex, per_edge: u32) -> Vec<LatLng> {
    let v: Vec<LatLng> = cell.boundary().iter().copied().collect();
    let mut out = Vec::new();
    for (i, a) in v.iter().enumerate() {
        let b = v[(i + 1) % v.len()];
        let dlng = wrap(b.lng() - a.lng());
        for t in 0..per_edge {
            let f = f64::from(t) / f64::from(per_edge);
            let lat = a.lat() + (b.lat() - a.lat()) * f;
            if let Ok(p) = LatLng::new(lat, wrap(a.lng() + dlng * f)) {
                out.push(p);
            }
        }
    }
    out
}

fn gap_m(a: &[LatLng], b: &[LatLng]) -> f64 {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| x.distance_m(*y)))
        .fold(f64::MAX, f64::min)
}

fn min_edge_m(cell: CellIndex) -> f64 {
    cell.edges().map(|e| e.length_m()).fold(f64::MAX, f64::min)
}

fn edges_and_gaps(rng: &mut Xorshift) {
    println!("res | avg edge m | min edge m, near pentagons | min edge m, 200k random cells | min gap m, cells 2 apart");
    for r in 5u8..=11 {
        let res = Resolution::try_from(r).expect("valid resolution");
        let (mut near, mut gap) = (f64::MAX, f64::MAX);
        for pentagon in res.pentagons() {
            for c in pentagon.grid_disk::<Vec<_>>(8) {
                near = near.min(min_edge_m(c));
            }
            for c in pentagon.grid_disk::<Vec<_>>(1) {
                let mine = outline(c, 16);
                for (other, k) in c.grid_disk_distances::<Vec<_>>(2) {
                    if k == 2 {
                        gap = gap.min(gap_m(&mine, &outline(other, 16)));
                    }
                }
            }
        }
        let random = (0..200_000)
            .filter_map(|_| rng.point())
            .map(|p| min_edge_m(p.to_cell(res)))
            .fold(f64::MAX, f64::min);
        println!(
            "{r:>3} | {:>10.1} | {near:>26.1} | {random:>29.1} | {gap:>24.1}",
            res.edge_length_m()
        );
    }
}

fn descendant_slack(rng: &mut Xorshift, coarse: Resolution, fine: Resolution) {
    let mut parents: Vec<CellIndex> = coarse
        .pentagons()
        .flat_map(|p| p.grid_disk::<Vec<_>>(2))
        .collect();
    parents.extend(
        (0..5_000)
            .filter_map(|_| rng.point())
            .map(|p| p.to_cell(coarse)),
    );
    let (mut slack, mut ratio) = (0.0f64, 0.0f64);
    for parent in parents {
        let own = outline(parent, 64);
        for child in parent.children(fine) {
            for v in child.boundary().iter() {
                if v.to_cell(coarse) != parent {
                    let out = own
                        .iter()
                        .map(|b| b.distance_m(*v))
                        .fold(f64::MAX, f64::min);
                    slack = slack.max(out);
                    ratio = ratio.max(out / min_edge_m(parent));
                }
            }
        }
    }
    println!(
        "res {} descendants of res {} cells stick out by at most {slack:.1} m ({ratio:.3} of the ancestor's shortest edge)",
        u8::from(fine),
        u8::from(coarse)
    );
}

fn main() {
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    edges_and_gaps(&mut rng);
    descendant_slack(&mut rng, Resolution::Seven, Resolution::Nine);
}
