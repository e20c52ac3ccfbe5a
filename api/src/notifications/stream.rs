//! `GET /me/notifications/stream`: my new notifications over SSE, with replay.
//!
//! Nothing is lost or repeated across reconnects, on whichever instance: the stream subscribes to
//! my bus topic first, then reads SQL from the client's `Last-Event-ID`, then sends live ones in
//! `seq` order, dropping any it already sent. A live one that skips ahead of the last sent (a
//! publish missed or reordered between instances) or a bus gap makes it read SQL again, since
//! SQL has every notification in order. An id it cannot replay from (ahead of my last, or older
//! than what is kept) gets `reset`: reload the inbox.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use serde::Deserialize;
use store::live::{BusMessage, Subscription};
use store::notifications::{self, Notification};
use utoipa::IntoParams;

use super::NotificationView;
use crate::auth::StreamUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Query;
use crate::state::AppState;
use crate::streams::StreamSlot;

/// Notifications read from SQL at a time while replaying.
const REPLAY_BATCH: i64 = 200;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The last event id the client received, for clients that cannot send the `Last-Event-ID`
    /// header (the header wins when both are given).
    #[param(minimum = 0)]
    last_event_id: Option<i64>,
    /// A stream ticket (`POST /auth/stream-ticket`) instead of the `Authorization` header.
    #[allow(dead_code)] // read by the `StreamUser` extractor
    ticket: Option<String>,
}

/// One event of the notification stream, for the OpenAPI document (OpenAPI 3.1 reads an event
/// stream's schema as that of each event): its name, its id (the notification's `seq`, or my last
/// seq for `reset`) and its data as JSON. Never built: only its schema is used.
pub enum NotificationEvent {}

impl utoipa::PartialSchema for NotificationEvent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let name = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["notification", "reset", "ended"]));
        let id = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("The notification's seq (for reset: my last seq)"));
        let data = ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/json")
            .description(Some(
                "A NotificationView as JSON; `{\"last_seq\"}` for reset; `{}` for ended",
            ));
        ObjectBuilder::new()
            .property("event", name)
            .property("id", id)
            .property("data", data)
            .required("event")
            .required("data")
            .into()
    }
}

impl utoipa::ToSchema for NotificationEvent {}

/// Follow my notifications over Server-Sent Events: `notification` events (`id` is the
/// notification's `seq`, data a NotificationView) for every notification after `Last-Event-ID`
/// (header, or `last_event_id`), then live ones; `reset` when the id cannot be replayed from
/// (reload the inbox; its `id` is my last seq); `ended` when I log out. Comments keep the
/// connection alive; the stream ends when the server shuts down (reconnect with the last id).
#[utoipa::path(get, path = "/me/notifications/stream", tag = "notifications", security(("bearer" = [])),
    params(StreamQuery),
    responses(
        (status = 200, description = "An event stream of notifications", content_type = "text/event-stream", body = NotificationEvent),
        (status = 422, description = "`validation_failed` (`last_event_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`, `invalid_ticket`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_streams`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn stream_my_notifications(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
    user: StreamUser,
) -> ApiResult<impl IntoResponse> {
    if q.last_event_id.is_some_and(|id| id < 0) {
        return Err(ApiError::invalid(
            "last_event_id",
            "last_event_id must be 0 or more",
        ));
    }
    let (slot, sessions) = crate::streams::open(
        &state.streams,
        state.live.bus.as_ref(),
        user.id,
        state.settings.max_streams_per_user,
    )
    .await?;
    // Subscribed before SQL is read: whatever commits after the read arrives here.
    let live = state
        .live
        .bus
        .subscribe(&store::topics::notifications(user.id))
        .await?;
    let asked = match headers.get("last-event-id") {
        // An id the server never gave (not a number) cannot be replayed from.
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .unwrap_or(-1),
        ),
        None => q.last_event_id,
    };
    let (last, oldest) = notifications::bounds(&state.db, user.id).await?;
    let mut pending = VecDeque::new();
    let sent = match asked {
        None => last,
        Some(id) if replayable(id, last, oldest) => id,
        Some(_) => {
            pending.push_back(Out::Reset(last));
            last
        }
    };
    let follower = Follower {
        state: state.clone(),
        user_id: user.id,
        live,
        sessions,
        stopping: state.stopping(),
        _slot: slot,
        sent,
        pending,
        catch_up: asked.is_some(),
        done: false,
    };
    let stream = futures::stream::unfold(follower, |mut f| async move {
        let event = f.next_event().await?;
        Some((Ok::<_, Infallible>(event), f))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Whether every notification after `id` is still kept (`last`: my last seq; `oldest`: the
/// oldest kept, `None` when none is).
fn replayable(id: i64, last: i64, oldest: Option<i64>) -> bool {
    if id < 0 || id > last {
        return false;
    }
    match oldest {
        Some(oldest) => id >= oldest - 1,
        None => id == last,
    }
}

enum Out {
    Note(Notification),
    Reset(i64),
}

struct Follower {
    state: AppState,
    user_id: i64,
    live: Subscription,
    sessions: Subscription,
    stopping: tokio::sync::watch::Receiver<bool>,
    _slot: StreamSlot,
    /// The last seq sent (or skipped by a reset).
    sent: i64,
    pending: VecDeque<Out>,
    /// SQL may hold notifications after `sent` not yet queued.
    catch_up: bool,
    done: bool,
}

impl Follower {
    async fn next_event(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        loop {
            if let Some(out) = self.pending.pop_front() {
                return Some(self.send(out));
            }
            if self.catch_up {
                match notifications::after(&self.state.db, self.user_id, self.sent, REPLAY_BATCH)
                    .await
                {
                    Ok(rows) => {
                        self.catch_up = rows.len() as i64 == REPLAY_BATCH;
                        self.pending.extend(rows.into_iter().map(Out::Note));
                        continue;
                    }
                    Err(err) => {
                        tracing::warn!(user.id = self.user_id, error = %store::error::chain(&err), "notification replay failed; ending the stream");
                        self.done = true;
                        return None;
                    }
                }
            }
            tokio::select! {
                msg = self.live.recv() => match msg {
                    Some(BusMessage::Payload(bytes)) => match serde_json::from_slice::<Notification>(&bytes) {
                        Ok(n) if n.seq <= self.sent => {}
                        Ok(n) if n.seq == self.sent + 1 => self.pending.push_back(Out::Note(n)),
                        // Ahead of the next one: what is between is in SQL.
                        Ok(_) => self.catch_up = true,
                        Err(err) => tracing::warn!(error = %err, "unreadable notification on the bus"),
                    },
                    Some(BusMessage::Gap) => self.catch_up = true,
                    None => {
                        self.done = true;
                        return None;
                    }
                },
                msg = self.sessions.recv() => match msg {
                    Some(BusMessage::Payload(_)) => {
                        self.done = true;
                        return Some(Event::default().event("ended").data("{}"));
                    }
                    Some(BusMessage::Gap) => {}
                    None => {
                        self.done = true;
                        return None;
                    }
                },
                _ = self.stopping.wait_for(|s| *s) => {
                    self.done = true;
                    return None;
                }
            }
        }
    }

    fn send(&mut self, out: Out) -> Event {
        match out {
            Out::Note(n) => {
                self.sent = n.seq;
                let id = n.seq.to_string();
                let data = serde_json::to_string(&NotificationView::from(n))
                    .unwrap_or_else(|_| "{}".to_owned());
                Event::default().event("notification").id(id).data(data)
            }
            Out::Reset(last) => {
                self.sent = last;
                let data = serde_json::json!({ "last_seq": last }).to_string();
                Event::default()
                    .event("reset")
                    .id(last.to_string())
                    .data(data)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_replayable_only_when_everything_after_it_is_kept() {
        assert!(replayable(0, 0, None), "nothing yet");
        assert!(replayable(3, 5, Some(1)));
        assert!(replayable(0, 5, Some(1)));
        assert!(!replayable(6, 5, Some(1)), "ahead of the last");
        assert!(!replayable(-1, 5, Some(1)), "not an id we gave");
        assert!(!replayable(2, 9, Some(5)), "3 and 4 were pruned");
        assert!(replayable(4, 9, Some(5)));
        assert!(!replayable(2, 9, None), "all pruned");
    }
}
