//! Reminders before a party's meet (24 hours and 1 hour ahead) to every current member, leader
//! included. The sweeper finds the reminders due and not sent from the parties' own meet times;
//! [`send`] (a job) re-reads the party, so a cancelled party or a moved meet sends nothing for the
//! old time, and records the reminder as sent with its outbox event in one transaction; the
//! notifications consumer turns the event into the members' notifications, as it does every
//! other cause.

use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::error::Result;
use crate::lifecycle::PartyStatus;
use crate::outbox;
use crate::topics::{reminder_kind, REMINDERS_TOPIC};
use crate::transitions::Due;

/// A reminder's lead before the meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lead {
    Day,
    Hour,
}

impl Lead {
    pub const ALL: [Lead; 2] = [Lead::Day, Lead::Hour];

    pub fn ms(self) -> i64 {
        match self {
            Lead::Day => 24 * 3_600_000,
            Lead::Hour => 3_600_000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lead::Day => "24h",
            Lead::Hour => "1h",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Lead::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The reminder with the next shorter lead (none after the last).
    fn shorter(self) -> Option<Self> {
        match self {
            Lead::Day => Some(Lead::Hour),
            Lead::Hour => None,
        }
    }
}

/// Live parties whose `lead` reminder is due and not sent: the meet is less than `lead` ahead
/// (and more than the next shorter lead, which replaces it), oldest meet first. A party past its
/// booking deadline but not closed yet waits for its close job: it may be cancelled instead.
pub async fn due(db: &Db, lead: Lead, now: i64, limit: i64) -> Result<Vec<Due>> {
    let until = lead.shorter().map_or(now, |s| now + s.ms());
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, meet_at AS at FROM parties p WHERE status IN ({}) \
         AND meet_at > $1 AND meet_at <= $2 AND (status = '{}' OR deadline_at > $5) AND NOT EXISTS (SELECT 1 FROM reminders_sent r \
         WHERE r.party_id = p.id AND r.meet_at = p.meet_at AND r.lead = $3) \
         ORDER BY meet_at LIMIT $4",
        PartyStatus::live_sql(),
        PartyStatus::Closed
    )))
    .bind(until)
    .bind(now + lead.ms())
    .bind(lead.as_str())
    .bind(limit)
    .bind(now)
    .fetch_all(db.pool())
    .await?)
}

/// What a reminder event carries: the notifications consumer writes one notification per member.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReminderDue {
    pub party_id: i64,
    pub meet_at: i64,
    /// `24h` or `1h`.
    pub lead: String,
    pub title: String,
    /// The members (leader included) when the reminder was due.
    pub member_ids: Vec<i64>,
}

/// Marks the `lead` reminder of `party_id`'s meet at `meet_at` sent and writes its event, unless
/// the party is no longer live, its meet moved, the reminder is not due, or it was sent already.
/// Returns whether it did.
pub async fn send(db: &Db, party_id: i64, meet_at: i64, lead: Lead, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let party = crate::parties::get_party_on(tx.conn(), party_id).await?;
    let Some(party) = party.filter(|p| p.status.is_live() && p.meet_at == meet_at) else {
        return Ok(false);
    };
    if now < meet_at - lead.ms() || now >= meet_at {
        return Ok(false);
    }
    let marked = sqlx::query(
        "INSERT INTO reminders_sent (party_id, meet_at, lead, sent_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (party_id, meet_at, lead) DO NOTHING",
    )
    .bind(party_id)
    .bind(meet_at)
    .bind(lead.as_str())
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if marked == 0 {
        return Ok(false);
    }
    let due = ReminderDue {
        party_id,
        meet_at,
        lead: lead.as_str().to_owned(),
        title: party.title,
        member_ids: crate::members::member_ids(tx.conn(), party_id).await?,
    };
    outbox::insert(tx.conn(), REMINDERS_TOPIC, reminder_kind::DUE, &due, now).await?;
    tx.commit().await?;
    Ok(true)
}
