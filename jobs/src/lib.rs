//! Background jobs for gonggu: penalties, reminders, party lifecycle and the nightly ingest.
//!
//! The crate holds no jobs yet; each arrives with the issue that makes it real, so nothing here
//! pretends to work.
