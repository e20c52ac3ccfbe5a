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
    /// The nightly import, when any source is configured.
    pub nightly: Option<crate::nightly::Nightly>,
    /// The job tables, whose old finished jobs housekeeping prunes.
    pub jobs: Option<crate::store::JobStore>,
    /// Sends Web Push messages (`None`: push jobs wait, failing, until an instance that has one
    /// runs them).
    pub push: Option<Arc<crate::push::Pusher>>,
}

/// Finished jobs are kept this long for operators to read.
const KEEP_FINISHED_JOBS_SECS: i64 = 7 * 24 * 3600;

/// Why a job failed: the store, the job tables, or an import that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("pruning the finished jobs: {0}")]
    Jobs(#[from] crate::store::JobsError),
    #[error("push: {0}")]
    Push(#[from] crate::push::PushError),
    #[error("this instance cannot send pushes")]
    NoPusher,
    /// The job reached a worker whose clock is behind its due time: it fails, and its retry
    /// (after a backoff) runs it once due.
    #[error("not due for {wait_ms} ms by this instance's clock")]
    NotDue { wait_ms: i64 },
    #[error("nightly {kind} import {outcome}: {detail}")]
    Import {
        kind: &'static str,
        outcome: &'static str,
        detail: String,
    },
}

/// The lifecycle rules jobs apply.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long after its meet a closed party completes.
    pub complete_after_meet_ms: i64,
    pub penalties: penalties::Policy,
}

/// Runs one job.
pub async fn run(job: &Job, ctx: &Context) -> Result<(), JobError> {
    let now = ctx.clock.now_ms();
    if let Some(due) = job.due_at(ctx.settings.complete_after_meet_ms) {
        if due > now {
            return Err(JobError::NotDue { wait_ms: due - now });
        }
    }
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
        Job::Ingest { ref what, tick_at } => import(ctx, what, tick_at).await?,
        Job::Housekeeping { .. } => housekeeping(ctx, now).await?,
        Job::Remind {
            party_id,
            meet_at,
            ref lead,
        } => {
            // A lead this build does not know (from a newer release) has nothing to send.
            if let Some(lead) = store::reminders::Lead::parse(lead) {
                if store::reminders::send(&ctx.db, party_id, meet_at, lead, now).await? {
                    tracing::info!(party.id = party_id, lead = lead.as_str(), "reminder due");
                }
            }
        }
        Job::Push {
            subscription_id,
            user_id,
            seq,
        } => push(ctx, subscription_id, user_id, seq).await?,
        Job::Noop { .. } => {}
    }
    Ok(())
}

/// Pushes one notification to one subscription. A subscription removed meanwhile, or a
/// notification already pruned, leaves nothing to do; a 404 or 410 removes the subscription.
async fn push(ctx: &Context, subscription_id: i64, user_id: i64, seq: i64) -> Result<(), JobError> {
    let pusher = ctx.push.as_ref().ok_or(JobError::NoPusher)?;
    let Some(sub) = store::push::get(&ctx.db, subscription_id).await? else {
        return Ok(());
    };
    // The endpoint moved to another user (a new login on that browser): not theirs to see.
    if sub.user_id != user_id {
        return Ok(());
    }
    let Some(n) = store::notifications::get(&ctx.db, user_id, seq).await? else {
        return Ok(());
    };
    match pusher.send(&sub, &n).await? {
        crate::push::Sent::Accepted => {
            tracing::debug!(
                user.id = user_id,
                seq,
                subscription.id = subscription_id,
                "pushed"
            );
        }
        crate::push::Sent::Gone => {
            store::push::remove_gone(&ctx.db, sub.id, &sub.endpoint).await?;
            tracing::info!(
                user.id = user_id,
                subscription.id = subscription_id,
                "push subscription gone; removed"
            );
        }
        crate::push::Sent::Refused(status) => {
            tracing::warn!(
                user.id = user_id,
                subscription.id = subscription_id,
                status,
                "push refused; not retried"
            );
        }
    }
    Ok(())
}

/// Prunes what has expired. Each step is idempotent, so a retried job only prunes what is left.
async fn housekeeping(ctx: &Context, now: i64) -> Result<(), JobError> {
    let keys = store::idempotency::prune(&ctx.db, now).await?;
    let events = store::outbox::prune(&ctx.db, now, store::outbox::KEEP_MS).await?;
    let tokens = store::tokens::prune_expired(&ctx.db, now).await?;
    let notifications =
        store::notifications::prune(&ctx.db, now - store::notifications::KEEP_MS).await?;
    let jobs = match &ctx.jobs {
        Some(jobs) => {
            jobs.prune_finished(now / 1000 - KEEP_FINISHED_JOBS_SECS)
                .await?
        }
        None => 0,
    };
    tracing::info!(
        idempotency_keys = keys,
        outbox_events = events,
        refresh_tokens = tokens,
        notifications,
        jobs,
        "housekeeping done"
    );
    Ok(())
}

/// One nightly import, recorded as `gonggu ingest` records it. A failed run fails the job (so it
/// is retried, and kept as dead when it keeps failing); a partial one is logged as an error.
async fn import(ctx: &Context, kind: &str, tick_at: i64) -> Result<(), JobError> {
    use ingest::run::{Kind, Outcome, RunContext};
    let kind = match kind {
        "items" => Kind::Items,
        "markets" => Kind::Markets,
        other => {
            return Err(JobError::Import {
                kind: "unknown",
                outcome: "refused",
                detail: format!("no import of kind {other}"),
            })
        }
    };
    let Some(config) = ctx.nightly.as_ref().and_then(|n| n.config(kind)) else {
        tracing::warn!(
            kind = kind.as_str(),
            "nightly import no longer configured; skipped"
        );
        return Ok(());
    };
    let run_ctx = RunContext {
        db: &ctx.db,
        cache: Some(ctx.cache.as_ref()),
        clock: &ctx.clock,
        progress: &(),
    };
    let report = config.run(&run_ctx).await.map_err(|e| JobError::Import {
        kind: kind.as_str(),
        outcome: "not recorded",
        detail: store::error::chain(&e),
    })?;
    let detail = report.error.clone().unwrap_or_default();
    match report.outcome {
        Outcome::Succeeded => {
            tracing::info!(kind = kind.as_str(), tick_at, run = ?report.run_id, inserted = report.totals.inserted, updated = report.totals.updated, "nightly import succeeded");
            Ok(())
        }
        Outcome::Partial => {
            tracing::error!(kind = kind.as_str(), tick_at, run = ?report.run_id, error = %detail, "nightly import partial");
            Ok(())
        }
        Outcome::Failed => Err(JobError::Import {
            kind: kind.as_str(),
            outcome: "failed",
            detail,
        }),
    }
}
