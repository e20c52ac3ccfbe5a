//! Party request bodies, their parsing into valid values, and the party as the API shows it.

use serde::{Deserialize, Serialize};
use store::bookings::BookingError;
use store::parties::{NewParty, Party, PartyError, PartyPatch};
use store::rules::{self, Invalid};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::time::Timestamp;

/// A party as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct PartyView {
    pub id: i64,
    pub leader_id: i64,
    pub market_id: i64,
    pub item_id: i64,
    pub title: String,
    pub description: String,
    /// Seats in all, the leader's included (2 to 50).
    pub capacity: i64,
    /// Seats taken, the leader's included.
    pub joined: i64,
    pub seats_left: i64,
    /// Members needed by the deadline (leader included), else the party is cancelled with reason
    /// `not_enough_members`.
    pub min_members: i64,
    /// Price of one share in KRW.
    pub price_per_share: Option<i64>,
    pub meet_at: Timestamp,
    pub deadline_at: Timestamp,
    /// recruiting, full, closed, completed or cancelled.
    pub status: String,
    pub cancel_reason: Option<String>,
    /// Where the party meets (the market's coordinates).
    pub lat: f64,
    pub lng: f64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Party> for PartyView {
    fn from(p: Party) -> Self {
        Self {
            id: p.id,
            leader_id: p.leader_id,
            market_id: p.market_id,
            item_id: p.item_id,
            title: p.title,
            description: p.description,
            capacity: p.capacity,
            joined: p.joined,
            seats_left: p.capacity - p.joined,
            min_members: p.min_members,
            price_per_share: p.price_per_share,
            meet_at: Timestamp(p.meet_at),
            deadline_at: Timestamp(p.deadline_at),
            status: p.status.to_string(),
            cancel_reason: p.cancel_reason,
            lat: p.lat,
            lng: p.lng,
            created_at: Timestamp(p.created_at),
            updated_at: Timestamp(p.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePartyRequest {
    #[schema(minimum = 1)]
    pub market_id: i64,
    #[schema(minimum = 1)]
    pub item_id: i64,
    /// 1 to 100 characters.
    #[schema(example = "신라면 5입 번들 나눠요", min_length = 1, max_length = 100)]
    pub title: String,
    /// At most 2,000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Seats including the leader, 2 to 50.
    #[schema(minimum = 2, maximum = 50)]
    pub capacity: i64,
    /// Members needed by the booking deadline, leader included: 2 up to the capacity (default 2).
    /// With fewer, the party is cancelled at the deadline with reason `not_enough_members`.
    #[schema(minimum = 2, maximum = 50)]
    pub min_members: Option<i64>,
    /// KRW, 0 to 10,000,000.
    #[schema(minimum = 0, maximum = 10000000)]
    pub price_per_share: Option<i64>,
    /// In the future, and within the meet horizon (`GONGGU_PARTY_HORIZON_DAYS`, a year by default).
    pub meet_at: Timestamp,
    /// In the future, not after `meet_at`.
    pub deadline_at: Timestamp,
}

/// Refuses a time later than `latest` (now plus the configured horizon).
fn within_horizon(t: Timestamp, field: &str, latest: i64) -> Result<i64, Invalid> {
    rules::within_horizon(t.0, field, latest, &Timestamp(latest).to_rfc3339())
}

impl CreatePartyRequest {
    /// Checks the values against the store's rules (at `now`), and that no time is later than
    /// `latest` (now plus the horizon, a setting of the server's).
    pub fn parse(self, leader_id: i64, now: i64, latest: i64) -> Result<NewParty, Invalid> {
        let new = NewParty {
            leader_id,
            market_id: self.market_id,
            item_id: self.item_id,
            title: self.title,
            description: self.description,
            capacity: self.capacity,
            min_members: self
                .min_members
                .unwrap_or(store::rules::MIN_MEMBERS_DEFAULT),
            price_per_share: self.price_per_share,
            meet_at: self.meet_at.0,
            deadline_at: self.deadline_at.0,
        }
        .checked(now)?;
        within_horizon(self.meet_at, "meet_at", latest)?;
        within_horizon(self.deadline_at, "deadline_at", latest)?;
        Ok(new)
    }
}

/// The fields to change (at least one); a field left out keeps its value. `null` is not a value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePartyRequest {
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(nullable = false, min_length = 1, max_length = 100)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(nullable = false, max_length = 2000)]
    pub description: Option<String>,
    /// In the future, not before the booking deadline, within the meet horizon.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(nullable = false)]
    pub meet_at: Option<Timestamp>,
}

impl UpdatePartyRequest {
    /// Checks the fields given against the store's rules (at `now`); `latest` is now plus the
    /// meet horizon.
    pub fn parse(self, now: i64, latest: i64) -> Result<PartyPatch, Invalid> {
        if self.title.is_none() && self.description.is_none() && self.meet_at.is_none() {
            return Err(Invalid::new(
                "title",
                "give at least one of title, description, meet_at",
            ));
        }
        if let Some(meet_at) = self.meet_at {
            within_horizon(meet_at, "meet_at", latest)?;
        }
        PartyPatch {
            title: self.title,
            description: self.description,
            meet_at: self.meet_at.map(|t| t.0),
        }
        .checked(now)
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelPartyRequest {
    /// Why the party is cancelled; members are told. 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

impl CancelPartyRequest {
    pub fn parse(self) -> Result<String, Invalid> {
        rules::cancel_reason(&self.reason)
    }
}

fn banned(until: i64) -> ApiError {
    ApiError::forbidden(
        "user_banned",
        format!(
            "you are banned from parties until {}",
            Timestamp(until).to_rfc3339()
        ),
    )
}

/// A valid token whose account was deleted: answered as `GET /me` answers it.
fn gone_account() -> ApiError {
    ApiError::unauthorized("the account of this token no longer exists")
}

impl From<PartyError> for ApiError {
    fn from(err: PartyError) -> Self {
        use axum::http::StatusCode;
        match err {
            PartyError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "party_not_found", "party not found")
            }
            PartyError::MarketNotFound => {
                ApiError::invalid("market_id", "no active market with this id")
                    .with_code("market_not_found")
            }
            PartyError::MarketWithoutLocation => {
                ApiError::invalid("market_id", "this market has no coordinates yet")
                    .with_code("market_without_location")
            }
            PartyError::ItemNotFound => ApiError::invalid("item_id", "no active item with this id")
                .with_code("item_not_found"),
            PartyError::NotLeader => {
                ApiError::forbidden("not_party_leader", "only the party's leader may do this")
            }
            PartyError::Invalid(invalid) => invalid.into(),
            PartyError::AlreadyMet => {
                ApiError::conflict("party_already_met", "the party's meet time has passed")
            }
            PartyError::WrongStatus(status) => {
                ApiError::conflict("invalid_party_status", format!("the party is {status}"))
            }
            PartyError::Banned(until) => banned(until),
            PartyError::UnknownUser => gone_account(),
            PartyError::Store(e) => e.into(),
        }
    }
}

impl From<BookingError> for ApiError {
    fn from(err: BookingError) -> Self {
        use axum::http::StatusCode;
        match err {
            BookingError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "party_not_found", "party not found")
            }
            BookingError::Full => ApiError::conflict("party_full", "the party is full"),
            BookingError::DeadlinePassed => {
                ApiError::conflict("deadline_passed", "the booking deadline has passed")
            }
            BookingError::Cancelled => {
                ApiError::conflict("party_cancelled", "the party was cancelled")
            }
            BookingError::Closed(status) => {
                ApiError::conflict("party_closed", format!("the party is {status}"))
            }
            BookingError::AlreadyMember => {
                ApiError::conflict("already_member", "you are already a member of this party")
            }
            BookingError::NotMember => {
                ApiError::conflict("not_a_member", "you are not a member of this party")
            }
            BookingError::LeaderCannotLeave => ApiError::conflict(
                "leader_cannot_leave",
                "the leader cannot leave; cancel the party instead",
            ),
            BookingError::Banned(until) => banned(until),
            BookingError::UnknownUser => gone_account(),
            BookingError::Store(e) => ApiError::internal(e),
        }
    }
}
