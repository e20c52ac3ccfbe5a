//! gonggu's shared state.
//!
//! Two halves, each with an embedded and a scale-out implementation behind one interface:
//! - the **system of record** in SQL ([`db::Db`]): SQLite in the embedded default, PostgreSQL when
//!   scaled out, reached through sqlx's `Any` driver so every query is written once;
//! - **live state** ([`live`]): pub/sub bus, TTL cache, rate limiter and waiting-room queues,
//!   in-process or on Redis.
//!
//! Domain operations (create a party, join one, rotate a refresh token) live here too, as functions
//! that own their transaction and write the matching outbox event in it. This crate knows nothing
//! of HTTP.

pub mod attendance;
pub mod bookings;
pub mod catalog;
pub mod chat;
pub mod clock;
pub mod consumers;
pub mod cursor;
pub mod db;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod ingest_runs;
pub mod items;
pub mod lifecycle;
pub mod live;
pub mod markets;
pub mod members;
pub mod notification_kinds;
pub mod notification_prefs;
pub mod notifications;
pub mod outbox;
pub mod parties;
pub mod penalties;
pub mod push;
mod query;
pub mod reminders;
pub mod rooms;
pub mod rules;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod topics;
pub mod transitions;
pub mod users;
pub mod wishlists;

pub use clock::Clock;
pub use db::{Db, Dialect, Tx};
pub use error::{Error, Result};
