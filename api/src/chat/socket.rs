//! One member's chat WebSocket, after the handshake.
//!
//! The session subscribes to the party's bus topic *before* it reads anything from SQL, then
//! replays what the client missed (after `since_seq`) and goes live. It remembers the last seq it
//! sent: a message at or below it is dropped (a duplicate), one beyond the next is a hole (a
//! publish lost or still on its way) filled from SQL first. Since a message commits only after
//! every smaller seq of its party has, the SQL read always finds the hole's messages. A bus `Gap`
//! (a lagging receiver, a Redis reconnect) is a catch-up from SQL too; a hole larger than
//! `GONGGU_CHAT_MAX_REPLAY` is a `reset` instead.
//!
//! Frames go out through a bounded queue drained by a writer task, so a slow client never holds
//! up the session (nor, through it, the bus): typing notices are dropped first once the queue is
//! half full, and a client whose queue fills is disconnected with a reason (it reconnects with
//! `since_seq` and loses nothing).

use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message as WsMessage, WebSocket};
use futures::{SinkExt, StreamExt};
use store::chat::{self, Access, Message, Sent};
use store::live::{BusMessage, Subscription};
use tokio::sync::{mpsc, oneshot};

use super::frames::{self, ClientFrame, MessageView, Note, Outgoing, ServerFrame};
use crate::state::AppState;
use crate::streams::StreamSlot;

/// Messages read from SQL per query while catching up.
const CATCH_UP_PAGE: i64 = 200;
/// At most one typing notice per socket in this time (ms, on the app's clock).
const TYPING_EVERY_MS: i64 = 2_000;
/// How long a closing handshake may take before the connection is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long a client dropped as too slow has to take its close frame (it has a full buffer to
/// read first).
const SLOW_CLOSE_WAIT: Duration = Duration::from_secs(10);
/// The reason a too-slow client's socket is closed with.
const TOO_SLOW: &str = "too_slow";

/// Why the session ends: the close frame's code and reason.
#[derive(Debug)]
struct End {
    code: u16,
    reason: &'static str,
}

impl End {
    const fn new(code: u16, reason: &'static str) -> Self {
        End { code, reason }
    }
}

/// Everything a session needs, set up by the handshake.
pub struct Session {
    pub state: AppState,
    pub party_id: i64,
    pub user_id: i64,
    /// Where the replay starts: the client's `since_seq`, or the latest seq read at the handshake
    /// (after subscribing) for a live-only client, so a message committed once the handshake is
    /// answered is never missed.
    pub since_seq: i64,
    /// Subscribed before the handshake answered, so nothing published since is missed.
    pub sub: Subscription,
    pub sessions: Subscription,
    pub slot: StreamSlot,
}

struct Live {
    state: AppState,
    party_id: i64,
    user_id: i64,
    /// The highest seq sent to this client (or skipped by a reset).
    last_sent: i64,
    out: mpsc::Sender<WsMessage>,
    /// When this socket last passed a typing notice on (app clock, ms).
    last_typing: Option<i64>,
    /// This connection's id in the room's presence.
    conn: String,
    /// The presence last sent to this client.
    online: Option<Vec<i64>>,
}

/// Runs the session until the client leaves, the member is removed, or the app stops.
pub async fn run(session: Session, socket: WebSocket) {
    let Session {
        state,
        party_id,
        user_id,
        since_seq,
        mut sub,
        mut sessions,
        slot: _slot,
    } = session;
    let (sink, mut incoming) = socket.split();
    let (out, out_rx) = mpsc::channel(state.settings.chat.send_queue.max(2));
    let (close_tx, close_rx) = oneshot::channel();
    let writer = tokio::spawn(write(sink, out_rx, close_rx));
    let mut live = Live {
        state: state.clone(),
        party_id,
        user_id,
        last_sent: 0,
        out,
        last_typing: None,
        conn: uuid::Uuid::new_v4().simple().to_string(),
        online: None,
    };
    let mut stopping = state.stopping();
    let mut heartbeat = tokio::time::interval(state.settings.chat.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.reset(); // the first beat is part of `start`
    let end = async {
        live.start(since_seq).await?;
        loop {
            tokio::select! {
                _ = heartbeat.tick() => live.heartbeat().await?,
                note = sub.recv() => match note {
                    Some(BusMessage::Payload(bytes)) => live.on_note(&bytes).await?,
                    Some(BusMessage::Gap) => live.catch_up().await?,
                    None => return Err(End::new(close_code::RESTART, "server_restarting")),
                },
                ended = sessions.recv() => match ended {
                    Some(BusMessage::Payload(_)) => {
                        return Err(End::new(close_code::POLICY, "session_ended"))
                    }
                    Some(BusMessage::Gap) => {}
                    None => return Err(End::new(close_code::RESTART, "server_restarting")),
                },
                frame = incoming.next() => match frame {
                    Some(Ok(WsMessage::Text(text))) => live.on_frame(text.as_str()).await?,
                    Some(Ok(WsMessage::Binary(_))) => live.push(ServerFrame::error(
                        "binary_unsupported",
                        "frames are JSON text",
                    ))?,
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                    Some(Ok(WsMessage::Close(_))) | None => {
                        return Err(End::new(close_code::NORMAL, "bye"))
                    }
                    // A protocol error or a frame past the size limit: the stream is unusable.
                    Some(Err(_)) => return Err(End::new(close_code::SIZE, "frame_too_big")),
                },
                _ = stopped(&mut stopping) => {
                    return Err(End::new(close_code::RESTART, "server_shutting_down"));
                }
            }
        }
    }
    .await;
    let end: Result<(), End> = end;
    if let Err(end) = end {
        tracing::debug!(
            party.id = party_id,
            user.id = user_id,
            reason = end.reason,
            "chat socket ends"
        );
        let _ = close_tx.send(end);
    }
    // Out of the room before the close handshake, which a slow client may drag out.
    live.leave().await;
    drop(live);
    let _ = writer.await;
}

/// Drains the queue into the socket; on `close`, sends the close frame (bounded in time: a client
/// that stopped reading may never take it) and ends.
async fn write(
    mut sink: futures::stream::SplitSink<WebSocket, WsMessage>,
    mut queue: mpsc::Receiver<WsMessage>,
    mut close: oneshot::Receiver<End>,
) {
    let end = loop {
        tokio::select! {
            biased;
            end = &mut close => break end.ok(),
            msg = queue.recv() => {
                let Some(msg) = msg else { break None };
                tokio::select! {
                    sent = sink.send(msg) => if sent.is_err() { return },
                    end = &mut close => break end.ok(),
                }
            }
        }
    };
    let Some(end) = end else {
        let _ = tokio::time::timeout(CLOSE_WAIT, sink.close()).await;
        return;
    };
    let slow = end.reason == TOO_SLOW;
    if !slow {
        // What was queued before the end goes first (the `cancelled` message before the close
        // that it explains), bounded in time like the close itself. A too-slow client's queue is
        // dropped: it recovers it with `since_seq`.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Ok(msg) = queue.try_recv() {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
        })
        .await;
    }
    let frame = CloseFrame {
        code: end.code,
        reason: end.reason.into(),
    };
    let wait = if slow { SLOW_CLOSE_WAIT } else { CLOSE_WAIT };
    let _ = tokio::time::timeout(wait, sink.send(WsMessage::Close(Some(frame)))).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, sink.close()).await;
}

fn internal(err: impl std::fmt::Display) -> End {
    tracing::warn!(error = %err, "chat socket: storage failed; closing");
    End::new(close_code::ERROR, "internal_error")
}

impl Live {
    /// First frames: the replay after `since_seq` (or a reset), then who is online (this socket
    /// included: it joins the room's presence first and tells the other sockets).
    async fn start(&mut self, since_seq: i64) -> Result<(), End> {
        self.last_sent = since_seq;
        self.beat().await;
        super::publish(&self.state, self.party_id, &Note::Presence).await;
        self.catch_up().await?;
        self.refresh_presence().await
    }

    fn room(&self) -> String {
        store::topics::chat(self.party_id)
    }

    /// Renews this socket's presence. A failure is logged, not fatal: presence is a courtesy,
    /// the messages do not depend on it.
    async fn beat(&self) {
        let ttl = self.state.settings.chat.presence_ttl_ms();
        let room = self.room();
        let beat =
            self.state
                .live
                .presence
                .beat(&room, self.user_id, &self.conn, self.state.now(), ttl);
        if let Err(err) = beat.await {
            tracing::warn!(party.id = self.party_id, error = %err, "chat: presence not renewed");
        }
    }

    /// Every heartbeat: a ping (a dead peer fails the write), presence renewed, and the room's
    /// presence read again (a socket of a dead instance expires without telling anyone).
    async fn heartbeat(&mut self) -> Result<(), End> {
        let _ = self.out.try_send(WsMessage::Ping(Default::default()));
        self.beat().await;
        self.refresh_presence().await
    }

    /// Sends the room's presence if it changed since last sent.
    async fn refresh_presence(&mut self) -> Result<(), End> {
        let online = match self
            .state
            .live
            .presence
            .online(&self.room(), self.state.now())
            .await
        {
            Ok(online) => online,
            Err(err) => {
                tracing::warn!(party.id = self.party_id, error = %err, "chat: presence unreadable");
                return Ok(());
            }
        };
        if self.online.as_ref() == Some(&online) {
            return Ok(());
        }
        self.online = Some(online.clone());
        self.push(ServerFrame::Presence { online })
    }

    /// Leaves the room's presence and tells the other sockets.
    async fn leave(&self) {
        let room = self.room();
        let left = self
            .state
            .live
            .presence
            .leave(&room, self.user_id, &self.conn);
        if let Err(err) = left.await {
            tracing::warn!(party.id = self.party_id, error = %err, "chat: presence not left; it expires");
        }
        super::publish(&self.state, self.party_id, &Note::Presence).await;
    }

    /// Sends every stored message after `last_sent`, or `reset` when there are too many.
    async fn catch_up(&mut self) -> Result<(), End> {
        let latest = chat::latest_seq(&self.state.db, self.party_id)
            .await
            .map_err(internal)?;
        if latest - self.last_sent > self.state.settings.chat.max_replay {
            self.last_sent = latest;
            return self.push(ServerFrame::Reset { latest_seq: latest });
        }
        loop {
            let page = chat::after(&self.state.db, self.party_id, self.last_sent, CATCH_UP_PAGE)
                .await
                .map_err(internal)?;
            let full = page.len() as i64 == CATCH_UP_PAGE;
            for m in &page {
                self.send_message(m)?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn on_note(&mut self, bytes: &[u8]) -> Result<(), End> {
        match serde_json::from_slice::<Note>(bytes) {
            Ok(Note::Message(m)) => self.deliver(&m).await,
            Ok(Note::Typing { user_id, at }) => {
                let fresh = self.state.now() - at < frames::TYPING_SHOWN_MS;
                if user_id != self.user_id && fresh {
                    self.push_droppable(ServerFrame::Typing { user_id });
                }
                Ok(())
            }
            Ok(Note::Presence) => self.refresh_presence().await,
            Ok(Note::Deleted { seq, by }) => {
                if seq <= self.last_sent {
                    self.push(ServerFrame::Deleted {
                        seq,
                        deleted_by: by,
                    })
                } else {
                    // Not sent yet (its own note may still be on its way, with the text): the
                    // tombstone is in SQL already, so send the messages up to it from there.
                    self.catch_up().await
                }
            }
            // A note of a newer release: what matters is in SQL, so catch up from there.
            Err(_) => self.catch_up().await,
        }
    }

    /// A message from the bus or from this session's own send.
    async fn deliver(&mut self, m: &Message) -> Result<(), End> {
        if m.seq <= self.last_sent {
            return Ok(());
        }
        if m.seq > self.last_sent + 1 {
            return self.catch_up().await;
        }
        self.send_message(m)
    }

    /// Sends the next message in order and ends the session when it says this member is out.
    fn send_message(&mut self, m: &Message) -> Result<(), End> {
        self.last_sent = self.last_sent.max(m.seq);
        self.push(ServerFrame::Message(MessageView::from(m)))?;
        match m.event.as_deref() {
            Some("member_left") if m.subject_id == Some(self.user_id) => {
                Err(End::new(close_code::POLICY, "left_party"))
            }
            Some("cancelled") => Err(End::new(close_code::POLICY, "party_cancelled")),
            _ => Ok(()),
        }
    }

    /// Queues a frame, or ends the session when the client is too far behind.
    fn push(&mut self, frame: ServerFrame) -> Result<(), End> {
        match self.out.try_send(WsMessage::Text(frame.to_text().into())) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(
                    party.id = self.party_id,
                    user.id = self.user_id,
                    "chat client too slow; disconnected"
                );
                Err(End::new(close_code::AGAIN, TOO_SLOW))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(End::new(close_code::NORMAL, "gone")),
        }
    }

    /// Queues a frame that may be lost (typing): only while the queue is less than half full.
    fn push_droppable(&mut self, frame: ServerFrame) {
        if self.out.capacity() * 2 > self.out.max_capacity() {
            let _ = self.out.try_send(WsMessage::Text(frame.to_text().into()));
        }
    }

    async fn on_frame(&mut self, text: &str) -> Result<(), End> {
        let frame = match frames::parse(text) {
            Ok(frame) => frame,
            Err(refusal) => return self.push(ServerFrame::error(refusal.code, refusal.message)),
        };
        match frame {
            ClientFrame::Send {
                client_msg_id,
                text,
            } => match Outgoing::parse(client_msg_id, text) {
                Ok(out) => self.send(out).await,
                Err(refusal) => self.push(ServerFrame::error(refusal.code, refusal.message)),
            },
            ClientFrame::Read { seq } => {
                if seq < 0 {
                    return self.push(ServerFrame::error("invalid_frame", "seq must be 0 or more"));
                }
                let now = self.state.now();
                chat::mark_read(&self.state.db, self.party_id, self.user_id, seq, now)
                    .await
                    .map_err(internal)?;
                Ok(())
            }
            ClientFrame::Typing => {
                self.typing().await;
                Ok(())
            }
        }
    }

    async fn send(&mut self, out: Outgoing) -> Result<(), End> {
        let settings = &self.state.settings.chat;
        let decision = self
            .state
            .live
            .limiter
            .hit(
                &format!("chat-send:{}", self.user_id),
                settings.send_limit,
                settings.send_window,
            )
            .await
            .map_err(internal)?;
        if !decision.allowed {
            let wait = decision.retry_after.as_secs().max(1);
            return self.push(ServerFrame::error(
                "rate_limited",
                format!("too many messages; wait {wait} s"),
            ));
        }
        let now = self.state.now();
        let sent = chat::send(
            &self.state.db,
            self.party_id,
            self.user_id,
            &out.client_msg_id,
            &out.text,
            now,
        )
        .await
        .map_err(internal)?;
        match sent {
            Sent::New(m) => {
                super::publish(&self.state, self.party_id, &Note::Message(m.clone())).await;
                // The sender's copy is its acknowledgement, in order like every other.
                self.deliver(&m).await
            }
            // A resend: the original answers it, even though it was sent before.
            Sent::Repeat(m) => self.push(ServerFrame::Message(MessageView::from(&m))),
            // Membership ended since the handshake (the system message closing this socket can
            // still be on its way): the send checked it where the message would be stored.
            Sent::Refused(Access::Cancelled) => {
                Err(End::new(close_code::POLICY, "party_cancelled"))
            }
            Sent::Refused(_) => Err(End::new(close_code::POLICY, "left_party")),
        }
    }

    async fn typing(&mut self) {
        let now = self.state.now();
        if self.last_typing.is_some_and(|t| now - t < TYPING_EVERY_MS) {
            return;
        }
        self.last_typing = Some(now);
        super::publish(
            &self.state,
            self.party_id,
            &Note::Typing {
                user_id: self.user_id,
                at: now,
            },
        )
        .await;
    }
}

/// Resolves once `stop` is true, holding no lock of the watch across the caller's awaits (so the
/// future stays `Send`).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
