//! The application state built once at start and shared by every request and task.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use store::live::Live;
use store::{Clock, Db};

use crate::auth::jwt::TokenKeys;
use crate::config::{defaults, Access, ServeArgs};
use crate::nearby::index::NearbyIndex;

/// Tunables of the running app (a subset of the configuration, with the defaults of `--help`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub search_cache_ttl: Duration,
    /// Login attempts per email from one address, per email from all addresses, per address.
    pub login_limit_per_email: u64,
    pub login_limit_per_account: u64,
    pub login_limit_per_addr: u64,
    pub login_window: Duration,
    pub signup_limit_per_addr: u64,
    pub signup_window: Duration,
    pub trust_forwarded_for: bool,
    /// Which X-Forwarded-For entry, counted from the right, is the client (1: the rightmost).
    pub trusted_proxy_hops: usize,
    /// Validated origins (`scheme://host[:port]`).
    pub cors_origins: Vec<String>,
    /// Normalised (trimmed, lower-case) emails of the operators.
    pub operator_emails: Vec<String>,
    /// How far ahead a meet (and so a deadline) may be set.
    pub party_horizon: Duration,
    pub http: HttpSettings,
    /// Open SSE streams per user on this instance.
    pub max_streams_per_user: usize,
    /// Who may read the ingest run records.
    pub ingest_runs_access: Access,
    pub queue: QueueSettings,
    pub lifecycle: LifecycleSettings,
    pub jobs: JobSettings,
    pub chat: ChatSettings,
    pub push: PushSettings,
}

/// Web Push tunables (see `gonggu serve --help`); the key pair is attached apart
/// ([`AppState::attach_push`]).
#[derive(Clone, Debug, Default)]
pub struct PushSettings {
    /// The contact VAPID tokens name (`sub`).
    pub subject: Option<String>,
    /// Accept `http://` endpoints (local testing).
    pub allow_http: bool,
}

impl PushSettings {
    pub fn from_args(args: &crate::config::PushArgs) -> Self {
        Self {
            subject: args
                .vapid_subject
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            allow_http: args.push_allow_http,
        }
    }
}

/// How often the chat looks for away members to notify: a message waits at most this long past
/// its quiet period for its notification.
const NOTIFY_EVERY: Duration = Duration::from_secs(5);

/// Party chat tunables (see `gonggu serve --help`).
#[derive(Clone, Debug)]
pub struct ChatSettings {
    /// Messages replayed to a reconnecting socket at most; past it, `reset`.
    pub max_replay: i64,
    pub send_limit: u64,
    pub send_window: Duration,
    /// Frames queued for one socket at most before it is disconnected as too slow.
    pub send_queue: usize,
    /// Between a socket's heartbeats (ping, presence renewed); presence lasts three of them.
    pub heartbeat: Duration,
    /// At most one "new messages" notification per room and away member in this time.
    pub notify_quiet: Duration,
    /// How often the away members' notifications are looked for.
    pub notify_every: Duration,
}

impl ChatSettings {
    /// How long a socket stays present without a heartbeat, in ms.
    pub fn presence_ttl_ms(&self) -> i64 {
        millis(self.heartbeat).saturating_mul(3)
    }
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            max_replay: i64::from(defaults::CHAT_MAX_REPLAY),
            send_limit: defaults::CHAT_SEND_LIMIT,
            send_window: Duration::from_secs(defaults::CHAT_SEND_WINDOW_SECS),
            send_queue: defaults::CHAT_SEND_QUEUE as usize,
            heartbeat: Duration::from_secs(defaults::CHAT_HEARTBEAT_SECS),
            notify_quiet: Duration::from_secs(defaults::CHAT_NOTIFY_QUIET_SECS),
            notify_every: NOTIFY_EVERY,
        }
    }
}

impl ChatSettings {
    pub fn from_args(args: &crate::config::ChatArgs) -> Self {
        Self {
            max_replay: i64::from(args.chat_max_replay),
            send_limit: args.chat_send_limit,
            send_window: Duration::from_secs(args.chat_send_window_secs),
            send_queue: args.chat_send_queue as usize,
            heartbeat: Duration::from_secs(args.chat_heartbeat_secs),
            notify_quiet: Duration::from_secs(args.chat_notify_quiet_secs),
            notify_every: NOTIFY_EVERY,
        }
    }
}

/// Background jobs in this process.
#[derive(Clone, Debug)]
pub struct JobSettings {
    /// Run a job worker, the sweeper and the jobs consumer here (`serve --no-worker` turns them off
    /// when `gonggu worker` processes run them instead).
    pub run_workers: bool,
    /// How often the sweeper looks for due parties.
    pub sweep_every: Duration,
    /// The nightly import, when a source is configured.
    pub nightly: Option<jobs::nightly::Nightly>,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            run_workers: true,
            sweep_every: jobs::sweeper::SWEEP,
            nightly: None,
        }
    }
}

/// The party lifecycle after the deadline: completion, attendance and penalties.
#[derive(Clone, Debug)]
pub struct LifecycleSettings {
    /// How long after its meet a closed party completes.
    pub complete_after_meet: Duration,
    /// How long after the meet the leader may mark attendance.
    pub attendance_window: Duration,
    pub penalties: store::penalties::Policy,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            complete_after_meet: Duration::from_secs(defaults::COMPLETE_AFTER_MEET_MINS * 60),
            attendance_window: days(defaults::ATTENDANCE_WINDOW_DAYS),
            penalties: policy(
                defaults::PENALTY_WINDOW_DAYS,
                defaults::BAN_THRESHOLD,
                defaults::BAN_DAYS,
            ),
        }
    }
}

impl LifecycleSettings {
    pub fn from_args(args: &crate::config::LifecycleArgs) -> Self {
        Self {
            complete_after_meet: Duration::from_secs(args.complete_after_meet_mins * 60),
            attendance_window: days(args.attendance_window_days),
            penalties: policy(args.penalty_window_days, args.ban_threshold, args.ban_days),
        }
    }
}

fn policy(window_days: u32, threshold: i64, ban_days: u32) -> store::penalties::Policy {
    store::penalties::Policy {
        active_window_ms: millis(days(window_days)),
        ban_threshold: threshold,
        ban_ms: millis(days(ban_days)),
    }
}

/// A duration as the store's milliseconds (saturating).
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Limits of the HTTP listener that keep slow or hostile clients from exhausting the server.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Time to send a request's headers (also an idle keep-alive connection's limit).
    pub header_timeout: Duration,
    /// Time to send a request's whole body.
    pub body_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Serve `/metrics` here instead of on the API listener.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(defaults::HEADER_TIMEOUT_SECS),
            body_timeout: Duration::from_secs(defaults::BODY_TIMEOUT_SECS),
            max_connections: defaults::MAX_CONNECTIONS as usize,
            metrics_listen: None,
        }
    }
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
            rate_per_min: defaults::QUEUE_DEFAULT_RATE_PER_MIN,
            pass_ttl: Duration::from_secs(defaults::QUEUE_PASS_TTL_SECS),
            stale_after: Duration::from_secs(defaults::QUEUE_STALE_SECS),
            auto_threshold: defaults::QUEUE_AUTO_THRESHOLD,
            auto_window: Duration::from_secs(defaults::QUEUE_AUTO_WINDOW_SECS),
            tick: Duration::from_millis(defaults::QUEUE_TICK_MS),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(defaults::ACCESS_TTL_SECS),
            refresh_ttl: Duration::from_secs(defaults::REFRESH_TTL_SECS),
            search_cache_ttl: Duration::from_secs(defaults::SEARCH_CACHE_TTL_SECS),
            login_limit_per_email: defaults::LOGIN_LIMIT_PER_EMAIL,
            login_limit_per_account: defaults::LOGIN_LIMIT_PER_ACCOUNT,
            login_limit_per_addr: defaults::LOGIN_LIMIT_PER_ADDR,
            login_window: Duration::from_secs(defaults::LOGIN_WINDOW_SECS),
            signup_limit_per_addr: defaults::SIGNUP_LIMIT_PER_ADDR,
            signup_window: Duration::from_secs(defaults::SIGNUP_WINDOW_SECS),
            trust_forwarded_for: false,
            trusted_proxy_hops: defaults::TRUSTED_PROXY_HOPS as usize,
            cors_origins: Vec::new(),
            operator_emails: Vec::new(),
            party_horizon: days(defaults::PARTY_HORIZON_DAYS),
            http: HttpSettings::default(),
            max_streams_per_user: defaults::MAX_STREAMS_PER_USER as usize,
            ingest_runs_access: Access::Public,
            queue: QueueSettings::default(),
            lifecycle: LifecycleSettings::default(),
            jobs: JobSettings::default(),
            chat: ChatSettings::default(),
            push: PushSettings::default(),
        }
    }
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 24 * 3600)
}

/// Checks one configured CORS origin: `http(s)://host[:port]`, nothing else. `*` and `null` are
/// refused: with credentials allowed, either would hand a user's session to any page.
pub fn check_origin(origin: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("GONGGU_CORS_ORIGINS: `{origin}` {why}"));
    if origin == "*" {
        return bad("is a wildcard; list each origin (credentials are allowed, so `*` never is)");
    }
    if origin.eq_ignore_ascii_case("null") {
        return bad("is the opaque origin of sandboxed pages and files; it cannot be trusted");
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return bad("is not an origin such as https://app.example.com");
    };
    if scheme != "http" && scheme != "https" {
        return bad("must start with http:// or https://");
    }
    let host_ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok || axum::http::HeaderValue::from_str(origin).is_err() {
        return bad("must be scheme://host[:port], without a path or trailing slash");
    }
    Ok(())
}

impl Settings {
    /// The settings of `gonggu serve`; a configuration mistake is an error naming the variable.
    pub fn from_args(args: &ServeArgs) -> Result<Self, String> {
        let cors_origins: Vec<String> = args
            .cors_origins
            .iter()
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        for origin in &cors_origins {
            check_origin(origin)?;
        }
        Ok(Self {
            access_ttl: Duration::from_secs(args.access_ttl_secs),
            refresh_ttl: Duration::from_secs(args.refresh_ttl_secs),
            search_cache_ttl: Duration::from_secs(args.search_cache_ttl_secs),
            login_limit_per_email: args.login_limit_per_email,
            login_limit_per_account: args.login_limit_per_account,
            login_limit_per_addr: args.login_limit_per_addr,
            login_window: Duration::from_secs(args.login_window_secs),
            signup_limit_per_addr: args.signup_limit_per_addr,
            signup_window: Duration::from_secs(args.signup_window_secs.max(1)),
            trust_forwarded_for: args.trust_forwarded_for,
            trusted_proxy_hops: args.trusted_proxy_hops as usize,
            cors_origins,
            operator_emails: args
                .operator_emails
                .iter()
                .map(|e| e.trim().to_lowercase())
                .filter(|e| !e.is_empty())
                .collect(),
            queue: QueueSettings {
                // clap checked it against `defaults::QUEUE_RATE_PER_MIN`.
                rate_per_min: args.queue_rate_per_min,
                pass_ttl: Duration::from_secs(args.queue_pass_ttl_secs.max(1)),
                stale_after: Duration::from_secs(args.queue_stale_secs.max(1)),
                auto_threshold: args.queue_auto_threshold,
                auto_window: Duration::from_secs(args.queue_auto_window_secs.max(1)),
                tick: Duration::from_millis(args.queue_tick_ms.max(10)),
            },
            party_horizon: days(args.party_horizon_days),
            http: HttpSettings {
                header_timeout: Duration::from_secs(args.header_timeout_secs),
                body_timeout: Duration::from_secs(args.body_timeout_secs),
                max_connections: args.max_connections as usize,
                metrics_listen: args.metrics_listen,
            },
            max_streams_per_user: args.max_streams_per_user as usize,
            ingest_runs_access: args.ingest_runs_access,
            jobs: JobSettings {
                run_workers: !args.no_worker,
                ..JobSettings::default()
            },
            lifecycle: LifecycleSettings::from_args(&args.lifecycle),
            chat: ChatSettings::from_args(&args.chat),
            push: PushSettings::from_args(&args.push),
        })
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
    pub rooms: crate::queue::cache::RoomCache,
    /// Open SSE streams per user on this instance.
    pub streams: Arc<crate::streams::StreamCounts>,
    /// This app's metrics (`/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Turns true once, at shutdown: every background loop and every open stream ends on it.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// Names this process, e.g. as the holder of the admitter lease.
    pub instance_id: String,
    /// Admitter rounds finished by this process, whether or not it held the lease
    /// (`waiting_room_admitter_rounds_total` in `/metrics`: a number that stops growing means the
    /// admitter is stuck). Tests wait on it instead of sleeping.
    pub admitter_rounds: std::sync::atomic::AtomicU64,
    /// The job runtime, once attached ([`AppState::attach_jobs`]): where jobs are pushed, and the
    /// worker's health for `/readyz`.
    pub jobs: std::sync::OnceLock<jobs::Jobs>,
    /// The Web Push sender with this deployment's VAPID key, once attached
    /// ([`AppState::attach_push`]).
    pub push: std::sync::OnceLock<Arc<jobs::push::Pusher>>,
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
            rooms: crate::queue::cache::RoomCache::default(),
            streams: Arc::default(),
            metrics: Arc::default(),
            shutdown: tokio::sync::watch::Sender::new(false),
            instance_id: uuid::Uuid::new_v4().to_string(),
            admitter_rounds: std::sync::atomic::AtomicU64::new(0),
            jobs: std::sync::OnceLock::new(),
            push: std::sync::OnceLock::new(),
            settings,
        }))
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A receiver that turns true when the app shuts down.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Attaches the job runtime (once; a second call is ignored).
    pub fn attach_jobs(&self, jobs: jobs::Jobs) {
        let _ = self.jobs.set(jobs);
    }

    /// Attaches the Web Push sender for `key` (once; a second call is ignored).
    pub fn attach_push(&self, key: jobs::push::VapidKey) -> Result<(), jobs::push::PushError> {
        let pusher = jobs::push::Pusher::new(Arc::new(key), self.settings.push.subject.clone())?;
        let _ = self.push.set(Arc::new(pusher));
        Ok(())
    }

    /// What job handlers need, from this app's parts.
    pub fn job_context(&self) -> std::sync::Arc<jobs::Context> {
        std::sync::Arc::new(jobs::Context {
            db: self.db.clone(),
            cache: self.live.cache.clone(),
            clock: self.clock.clone(),
            settings: jobs::Settings {
                complete_after_meet_ms: millis(self.settings.lifecycle.complete_after_meet),
                penalties: self.settings.lifecycle.penalties,
            },
            nightly: self.settings.jobs.nightly.clone(),
            jobs: self.jobs.get().map(|j| j.store.clone()),
            push: self.push.get().cloned(),
        })
    }

    /// The latest meet (or deadline) time a client may set now.
    pub fn latest_meet(&self) -> i64 {
        let horizon = i64::try_from(self.settings.party_horizon.as_millis()).unwrap_or(i64::MAX);
        self.now().saturating_add(horizon)
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_origins_are_allowed() {
        for ok in [
            "https://app.example.com",
            "http://localhost:5173",
            "http://[::1]:8080",
        ] {
            assert!(check_origin(ok).is_ok(), "{ok}");
        }
        for bad in [
            "*",
            "null",
            "NULL",
            "app.example.com",
            "ftp://x",
            "https://a/b",
            "https://a/",
            "https://",
        ] {
            let err = check_origin(bad).unwrap_err();
            assert!(err.contains("GONGGU_CORS_ORIGINS"), "{bad}: {err}");
        }
    }
}
