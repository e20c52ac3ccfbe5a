//! Durable outbox consumers: named readers that process every committed outbox event at least once,
//! in commit order, and resume where they stopped.
//!
//! The relay (`outbox::run_relay`) publishes events to the bus for live views: fire and forget, once
//! per event on whichever instance relays it. A consumer is for effects that must happen once per
//! event whatever the number of instances: enqueueing jobs, writing notifications.
//!
//! - **Position in SQL.** `outbox_consumers` holds each consumer's last processed `(tx, id)`.
//! - **One batch at a time, anywhere.** A batch runs in one write transaction that first locks the
//!   consumer's row (`FOR UPDATE` on PostgreSQL; SQLite has one writer), so instances running the
//!   same consumer take turns and never process an event twice concurrently.
//! - **Effects with the position.** The handler gets the batch's transaction: what it writes there
//!   commits together with the new position, or not at all. A crash mid-batch rolls both back and
//!   the batch runs again; effects outside SQL must be idempotent by event id.
//! - **No skipped late commits.** On PostgreSQL ids are taken at insert, but transactions commit in
//!   another order: reading "ids after my position" would skip a row that commits late with a
//!   smaller id. Each outbox row records the id of the transaction that wrote it (`tx`), and a
//!   consumer reads only rows whose transaction is older than every transaction still running
//!   (`pg_snapshot_xmin`), in `(tx, id)` order: no row can appear behind its position later. On
//!   SQLite writers take turns, ids follow commit order and `tx` is 0.
//! - **Where a new consumer starts.** A consumer with no position starts at the oldest event kept.
//!   One added to a running deployment must not act on a week of old events (tell users of old
//!   parties), so it comes with a migration that sets its position to the current end
//!   (`0010_consumers_start_at_end.sql` does it for `notifications` and `chat`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::FromRow;
use tokio::sync::watch;

use crate::db::{Db, Dialect, Tx};
use crate::error::{Error, Result};
use crate::events::Event;

/// One outbox event as a consumer sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// The outbox row id: unique, so effects can be made idempotent by it.
    pub id: i64,
    /// When it was written, UTC unix ms.
    pub at: i64,
    pub topic: String,
    pub event: Event,
}

/// What a consumer does with each event.
#[async_trait]
pub trait Consumer: Send + Sync {
    /// Names the consumer's position; never change it once deployed (the consumer would start over).
    fn name(&self) -> &'static str;

    /// Handles one event inside the batch's transaction. An error rolls the whole batch back
    /// (position included), and the batch is tried again later.
    async fn handle(&self, tx: &mut Tx, event: &StoredEvent) -> Result<()>;

    /// Called before each batch: what a failed batch left behind is for nothing now.
    fn begin_batch(&self) {}

    /// Called after a batch committed: effects that must follow the commit (telling live
    /// subscribers of what is now stored).
    async fn after_commit(&self) {}
}

#[derive(FromRow)]
struct Row {
    id: i64,
    topic: String,
    kind: String,
    payload: String,
    created_at: i64,
    tx: i64,
}

/// A consumer's place in the outbox, `(tx, id)` of the last event it processed: it has every event
/// up to it.
pub type Position = (i64, i64);

/// What one batch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Events handled.
    pub handled: usize,
    /// The consumer's position after the batch.
    pub position: Position,
}

/// Processes the next batch of at most `batch` events for `consumer`. Returns how many it handled.
pub async fn run_once(db: &Db, consumer: &dyn Consumer, batch: i64, now: i64) -> Result<usize> {
    Ok(run_batch(db, consumer, batch, now).await?.handled)
}

/// Whether events after `position` are ready for a batch (on PostgreSQL: written by
/// transactions older than every one still running). One indexed read outside any transaction
/// and without the consumer's lock: what a woken consumer asks before it takes them, since most
/// commits write no event. Another instance may have moved the position further; then the answer
/// errs towards a batch, which reads the true position. (A position moved back, to replay, is
/// found by the batch [`run`] takes at least every poll whatever this says.)
pub async fn pending(db: &Db, position: Position) -> Result<bool> {
    let sql = match db.dialect() {
        Dialect::Sqlite => {
            "SELECT id FROM outbox WHERE (tx, id) > ($1, $2) ORDER BY tx, id LIMIT 1"
        }
        Dialect::Postgres => {
            "SELECT id FROM outbox WHERE (tx, id) > ($1, $2) \
             AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY tx, id LIMIT 1"
        }
    };
    let next: Option<(i64,)> = sqlx::query_as(sql)
        .bind(position.0)
        .bind(position.1)
        .fetch_optional(db.pool())
        .await?;
    Ok(next.is_some())
}

/// [`run_once`], also saying where the consumer's position is after the batch.
pub async fn run_batch(db: &Db, consumer: &dyn Consumer, batch: i64, now: i64) -> Result<Batch> {
    consumer.begin_batch();
    let mut tx = db.begin().await?;
    let name = consumer.name();
    sqlx::query(
        "INSERT INTO outbox_consumers (name, last_tx, last_id, updated_at) VALUES ($1, 0, 0, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(tx.conn())
    .await?;
    let lock = match tx.dialect() {
        Dialect::Sqlite => "SELECT last_tx, last_id FROM outbox_consumers WHERE name = $1",
        Dialect::Postgres => {
            "SELECT last_tx, last_id FROM outbox_consumers WHERE name = $1 FOR UPDATE"
        }
    };
    let (last_tx, last_id): (i64, i64) =
        sqlx::query_as(lock).bind(name).fetch_one(tx.conn()).await?;
    let next = match tx.dialect() {
        Dialect::Sqlite => {
            "SELECT id, topic, kind, payload, created_at, tx FROM outbox \
             WHERE (tx, id) > ($1, $2) ORDER BY tx, id LIMIT $3"
        }
        Dialect::Postgres => {
            "SELECT id, topic, kind, payload, created_at, tx FROM outbox \
             WHERE (tx, id) > ($1, $2) \
             AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY tx, id LIMIT $3"
        }
    };
    let rows: Vec<Row> = sqlx::query_as(next)
        .bind(last_tx)
        .bind(last_id)
        .bind(batch)
        .fetch_all(tx.conn())
        .await?;
    let Some(last) = rows.last() else {
        return Ok(Batch {
            handled: 0,
            position: (last_tx, last_id),
        });
    };
    let (to_tx, to_id) = (last.tx, last.id);
    for row in &rows {
        let data: serde_json::Value = serde_json::from_str(&row.payload)
            .map_err(|e| Error::Corrupt(format!("outbox event {}: {e}", row.id)))?;
        let event = match Event::parse(&row.kind, &data) {
            Ok(event) => event,
            Err(err) => {
                // An event this build cannot read (a kind from a newer release): skipping it is
                // the only way forward; it stays in the outbox for its retention.
                tracing::error!(consumer = name, event.id = row.id, kind = %row.kind, error = %err, "unreadable outbox event skipped");
                continue;
            }
        };
        let stored = StoredEvent {
            id: row.id,
            at: row.created_at,
            topic: row.topic.clone(),
            event,
        };
        consumer.handle(&mut tx, &stored).await?;
    }
    sqlx::query(
        "UPDATE outbox_consumers SET last_tx = $2, last_id = $3, updated_at = $4 WHERE name = $1",
    )
    .bind(name)
    .bind(to_tx)
    .bind(to_id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    consumer.after_commit().await;
    Ok(Batch {
        handled: rows.len(),
        position: (to_tx, to_id),
    })
}

/// Each consumer's events not yet processed, by name (for `/metrics`).
pub async fn lags(db: &Db) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT c.name, (SELECT COUNT(*) FROM outbox o \
           WHERE (o.tx, o.id) > (c.last_tx, c.last_id)) \
         FROM outbox_consumers c ORDER BY c.name",
    )
    .fetch_all(db.pool())
    .await?)
}

/// Runs `consumer` until `stop` turns true: after every local commit, and every `poll` for
/// commits of other processes (and transactions that were still running at the last read).
/// A failed batch is logged and retried after `poll`.
///
/// Most commits write no event (a chat message, a read cursor), so a wake-up by a commit first
/// asks [`pending`] past the position it last saw, and takes the consumer's lock only when there
/// is something to do: an idle wake-up is one read instead of a locking transaction.
pub async fn run(
    db: Db,
    consumer: Arc<dyn Consumer>,
    clock: crate::Clock,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    const BATCH: i64 = 100;
    let mut commits = db.commits();
    let mut seen: Option<Position> = None;
    // A batch runs at least every `poll` whatever `pending` says (even while commits keep waking
    // the loop), so a position moved back (to replay events) is noticed.
    let mut last_batch = tokio::time::Instant::now();
    loop {
        let ready = match seen {
            Some(position) if last_batch.elapsed() < poll => {
                pending(&db, position).await.unwrap_or(true)
            }
            _ => true,
        };
        if ready {
            last_batch = tokio::time::Instant::now();
            loop {
                match run_batch(&db, consumer.as_ref(), BATCH, clock.now_ms()).await {
                    Ok(batch) => {
                        seen = Some(batch.position);
                        if batch.handled as i64 != BATCH {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(consumer = consumer.name(), error = %crate::error::chain(&err), "outbox consumer batch failed; retrying");
                        seen = None;
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

/// Resolves once `stop` is true, holding no lock of the watch across the caller's awaits (so the
/// loop stays `Send` for `tokio::spawn`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
