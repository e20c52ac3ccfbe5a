//! Areas people watch (a circle or a polygon) and the H3 cells that cover them, so "which areas
//! contain this point" reads the few areas listed under the point's cell instead of every area.
//!
//! An area is covered by cells at [`AREA_RESOLUTION`]; each covering cell is either *interior*
//! (wholly inside the area: any point in it matches without a test) or *edge* (partly inside:
//! a point there needs the exact [`Area::contains`]). The cover is complete: a point inside the
//! area always lies in one of its cells.

use geo::{Coord, Intersects, LineString, Point, Polygon, Validation};
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, Resolution};

use crate::{haversine_m, LatLng};

/// The resolution of area cells: about 0.74 km² a cell, so a 10 km circle is some 450 cells and a
/// neighbourhood (동) boundary a handful.
pub const AREA_RESOLUTION: Resolution = Resolution::Eight;
/// The largest circle radius.
pub const MAX_RADIUS_M: f64 = 10_000.0;
/// The most vertices a polygon may have (all rings together).
pub const MAX_VERTICES: usize = 1_000;
/// The most cells an area may cover (about 37,000 km²): bigger shapes are refused, so one
/// wishlist cannot cost a province's worth of rows.
pub const MAX_CELLS: usize = 50_000;
/// Slack for the circle's cell tests: distances on the sphere are computed, not exact.
const MARGIN_M: f64 = 5.0;

/// Why an area was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AreaError {
    #[error("the centre is not a valid coordinate")]
    Center,
    #[error("the radius must be more than 0 and at most {MAX_RADIUS_M} m")]
    Radius,
    #[error("a polygon has at most {MAX_VERTICES} vertices")]
    TooManyVertices,
    #[error(
        "a ring needs at least 4 positions, the last equal to the first, with valid coordinates"
    )]
    Ring,
    #[error("the polygon is invalid (self-intersecting, or with holes outside it): {0}")]
    Invalid(String),
    #[error("the area is too large (over {MAX_CELLS} cells)")]
    TooLarge,
}

/// A checked area: a circle on the sphere, or a valid polygon in degrees (x = lng, y = lat).
#[derive(Debug, Clone, PartialEq)]
pub enum Area {
    Circle { center: LatLng, radius_m: f64 },
    Polygon(Polygon<f64>),
}

/// One cell covering an area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaCell {
    /// The H3 cell index (its top bit is always 0, so it fits an `i64`).
    pub cell: u64,
    /// Only partly inside: a point in it needs [`Area::contains`].
    pub edge: bool,
}

impl Area {
    /// A circle of `radius_m` metres (0 < r ≤ [`MAX_RADIUS_M`]) around `(lat, lng)`.
    pub fn circle(lat: f64, lng: f64, radius_m: f64) -> Result<Self, AreaError> {
        let center = LatLng::new(lat, lng).map_err(|_| AreaError::Center)?;
        if !(radius_m.is_finite() && radius_m > 0.0 && radius_m <= MAX_RADIUS_M) {
            return Err(AreaError::Radius);
        }
        Ok(Area::Circle { center, radius_m })
    }

    /// A polygon from GeoJSON rings of `[lng, lat]` positions: the first is the outline, the
    /// others holes. Each ring is closed (last position equal to the first); the polygon must be
    /// valid (no self-intersection, holes inside the outline).
    pub fn polygon(rings: &[Vec<[f64; 2]>]) -> Result<Self, AreaError> {
        let vertices: usize = rings.iter().map(Vec::len).sum();
        if vertices > MAX_VERTICES {
            return Err(AreaError::TooManyVertices);
        }
        let mut lines = rings.iter().map(|ring| line(ring));
        let exterior = lines.next().ok_or(AreaError::Ring)??;
        let holes = lines.collect::<Result<Vec<_>, _>>()?;
        let polygon = Polygon::new(exterior, holes);
        if let Err(err) = polygon.check_validation() {
            return Err(AreaError::Invalid(err.to_string()));
        }
        // Too large a shape is refused by `cells`, which storing it computes.
        Ok(Area::Polygon(polygon))
    }

    /// Whether `(lat, lng)` is inside the area (its boundary included).
    pub fn contains(&self, point: LatLng) -> bool {
        match self {
            Area::Circle { center, radius_m } => haversine_m(*center, point) <= *radius_m,
            Area::Polygon(polygon) => polygon.intersects(&Point::new(point.lng(), point.lat())),
        }
    }

    /// The cells covering the area, each interior or edge.
    pub fn cells(&self) -> Result<Vec<AreaCell>, AreaError> {
        let cells = match self {
            Area::Circle { center, radius_m } => circle_cells(*center, *radius_m),
            Area::Polygon(polygon) => {
                let mut tiler = TilerBuilder::new(AREA_RESOLUTION)
                    .containment_mode(ContainmentMode::Covers)
                    .build();
                tiler
                    .add(polygon.clone())
                    .map_err(|e| AreaError::Invalid(e.to_string()))?;
                if tiler.coverage_size_hint() > 4 * MAX_CELLS {
                    return Err(AreaError::TooLarge);
                }
                tiler
                    .into_annotated_coverage()
                    .map(|c| AreaCell {
                        cell: u64::from(c.cell),
                        edge: !c.is_fully_contained,
                    })
                    .collect()
            }
        };
        if cells.len() > MAX_CELLS {
            return Err(AreaError::TooLarge);
        }
        Ok(cells)
    }
}

/// The cell at [`AREA_RESOLUTION`] holding `point`, as stored next to the areas.
pub fn area_cell_of(point: LatLng) -> u64 {
    u64::from(point.cell(AREA_RESOLUTION))
}

fn line(ring: &[[f64; 2]]) -> Result<LineString<f64>, AreaError> {
    let valid = ring.len() >= 4
        && ring.first() == ring.last()
        && ring
            .iter()
            .all(|[lng, lat]| LatLng::new(*lat, *lng).is_ok());
    if !valid {
        return Err(AreaError::Ring);
    }
    Ok(LineString::new(
        ring.iter().map(|[x, y]| Coord { x: *x, y: *y }).collect(),
    ))
}

/// The cells of a disk around the centre's cell wide enough to hold the circle, each kept when
/// it can hold a point of the circle and marked interior when its whole boundary is inside.
fn circle_cells(center: LatLng, radius_m: f64) -> Vec<AreaCell> {
    let origin = center.cell(AREA_RESOLUTION);
    // Neighbouring resolution-8 centres are at least ~0.6 km apart, so a cell k steps away lies
    // at least ~0.5·k km off: this k reaches past the radius plus a cell's own reach.
    let k = ((radius_m + 1_000.0) / 450.0).ceil() as u32 + 1;
    let disk: Vec<CellIndex> = origin.grid_disk(k);
    disk.into_iter()
        .filter_map(|cell| {
            let middle = to_latlng(h3o::LatLng::from(cell));
            let corners: Vec<f64> = cell
                .boundary()
                .iter()
                .map(|v| haversine_m(center, to_latlng(*v)))
                .collect();
            let reach = cell
                .boundary()
                .iter()
                .map(|v| haversine_m(middle, to_latlng(*v)))
                .fold(0.0, f64::max);
            let near = haversine_m(center, middle) - reach - MARGIN_M <= radius_m;
            let inside = corners.iter().all(|d| *d + MARGIN_M <= radius_m);
            near.then_some(AreaCell {
                cell: u64::from(cell),
                edge: !inside,
            })
        })
        .collect()
}

fn to_latlng(p: h3o::LatLng) -> LatLng {
    LatLng::from_h3(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lng: f64) -> LatLng {
        LatLng::new(lat, lng).unwrap()
    }

    /// A square of side ~1.1 km (0.01°) at Seoul's latitude with a notch cut from its top edge
    /// (concave).
    fn notched() -> Vec<Vec<[f64; 2]>> {
        vec![vec![
            [127.00, 37.50],
            [127.02, 37.50],
            [127.02, 37.52],
            [127.015, 37.52],
            [127.01, 37.505],
            [127.005, 37.52],
            [127.00, 37.52],
            [127.00, 37.50],
        ]]
    }

    /// Every point the area contains lies in a cell of its cover, and interior cells hold only
    /// points it contains.
    fn check_cover(area: &Area, lat0: f64, lng0: f64, span: f64) {
        let cells = area.cells().unwrap();
        let find = |p: LatLng| cells.iter().find(|c| c.cell == area_cell_of(p));
        let steps = 60;
        for i in 0..=steps {
            for j in 0..=steps {
                let p = at(
                    lat0 + span * f64::from(i) / f64::from(steps),
                    lng0 + span * f64::from(j) / f64::from(steps),
                );
                match find(p) {
                    None => assert!(!area.contains(p), "{p:?} inside but in no cell"),
                    Some(c) if !c.edge => assert!(area.contains(p), "{p:?} in an interior cell"),
                    Some(_) => {}
                }
            }
        }
    }

    #[test]
    fn a_circle_contains_what_is_within_its_radius_and_covers_it() {
        let area = Area::circle(37.5, 127.0, 3_000.0).unwrap();
        assert!(area.contains(at(37.5, 127.0)));
        assert!(area.contains(at(37.52, 127.0))); // ~2.2 km north
        assert!(!area.contains(at(37.528, 127.0))); // ~3.1 km north
        check_cover(&area, 37.46, 126.95, 0.1);
        let cells = area.cells().unwrap();
        assert!(cells.iter().any(|c| !c.edge) && cells.iter().any(|c| c.edge));
    }

    #[test]
    fn a_concave_polygon_excludes_its_notch_and_what_is_just_outside_an_edge() {
        let area = Area::polygon(&notched()).unwrap();
        assert!(area.contains(at(37.51, 127.003)));
        assert!(area.contains(at(37.503, 127.01)), "below the notch's tip");
        assert!(!area.contains(at(37.515, 127.01)), "in the notch");
        assert!(
            !area.contains(at(37.51, 127.0201)),
            "just east of the east edge"
        );
        check_cover(&area, 37.495, 126.995, 0.03);
    }

    #[test]
    fn bad_shapes_are_refused_with_the_reason() {
        assert_eq!(Area::circle(37.5, 127.0, 0.0), Err(AreaError::Radius));
        assert_eq!(Area::circle(37.5, 127.0, 10_001.0), Err(AreaError::Radius));
        assert_eq!(Area::circle(91.0, 127.0, 10.0), Err(AreaError::Center));
        let bowtie = vec![vec![
            [127.0, 37.5],
            [127.01, 37.51],
            [127.01, 37.5],
            [127.0, 37.51],
            [127.0, 37.5],
        ]];
        assert!(matches!(Area::polygon(&bowtie), Err(AreaError::Invalid(_))));
        let open = vec![vec![[127.0, 37.5], [127.01, 37.51], [127.01, 37.5]]];
        assert_eq!(Area::polygon(&open), Err(AreaError::Ring));
        let many: Vec<[f64; 2]> = (0..=1_000)
            .map(|i| {
                let t = f64::from(i) / 1_000.0 * std::f64::consts::TAU;
                [127.0 + 0.01 * t.cos(), 37.5 + 0.01 * t.sin()]
            })
            .collect();
        assert_eq!(Area::polygon(&[many]), Err(AreaError::TooManyVertices));
        let korea = vec![vec![
            [124.0, 33.0],
            [131.0, 33.0],
            [131.0, 39.0],
            [124.0, 39.0],
            [124.0, 33.0],
        ]];
        assert_eq!(
            Area::polygon(&korea).unwrap().cells(),
            Err(AreaError::TooLarge)
        );
    }
}
