//! Seeded synthetic points clustered on South Korean cities, for benchmarks and load tests.
//!
//! Behind the `synth` cargo feature so that `rand` is only compiled for those who ask. The same
//! seed always gives the same points (ChaCha8, a portable generator), so figures are comparable
//! across runs and across crates (the API crate's benches reuse it).
//!
//! The mix: ~94% of points fall in Gaussian clusters around 20 cities, weighted roughly by
//! population, and ~6% are spread uniformly over the peninsula's bounding box (rural points and
//! sea, which makes sparse areas exist). Seoul alone holds 30% with a 7 km spread, so a 10 km
//! circle around City Hall holds about 200k of 1M points: the dense case a search must handle.

use crate::LatLng;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A cluster centre: where, how big a share of the points, and how spread out.
#[derive(Debug, Clone, Copy)]
pub struct City {
    /// Name, for reports.
    pub name: &'static str,
    /// Latitude of the centre, degrees.
    pub lat: f64,
    /// Longitude of the centre, degrees.
    pub lng: f64,
    /// Share of all points.
    pub weight: f64,
    /// Standard deviation of the Gaussian spread, metres, along each axis.
    pub sigma_m: f64,
}

const fn city(name: &'static str, lat: f64, lng: f64, weight: f64, sigma_km: f64) -> City {
    City {
        name,
        lat,
        lng,
        weight,
        sigma_m: sigma_km * 1000.0,
    }
}

/// The clusters; weights add up to 1 - [`RURAL_SHARE`].
pub const CITIES: &[City] = &[
    city("Seoul", 37.5665, 126.9780, 0.30, 7.0),
    city("Incheon", 37.4563, 126.7052, 0.06, 5.0),
    city("Suwon", 37.2636, 127.0286, 0.05, 4.0),
    city("Seongnam", 37.4200, 127.1267, 0.04, 3.0),
    city("Goyang", 37.6584, 126.8320, 0.04, 4.0),
    city("Yongin", 37.2411, 127.1776, 0.03, 5.0),
    city("Bucheon", 37.5034, 126.7660, 0.03, 3.0),
    city("Busan", 35.1796, 129.0756, 0.09, 6.0),
    city("Daegu", 35.8714, 128.6014, 0.06, 5.0),
    city("Daejeon", 36.3504, 127.3845, 0.04, 5.0),
    city("Gwangju", 35.1595, 126.8526, 0.04, 5.0),
    city("Ulsan", 35.5384, 129.3114, 0.03, 5.0),
    city("Changwon", 35.2281, 128.6811, 0.025, 5.0),
    city("Cheongju", 36.6424, 127.4890, 0.02, 4.0),
    city("Jeonju", 35.8242, 127.1480, 0.02, 4.0),
    city("Cheonan", 36.8151, 127.1139, 0.02, 4.0),
    city("Pohang", 36.0190, 129.3435, 0.01, 4.0),
    city("Jeju", 33.4996, 126.5312, 0.015, 5.0),
    city("Chuncheon", 37.8813, 127.7298, 0.01, 3.0),
    city("Gangneung", 37.7519, 128.8761, 0.01, 3.0),
];

/// Share of points spread uniformly over [`KOREA_BOX`] instead of around a city.
pub const RURAL_SHARE: f64 = 0.06;

/// `(south, west, north, east)` in degrees: the box rural points are drawn from.
pub const KOREA_BOX: (f64, f64, f64, f64) = (34.5, 126.3, 38.3, 129.4);

const M_PER_DEG_LAT: f64 = 111_195.08;

/// Seoul City Hall, the centre of the densest cluster.
pub fn seoul_city_hall() -> LatLng {
    LatLng::new(CITIES[0].lat, CITIES[0].lng).unwrap_or_else(|_| unreachable!("constant"))
}

/// `n` points with ids `0..n`, reproducible from `seed`.
pub fn korea_points(n: usize, seed: u64) -> Vec<(i64, LatLng)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|i| (i as i64, point(&mut rng, true))).collect()
}

/// `n` query positions near cities (drawn like the points, without the rural share): where users
/// of a local service stand. Reproducible from `seed`.
pub fn korea_queries(n: usize, seed: u64) -> Vec<LatLng> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| point(&mut rng, false)).collect()
}

fn point(rng: &mut ChaCha8Rng, rural: bool) -> LatLng {
    loop {
        let (lat, lng) = if rural && rng.random::<f64>() < RURAL_SHARE {
            let (s, w, n, e) = KOREA_BOX;
            (
                s + (n - s) * rng.random::<f64>(),
                w + (e - w) * rng.random::<f64>(),
            )
        } else {
            let city = pick_city(rng);
            around(rng, city)
        };
        if let Ok(at) = LatLng::new(lat, lng) {
            return at;
        }
    }
}

fn pick_city(rng: &mut ChaCha8Rng) -> &'static City {
    let total: f64 = CITIES.iter().map(|c| c.weight).sum();
    let mut x = rng.random::<f64>() * total;
    for c in CITIES {
        if x < c.weight {
            return c;
        }
        x -= c.weight;
    }
    &CITIES[0]
}

fn around(rng: &mut ChaCha8Rng, c: &City) -> (f64, f64) {
    let (north_m, east_m) = gaussian_pair(rng);
    let lat = c.lat + north_m * c.sigma_m / M_PER_DEG_LAT;
    let lng = c.lng + east_m * c.sigma_m / (M_PER_DEG_LAT * c.lat.to_radians().cos());
    (lat, lng)
}

/// Two independent standard normal draws (Box-Muller).
fn gaussian_pair(rng: &mut ChaCha8Rng) -> (f64, f64) {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1], so ln is finite
    let u2 = rng.random::<f64>();
    let r = (-2.0 * u1.ln()).sqrt();
    let theta = std::f64::consts::TAU * u2;
    (r * theta.cos(), r * theta.sin())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::haversine_m;

    #[test]
    fn the_same_seed_gives_the_same_points() {
        let a = korea_points(1000, 7);
        let b = korea_points(1000, 7);
        assert!(a.iter().zip(&b).all(|(x, y)| x.0 == y.0 && x.1 == y.1));
    }

    #[test]
    fn city_weights_and_the_rural_share_add_up_to_one() {
        let total: f64 = CITIES.iter().map(|c| c.weight).sum::<f64>() + RURAL_SHARE;
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }

    #[test]
    fn seoul_is_dense_enough_that_ten_km_holds_a_fifth_of_the_points() {
        let points = korea_points(20_000, 1);
        let hall = seoul_city_hall();
        let near = points
            .iter()
            .filter(|(_, p)| haversine_m(hall, *p) <= 10_000.0)
            .count();
        assert!(near > 3_000, "{near}");
    }
}
