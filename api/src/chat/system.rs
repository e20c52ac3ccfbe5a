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
use store::live::Bus;
use store::Tx;
use tokio::sync::watch;

use super::frames::Note;
use crate::state::AppState;
use crate::time::Timestamp;

/// The consumer's name: its position row in `outbox_consumers`. Never rename it.
pub const NAME: &str = "chat";

/// Writes system messages and keeps those of the running batch for publishing after commit.
pub struct ChatConsumer {
    bus: Arc<dyn Bus>,
    written: Mutex<Vec<Message>>,
}

impl ChatConsumer {
    pub fn new(bus: Arc<dyn Bus>) -> Arc<Self> {
        Arc::new(ChatConsumer {
            bus,
            written: Mutex::default(),
        })
    }

    fn take(&self) -> Vec<Message> {
        std::mem::take(&mut *self.written.lock().unwrap_or_else(|e| e.into_inner()))
    }
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

    fn begin_batch(&self) {
        // A failed batch rolled back what it wrote: none of it may be published.
        self.take();
    }

    async fn after_commit(&self) {
        for m in self.take() {
            super::publish_on(self.bus.as_ref(), m.party_id, &Note::Message(m)).await;
        }
    }
}

/// Runs the consumer until shutdown: after every local commit and every `poll`.
pub async fn run(state: AppState, poll: Duration, stop: watch::Receiver<bool>) {
    let consumer = ChatConsumer::new(state.live.bus.clone());
    store::consumers::run(state.db.clone(), consumer, state.clock.clone(), poll, stop).await
}
