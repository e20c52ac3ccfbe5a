//! The store's error type: database and live-state failures, kept apart from domain refusals
//! (which each operation reports with its own enum).

/// A failure of the storage layer itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("redis error")]
    Redis(#[from] redis::RedisError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("unsupported database url scheme (expected sqlite:, postgres: or postgresql:)")]
    UnsupportedUrl,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// True when `err` is a unique-constraint violation, which callers turn into a domain refusal.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// `err` and its causes, `outer: inner: innermost`: what a log line needs to be acted on
/// ("database error" alone is not).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
