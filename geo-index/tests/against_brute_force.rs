//! Every search, by every strategy, equals a brute-force haversine scan over the same points:
//! worldwide, across the antimeridian, at the poles, on H3 pentagons and icosahedron edges, in
//! dense Korean clusters, with duplicates, filters and paging.

mod support;

use geo_index::{Cursor, GeoIndex, Hit, Strategy};
use proptest::prelude::*;
use support::{brute_force, cloud, offset, Cloud};

/// Strategies worth running for a radius: walking fine rings out to tens of km is correct but
/// too slow for a debug-build test, so `Fine` is pinned only for smaller radii (`Auto` still
/// picks it wherever it is cheap).
fn strategies(radius_m: f64) -> Vec<Strategy> {
    let mut all = vec![Strategy::Auto, Strategy::Scan, Strategy::Coarse];
    if radius_m <= 8_000.0 {
        all.push(Strategy::Fine);
    }
    all
}

fn query_center(c: &Cloud, north: f64, east: f64) -> geo_index::LatLng {
    offset(c.center.lat(), c.center.lng(), north, east)
}

fn radius() -> impl proptest::strategy::Strategy<Value = f64> {
    prop_oneof![Just(0.0), 0.0f64..1_000.0, 0.0f64..50_000.0]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn nearest_equals_the_first_hits_of_a_brute_force_scan(
        c in cloud(160),
        (north, east) in (-20_000.0f64..20_000.0, -20_000.0f64..20_000.0),
        radius_m in radius(),
        limit in 1usize..40,
        modulus in 1i64..4,
    ) {
        let index = GeoIndex::from_points(c.points.iter().copied()).unwrap();
        let center = query_center(&c, north, east);
        let keep = |id: i64| id.rem_euclid(modulus) == 0;
        let mut expected = brute_force(&c.points, center, radius_m, keep);
        expected.truncate(limit);
        for s in strategies(radius_m) {
            let got = index.using(s).nearest(center, radius_m, limit, None, keep).unwrap();
            prop_assert_eq!(&got, &expected, "strategy {:?}", s);
        }
    }

    #[test]
    fn within_equals_a_brute_force_scan(
        c in cloud(160),
        (north, east) in (-20_000.0f64..20_000.0, -20_000.0f64..20_000.0),
        radius_m in radius(),
        modulus in 1i64..3,
    ) {
        let index = GeoIndex::from_points(c.points.iter().copied()).unwrap();
        let center = query_center(&c, north, east);
        let keep = |id: i64| id.rem_euclid(modulus) == 0;
        let expected = brute_force(&c.points, center, radius_m, keep);
        for s in strategies(radius_m) {
            let got = index.using(s).within(center, radius_m, keep).unwrap();
            prop_assert_eq!(&got, &expected, "strategy {:?}", s);
        }
    }

    #[test]
    fn nearest_pages_never_repeat_or_skip(
        c in cloud(120),
        (north, east) in (-5_000.0f64..5_000.0, -5_000.0f64..5_000.0),
        radius_m in radius(),
        page in 1usize..9,
        fine in any::<bool>(),
    ) {
        let index = GeoIndex::from_points(c.points.iter().copied()).unwrap();
        let center = query_center(&c, north, east);
        let expected = brute_force(&c.points, center, radius_m, |_| true);
        let strategy = if fine && radius_m <= 8_000.0 { Strategy::Fine } else { Strategy::Auto };
        let mut pages: Vec<Hit> = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let got = index.using(strategy).nearest(center, radius_m, page, after, |_| true).unwrap();
            prop_assert!(got.len() <= page);
            pages.extend(&got);
            match got.last() {
                Some(last) if got.len() == page => after = Some(last.cursor()),
                _ => break,
            }
        }
        prop_assert_eq!(pages, expected);
    }
}
