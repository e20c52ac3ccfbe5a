//! Local fan-out of bus messages to the subscribers of this process, one broadcast channel per topic.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::broadcast;

use super::{BusMessage, Subscription};

/// Messages a slow subscriber may fall behind by before it is told it missed some ([`BusMessage::Gap`]).
const TOPIC_CAPACITY: usize = 1024;
/// The same for a topic of one party or user (`chat.{party}`, `sessions.{user}`, …): it has a few
/// subscribers and a few messages a second, and there is one per open socket or stream, so its
/// ring (allocated whole, about 70 bytes a slot) is kept small. A subscriber that lags past it
/// catches up from SQL like any other.
const ENTITY_TOPIC_CAPACITY: usize = 64;

/// The same for a user's `sessions.{user}` topic, which carries only "this session ended" (a
/// logout) and which every open stream and socket holds: a few slots.
const SESSIONS_TOPIC_CAPACITY: usize = 4;

/// The ring size for `topic`: entity topics are named `kind.{id}`.
fn capacity(topic: &str) -> usize {
    if topic.starts_with("sessions.") {
        SESSIONS_TOPIC_CAPACITY
    } else if topic.contains('.') {
        ENTITY_TOPIC_CAPACITY
    } else {
        TOPIC_CAPACITY
    }
}

/// Topic name → broadcast sender. Topics without subscribers are dropped as they are noticed.
#[derive(Default)]
pub struct Fanout {
    topics: Mutex<HashMap<String, broadcast::Sender<BusMessage>>>,
}

impl Fanout {
    pub fn subscribe(&self, topic: &str) -> Subscription {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        let sender = topics
            .entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(capacity(topic)).0);
        Subscription::new(sender.subscribe())
    }

    /// Delivers `payload` to the local subscribers of `topic`.
    pub fn deliver(&self, topic: &str, payload: Bytes) {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = topics.get(topic) {
            if sender.send(BusMessage::Payload(payload)).is_err() {
                // No receiver is left: forget the topic so the map does not grow without bound.
                topics.remove(topic);
            }
        }
    }

    /// Tells every local subscriber that messages may have been missed.
    pub fn gap_all(&self) {
        let topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        for sender in topics.values() {
            let _ = sender.send(BusMessage::Gap);
        }
    }
}
