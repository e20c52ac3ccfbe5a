//! Following one's place in a waiting room over SSE, so clients need not poll.
//!
//! A follower subscribes to the room's bus topic and recomputes the user's spot whenever the room
//! changes (on any instance: the admitter publishes after each round, leaves publish too). It sends
//! an event only when the status changed, marks the entry as followed on every heartbeat so it is not
//! dropped as abandoned, and ends after the final event (`admitted`, `expired`, `closed`, `left`).

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use store::live::{BusMessage, Subscription};
use store::rooms::{self, Room};
use tokio::time::{Interval, MissedTickBehavior};

use super::room::{status_of, Notice, QueueStatus};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::streams::StreamSlot;

/// The SSE response following `user_id` in `room`. Subscribes before reading the first status, so
/// no change between the two is missed.
pub async fn follow(
    state: AppState,
    room: Room,
    user_id: i64,
    sub: Subscription,
    sessions: Subscription,
    slot: StreamSlot,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let heartbeat = (state.settings.queue.stale_after / 3).max(Duration::from_millis(500));
    let state_stopping = state.stopping();
    let mut touch = tokio::time::interval(heartbeat);
    touch.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let follower = Follower {
        state,
        room,
        user_id,
        sub,
        sessions,
        stopping: state_stopping,
        _slot: slot,
        touch,
        last: None,
        dirty: true,
        done: false,
    };
    let stream = futures::stream::unfold(follower, |mut f| async move {
        let event = f.next_event().await?;
        Some((Ok(event), f))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Follower {
    state: AppState,
    room: Room,
    user_id: i64,
    sub: Subscription,
    /// Told when the user's sessions end (logout): the stream ends with `ended`.
    sessions: Subscription,
    /// The app is shutting down: the stream ends, and the client reconnects to another instance.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Counts this stream against the user's cap until it ends.
    _slot: StreamSlot,
    touch: Interval,
    last: Option<QueueStatus>,
    /// The status must be recomputed before waiting again.
    dirty: bool,
    done: bool,
}

impl Follower {
    /// The next event to send, or `None` when the stream ends.
    async fn next_event(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let mut touch_now = false;
        loop {
            if self.dirty {
                self.dirty = false;
                match self.status(touch_now).await {
                    Ok(Some(event)) => return Some(event),
                    Ok(None) => {}
                    Err(_) => {
                        // Logged by ApiError; tell the client to reconnect instead of going silent.
                        self.done = true;
                        return Some(Event::default().event("error").data("{}"));
                    }
                }
            }
            touch_now = false;
            tokio::select! {
                msg = self.sub.recv() => match msg {
                    Some(BusMessage::Payload(bytes)) => match serde_json::from_slice::<Notice>(&bytes) {
                        Ok(Notice::Changed) => self.dirty = true,
                        Ok(Notice::Closed { reason }) => {
                            self.done = true;
                            let status = QueueStatus::closed(self.room.party_id, Some(reason));
                            return Some(event_of(&status));
                        }
                        Err(err) => tracing::warn!(error = %err, "unreadable queue notice"),
                    },
                    Some(BusMessage::Gap) => {
                        // Notices may be lost: read the room again (it may have closed).
                        if let Ok(Some(room)) = rooms::get_room(&self.state.db, self.room.party_id).await {
                            self.room = room;
                        }
                        self.dirty = true;
                    }
                    None => {
                        self.done = true;
                        return None;
                    }
                },
                msg = self.sessions.recv() => match msg {
                    Some(BusMessage::Payload(_)) => {
                        self.done = true;
                        let data = serde_json::json!({ "party_id": self.room.party_id, "state": "ended" });
                        return Some(Event::default().event("ended").data(data.to_string()));
                    }
                    // A missed logout notice: the access token still expires within its lifetime.
                    Some(BusMessage::Gap) => {}
                    None => {
                        self.done = true;
                        return None;
                    }
                },
                _ = self.touch.tick() => {
                    touch_now = true;
                    self.dirty = true;
                }
                _ = stopped(&mut self.stopping) => {
                    self.done = true;
                    return None;
                }
            }
        }
    }

    /// Recomputes the status; an event when it changed.
    async fn status(&mut self, touch: bool) -> ApiResult<Option<Event>> {
        // The rate from the shared per-instance cache: a room change wakes every follower at once.
        let rate = match self
            .state
            .rooms
            .get(
                &self.state.db,
                self.state.live.cache.as_ref(),
                self.room.party_id,
            )
            .await
        {
            Ok((_, rate)) => rate,
            Err(_) => self.room.rate_per_min as f64,
        };
        let status = status_of(&self.state, &self.room, rate, self.user_id, touch).await?;
        let Some(status) = status else {
            self.done = true;
            let data = serde_json::json!({ "party_id": self.room.party_id, "state": "left" });
            return Ok(Some(Event::default().event("left").data(data.to_string())));
        };
        if self.last.as_ref() == Some(&status) {
            return Ok(None);
        }
        if status.is_final() {
            self.done = true;
        }
        let event = event_of(&status);
        self.last = Some(status);
        Ok(Some(event))
    }
}

/// Resolves once `stop` is true (the lock of the watch is not held across the caller's awaits).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One event of the waiting-room stream, for the OpenAPI document (OpenAPI 3.1 reads an event
/// stream's schema as that of each event): its name and its data, a [`QueueStatus`] as JSON (`{}`
/// for `error`). Never built: only its schema is used.
pub enum QueueEvent {}

/// The names [`event_of`] and the follower give events.
const EVENT_NAMES: [&str; 7] = [
    "position", "admitted", "expired", "closed", "left", "ended", "error",
];

impl utoipa::PartialSchema for QueueEvent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let name = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(EVENT_NAMES));
        let data = ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/json")
            .description(Some("The QueueStatus as JSON"));
        ObjectBuilder::new()
            .property("event", name)
            .property("data", data)
            .required("event")
            .required("data")
            .into()
    }
}

impl utoipa::ToSchema for QueueEvent {}

/// `position` while waiting; otherwise the state's name.
fn event_of(status: &QueueStatus) -> Event {
    let name = match status.state {
        "waiting" => "position",
        other => other,
    };
    let data = serde_json::to_string(status).unwrap_or_else(|_| "{}".to_owned());
    Event::default().event(name).data(data)
}
