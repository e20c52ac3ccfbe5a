//! Counts of what happened to this process's jobs, per kind, for `/metrics`: Prometheus counters
//! are per process, so each instance reports what it enqueued and ran, and a dashboard sums them.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// What happened to a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Put in the queue by this process (a push whose key was already there is not counted).
    Enqueued,
    /// An attempt succeeded.
    Succeeded,
    /// An attempt failed and the job will be tried again.
    Failed,
    /// The last attempt failed: the job is kept as dead.
    Dead,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Enqueued,
        Outcome::Succeeded,
        Outcome::Failed,
        Outcome::Dead,
    ];

    /// The counter's name in `/metrics`.
    pub fn metric(self) -> &'static str {
        match self {
            Outcome::Enqueued => "jobs_enqueued_total",
            Outcome::Succeeded => "jobs_succeeded_total",
            Outcome::Failed => "jobs_failed_total",
            Outcome::Dead => "jobs_dead_total",
        }
    }
}

/// Counts per (kind, outcome) since the process started.
#[derive(Debug, Default)]
pub struct Tally(Mutex<BTreeMap<(&'static str, Outcome), u64>>);

impl Tally {
    pub fn add(&self, kind: &'static str, outcome: Outcome) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry((kind, outcome)).or_insert(0) += 1;
    }

    /// Every (kind, outcome, count) seen so far.
    pub fn snapshot(&self) -> Vec<(&'static str, Outcome, u64)> {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.iter().map(|(&(k, o), &n)| (k, o, n)).collect()
    }

    pub fn get(&self, kind: &str, outcome: Outcome) -> u64 {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .find(|((k, o), _)| *k == kind && *o == outcome)
            .map_or(0, |(_, &n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_kind_and_outcome() {
        let tally = Tally::default();
        tally.add("close", Outcome::Enqueued);
        tally.add("close", Outcome::Enqueued);
        tally.add("close", Outcome::Dead);
        tally.add("ingest", Outcome::Succeeded);
        assert_eq!(tally.get("close", Outcome::Enqueued), 2);
        assert_eq!(tally.get("close", Outcome::Dead), 1);
        assert_eq!(tally.get("close", Outcome::Failed), 0);
        assert_eq!(
            tally.snapshot(),
            vec![
                ("close", Outcome::Enqueued, 2),
                ("close", Outcome::Dead, 1),
                ("ingest", Outcome::Succeeded, 1),
            ]
        );
    }
}
