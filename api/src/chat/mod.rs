//! Party chat: a WebSocket per member and room (`socket`), the history and read cursors over HTTP,
//! and the system messages written by the durable consumer `chat` (`system`). The frames are in
//! `frames` and `docs/chat.md`.

pub mod away;
pub mod frames;
pub mod moderation;
pub mod socket;
pub mod system;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use store::chat::{self, Access};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::frames::{MessageView, Note};
use crate::auth::{AuthUser, StreamUser};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// WebSocket read buffer: frames are small JSON (axum's default is 128 KiB per socket).
pub const READ_BUFFER: usize = 4 * 1024;
/// WebSocket write buffer target (axum's default is 128 KiB per socket).
pub const WRITE_BUFFER: usize = 4 * 1024;
/// The largest client frame: a 2,000-character text fits even fully escaped. Larger ones end
/// the connection (1009); smaller ones that break a rule get an `error` frame.
pub const MAX_FRAME: usize = 32 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_chat_socket))
        .routes(routes!(list_chat_messages))
        .routes(routes!(mark_chat_read))
        .routes(routes!(list_my_chats))
        .merge(moderation::router())
}

/// Tells every instance's sockets of the party (fire and forget: a lost note is a hole the next
/// message or a reconnect fills from SQL).
pub async fn publish(state: &AppState, party_id: i64, note: &Note) {
    publish_on(state.live.bus.as_ref(), party_id, note).await
}

/// [`publish`] on `bus`.
pub async fn publish_on(bus: &dyn store::live::Bus, party_id: i64, note: &Note) {
    let Ok(payload) = serde_json::to_vec(note) else {
        return;
    };
    if let Err(err) = bus.publish(&store::topics::chat(party_id), &payload).await {
        tracing::warn!(party.id = party_id, error = %err, "chat: could not publish; sockets catch up from SQL");
    }
}

/// Refuses a user who may not use the room, with the reason.
pub(crate) fn refuse(access: Access) -> ApiError {
    match access {
        Access::NoParty => ApiError::not_found("party"),
        Access::Left => ApiError::forbidden(
            "left_party",
            "you left this party; its chat is closed to you",
        ),
        Access::Cancelled => ApiError::conflict(
            "party_cancelled",
            "the party was cancelled; its chat is closed",
        ),
        Access::Stranger | Access::Member => ApiError::forbidden(
            "not_a_member",
            "only the leader and the members of the party may use its chat",
        ),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SocketQuery {
    /// Replay every message after this seq first (without it: live messages only).
    #[param(minimum = 0)]
    since_seq: Option<i64>,
    /// A stream ticket (`POST /auth/stream-ticket`) instead of the `Authorization` header.
    #[allow(dead_code)] // read by the `StreamUser` extractor
    ticket: Option<String>,
}

/// Open the party's chat (WebSocket). Frames are JSON text (see `docs/chat.md` and the
/// `ClientFrame` and `ServerFrame` schemas). Only the leader and current members may connect; a
/// member who leaves, or a cancelled party, ends the socket with a close frame saying why.
#[utoipa::path(get, path = "/parties/{id}/chat/ws", tag = "chat", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id"), SocketQuery),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),
        (status = 401, description = "`unauthorized`, `invalid_ticket` (unknown, expired or used)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_a_member`, `left_party`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such party", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`party_cancelled`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (`since_seq`)", body = Problem, content_type = "application/problem+json"),
        (status = 426, description = "`upgrade_required`: not a WebSocket handshake", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_streams`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn open_chat_socket(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<SocketQuery>,
    user: StreamUser,
) -> ApiResult<Response> {
    if q.since_seq.is_some_and(|s| s < 0) {
        return Err(ApiError::invalid(
            "since_seq",
            "since_seq must be 0 or more",
        ));
    }
    // Checked before the ticket is used up: a plain GET does not cost the client its ticket.
    let ws = ws.map_err(|_| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "this endpoint is a WebSocket: send an upgrade handshake",
        )
    })?;
    member(&state, id, user.id).await?;
    // Subscribed before the session reads SQL, so nothing committed in between is missed.
    let (slot, sessions) = crate::streams::open(
        &state.streams,
        state.live.bus.as_ref(),
        user.id,
        state.settings.max_streams_per_user,
    )
    .await?;
    let sub = state.live.bus.subscribe(&store::topics::chat(id)).await?;
    let since_seq = match q.since_seq {
        Some(since) => since,
        None => chat::latest_seq(&state.db, id).await?,
    };
    let session = socket::Session {
        state,
        party_id: id,
        user_id: user.id,
        since_seq,
        sub,
        sessions,
        slot,
    };
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_FRAME * 2)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| socket::run(session, socket)))
}

/// Checks that `user_id` may talk in the room: the leader or a current member, the party not
/// cancelled.
pub(crate) async fn member(state: &AppState, party_id: i64, user_id: i64) -> ApiResult<()> {
    match chat::access(&state.db, party_id, user_id).await? {
        Access::Member => Ok(()),
        other => Err(refuse(other)),
    }
}

/// Checks that `user_id` may read the room (members; also after a cancellation).
async fn reader(state: &AppState, party_id: i64, user_id: i64) -> ApiResult<()> {
    match chat::access(&state.db, party_id, user_id).await? {
        Access::Member | Access::Cancelled => Ok(()),
        other => Err(refuse(other)),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages before this seq (without it: the latest).
    #[param(minimum = 1)]
    before_seq: Option<i64>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// One page of history, newest first.
#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub items: Vec<MessageView>,
    /// Pass as `before_seq` for the older page; absent at the first message.
    pub next_before_seq: Option<i64>,
}

/// Page the room's history backwards (infinite scroll), newest first.
#[utoipa::path(get, path = "/parties/{id}/chat/messages", tag = "chat", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id"), HistoryQuery),
    responses(
        (status = 200, description = "Messages before `before_seq`, newest first", body = MessagePage),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_a_member`, `left_party`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such party", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_chat_messages(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: AuthUser,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<axum::Json<MessagePage>> {
    let limit = crate::paging::limit(q.limit)?;
    if q.before_seq.is_some_and(|s| s < 1) {
        return Err(ApiError::invalid(
            "before_seq",
            "before_seq must be 1 or more",
        ));
    }
    reader(&state, id, user.id).await?;
    let page = chat::before(&state.db, id, q.before_seq, limit as i64).await?;
    let next_before_seq = match page.last() {
        Some(oldest) if page.len() == limit && oldest.seq > 1 => Some(oldest.seq),
        _ => None,
    };
    Ok(axum::Json(MessagePage {
        items: page.iter().map(MessageView::from).collect(),
        next_before_seq,
    }))
}

/// How far a member has read.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadCursor {
    /// The last seq read.
    #[schema(minimum = 0)]
    pub seq: i64,
}

/// Move my read cursor forward to `seq` (never back; never past the latest message).
#[utoipa::path(post, path = "/parties/{id}/chat/read", tag = "chat", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id")), request_body = ReadCursor,
    responses(
        (status = 200, description = "Where the cursor is now", body = ReadCursor),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_a_member`, `left_party`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such party", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (`seq`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn mark_chat_read(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: AuthUser,
    Json(body): Json<ReadCursor>,
) -> ApiResult<axum::Json<ReadCursor>> {
    if body.seq < 0 {
        return Err(ApiError::invalid("seq", "seq must be 0 or more"));
    }
    reader(&state, id, user.id).await?;
    let seq = chat::mark_read(&state.db, id, user.id, body.seq, state.now()).await?;
    Ok(axum::Json(ReadCursor { seq }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MyChatsQuery {
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// One of my chat rooms.
#[derive(Serialize, ToSchema)]
pub struct ChatRoomView {
    pub party_id: i64,
    pub title: String,
    /// The latest message, if any.
    pub last_message: Option<MessageView>,
    /// Messages after my cursor that others sent.
    pub unread: i64,
    pub read_seq: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ChatRooms {
    pub items: Vec<ChatRoomView>,
}

/// My chat rooms (the parties I lead or am a member of), the most recently active first, with the
/// last message and my unread count.
#[utoipa::path(get, path = "/me/chats", tag = "chat", security(("bearer" = [])), params(MyChatsQuery),
    responses(
        (status = 200, description = "My rooms", body = ChatRooms),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_my_chats(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<MyChatsQuery>,
) -> ApiResult<impl IntoResponse> {
    let limit = crate::paging::limit(q.limit)?;
    let rooms = chat::rooms_of(&state.db, user.id, limit as i64).await?;
    let items = rooms
        .into_iter()
        .map(|(room, last)| ChatRoomView {
            party_id: room.party_id,
            title: room.title,
            last_message: last.as_ref().map(MessageView::from),
            unread: room.unread,
            read_seq: room.read_seq,
        })
        .collect();
    Ok(axum::Json(ChatRooms { items }))
}
