//! The API's integration tests, one binary: each module is one area, every test spawns the real
//! server (see `common`), and `on_both_backends!` runs the storage-dependent ones on SQLite with
//! in-process state and on PostgreSQL with Redis. One binary instead of one per file: each links
//! the whole app, which on two cores was most of CI's time.

#[macro_use]
mod common;
mod attendance;
mod auth;
mod booking;
mod catalog;
mod chat;
mod hardening;
mod http_surface;
mod ingest;
mod ingest_cli;
mod jobs;
mod lifecycle;
mod nearby;
mod notifications;
mod parties;
mod push;
mod queue;
mod serve_config;
mod slow_clients;
