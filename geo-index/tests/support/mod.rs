//! Shared test support: places where H3 or spherical geometry is awkward, point generators, and
//! the brute-force reference every search is compared with.

#![allow(dead_code)] // each test binary uses a different part

use geo_index::{haversine_m, Hit, LatLng};
use h3o::Resolution;
use proptest::prelude::*;

/// Metres per degree of latitude on the index's sphere.
pub const M_PER_DEG: f64 = 111_195.08;

pub fn ll(lat: f64, lng: f64) -> LatLng {
    LatLng::new(lat, lng).expect("test coordinate in range")
}

/// Moves `north_m` then `east_m` from `(lat, lng)` on a flat local approximation, folding over the
/// poles and wrapping the antimeridian so the result is always a valid coordinate.
pub fn offset(lat: f64, lng: f64, north_m: f64, east_m: f64) -> LatLng {
    let mut lat2 = lat + north_m / M_PER_DEG;
    let mut lng2 = lng;
    if lat2 > 90.0 {
        lat2 = 180.0 - lat2;
        lng2 += 180.0;
    } else if lat2 < -90.0 {
        lat2 = -180.0 - lat2;
        lng2 += 180.0;
    }
    let cos = lat.to_radians().cos().max(1e-3);
    lng2 += (east_m / (M_PER_DEG * cos)).clamp(-179.0, 179.0);
    ll(lat2.clamp(-90.0, 90.0), wrap(lng2))
}

pub fn wrap(lng: f64) -> f64 {
    let mut x = lng;
    while x > 180.0 {
        x -= 360.0;
    }
    while x < -180.0 {
        x += 360.0;
    }
    x
}

fn unit(p: LatLng) -> [f64; 3] {
    let (la, lo) = (p.lat().to_radians(), p.lng().to_radians());
    [la.cos() * lo.cos(), la.cos() * lo.sin(), la.sin()]
}

fn from_unit(v: [f64; 3]) -> LatLng {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    let lat = (v[2] / n).clamp(-1.0, 1.0).asin().to_degrees();
    ll(lat.clamp(-90.0, 90.0), wrap(v[1].atan2(v[0]).to_degrees()))
}

/// Centres of the pentagons at `res` (the icosahedron's vertices, where H3 cells are smallest and
/// `grid_ring_fast` gives up).
pub fn pentagon_centers(res: Resolution) -> Vec<LatLng> {
    res.pentagons()
        .map(|cell| {
            let c = h3o::LatLng::from(cell);
            ll(c.lat(), c.lng())
        })
        .collect()
}

/// Points on the icosahedron's edges (great circles between neighbouring vertices), where class III
/// cells straddle two faces.
pub fn icosahedron_edge_points() -> Vec<LatLng> {
    let vertices = pentagon_centers(Resolution::Zero);
    let mut out = Vec::new();
    for (i, a) in vertices.iter().enumerate() {
        for b in &vertices[i + 1..] {
            if haversine_m(*a, *b) < 7_500_000.0 {
                let (u, v) = (unit(*a), unit(*b));
                for t in [0.13, 0.5, 0.77] {
                    out.push(from_unit([0, 1, 2].map(|k| u[k] * (1.0 - t) + v[k] * t)));
                }
            }
        }
    }
    out
}

/// Centres of South Korean cities, where real data clusters.
pub const KOREA: [(f64, f64); 6] = [
    (37.5665, 126.9780),
    (35.1796, 129.0756),
    (37.4563, 126.7052),
    (35.8714, 128.6014),
    (36.3504, 127.3845),
    (33.4996, 126.5312),
];

/// Where a test case is centred.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    Anywhere,
    Antimeridian,
    NorthPole,
    SouthPole,
    Pentagon(usize),
    IcosahedronEdge(usize),
    Korea(usize),
}

impl Place {
    pub fn center(self, lat: f64, lng: f64) -> LatLng {
        match self {
            Place::Anywhere => ll(lat, lng),
            Place::Antimeridian => ll(lat * 0.8, if lng >= 0.0 { 179.99 } else { -179.99 }),
            Place::NorthPole => ll(89.95, lng),
            Place::SouthPole => ll(-89.95, lng),
            Place::Pentagon(i) => {
                let res = if i % 2 == 0 {
                    Resolution::Seven
                } else {
                    Resolution::Nine
                };
                let p = pentagon_centers(res);
                p[i / 2 % p.len()]
            }
            Place::IcosahedronEdge(i) => {
                let e = icosahedron_edge_points();
                e[i % e.len()]
            }
            Place::Korea(i) => ll(KOREA[i % KOREA.len()].0, KOREA[i % KOREA.len()].1),
        }
    }
}

pub fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        Just(Place::Anywhere),
        Just(Place::Antimeridian),
        Just(Place::NorthPole),
        Just(Place::SouthPole),
        (0usize..24).prop_map(Place::Pentagon),
        (0usize..90).prop_map(Place::IcosahedronEdge),
        (0usize..6).prop_map(Place::Korea),
    ]
}

/// A cloud of `(id, position)` around a place: Gaussian-ish offsets at a few scales, with some
/// exact duplicates of earlier coordinates, and ids that are not in insertion order.
#[derive(Debug, Clone)]
pub struct Cloud {
    pub center: LatLng,
    pub points: Vec<(i64, LatLng)>,
}

pub fn cloud(max_points: usize) -> impl Strategy<Value = Cloud> {
    let offsets = prop::collection::vec(
        (
            -1.0f64..1.0,
            -1.0f64..1.0,
            prop_oneof![Just(300.0), Just(3_000.0), Just(30_000.0)],
            0u8..10,
        ),
        1..max_points,
    );
    (
        place(),
        -90.0f64..=90.0,
        -180.0f64..=180.0,
        offsets,
        any::<u32>(),
    )
        .prop_map(|(place, lat, lng, offsets, salt)| {
            let center = place.center(lat, lng);
            let mut points: Vec<(i64, LatLng)> = Vec::new();
            for (i, (n, e, scale, dup)) in offsets.into_iter().enumerate() {
                let id = (i as i64 * 7919 + i64::from(salt)) % 100_003 - 50_000;
                let at = if dup == 0 && !points.is_empty() {
                    points[(i * 31) % points.len()].1 // same coordinates as an earlier point
                } else {
                    offset(center.lat(), center.lng(), n * scale, e * scale)
                };
                points.push((id, at));
            }
            // Ids must be unique in a test cloud; keep the last of each.
            let mut seen = std::collections::HashSet::new();
            points.reverse();
            points.retain(|(id, _)| seen.insert(*id));
            points.reverse();
            Cloud { center, points }
        })
}

/// The reference: every point within `radius_m` of `center` that passes `filter`, by
/// `(distance, id)`.
pub fn brute_force(
    points: &[(i64, LatLng)],
    center: LatLng,
    radius_m: f64,
    filter: impl Fn(i64) -> bool,
) -> Vec<Hit> {
    let mut hits: Vec<Hit> = points
        .iter()
        .map(|&(id, at)| Hit {
            id,
            distance_m: haversine_m(center, at),
        })
        .filter(|h| h.distance_m <= radius_m && filter(h.id))
        .collect();
    hits.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.id.cmp(&b.id)));
    hits
}
