//! Domain events: what the outbox stores and the bus carries.
//!
//! Every event is published on a topic as an [`Envelope`]. The envelope's `id` is the outbox row id,
//! unique and increasing per database, so consumers can drop duplicates (delivery is at least once).

use serde::{Deserialize, Serialize};

/// Topic of party lifecycle events (`party.*`).
pub const PARTIES_TOPIC: &str = "parties";

/// Event kinds on [`PARTIES_TOPIC`].
pub mod party_kind {
    pub const CREATED: &str = "party.created";
    pub const UPDATED: &str = "party.updated";
    pub const CANCELLED: &str = "party.cancelled";
    pub const FULL: &str = "party.full";
    pub const REOPENED: &str = "party.reopened";
    pub const JOINED: &str = "party.member_joined";
    pub const LEFT: &str = "party.member_left";
}

/// What travels on the bus.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    /// The outbox row id.
    pub id: i64,
    pub kind: String,
    /// When the change was committed, UTC unix ms.
    pub at: i64,
    pub data: serde_json::Value,
}
