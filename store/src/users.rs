//! Accounts: one row per user, keyed by normalised email.

use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

use crate::db::Db;
use crate::error::{is_unique_violation, Result};

/// A user as the API shows it (never the password hash).
#[derive(Clone, Debug, FromRow, Serialize, PartialEq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub nickname: String,
    pub penalty_count: i64,
    pub banned_until: Option<i64>,
    pub created_at: i64,
}

const USER_COLUMNS: &str = "id, email, nickname, penalty_count, banned_until, created_at";

/// Why a sign-up was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error("an account with this email exists")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// Creates a user. `email` must already be normalised and `password_hash` computed.
pub async fn insert_user(
    db: &Db,
    email: &str,
    password_hash: &str,
    nickname: &str,
    now: i64,
) -> Result<User, SignupError> {
    let mut tx = db.begin().await?;
    let inserted = sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(&*format!(
        "INSERT INTO users (email, password_hash, nickname, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING {USER_COLUMNS}"
    )))
    .bind(email)
    .bind(password_hash)
    .bind(nickname)
    .bind(now)
    .fetch_one(tx.conn())
    .await;
    match inserted {
        Ok(user) => {
            tx.commit().await?;
            Ok(user)
        }
        Err(err) if is_unique_violation(&err) => Err(SignupError::EmailTaken),
        Err(err) => Err(crate::Error::from(err).into()),
    }
}

/// A user by id.
pub async fn get_user(db: &Db, id: i64) -> Result<Option<User>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// A user and their password hash, by normalised email, for logging in.
pub async fn find_login(db: &Db, email: &str) -> Result<Option<(User, String)>> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: User,
        password_hash: String,
    }
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(&*format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1"
    )))
    .bind(email)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| (r.user, r.password_hash)))
}

/// A user's standing: `None` when no such user exists (a valid token can outlive its account),
/// else when their ban ends, if they have one.
pub(crate) async fn banned_until(
    conn: &mut AnyConnection,
    user_id: i64,
) -> Result<Option<Option<i64>>> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT banned_until FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(until,)| until))
}

/// What a public profile counts: parties led (any state) and meets attended.
pub async fn party_counts(db: &Db, user_id: i64) -> Result<(i64, i64)> {
    let (led,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM parties WHERE leader_id = $1")
        .bind(user_id)
        .fetch_one(db.pool())
        .await?;
    let (attended,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM bookings WHERE user_id = $1 AND status = '{}'",
        crate::lifecycle::BookingStatus::Attended
    )))
    .bind(user_id)
    .fetch_one(db.pool())
    .await?;
    Ok((led, attended))
}
