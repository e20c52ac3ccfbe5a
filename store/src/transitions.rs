//! The time-driven steps of a party's life: closing at the booking deadline (or cancelling for too
//! few members) and completing after the meet. Each is one conditional update that names the
//! states it leaves and re-checks the time in its `WHERE`, with its outbox event in the same
//! transaction, so a step run twice, late, or for a party that changed meanwhile (cancelled, meet
//! moved) does nothing. A join racing the close either takes its seat before the close commits or
//! is refused: the join needs `deadline_at > now` and status `recruiting`, the close sets another
//! status.
//!
//! Which parties are due is read by [`due_to_close`] and [`due_to_complete`] (the job sweeper's
//! scan, on partial indexes).

use crate::db::Db;
use crate::error::Result;
use crate::lifecycle::PartyStatus;
use crate::parties::{write_event, Party, PartyEvent, COLUMNS};
use crate::topics::party_kind;

/// Why [`close_at_deadline`] cancels instead of closing.
pub const NOT_ENOUGH_MEMBERS: &str = "not_enough_members";

/// What a step did.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// The party moved; here it is after the change.
    Done(Box<Party>),
    /// Nothing to do: the party is gone, in another state, or not due yet (a stale job).
    Stale,
}

/// At or after the booking deadline, closes a recruiting or full party, or cancels it with reason
/// [`NOT_ENOUGH_MEMBERS`] when fewer than `min_members` joined (members are named in the event).
pub async fn close_at_deadline(db: &Db, party_id: i64, now: i64) -> Result<Step> {
    let mut tx = db.begin().await?;
    let sources = PartyStatus::sql_list(
        PartyStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.can_become(PartyStatus::Closed) && s.can_become(PartyStatus::Cancelled)),
    );
    let moved: Option<Party> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE parties SET \
         status = CASE WHEN joined >= min_members THEN '{closed}' ELSE '{cancelled}' END, \
         cancel_reason = CASE WHEN joined >= min_members THEN cancel_reason ELSE '{reason}' END, \
         version = version + 1, updated_at = $2 \
         WHERE id = $1 AND status IN ({sources}) AND deadline_at <= $2 RETURNING {COLUMNS}",
        closed = PartyStatus::Closed,
        cancelled = PartyStatus::Cancelled,
        reason = NOT_ENOUGH_MEMBERS,
    )))
    .bind(party_id)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    let Some(party) = moved else {
        return Ok(Step::Stale);
    };
    if party.status == PartyStatus::Cancelled {
        let members = crate::members::member_ids(tx.conn(), party_id).await?;
        let event = PartyEvent {
            party: &party,
            user_id: None,
            member_ids: Some(members),
            meet_moved_from: None,
        };
        write_event(tx.conn(), party_kind::CANCELLED, &event, now).await?;
    } else {
        let event = PartyEvent {
            party: &party,
            user_id: None,
            member_ids: None,
            meet_moved_from: None,
        };
        write_event(tx.conn(), party_kind::CLOSED, &event, now).await?;
    }
    tx.commit().await?;
    Ok(Step::Done(Box::new(party)))
}

/// `after_meet_ms` after its meet, completes a closed party.
pub async fn complete_after_meet(
    db: &Db,
    party_id: i64,
    now: i64,
    after_meet_ms: i64,
) -> Result<Step> {
    let mut tx = db.begin().await?;
    let moved: Option<Party> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE parties SET status = '{}', version = version + 1, updated_at = $2 \
         WHERE id = $1 AND status IN ({}) AND meet_at <= $3 RETURNING {COLUMNS}",
        PartyStatus::Completed,
        PartyStatus::sources_sql(PartyStatus::Completed),
    )))
    .bind(party_id)
    .bind(now)
    .bind(now.saturating_sub(after_meet_ms))
    .fetch_optional(tx.conn())
    .await?;
    let Some(party) = moved else {
        return Ok(Step::Stale);
    };
    let event = PartyEvent {
        party: &party,
        user_id: None,
        member_ids: None,
        meet_moved_from: None,
    };
    write_event(tx.conn(), party_kind::COMPLETED, &event, now).await?;
    tx.commit().await?;
    Ok(Step::Done(Box::new(party)))
}

/// A party due for a step, with the time that made it due (a job's idempotency key names both, so
/// a moved meet time is a new job while a repeated scan is not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Due {
    pub id: i64,
    pub at: i64,
}

/// Open parties whose booking deadline has passed, oldest deadline first.
pub async fn due_to_close(db: &Db, now: i64, limit: i64) -> Result<Vec<Due>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, deadline_at AS at FROM parties WHERE status IN ({}) AND deadline_at <= $1 \
         ORDER BY deadline_at LIMIT $2",
        PartyStatus::open_sql()
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Closed parties whose meet was at least `after_meet_ms` ago, oldest meet first.
pub async fn due_to_complete(
    db: &Db,
    now: i64,
    after_meet_ms: i64,
    limit: i64,
) -> Result<Vec<Due>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, meet_at AS at FROM parties WHERE status = '{}' AND meet_at <= $1 \
         ORDER BY meet_at LIMIT $2",
        PartyStatus::Closed
    )))
    .bind(now.saturating_sub(after_meet_ms))
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}
