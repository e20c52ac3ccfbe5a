//! Bus topics, event kinds and the envelope events travel in, in one place. Imports none of our
//! modules, so any module may name a topic or write an event without a cycle.

use serde::{Deserialize, Serialize};

/// What travels on the bus. `events::Event` reads it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    /// The outbox row id.
    pub id: i64,
    pub kind: String,
    /// When the change was committed, UTC unix ms.
    pub at: i64,
    pub data: serde_json::Value,
}

/// Topic of party lifecycle events (`party.*`).
pub const PARTIES_TOPIC: &str = "parties";

/// Topic of market changes; the nearby index reloads its markets on any event there.
pub const MARKETS_TOPIC: &str = "markets";

/// Topic of what happens to an account (`penalty.*`, `user.*`): penalties and bans.
pub const USERS_TOPIC: &str = "users";

/// Topic of reminders due before a meet (`reminder.due`); the notifications consumer reads them.
pub const REMINDERS_TOPIC: &str = "reminders";

/// A waiting room's notices (`queue.{party}`).
pub fn queue(party_id: i64) -> String {
    format!("queue.{party_id}")
}

/// A party's chat: new messages and typing notices (`chat.{party}`).
pub fn chat(party_id: i64) -> String {
    format!("chat.{party_id}")
}

/// Told when a user's sessions end, so their open streams close (`sessions.{user}`).
pub fn sessions(user_id: i64) -> String {
    format!("sessions.{user_id}")
}

/// A user's new notifications, each a `notifications::Notification` as JSON
/// (`notifications.{user}`), published after the write commits, for their open streams.
pub fn notifications(user_id: i64) -> String {
    format!("notifications.{user_id}")
}

/// Event kinds on [`PARTIES_TOPIC`].
pub mod party_kind {
    pub const CREATED: &str = "party.created";
    pub const UPDATED: &str = "party.updated";
    pub const CANCELLED: &str = "party.cancelled";
    pub const FULL: &str = "party.full";
    pub const REOPENED: &str = "party.reopened";
    pub const JOINED: &str = "party.member_joined";
    pub const LEFT: &str = "party.member_left";
    /// The booking deadline passed with enough members.
    pub const CLOSED: &str = "party.closed";
    /// The meet is over (a configured time after it).
    pub const COMPLETED: &str = "party.completed";
    /// The leader marked a member attended or no_show. The payload is `attendance::Marked`.
    pub const ATTENDANCE_MARKED: &str = "party.attendance_marked";
}

/// Event kinds on [`USERS_TOPIC`]. The payload is `penalties::PenaltyChange`.
pub mod user_kind {
    pub const PENALTY_APPLIED: &str = "penalty.applied";
    pub const PENALTY_REVOKED: &str = "penalty.revoked";
    /// A ban started (with its end).
    pub const BANNED: &str = "user.banned";
}

/// Event kinds on [`MARKETS_TOPIC`]. The payload is `catalog::MarketIds`.
pub mod market_kind {
    /// Markets inserted or changed (coordinates, name, kind, reactivation).
    pub const UPSERTED: &str = "market.upserted";
    /// Markets that vanished from their source and were marked inactive.
    pub const DEACTIVATED: &str = "market.deactivated";
}

/// Event kinds on [`REMINDERS_TOPIC`]. The payload is `reminders::ReminderDue`.
pub mod reminder_kind {
    pub const DUE: &str = "reminder.due";
}
