//! gonggu's API: HTTP routes, extractors and errors, and the `gonggu` command line.
//!
//! Read [`http::router`] for the route table and [`cli`] for the subcommands.

pub mod admin;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod config;
pub mod error;
pub mod extract;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod ingest_cmd;
pub mod ingest_runs;
pub mod items;
pub mod limits;
pub mod listener;
pub mod markets;
pub mod metrics;
pub mod nearby;
pub mod notifications;
pub mod openapi;
pub mod paging;
pub mod parties;
pub mod penalties;
pub mod queue;
pub mod seed;
pub mod server;
pub mod state;
pub mod streams;
pub mod telemetry;
pub mod time;
