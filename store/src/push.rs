//! Web Push subscriptions and the deliveries waiting to be pushed.
//!
//! Whatever writes a notification (`notifications::write`) also writes, in the same
//! transaction, one delivery row per subscription of its user, unless the user's preferences say
//! not to push it ([`schedule`]). So a push follows from every inbox write, whoever writes it, and
//! commits or rolls back with it. The jobs sweeper turns delivery rows into push jobs (under an
//! idempotency key per notification and subscription) and deletes them.

use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

use crate::db::Db;
use crate::error::Result;

/// A browser's push subscription.
#[derive(Clone, Debug, FromRow, Serialize, PartialEq)]
pub struct Subscription {
    pub id: i64,
    pub user_id: i64,
    /// The push service's URL for this browser (RFC 8030).
    pub endpoint: String,
    /// The browser's P-256 public key, base64url (RFC 8291 `ua_public`).
    pub p256dh: String,
    /// The browser's 16-byte authentication secret, base64url.
    pub auth: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, user_id, endpoint, p256dh, auth, created_at, updated_at";

/// A subscription to store (checked by the caller).
#[derive(Clone, Debug)]
pub struct NewSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// Stores `sub` for `user_id`: a known endpoint is updated (its keys, and its user: a browser
/// belongs to whoever subscribed on it last), never doubled. Returns it and whether it is new.
pub async fn subscribe(
    db: &Db,
    user_id: i64,
    sub: &NewSubscription,
    now: i64,
) -> Result<(Subscription, bool)> {
    let mut tx = db.begin().await?;
    let known: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM push_subscriptions WHERE endpoint = $1")
            .bind(&sub.endpoint)
            .fetch_optional(tx.conn())
            .await?;
    let row: Subscription = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (endpoint) DO UPDATE SET \
         user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth, \
         updated_at = excluded.updated_at RETURNING {COLUMNS}"
    )))
    .bind(user_id)
    .bind(&sub.endpoint)
    .bind(&sub.p256dh)
    .bind(&sub.auth)
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    Ok((row, known.is_none()))
}

/// Removes the user's subscription at `endpoint`; whether there was one.
pub async fn unsubscribe(db: &Db, user_id: i64, endpoint: &str) -> Result<bool> {
    let mut tx = db.begin().await?;
    let n = sqlx::query("DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint = $2")
        .bind(user_id)
        .bind(endpoint)
        .execute(tx.conn())
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n > 0)
}

/// The subscription `id`, if it still exists.
pub async fn get(db: &Db, id: i64) -> Result<Option<Subscription>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM push_subscriptions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// The user's subscriptions, oldest first.
pub async fn list(db: &Db, user_id: i64) -> Result<Vec<Subscription>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM push_subscriptions WHERE user_id = $1 ORDER BY id"
    )))
    .bind(user_id)
    .fetch_all(db.pool())
    .await?)
}

/// Removes subscription `id` if its endpoint is still `endpoint` (the push service said it is
/// gone: 404 or 410). A browser that subscribed again meanwhile got a new endpoint, so this never
/// removes a live one.
pub async fn remove_gone(db: &Db, id: i64, endpoint: &str) -> Result<bool> {
    let mut tx = db.begin().await?;
    let n = sqlx::query("DELETE FROM push_subscriptions WHERE id = $1 AND endpoint = $2")
        .bind(id)
        .bind(endpoint)
        .execute(tx.conn())
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n > 0)
}

/// Writes, on `conn` (the transaction writing notification `seq` of `user_id`), one delivery per
/// subscription of the user, unless the user's preferences keep it from being pushed (a muted
/// `kind`, quiet hours at its `created_at`). Returns how many. A user without subscriptions costs one indexed read.
pub async fn schedule(
    conn: &mut AnyConnection,
    user_id: i64,
    seq: i64,
    kind: &str,
    created_at: i64,
) -> Result<u64> {
    let (subs,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM push_subscriptions WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *conn)
            .await?;
    if subs == 0 {
        return Ok(0);
    }
    let prefs = crate::notification_prefs::get_on(conn, user_id).await?;
    if !prefs.pushes(kind, created_at) {
        return Ok(0);
    }
    Ok(sqlx::query(
        "INSERT INTO push_deliveries (subscription_id, user_id, seq, created_at) \
         SELECT id, user_id, $2, $3 FROM push_subscriptions WHERE user_id = $1",
    )
    .bind(user_id)
    .bind(seq)
    .bind(created_at)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// A notification to push to one subscription.
#[derive(Clone, Copy, Debug, FromRow, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub subscription_id: i64,
    pub user_id: i64,
    pub seq: i64,
}

/// The oldest deliveries waiting, at most `limit`.
pub async fn pending(db: &Db, limit: i64) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as(
        "SELECT id, subscription_id, user_id, seq FROM push_deliveries ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Deletes the deliveries `ids` (their jobs are pushed).
pub async fn forget(db: &Db, ids: &[i64]) -> Result<u64> {
    let mut done = 0;
    let mut tx = db.begin().await?;
    for chunk in ids.chunks(500) {
        let list = chunk
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // Integers formatted by us: nothing from outside reaches the statement.
        done += sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM push_deliveries WHERE id IN ({list})"
        )))
        .execute(tx.conn())
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(done)
}
