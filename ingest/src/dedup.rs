//! In-run de-duplication by public id: the first row with an id wins, later ones are dropped.
//!
//! Paged sources repeat rows when the data shifts between page calls, and CSV files repeat lines;
//! the upsert must see each id once per run.
//!
//! A run that writes keeps only the ids of the chunks it has not committed yet (buffered or being
//! written): a later repeat of a committed id is found by the database, where the chunk stamped
//! the row with the run's id (see `store::catalog`). Memory is then bounded by the chunks in
//! flight, not by the length of the list. A dry run writes no stamps, so it keeps every id.

use std::collections::HashSet;

use store::catalog::CatalogRow;

/// The ids a run still has to check itself.
#[derive(Debug)]
pub struct Dedup {
    seen: HashSet<String>,
    /// Whether committed chunks' ids are released ([`Dedup::windowed`]) or kept ([`Dedup::whole_run`]).
    releases: bool,
}

impl Dedup {
    /// For runs that stamp the rows they write: ids leave once their chunk has committed.
    pub fn windowed() -> Self {
        Self {
            seen: HashSet::new(),
            releases: true,
        }
    }

    /// For dry runs: every id is kept until the end of the run.
    pub fn whole_run() -> Self {
        Self {
            releases: false,
            ..Self::windowed()
        }
    }

    /// Drops records whose id is held (offered in this batch or earlier), holding the others' ids;
    /// returns how many were dropped.
    pub fn retain<T: CatalogRow>(&mut self, records: &mut Vec<T>) -> usize {
        let before = records.len();
        records.retain(|r| {
            let id = r.source_id();
            !self.seen.contains(id) && self.seen.insert(id.to_owned())
        });
        before - records.len()
    }

    /// Forgets the ids of a committed chunk (windowed only): the database answers for them now.
    pub fn release<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) {
        if self.releases {
            for id in ids {
                self.seen.remove(id);
            }
        }
    }

    /// Whether `id` is held.
    pub fn contains(&self, id: &str) -> bool {
        self.seen.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ItemRow;

    fn item(id: &str, name: &str) -> ItemRow {
        ItemRow {
            source_id: id.into(),
            name: name.into(),
            ..ItemRow::default()
        }
    }

    #[test]
    fn the_first_row_with_an_id_wins_across_batches() {
        let mut dedup = Dedup::whole_run();
        let mut first = vec![item("1", "a"), item("2", "b"), item("1", "c")];
        assert_eq!(dedup.retain(&mut first), 1);
        assert_eq!(
            first.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let mut second = vec![item("2", "d"), item("3", "e")];
        assert_eq!(dedup.retain(&mut second), 1);
        assert_eq!(second[0].name, "e");
        assert!(["1", "2", "3"].iter().all(|id| dedup.contains(id)));
    }

    #[test]
    fn a_windowed_run_forgets_committed_ids_and_a_dry_run_keeps_them() {
        let mut windowed = Dedup::windowed();
        let mut whole = Dedup::whole_run();
        for dedup in [&mut windowed, &mut whole] {
            let mut batch = vec![item("1", "a"), item("2", "b")];
            dedup.retain(&mut batch);
            dedup.release(["1"]);
        }
        assert!(!windowed.contains("1") && windowed.contains("2"));
        assert!(whole.contains("1") && whole.contains("2"));
        let mut again = vec![item("1", "c")];
        assert_eq!(windowed.retain(&mut again), 0);
        assert_eq!(whole.retain(&mut again), 1);
    }
}
