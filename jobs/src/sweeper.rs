//! The scheduler of time-driven work: every [`SWEEP`] the instance holding the `jobs-sweeper`
//! lease reads the parties that are due (deadline passed, meet long enough ago, a reminder before
//! the meet not sent) by gonggu's clock and pushes their jobs, and turns waiting Web Push
//! deliveries into push jobs. Idempotency keys make a repeated scan push nothing new, and a
//! moved meet time a new job; the handlers do nothing for a party that changed in between. Due
//! times are read from the parties themselves, so a party whose job was lost (or never pushed)
//! is still found: the sweeper is the catch-all, not a second path.

use std::sync::Arc;
use std::time::Duration;

use store::live::Lease;
use store::transitions;
use tokio::sync::watch;

use crate::handlers::Context;
use crate::job::Job;
use crate::store::JobStore;

/// The lease naming the one instance that sweeps.
pub const LEASE: &str = "jobs-sweeper";
/// How often the sweeper looks (the lag between a due time and its job).
pub const SWEEP: Duration = Duration::from_millis(250);
const LEASE_TTL_MS: i64 = 10_000;
/// Parties read per scan and kind: a burst of deadlines in one minute is pushed in one scan.
const BATCH: i64 = 10_000;
/// A job pushed this recently is not pushed again (its party stays due until a worker runs it);
/// after this it is, in case it was lost, and its key makes that harmless.
const REPUSH_AFTER: Duration = Duration::from_secs(60);

/// Keys this sweeper pushed lately, so a backlog does not push every due job on every scan.
#[derive(Default)]
pub struct Recent(std::collections::HashMap<String, std::time::Instant>);

impl Recent {
    /// Whether `key` should be pushed now (and notes that it is).
    fn take(&mut self, key: &str) -> bool {
        let now = std::time::Instant::now();
        if self.0.len() > 4 * BATCH as usize {
            self.0
                .retain(|_, at| now.duration_since(*at) < REPUSH_AFTER);
        }
        match self.0.get(key) {
            Some(at) if now.duration_since(*at) < REPUSH_AFTER => false,
            _ => {
                self.0.insert(key.to_owned(), now);
                true
            }
        }
    }
}

/// One scan: pushes the jobs of every due party. Returns how many it pushed (or found pushed).
pub async fn sweep_once(
    store: &JobStore,
    ctx: &Context,
    recent: &mut Recent,
) -> Result<usize, String> {
    let now = ctx.clock.now_ms();
    let after = ctx.settings.complete_after_meet_ms;
    let closing = transitions::due_to_close(&ctx.db, now, BATCH)
        .await
        .map_err(|e| store::error::chain(&e))?;
    let completing = transitions::due_to_complete(&ctx.db, now, after, BATCH)
        .await
        .map_err(|e| store::error::chain(&e))?;
    let jobs = closing
        .iter()
        .map(|d| Job::Close {
            party_id: d.id,
            deadline_at: d.at,
        })
        .chain(completing.iter().map(|d| Job::Complete {
            party_id: d.id,
            meet_at: d.at,
        }));
    let mut reminding = Vec::new();
    for lead in store::reminders::Lead::ALL {
        let due = store::reminders::due(&ctx.db, lead, now, BATCH)
            .await
            .map_err(|e| store::error::chain(&e))?;
        reminding.extend(due.into_iter().map(|d| Job::Remind {
            party_id: d.id,
            meet_at: d.at,
            lead: lead.as_str().to_owned(),
        }));
    }
    let mut pushed = 0;
    for job in jobs.chain(reminding) {
        if !recent.take(&job.key()) {
            continue;
        }
        store.push(&job).await.map_err(|e| e.to_string())?;
        pushed += 1;
    }
    Ok(pushed)
}

/// Turns the waiting push deliveries into push jobs, then deletes them. A crash between the two
/// pushes them again on the next scan, which their keys make harmless.
pub async fn sweep_pushes(store: &JobStore, ctx: &Context) -> Result<usize, String> {
    let pending = store::push::pending(&ctx.db, BATCH)
        .await
        .map_err(|e| store::error::chain(&e))?;
    for d in &pending {
        let job = Job::Push {
            subscription_id: d.subscription_id,
            user_id: d.user_id,
            seq: d.seq,
        };
        store.push(&job).await.map_err(|e| e.to_string())?;
    }
    let ids: Vec<i64> = pending.iter().map(|d| d.id).collect();
    store::push::forget(&ctx.db, &ids)
        .await
        .map_err(|e| store::error::chain(&e))?;
    Ok(pending.len())
}

/// Pushes the nightly imports of the latest tick (at or before now), unless this sweeper already
/// did: the key makes another instance's (or a restarted one's) push of the same tick a no-op.
pub async fn sweep_nightly(
    store: &JobStore,
    ctx: &Context,
    pushed_tick: &mut Option<i64>,
) -> Result<(), String> {
    let Some(nightly) = &ctx.nightly else {
        return Ok(());
    };
    let Some(tick) = crate::nightly::latest_tick(&nightly.schedule, ctx.clock.now_ms()) else {
        return Ok(());
    };
    if *pushed_tick == Some(tick) {
        return Ok(());
    }
    for (kind, _) in nightly.runs() {
        let job = Job::Ingest {
            what: kind.as_str().to_owned(),
            tick_at: tick,
        };
        store.push(&job).await.map_err(|e| e.to_string())?;
    }
    *pushed_tick = Some(tick);
    Ok(())
}

/// Sweeps every `every` while this instance holds the lease, until `stop`.
pub async fn run(
    store: JobStore,
    ctx: Arc<Context>,
    lease: Arc<dyn Lease>,
    instance: String,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut pushed_tick = None;
    let mut pushed_hour = None;
    let mut recent = Recent::default();
    loop {
        let now = ctx.clock.now_ms();
        match lease.acquire(LEASE, &instance, now, LEASE_TTL_MS).await {
            Ok(true) => {
                if let Err(err) = sweep_once(&store, &ctx, &mut recent).await {
                    tracing::warn!(error = %err, "job sweep failed; retrying");
                }
                if let Err(err) = sweep_pushes(&store, &ctx).await {
                    tracing::warn!(error = %err, "push deliveries not scheduled; retrying");
                }
                if let Err(err) = sweep_nightly(&store, &ctx, &mut pushed_tick).await {
                    tracing::warn!(error = %err, "nightly import not scheduled; retrying");
                }
                let hour = now / 3_600_000;
                if pushed_hour != Some(hour) {
                    match store.push(&Job::Housekeeping { hour }).await {
                        Ok(()) => pushed_hour = Some(hour),
                        Err(err) => {
                            tracing::warn!(error = %err, "housekeeping not scheduled; retrying")
                        }
                    }
                }
            }
            // Another instance sweeps; if it stops, this one pushes the tick again (a no-op).
            Ok(false) => {
                pushed_tick = None;
                pushed_hour = None;
                recent = Recent::default();
            }
            Err(err) => tracing::warn!(error = %err, "job sweeper lease unavailable"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if let Err(err) = lease.release(LEASE, &instance).await {
        tracing::warn!(error = %err, "job sweeper lease not released");
    }
}
