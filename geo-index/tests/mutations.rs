//! After any sequence of inserts, replacements, moves and removals the index answers exactly like
//! a brute-force scan over a plain map holding the same points.

mod support;

use geo_index::{GeoError, GeoIndex, LatLng, Strategy as Method};
use proptest::prelude::*;
use std::collections::BTreeMap;
use support::{brute_force, offset, place};

#[derive(Debug, Clone)]
enum Op {
    Insert(i64, f64, f64),
    Move(i64, f64, f64),
    Remove(i64),
}

fn op() -> impl Strategy<Value = Op> {
    // Few distinct ids so that replacing, moving and removing existing points is common; offsets
    // in metres around the case's centre, some tiny so points share cells and coordinates.
    let id = 0i64..40;
    let metres = prop_oneof![-200.0f64..200.0, -20_000.0f64..20_000.0];
    prop_oneof![
        (id.clone(), metres.clone(), metres.clone()).prop_map(|(i, n, e)| Op::Insert(i, n, e)),
        (id.clone(), metres.clone(), metres).prop_map(|(i, n, e)| Op::Move(i, n, e)),
        id.prop_map(Op::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn inserts_moves_and_removes_leave_the_index_equal_to_a_brute_force_scan(
        place in place(),
        (lat, lng) in (-90.0f64..=90.0, -180.0f64..=180.0),
        ops in prop::collection::vec(op(), 1..120),
        bulk in any::<bool>(),
        radius_m in prop_oneof![0.0f64..2_000.0, 0.0f64..30_000.0],
        limit in 1usize..30,
    ) {
        let center = place.center(lat, lng);
        let at = |n: f64, e: f64| offset(center.lat(), center.lng(), n, e);
        let mut model: BTreeMap<i64, LatLng> = BTreeMap::new();
        let mut index = if bulk {
            // Start from a bulk build so its layout is mutated too.
            let seed: Vec<(i64, LatLng)> = (40..80).map(|i| (i, at(i as f64 * 37.0, -(i as f64) * 53.0))).collect();
            model.extend(seed.iter().copied());
            GeoIndex::from_points(seed).unwrap()
        } else {
            GeoIndex::new()
        };
        for op in ops {
            match op {
                Op::Insert(id, n, e) => {
                    let p = at(n, e);
                    prop_assert_eq!(index.insert(id, p).unwrap(), model.insert(id, p));
                }
                Op::Move(id, n, e) => {
                    let p = at(n, e);
                    match model.get_mut(&id) {
                        Some(old) => {
                            prop_assert_eq!(index.move_point(id, p).unwrap(), *old);
                            *old = p;
                        }
                        None => prop_assert_eq!(index.move_point(id, p), Err(GeoError::UnknownId(id))),
                    }
                }
                Op::Remove(id) => prop_assert_eq!(index.remove(id), model.remove(&id)),
            }
        }
        prop_assert_eq!(index.len(), model.len());
        for id in 0..80 {
            prop_assert_eq!(index.get(id), model.get(&id).copied());
            prop_assert_eq!(index.contains(id), model.contains_key(&id));
        }
        let points: Vec<(i64, LatLng)> = model.iter().map(|(&id, &p)| (id, p)).collect();
        let query = at(150.0, -75.0);
        let all = brute_force(&points, query, radius_m, |_| true);
        let mut strategies = vec![Method::Auto, Method::Scan, Method::Coarse];
        if radius_m <= 8_000.0 {
            strategies.push(Method::Fine);
        }
        for s in strategies {
            let search = index.using(s);
            prop_assert_eq!(&search.within(query, radius_m, |_| true).unwrap(), &all, "{:?}", s);
            let nearest = search.nearest(query, radius_m, limit, None, |_| true).unwrap();
            prop_assert_eq!(&nearest[..], &all[..all.len().min(limit)], "{:?}", s);
        }
    }
}

#[test]
fn a_later_duplicate_id_wins_in_a_bulk_build() {
    let seoul = support::ll(37.5665, 126.978);
    let busan = support::ll(35.1796, 129.0756);
    let index = GeoIndex::from_points([(1, seoul), (2, seoul), (1, busan)]).unwrap();
    assert_eq!(index.len(), 2);
    assert_eq!(index.get(1), Some(busan));
    let index = GeoIndex::from_points([(1, busan), (1, seoul)]).unwrap();
    assert_eq!(index.get(1), Some(seoul));
}

#[test]
fn inserting_an_existing_id_moves_it_and_returns_the_old_position() {
    let mut index = GeoIndex::new();
    let (a, b) = (support::ll(10.0, 10.0), support::ll(-10.0, -10.0));
    assert_eq!(index.insert(7, a).unwrap(), None);
    assert_eq!(index.insert(7, b).unwrap(), Some(a));
    assert_eq!(index.len(), 1);
    assert_eq!(index.within(b, 0.0, |_| true).unwrap().len(), 1);
    assert!(index.within(a, 1_000.0, |_| true).unwrap().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn a_bulk_build_equals_inserting_one_by_one(
        place in place(),
        (lat, lng) in (-90.0f64..=90.0, -180.0f64..=180.0),
        input in prop::collection::vec((0i64..30, -5_000.0f64..5_000.0, -5_000.0f64..5_000.0), 0..80),
    ) {
        let center = place.center(lat, lng);
        let points: Vec<(i64, LatLng)> =
            input.iter().map(|&(id, n, e)| (id, offset(center.lat(), center.lng(), n, e))).collect();
        let bulk = GeoIndex::from_points(points.iter().copied()).unwrap();
        let mut one_by_one = GeoIndex::new();
        for &(id, at) in &points {
            one_by_one.insert(id, at).unwrap();
        }
        prop_assert_eq!(bulk.len(), one_by_one.len());
        for id in 0..30 {
            prop_assert_eq!(bulk.get(id), one_by_one.get(id));
        }
        let a = bulk.within(center, 8_000.0, |_| true).unwrap();
        let b = one_by_one.using(Method::Scan).within(center, 8_000.0, |_| true).unwrap();
        prop_assert_eq!(a, b);
    }
}
