//! The notification inbox: rows in SQL, numbered per user from 1 without gaps (`seq`, which is
//! also the SSE event id), each written at most once per (user, cause) by its `dedupe` key.
//!
//! Notifications are written only by durable consumers and jobs, inside their own transactions:
//! the counter bump and the row commit together, so a rolled-back write leaves no gap, and the
//! dedupe check makes a replayed event or a retried job write nothing twice. Writing one also
//! schedules its Web Push deliveries in the same transaction ([`crate::push::schedule`]), so
//! every notification is pushed (preferences allowing) whoever writes it.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, FromRow};

use crate::cursor;
use crate::db::Db;
use crate::error::Result;

/// What a notification is about (the `kind` clients switch on).
pub use crate::notification_kinds as kind;

/// One notification as stored (and as published on the user's bus topic).
#[derive(Clone, Debug, FromRow, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    pub user_id: i64,
    pub seq: i64,
    pub kind: String,
    pub party_id: Option<i64>,
    pub title: String,
    pub body: String,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

const COLUMNS: &str = "user_id, seq, kind, party_id, title, body, created_at, read_at";

/// A notification to write.
#[derive(Clone, Debug)]
pub struct NewNotification {
    pub user_id: i64,
    pub kind: &'static str,
    pub party_id: Option<i64>,
    pub title: String,
    pub body: String,
    /// Names the cause: the same (user, dedupe) is written once.
    pub dedupe: String,
}

/// Writes `new` on `conn` (the caller's transaction) with the user's next `seq`; `None` when a
/// notification with its dedupe key exists already.
pub async fn write(
    conn: &mut AnyConnection,
    new: &NewNotification,
    now: i64,
) -> Result<Option<Notification>> {
    Ok(write_chunk(conn, &[new], now).await?.into_iter().next())
}

/// Rows written per statement by [`write_all`] (eight parameters a row: about 400 a statement,
/// where SQLite still binds quickly).
const CHUNK: usize = 50;

/// Writes every notification of `news` (one per user: the fan-out of one event) on `conn`, like
/// [`write`] each, in three statements per [`CHUNK`] users instead of several per user. Those
/// whose dedupe key exists already are left out. A list naming a user twice is written one by one.
///
/// Users are taken in id order, so every writer that locks several users' counters locks them in
/// one order.
pub async fn write_all(
    conn: &mut AnyConnection,
    news: &[NewNotification],
    now: i64,
) -> Result<Vec<Notification>> {
    let mut users = std::collections::HashSet::with_capacity(news.len());
    if !news.iter().all(|n| users.insert(n.user_id)) {
        let mut out = Vec::with_capacity(news.len());
        for new in news {
            out.extend(write(conn, new, now).await?);
        }
        return Ok(out);
    }
    let mut sorted: Vec<&NewNotification> = news.iter().collect();
    sorted.sort_by_key(|n| n.user_id);
    let mut out = Vec::with_capacity(news.len());
    for chunk in sorted.chunks(CHUNK) {
        out.extend(write_chunk(conn, chunk, now).await?);
    }
    Ok(out)
}

/// `$from, …`: `n` placeholders.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, $2, …), (…)`: `rows` tuples of `cols` placeholders from `$first`.
fn tuples(rows: usize, cols: usize, first: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(first + r * cols, cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn write_chunk(
    conn: &mut AnyConnection,
    chunk: &[&NewNotification],
    now: i64,
) -> Result<Vec<Notification>> {
    // Each user's counter row serialises the writers of their inbox (PostgreSQL holds its row
    // lock to the commit), so seqs are given in order and a rollback gives its seq back.
    let sql = format!(
        "INSERT INTO notification_counters (user_id, last_seq) VALUES {} \
         ON CONFLICT (user_id) DO UPDATE SET last_seq = notification_counters.last_seq + 1 \
         RETURNING user_id, last_seq",
        (0..chunk.len())
            .map(|i| format!("(${}, 1)", i + 1))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut counters = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for n in chunk {
        counters = counters.bind(n.user_id);
    }
    let seqs: std::collections::HashMap<i64, i64> =
        counters.fetch_all(&mut *conn).await?.into_iter().collect();
    // A user told of this cause already conflicts on `(user_id, dedupe)` and gets no row. The
    // unique index decides, not a lookup before the insert: PostgreSQL planned such a lookup for
    // the inbox as it was when the statement was prepared, and an inbox that started empty was
    // scanned whole for every chunk of a large fan-out (7.5 s for 35,000 notifications).
    let sql = format!(
        "INSERT INTO notifications (user_id, seq, kind, party_id, title, body, dedupe, created_at) \
         VALUES {} ON CONFLICT (user_id, dedupe) DO NOTHING RETURNING {COLUMNS}",
        tuples(chunk.len(), 8, 1)
    );
    let mut insert = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for n in chunk {
        let seq = seqs.get(&n.user_id).copied().ok_or_else(|| {
            crate::error::Error::Corrupt(format!("no counter for user {}", n.user_id))
        })?;
        insert = insert
            .bind(n.user_id)
            .bind(seq)
            .bind(n.kind)
            .bind(n.party_id)
            .bind(&n.title)
            .bind(&n.body)
            .bind(&n.dedupe)
            .bind(now);
    }
    let mut rows: Vec<Notification> = insert.fetch_all(&mut *conn).await?;
    if rows.len() < chunk.len() {
        // Give the users told already their seq back: their counter rows are still locked by
        // this transaction, so nobody took a seq after it.
        let written: std::collections::HashSet<i64> = rows.iter().map(|r| r.user_id).collect();
        let told: Vec<i64> = chunk
            .iter()
            .map(|n| n.user_id)
            .filter(|u| !written.contains(u))
            .collect();
        let sql = format!(
            "UPDATE notification_counters SET last_seq = last_seq - 1 WHERE user_id IN ({})",
            placeholders(1, told.len())
        );
        let mut give_back = sqlx::query(sqlx::AssertSqlSafe(sql));
        for u in &told {
            give_back = give_back.bind(*u);
        }
        give_back.execute(&mut *conn).await?;
    }
    if rows.is_empty() {
        return Ok(rows);
    }
    rows.sort_by_key(|r| r.user_id);
    // Web Push only for the few with a subscription.
    let sql = format!(
        "SELECT DISTINCT user_id FROM push_subscriptions WHERE user_id IN ({})",
        placeholders(1, rows.len())
    );
    let mut subscribed = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for r in &rows {
        subscribed = subscribed.bind(r.user_id);
    }
    let subscribed: Vec<(i64,)> = subscribed.fetch_all(&mut *conn).await?;
    for (user_id,) in subscribed {
        if let Some(r) = rows.iter().find(|r| r.user_id == user_id) {
            crate::push::schedule(conn, r.user_id, r.seq, &r.kind, r.created_at).await?;
        }
    }
    Ok(rows)
}

/// The user's notification `seq`, if it is kept.
pub async fn get(db: &Db, user_id: i64, seq: i64) -> Result<Option<Notification>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND seq = $2"
    )))
    .bind(user_id)
    .bind(seq)
    .fetch_optional(db.pool())
    .await?)
}

/// Notifications are kept this long (then pruned by housekeeping).
pub const KEEP_MS: i64 = 90 * 24 * 3_600_000;

/// Deletes the notifications written before `before`, a batch per transaction so a large backlog
/// never holds one long transaction; returns how many. Counters stay: seqs go on from the last
/// one given, and a stream asking for a pruned id gets `reset`.
pub async fn prune(db: &Db, before: i64) -> Result<u64> {
    const BATCH: i64 = 10_000;
    let mut total = 0;
    loop {
        let mut tx = db.begin().await?;
        let n = sqlx::query(
            "DELETE FROM notifications WHERE id IN \
             (SELECT id FROM notifications WHERE created_at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(BATCH)
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        total += n;
        if n < BATCH as u64 {
            return Ok(total);
        }
    }
}

/// A page of a user's inbox, newest first (`before`: a seq from the cursor), unread ones only
/// when `unread_only`.
pub async fn list(
    db: &Db,
    user_id: i64,
    before: Option<i64>,
    unread_only: bool,
    limit: usize,
) -> Result<(Vec<Notification>, Option<String>)> {
    let unread = if unread_only {
        " AND read_at IS NULL"
    } else {
        ""
    };
    let rows: Vec<Notification> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND seq < $2{unread} \
         ORDER BY seq DESC LIMIT {}",
        limit + 1
    )))
    .bind(user_id)
    .bind(before.unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await?;
    Ok(cursor::page(rows, limit, |n| n.seq))
}

/// The user's notifications after `seq`, oldest first, at most `limit` (replay of a stream).
pub async fn after(db: &Db, user_id: i64, seq: i64, limit: i64) -> Result<Vec<Notification>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    )))
    .bind(user_id)
    .bind(seq)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// The user's last seq (0 before the first), and the oldest seq still kept (`None` when none is).
pub async fn bounds(db: &Db, user_id: i64) -> Result<(i64, Option<i64>)> {
    let last: Option<(i64,)> =
        sqlx::query_as("SELECT last_seq FROM notification_counters WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(db.pool())
            .await?;
    let (oldest,): (Option<i64>,) =
        sqlx::query_as("SELECT MIN(seq) FROM notifications WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(db.pool())
            .await?;
    Ok((last.map_or(0, |(s,)| s), oldest))
}

/// How many of the user's notifications are unread.
pub async fn unread_count(db: &Db, user_id: i64) -> Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL")
            .bind(user_id)
            .fetch_one(db.pool())
            .await?;
    Ok(n)
}

/// Marks one notification read (a read one keeps its first time); `None` when there is none.
pub async fn mark_read(db: &Db, user_id: i64, seq: i64, now: i64) -> Result<Option<Notification>> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE notifications SET read_at = $3 WHERE user_id = $1 AND seq = $2 AND read_at IS NULL",
    )
    .bind(user_id)
    .bind(seq)
    .bind(now)
    .execute(tx.conn())
    .await?;
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND seq = $2"
    )))
    .bind(user_id)
    .bind(seq)
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Marks every unread notification of the user read; returns how many.
pub async fn mark_all_read(db: &Db, user_id: i64, now: i64) -> Result<u64> {
    let mut tx = db.begin().await?;
    let n =
        sqlx::query("UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL")
            .bind(user_id)
            .bind(now)
            .execute(tx.conn())
            .await?
            .rows_affected();
    tx.commit().await?;
    Ok(n)
}
