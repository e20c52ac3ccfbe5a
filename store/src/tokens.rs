//! Refresh tokens: opaque, stored as SHA-256 hashes, rotated on every use.
//!
//! Each login starts a *family*. Refreshing marks the presented token used and issues the next one
//! in the same family. Presenting a token that was already used means it leaked (or a client
//! replayed it): the whole family is revoked, which logs out whoever holds the newer token too.

use sqlx::FromRow;

use crate::db::Db;
use crate::error::Result;

/// Stores a new refresh token in `family_id`.
pub async fn insert_refresh_token(
    db: &Db,
    user_id: i64,
    family_id: &str,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    let mut tx = db.begin().await?;
    insert(tx.conn(), user_id, family_id, token_hash, now, expires_at).await?;
    tx.commit().await
}

async fn insert(
    conn: &mut sqlx::AnyConnection,
    user_id: i64,
    family_id: &str,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(family_id)
    .bind(token_hash)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Result of presenting a refresh token.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid; the new one is stored. Carries the user id.
    Rotated { user_id: i64 },
    /// Unknown, expired or revoked token.
    Invalid,
    /// The token had been used before: its family is now revoked. Carries the user id.
    Reused { user_id: i64 },
}

#[derive(FromRow)]
struct TokenRow {
    id: i64,
    user_id: i64,
    family_id: String,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
}

/// Swaps the token hashed `old_hash` for `new_hash` in one transaction.
pub async fn rotate_refresh_token(
    db: &Db,
    old_hash: &str,
    new_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<Rotation> {
    let mut tx = db.begin().await?;
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT id, user_id, family_id, expires_at, used_at, revoked_at \
         FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(old_hash)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else {
        return Ok(Rotation::Invalid);
    };
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Ok(Rotation::Invalid);
    }
    // Only one of two concurrent refreshes with the same token may win; the loser is a reuse.
    let claimed = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(row.id)
    .bind(now)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if row.used_at.is_some() || claimed == 0 {
        revoke_family(tx.conn(), &row.family_id, now).await?;
        tx.commit().await?;
        return Ok(Rotation::Reused {
            user_id: row.user_id,
        });
    }
    insert(
        tx.conn(),
        row.user_id,
        &row.family_id,
        new_hash,
        now,
        expires_at,
    )
    .await?;
    tx.commit().await?;
    Ok(Rotation::Rotated {
        user_id: row.user_id,
    })
}

async fn revoke_family(conn: &mut sqlx::AnyConnection, family_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Logs out one session: revokes the family of the token hashed `token_hash`, if it belongs to
/// `user_id`. Returns whether a family was found.
pub async fn revoke_by_token(db: &Db, user_id: i64, token_hash: &str, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let family: Option<(String,)> = sqlx::query_as(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2",
    )
    .bind(token_hash)
    .bind(user_id)
    .fetch_optional(tx.conn())
    .await?;
    let Some((family,)) = family else {
        return Ok(false);
    };
    revoke_family(tx.conn(), &family, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Logs out everywhere: revokes every refresh token of `user_id`.
pub async fn revoke_all(db: &Db, user_id: i64, now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}

/// Deletes refresh tokens past their expiry (a used one is kept until then, for reuse detection).
pub async fn prune_expired(db: &Db, now: i64) -> Result<u64> {
    let mut tx = db.begin().await?;
    let done = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(done)
}
