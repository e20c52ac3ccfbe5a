//! Parties: a group buy of one item at one market. Every change is a conditional update naming the
//! state it leaves, and writes its outbox event in the same transaction.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, FromRow};

use crate::cursor;
use crate::db::Db;
use crate::error::Result;
use crate::lifecycle::{accepts_bookings, BookingStatus};
use crate::query::Filter;
use crate::rules::{self, Invalid};
use crate::topics::{party_kind, PARTIES_TOPIC};
use crate::{items, markets, outbox};

pub use crate::lifecycle::PartyStatus;

#[derive(Clone, Debug, FromRow, Serialize, Deserialize, PartialEq)]
pub struct Party {
    pub id: i64,
    pub leader_id: i64,
    pub market_id: i64,
    pub item_id: i64,
    pub title: String,
    pub description: String,
    pub capacity: i64,
    pub joined: i64,
    /// Members (leader included) needed by the deadline, else the party is cancelled.
    #[serde(default = "default_min_members")]
    pub min_members: i64,
    pub price_per_share: Option<i64>,
    pub meet_at: i64,
    pub deadline_at: i64,
    #[sqlx(try_from = "String")]
    pub status: PartyStatus,
    pub cancel_reason: Option<String>,
    pub lat: f64,
    pub lng: f64,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Snapshots written before `min_members` existed read as the default.
fn default_min_members() -> i64 {
    rules::MIN_MEMBERS_DEFAULT
}

impl Party {
    /// Whether the party takes a new booking at `now` (see [`accepts_bookings`]).
    pub fn accepts_bookings(&self, now: i64) -> bool {
        accepts_bookings(
            self.status,
            self.joined,
            self.capacity,
            self.deadline_at,
            now,
        )
    }
}

pub(crate) const COLUMNS: &str =
    "id, leader_id, market_id, item_id, title, description, capacity, \
     joined, min_members, price_per_share, meet_at, deadline_at, status, cancel_reason, lat, lng, version, \
     created_at, updated_at";

/// A party to create. [`create_party`] checks it against [`crate::rules`] whoever built it.
#[derive(Clone, Debug)]
pub struct NewParty {
    pub leader_id: i64,
    pub market_id: i64,
    pub item_id: i64,
    pub title: String,
    pub description: String,
    pub capacity: i64,
    /// Members needed by the deadline, leader included (2..=capacity).
    pub min_members: i64,
    pub price_per_share: Option<i64>,
    pub meet_at: i64,
    pub deadline_at: i64,
}

impl NewParty {
    /// Checks every value against the rules, the times against `now`, and normalises the text
    /// (trimmed title and description).
    pub fn checked(mut self, now: i64) -> Result<Self, Invalid> {
        rules::positive_id(self.market_id, "market_id")?;
        rules::positive_id(self.item_id, "item_id")?;
        self.title = rules::title(&self.title)?;
        self.description = rules::description(&self.description)?;
        rules::capacity(self.capacity)?;
        rules::min_members(self.min_members, self.capacity)?;
        rules::price_per_share(self.price_per_share)?;
        rules::party_times(self.meet_at, self.deadline_at, now)?;
        Ok(self)
    }
}

/// Why a party change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PartyError {
    #[error("party not found")]
    NotFound,
    #[error("market not found")]
    MarketNotFound,
    #[error("market has no coordinates, so no party can meet there")]
    MarketWithoutLocation,
    #[error("item not found")]
    ItemNotFound,
    #[error("only the leader may change this party")]
    NotLeader,
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the party has already met")]
    AlreadyMet,
    #[error("the party is {0}")]
    WrongStatus(PartyStatus),
    #[error("user is banned until {0}")]
    Banned(i64),
    #[error("the user does not exist")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] crate::Error),
}

impl From<sqlx::Error> for PartyError {
    fn from(err: sqlx::Error) -> Self {
        PartyError::Store(err.into())
    }
}

/// The event payload: the party as it is after the change, plus details of the change.
#[derive(Serialize)]
pub struct PartyEvent<'a> {
    pub party: &'a Party,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_ids: Option<Vec<i64>>,
    /// The meet time before an edit that moved it (so chat can say so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meet_moved_from: Option<i64>,
}

pub(crate) async fn write_event(
    conn: &mut AnyConnection,
    kind: &str,
    event: &PartyEvent<'_>,
    now: i64,
) -> Result<()> {
    outbox::insert(conn, PARTIES_TOPIC, kind, event, now).await?;
    Ok(())
}

pub async fn get_party(db: &Db, id: i64) -> Result<Option<Party>> {
    get_party_on(&mut *db.pool().acquire().await?, id).await
}

pub async fn get_party_on(conn: &mut AnyConnection, id: i64) -> Result<Option<Party>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "SELECT {COLUMNS} FROM parties WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Creates a party with its leader as the first member.
pub async fn create_party(db: &Db, new: &NewParty, now: i64) -> Result<Party, PartyError> {
    let new = &new.clone().checked(now)?;
    let mut tx = db.begin().await?;
    let leader = crate::users::banned_until(tx.conn(), new.leader_id)
        .await?
        .ok_or(PartyError::UnknownUser)?;
    if let Some(until) = leader.filter(|until| *until > now) {
        return Err(PartyError::Banned(until));
    }
    let market = markets::get_market_on(tx.conn(), new.market_id)
        .await?
        .filter(|m| m.active == 1)
        .ok_or(PartyError::MarketNotFound)?;
    let (Some(lat), Some(lng)) = (market.lat, market.lng) else {
        return Err(PartyError::MarketWithoutLocation);
    };
    items::get_item_on(tx.conn(), new.item_id)
        .await?
        .filter(|i| i.active == 1)
        .ok_or(PartyError::ItemNotFound)?;
    let party: Party = sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "INSERT INTO parties (leader_id, market_id, item_id, title, description, capacity, joined, \
         price_per_share, meet_at, deadline_at, status, lat, lng, version, created_at, updated_at, \
         min_members) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, '{}', $10, $11, 1, $12, $12, $13) \
         RETURNING {COLUMNS}",
        PartyStatus::Recruiting
    )))
    .bind(new.leader_id)
    .bind(new.market_id)
    .bind(new.item_id)
    .bind(&new.title)
    .bind(&new.description)
    .bind(new.capacity)
    .bind(new.price_per_share)
    .bind(new.meet_at)
    .bind(new.deadline_at)
    .bind(lat)
    .bind(lng)
    .bind(now)
    .bind(new.min_members)
    .fetch_one(tx.conn())
    .await?;
    crate::members::insert_booking(tx.conn(), party.id, new.leader_id, now).await?;
    let event = PartyEvent {
        party: &party,
        user_id: Some(new.leader_id),
        member_ids: None,
        meet_moved_from: None,
    };
    write_event(tx.conn(), party_kind::CREATED, &event, now).await?;
    tx.commit().await?;
    Ok(party)
}

/// Fields a leader may edit; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct PartyPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub meet_at: Option<i64>,
}

impl PartyPatch {
    /// Checks the fields given against the rules (and a new meet time against `now`).
    pub fn checked(self, now: i64) -> Result<Self, Invalid> {
        if let Some(meet_at) = self.meet_at {
            rules::meet_ahead(meet_at, now)?;
        }
        Ok(Self {
            title: self.title.as_deref().map(rules::title).transpose()?,
            description: self
                .description
                .as_deref()
                .map(rules::description)
                .transpose()?,
            meet_at: self.meet_at,
        })
    }
}

/// Edits a party that has not met yet and is not cancelled or completed.
pub async fn update_party(
    db: &Db,
    id: i64,
    leader_id: i64,
    patch: &PartyPatch,
    now: i64,
) -> Result<Party, PartyError> {
    let patch = &patch.clone().checked(now)?;
    let mut tx = db.begin().await?;
    // Read in the write transaction (SQLite has one writer; on PostgreSQL the update below waits
    // for a concurrent edit, which at worst names a slightly older time as the one moved from).
    let before: Option<(i64,)> = sqlx::query_as("SELECT meet_at FROM parties WHERE id = $1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    let updated: Option<Party> = sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "UPDATE parties SET title = COALESCE($3, title), description = COALESCE($4, description), \
         meet_at = COALESCE($5, meet_at), version = version + 1, updated_at = $6 \
         WHERE id = $1 AND leader_id = $2 AND status IN ({}) AND meet_at > $6 \
         AND COALESCE($5, meet_at) >= deadline_at RETURNING {COLUMNS}",
        PartyStatus::live_sql()
    )))
    .bind(id)
    .bind(leader_id)
    .bind(&patch.title)
    .bind(&patch.description)
    .bind(patch.meet_at)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    let Some(party) = updated else {
        let current = get_party_on(tx.conn(), id).await?;
        return Err(refusal(current, leader_id, now, |p| {
            patch.meet_at.is_some_and(|t| t < p.deadline_at)
        }));
    };
    let meet_moved_from = before.map(|(at,)| at).filter(|at| *at != party.meet_at);
    let event = PartyEvent {
        party: &party,
        user_id: None,
        member_ids: None,
        meet_moved_from,
    };
    write_event(tx.conn(), party_kind::UPDATED, &event, now).await?;
    tx.commit().await?;
    Ok(party)
}

/// Explains why a leader's conditional update matched no row.
fn refusal(
    current: Option<Party>,
    leader_id: i64,
    now: i64,
    meet_before_deadline: impl Fn(&Party) -> bool,
) -> PartyError {
    match current {
        None => PartyError::NotFound,
        Some(p) if p.leader_id != leader_id => PartyError::NotLeader,
        Some(p) if !p.status.is_live() => PartyError::WrongStatus(p.status),
        Some(p) if p.meet_at <= now => PartyError::AlreadyMet,
        Some(p) if meet_before_deadline(&p) => PartyError::Invalid(Invalid::new(
            "deadline_at",
            "the booking deadline must not be after the meet time",
        )),
        Some(p) => PartyError::WrongStatus(p.status),
    }
}

/// Cancels a party before it meets. Members are named in the event so they can be told.
pub async fn cancel_party(
    db: &Db,
    id: i64,
    leader_id: i64,
    reason: &str,
    now: i64,
) -> Result<Party, PartyError> {
    let reason = rules::cancel_reason(reason)?;
    let mut tx = db.begin().await?;
    let cancelled: Option<Party> = sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "UPDATE parties SET status = '{}', cancel_reason = $3, version = version + 1, updated_at = $4 \
         WHERE id = $1 AND leader_id = $2 AND status IN ({}) AND meet_at > $4 \
         RETURNING {COLUMNS}",
        PartyStatus::Cancelled,
        PartyStatus::sources_sql(PartyStatus::Cancelled)
    )))
    .bind(id)
    .bind(leader_id)
    .bind(&reason)
    .bind(now)
    .fetch_optional(tx.conn())
    .await?;
    let Some(party) = cancelled else {
        let current = get_party_on(tx.conn(), id).await?;
        return Err(refusal(current, leader_id, now, |_| false));
    };
    let members = crate::members::member_ids(tx.conn(), id).await?;
    let event = PartyEvent {
        party: &party,
        user_id: None,
        member_ids: Some(members),
        meet_moved_from: None,
    };
    write_event(tx.conn(), party_kind::CANCELLED, &event, now).await?;
    tx.commit().await?;
    Ok(party)
}

/// Filters for [`list_parties`].
#[derive(Clone, Debug, Default)]
pub struct PartyFilter {
    pub market_id: Option<i64>,
    pub item_id: Option<i64>,
    pub status: Option<PartyStatus>,
}

/// A page of parties, newest first, before `before` (exclusive).
pub async fn list_parties(
    db: &Db,
    filter: &PartyFilter,
    before: Option<i64>,
    limit: usize,
) -> Result<(Vec<Party>, Option<String>)> {
    let mut f = Filter::new();
    if let Some(market_id) = filter.market_id {
        f.eq_i64("market_id", market_id);
    }
    if let Some(item_id) = filter.item_id {
        f.eq_i64("item_id", item_id);
    }
    if let Some(status) = &filter.status {
        f.eq_str("status", status.as_str());
    }
    f.lt_i64("id", before.unwrap_or(i64::MAX));
    let sql = format!(
        "SELECT {COLUMNS} FROM parties {} ORDER BY id DESC LIMIT {}",
        f.where_clause(),
        limit + 1
    );
    let rows: Vec<Party> = f
        .bind_all(sqlx::query_as(sqlx::AssertSqlSafe(&*sql)))
        .fetch_all(db.pool())
        .await?;
    Ok(cursor::page(rows, limit, |p| p.id))
}

/// Which of a user's parties to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Member,
    Any,
}

/// A party of the user's, with whether they lead it.
#[derive(Clone, Debug, FromRow)]
pub struct MyParty {
    #[sqlx(flatten)]
    pub party: Party,
    #[sqlx(try_from = "String")]
    pub booking_status: BookingStatus,
}

/// The parties a user leads or belongs to (bookings not left), newest first.
pub async fn list_user_parties(
    db: &Db,
    user_id: i64,
    role: Role,
    before: Option<i64>,
    limit: usize,
) -> Result<(Vec<MyParty>, Option<String>)> {
    let role_clause = match role {
        Role::Leader => "AND p.leader_id = $1",
        Role::Member => "AND p.leader_id <> $1",
        Role::Any => "",
    };
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("p.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns}, b.status AS booking_status FROM parties p \
         JOIN bookings b ON b.party_id = p.id AND b.user_id = $1 AND b.status <> '{}' \
         WHERE p.id < $2 {role_clause} ORDER BY p.id DESC LIMIT {}",
        BookingStatus::Left,
        limit + 1
    );
    let rows: Vec<MyParty> = sqlx::query_as(sqlx::AssertSqlSafe(&*sql))
        .bind(user_id)
        .bind(before.unwrap_or(i64::MAX))
        .fetch_all(db.pool())
        .await?;
    Ok(cursor::page(rows, limit, |p| p.party.id))
}

/// Every open party (see [`PartyStatus::is_open`]): what the nearby index holds.
pub async fn list_open_parties(db: &Db) -> Result<Vec<Party>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "SELECT {COLUMNS} FROM parties WHERE status IN ({}) ORDER BY id",
        PartyStatus::open_sql()
    )))
    .fetch_all(db.pool())
    .await?)
}
