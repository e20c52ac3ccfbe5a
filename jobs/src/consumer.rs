//! Events that become jobs: a durable outbox consumer (exactly one position, shared by every
//! instance) pushes a penalty job for every attendance mark, keyed by the event id. A push that
//! succeeds before its batch's commit fails is pushed again on the retry and stored once.

use std::sync::Arc;

use async_trait::async_trait;
use store::consumers::{Consumer, StoredEvent};
use store::events::Event;
use store::Tx;

use crate::job::Job;
use crate::store::JobStore;

/// The consumer's position name; never rename it (it would start over from the oldest event).
pub const NAME: &str = "jobs";

pub struct JobsConsumer {
    pub store: JobStore,
}

#[async_trait]
impl Consumer for JobsConsumer {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn handle(&self, _tx: &mut Tx, event: &StoredEvent) -> store::Result<()> {
        let job = match &event.event {
            Event::AttendanceMarked(marked) => Job::SettlePenalty {
                party_id: marked.party_id,
                user_id: marked.user_id,
                event_id: event.id,
            },
            _ => return Ok(()),
        };
        self.store
            .push(&job)
            .await
            .map_err(|e| store::Error::Corrupt(format!("pushing {}: {e}", job.key())))
    }
}

impl JobsConsumer {
    pub fn new(store: JobStore) -> Arc<Self> {
        Arc::new(Self { store })
    }
}
