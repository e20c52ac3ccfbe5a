//! Wishlists (찜): the markets, items, keywords and areas a user watches, and the matching of a
//! new party against them.
//!
//! Matching never scans users or wishlists: markets, items and keywords are found by their
//! `match_key` (a keyword by its first two characters, then tested as a substring), areas by the
//! H3 cell of the party's location in `wishlist_cells` (interior cells match outright, edge cells
//! after the exact test against the shape). The cost is that of the wishlists that can match.

use std::collections::BTreeSet;

use geo_index::area::{area_cell_of, Area, AreaError};
use geo_index::LatLng;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, FromRow};
use unicode_normalization::UnicodeNormalization;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::parties::Party;
use crate::rules::Invalid;

/// Keyword wishlists a user may have.
pub const MAX_KEYWORDS: i64 = 10;
/// Wishlists of all kinds a user may have.
pub const MAX_PER_USER: i64 = 50;
/// The longest keyword, in characters.
pub const KEYWORD_MAX: usize = 20;

/// A circle's centre.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Center {
    pub lat: f64,
    pub lng: f64,
}

/// A GeoJSON Polygon: rings of `[lng, lat]` positions, the outline first, then holes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GeoJsonPolygon {
    #[serde(rename = "type")]
    pub kind: String,
    pub coordinates: Vec<Vec<[f64; 2]>>,
}

/// An area as stored and returned: a circle or a polygon.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum AreaShape {
    Circle { center: Center, radius_m: f64 },
    Polygon { polygon: GeoJsonPolygon },
}

impl AreaShape {
    /// The checked shape, or why it is refused (naming the field).
    pub fn area(&self) -> std::result::Result<Area, Invalid> {
        match self {
            AreaShape::Circle { center, radius_m } => {
                Area::circle(center.lat, center.lng, *radius_m).map_err(|e| match e {
                    AreaError::Radius => Invalid::new("radius_m", e.to_string()),
                    _ => Invalid::new("center", e.to_string()),
                })
            }
            AreaShape::Polygon { polygon } => {
                if polygon.kind != "Polygon" {
                    return Err(Invalid::new("polygon.type", "the type must be \"Polygon\""));
                }
                Area::polygon(&polygon.coordinates)
                    .map_err(|e| Invalid::new("polygon.coordinates", e.to_string()))
            }
        }
    }
}

/// What a wishlist watches.
#[derive(Clone, Debug, PartialEq)]
pub enum Wish {
    Market(i64),
    Item(i64),
    /// Normalised (NFKC, trimmed, lower-case) by [`keyword`].
    Keyword(String),
    Area(AreaShape),
}

/// A stored wishlist.
#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct Wishlist {
    pub id: i64,
    pub user_id: i64,
    pub kind: String,
    pub market_id: Option<i64>,
    pub item_id: Option<i64>,
    pub keyword: Option<String>,
    pub area: Option<String>,
    pub created_at: i64,
}

impl Wishlist {
    /// The stored area, when it is one.
    pub fn shape(&self) -> Option<AreaShape> {
        self.area
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok())
    }
}

const COLUMNS: &str = "id, user_id, kind, market_id, item_id, keyword, area, created_at";

/// Why a wishlist was refused.
#[derive(Debug, thiserror::Error)]
pub enum WishlistError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("market not found")]
    MarketNotFound,
    #[error("item not found")]
    ItemNotFound,
    #[error("at most {MAX_KEYWORDS} keywords")]
    TooManyKeywords,
    #[error("at most {MAX_PER_USER} wishlists")]
    TooMany,
    #[error(transparent)]
    Store(#[from] Error),
}

impl From<sqlx::Error> for WishlistError {
    fn from(err: sqlx::Error) -> Self {
        WishlistError::Store(err.into())
    }
}

/// A keyword as matched: NFKC, trimmed, lower-case, 1 to [`KEYWORD_MAX`] characters.
pub fn keyword(raw: &str) -> std::result::Result<String, Invalid> {
    let k: String = raw.nfkc().collect::<String>().trim().to_lowercase();
    if k.is_empty() || k.chars().count() > KEYWORD_MAX || k.chars().any(char::is_control) {
        return Err(Invalid::new(
            "keyword",
            format!("keyword must be 1 to {KEYWORD_MAX} characters"),
        ));
    }
    Ok(k)
}

/// The key a keyword is found by: its first two characters.
fn keyword_key(k: &str) -> String {
    format!("k:{}", k.chars().take(2).collect::<String>())
}

/// The `match_key` a wishlist is found by when a party is created (areas have none: they are
/// found by their cells).
pub fn match_key(wish: &Wish) -> Option<String> {
    match wish {
        Wish::Market(id) => Some(format!("m:{id}")),
        Wish::Item(id) => Some(format!("i:{id}")),
        Wish::Keyword(k) => Some(keyword_key(k)),
        Wish::Area(_) => None,
    }
}

/// Stores a wishlist for `user_id`.
pub async fn create(
    db: &Db,
    user_id: i64,
    wish: &Wish,
    now: i64,
) -> std::result::Result<Wishlist, WishlistError> {
    // The cells are computed before the transaction: a large polygon takes a while to tile.
    let cells = match wish {
        Wish::Area(shape) => Some(
            shape
                .area()?
                .cells()
                .map_err(|e| Invalid::new("polygon.coordinates", e.to_string()))?,
        ),
        _ => None,
    };
    let mut tx = db.begin().await?;
    let (count, keywords): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN kind = 'keyword' THEN 1 ELSE 0 END), 0) \
         FROM wishlists WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_one(tx.conn())
    .await?;
    if count >= MAX_PER_USER {
        return Err(WishlistError::TooMany);
    }
    let key = match_key(wish);
    let (kind, market_id, item_id, word, area) = match wish {
        Wish::Market(id) => {
            crate::markets::get_market_on(tx.conn(), *id)
                .await?
                .ok_or(WishlistError::MarketNotFound)?;
            ("market", Some(*id), None, None, None)
        }
        Wish::Item(id) => {
            crate::items::get_item_on(tx.conn(), *id)
                .await?
                .ok_or(WishlistError::ItemNotFound)?;
            ("item", None, Some(*id), None, None)
        }
        Wish::Keyword(k) => {
            if keywords >= MAX_KEYWORDS {
                return Err(WishlistError::TooManyKeywords);
            }
            ("keyword", None, None, Some(k.clone()), None)
        }
        Wish::Area(shape) => {
            let json = serde_json::to_string(shape).map_err(|e| Error::Corrupt(e.to_string()))?;
            ("area", None, None, None, Some(json))
        }
    };
    let row: Wishlist = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO wishlists (user_id, kind, market_id, item_id, keyword, area, match_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    )))
    .bind(user_id)
    .bind(kind)
    .bind(market_id)
    .bind(item_id)
    .bind(word)
    .bind(area)
    .bind(key)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    for chunk in cells.unwrap_or_default().chunks(500) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, $1, $2, ${})", 3 + 2 * i, 4 + 2 * i))
            .collect();
        let sql = format!(
            "INSERT INTO wishlist_cells (cell, wishlist_id, user_id, edge) VALUES {}",
            values.join(", ")
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(row.id)
            .bind(user_id);
        for c in chunk {
            // An H3 index has its top bit clear: it fits an i64 as it is.
            insert = insert.bind(c.cell as i64).bind(i64::from(c.edge));
        }
        insert.execute(tx.conn()).await?;
    }
    tx.commit().await?;
    Ok(row)
}

/// A user's wishlists, newest first.
pub async fn list(db: &Db, user_id: i64) -> Result<Vec<Wishlist>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM wishlists WHERE user_id = $1 ORDER BY id DESC"
    )))
    .bind(user_id)
    .fetch_all(db.pool())
    .await?)
}

/// Deletes a user's wishlist; `false` when they have none with that id.
pub async fn delete(db: &Db, user_id: i64, id: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "DELETE FROM wishlist_cells WHERE wishlist_id = $1 \
         AND EXISTS (SELECT 1 FROM wishlists w WHERE w.id = $1 AND w.user_id = $2)",
    )
    .bind(id)
    .bind(user_id)
    .execute(tx.conn())
    .await?;
    let gone = sqlx::query("DELETE FROM wishlists WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(gone > 0)
}

#[derive(FromRow)]
struct KeyHit {
    user_id: i64,
    kind: String,
    keyword: Option<String>,
}

#[derive(FromRow)]
struct CellHit {
    user_id: i64,
    edge: i64,
    area: Option<String>,
}

/// The users (never the leader) with a wishlist matching `party`, whose item is named
/// `item_name`: each once, however many of their wishlists match.
pub async fn matching_users(
    conn: &mut AnyConnection,
    party: &Party,
    item_name: &str,
) -> Result<Vec<i64>> {
    let text = format!("{}\n{}", party.title, item_name)
        .nfkc()
        .collect::<String>()
        .to_lowercase();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    keys.insert(format!("m:{}", party.market_id));
    keys.insert(format!("i:{}", party.item_id));
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        keys.insert(format!("k:{c}"));
        if let Some(next) = chars.get(i + 1) {
            keys.insert(format!("k:{c}{next}"));
        }
    }
    let placeholders: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT user_id, kind, keyword FROM wishlists WHERE match_key IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, KeyHit>(sqlx::AssertSqlSafe(sql));
    for key in &keys {
        query = query.bind(key);
    }
    let mut users = BTreeSet::new();
    for hit in query.fetch_all(&mut *conn).await? {
        let matched = match (hit.kind.as_str(), &hit.keyword) {
            ("keyword", Some(k)) => text.contains(k.as_str()),
            ("keyword", None) => false,
            _ => true,
        };
        if matched {
            users.insert(hit.user_id);
        }
    }
    if let Ok(point) = LatLng::new(party.lat, party.lng) {
        let cell = area_cell_of(point) as i64;
        let hits: Vec<CellHit> = sqlx::query_as(
            "SELECT c.user_id, c.edge, CASE WHEN c.edge = 1 THEN w.area END AS area \
             FROM wishlist_cells c JOIN wishlists w ON w.id = c.wishlist_id WHERE c.cell = $1",
        )
        .bind(cell)
        .fetch_all(&mut *conn)
        .await?;
        for hit in hits {
            if users.contains(&hit.user_id) {
                continue;
            }
            let inside = hit.edge == 0
                || hit
                    .area
                    .as_deref()
                    .and_then(|a| serde_json::from_str::<AreaShape>(a).ok())
                    .and_then(|shape| shape.area().ok())
                    .is_some_and(|area| area.contains(point));
            if inside {
                users.insert(hit.user_id);
            }
        }
    }
    users.remove(&party.leader_id);
    Ok(users.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_normalised_and_bounded() {
        assert_eq!(keyword("  한우 ").unwrap(), "한우");
        assert_eq!(keyword("ＡＢＣ").unwrap(), "abc");
        assert_eq!(keyword("   ").unwrap_err().field, "keyword");
        assert!(keyword(&"가".repeat(21)).is_err());
        assert_eq!(keyword_key("한우세트"), "k:한우");
        assert_eq!(keyword_key("쌀"), "k:쌀");
    }

    #[test]
    fn areas_are_read_from_the_contract_bodies() {
        let circle: AreaShape = serde_json::from_value(serde_json::json!({
            "center": {"lat": 37.5, "lng": 127.0}, "radius_m": 3000.0
        }))
        .unwrap();
        assert!(matches!(circle, AreaShape::Circle { .. }));
        assert!(circle.area().is_ok());
        let far: AreaShape = serde_json::from_value(serde_json::json!({
            "center": {"lat": 37.5, "lng": 127.0}, "radius_m": 20000.0
        }))
        .unwrap();
        assert_eq!(far.area().unwrap_err().field, "radius_m");
        let square: AreaShape = serde_json::from_value(serde_json::json!({
            "polygon": {"type": "Polygon", "coordinates": [[[127.0, 37.5], [127.01, 37.5], [127.01, 37.51], [127.0, 37.51], [127.0, 37.5]]]}
        }))
        .unwrap();
        assert!(square.area().is_ok());
    }
}
