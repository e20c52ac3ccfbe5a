//! `POST/GET/DELETE /me/wishlists`: what a user watches, so they are told when a party opens there.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::rules::Invalid;
use store::wishlists::{self, AreaShape, Center, GeoJsonPolygon, Wish, WishlistError};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use crate::time::Timestamp;

/// A circle's centre.
#[derive(Clone, Copy, Deserialize, Serialize, ToSchema)]
pub struct CenterBody {
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lng: f64,
}

/// A GeoJSON Polygon: rings of `[lng, lat]` positions, the outline first, then holes; each ring
/// closed (the last position equals the first).
#[derive(Clone, Deserialize, Serialize, ToSchema)]
pub struct PolygonBody {
    /// `Polygon`.
    #[serde(rename = "type")]
    #[schema(pattern = "^Polygon$")]
    pub kind: String,
    #[schema(min_items = 1)]
    pub coordinates: Vec<Vec<Vec<f64>>>,
}

/// What to watch: a market, an item, a keyword (at most 10) or an area (a circle up to 10 km, or
/// a polygon of at most 1,000 vertices).
#[derive(Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WishlistRequest {
    Market {
        market_id: i64,
    },
    Item {
        item_id: i64,
    },
    /// Matched in party titles and item names, case-insensitive.
    Keyword {
        #[schema(min_length = 1, max_length = 20)]
        keyword: String,
    },
    /// `center` with `radius_m`, or `polygon`.
    Area {
        center: Option<CenterBody>,
        radius_m: Option<f64>,
        polygon: Option<PolygonBody>,
    },
}

impl WishlistRequest {
    fn parse(self) -> Result<Wish, Invalid> {
        Ok(match self {
            WishlistRequest::Market { market_id } => {
                store::rules::positive_id(market_id, "market_id")?;
                Wish::Market(market_id)
            }
            WishlistRequest::Item { item_id } => {
                store::rules::positive_id(item_id, "item_id")?;
                Wish::Item(item_id)
            }
            WishlistRequest::Keyword { keyword } => Wish::Keyword(wishlists::keyword(&keyword)?),
            WishlistRequest::Area {
                center,
                radius_m,
                polygon,
            } => {
                let shape = match (center, radius_m, polygon) {
                    (Some(c), Some(r), None) => AreaShape::Circle {
                        center: Center {
                            lat: c.lat,
                            lng: c.lng,
                        },
                        radius_m: r,
                    },
                    (None, None, Some(p)) => AreaShape::Polygon {
                        polygon: GeoJsonPolygon {
                            kind: p.kind,
                            coordinates: rings(&p.coordinates)?,
                        },
                    },
                    (_, _, Some(_)) => {
                        return Err(Invalid::new(
                            "polygon",
                            "give either a polygon or a center with radius_m, not both",
                        ))
                    }
                    (None, _, None) => {
                        return Err(Invalid::new(
                            "center",
                            "an area needs a center (or a polygon)",
                        ))
                    }
                    (Some(_), None, None) => {
                        return Err(Invalid::new("radius_m", "a circle needs radius_m"))
                    }
                };
                // Checked here so a bad shape is refused before any storage.
                shape.area()?;
                Wish::Area(shape)
            }
        })
    }
}

/// GeoJSON positions as `[lng, lat]` (an altitude, if any, is ignored).
fn rings(coordinates: &[Vec<Vec<f64>>]) -> Result<Vec<Vec<[f64; 2]>>, Invalid> {
    coordinates
        .iter()
        .map(|ring| {
            ring.iter()
                .map(|p| match p.as_slice() {
                    [lng, lat] | [lng, lat, _] => Ok([*lng, *lat]),
                    _ => Err(Invalid::new(
                        "polygon.coordinates",
                        "a position is [lng, lat]",
                    )),
                })
                .collect()
        })
        .collect()
}

/// A wishlist as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct WishlistView {
    pub id: i64,
    /// `market`, `item`, `keyword` or `area`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub market_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub center: Option<CenterBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub radius_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub polygon: Option<PolygonBody>,
    pub created_at: Timestamp,
}

impl From<wishlists::Wishlist> for WishlistView {
    fn from(w: wishlists::Wishlist) -> Self {
        let shape = w.shape();
        let (center, radius_m, polygon) = match shape {
            Some(AreaShape::Circle { center, radius_m }) => (
                Some(CenterBody {
                    lat: center.lat,
                    lng: center.lng,
                }),
                Some(radius_m),
                None,
            ),
            Some(AreaShape::Polygon { polygon }) => (
                None,
                None,
                Some(PolygonBody {
                    kind: polygon.kind,
                    coordinates: polygon
                        .coordinates
                        .into_iter()
                        .map(|r| r.into_iter().map(|p| p.to_vec()).collect())
                        .collect(),
                }),
            ),
            None => (None, None, None),
        };
        Self {
            id: w.id,
            kind: w.kind,
            market_id: w.market_id,
            item_id: w.item_id,
            keyword: w.keyword,
            center,
            radius_m,
            polygon,
            created_at: Timestamp(w.created_at),
        }
    }
}

/// My wishlists.
#[derive(Serialize, ToSchema)]
pub struct WishlistList {
    pub items: Vec<WishlistView>,
}

fn refused(err: WishlistError) -> ApiError {
    match err {
        WishlistError::Invalid(invalid) => invalid.into(),
        WishlistError::MarketNotFound => {
            ApiError::invalid("market_id", "no market with this id").with_code("market_not_found")
        }
        WishlistError::ItemNotFound => {
            ApiError::invalid("item_id", "no item with this id").with_code("item_not_found")
        }
        WishlistError::TooManyKeywords => ApiError::conflict(
            "too_many_keywords",
            format!(
                "at most {} keywords; delete one first",
                wishlists::MAX_KEYWORDS
            ),
        )
        .with_field("keyword"),
        WishlistError::TooMany => ApiError::conflict(
            "too_many_wishlists",
            format!(
                "at most {} wishlists; delete one first",
                wishlists::MAX_PER_USER
            ),
        ),
        WishlistError::Store(err) => err.into(),
    }
}

/// Watch a market, an item, a keyword or an area: I am told when a party opens that matches it.
#[utoipa::path(post, path = "/me/wishlists", tag = "notifications", security(("bearer" = [])),
    request_body = WishlistRequest,
    responses(
        (status = 201, description = "The wishlist", body = WishlistView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`too_many_keywords`, `too_many_wishlists`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn create_wishlist(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<WishlistRequest>,
) -> ApiResult<(StatusCode, axum::Json<WishlistView>)> {
    let wish = body.parse()?;
    let row = wishlists::create(&state.db, user.id, &wish, state.now())
        .await
        .map_err(refused)?;
    tracing::info!(user.id = user.id, wishlist.id = row.id, kind = %row.kind, "wishlist added");
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// My wishlists, newest first.
#[utoipa::path(get, path = "/me/wishlists", tag = "notifications", security(("bearer" = [])),
    responses(
        (status = 200, description = "My wishlists", body = WishlistList),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list_my_wishlists(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<axum::Json<WishlistList>> {
    let rows = wishlists::list(&state.db, user.id).await?;
    Ok(axum::Json(WishlistList {
        items: rows.into_iter().map(WishlistView::from).collect(),
    }))
}

/// Stop watching.
#[utoipa::path(delete, path = "/me/wishlists/{id}", tag = "notifications", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Wishlist id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn delete_wishlist(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    if wishlists::delete(&state.db, user.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("wishlist"))
    }
}
