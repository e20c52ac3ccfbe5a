//! Durable outbox consumers on both dialects: every committed event processed once, in order, a late
//! commit with a smaller id not skipped (PostgreSQL), a crash mid-batch leaving nothing half-done,
//! two instances of one consumer never processing an event twice, and pruning that waits for them.

use std::sync::Arc;

use async_trait::async_trait;
use store::consumers::{self, Consumer, StoredEvent};
use store::events::Event;
use store::topics::{party_kind, PARTIES_TOPIC};
use store::{outbox, Db, Tx};

/// A consumer whose effect is a row per event, keyed by the event id (so a repeat would fail the
/// insert), and which fails on purpose at the event numbered `fail_at` (its party id).
struct Recorder {
    name: &'static str,
    fail_at: std::sync::Mutex<Option<i64>>,
}

#[async_trait]
impl Consumer for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn handle(&self, tx: &mut Tx, event: &StoredEvent) -> store::Result<()> {
        let party = event.event.party_change().map(|c| c.party.id).unwrap_or(0);
        if *self.fail_at.lock().unwrap() == Some(party) {
            return Err(store::Error::Corrupt(format!("crash at {party}")));
        }
        sqlx::query("INSERT INTO effects (consumer, event_id, party) VALUES ($1, $2, $3)")
            .bind(self.name)
            .bind(event.id)
            .bind(party)
            .execute(tx.conn())
            .await?;
        Ok(())
    }
}

fn recorder(name: &'static str) -> Recorder {
    Recorder {
        name,
        fail_at: std::sync::Mutex::new(None),
    }
}

async fn prepare(db: &Db) {
    sqlx::query(
        "CREATE TABLE effects (consumer TEXT NOT NULL, event_id BIGINT NOT NULL, party BIGINT NOT NULL, \
         PRIMARY KEY (consumer, event_id))",
    )
    .execute(db.pool())
    .await
    .unwrap();
}

fn change(party: i64) -> serde_json::Value {
    serde_json::json!({ "party": {
        "id": party, "leader_id": 1, "market_id": 1, "item_id": 1, "title": "t", "description": "",
        "capacity": 4, "joined": 1, "price_per_share": null, "meet_at": 10, "deadline_at": 5,
        "status": "recruiting", "cancel_reason": null, "lat": 37.5, "lng": 127.0, "version": 1,
        "created_at": 1, "updated_at": 1
    }})
}

async fn write(db: &Db, party: i64) {
    let mut tx = db.begin().await.unwrap();
    write_in(&mut tx, party).await;
    tx.commit().await.unwrap();
}

async fn write_in(tx: &mut Tx, party: i64) {
    outbox::insert(
        tx.conn(),
        PARTIES_TOPIC,
        party_kind::CREATED,
        &change(party),
        1_000,
    )
    .await
    .unwrap();
}

/// Runs batches until a batch handles nothing.
async fn drain(db: &Db, consumer: &dyn Consumer, batch: i64) -> store::Result<usize> {
    let mut total = 0;
    loop {
        let n = consumers::run_once(db, consumer, batch, 2_000).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

/// Runs batches until `want` events were handled (or a batch fails). On PostgreSQL a consumer
/// passes no transaction still running anywhere in the cluster (other tests' included), so events
/// may become readable a little later than their commit: poll for them, within a deadline.
async fn settle(db: &Db, consumer: &dyn Consumer, batch: i64, want: usize) -> store::Result<()> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut total = 0;
    while total < want {
        let n = consumers::run_once(db, consumer, batch, 2_000).await?;
        total += n;
        if n == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {total} of {want} events readable"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

/// Waits until `n` outbox rows are below every running transaction (PostgreSQL; at once on
/// SQLite), so the batches that follow see all of them and their boundaries are exact.
async fn all_readable(db: &Db, n: i64) {
    let sql = match db.dialect() {
        store::Dialect::Sqlite => "SELECT COUNT(*) FROM outbox",
        store::Dialect::Postgres => {
            "SELECT COUNT(*) FROM outbox WHERE tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
        }
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (readable,): (i64,) = sqlx::query_as(sql).fetch_one(db.pool()).await.unwrap();
        if readable >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{readable} of {n} readable"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn processed(db: &Db, name: &str) -> Vec<i64> {
    let rows: Vec<(i64,)> =
        sqlx::query_as("SELECT party FROM effects WHERE consumer = $1 ORDER BY event_id")
            .bind(name)
            .fetch_all(db.pool())
            .await
            .unwrap();
    rows.into_iter().map(|(p,)| p).collect()
}

async fn every_event_once_and_a_crash_leaves_nothing_half_done(db: Db) {
    prepare(&db).await;
    for party in 1..=7 {
        write(&db, party).await;
    }
    all_readable(&db, 7).await;
    let jobs = recorder("jobs");
    *jobs.fail_at.lock().unwrap() = Some(5);
    // Batches of three: 1-3 commit, then the batch 4-6 fails at 5 and rolls back whole.
    assert!(settle(&db, &jobs, 3, 7).await.is_err());
    assert_eq!(processed(&db, "jobs").await, vec![1, 2, 3]);
    // "Restart": the same consumer, healthy, resumes after 3 and processes each of the rest once.
    *jobs.fail_at.lock().unwrap() = None;
    settle(&db, &jobs, 3, 4).await.unwrap();
    assert_eq!(processed(&db, "jobs").await, (1..=7).collect::<Vec<_>>());
    // Another consumer has its own position and starts from the beginning.
    let mail = recorder("mail");
    settle(&db, &mail, 100, 7).await.unwrap();
    assert_eq!(processed(&db, "mail").await, (1..=7).collect::<Vec<_>>());
    // Nothing new: nothing processed again.
    assert_eq!(drain(&db, &jobs, 3).await.unwrap(), 0);
    // (The application's own consumers, registered by the migrations, are not this test's.)
    let lags = |db: Db| async move {
        let mut lags = consumers::lags(&db).await.unwrap();
        lags.retain(|(name, _)| name == "jobs" || name == "mail");
        lags
    };
    assert_eq!(
        lags(db.clone()).await,
        vec![("jobs".to_owned(), 0), ("mail".to_owned(), 0)]
    );
    write(&db, 8).await;
    assert_eq!(
        lags(db.clone()).await,
        vec![("jobs".to_owned(), 1), ("mail".to_owned(), 1)]
    );
}

async fn two_instances_of_one_consumer_process_each_event_once(db: Db) {
    prepare(&db).await;
    for party in 1..=60 {
        write(&db, party).await;
    }
    let a = Arc::new(recorder("jobs"));
    let b = a.clone();
    let (db_a, db_b) = (db.clone(), db.clone());
    let until_all = |db: Db, consumer: Arc<Recorder>| async move {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut mine = 0;
        loop {
            mine += drain(&db, consumer.as_ref(), 7).await.unwrap();
            if processed(&db, "jobs").await.len() == 60 {
                return mine;
            }
            assert!(tokio::time::Instant::now() < deadline, "not all processed");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    let (x, y) = tokio::join!(
        tokio::spawn(until_all(db_a, a)),
        tokio::spawn(until_all(db_b, b)),
    );
    // A repeat would have failed on the effects' primary key; together they did all 60.
    assert_eq!(x.unwrap() + y.unwrap(), 60);
    assert_eq!(processed(&db, "jobs").await, (1..=60).collect::<Vec<_>>());
}

async fn events_are_pruned_only_once_every_consumer_has_them(db: Db) {
    prepare(&db).await;
    // The migrations register the application's consumers; this test is about its own alone.
    sqlx::query("DELETE FROM outbox_consumers")
        .execute(db.pool())
        .await
        .unwrap();
    for party in 1..=3 {
        write(&db, party).await;
    }
    let live = store::live::Live::memory();
    outbox::relay_once(&db, live.bus.as_ref(), 1_500, 100)
        .await
        .unwrap();
    let jobs = recorder("jobs");
    // Registered, processed nothing yet: a sent event is still kept for it.
    settle(&db, &jobs, 1, 1).await.unwrap();
    let keep = 0;
    assert_eq!(outbox::prune(&db, 10_000, keep).await.unwrap(), 1);
    settle(&db, &jobs, 100, 2).await.unwrap();
    assert_eq!(outbox::prune(&db, 10_000, keep).await.unwrap(), 2);
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// A deployment from before the `notifications` and `chat` consumers upgrades with a week of
/// events in its outbox: the upgrade places those consumers at the end, so they act on what happens
/// next and not on old parties; a consumer the upgrade does not name still starts at the oldest.
async fn consumers_added_by_an_upgrade_start_at_the_end(db: Db) {
    db.migrate_to(9).await.unwrap();
    prepare(&db).await;
    for party in 1..=3 {
        write(&db, party).await;
    }
    all_readable(&db, 3).await;
    db.migrate().await.unwrap();
    let (notifications, chat) = (recorder("notifications"), recorder("chat"));
    assert_eq!(drain(&db, &notifications, 100).await.unwrap(), 0);
    assert_eq!(drain(&db, &chat, 100).await.unwrap(), 0);
    write(&db, 4).await;
    settle(&db, &notifications, 100, 1).await.unwrap();
    settle(&db, &chat, 100, 1).await.unwrap();
    assert_eq!(processed(&db, "notifications").await, vec![4]);
    assert_eq!(processed(&db, "chat").await, vec![4]);
    let other = recorder("mail");
    settle(&db, &other, 100, 4).await.unwrap();
    assert_eq!(processed(&db, "mail").await, vec![1, 2, 3, 4]);
}

on_both!(
    every_event_once_and_a_crash_leaves_nothing_half_done,
    two_instances_of_one_consumer_process_each_event_once,
    events_are_pruned_only_once_every_consumer_has_them
);

/// The upgrade test starts from a database no migration has touched.
mod consumers_added_by_an_upgrade_start_at_the_end {
    use store::Db;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&Db::sqlite_url(&dir.path().join("t.db")), 4)
            .await
            .unwrap();
        super::consumers_added_by_an_upgrade_start_at_the_end(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some((url, _)) = store::testing::scaled_urls() {
            let db = Db::connect(&store::testing::fresh_pg_url(&url).await, 4)
                .await
                .unwrap();
            super::consumers_added_by_an_upgrade_start_at_the_end(db).await;
        }
    }
}

/// PostgreSQL takes ids at insert and commits in another order: the event with the smaller id
/// commits last, after the consumer has seen the larger one's transaction end. It is processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_commit_with_a_smaller_id_is_not_skipped() {
    let Some(db) = store::testing::postgres_db().await else {
        return;
    };
    prepare(&db).await;
    let jobs = recorder("jobs");
    let mut early = db.begin().await.unwrap();
    write_in(&mut early, 1).await; // takes the smaller id, commits last
    write(&db, 2).await; // larger id, committed first
    let (visible,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(visible, 1, "the first event is not committed yet");
    // While the early transaction runs, the consumer does not pass it.
    drain(&db, &jobs, 100).await.unwrap();
    assert_eq!(processed(&db, "jobs").await, Vec::<i64>::new());
    early.commit().await.unwrap();
    settle(&db, &jobs, 100, 2).await.unwrap();
    let mut got = processed(&db, "jobs").await;
    got.sort();
    assert_eq!(got, vec![1, 2], "both processed, the late one included");
}

#[test]
fn stored_events_read_as_their_variants() {
    let event = Event::parse(party_kind::CREATED, &change(3)).unwrap();
    assert!(matches!(event, Event::PartyCreated(ref c) if c.party.id == 3));
}
