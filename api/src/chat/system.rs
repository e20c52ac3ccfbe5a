//! System messages: the durable outbox consumer `chat` writes one message per party event into
//! the party's sequence (member joined or left, meet moved, full, cancelled, closed).
//!
//! A consumer, not a bus subscriber: every instance hears a bus event, but the consumer's position
//! in SQL makes each event one message whatever the number of instances, and the message commits
//! with the position. The messages are published to the sockets only after the batch commits (a
//! rolled-back batch must not announce a seq that will be reused); a publish lost to a crash in
//! between is a hole the next message or reconnect fills from SQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use store::chat::{self, Message, SystemMessage};
use store::consumers::{Consumer, StoredEvent};
use store::events::Event;
use store::Tx;
use tokio::sync::watch;

use super::frames::Note;
use crate::state::AppState;
use crate::time::Timestamp;

/// The consumer's name: its position row in `outbox_consumers`. Never rename it.
pub const NAME: &str = "chat";

/// Writes system messages and keeps those of the running batch for publishing after commit.
#[derive(Default)]
pub struct ChatConsumer {
    written: Mutex<Vec<Message>>,
}

/// The system message an event makes: (party, event name, member concerned, text).
fn message_for(event: &Event) -> Option<(i64, &'static str, Option<i64>, String)> {
    let change = event.party_change()?;
    let party = change.party.id;
    Some(match event {
        Event::MemberJoined(c) => (party, "member_joined", c.user_id, "A member joined".into()),
        Event::MemberLeft(c) => (party, "member_left", c.user_id, "A member left".into()),
        Event::PartyUpdated(c) => {
            c.previous_meet_at?;
            let to = Timestamp(c.party.meet_at).to_rfc3339();
            (
                party,
                "meet_changed",
                None,
                format!("The meet time moved to {to}"),
            )
        }
        Event::PartyFull(_) => (party, "full", None, "The party is full".into()),
        Event::PartyCancelled(c) => {
            let text = match &c.party.cancel_reason {
                Some(reason) => format!("The party was cancelled: {reason}"),
                None => "The party was cancelled".into(),
            };
            (party, "cancelled", None, text)
        }
        Event::PartyClosed(_) => (
            party,
            "closed",
            None,
            "Bookings are closed; see you at the meet".into(),
        ),
        _ => return None,
    })
}

#[async_trait]
impl Consumer for ChatConsumer {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn handle(&self, tx: &mut Tx, event: &StoredEvent) -> store::Result<()> {
        let Some((party_id, name, subject_id, text)) = message_for(&event.event) else {
            return Ok(());
        };
        let written = chat::write_system(
            tx,
            SystemMessage {
                party_id,
                event: name,
                subject_id,
                text: &text,
                event_id: event.id,
            },
            event.at,
        )
        .await?;
        if let Some(m) = written {
            self.written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(m);
        }
        Ok(())
    }
}

impl ChatConsumer {
    fn take(&self) -> Vec<Message> {
        std::mem::take(&mut *self.written.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Runs the consumer until shutdown: after every local commit and every `poll`, and publishes
/// what each committed batch wrote.
pub async fn run(state: AppState, poll: Duration, mut stop: watch::Receiver<bool>) {
    const BATCH: i64 = 100;
    let consumer = Arc::new(ChatConsumer::default());
    let mut commits = state.db.commits();
    loop {
        loop {
            let done =
                store::consumers::run_once(&state.db, consumer.as_ref(), BATCH, state.now()).await;
            let written = consumer.take();
            match done {
                Ok(n) => {
                    for m in written {
                        super::publish(&state, m.party_id, &Note::Message(m)).await;
                    }
                    if n as i64 != BATCH {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(consumer = NAME, error = %store::error::chain(&err), "chat consumer batch failed; retrying");
                    break;
                }
            }
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

/// Resolves once `stop` is true, holding no lock of the watch across the caller's awaits (so the
/// future stays `Send`).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
