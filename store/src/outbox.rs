//! The transactional outbox: events are written in the transaction of the change they describe and
//! published afterwards by a relay running in every process.
//!
//! The relay publishes before it marks rows sent, so a crash between the two re-publishes (at least
//! once) rather than losing an event. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets the relays of many
//! instances share the table without publishing the same row twice in the normal case.

use std::time::Duration;

use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::FromRow;
use tokio::sync::watch;

use crate::db::{Db, Dialect};
use crate::error::{Error, Result};
use crate::live::Bus;
use crate::topics::Envelope;
use crate::Clock;

/// Writes one event into the outbox on `conn` (the caller's transaction).
pub async fn insert(
    conn: &mut AnyConnection,
    topic: &str,
    kind: &str,
    data: &impl Serialize,
    now: i64,
) -> Result<i64> {
    let payload = serde_json::to_string(data).map_err(|e| Error::Corrupt(e.to_string()))?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO outbox (topic, kind, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(topic)
    .bind(kind)
    .bind(payload)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

#[derive(FromRow)]
struct OutboxRow {
    id: i64,
    topic: String,
    kind: String,
    payload: String,
    created_at: i64,
}

/// Publishes up to `batch` unsent events, oldest first, and marks them sent. Returns how many.
pub async fn relay_once(db: &Db, bus: &dyn Bus, now: i64, batch: i64) -> Result<usize> {
    let claim = match db.dialect() {
        Dialect::Sqlite => {
            "SELECT id, topic, kind, payload, created_at FROM outbox \
             WHERE sent_at IS NULL ORDER BY id LIMIT $1"
        }
        Dialect::Postgres => {
            "SELECT id, topic, kind, payload, created_at FROM outbox \
             WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
        }
    };
    // Most commits write no event: look before taking a transaction (on SQLite, the write lock).
    let unsent: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT 1")
            .fetch_optional(db.pool())
            .await?;
    if unsent.is_none() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let rows: Vec<OutboxRow> = sqlx::query_as(claim)
        .bind(batch)
        .fetch_all(tx.conn())
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    for row in &rows {
        let data = serde_json::from_str(&row.payload).map_err(|e| Error::Corrupt(e.to_string()))?;
        let envelope = Envelope {
            id: row.id,
            kind: row.kind.clone(),
            at: row.created_at,
            data,
        };
        let bytes = serde_json::to_vec(&envelope).map_err(|e| Error::Corrupt(e.to_string()))?;
        bus.publish(&row.topic, &bytes).await?;
    }
    let placeholders: Vec<String> = (2..rows.len() + 2).map(|i| format!("${i}")).collect();
    let sql = format!(
        "UPDATE outbox SET sent_at = $1 WHERE id IN ({})",
        placeholders.join(", ")
    );
    let mut update = sqlx::query(sqlx::AssertSqlSafe(&*sql)).bind(now);
    for row in &rows {
        update = update.bind(row.id);
    }
    update.execute(tx.conn()).await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// How long a sent event is kept (the housekeeping job prunes it after).
pub const KEEP_MS: i64 = 7 * 24 * 3600 * 1000;

/// How long an event is kept for a consumer that never catches up (one removed from the code, or
/// stuck): past this it is deleted anyway, and the prune says so in the log.
pub const MAX_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// Deletes events sent more than `keep_ms` ago that every durable consumer has processed, and any
/// event older than [`MAX_RETENTION_MS`]. Returns how many.
pub async fn prune(db: &Db, now: i64, keep_ms: i64) -> Result<u64> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1 AND NOT EXISTS \
         (SELECT 1 FROM outbox_consumers c \
          WHERE (outbox.tx, outbox.id) > (c.last_tx, c.last_id))",
    )
    .bind(now - keep_ms)
    .execute(tx.conn())
    .await?
    .rows_affected();
    let expired = sqlx::query("DELETE FROM outbox WHERE created_at < $1")
        .bind(now - MAX_RETENTION_MS)
        .execute(tx.conn())
        .await?
        .rows_affected();
    tx.commit().await?;
    if expired > 0 {
        tracing::warn!(
            events = expired,
            "outbox events past the retention deleted before every consumer processed them"
        );
    }
    Ok(done + expired)
}

/// Runs the relay until `shutdown` turns true: publishes right after each local commit, and polls
/// every `poll` for events committed by other processes.
pub async fn run_relay(
    db: Db,
    bus: std::sync::Arc<dyn Bus>,
    clock: Clock,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    const BATCH: i64 = 256;
    loop {
        loop {
            match relay_once(&db, bus.as_ref(), clock.now_ms(), BATCH).await {
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => break,
                Err(err) => {
                    tracing::warn!(error = %crate::error::chain(&err), "outbox relay failed; retrying");
                    break;
                }
            }
        }
        tokio::select! {
            _ = db.committed() => {}
            _ = tokio::time::sleep(poll) => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}
