//! Penalties for no-shows, and the bans they bring.
//!
//! A penalty exists once per (party, user), enforced by a unique index: [`settle`] brings it in
//! line with the booking (a `no_show` has an active penalty, anything else none) however often it
//! runs, so retried or concurrent jobs cannot stack penalties (the seed's real bug). A user's
//! active penalties are those of the last [`Policy::active_window_ms`] not revoked; reaching
//! [`Policy::ban_threshold`] starts a ban of [`Policy::ban_ms`] unless one is running (bans never
//! stack), and falling below it lifts the ban. Every change writes its event (`penalty.applied`,
//! `penalty.revoked`, `user.banned`) on the users topic, for notifications.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, FromRow};

use crate::attendance::booking_status;
use crate::cursor;
use crate::db::Db;
use crate::error::Result;
use crate::lifecycle::BookingStatus;
use crate::live::Cache;
use crate::outbox;
use crate::topics::{user_kind, USERS_TOPIC};

/// Why a penalty was given.
pub const NO_SHOW: &str = "no_show";

const DAY_MS: i64 = 24 * 3_600_000;

/// How penalties count and ban.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// How long a penalty counts (90 days by default).
    pub active_window_ms: i64,
    /// Active penalties that start a ban (3 by default).
    pub ban_threshold: i64,
    /// How long a ban lasts (14 days by default).
    pub ban_ms: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            active_window_ms: 90 * DAY_MS,
            ban_threshold: 3,
            ban_ms: 14 * DAY_MS,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, FromRow, Serialize, Deserialize)]
pub struct Penalty {
    pub id: i64,
    pub user_id: i64,
    pub party_id: i64,
    pub reason: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, party_id, reason, created_at, revoked_at";

/// The payload of the users topic's events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PenaltyChange {
    pub user_id: i64,
    pub penalty: Option<Penalty>,
    /// Set when a ban is running after the change.
    pub banned_until: Option<i64>,
    pub active_penalties: i64,
}

/// What [`settle`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    Applied,
    Revoked,
    Unchanged,
}

/// Brings the penalty of `user_id` for `party_id` in line with their booking, then their ban.
pub async fn settle(
    db: &Db,
    party_id: i64,
    user_id: i64,
    now: i64,
    policy: &Policy,
) -> Result<Settled> {
    let mut tx = db.begin().await?;
    let status = booking_status(tx.conn(), party_id, user_id).await?;
    let outcome = if status == Some(BookingStatus::NoShow) {
        // A new penalty, or one a leader's correction revoked coming back; an operator's
        // revocation (`revoked_by`) stands.
        let changed = sqlx::query(
            "INSERT INTO penalties (user_id, party_id, reason, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (party_id, user_id) DO UPDATE SET revoked_at = NULL \
             WHERE penalties.revoked_at IS NOT NULL AND penalties.revoked_by IS NULL",
        )
        .bind(user_id)
        .bind(party_id)
        .bind(NO_SHOW)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if changed > 0 {
            Settled::Applied
        } else {
            Settled::Unchanged
        }
    } else {
        let changed = sqlx::query(
            "UPDATE penalties SET revoked_at = $3 \
             WHERE party_id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(party_id)
        .bind(user_id)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if changed > 0 {
            Settled::Revoked
        } else {
            Settled::Unchanged
        }
    };
    if outcome != Settled::Unchanged {
        let penalty = penalty_of(tx.conn(), party_id, user_id).await?;
        let kind = if outcome == Settled::Applied {
            user_kind::PENALTY_APPLIED
        } else {
            user_kind::PENALTY_REVOKED
        };
        recompute(tx.conn(), user_id, penalty, kind, now, policy).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// An operator's revocation: final (a later mark does not bring it back). `None` when there is no
/// such penalty or it was already revoked.
pub async fn revoke(
    db: &Db,
    penalty_id: i64,
    operator_id: i64,
    now: i64,
    policy: &Policy,
) -> Result<Option<Penalty>> {
    let mut tx = db.begin().await?;
    let revoked: Option<Penalty> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE penalties SET revoked_at = $2, revoked_by = $3 \
         WHERE id = $1 AND revoked_at IS NULL RETURNING {COLUMNS}"
    )))
    .bind(penalty_id)
    .bind(now)
    .bind(operator_id)
    .fetch_optional(tx.conn())
    .await?;
    if let Some(p) = &revoked {
        recompute(
            tx.conn(),
            p.user_id,
            Some(p.clone()),
            user_kind::PENALTY_REVOKED,
            now,
            policy,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(revoked)
}

async fn penalty_of(
    conn: &mut AnyConnection,
    party_id: i64,
    user_id: i64,
) -> Result<Option<Penalty>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM penalties WHERE party_id = $1 AND user_id = $2"
    )))
    .bind(party_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

async fn active_on(
    conn: &mut AnyConnection,
    user_id: i64,
    now: i64,
    policy: &Policy,
) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM penalties WHERE user_id = $1 AND revoked_at IS NULL AND created_at > $2",
    )
    .bind(user_id)
    .bind(now.saturating_sub(policy.active_window_ms))
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// After a change: the user's active count and ban, and the events saying so.
async fn recompute(
    conn: &mut AnyConnection,
    user_id: i64,
    penalty: Option<Penalty>,
    kind: &str,
    now: i64,
    policy: &Policy,
) -> Result<()> {
    let active = active_on(conn, user_id, now, policy).await?;
    let (current,): (Option<i64>,) = sqlx::query_as("SELECT banned_until FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
    let running = current.filter(|until| *until > now);
    let banned_until = match running {
        // Bans never stack: a penalty during a ban leaves its end alone.
        Some(until) if active >= policy.ban_threshold => Some(until),
        Some(_) => None,
        None if active >= policy.ban_threshold => Some(now.saturating_add(policy.ban_ms)),
        None => None,
    };
    sqlx::query(
        "UPDATE users SET penalty_count = $2, banned_until = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(user_id)
    .bind(active)
    .bind(banned_until)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let change = PenaltyChange {
        user_id,
        penalty,
        banned_until,
        active_penalties: active,
    };
    outbox::insert(conn, USERS_TOPIC, kind, &change, now).await?;
    if running.is_none() && banned_until.is_some() {
        outbox::insert(conn, USERS_TOPIC, user_kind::BANNED, &change, now).await?;
    }
    Ok(())
}

/// The cache key of a user's active penalty count.
fn count_key(user_id: i64) -> String {
    format!("penalties:active:{user_id}")
}

/// How long a cached count is trusted: a penalty ageing out of the window shows within a day.
pub const COUNT_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A user's active penalties, from the live cache when it has them (profiles and joins read this
/// often; every change calls [`forget_count`]).
pub async fn active_count(
    db: &Db,
    cache: &dyn Cache,
    user_id: i64,
    now: i64,
    policy: &Policy,
) -> Result<i64> {
    let key = count_key(user_id);
    if let Ok(Some(bytes)) = cache.get(&key).await {
        if let Some(n) = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.parse().ok())
        {
            return Ok(n);
        }
    }
    let mut conn = db.pool().acquire().await?;
    let n = active_on(&mut conn, user_id, now, policy).await?;
    if let Err(err) = cache.set(&key, n.to_string().as_bytes(), COUNT_TTL).await {
        tracing::warn!(user.id = user_id, error = %err, "penalty count not cached");
    }
    Ok(n)
}

/// Drops a user's cached count after a change.
pub async fn forget_count(cache: &dyn Cache, user_id: i64) {
    if let Err(err) = cache.delete(&count_key(user_id)).await {
        tracing::warn!(user.id = user_id, error = %err, "penalty count not invalidated");
    }
}

/// A page of a user's penalties, newest first.
pub async fn list_for_user(
    db: &Db,
    user_id: i64,
    before: Option<i64>,
    limit: usize,
) -> Result<(Vec<Penalty>, Option<String>)> {
    let rows: Vec<Penalty> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM penalties WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT {}",
        limit + 1
    )))
    .bind(user_id)
    .bind(before.unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await?;
    Ok(cursor::page(rows, limit, |p| p.id))
}
