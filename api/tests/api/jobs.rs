//! Jobs end to end: with the worker, sweeper and consumer running in the app, a party closes at
//! its deadline and completes after its meet by itself, a no-show mark becomes one penalty, a meet
//! moved twice leaves one completion job, and `/readyz` reports the worker. Time is the app's
//! clock, moved by the test; the test then waits for the effect (polling), never for a due time.

use std::time::Duration;

use crate::common;

use common::{eventually, join, time_of, TestApp, TestUser};
use futures::future::join_all;
use serde_json::{json, Value};

on_both_backends!(with crate::common::jobs_settings() =>
    a_party_closes_at_its_deadline_by_itself,
    too_few_members_cancel_by_themselves,
    a_closed_party_completes_after_its_meet_by_itself,
    fifty_concurrent_no_show_marks_become_one_penalty,
    a_meet_moved_twice_leaves_one_completion_job_that_acts,
    readyz_reports_the_worker,
    a_worker_whose_backend_fails_comes_back_and_readyz_reports_it_down,
    housekeeping_prunes_what_expired_every_hour,
    a_job_that_reaches_a_worker_before_it_is_due_runs_once_due,
);

on_both_backends!(with super::operator_settings() =>
    operators_list_jobs_and_retry_a_dead_one,
);

/// Jobs, with `ops@test.gonggu.kr` an operator.
fn operator_settings() -> api::state::Settings {
    let mut settings = crate::common::jobs_settings();
    settings.operator_emails = vec![crate::common::OPERATOR_EMAIL.into()];
    settings
}

on_both_backends!(with super::nightly_settings() =>
    the_nightly_import_of_a_tick_runs_once_across_instances,
);

on_both_backends!(with super::failing_nightly_settings() =>
    a_job_that_keeps_failing_is_retried_then_kept_dead_and_counted,
);

on_both_backends!(
    a_job_whose_worker_died_runs_again_and_acts_once,
    a_stopped_worker_hands_back_what_it_had_not_started,
);

/// Jobs with a nightly market import from a file that is not there: every attempt fails.
fn failing_nightly_settings() -> api::state::Settings {
    let mut settings = nightly_settings();
    if let Some(nightly) = settings.jobs.nightly.as_mut() {
        if let Some(markets) = nightly.markets.as_mut() {
            markets.file = Some("/nonexistent/markets.csv".into());
        }
    }
    settings
}

/// Jobs with a nightly market import from the bundled market list (a plain CSV).
fn nightly_settings() -> api::state::Settings {
    let mut settings = crate::common::jobs_settings();
    let file = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/markets.csv");
    let mut markets = ingest::config::IngestConfig::new(
        ingest::run::Kind::Markets,
        ingest::config::SourceKind::Csv,
    );
    markets.file = Some(file);
    settings.jobs.nightly = Some(jobs::nightly::Nightly {
        schedule: jobs::nightly::Nightly::schedule(jobs::nightly::DEFAULT_SCHEDULE).unwrap(),
        items: None,
        markets: Some(markets),
    });
    settings
}

const HOUR: i64 = 3_600_000;

async fn party_json(app: &TestApp, id: i64) -> Value {
    app.get(None, &format!("/api/v1/parties/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

async fn status_becomes(app: &TestApp, id: i64, status: &str) -> Value {
    eventually(&format!("party {id} {status}"), || async {
        let party = party_json(app, id).await;
        (party["status"] == status).then_some(party)
    })
    .await
}

/// A party with a leader and one member, closed by the jobs once its deadline passed.
struct Closed {
    leader: TestUser,
    member: TestUser,
    party: Value,
    id: i64,
}

async fn closed_party(app: &TestApp) -> Closed {
    let leader = app.user("leader").await;
    let member = app.user("member").await;
    let party = app.party(&leader, 4).await;
    let id = party["id"].as_i64().unwrap();
    join(app, &member, id).await;
    app.state
        .clock
        .advance_ms(time_of(&party, "deadline_at") - app.state.now() + 1);
    status_becomes(app, id, "closed").await;
    Closed {
        leader,
        member,
        party,
        id,
    }
}

async fn job_keys(app: &TestApp, prefix: &str) -> Vec<(String, String)> {
    app.state
        .jobs
        .get()
        .expect("jobs attached")
        .store
        .keys(prefix)
        .await
        .unwrap()
}

async fn a_party_closes_at_its_deadline_by_itself(app: TestApp) {
    let Closed { party, id, .. } = closed_party(&app).await;
    let keys = job_keys(&app, &format!("close:{id}:")).await;
    assert_eq!(keys.len(), 1, "one close job: {keys:?}");
    eventually("the close job is done", || async {
        let keys = job_keys(&app, &format!("close:{id}:")).await;
        (keys[0].1 == "Done").then_some(())
    })
    .await;
    // Gone from nearby search: the index drops closed parties when the close's event reaches it
    // (through the outbox relay and the bus, so a moment after the commit).
    let nearby = format!(
        "/api/v1/parties/nearby?lat={}&lng={}&radius_m=1000&include_full=true",
        party["lat"], party["lng"]
    );
    eventually("the closed party leaves nearby search", || async {
        let page: Value = app.get(None, &nearby).await.json().await.unwrap();
        let listed = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == id);
        (!listed).then_some(())
    })
    .await;
}

async fn too_few_members_cancel_by_themselves(app: TestApp) {
    let leader = app.user("leader").await;
    let party = app.party(&leader, 4).await;
    let id = party["id"].as_i64().unwrap();
    app.state
        .clock
        .advance_ms(time_of(&party, "deadline_at") - app.state.now() + 1);
    let cancelled = status_becomes(&app, id, "cancelled").await;
    assert_eq!(cancelled["cancel_reason"], "not_enough_members");
}

async fn a_closed_party_completes_after_its_meet_by_itself(app: TestApp) {
    let Closed { party, id, .. } = closed_party(&app).await;
    // Before the completion delay (3 h after the meet) nothing happens...
    app.state
        .clock
        .advance_ms(time_of(&party, "meet_at") + 2 * HOUR - app.state.now());
    let res = party_json(&app, id).await;
    assert_eq!(res["status"], "closed");
    // ...after it, the party completes.
    app.state.clock.advance_ms(HOUR + 1);
    status_becomes(&app, id, "completed").await;
}

async fn fifty_concurrent_no_show_marks_become_one_penalty(app: TestApp) {
    let Closed {
        leader,
        member,
        party,
        id,
    } = closed_party(&app).await;
    app.state
        .clock
        .advance_ms(time_of(&party, "meet_at") - app.state.now() + 60_000);
    let path = format!("/api/v1/parties/{id}/attendance");
    let body = json!({ "members": [{ "user_id": member.id, "attended": false }] });
    let marks = join_all((0..50).map(|_| app.put(&leader, &path, &body))).await;
    assert!(marks.into_iter().all(|r| r.status() == 200));
    let profile_url = format!("/api/v1/users/{}", member.id);
    eventually("the penalty applied", || async {
        let profile: Value = app.get(None, &profile_url).await.json().await.unwrap();
        (profile["active_penalties"] == 1).then_some(())
    })
    .await;
    let mine: Value = app
        .get(Some(&member), "/api/v1/me/penalties")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
    // The leader corrects the mark: the job revokes the penalty.
    let body = json!({ "members": [{ "user_id": member.id, "attended": true }] });
    assert_eq!(app.put(&leader, &path, &body).await.status(), 200);
    eventually("the penalty revoked", || async {
        let profile: Value = app.get(None, &profile_url).await.json().await.unwrap();
        (profile["active_penalties"] == 0).then_some(())
    })
    .await;
}

async fn a_meet_moved_twice_leaves_one_completion_job_that_acts(app: TestApp) {
    let Closed {
        leader, party, id, ..
    } = closed_party(&app).await;
    let mut meet = time_of(&party, "meet_at");
    for _ in 0..2 {
        meet += 2 * HOUR;
        let res = app
            .patch(
                &leader,
                &format!("/api/v1/parties/{id}"),
                &json!({ "meet_at": api::time::Timestamp(meet) }),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    app.state
        .clock
        .advance_ms(meet + 3 * HOUR - app.state.now() + 1);
    status_becomes(&app, id, "completed").await;
    let keys = job_keys(&app, &format!("complete:{id}:")).await;
    assert_eq!(
        keys.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        vec![format!("complete:{id}:{meet}")],
        "one completion job, for the final meet time"
    );
}

async fn readyz_reports_the_worker(app: TestApp) {
    let ready: Value = eventually("the worker is up", || async {
        let res = app.get(None, "/readyz").await;
        let ok = res.status() == 200;
        let body: Value = res.json().await.unwrap();
        ok.then_some(body)
    })
    .await;
    assert_eq!(ready["worker"]["ok"], true, "{ready}");
}

/// `/readyz` once `check` holds for its status and its `worker` part.
async fn readyz_until(app: &TestApp, what: &str, check: impl Fn(u16, &Value) -> bool) -> Value {
    eventually(what, || async {
        let res = app.get(None, "/readyz").await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        check(status, &body["worker"]).then_some(body)
    })
    .await
}

async fn a_worker_whose_backend_fails_comes_back_and_readyz_reports_it_down(app: TestApp) {
    readyz_until(&app, "the worker is up", |status, w| {
        status == 200 && w["ok"] == true
    })
    .await;
    let store = app.state.jobs.get().unwrap().store.clone();
    if let jobs::JobStore::Postgres { .. } = store {
        // The database drops the job runtime's connections (a restart, a network cut): the
        // worker fails, is started again, and runs jobs as before.
        let killed: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(jobs::JobStore::application_name(store.queue()))
        .fetch_all(app.db().pool())
        .await
        .unwrap();
        assert!(!killed.is_empty(), "the job runtime had connections");
        // (apalis reconnects through the pool, or the supervisor starts the worker again)
        let ready = readyz_until(&app, "the worker is up again", |status, w| {
            status == 200 && w["ok"] == true
        })
        .await;
        assert_eq!(ready["status"], "ready");
        closed_party(&app).await;
    }
    // The job database goes away for good: the worker cannot run, and `/readyz` says so.
    match &store {
        jobs::JobStore::Sqlite { pool, .. } => pool.close().await,
        jobs::JobStore::Postgres { pool, .. } => pool.close().await,
    }
    let down = readyz_until(&app, "readyz reports the worker down", |status, w| {
        status == 503 && w["ok"] == false
    })
    .await;
    assert_eq!(down["status"], "unavailable", "{down}");
    assert_eq!(
        down["database"]["ok"], true,
        "only the worker is down: {down}"
    );
}

async fn runs(app: &TestApp) -> Vec<Value> {
    let page: Value = app
        .get(None, "/api/v1/ingest/runs")
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

async fn the_nightly_import_of_a_tick_runs_once_across_instances(app: TestApp) {
    let other = app.spawn_sibling().await;
    // The latest 03:00 tick is in the past when the app starts (a missed tick): it runs now.
    let done = eventually("the nightly import recorded", || async {
        let runs = runs(&app).await;
        (runs.iter().any(|r| r["status"] != "running")).then_some(runs)
    })
    .await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["kind"], "markets");
    assert_eq!(done[0]["status"], "succeeded", "{done:?}");
    // Whichever instance holds the sweeper's lease, the other pushing the same tick (as it does
    // when it takes the lease over) stores nothing new.
    for instance in [&app, &other] {
        let store = &instance.state.jobs.get().unwrap().store;
        jobs::sweeper::sweep_nightly(store, &instance.state.job_context(), &mut None)
            .await
            .unwrap();
    }
    let keys = job_keys(&other, "ingest:markets:").await;
    assert_eq!(keys.len(), 1, "one job for the tick: {keys:?}");
    eventually("no nightly job left to run", || async {
        let keys = job_keys(&app, "ingest:").await;
        keys.iter()
            .all(|(_, status)| status == "Done")
            .then_some(())
    })
    .await;
    assert_eq!(runs(&app).await.len(), 1, "one import for one tick");
    other.shutdown().await;
}

/// The value of `metric` with label `kind="{kind}"` in `/metrics` (0 when absent).
async fn counter(app: &TestApp, metric: &str, kind: &str) -> u64 {
    let text = app.get(None, "/metrics").await.text().await.unwrap();
    let series = format!("{metric}{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .map_or(0, |n| n.trim().parse().unwrap())
}

async fn a_job_that_keeps_failing_is_retried_then_kept_dead_and_counted(app: TestApp) {
    // The missed 03:00 tick runs at start; the file is missing, so each attempt fails.
    eventually("the import job is dead", || async {
        let rows = app
            .state
            .jobs
            .get()
            .unwrap()
            .store
            .list(
                Some(jobs::store::JobState::Dead),
                Some("ingest"),
                None,
                10,
                0,
            )
            .await
            .unwrap();
        (rows.len() == 1).then_some(())
    })
    .await;
    let keys = job_keys(&app, "ingest:").await;
    assert_eq!(keys.len(), 1, "one job for the tick: {keys:?}");
    assert_eq!(counter(&app, "jobs_enqueued_total", "ingest").await, 1);
    assert_eq!(
        counter(&app, "jobs_failed_total", "ingest").await,
        jobs::store::MAX_ATTEMPTS as u64 - 1,
        "every attempt but the last is a failure to retry"
    );
    assert_eq!(counter(&app, "jobs_dead_total", "ingest").await, 1);
    assert_eq!(counter(&app, "jobs_succeeded_total", "ingest").await, 0);
    let failed: Vec<Value> = runs(&app).await;
    assert_eq!(
        failed.len(),
        jobs::store::MAX_ATTEMPTS,
        "each attempt is a recorded run: {failed:?}"
    );
    assert!(failed.iter().all(|r| r["status"] == "failed"), "{failed:?}");
}

/// Leaves the jobs with these keys as a worker that took them and died leaves them: running,
/// locked by a worker whose heartbeat stopped an hour ago.
async fn died_holding(store: &jobs::JobStore, keys: &[String]) {
    let queue = store.queue().to_owned();
    // Worker names are global to the job tables, which parallel tests share on PostgreSQL.
    let dead = format!("dead-{queue}");
    macro_rules! run {
        ($pool:expr, $worker_sql:expr, $table:expr, $now:expr) => {{
            sqlx::query($worker_sql)
                .bind(&dead)
                .bind(&queue)
                .execute($pool)
                .await
                .unwrap();
            for key in keys {
                let taken = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE {} SET status = 'Running', lock_by = $3, lock_at = {}, \
                     attempts = 1 WHERE job_type = $1 AND idempotency_key = $2",
                    $table, $now
                )))
                .bind(&queue)
                .bind(key)
                .bind(&dead)
                .execute($pool)
                .await
                .unwrap()
                .rows_affected();
                assert_eq!(taken, 1, "job {key} taken");
            }
        }};
    }
    match store {
        jobs::JobStore::Sqlite { pool, .. } => run!(
            pool,
            "INSERT INTO Workers (id, worker_type, storage_name, layers, last_seen) \
             VALUES ($1, $2, 'SqliteStorage', '', strftime('%s', 'now') - 3600)",
            "Jobs",
            "strftime('%s', 'now') - 3600"
        ),
        jobs::JobStore::Postgres { pool, .. } => run!(
            pool,
            "INSERT INTO apalis.workers (id, worker_type, storage_name, layers, last_seen) \
             VALUES ($1, $2, 'PostgresStorage', '', NOW() - interval '1 hour')",
            "apalis.jobs",
            "NOW() - interval '1 hour'"
        ),
    }
}

async fn a_job_whose_worker_died_runs_again_and_acts_once(app: TestApp) {
    // Two parties past their deadlines whose close jobs a worker took before it was killed: one
    // before it acted, one after it acted but before it could record the job done.
    let leader = app.user("leader").await;
    let member = app.user("member").await;
    let before = app.party(&leader, 4).await;
    let after = app.party(&leader, 4).await;
    let (before_id, after_id) = (
        before["id"].as_i64().unwrap(),
        after["id"].as_i64().unwrap(),
    );
    join(&app, &member, before_id).await;
    join(&app, &member, after_id).await;
    let deadline = time_of(&before, "deadline_at").max(time_of(&after, "deadline_at"));
    app.state.clock.advance_ms(deadline - app.state.now() + 1);
    let step = store::transitions::close_at_deadline(app.db(), after_id, app.state.now())
        .await
        .unwrap();
    assert!(
        matches!(step, store::transitions::Step::Done(_)),
        "{step:?}"
    );
    let (location, prefix) = &app.storage.jobs;
    let runtime = jobs::Jobs::open(location, prefix).await.unwrap();
    let mut keys = Vec::new();
    for party in [&before, &after] {
        let job = jobs::Job::Close {
            party_id: party["id"].as_i64().unwrap(),
            deadline_at: time_of(party, "deadline_at"),
        };
        runtime.store.push(&job).await.unwrap();
        keys.push(job.key());
    }
    died_holding(&runtime.store, &keys).await;

    // A worker process starts: it takes the dead worker's jobs over and runs them.
    let mut settings = crate::common::jobs_settings();
    settings.jobs.sweep_every = Duration::from_secs(3600);
    let worker = app.spawn_sibling_with(settings).await;
    worker
        .state
        .clock
        .advance_ms(deadline - worker.state.now() + 1);
    let done = eventually("both jobs taken over and done", || async {
        let rows = runtime
            .store
            .list(None, Some("close"), None, 10, 0)
            .await
            .unwrap();
        rows.iter().all(|r| r.state == "done").then_some(rows)
    })
    .await;
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(
        done.iter().all(|r| r.attempts == 3),
        "the dead worker's attempt, the takeover (apalis counts it) and the run: {done:?}"
    );
    for id in [before_id, after_id] {
        assert_eq!(party_json(&app, id).await["status"], "closed");
    }
    // Each party closed once: one event each, none from the re-run of the applied one.
    assert_eq!(
        count_where(&app, "outbox", "kind = 'party.closed'").await,
        2
    );
    worker.shutdown().await;
}

async fn a_stopped_worker_hands_back_what_it_had_not_started(app: TestApp) {
    // Many parties due at once, a worker busy closing them, and the worker's process stops.
    let mut parties = Vec::new();
    for i in 0..60 {
        let leader = app.user(&format!("leader{i}")).await;
        parties.push(app.party(&leader, 2).await);
    }
    let deadline = parties
        .iter()
        .map(|p| time_of(p, "deadline_at"))
        .max()
        .unwrap();
    let worker = app.spawn_sibling_with(crate::common::jobs_settings()).await;
    worker
        .state
        .clock
        .advance_ms(deadline - worker.state.now() + 1);
    let store = worker.state.jobs.get().unwrap().store.clone();
    eventually("the worker has started on the closes", || async {
        let keys = store.keys("close:").await.unwrap();
        keys.iter()
            .any(|(_, status)| status == "Done")
            .then_some(())
    })
    .await;
    worker.shutdown().await;
    // Nothing is left held by the stopped worker: each job is done or back in the queue, so the
    // next worker takes it at once rather than after the dead-worker timeout.
    let held: Vec<(String, String)> = store
        .keys("close:")
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, status)| status != "Done" && status != "Pending")
        .collect();
    assert!(held.is_empty(), "held by a stopped worker: {held:?}");
    let next = app.spawn_sibling_with(crate::common::jobs_settings()).await;
    next.state.clock.advance_ms(deadline - next.state.now() + 1);
    for party in &parties {
        status_becomes(&next, party["id"].as_i64().unwrap(), "cancelled").await;
    }
    let keys = store.keys("close:").await.unwrap();
    assert_eq!(keys.len(), parties.len(), "one close job per party");
    next.shutdown().await;
}

async fn a_job_that_reaches_a_worker_before_it_is_due_runs_once_due(app: TestApp) {
    // As when the sweeper of an instance whose clock is ahead pushes a close: this worker's clock
    // says the deadline has not come. Finishing the job as "nothing to do" would leave its key
    // behind and the party open for good; the job must wait for its time instead.
    let leader = app.user("leader").await;
    let party = app.party(&leader, 3).await;
    let id = party["id"].as_i64().unwrap();
    let deadline_at = time_of(&party, "deadline_at");
    let store = app.state.jobs.get().unwrap().store.clone();
    store
        .push(&jobs::Job::Close {
            party_id: id,
            deadline_at,
        })
        .await
        .unwrap();
    eventually("a worker took the early close", || async {
        let keys = job_keys(&app, "close:").await;
        keys.iter()
            .any(|(_, status)| status != "Pending" && status != "Queued")
            .then_some(())
    })
    .await;
    assert_eq!(party_json(&app, id).await["status"], "recruiting");
    app.state
        .clock
        .advance_ms(deadline_at - app.state.now() + 1);
    let cancelled = status_becomes(&app, id, "cancelled").await;
    assert_eq!(cancelled["cancel_reason"], "not_enough_members");
    let keys = job_keys(&app, "close:").await;
    assert_eq!(keys.len(), 1, "one close job: {keys:?}");
}

async fn count_where(app: &TestApp, table: &str, condition: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE {condition}"
    )))
    .fetch_one(app.db().pool())
    .await
    .unwrap();
    n
}

async fn operators_list_jobs_and_retry_a_dead_one(app: TestApp) {
    let ops = app.operator().await;
    let Closed {
        leader, party, id, ..
    } = closed_party(&app).await;
    let res = app.get(Some(&leader), "/api/v1/admin/jobs").await;
    crate::common::assert_problem(res, 403, "forbidden").await;
    let done: Value = eventually("the close job listed as done", || async {
        let page: Value = app
            .get(Some(&ops), "/api/v1/admin/jobs?state=done&kind=close")
            .await
            .json()
            .await
            .unwrap();
        (page["items"].as_array().unwrap().len() == 1).then_some(page)
    })
    .await;
    let job = &done["items"][0];
    assert_eq!(
        job["key"],
        format!("close:{id}:{}", time_of(&party, "deadline_at"))
    );
    assert_eq!(job["attempts"], 1);
    let job_id = job["id"].as_str().unwrap().to_owned();
    // A done job is not retried.
    let res = app
        .post(
            &ops,
            &format!("/api/v1/admin/jobs/{job_id}/retry"),
            &json!(null),
        )
        .await;
    crate::common::assert_problem(res, 404, "not_found").await;
    // Made dead (its attempts used up, as after five failures), it is listed so and runs again
    // once retried: the party is closed already, so the re-run changes nothing.
    let table = match app.backend {
        crate::common::Backend::Embedded => "Jobs",
        crate::common::Backend::Scaled => "apalis.jobs",
    };
    let store = &app.state.jobs.get().unwrap().store;
    match store {
        jobs::JobStore::Sqlite { pool, .. } => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET status = 'Failed', attempts = max_attempts WHERE id = $1"
            )))
            .bind(&job_id)
            .execute(pool)
            .await
            .unwrap();
        }
        jobs::JobStore::Postgres { pool, .. } => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET status = 'Failed', attempts = max_attempts WHERE id = $1"
            )))
            .bind(&job_id)
            .execute(pool)
            .await
            .unwrap();
        }
    }
    let dead: Value = app
        .get(Some(&ops), "/api/v1/admin/jobs?state=dead")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dead["items"][0]["id"], job_id.as_str(), "{dead}");
    let res = app
        .post(
            &ops,
            &format!("/api/v1/admin/jobs/{job_id}/retry"),
            &json!(null),
        )
        .await;
    assert_eq!(res.status(), 204);
    eventually("the retried job done again", || async {
        let page: Value = app
            .get(Some(&ops), "/api/v1/admin/jobs?kind=close")
            .await
            .json()
            .await
            .unwrap();
        (page["items"][0]["state"] == "done").then_some(())
    })
    .await;
    assert_eq!(party_json(&app, id).await["status"], "closed");
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    n
}

async fn housekeeping_prunes_what_expired_every_hour(app: TestApp) {
    let leader = app.user("leader").await;
    let member = app.user("member").await;
    let party = app.party(&leader, 4).await;
    let id = party["id"].as_i64().unwrap();
    let res = app
        .client
        .post(app.url(&format!("/api/v1/parties/{id}/bookings")))
        .bearer_auth(&member.token)
        .header("Idempotency-Key", "join-once")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(count(&app, "idempotency_keys").await, 1);
    app.state
        .clock
        .advance_ms(time_of(&party, "deadline_at") - app.state.now() + 1);
    status_becomes(&app, id, "closed").await;
    eventually("the close job done", || async {
        let keys = job_keys(&app, &format!("close:{id}:")).await;
        (keys.len() == 1 && keys[0].1 == "Done").then_some(())
    })
    .await;
    // Eight days on: the key (24 h) and the finished job (7 days) have expired; the next hour's
    // housekeeping job removes them.
    app.state.clock.advance_ms(8 * 24 * HOUR);
    eventually("expired rows pruned", || async {
        let keys = count(&app, "idempotency_keys").await;
        let jobs = job_keys(&app, &format!("close:{id}:")).await;
        (keys == 0 && jobs.is_empty()).then_some(())
    })
    .await;
}
