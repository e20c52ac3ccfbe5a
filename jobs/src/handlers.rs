//! What each job does. Every handler re-reads the state it acts on through a store operation that
//! does nothing when the job is stale (party cancelled, meet moved, mark changed), so a late,
//! repeated or retried job is harmless.

use std::sync::Arc;

use store::live::Cache;
use store::penalties::{self, Settled};
use store::transitions::{self, Step};
use store::{Clock, Db};

use crate::job::Job;

/// What the handlers need: the database, the live cache (penalty counts), time and the rules.
pub struct Context {
    pub db: Db,
    pub cache: Arc<dyn Cache>,
    pub clock: Clock,
    pub settings: Settings,
}

/// The lifecycle rules jobs apply.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long after its meet a closed party completes.
    pub complete_after_meet_ms: i64,
    pub penalties: penalties::Policy,
}

/// Runs one job.
pub async fn run(job: &Job, ctx: &Context) -> Result<(), store::Error> {
    let now = ctx.clock.now_ms();
    match *job {
        Job::Close { party_id, .. } => {
            if let Step::Done(party) =
                transitions::close_at_deadline(&ctx.db, party_id, now).await?
            {
                tracing::info!(party.id = party_id, status = %party.status, "party closed at its deadline");
            }
        }
        Job::Complete { party_id, .. } => {
            let after = ctx.settings.complete_after_meet_ms;
            if let Step::Done(_) =
                transitions::complete_after_meet(&ctx.db, party_id, now, after).await?
            {
                tracing::info!(party.id = party_id, "party completed");
            }
        }
        Job::SettlePenalty {
            party_id, user_id, ..
        } => {
            let settled =
                penalties::settle(&ctx.db, party_id, user_id, now, &ctx.settings.penalties).await?;
            if settled != Settled::Unchanged {
                penalties::forget_count(ctx.cache.as_ref(), user_id).await;
                tracing::info!(party.id = party_id, user.id = user_id, outcome = ?settled, "penalty settled");
            }
        }
    }
    Ok(())
}
