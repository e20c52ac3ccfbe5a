//! In-run de-duplication by public id: the first row with an id wins, later ones are dropped.
//!
//! Paged sources repeat rows when the data shifts between page calls, and CSV files repeat lines;
//! the upsert must see each id once per run.

use std::collections::HashSet;

use crate::record::SourceId;

/// The ids seen so far in one run.
#[derive(Debug, Default)]
pub struct Dedup {
    seen: HashSet<String>,
    duplicates: u64,
}

impl Dedup {
    pub fn new() -> Self {
        Self::default()
    }

    /// True the first time an id is offered.
    pub fn first(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            self.duplicates += 1;
            false
        } else {
            self.seen.insert(id.to_owned());
            true
        }
    }

    /// Drops records whose id was already seen (in this batch or earlier); returns how many.
    pub fn retain<T: SourceId>(&mut self, records: &mut Vec<T>) -> usize {
        let before = records.len();
        records.retain(|r| self.first(r.source_id()));
        before - records.len()
    }

    /// Distinct ids seen.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Rows dropped as duplicates so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Every id seen, e.g. to mark the rows that vanished from a full source as inactive.
    pub fn ids(&self) -> &HashSet<String> {
        &self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ItemRecord;

    fn item(id: &str, name: &str) -> ItemRecord {
        ItemRecord {
            source_id: id.into(),
            name: name.into(),
            category_code: None,
            unit: None,
            base_count: None,
            total_count: None,
            total_unit: None,
            maker: None,
        }
    }

    #[test]
    fn the_first_row_with_an_id_wins_across_batches() {
        let mut dedup = Dedup::new();
        let mut first = vec![item("1", "a"), item("2", "b"), item("1", "c")];
        assert_eq!(dedup.retain(&mut first), 1);
        assert_eq!(
            first.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let mut second = vec![item("2", "d"), item("3", "e")];
        assert_eq!(dedup.retain(&mut second), 1);
        assert_eq!(second[0].name, "e");
        assert_eq!((dedup.len(), dedup.duplicates()), (3, 2));
    }
}
