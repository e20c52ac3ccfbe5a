//! The application state built once at start and shared by every request and task.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use store::live::Live;
use store::{Clock, Db};

use crate::auth::jwt::TokenKeys;
use crate::config::ServeArgs;
use crate::nearby::NearbyIndex;

/// Tunables of the running app (a subset of the configuration, with the defaults of `--help`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub search_cache_ttl: Duration,
    pub login_limit_per_email: u64,
    pub login_limit_per_addr: u64,
    pub login_window: Duration,
    pub trust_forwarded_for: bool,
    pub cors_origins: Vec<String>,
    /// Normalised (trimmed, lower-case) emails of the operators.
    pub operator_emails: Vec<String>,
    pub queue: QueueSettings,
}

/// Waiting-room tunables (see `gonggu serve --help`).
#[derive(Clone, Debug)]
pub struct QueueSettings {
    pub rate_per_min: i64,
    pub pass_ttl: Duration,
    pub stale_after: Duration,
    pub auto_threshold: u64,
    pub auto_window: Duration,
    pub tick: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            rate_per_min: 600,
            pass_ttl: Duration::from_secs(300),
            stale_after: Duration::from_secs(30),
            auto_threshold: 50,
            auto_window: Duration::from_secs(10),
            tick: Duration::from_millis(200),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            search_cache_ttl: Duration::from_secs(600),
            login_limit_per_email: 10,
            login_limit_per_addr: 50,
            login_window: Duration::from_secs(900),
            trust_forwarded_for: false,
            cors_origins: Vec::new(),
            operator_emails: Vec::new(),
            queue: QueueSettings::default(),
        }
    }
}

impl Settings {
    pub fn from_args(args: &ServeArgs) -> Self {
        Self {
            access_ttl: Duration::from_secs(args.access_ttl_secs),
            refresh_ttl: Duration::from_secs(args.refresh_ttl_secs),
            search_cache_ttl: Duration::from_secs(args.search_cache_ttl_secs),
            login_limit_per_email: args.login_limit_per_email,
            login_limit_per_addr: args.login_limit_per_addr,
            login_window: Duration::from_secs(args.login_window_secs),
            trust_forwarded_for: args.trust_forwarded_for,
            cors_origins: args
                .cors_origins
                .iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            operator_emails: args
                .operator_emails
                .iter()
                .map(|e| e.trim().to_lowercase())
                .filter(|e| !e.is_empty())
                .collect(),
            queue: QueueSettings {
                rate_per_min: args.queue_rate_per_min.clamp(1, 1_000_000) as i64,
                pass_ttl: Duration::from_secs(args.queue_pass_ttl_secs.max(1)),
                stale_after: Duration::from_secs(args.queue_stale_secs.max(1)),
                auto_threshold: args.queue_auto_threshold,
                auto_window: Duration::from_secs(args.queue_auto_window_secs.max(1)),
                tick: Duration::from_millis(args.queue_tick_ms.max(10)),
            },
        }
    }
}

/// Everything a handler may need.
pub struct App {
    pub db: Db,
    /// Open parties and markets by location, kept current by events.
    pub nearby: Arc<NearbyIndex>,
    pub live: Live,
    pub clock: Clock,
    pub keys: TokenKeys,
    /// Signs and checks waiting-room admission passes (a key of their own, derived from the secret).
    pub passes: crate::queue::pass::PassKeys,
    /// Waiting-room rows recently read by position requests.
    pub rooms: crate::queue::RoomCache,
    /// Names this process, e.g. as the holder of the admitter lease.
    pub instance_id: String,
    /// Admitter ticks finished by this process (whether or not it held the lease): lets a caller
    /// wait until the admitter has looked at the rooms again, instead of sleeping.
    pub admitter_ticks: std::sync::atomic::AtomicU64,
    pub settings: Settings,
}

/// Cheap-to-clone handle on [`App`], the axum state.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl AppState {
    pub fn new(db: Db, live: Live, clock: Clock, jwt_secret: &[u8], settings: Settings) -> Self {
        let keys = TokenKeys::new(jwt_secret, settings.access_ttl);
        Self(Arc::new(App {
            db,
            nearby: Arc::new(NearbyIndex::default()),
            live,
            clock,
            keys,
            passes: crate::queue::pass::PassKeys::new(jwt_secret),
            rooms: crate::queue::RoomCache::default(),
            instance_id: uuid::Uuid::new_v4().to_string(),
            admitter_ticks: std::sync::atomic::AtomicU64::new(0),
            settings,
        }))
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
