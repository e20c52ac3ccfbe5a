//! The jobs gonggu runs, as one serde-tagged enum stored in apalis's table, with the idempotency
//! key each is pushed under: a key names the job and the fact that made it due, so pushing it
//! again (a repeated scan, a replayed event) stores nothing new, while a changed fact (a moved
//! meet time) is a new job.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Close (or cancel for too few members) a party whose booking deadline passed.
    Close { party_id: i64, deadline_at: i64 },
    /// Complete a closed party some time after its meet.
    Complete { party_id: i64, meet_at: i64 },
    /// Run the nightly import of `what` (`items` or `markets`) for the schedule's tick `tick_at`.
    Ingest { what: String, tick_at: i64 },
    /// Prune what has expired (idempotency keys, sent events, refresh tokens, old finished jobs),
    /// once per hour (`hour` counts hours since the epoch).
    Housekeeping { hour: i64 },
    /// Bring a member's penalty in line with their attendance mark (outbox event `event_id`).
    SettlePenalty {
        party_id: i64,
        user_id: i64,
        event_id: i64,
    },
    /// Send the reminder `lead` (`24h` or `1h`) before the party's meet at `meet_at`.
    Remind {
        party_id: i64,
        meet_at: i64,
        lead: String,
    },
    /// Push the user's notification `seq` to their push subscription `subscription_id`.
    Push {
        subscription_id: i64,
        user_id: i64,
        seq: i64,
    },
    /// Does nothing: what the runtime itself costs per job (fetch, run, acknowledge) is measured
    /// with it (the jobs benchmark). gonggu never pushes one.
    Noop { n: u64 },
}

impl Job {
    pub fn key(&self) -> String {
        match self {
            Job::Close {
                party_id,
                deadline_at,
            } => format!("close:{party_id}:{deadline_at}"),
            Job::Complete { party_id, meet_at } => format!("complete:{party_id}:{meet_at}"),
            Job::SettlePenalty { event_id, .. } => format!("settle-penalty:{event_id}"),
            Job::Ingest { what, tick_at } => format!("ingest:{what}:{tick_at}"),
            Job::Housekeeping { hour } => format!("housekeeping:{hour}"),
            Job::Remind {
                party_id,
                meet_at,
                lead,
            } => format!("remind:{party_id}:{meet_at}:{lead}"),
            Job::Push {
                subscription_id,
                user_id,
                seq,
            } => format!("push:{subscription_id}:{user_id}:{seq}"),
            Job::Noop { n } => format!("noop:{n}"),
        }
    }

    /// When the job's work is due by gonggu's clock (time-driven jobs only). A worker whose clock
    /// is behind the instance that pushed the job (clock skew, or a job pushed by a sweeper on
    /// another instance) must not run it early: it would find nothing due, finish the job, and
    /// the job's key would keep the sweeper from pushing it again when the time comes.
    pub fn due_at(&self, complete_after_meet_ms: i64) -> Option<i64> {
        match *self {
            Job::Close { deadline_at, .. } => Some(deadline_at),
            Job::Complete { meet_at, .. } => Some(meet_at.saturating_add(complete_after_meet_ms)),
            Job::Remind {
                meet_at, ref lead, ..
            } => store::reminders::Lead::parse(lead).map(|lead| meet_at - lead.ms()),
            Job::SettlePenalty { .. }
            | Job::Ingest { .. }
            | Job::Housekeeping { .. }
            | Job::Push { .. }
            | Job::Noop { .. } => None,
        }
    }

    /// The kind as metrics and the admin listing name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Close { .. } => "close",
            Job::Complete { .. } => "complete",
            Job::SettlePenalty { .. } => "settle_penalty",
            Job::Ingest { .. } => "ingest",
            Job::Housekeeping { .. } => "housekeeping",
            Job::Remind { .. } => "remind",
            Job::Push { .. } => "push",
            Job::Noop { .. } => "noop",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_the_job_and_the_fact_that_made_it_due() {
        let a = Job::Complete {
            party_id: 7,
            meet_at: 100,
        };
        let moved = Job::Complete {
            party_id: 7,
            meet_at: 200,
        };
        assert_eq!(a.key(), a.clone().key());
        assert_ne!(a.key(), moved.key(), "a moved meet is a new job");
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["kind"], "complete");
        assert_eq!(serde_json::from_value::<Job>(json).unwrap(), a);
    }

    #[test]
    fn time_driven_jobs_are_due_at_their_fact_and_others_at_once() {
        let close = Job::Close {
            party_id: 1,
            deadline_at: 500,
        };
        let complete = Job::Complete {
            party_id: 1,
            meet_at: 1_000,
        };
        assert_eq!(close.due_at(300), Some(500));
        assert_eq!(complete.due_at(300), Some(1_300));
        assert_eq!(Job::Housekeeping { hour: 1 }.due_at(300), None);
    }
}
