//! Test harness: a spawned app per test, on its own SQLite file, or on its own PostgreSQL schema
//! and Redis key prefix when `GONGGU_TEST_DATABASE_URL` and `GONGGU_TEST_REDIS_URL` are set.
//!
//! Each behaviour test is written once as `async fn name(app: TestApp)` and run on both backends by
//! [`on_both_backends!`]. Without the variables the PostgreSQL/Redis variant prints that it skipped;
//! with `GONGGU_TEST_REQUIRE_SERVICES=1` (CI) it fails instead.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use api::server::Server;
use api::state::{AppState, Settings};
use serde_json::{json, Value};
use store::live::Live;
use store::{Clock, Db};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file + in-process live state.
    Embedded,
    /// PostgreSQL schema + Redis prefix.
    Scaled,
}

/// Runs each named `async fn(TestApp)` on both backends, as `name::embedded` and `name::postgres_redis`.
/// `on_both_backends!(with super::settings() => name, …)` spawns the apps with other settings (the
/// expression is evaluated inside `mod name`, hence `super::`).
#[macro_export]
macro_rules! on_both_backends {
    (with $settings:expr => $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    let app = $crate::common::TestApp::spawn_with($crate::common::Backend::Embedded, $settings).await;
                    super::$name(app.expect("embedded backend")).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres_redis() {
                    if let Some(app) = $crate::common::TestApp::spawn_with($crate::common::Backend::Scaled, $settings).await {
                        super::$name(app).await;
                    }
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(with $crate::common::test_settings() => $($name),*);
    };
}

pub use store::testing::{fresh_pg_url, scaled_urls, unique_name as unique};

/// Where a test app keeps its state, so a second instance can share it.
#[derive(Clone, Debug)]
pub struct Storage {
    pub db_url: String,
    /// Redis URL and key prefix (scale-out only).
    pub redis: Option<(String, String)>,
    /// Where the job tables are, and the prefix of this test's job queue.
    pub jobs: (jobs::Location, String),
}

/// Fresh storage for `backend`, or `None` when scale-out is not configured.
pub async fn fresh_storage(backend: Backend, dir: &std::path::Path) -> Option<Storage> {
    match backend {
        Backend::Embedded => Some(Storage {
            db_url: Db::sqlite_url(&dir.join("test.db")),
            redis: None,
            jobs: (jobs::Location::Sqlite(dir.join("jobs.db")), "gonggu".into()),
        }),
        Backend::Scaled => {
            let (db_url, redis_url) = scaled_urls()?;
            let prefix = unique("gt");
            Some(Storage {
                db_url: fresh_pg_url(&db_url).await,
                redis: Some((redis_url, prefix.clone())),
                // apalis keeps to its own schema; the queue name keeps this test's jobs apart.
                jobs: (jobs::Location::Postgres(db_url), prefix),
            })
        }
    }
}

/// Connects to `storage` (applying migrations).
pub async fn connect(storage: &Storage) -> (Db, Live) {
    let db = Db::connect(&storage.db_url, 8)
        .await
        .expect("open database");
    db.migrate().await.expect("migrate");
    let live = match &storage.redis {
        Some((url, prefix)) => Live::redis(url, prefix).await.expect("connect redis"),
        None => Live::memory(),
    };
    (db, live)
}

/// A fresh database and live state for `backend`, or `None` when scale-out is not configured.
pub async fn fresh_backends(backend: Backend, dir: &std::path::Path) -> Option<(Db, Live)> {
    let storage = fresh_storage(backend, dir).await?;
    Some(connect(&storage).await)
}

/// The settings of a test app: the defaults, except that a burst of join attempts does not turn a
/// waiting room on (the booking races would otherwise meet it; `api/tests/queue.rs` tests it) and
/// the waiting-room admitter runs every 20 ms so tests wait less.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.queue.auto_threshold = 0;
    // Sign-up tests make more accounts from one address than a real client would.
    settings.signup_limit_per_addr = 1_000;
    settings.queue.tick = Duration::from_millis(20);
    // Most tests need no jobs; `jobs_settings` turns them on.
    settings.jobs.run_workers = false;
    // The push service mock listens on plain http on loopback.
    settings.push.allow_http = true;
    settings
}

/// Test settings with the job worker, sweeper and consumer running (the sweeper every 50 ms).
#[allow(dead_code)] // not every test module uses every helper
pub fn jobs_settings() -> Settings {
    let mut settings = test_settings();
    settings.jobs.run_workers = true;
    settings.jobs.sweep_every = Duration::from_millis(50);
    settings
}

/// The address of the operator [`TestApp::operator`] creates.
pub const OPERATOR_EMAIL: &str = "ops@test.gonggu.kr";

/// A user made directly in the store (no argon2 cost) with a valid access token.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: i64,
    pub token: String,
}

/// A running app with its own storage.
pub struct TestApp {
    pub backend: Backend,
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub storage: Storage,
    server: Option<Server>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, test_settings()).await
    }

    pub async fn spawn_with(backend: Backend, settings: Settings) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = fresh_storage(backend, dir.path()).await?;
        Some(Self::start(backend, storage, settings, dir).await)
    }

    /// A second instance on the same database and Redis prefix (scale-out: two API instances).
    pub async fn spawn_sibling(&self) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start(
            self.backend,
            self.storage.clone(),
            self.state.settings.clone(),
            dir,
        )
        .await
    }

    /// A second instance on the same storage with settings of its own (a worker process, say).
    #[allow(dead_code)] // not every test binary uses every helper
    pub async fn spawn_sibling_with(&self, settings: Settings) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start(self.backend, self.storage.clone(), settings, dir).await
    }

    async fn start(
        backend: Backend,
        storage: Storage,
        settings: Settings,
        dir: tempfile::TempDir,
    ) -> TestApp {
        let (db, live) = connect(&storage).await;
        let state = AppState::new(
            db,
            live,
            Clock::system(),
            b"test-secret-test-secret-test-secret",
            settings,
        );
        if state.settings.jobs.run_workers {
            let (location, prefix) = &storage.jobs;
            let jobs = jobs::Jobs::open(location, prefix)
                .await
                .expect("open the job tables");
            state.attach_jobs(jobs);
        }
        state
            .attach_push(jobs::push::VapidKey::generate().expect("a VAPID key"))
            .expect("the push client");
        let server = api::server::start(state.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("start server");
        let addr = server.addr;
        TestApp {
            backend,
            addr,
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            state,
            storage,
            server: Some(server),
            _dir: dir,
        }
    }

    /// Where `/metrics` is served when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().and_then(|s| s.metrics_addr)
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn shutdown(self) {
        self.shutdown_with(Duration::from_secs(5)).await;
    }

    /// Shuts down as SIGTERM does, allowing in-flight requests `grace`.
    pub async fn shutdown_with(mut self, grace: Duration) {
        if let Some(server) = self.server.take() {
            server.shutdown(grace).await;
        }
    }

    /// Makes a user straight in the store and issues a token for them.
    /// Waits until this instance's admitter has finished `n` more ticks, so what it would do with
    /// the rooms as they are now has been done (or, without the lease, left to the holder).
    #[allow(dead_code)] // not every test binary uses every helper
    pub async fn admitter_ticks(&self, n: u64) {
        use std::sync::atomic::Ordering;
        let target = self.state.admitter_rounds.load(Ordering::SeqCst) + n;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.state.admitter_rounds.load(Ordering::SeqCst) < target {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the admitter did not tick"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    pub async fn user(&self, nickname: &str) -> TestUser {
        let email = format!("{}@test.gonggu.kr", unique(nickname).to_lowercase());
        let user = store::users::insert_user(
            self.db(),
            &email,
            "not-a-real-hash",
            nickname,
            self.state.now(),
        )
        .await
        .expect("insert user");
        let token = self.state.keys.issue(user.id, self.state.now()).unwrap();
        TestUser { id: user.id, token }
    }

    /// The operator `ops@test.gonggu.kr` (tests that need one put this address in
    /// `operator_emails`).
    pub async fn operator(&self) -> TestUser {
        let now = self.state.now();
        let user = store::users::insert_user(self.db(), OPERATOR_EMAIL, "x", "운영자", now)
            .await
            .expect("insert the operator");
        let token = self.state.keys.issue(user.id, now).unwrap();
        TestUser { id: user.id, token }
    }

    /// A market at `(lat, lng)`; returns its id.
    pub async fn market_at(&self, lat: f64, lng: f64) -> i64 {
        let mut tx = self.db().begin().await.unwrap();
        let id = store::catalog::upsert_row(
            &mut tx,
            "test",
            &store::catalog::MarketRow {
                source_id: unique("m"),
                name: "망원시장".into(),
                kind: "traditional_market".into(),
                road_address: Some("서울특별시 마포구 포은로8길 14".into()),
                lat: Some(lat),
                lng: Some(lng),
                area_code: None,
            },
            self.state.now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    }

    /// An item in category `category_code`; returns its id.
    pub async fn item_in(&self, category_code: &str) -> i64 {
        let mut tx = self.db().begin().await.unwrap();
        let id = store::catalog::upsert_row(
            &mut tx,
            "test",
            &store::catalog::ItemRow {
                source_id: unique("i"),
                name: "농심 신라면 120g×5입".into(),
                category_code: Some(category_code.into()),
                unit: Some("g".into()),
                base_count: Some(120.0),
                total_count: Some(600.0),
                total_unit: Some("g".into()),
                maker: None,
            },
            self.state.now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    }

    /// One market (with coordinates in Seoul) and one item; returns their ids.
    pub async fn market_and_item(&self) -> (i64, i64) {
        (
            self.market_at(37.5558, 126.9063).await,
            self.item_in("030102001").await,
        )
    }

    /// A party body meeting in `days` days with the deadline an hour before.
    pub fn party_body(&self, market: i64, item: i64, capacity: i64) -> Value {
        let now = self.state.now();
        let meet = api::time::Timestamp(now + 3 * 24 * 3600 * 1000);
        let deadline = api::time::Timestamp(now + 3 * 24 * 3600 * 1000 - 3600 * 1000);
        json!({
            "market_id": market,
            "item_id": item,
            "title": "신라면 나눠요",
            "description": "입구에서 만나요",
            "capacity": capacity,
            "price_per_share": 4000,
            "meet_at": meet,
            "deadline_at": deadline,
        })
    }

    /// Creates a party led by `leader` through the API; returns its JSON.
    pub async fn party(&self, leader: &TestUser, capacity: i64) -> Value {
        let (market, item) = self.market_and_item().await;
        let res = self
            .post(
                leader,
                "/api/v1/parties",
                &self.party_body(market, item, capacity),
            )
            .await;
        assert_eq!(res.status(), 201, "create party");
        res.json().await.unwrap()
    }

    pub async fn get(&self, user: Option<&TestUser>, path: &str) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(u) = user {
            req = req.bearer_auth(&u.token);
        }
        req.send().await.expect("request")
    }

    pub async fn post(&self, user: &TestUser, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&user.token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_anon(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, user: &TestUser, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("request")
    }

    #[allow(dead_code)] // not every test module uses every helper
    pub async fn put(&self, user: &TestUser, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .bearer_auth(&user.token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(&self, user: &TestUser, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(&user.token)
            .json(body)
            .send()
            .await
            .expect("request")
    }
}

/// Asserts a problem+json response with `status` and `code`; returns the body.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = res.json().await.expect("json body");
    assert_eq!(ct, "application/problem+json", "content type of {body}");
    assert_eq!(body["code"], code, "code in {body}");
    assert_eq!(body["status"], status, "status in {body}");
    body
}

/// The ids of a page's `items`, in order.
pub fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

/// Polls `check` until it returns `Some`, for at most 20 s: for effects that happen in the
/// background (jobs, consumers), waited for rather than assumed.
#[allow(dead_code)] // not every test module uses every helper
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `user` books a seat in party `id` (201, or the test fails).
#[allow(dead_code)] // not every test module uses every helper
pub async fn join(app: &TestApp, user: &TestUser, id: i64) {
    let res = app
        .post(
            user,
            &format!("/api/v1/parties/{id}/bookings"),
            &json!(null),
        )
        .await;
    assert_eq!(res.status(), 201, "join");
}

/// A time field of a JSON response, in epoch milliseconds.
#[allow(dead_code)] // not every test module uses every helper
pub fn time_of(value: &Value, field: &str) -> i64 {
    api::time::Timestamp::parse(value[field].as_str().unwrap())
        .unwrap()
        .0
}
