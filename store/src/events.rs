//! Domain events: what the outbox stores and the bus carries.
//!
//! Every event is published on a topic as an [`Envelope`]. The envelope's `id` is the outbox row id,
//! unique and increasing per database, so consumers can drop duplicates (delivery is at least once).
//! Readers turn an envelope into an [`Event`] and match on its variants. Topic names and kinds are
//! in [`crate::topics`], which writers use (it imports nothing, so writing an event never imports
//! the modules of the other events).

use serde::{Deserialize, Serialize};

use crate::attendance::Marked;
use crate::catalog::MarketIds;
use crate::parties::Party;
use crate::penalties::PenaltyChange;
pub use crate::topics::{party_kind, Envelope, PARTIES_TOPIC};

impl Envelope {
    /// The typed event, or why it could not be read (an unknown kind, a malformed payload).
    pub fn event(&self) -> Result<Event, serde_json::Error> {
        Event::parse(&self.kind, &self.data)
    }
}

/// A party after a change, and who the change concerns.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PartyChange {
    /// The party as it is after the change (with its `version`).
    pub party: Party,
    /// The member who joined or left; the leader who created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    /// The members at a cancellation (to tell them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_ids: Option<Vec<i64>>,
    /// The meet time before an edit that moved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meet_moved_from: Option<i64>,
}

/// Every event the outbox carries, by kind.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", content = "data")]
pub enum Event {
    #[serde(rename = "party.created")]
    PartyCreated(PartyChange),
    #[serde(rename = "party.updated")]
    PartyUpdated(PartyChange),
    #[serde(rename = "party.cancelled")]
    PartyCancelled(PartyChange),
    #[serde(rename = "party.full")]
    PartyFull(PartyChange),
    #[serde(rename = "party.reopened")]
    PartyReopened(PartyChange),
    #[serde(rename = "party.member_joined")]
    MemberJoined(PartyChange),
    #[serde(rename = "party.member_left")]
    MemberLeft(PartyChange),
    #[serde(rename = "party.closed")]
    PartyClosed(PartyChange),
    #[serde(rename = "party.completed")]
    PartyCompleted(PartyChange),
    #[serde(rename = "party.attendance_marked")]
    AttendanceMarked(Marked),
    #[serde(rename = "penalty.applied")]
    PenaltyApplied(PenaltyChange),
    #[serde(rename = "penalty.revoked")]
    PenaltyRevoked(PenaltyChange),
    #[serde(rename = "user.banned")]
    UserBanned(PenaltyChange),
    #[serde(rename = "market.upserted")]
    MarketsUpserted(MarketIds),
    #[serde(rename = "market.deactivated")]
    MarketsDeactivated(MarketIds),
}

impl Event {
    /// Reads the event stored as `kind` with payload `data`.
    pub fn parse(kind: &str, data: &serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "kind": kind, "data": data }))
    }

    /// The party change, for the party events.
    pub fn party_change(&self) -> Option<&PartyChange> {
        match self {
            Event::PartyCreated(c)
            | Event::PartyUpdated(c)
            | Event::PartyCancelled(c)
            | Event::PartyFull(c)
            | Event::PartyReopened(c)
            | Event::MemberJoined(c)
            | Event::MemberLeft(c)
            | Event::PartyClosed(c)
            | Event::PartyCompleted(c) => Some(c),
            Event::AttendanceMarked(_)
            | Event::PenaltyApplied(_)
            | Event::PenaltyRevoked(_)
            | Event::UserBanned(_)
            | Event::MarketsUpserted(_)
            | Event::MarketsDeactivated(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::market_kind;

    #[test]
    fn every_kind_writers_use_reads_as_its_variant() {
        let party: Party = serde_json::from_value(serde_json::json!({
            "id": 1, "leader_id": 2, "market_id": 3, "item_id": 4, "title": "t", "description": "",
            "capacity": 4, "joined": 1, "price_per_share": null, "meet_at": 10, "deadline_at": 5,
            "status": "recruiting", "cancel_reason": null, "lat": 37.5, "lng": 127.0, "version": 1,
            "created_at": 1, "updated_at": 1
        }))
        .unwrap();
        let change = serde_json::json!({ "party": party, "user_id": 2 });
        for kind in [
            party_kind::CREATED,
            party_kind::UPDATED,
            party_kind::CANCELLED,
            party_kind::FULL,
            party_kind::REOPENED,
            party_kind::JOINED,
            party_kind::LEFT,
            party_kind::CLOSED,
            party_kind::COMPLETED,
        ] {
            let event = Event::parse(kind, &change).unwrap();
            assert_eq!(event.party_change().unwrap().party.id, 1, "{kind}");
            let back = serde_json::to_value(&event).unwrap();
            assert_eq!(back["kind"], kind);
        }
        for kind in [market_kind::UPSERTED, market_kind::DEACTIVATED] {
            let event = Event::parse(kind, &serde_json::json!({ "ids": [1, 2] })).unwrap();
            assert!(event.party_change().is_none());
        }
        assert!(Event::parse("party.unknown", &change).is_err());
    }
}
