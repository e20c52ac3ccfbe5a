//! Configuration: command-line flags, `GONGGU_*` environment variables and an optional
//! `gonggu.toml`, in that order of precedence. clap documents every setting in `--help`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

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

    /// Do not load the demo data into an empty database.
    #[arg(long, env = "GONGGU_NO_DEMO")]
    pub no_demo: bool,

    /// Secret for signing access tokens; generated once and kept in --data-dir when unset. Every
    /// instance of a scale-out deployment must share it.
    #[arg(long, env = "GONGGU_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "GONGGU_ACCESS_TTL_SECS", default_value_t = 900)]
    pub access_ttl_secs: u64,

    /// Lifetime of a refresh token, in seconds.
    #[arg(long, env = "GONGGU_REFRESH_TTL_SECS", default_value_t = 30 * 24 * 3600)]
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
    #[arg(long, env = "GONGGU_SEARCH_CACHE_TTL_SECS", default_value_t = 600)]
    pub search_cache_ttl_secs: u64,

    /// Login attempts allowed per email in one window.
    #[arg(long, env = "GONGGU_LOGIN_LIMIT_PER_EMAIL", default_value_t = 10)]
    pub login_limit_per_email: u64,

    /// Login attempts allowed per client address in one window.
    #[arg(long, env = "GONGGU_LOGIN_LIMIT_PER_ADDR", default_value_t = 50)]
    pub login_limit_per_addr: u64,

    /// Length of the login rate-limit window, in seconds.
    #[arg(long, env = "GONGGU_LOGIN_WINDOW_SECS", default_value_t = 900)]
    pub login_window_secs: u64,

    /// Take the client address from the first X-Forwarded-For entry (only behind a trusted proxy).
    #[arg(long, env = "GONGGU_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// Seconds to wait for in-flight requests on shutdown.
    #[arg(long, env = "GONGGU_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Waiting rooms: admissions per minute of a newly opened room (a leader may set another).
    #[arg(long, env = "GONGGU_QUEUE_RATE_PER_MIN", default_value_t = 600)]
    pub queue_rate_per_min: u64,

    /// Waiting rooms: lifetime of an admission pass, in seconds; an unused pass's seat then goes on.
    #[arg(long, env = "GONGGU_QUEUE_PASS_TTL_SECS", default_value_t = 300)]
    pub queue_pass_ttl_secs: u64,

    /// Waiting rooms: a waiting entry with no SSE connection and no poll for this many seconds is
    /// dropped when its turn comes.
    #[arg(long, env = "GONGGU_QUEUE_STALE_SECS", default_value_t = 30)]
    pub queue_stale_secs: u64,

    /// Waiting rooms: join attempts on one party within the burst window that turn its room on by
    /// itself (0: never).
    #[arg(long, env = "GONGGU_QUEUE_AUTO_THRESHOLD", default_value_t = 50)]
    pub queue_auto_threshold: u64,

    /// Waiting rooms: the burst window for the automatic opening, in seconds.
    #[arg(long, env = "GONGGU_QUEUE_AUTO_WINDOW_SECS", default_value_t = 10)]
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
    #[arg(long, env = "GONGGU_QUEUE_TICK_MS", default_value_t = 200)]
    pub queue_tick_ms: u64,
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
