//! Bad input is an error naming what was wrong, never a panic.

use geo_index::{Cursor, GeoError, GeoIndex, LatLng, Strategy};

fn seoul() -> LatLng {
    LatLng::new(37.5665, 126.978).unwrap()
}

fn index() -> GeoIndex {
    GeoIndex::from_points([(1, seoul())]).unwrap()
}

#[test]
fn coordinates_out_of_range_or_not_finite_are_refused() {
    assert_eq!(LatLng::new(91.0, 0.0), Err(GeoError::InvalidLatitude(91.0)));
    assert_eq!(
        LatLng::new(-90.1, 0.0),
        Err(GeoError::InvalidLatitude(-90.1))
    );
    assert_eq!(
        LatLng::new(0.0, 180.5),
        Err(GeoError::InvalidLongitude(180.5))
    );
    assert_eq!(
        LatLng::new(0.0, f64::NEG_INFINITY),
        Err(GeoError::InvalidLongitude(f64::NEG_INFINITY))
    );
    assert!(matches!(LatLng::new(f64::NAN, 0.0), Err(GeoError::InvalidLatitude(x)) if x.is_nan()));
}

#[test]
fn a_negative_or_non_finite_radius_is_refused_by_every_search() {
    let index = index();
    for radius in [-1.0, -0.0001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        for strategy in [
            Strategy::Auto,
            Strategy::Scan,
            Strategy::Coarse,
            Strategy::Fine,
        ] {
            let search = index.using(strategy);
            let nearest = search.nearest(seoul(), radius, 10, None, |_| true);
            assert!(
                matches!(nearest, Err(GeoError::InvalidRadius(_))),
                "{radius} {strategy:?}"
            );
            let within = search.within(seoul(), radius, |_| true);
            assert!(
                matches!(within, Err(GeoError::InvalidRadius(_))),
                "{radius} {strategy:?}"
            );
        }
    }
}

#[test]
fn a_cursor_with_an_impossible_distance_is_refused() {
    let index = index();
    for distance_m in [f64::NAN, -5.0, f64::INFINITY] {
        let cursor = Cursor { distance_m, id: 1 };
        let got = index.nearest(seoul(), 1_000.0, 10, Some(cursor), |_| true);
        assert!(
            matches!(got, Err(GeoError::InvalidCursor(_))),
            "{distance_m}"
        );
    }
}

#[test]
fn moving_an_unknown_id_is_an_error_and_changes_nothing() {
    let mut index = index();
    assert_eq!(index.move_point(2, seoul()), Err(GeoError::UnknownId(2)));
    assert_eq!(index.len(), 1);
    assert!(!index.contains(2));
}

#[test]
fn removing_an_unknown_id_returns_none() {
    let mut index = index();
    assert_eq!(index.remove(2), None);
    assert_eq!(index.remove(1), Some(seoul()));
    assert!(index.is_empty());
}

#[test]
fn a_zero_limit_or_an_empty_index_gives_no_hits() {
    assert!(index()
        .nearest(seoul(), 1_000.0, 0, None, |_| true)
        .unwrap()
        .is_empty());
    let empty = GeoIndex::new();
    assert!(empty
        .nearest(seoul(), 1_000.0, 5, None, |_| true)
        .unwrap()
        .is_empty());
    assert!(empty.within(seoul(), 1_000.0, |_| true).unwrap().is_empty());
}

#[test]
fn errors_say_what_was_wrong() {
    assert_eq!(
        GeoError::InvalidRadius(-3.0).to_string(),
        "radius -3 m is not a finite, non-negative number of metres"
    );
    assert!(GeoError::InvalidLatitude(95.0)
        .to_string()
        .contains("latitude 95"));
}
