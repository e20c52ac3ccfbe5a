//! Configuration: command-line flags, `GONGGU_*` environment variables and an optional
//! `gonggu.toml`, in that order of precedence. clap documents every setting in `--help`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, ValueEnum};

/// Settings every subcommand shares: where the data lives.
#[derive(Args, Clone, Debug)]
pub struct StorageArgs {
    /// Folder for the embedded SQLite database and generated secrets.
    #[arg(long, env = "GONGGU_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// PostgreSQL URL (postgres://user@host/db) for scale-out mode; SQLite under --data-dir when unset.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Redis URL (redis://host:6379) for shared live state in scale-out mode; in-process when unset.
    #[arg(long, env = "REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel, so deployments can share one Redis.
    #[arg(
        long,
        env = "GONGGU_REDIS_PREFIX",
        default_value = "gonggu",
        global = true
    )]
    pub redis_prefix: String,

    /// Maximum SQL connections in the pool.
    #[arg(
        long,
        env = "GONGGU_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_max_connections: u32,
}

impl StorageArgs {
    /// The database URL in force: `DATABASE_URL`, else the SQLite file under the data folder.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => store::Db::sqlite_url(&self.data_dir.join("gonggu.db")),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Logging settings.
#[derive(Args, Clone, Debug)]
pub struct LogArgs {
    /// Log format: human-readable lines or JSON objects.
    #[arg(
        long,
        env = "GONGGU_LOG_FORMAT",
        value_enum,
        default_value = "human",
        global = true
    )]
    pub log_format: LogFormat,

    /// Log filter in tracing's EnvFilter syntax.
    #[arg(
        long,
        env = "GONGGU_LOG",
        default_value = "info,sqlx=warn",
        global = true
    )]
    pub log: String,
}

/// Settings of the HTTP server.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GONGGU_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Do not load the demo data into an empty database (the variable takes true/false, 1/0,
    /// yes/no, on/off).
    #[arg(long, env = "GONGGU_NO_DEMO", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub no_demo: bool,

    /// Secret for signing access tokens; generated once and kept in --data-dir when unset. Every
    /// instance of a scale-out deployment must share it. Prefer --jwt-secret-file: a flag's value
    /// shows in the process list.
    #[arg(long, env = "GONGGU_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// A file holding the access-token secret (surrounding whitespace ignored).
    #[arg(long, env = "GONGGU_JWT_SECRET_FILE", conflicts_with = "jwt_secret")]
    pub jwt_secret_file: Option<PathBuf>,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "GONGGU_ACCESS_TTL_SECS", default_value_t = defaults::ACCESS_TTL_SECS)]
    pub access_ttl_secs: u64,

    /// Lifetime of a refresh token, in seconds.
    #[arg(long, env = "GONGGU_REFRESH_TTL_SECS", default_value_t = defaults::REFRESH_TTL_SECS)]
    pub refresh_ttl_secs: u64,

    /// Origins allowed to call the API from a browser with credentials, comma-separated
    /// (e.g. https://app.example.com). Empty: no cross-origin access.
    #[arg(
        long,
        env = "GONGGU_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_origins: Vec<String>,

    /// Time-to-live of the item keyword search cache, in seconds.
    #[arg(long, env = "GONGGU_SEARCH_CACHE_TTL_SECS", default_value_t = defaults::SEARCH_CACHE_TTL_SECS)]
    pub search_cache_ttl_secs: u64,

    /// Login attempts allowed per email from one client address in one window (a stranger's
    /// failures lock out that stranger's address, not the account's owner elsewhere).
    #[arg(long, env = "GONGGU_LOGIN_LIMIT_PER_EMAIL", default_value_t = defaults::LOGIN_LIMIT_PER_EMAIL)]
    pub login_limit_per_email: u64,

    /// Login attempts allowed per email from all addresses together in one window: the backstop
    /// against a guessing attack spread over many addresses.
    #[arg(long, env = "GONGGU_LOGIN_LIMIT_PER_ACCOUNT", default_value_t = defaults::LOGIN_LIMIT_PER_ACCOUNT)]
    pub login_limit_per_account: u64,

    /// Login attempts allowed per client address in one window.
    #[arg(long, env = "GONGGU_LOGIN_LIMIT_PER_ADDR", default_value_t = defaults::LOGIN_LIMIT_PER_ADDR)]
    pub login_limit_per_addr: u64,

    /// Length of the login rate-limit window, in seconds.
    #[arg(long, env = "GONGGU_LOGIN_WINDOW_SECS", default_value_t = defaults::LOGIN_WINDOW_SECS)]
    pub login_window_secs: u64,

    /// Sign-ups allowed per client address in one sign-up window.
    #[arg(long, env = "GONGGU_SIGNUP_LIMIT_PER_ADDR", default_value_t = defaults::SIGNUP_LIMIT_PER_ADDR)]
    pub signup_limit_per_addr: u64,

    /// Length of the sign-up rate-limit window, in seconds.
    #[arg(long, env = "GONGGU_SIGNUP_WINDOW_SECS", default_value_t = defaults::SIGNUP_WINDOW_SECS)]
    pub signup_window_secs: u64,

    /// Take the client address from X-Forwarded-For (only behind a trusted proxy): the entry
    /// the nearest trusted proxy appended, see --trusted-proxy-hops.
    #[arg(long, env = "GONGGU_TRUST_FORWARDED_FOR", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub trust_forwarded_for: bool,

    /// How many trusted proxies append to X-Forwarded-For in front of gonggu: the client address
    /// is the entry that many places from the right (1: the rightmost).
    #[arg(long, env = "GONGGU_TRUSTED_PROXY_HOPS", default_value_t = defaults::TRUSTED_PROXY_HOPS,
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub trusted_proxy_hops: u32,

    /// How far ahead a party may be planned: meet and deadline times later than this many days
    /// from now are refused.
    #[arg(long, env = "GONGGU_PARTY_HORIZON_DAYS", default_value_t = defaults::PARTY_HORIZON_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub party_horizon_days: u32,

    /// Seconds a client has to send a request's headers before the connection is closed.
    #[arg(long, env = "GONGGU_HEADER_TIMEOUT_SECS", default_value_t = defaults::HEADER_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_timeout_secs: u64,

    /// Seconds a client has to send a request's whole body (408 after that).
    #[arg(long, env = "GONGGU_BODY_TIMEOUT_SECS", default_value_t = defaults::BODY_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub body_timeout_secs: u64,

    /// Open client connections at most; past it, new connections wait in the listen backlog.
    /// Lowered at start to what the process's open-file limit allows.
    #[arg(long, env = "GONGGU_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Open event streams (SSE) per user on one instance; more are refused with 429.
    #[arg(long, env = "GONGGU_MAX_STREAMS_PER_USER", default_value_t = defaults::MAX_STREAMS_PER_USER,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_user: u32,

    /// Serve /metrics on this address only (e.g. 127.0.0.1:9090), not on the API listener.
    #[arg(long, env = "GONGGU_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Who may read GET /api/v1/ingest/runs: everyone, signed-in users, or operators only.
    #[arg(
        long,
        env = "GONGGU_INGEST_RUNS_ACCESS",
        value_enum,
        default_value = "public"
    )]
    pub ingest_runs_access: Access,

    /// Seconds to wait for in-flight requests on shutdown.
    #[arg(long, env = "GONGGU_SHUTDOWN_GRACE_SECS", default_value_t = defaults::SHUTDOWN_GRACE_SECS)]
    pub shutdown_grace_secs: u64,

    /// Waiting rooms: admissions per minute of a newly opened room (a leader may set another).
    #[arg(long, env = "GONGGU_QUEUE_RATE_PER_MIN", default_value_t = defaults::QUEUE_DEFAULT_RATE_PER_MIN,
          value_parser = clap::value_parser!(i64).range(defaults::QUEUE_RATE_PER_MIN))]
    pub queue_rate_per_min: i64,

    /// Waiting rooms: lifetime of an admission pass, in seconds; an unused pass's seat then goes on.
    #[arg(long, env = "GONGGU_QUEUE_PASS_TTL_SECS", default_value_t = defaults::QUEUE_PASS_TTL_SECS)]
    pub queue_pass_ttl_secs: u64,

    /// Waiting rooms: a waiting entry with no SSE connection and no poll for this many seconds is
    /// dropped when its turn comes.
    #[arg(long, env = "GONGGU_QUEUE_STALE_SECS", default_value_t = defaults::QUEUE_STALE_SECS)]
    pub queue_stale_secs: u64,

    /// Waiting rooms: join attempts on one party within the burst window that turn its room on by
    /// itself (0: never).
    #[arg(long, env = "GONGGU_QUEUE_AUTO_THRESHOLD", default_value_t = defaults::QUEUE_AUTO_THRESHOLD)]
    pub queue_auto_threshold: u64,

    /// Waiting rooms: the burst window for the automatic opening, in seconds.
    #[arg(long, env = "GONGGU_QUEUE_AUTO_WINDOW_SECS", default_value_t = defaults::QUEUE_AUTO_WINDOW_SECS)]
    pub queue_auto_window_secs: u64,

    /// Operators' account emails, comma-separated: they may see, pause and resume any party's
    /// waiting room, as its leader can.
    #[arg(
        long,
        env = "GONGGU_OPERATOR_EMAILS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub operator_emails: Vec<String>,

    /// Waiting rooms: how often the admitter runs, in milliseconds.
    #[arg(long, env = "GONGGU_QUEUE_TICK_MS", default_value_t = defaults::QUEUE_TICK_MS)]
    pub queue_tick_ms: u64,

    /// Run no job worker in this process (another `gonggu worker` process runs them).
    #[arg(long, env = "GONGGU_NO_WORKER")]
    pub no_worker: bool,

    #[command(flatten)]
    pub lifecycle: LifecycleArgs,

    #[command(flatten)]
    pub nightly: NightlyArgs,

    #[command(flatten)]
    pub chat: ChatArgs,

    #[command(flatten)]
    pub push: PushArgs,
}

/// Web Push (`serve` and `worker` both take it: whichever runs the jobs sends the pushes). Every
/// instance must share one VAPID key pair: browsers subscribe with its public key, and a push
/// signed with another key is refused by the push service.
#[derive(Args, Debug, Clone)]
pub struct PushArgs {
    /// Web Push: the VAPID private key (the 32-byte P-256 scalar, base64url, as web push tools
    /// print it), with --vapid-public-key. Unset: a key pair is generated once and kept in
    /// --data-dir (`vapid-key.p8`).
    #[arg(
        long,
        env = "GONGGU_VAPID_PRIVATE_KEY",
        hide_env_values = true,
        requires = "vapid_public_key"
    )]
    pub vapid_private_key: Option<String>,

    /// Web Push: the VAPID public key (65-byte uncompressed P-256 point, base64url).
    #[arg(long, env = "GONGGU_VAPID_PUBLIC_KEY", requires = "vapid_private_key")]
    pub vapid_public_key: Option<String>,

    /// Web Push: the contact named in VAPID tokens (`mailto:ops@example.com` or an https URL),
    /// for push services to reach the operator. Some push services refuse pushes without one.
    #[arg(long, env = "GONGGU_VAPID_SUBJECT")]
    pub vapid_subject: Option<String>,

    /// Web Push: accept `http://` subscription endpoints (local testing only; browsers' push
    /// services are all https).
    #[arg(long, env = "GONGGU_PUSH_ALLOW_HTTP")]
    pub push_allow_http: bool,
}

/// Party chat over WebSocket.
#[derive(Args, Debug, Clone)]
pub struct ChatArgs {
    /// Chat: messages a reconnecting socket is replayed at most; past it the server sends `reset`
    /// and the client pages the history instead.
    #[arg(long, env = "GONGGU_CHAT_MAX_REPLAY", default_value_t = defaults::CHAT_MAX_REPLAY,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub chat_max_replay: u32,

    /// Chat: messages a user may send per window (all rooms together); more get an error frame.
    #[arg(long, env = "GONGGU_CHAT_SEND_LIMIT", default_value_t = defaults::CHAT_SEND_LIMIT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub chat_send_limit: u64,

    /// Chat: the send limit's window, in seconds.
    #[arg(long, env = "GONGGU_CHAT_SEND_WINDOW_SECS", default_value_t = defaults::CHAT_SEND_WINDOW_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub chat_send_window_secs: u64,

    /// Chat: frames queued for one socket at most; a client that falls this far behind is
    /// disconnected (`too_slow`) and reconnects with `since_seq`.
    #[arg(long, env = "GONGGU_CHAT_SEND_QUEUE", default_value_t = defaults::CHAT_SEND_QUEUE,
          value_parser = clap::value_parser!(u32).range(2..=65_536))]
    pub chat_send_queue: u32,

    /// Chat: seconds between a socket's heartbeats (a ping, and its presence renewed). A socket
    /// whose instance died drops out of presence after three missed heartbeats.
    #[arg(long, env = "GONGGU_CHAT_HEARTBEAT_SECS", default_value_t = defaults::CHAT_HEARTBEAT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub chat_heartbeat_secs: u64,

    /// Chat: a member with no open socket in a room gets at most one "new messages" notification
    /// per this many seconds for it.
    #[arg(long, env = "GONGGU_CHAT_NOTIFY_QUIET_SECS", default_value_t = defaults::CHAT_NOTIFY_QUIET_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub chat_notify_quiet_secs: u64,
}

/// The party lifecycle after the deadline: completion, attendance and penalties (`serve` and
/// `worker` both take them: whichever runs the jobs applies them).
#[derive(Args, Debug, Clone)]
pub struct LifecycleArgs {
    /// Parties: minutes after its meet that a closed party becomes `completed`.
    #[arg(long, env = "GONGGU_COMPLETE_AFTER_MEET_MINS", default_value_t = defaults::COMPLETE_AFTER_MEET_MINS)]
    pub complete_after_meet_mins: u64,

    /// Attendance: days after the meet during which the leader may mark (and correct) who came.
    #[arg(long, env = "GONGGU_ATTENDANCE_WINDOW_DAYS", default_value_t = defaults::ATTENDANCE_WINDOW_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=365))]
    pub attendance_window_days: u32,

    /// Penalties: days a no-show penalty counts towards a ban.
    #[arg(long, env = "GONGGU_PENALTY_WINDOW_DAYS", default_value_t = defaults::PENALTY_WINDOW_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub penalty_window_days: u32,

    /// Penalties: active penalties that ban a user from creating and joining parties.
    #[arg(long, env = "GONGGU_BAN_THRESHOLD", default_value_t = defaults::BAN_THRESHOLD,
          value_parser = clap::value_parser!(i64).range(1..=100))]
    pub ban_threshold: i64,

    /// Penalties: days a ban lasts.
    #[arg(long, env = "GONGGU_BAN_DAYS", default_value_t = defaults::BAN_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub ban_days: u32,
}

/// `gonggu worker`: the job worker, sweeper and jobs consumer without the HTTP API.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub lifecycle: LifecycleArgs,

    #[command(flatten)]
    pub nightly: NightlyArgs,

    #[command(flatten)]
    pub push: PushArgs,

    /// Seconds to wait for running jobs on shutdown.
    #[arg(long, env = "GONGGU_SHUTDOWN_GRACE_SECS", default_value_t = defaults::SHUTDOWN_GRACE_SECS)]
    pub shutdown_grace_secs: u64,
}

/// Where the rows come from.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum IngestSource {
    /// A paged data.go.kr operation: --url is the operation's full address.
    PagedApi,
    /// The consumer-price API (참가격): --url is the service root (…/ProductPriceInfoService).
    PriceApi,
    /// A CSV file (the portal's download, CP949 or UTF-8, or gonggu's plain columns): give FILE.
    Csv,
}

impl IngestSource {
    pub fn kind(self) -> ingest::config::SourceKind {
        match self {
            IngestSource::PagedApi => ingest::config::SourceKind::PagedApi,
            IngestSource::PriceApi => ingest::config::SourceKind::PriceApi,
            IngestSource::Csv => ingest::config::SourceKind::Csv,
        }
    }
}

/// The nightly import, run by whichever process runs the jobs (`serve` or `worker`): off unless a
/// source is set for items or markets. The key is `gonggu ingest`'s (`GONGGU_SERVICE_KEY[_FILE]`).
#[derive(Args, Debug, Clone)]
pub struct NightlyArgs {
    /// Nightly import: when, as a cron schedule in Asia/Seoul time (sec min hour day month weekday).
    #[arg(long, env = "GONGGU_NIGHTLY_SCHEDULE", default_value = jobs::nightly::DEFAULT_SCHEDULE)]
    pub nightly_schedule: String,

    /// Nightly import of items: where from (unset: no nightly item import).
    #[arg(long, env = "GONGGU_NIGHTLY_ITEMS_SOURCE", value_enum)]
    pub nightly_items_source: Option<IngestSource>,

    /// Nightly import of items: the paged operation's address or the price API's service root.
    #[arg(long, env = "GONGGU_NIGHTLY_ITEMS_URL")]
    pub nightly_items_url: Option<String>,

    /// Nightly import of items: the CSV file (with source csv).
    #[arg(long, env = "GONGGU_NIGHTLY_ITEMS_FILE")]
    pub nightly_items_file: Option<PathBuf>,

    /// Nightly import of markets: where from (unset: no nightly market import).
    #[arg(long, env = "GONGGU_NIGHTLY_MARKETS_SOURCE", value_enum)]
    pub nightly_markets_source: Option<IngestSource>,

    /// Nightly import of markets: the paged operation's address or the price API's service root.
    #[arg(long, env = "GONGGU_NIGHTLY_MARKETS_URL")]
    pub nightly_markets_url: Option<String>,

    /// Nightly import of markets: the CSV file (with source csv).
    #[arg(long, env = "GONGGU_NIGHTLY_MARKETS_FILE")]
    pub nightly_markets_file: Option<PathBuf>,

    /// The data.go.kr service key for the nightly import. Never logged.
    #[arg(
        long = "nightly-service-key",
        env = "GONGGU_SERVICE_KEY",
        hide_env_values = true
    )]
    pub service_key: Option<String>,

    /// A file holding the service key.
    #[arg(long = "nightly-service-key-file", env = "GONGGU_SERVICE_KEY_FILE")]
    pub service_key_file: Option<PathBuf>,
}

impl NightlyArgs {
    /// The nightly import these settings describe, checked now (a source without its URL or file
    /// is a start-up error, not a failure at 3 a.m.); `None` when no source is set.
    pub fn nightly(&self) -> anyhow::Result<Option<jobs::nightly::Nightly>> {
        use ingest::run::Kind;
        if self.nightly_items_source.is_none() && self.nightly_markets_source.is_none() {
            return Ok(None);
        }
        let schedule =
            jobs::nightly::Nightly::schedule(&self.nightly_schedule).map_err(anyhow::Error::msg)?;
        let key = secret_from(
            self.service_key.as_deref(),
            self.service_key_file.as_deref(),
            "GONGGU_SERVICE_KEY_FILE",
        )?
        .unwrap_or_default();
        let config = |kind: Kind,
                      source: Option<IngestSource>,
                      url: &Option<String>,
                      file: &Option<PathBuf>,
                      prefix: &str|
         -> anyhow::Result<Option<ingest::config::IngestConfig>> {
            let Some(source) = source else {
                return Ok(None);
            };
            let config = ingest::config::IngestConfig {
                url: url.clone(),
                file: file.clone(),
                service_key: key.clone(),
                ..ingest::config::IngestConfig::new(kind, source.kind())
            };
            config
                .source_spec()
                .map_err(|e| anyhow::anyhow!("{prefix}: {e}"))?;
            Ok(Some(config))
        };
        Ok(Some(jobs::nightly::Nightly {
            schedule,
            items: config(
                Kind::Items,
                self.nightly_items_source,
                &self.nightly_items_url,
                &self.nightly_items_file,
                "GONGGU_NIGHTLY_ITEMS_*",
            )?,
            markets: config(
                Kind::Markets,
                self.nightly_markets_source,
                &self.nightly_markets_url,
                &self.nightly_markets_file,
                "GONGGU_NIGHTLY_MARKETS_*",
            )?,
        }))
    }
}

/// The secret given directly, or read from `file` (trimmed); `None` when neither is set.
pub fn secret_from(
    value: Option<&str>,
    file: Option<&Path>,
    variable: &str,
) -> anyhow::Result<Option<String>> {
    match (value, file) {
        (Some(v), _) => Ok(Some(v.to_owned())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {variable} {}", path.display()))?;
            let secret = text.trim();
            anyhow::ensure!(!secret.is_empty(), "{variable} {} is empty", path.display());
            Ok(Some(secret.to_owned()))
        }
        (None, None) => Ok(None),
    }
}

/// Who may read an operational endpoint.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// Any signed-in user.
    SignedIn,
    /// Operators (`GONGGU_OPERATOR_EMAILS`) only.
    Operators,
}

/// Defaults of the settings, read by clap and by `Settings::default` alike.
pub mod defaults {
    pub const CHAT_MAX_REPLAY: u32 = 1_000;
    pub const CHAT_SEND_LIMIT: u64 = 20;
    pub const CHAT_SEND_WINDOW_SECS: u64 = 10;
    pub const CHAT_SEND_QUEUE: u32 = 256;
    pub const CHAT_HEARTBEAT_SECS: u64 = 10;
    pub const CHAT_NOTIFY_QUIET_SECS: u64 = 600;
    pub const ACCESS_TTL_SECS: u64 = 900;
    pub const REFRESH_TTL_SECS: u64 = 30 * 24 * 3600;
    pub const SEARCH_CACHE_TTL_SECS: u64 = 600;
    pub const LOGIN_LIMIT_PER_ADDR: u64 = 50;
    pub const LOGIN_WINDOW_SECS: u64 = 900;
    pub const SHUTDOWN_GRACE_SECS: u64 = 20;
    pub const QUEUE_DEFAULT_RATE_PER_MIN: i64 = 600;
    pub const QUEUE_PASS_TTL_SECS: u64 = 300;
    pub const QUEUE_STALE_SECS: u64 = 30;
    pub const QUEUE_AUTO_THRESHOLD: u64 = 50;
    pub const QUEUE_AUTO_WINDOW_SECS: u64 = 10;
    pub const QUEUE_TICK_MS: u64 = 200;
    pub const COMPLETE_AFTER_MEET_MINS: u64 = 180;
    pub const ATTENDANCE_WINDOW_DAYS: u32 = 7;
    pub const PENALTY_WINDOW_DAYS: u32 = 90;
    pub const BAN_THRESHOLD: i64 = 3;
    pub const BAN_DAYS: u32 = 14;
    pub const LOGIN_LIMIT_PER_EMAIL: u64 = 10;
    pub const LOGIN_LIMIT_PER_ACCOUNT: u64 = 100;
    pub const SIGNUP_LIMIT_PER_ADDR: u64 = 20;
    pub const SIGNUP_WINDOW_SECS: u64 = 3600;
    pub const TRUSTED_PROXY_HOPS: u32 = 1;
    pub const PARTY_HORIZON_DAYS: u32 = 365;
    pub const HEADER_TIMEOUT_SECS: u64 = 10;
    pub const BODY_TIMEOUT_SECS: u64 = 30;
    pub const MAX_CONNECTIONS: u32 = 4096;
    pub const MAX_STREAMS_PER_USER: u32 = 8;
    /// The admissions per minute a waiting room may run at: the one bound of the configured
    /// default and of a leader's choice.
    pub const QUEUE_RATE_PER_MIN: std::ops::RangeInclusive<i64> = 1..=60_000;
}

/// Reads `gonggu.toml` (or the file named by `GONGGU_CONFIG`) and exports each `key = value` as the
/// environment variable `GONGGU_KEY` unless that is already set, so the environment and flags win.
/// Keys `database_url` and `redis_url` map to `DATABASE_URL` and `REDIS_URL`.
pub fn apply_config_file() -> Result<Option<PathBuf>, String> {
    let path = std::env::var_os("GONGGU_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("gonggu.toml"));
    if !path.exists() {
        return Ok(None);
    }
    let vars = read_config_file(&path)?;
    for (name, value) in vars {
        if std::env::var_os(&name).is_none() {
            // Single-threaded at this point: nothing else reads the environment yet.
            std::env::set_var(name, value);
        }
    }
    Ok(Some(path))
}

/// Parses a config file into environment variable names and values.
pub fn read_config_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("invalid {}: {e}", path.display()))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => {
                    return Err(format!(
                        "{}: unsupported value for `{key}`: {other}",
                        path.display()
                    ))
                }
            };
            let name = match key.as_str() {
                "database_url" => "DATABASE_URL".to_owned(),
                "redis_url" => "REDIS_URL".to_owned(),
                _ => format!("GONGGU_{}", key.to_uppercase().replace('-', "_")),
            };
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_keys_become_environment_variables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gonggu.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\ndatabase_url = \"postgres://x/y\"\naccess-ttl-secs = 60\ncors_origins = [\"https://a\", \"https://b\"]\n",
        )
        .unwrap();
        let mut vars = read_config_file(&path).unwrap();
        vars.sort();
        assert_eq!(
            vars,
            vec![
                ("DATABASE_URL".into(), "postgres://x/y".into()),
                ("GONGGU_ACCESS_TTL_SECS".into(), "60".into()),
                ("GONGGU_CORS_ORIGINS".into(), "https://a,https://b".into()),
                ("GONGGU_LISTEN".into(), "0.0.0.0:9000".into()),
            ]
        );
    }

    #[test]
    fn a_malformed_config_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gonggu.toml");
        std::fs::write(&path, "listen = ").unwrap();
        let err = read_config_file(&path).unwrap_err();
        assert!(err.contains("gonggu.toml"), "{err}");
    }
}
