//! Idempotency keys (Stripe's rules): a key is scoped to its user; the first request's response is
//! stored, errors included, and replayed for retries with the same key and body; the same key with
//! another body is refused. Keys are kept for [`KEEP_MS`].

use sqlx::FromRow;

use crate::db::Db;
use crate::error::Result;

/// How long a key is remembered.
pub const KEEP_MS: i64 = 24 * 3600 * 1000;

/// A stored response.
#[derive(Clone, Debug, FromRow, PartialEq, Eq)]
pub struct StoredResponse {
    pub status_code: i64,
    pub content_type: Option<String>,
    pub response_body: Option<String>,
}

/// What to do with a request that carries a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First time (or a stale unfinished attempt): run it, then [`complete`] or [`release`].
    Proceed,
    /// Done before: send this again.
    Replay(StoredResponse),
    /// The key was used with a different request.
    Mismatch,
    /// Another request with this key is still running.
    InProgress,
}

#[derive(FromRow)]
struct Row {
    request_hash: String,
    state: String,
    status_code: Option<i64>,
    content_type: Option<String>,
    response_body: Option<String>,
    created_at: i64,
}

/// Claims `key` for `user_id`. A pending claim older than `stale_ms` is taken over: its request
/// died without finishing.
pub async fn claim(
    db: &Db,
    user_id: i64,
    key: &str,
    request_hash: &str,
    now: i64,
    stale_ms: i64,
) -> Result<Claim> {
    let mut tx = db.begin().await?;
    // An expired key is forgotten, so it may be used afresh.
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND idem_key = $2 AND created_at < $3",
    )
    .bind(user_id)
    .bind(key)
    .bind(now - KEEP_MS)
    .execute(tx.conn())
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, idem_key, request_hash, state, created_at) \
         VALUES ($1, $2, $3, 'pending', $4) ON CONFLICT (user_id, idem_key) DO NOTHING",
    )
    .bind(user_id)
    .bind(key)
    .bind(request_hash)
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if inserted == 1 {
        tx.commit().await?;
        return Ok(Claim::Proceed);
    }
    let row: Row = sqlx::query_as(
        "SELECT request_hash, state, status_code, content_type, response_body, created_at \
         FROM idempotency_keys WHERE user_id = $1 AND idem_key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_one(tx.conn())
    .await?;
    let outcome = if row.request_hash != request_hash {
        Claim::Mismatch
    } else if row.state == "done" {
        Claim::Replay(StoredResponse {
            status_code: row.status_code.unwrap_or(500),
            content_type: row.content_type,
            response_body: row.response_body,
        })
    } else if row.created_at < now - stale_ms {
        sqlx::query(
            "UPDATE idempotency_keys SET created_at = $3 WHERE user_id = $1 AND idem_key = $2",
        )
        .bind(user_id)
        .bind(key)
        .bind(now)
        .execute(tx.conn())
        .await?;
        Claim::Proceed
    } else {
        Claim::InProgress
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Stores the response of a claimed key.
pub async fn complete(db: &Db, user_id: i64, key: &str, response: &StoredResponse) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'done', status_code = $3, content_type = $4, \
         response_body = $5 WHERE user_id = $1 AND idem_key = $2",
    )
    .bind(user_id)
    .bind(key)
    .bind(response.status_code)
    .bind(&response.content_type)
    .bind(&response.response_body)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}

/// Forgets a claimed key whose request failed on our side (5xx), so a retry runs it again.
pub async fn release(db: &Db, user_id: i64, key: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND idem_key = $2 AND state = 'pending'",
    )
    .bind(user_id)
    .bind(key)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}

/// Deletes keys past their retention. Returns how many.
pub async fn prune(db: &Db, now: i64) -> Result<u64> {
    let mut tx = db.begin().await?;
    let n = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now - KEEP_MS)
        .execute(tx.conn())
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n)
}
