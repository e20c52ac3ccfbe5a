//! The store's integration tests, one binary: the SQL layer on both dialects, the durable outbox
//! consumers, and the live-state contracts run against the in-process and Redis implementations.

mod catalog_roundtrip;
mod consumers;
mod live_contract;
mod queue_contract;
mod sql;
