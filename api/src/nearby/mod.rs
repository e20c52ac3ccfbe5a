//! "Near me": open parties and markets within a radius, nearest first, answered from the
//! in-memory geo index of this instance.

pub mod index;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use geo_index::{Cursor, GeoError, LatLng};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use index::NearbyIndex;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Query;
use crate::markets::MarketView;
use crate::paging::{self, optional_text, Page};
use crate::parties::PartyView;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_nearby_parties))
        .routes(routes!(list_nearby_markets))
}

pub const DEFAULT_RADIUS_M: f64 = 10_000.0;
pub const MAX_RADIUS_M: f64 = 50_000.0;

/// Encodes a `(distance, id)` paging position as an opaque string.
fn encode_cursor(c: Cursor) -> String {
    format!("g{:x}.{:x}", c.distance_m.to_bits(), c.id)
}

fn decode_cursor(raw: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::malformed(Some("cursor".into()), "cursor is not one this API returned");
    let (bits, id) = raw
        .strip_prefix('g')
        .and_then(|r| r.split_once('.'))
        .ok_or_else(bad)?;
    let distance = store::cursor::strict_hex(bits)
        .map(f64::from_bits)
        .ok_or_else(bad)?;
    let id = store::cursor::strict_hex(id)
        .and_then(|id| i64::try_from(id).ok())
        .ok_or_else(bad)?;
    Cursor::new(distance, id).map(Some).map_err(|_| bad())
}

/// Where and how far to search: shared by both endpoints.
struct Area {
    center: LatLng,
    radius_m: f64,
    limit: usize,
    after: Option<Cursor>,
}

fn area(
    lat: Option<f64>,
    lng: Option<f64>,
    radius_m: Option<f64>,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<Area, ApiError> {
    let lat = lat.ok_or_else(|| ApiError::invalid("lat", "lat is required"))?;
    let lng = lng.ok_or_else(|| ApiError::invalid("lng", "lng is required"))?;
    let center = LatLng::new(lat, lng).map_err(|e| match e {
        GeoError::InvalidLatitude(_) => {
            ApiError::invalid("lat", "lat must be a number between -90 and 90")
        }
        _ => ApiError::invalid("lng", "lng must be a number between -180 and 180"),
    })?;
    let radius_m = radius_m.unwrap_or(DEFAULT_RADIUS_M);
    if !(0.0..=MAX_RADIUS_M).contains(&radius_m) {
        return Err(ApiError::invalid(
            "radius_m",
            format!("radius_m must be between 0 and {MAX_RADIUS_M}"),
        ));
    }
    Ok(Area {
        center,
        radius_m,
        limit: paging::limit(limit)?,
        after: decode_cursor(cursor)?,
    })
}

fn geo_failure(err: GeoError) -> ApiError {
    match err {
        GeoError::InvalidCursor(_) => {
            ApiError::malformed(Some("cursor".into()), "cursor is not one this API returned")
        }
        GeoError::InvalidRadius(_) => {
            ApiError::invalid("radius_m", "radius_m must be a non-negative number")
        }
        other => ApiError::internal(other),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearbyPartyQuery {
    /// Latitude of the search centre, degrees.
    #[param(required = true, minimum = -90, maximum = 90)]
    lat: Option<f64>,
    /// Longitude of the search centre, degrees.
    #[param(required = true, minimum = -180, maximum = 180)]
    lng: Option<f64>,
    /// Search radius in metres, 0 to 50000, default 10000.
    #[param(minimum = 0, maximum = 50000)]
    radius_m: Option<f64>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
    /// Only parties for this item.
    item_id: Option<i64>,
    /// Only parties whose item's category code starts with this.
    #[param(max_length = 9)]
    category: Option<String>,
    /// Include full parties (default: recruiting only).
    include_full: Option<bool>,
}

/// A party and how far it is.
#[derive(Serialize, ToSchema)]
pub struct NearbyParty {
    #[serde(flatten)]
    pub party: PartyView,
    /// Haversine distance from the search centre, metres.
    pub distance_m: f64,
}

/// Open parties within `radius_m` of a point, nearest first (ties by id).
#[utoipa::path(get, path = "/parties/nearby", tag = "parties", params(NearbyPartyQuery),
    responses(
        (status = 200, description = "A page of parties, nearest first", body = Page<NearbyParty>),
        (status = 400, description = "`malformed_request` naming the parameter", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming `lat`, `lng`, `radius_m`, `limit` or `category`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_nearby_parties(
    State(state): State<AppState>,
    Query(q): Query<NearbyPartyQuery>,
) -> ApiResult<Response> {
    let area = area(q.lat, q.lng, q.radius_m, q.limit, q.cursor.as_deref())?;
    let category = paging::category(q.category)?;
    let include_full = q.include_full.unwrap_or(false);
    let hits = state
        .nearby
        .nearest_parties(
            area.center,
            area.radius_m,
            area.limit + 1,
            area.after,
            |p| {
                (include_full || p.party.status == store::parties::PartyStatus::Recruiting)
                    && q.item_id.is_none_or(|item| p.party.item_id == item)
                    && category.as_deref().is_none_or(|c| {
                        p.category_code
                            .as_deref()
                            .is_some_and(|code| code.starts_with(c))
                    })
            },
        )
        .map_err(geo_failure)?;
    let page = page(hits, area.limit, |(hit, p)| (hit.distance_m, p));
    Ok(party_page_json(&page))
}

/// Writes a page of nearby parties as `Page<NearbyParty>` JSON from each party's cached JSON: the
/// object is reopened before its closing brace to add `distance_m`, which is what serde's
/// `flatten` of `NearbyParty` would produce.
fn party_page_json(page: &Page<(f64, std::sync::Arc<index::IndexedParty>)>) -> Response {
    let mut body: Vec<u8> = Vec::with_capacity(64 + page.items.len() * 560);
    body.extend_from_slice(b"{\"items\":[");
    for (i, (distance_m, party)) in page.items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let object = party.json.strip_suffix('}').unwrap_or(&party.json);
        body.extend_from_slice(object.as_bytes());
        // An object without fields (`{`) takes no comma before the one it gains.
        if object.len() > 1 {
            body.push(b',');
        }
        body.extend_from_slice(b"\"distance_m\":");
        if serde_json::to_writer(&mut body, distance_m).is_err() {
            body.extend_from_slice(b"null");
        }
        body.push(b'}');
    }
    body.extend_from_slice(b"],\"next_cursor\":");
    if serde_json::to_writer(&mut body, &page.next_cursor).is_err() {
        body.extend_from_slice(b"null");
    }
    body.push(b'}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Keeps `limit` of `limit + 1` hits and makes the cursor from the last kept one.
fn page<T, V>(
    mut hits: Vec<(geo_index::Hit, T)>,
    limit: usize,
    view: impl Fn((geo_index::Hit, T)) -> V,
) -> Page<V> {
    let next_cursor = if hits.len() > limit {
        hits.truncate(limit);
        hits.last().map(|(h, _)| encode_cursor(h.cursor()))
    } else {
        None
    };
    Page {
        items: hits.into_iter().map(view).collect(),
        next_cursor,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearbyMarketQuery {
    /// Latitude of the search centre, degrees.
    #[param(required = true, minimum = -90, maximum = 90)]
    lat: Option<f64>,
    /// Longitude of the search centre, degrees.
    #[param(required = true, minimum = -180, maximum = 180)]
    lng: Option<f64>,
    /// Search radius in metres, 0 to 50000, default 10000.
    #[param(minimum = 0, maximum = 50000)]
    radius_m: Option<f64>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
    /// Only markets of this kind.
    #[param(max_length = 40)]
    kind: Option<String>,
}

/// A market and how far it is.
#[derive(Serialize, ToSchema)]
pub struct NearbyMarket {
    #[serde(flatten)]
    pub market: MarketView,
    /// Haversine distance from the search centre, metres.
    pub distance_m: f64,
}

/// Markets within `radius_m` of a point, nearest first (ties by id).
#[utoipa::path(get, path = "/markets/nearby", tag = "markets", params(NearbyMarketQuery),
    responses(
        (status = 200, description = "A page of markets, nearest first", body = Page<NearbyMarket>),
        (status = 400, description = "`malformed_request` naming the parameter", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` naming `lat`, `lng`, `radius_m` or `limit`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_nearby_markets(
    State(state): State<AppState>,
    Query(q): Query<NearbyMarketQuery>,
) -> ApiResult<axum::Json<Page<NearbyMarket>>> {
    let area = area(q.lat, q.lng, q.radius_m, q.limit, q.cursor.as_deref())?;
    let kind = optional_text(q.kind, "kind", 40)?;
    let hits = state
        .nearby
        .nearest_markets(
            area.center,
            area.radius_m,
            area.limit + 1,
            area.after,
            |m| kind.as_deref().is_none_or(|k| m.kind == k),
        )
        .map_err(geo_failure)?;
    Ok(axum::Json(page(hits, area.limit, |(hit, m)| {
        NearbyMarket {
            market: m.into(),
            distance_m: hit.distance_m,
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_party_json_reads_as_a_nearby_party() {
        let party = store::parties::Party {
            id: 7,
            leader_id: 1,
            market_id: 2,
            item_id: 3,
            title: "생수 \"2L\" 나눠요".into(),
            description: "줄\n바꿈".into(),
            capacity: 4,
            joined: 1,
            min_members: 2,
            price_per_share: Some(1500),
            meet_at: 1_800_000_000_000,
            deadline_at: 1_799_990_000_000,
            status: store::parties::PartyStatus::Recruiting,
            cancel_reason: None,
            lat: 37.5,
            lng: 127.0,
            version: 1,
            created_at: 1_790_000_000_000,
            updated_at: 1_790_000_000_000,
        };
        let cached = index::IndexedParty::new(party.clone(), None).unwrap();
        let spare = party.clone();
        let page = Page {
            items: vec![(123.25, cached.clone()), (400.0, cached)],
            next_cursor: Some("g1.2".to_owned()),
        };
        let response = party_page_json(&page);
        let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        let ours: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let serde_way = serde_json::to_value(Page {
            items: vec![
                NearbyParty {
                    party: party.clone().into(),
                    distance_m: 123.25,
                },
                NearbyParty {
                    party: party.into(),
                    distance_m: 400.0,
                },
            ],
            next_cursor: Some("g1.2".to_owned()),
        })
        .unwrap();
        assert_eq!(ours, serde_way);

        // A party whose JSON could not be made (cached as `{}`) still gives valid JSON.
        let empty = std::sync::Arc::new(index::IndexedParty {
            party: spare,
            category_code: None,
            json: "{}".into(),
        });
        let response = party_page_json(&Page {
            items: vec![(1.0, empty)],
            next_cursor: None,
        });
        let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(page["items"][0], serde_json::json!({"distance_m": 1.0}));
    }

    #[test]
    fn cursors_round_trip_exactly() {
        let c = Cursor::new(1234.5678901234, 42).unwrap();
        let back = decode_cursor(Some(&encode_cursor(c))).unwrap().unwrap();
        assert_eq!(back.distance_m.to_bits(), c.distance_m.to_bits());
        assert_eq!(back.id, 42);
    }

    #[test]
    fn foreign_cursors_are_refused_naming_the_parameter() {
        for bad in ["x", "g.1", "gzz.1", "g1.zz", "c12"] {
            let err = decode_cursor(Some(bad)).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("cursor"), "{bad}");
        }
        // A negative distance is impossible.
        let neg = format!("g{:x}.1", (-1.0f64).to_bits());
        assert!(decode_cursor(Some(&neg)).is_err());
    }
}
