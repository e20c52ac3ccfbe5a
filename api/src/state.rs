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
