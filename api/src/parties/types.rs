//! Party request bodies, their parsing into valid values, and the party as the API shows it.

use serde::{Deserialize, Serialize};
use store::bookings::BookingError;
use store::parties::{NewParty, Party, PartyError, PartyPatch};
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
            price_per_share: p.price_per_share,
            meet_at: Timestamp(p.meet_at),
            deadline_at: Timestamp(p.deadline_at),
            status: p.status,
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
    pub market_id: i64,
    pub item_id: i64,
    #[schema(example = "신라면 5입 번들 나눠요")]
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Seats including the leader, 2 to 50.
    pub capacity: i64,
    /// KRW, 0 to 10,000,000.
    pub price_per_share: Option<i64>,
    /// In the future, and within the meet horizon (`GONGGU_PARTY_HORIZON_DAYS`, a year by default).
    pub meet_at: Timestamp,
    /// In the future, not after `meet_at`.
    pub deadline_at: Timestamp,
}

/// Refuses a time later than `latest` (now plus the configured horizon): a client may not plan
/// parties decades ahead, and far-future times are where formatting and arithmetic break.
fn within_horizon(t: Timestamp, field: &str, latest: i64) -> Result<i64, ApiError> {
    if t.0 > latest {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} must be at most {} (the furthest a party may be planned ahead)",
                Timestamp(latest).to_rfc3339()
            ),
        ));
    }
    Ok(t.0)
}

pub const TITLE_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 2000;
pub const PRICE_MAX: i64 = 10_000_000;

fn title(raw: &str) -> Result<String, ApiError> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 || n > TITLE_MAX {
        return Err(ApiError::invalid(
            "title",
            format!("title must be 1 to {TITLE_MAX} characters"),
        ));
    }
    Ok(t.to_owned())
}

fn description(raw: &str) -> Result<String, ApiError> {
    let d = raw.trim();
    if d.chars().count() > DESCRIPTION_MAX {
        return Err(ApiError::invalid(
            "description",
            format!("description must be at most {DESCRIPTION_MAX} characters"),
        ));
    }
    Ok(d.to_owned())
}

fn positive_id(id: i64, field: &str) -> Result<i64, ApiError> {
    if id <= 0 {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be a positive id"),
        ));
    }
    Ok(id)
}

impl CreatePartyRequest {
    /// Checks shapes and ranges, and that no time is later than `latest` (now plus the horizon);
    /// the rules against "now" itself are the store's.
    pub fn parse(self, leader_id: i64, latest: i64) -> Result<NewParty, ApiError> {
        if !(2..=50).contains(&self.capacity) {
            return Err(ApiError::invalid(
                "capacity",
                "capacity must be between 2 and 50, the leader included",
            ));
        }
        if self
            .price_per_share
            .is_some_and(|p| !(0..=PRICE_MAX).contains(&p))
        {
            return Err(ApiError::invalid(
                "price_per_share",
                format!("price_per_share must be between 0 and {PRICE_MAX} KRW"),
            ));
        }
        Ok(NewParty {
            leader_id,
            market_id: positive_id(self.market_id, "market_id")?,
            item_id: positive_id(self.item_id, "item_id")?,
            title: title(&self.title)?,
            description: description(&self.description)?,
            capacity: self.capacity,
            price_per_share: self.price_per_share,
            meet_at: within_horizon(self.meet_at, "meet_at", latest)?,
            deadline_at: within_horizon(self.deadline_at, "deadline_at", latest)?,
        })
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePartyRequest {
    pub title: Option<String>,
    pub description: Option<String>,
    /// In the future, not before the booking deadline, within the meet horizon.
    pub meet_at: Option<Timestamp>,
}

impl UpdatePartyRequest {
    /// Checks the fields given; `latest` is now plus the meet horizon.
    pub fn parse(self, latest: i64) -> Result<PartyPatch, ApiError> {
        if self.title.is_none() && self.description.is_none() && self.meet_at.is_none() {
            return Err(ApiError::invalid(
                "title",
                "give at least one of title, description, meet_at",
            ));
        }
        Ok(PartyPatch {
            title: self.title.as_deref().map(title).transpose()?,
            description: self.description.as_deref().map(description).transpose()?,
            meet_at: self
                .meet_at
                .map(|t| within_horizon(t, "meet_at", latest))
                .transpose()?,
        })
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelPartyRequest {
    /// Why the party is cancelled; members are told. 1 to 500 characters.
    pub reason: String,
}

impl CancelPartyRequest {
    pub fn parse(self) -> Result<String, ApiError> {
        let r = self.reason.trim();
        let n = r.chars().count();
        if n == 0 || n > 500 {
            return Err(ApiError::invalid(
                "reason",
                "reason must be 1 to 500 characters",
            ));
        }
        Ok(r.to_owned())
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
            PartyError::MeetInPast => ApiError::invalid("meet_at", "meet_at must be in the future"),
            PartyError::DeadlineInPast => {
                ApiError::invalid("deadline_at", "deadline_at must be in the future")
            }
            PartyError::DeadlineAfterMeet => ApiError::invalid(
                "deadline_at",
                "the booking deadline must not be after the meet time",
            ),
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
