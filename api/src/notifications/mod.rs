//! Notifications: wishlists (what a user watches), the inbox, and its live stream.
//!
//! Notifications are written by the `notifications` outbox consumer (`jobs::notifier`), never by
//! the request that made the change; this module reads the inbox, marks it read, and streams it.

mod preferences;
mod push;
mod stream;
mod wishlists;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::notifications::{self, Notification};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Path, Query};
use crate::paging;
use crate::state::AppState;
use crate::time::Timestamp;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            wishlists::create_wishlist,
            wishlists::list_my_wishlists
        ))
        .routes(routes!(wishlists::delete_wishlist))
        .routes(routes!(list_my_notifications))
        .routes(routes!(read_notification))
        .routes(routes!(read_all_notifications))
        .routes(routes!(stream::stream_my_notifications))
        .routes(routes!(
            preferences::get_my_notification_preferences,
            preferences::put_my_notification_preferences
        ))
        .routes(routes!(
            push::create_push_subscription,
            push::list_my_push_subscriptions,
            push::delete_push_subscription
        ))
        .routes(routes!(push::get_vapid_public_key))
}

/// A notification as clients see it (also the data of the stream's `notification` events).
#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    /// My notifications are numbered 1, 2, 3, … without gaps; the stream's event id.
    pub seq: i64,
    /// `party_created`, `party_cancelled`, `party_full`, `member_left`, `party_changed`,
    /// `reminder`, `penalty`, `ban` or `chat_message` (new messages in a room I have no socket in).
    pub kind: String,
    pub party_id: Option<i64>,
    pub title: String,
    pub body: String,
    pub created_at: Timestamp,
    pub read: bool,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        Self {
            seq: n.seq,
            kind: n.kind,
            party_id: n.party_id,
            title: n.title,
            body: n.body,
            created_at: Timestamp(n.created_at),
            read: n.read_at.is_some(),
        }
    }
}

/// A page of my inbox.
#[derive(Serialize, ToSchema)]
pub struct Inbox {
    pub items: Vec<NotificationView>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
    /// How many of my notifications are unread (all of them, not only this page's).
    pub unread: i64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Only unread notifications.
    unread: Option<bool>,
}

/// My notifications, newest first.
#[utoipa::path(get, path = "/me/notifications", tag = "notifications", security(("bearer" = [])),
    params(InboxQuery),
    responses(
        (status = 200, description = "A page of my inbox with the unread count", body = Inbox),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_my_notifications(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<InboxQuery>,
) -> ApiResult<axum::Json<Inbox>> {
    let limit = paging::limit(q.limit)?;
    let before = paging::cursor(q.cursor.as_deref())?;
    let unread_only = q.unread.unwrap_or(false);
    let (rows, next_cursor) =
        notifications::list(&state.db, user.id, before, unread_only, limit).await?;
    let unread = notifications::unread_count(&state.db, user.id).await?;
    Ok(axum::Json(Inbox {
        items: rows.into_iter().map(NotificationView::from).collect(),
        next_cursor,
        unread,
    }))
}

/// Mark one notification read.
#[utoipa::path(post, path = "/me/notifications/{seq}/read", tag = "notifications", security(("bearer" = [])),
    params(("seq" = i64, Path, description = "The notification's seq")),
    responses(
        (status = 200, description = "The notification, read", body = NotificationView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn read_notification(
    State(state): State<AppState>,
    user: AuthUser,
    Path(seq): Path<i64>,
) -> ApiResult<axum::Json<NotificationView>> {
    let row = notifications::mark_read(&state.db, user.id, seq, state.now())
        .await?
        .ok_or_else(|| ApiError::not_found("notification"))?;
    Ok(axum::Json(row.into()))
}

/// What read-all did.
#[derive(Serialize, ToSchema)]
pub struct ReadAll {
    /// Notifications marked read now.
    pub marked: u64,
    /// Unread left (those written meanwhile).
    pub unread: i64,
}

/// Mark all my notifications read.
#[utoipa::path(post, path = "/me/notifications/read-all", tag = "notifications", security(("bearer" = [])),
    responses(
        (status = 200, description = "How many were marked", body = ReadAll),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn read_all_notifications(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<axum::Json<ReadAll>> {
    let marked = notifications::mark_all_read(&state.db, user.id, state.now()).await?;
    let unread = notifications::unread_count(&state.db, user.id).await?;
    Ok(axum::Json(ReadAll { marked, unread }))
}
