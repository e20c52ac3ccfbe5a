//! The SQL layer on both dialects: schema parity, and the outbox relay.

use std::time::Duration;

use store::events::Envelope;
use store::live::{BusMessage, Live};
use store::{outbox, Db};

async fn sqlite(dir: &tempfile::TempDir) -> Db {
    store::testing::sqlite_db(dir.path()).await
}

async fn postgres() -> Option<Db> {
    store::testing::postgres_db().await
}

async fn columns(db: &Db) -> Vec<(String, String)> {
    let sql = match db.dialect() {
        store::Dialect::Sqlite => {
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations' \
             ORDER BY m.name, p.name"
        }
        store::Dialect::Postgres => {
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations' \
             ORDER BY table_name, column_name"
        }
    };
    sqlx::query_as(sql).fetch_all(db.pool()).await.unwrap()
}

#[tokio::test]
async fn sqlite_and_postgres_schemas_have_the_same_tables_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let lite = columns(&sqlite(&dir).await).await;
    assert!(lite.iter().any(|(t, c)| t == "parties" && c == "joined"));
    let Some(pg) = postgres().await else { return };
    assert_eq!(lite, columns(&pg).await);
}

async fn relay_publishes_committed_events_once(db: Db) {
    let live = Live::memory();
    let mut sub = live.bus.subscribe("parties").await.unwrap();
    let mut tx = db.begin().await.unwrap();
    let id = outbox::insert(
        tx.conn(),
        "parties",
        "party.created",
        &serde_json::json!({"n": 1}),
        1000,
    )
    .await
    .unwrap();
    // Not committed yet: nothing to relay.
    drop(tx);
    assert_eq!(
        outbox::relay_once(&db, live.bus.as_ref(), 2000, 100)
            .await
            .unwrap(),
        0
    );

    let mut tx = db.begin().await.unwrap();
    let id2 = outbox::insert(
        tx.conn(),
        "parties",
        "party.created",
        &serde_json::json!({"n": 2}),
        1000,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(id2 >= id);
    assert_eq!(
        outbox::relay_once(&db, live.bus.as_ref(), 2000, 100)
            .await
            .unwrap(),
        1
    );
    let msg = tokio::time::timeout(Duration::from_secs(2), sub.recv())
        .await
        .unwrap()
        .unwrap();
    let BusMessage::Payload(bytes) = msg else {
        panic!("expected a payload")
    };
    let envelope: Envelope = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(envelope.id, id2);
    assert_eq!(envelope.kind, "party.created");
    assert_eq!(envelope.data["n"], 2);
    assert_eq!(
        outbox::relay_once(&db, live.bus.as_ref(), 3000, 100)
            .await
            .unwrap(),
        0,
        "sent once"
    );
}

#[tokio::test]
async fn the_relay_publishes_committed_events_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    relay_publishes_committed_events_once(sqlite(&dir).await).await;
}

#[tokio::test]
async fn the_relay_publishes_committed_events_once_on_postgres() {
    if let Some(db) = postgres().await {
        relay_publishes_committed_events_once(db).await;
    }
}

fn item(i: usize, name: &str) -> store::catalog::ItemRow {
    store::catalog::ItemRow {
        source_id: format!("G{i:07}"),
        name: name.to_owned(),
        category_code: Some("030102001".into()),
        unit: Some("g".into()),
        base_count: Some(120.0),
        total_count: Some(600.0),
        total_unit: None,
        maker: Some(format!("maker {i}")),
    }
}

/// The largest chunk lands whole: every row once, with its values; a rerun by another run changes
/// no content, and a rerun by the same run is all duplicates.
async fn a_largest_chunk_is_written_whole_and_then_seen_unchanged(db: Db) {
    use store::catalog::{apply_chunk, ChunkCounts, MAX_CHUNK};
    let rows: Vec<_> = (0..MAX_CHUNK)
        .map(|i| item(i, &format!("생수 {i}")))
        .collect();
    let counts = apply_chunk(&db, "test", &rows, 1000, 1).await.unwrap();
    assert_eq!(
        counts,
        ChunkCounts {
            inserted: MAX_CHUNK as u64,
            ..ChunkCounts::default()
        }
    );
    let (n, last): (i64, String) = sqlx::query_as(
        "SELECT COUNT(*), MAX(name) FROM items WHERE source = 'test' AND maker LIKE 'maker %'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(n, MAX_CHUNK as i64);
    assert_eq!(Some(&last), rows.iter().map(|r| &r.name).max());
    let again = apply_chunk(&db, "test", &rows, 2000, 2).await.unwrap();
    assert_eq!(again.unchanged, MAX_CHUNK as u64);
    let mut changed = rows.clone();
    changed[MAX_CHUNK - 1].name = "생수 바뀜".into();
    let third = apply_chunk(&db, "test", &changed, 3000, 3).await.unwrap();
    assert_eq!((third.updated, third.unchanged), (1, MAX_CHUNK as u64 - 1));
    // The same run offering the ids again: all duplicates, nothing written.
    let repeat = apply_chunk(&db, "test", &rows, 4000, 3).await.unwrap();
    assert_eq!(
        repeat,
        ChunkCounts {
            duplicates: MAX_CHUNK as u64,
            ..ChunkCounts::default()
        }
    );
    let (updated_at, stamps): (i64, i64) = sqlx::query_as(
        "SELECT MAX(updated_at), COUNT(*) FROM items WHERE source = 'test' AND seen_run = 3",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!((updated_at, stamps), (3000, MAX_CHUNK as i64));
}

#[tokio::test]
async fn a_largest_chunk_is_written_whole_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_largest_chunk_is_written_whole_and_then_seen_unchanged(sqlite(&dir).await).await;
}

#[tokio::test]
async fn a_largest_chunk_is_written_whole_on_postgres() {
    let Some(db) = postgres().await else { return };
    a_largest_chunk_is_written_whole_and_then_seen_unchanged(db).await;
}

/// Stamps only move forward: when two runs of a source overlap, the older one's deactivation
/// spares rows the newer one saw, and the newer one's stamp survives the older one's writes.
async fn overlapping_runs_keep_the_newest_stamp_and_spare_its_rows(db: Db) {
    use store::catalog::{apply_chunk, vanished_ids, Table};
    let rows: Vec<_> = (0..3).map(|i| item(i, &format!("두부 {i}"))).collect();
    apply_chunk(&db, "overlap", &rows, 1000, 5).await.unwrap();
    let mut older = rows[..1].to_vec();
    older[0].name = "두부 0 (older run)".into();
    let counts = apply_chunk(&db, "overlap", &older, 2000, 4).await.unwrap();
    assert_eq!(
        counts.updated, 1,
        "the older run's values are still written"
    );
    let stamps: Vec<(String, i64)> = sqlx::query_as(
        "SELECT source_id, seen_run FROM items WHERE source = 'overlap' ORDER BY source_id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert!(stamps.iter().all(|(_, run)| *run == 5), "{stamps:?}");
    let vanished_for_older = vanished_ids(&db, Table::Items, "overlap", Some(4), |_| false)
        .await
        .unwrap();
    assert!(vanished_for_older.is_empty());
    let vanished_for_newer = vanished_ids(&db, Table::Items, "overlap", Some(6), |sid| {
        sid == rows[0].source_id
    })
    .await
    .unwrap();
    assert_eq!(vanished_for_newer.len(), 2, "all but the kept one");
}

#[tokio::test]
async fn overlapping_runs_keep_the_newest_stamp_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    overlapping_runs_keep_the_newest_stamp_and_spare_its_rows(sqlite(&dir).await).await;
}

#[tokio::test]
async fn overlapping_runs_keep_the_newest_stamp_on_postgres() {
    let Some(db) = postgres().await else { return };
    overlapping_runs_keep_the_newest_stamp_and_spare_its_rows(db).await;
}
