//! The fact the whole search rests on: a point filed under a cell `k` grid steps from the query's
//! cell is at least `ring_lower_bound_m(level, k)` away. Checked geometrically where H3 is most
//! distorted (pentagons, icosahedron edges), at the poles, across the antimeridian and in Korea,
//! and on random point pairs.

mod support;

use geo_index::{haversine_m, ring_lower_bound_m, LatLng, COARSE_RESOLUTION, FINE_RESOLUTION};
use h3o::{CellIndex, Resolution};
use proptest::prelude::*;
use std::collections::HashMap;
use support::{ll, offset, place, wrap};

fn cell(p: LatLng, res: Resolution) -> CellIndex {
    h3o::LatLng::new(p.lat(), p.lng()).unwrap().to_cell(res)
}

/// Where the index files a point at a level: its fine cell, or that cell's coarse parent.
fn bucket(p: LatLng, fine: bool) -> CellIndex {
    let f = cell(p, FINE_RESOLUTION);
    if fine {
        f
    } else {
        f.parent(COARSE_RESOLUTION).unwrap()
    }
}

fn res(fine: bool) -> Resolution {
    if fine {
        FINE_RESOLUTION
    } else {
        COARSE_RESOLUTION
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_point_filed_k_rings_away_is_closer_than_the_ring_lower_bound(
        place in place(),
        (lat, lng) in (-90.0f64..=90.0, -180.0f64..=180.0),
        (n1, e1) in (-1.0f64..1.0, -1.0f64..1.0),
        (angle, reach) in (0.0f64..std::f64::consts::TAU, 0.0f64..1.0),
        fine in any::<bool>(),
    ) {
        let scale = if fine { 1_000.0 } else { 6_000.0 };
        let c = place.center(lat, lng);
        let p = offset(c.lat(), c.lng(), n1 * scale, e1 * scale);
        let q = offset(p.lat(), p.lng(), reach * scale * angle.sin(), reach * scale * angle.cos());
        let origin = cell(p, res(fine));
        let target = bucket(q, fine);
        if let Some((_, k)) = origin.grid_disk_distances_safe(12).find(|(c, _)| *c == target) {
            let d = haversine_m(p, q);
            prop_assert!(d >= ring_lower_bound_m(fine, k), "{p:?} -> {q:?}: ring {k}, {d} m");
        }
    }
}

/// Boundary of `cell` sampled at its vertices and along each edge.
fn boundary_samples(cell: CellIndex) -> Vec<LatLng> {
    let v: Vec<h3o::LatLng> = cell.boundary().iter().copied().collect();
    let mut out = Vec::new();
    for (i, a) in v.iter().enumerate() {
        let b = v[(i + 1) % v.len()];
        let dlng = wrap(b.lng() - a.lng());
        for t in [0.0, 0.25, 0.5, 0.75] {
            out.push(ll(
                a.lat() + (b.lat() - a.lat()) * t,
                wrap(a.lng() + dlng * t),
            ));
        }
    }
    out
}

/// Samples of the region whose points are filed under `parent` at the coarse level: its own
/// outline plus the outlines of its fine descendants that stick out of it.
fn filed_region_samples(parent: CellIndex) -> Vec<LatLng> {
    let mut out = boundary_samples(parent);
    for child in parent.children(FINE_RESOLUTION) {
        let sticks_out = child
            .boundary()
            .iter()
            .any(|v| v.to_cell(COARSE_RESOLUTION) != parent);
        if sticks_out {
            out.extend(boundary_samples(child));
        }
    }
    out
}

/// Smallest sampled distance between two sets of points.
fn gap_m(a: &[LatLng], b: &[LatLng]) -> f64 {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| haversine_m(*x, *y)))
        .fold(f64::INFINITY, f64::min)
}

/// Cells to test from: around every pentagon, on icosahedron edges, at the poles, on the
/// antimeridian and in Seoul.
fn distorted_origins(res: Resolution, around_pentagons: u32) -> Vec<CellIndex> {
    let mut origins: Vec<CellIndex> = res
        .pentagons()
        .flat_map(|p| p.grid_disk::<Vec<_>>(around_pentagons))
        .collect();
    for p in support::icosahedron_edge_points().into_iter().step_by(9) {
        origins.push(cell(p, res));
    }
    for (lat, lng) in [
        (89.99, 0.0),
        (-89.99, 45.0),
        (0.0, 179.999),
        (37.5665, 126.978),
    ] {
        origins.push(cell(ll(lat, lng), res));
    }
    origins
}

#[test]
fn fine_cells_k_rings_apart_are_never_closer_than_the_fine_lower_bound() {
    for origin in distorted_origins(FINE_RESOLUTION, 1) {
        let near = boundary_samples(origin);
        for (other, k) in origin.grid_disk_distances::<Vec<_>>(3) {
            if k >= 2 {
                let gap = gap_m(&near, &boundary_samples(other));
                let bound = ring_lower_bound_m(true, k);
                assert!(
                    gap >= bound,
                    "{origin} -> {other} ring {k}: gap {gap} m < bound {bound} m"
                );
            }
        }
    }
}

#[test]
fn points_filed_under_coarse_cells_k_rings_apart_are_never_closer_than_the_coarse_lower_bound() {
    let mut regions: HashMap<CellIndex, Vec<LatLng>> = HashMap::new();
    for origin in distorted_origins(COARSE_RESOLUTION, 0) {
        let near = boundary_samples(origin);
        for (other, k) in origin.grid_disk_distances::<Vec<_>>(3) {
            if k >= 2 {
                let far = regions
                    .entry(other)
                    .or_insert_with(|| filed_region_samples(other));
                let gap = gap_m(&near, far);
                let bound = ring_lower_bound_m(false, k);
                assert!(
                    gap >= bound,
                    "{origin} -> {other} ring {k}: gap {gap} m < bound {bound} m"
                );
            }
        }
    }
}
