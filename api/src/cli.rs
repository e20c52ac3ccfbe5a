//! The `gonggu` command line: `serve`, `migrate`, `seed`, `ingest`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use rand::RngCore;
use store::live::Live;
use store::{Clock, Db};

use crate::config::{self, LogArgs, ServeArgs, StorageArgs};
use crate::state::{AppState, Settings};

#[derive(Parser, Debug)]
#[command(
    name = "gonggu",
    version,
    about = "Geospatial group buying: parties near you, fair booking, live updates."
)]
pub struct Cli {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP API (and, in the embedded default, everything else) in this process.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate,
    /// Load the bundled markets and items (and, with --demo, demo users and parties).
    Seed(SeedArgs),
    /// Import the public item or market list (exit 0 succeeded, 3 partial, 1 failed).
    Ingest(crate::ingest_cmd::IngestArgs),
    /// Run background jobs only (no HTTP API): for scale-out with `serve --no-worker`.
    Worker(crate::config::WorkerArgs),
}

#[derive(Args, Debug)]
pub struct SeedArgs {
    /// Also create demo users and parties around Seoul, Busan and Daejeon.
    #[arg(long)]
    pub demo: bool,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let config_file = match config::apply_config_file() {
        Ok(path) => path,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse();
    crate::telemetry::init(&cli.log);
    if let Some(path) = config_file {
        tracing::info!(path = %path.display(), "read configuration file");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if matches!(cli.command, Command::Ingest(_)) {
        // Pages are parsed on the blocking pool. More parsing threads than cores gain nothing,
        // and each one makes glibc keep another malloc arena: capped, a run's memory stays flat.
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        builder.max_blocking_threads(cores);
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(crate::ingest_cmd::exit_code(&err))
        }
    }
}

/// Runs one subcommand.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(&cli.storage, &args).await,
        Command::Migrate => {
            let db = open_db(&cli.storage).await?;
            println!("migrations applied ({})", db.dialect().name());
            Ok(())
        }
        Command::Seed(args) => {
            let db = open_db(&cli.storage).await?;
            let live = open_live(&cli.storage).await?;
            let summary = crate::seed::run(&db, &live, &Clock::system(), args.demo).await?;
            println!("{summary}");
            Ok(())
        }
        Command::Worker(args) => worker(&cli.storage, &args).await,
        Command::Ingest(args) => {
            let config = args.config()?;
            let db = open_db(&cli.storage).await?;
            let live = open_live(&cli.storage).await?;
            let report = crate::ingest_cmd::run(&db, &live, &Clock::system(), &config).await;
            db.close().await;
            crate::ingest_cmd::check(&report?)
        }
    }
}

/// Connects to the configured database (creating the SQLite folder) and applies migrations.
pub async fn open_db(storage: &StorageArgs) -> Result<Db> {
    if storage.database_url.is_none() {
        std::fs::create_dir_all(&storage.data_dir)
            .with_context(|| format!("cannot create data folder {}", storage.data_dir.display()))?;
    }
    let url = storage.database_url();
    let db = Db::connect(&url, storage.db_max_connections)
        .await
        .context("cannot connect to the database")?;
    db.migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(db)
}

/// The job tables: `jobs.db` in the data folder, or schema `apalis` of the PostgreSQL database.
pub async fn open_jobs(storage: &StorageArgs) -> Result<jobs::Jobs> {
    let location = match &storage.database_url {
        Some(url) => jobs::Location::Postgres(url.clone()),
        None => jobs::Location::Sqlite(storage.data_dir.join("jobs.db")),
    };
    jobs::Jobs::open(&location, &storage.redis_prefix)
        .await
        .context("cannot open the job tables")
}

/// How long start-up waits for Redis before giving up with a message.
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The live-state backends: Redis when `REDIS_URL` is set, in-process otherwise. An unreachable
/// Redis is an error after [`REDIS_CONNECT_TIMEOUT`], not a silent hang.
pub async fn open_live(storage: &StorageArgs) -> Result<Live> {
    match &storage.redis_url {
        Some(url) => {
            match tokio::time::timeout(
                REDIS_CONNECT_TIMEOUT,
                Live::redis(url, &storage.redis_prefix),
            )
            .await
            {
                Ok(live) => live.context("cannot connect to Redis (REDIS_URL)"),
                Err(_) => anyhow::bail!(
                    "cannot connect to Redis (REDIS_URL): no answer within {} s",
                    REDIS_CONNECT_TIMEOUT.as_secs()
                ),
            }
        }
        None => Ok(Live::memory()),
    }
}

/// The configured JWT secret, or one generated once and kept in `data_dir/jwt-secret`.
fn jwt_secret(configured: Option<&str>, data_dir: &Path) -> Result<Vec<u8>> {
    if let Some(secret) = configured {
        anyhow::ensure!(
            secret.len() >= 32,
            "GONGGU_JWT_SECRET must be at least 32 characters"
        );
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    write_private(&path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a JWT secret");
    Ok(secret.into_bytes())
}

/// The configured VAPID key pair, or one generated once and kept in `data_dir/vapid-key.p8`.
fn vapid_key(args: &crate::config::PushArgs, data_dir: &Path) -> Result<jobs::push::VapidKey> {
    use base64::Engine;
    use jobs::push::VapidKey;
    if let (Some(private), Some(public)) = (&args.vapid_private_key, &args.vapid_public_key) {
        return VapidKey::from_base64url(private, public)
            .context("GONGGU_VAPID_PRIVATE_KEY / GONGGU_VAPID_PUBLIC_KEY");
    }
    let path = data_dir.join("vapid-key.p8");
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let doc = b64
            .decode(existing.trim())
            .with_context(|| format!("{} is not base64", path.display()))?;
        return VapidKey::from_pkcs8(&doc).with_context(|| format!("{}", path.display()));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let key = VapidKey::generate().context("cannot generate a VAPID key pair")?;
    write_private(&path, &b64.encode(key.pkcs8()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a VAPID key pair");
    Ok(key)
}

/// Attaches the Web Push sender, warning when a scale-out deployment has no shared key.
fn attach_push(
    state: &AppState,
    storage: &StorageArgs,
    args: &crate::config::PushArgs,
) -> Result<()> {
    if storage.database_url.is_some() && args.vapid_private_key.is_none() {
        tracing::warn!(
            "no GONGGU_VAPID_PRIVATE_KEY set: every instance of a scale-out deployment needs the same VAPID key pair"
        );
    }
    let key = vapid_key(args, &storage.data_dir)?;
    state
        .attach_push(key)
        .context("cannot start the Web Push client")
}

#[cfg(unix)]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}

/// `gonggu worker`: this process's share of the jobs until SIGTERM or ctrl-c.
async fn worker(storage: &StorageArgs, args: &crate::config::WorkerArgs) -> Result<()> {
    let db = open_db(storage).await?;
    let live = open_live(storage).await?;
    let jobs = open_jobs(storage).await?;
    let mut settings = Settings {
        lifecycle: crate::state::LifecycleSettings::from_args(&args.lifecycle),
        ..Settings::default()
    };
    settings.jobs.nightly = args.nightly.nightly()?;
    settings.push = crate::state::PushSettings::from_args(&args.push);
    // A worker issues no tokens: its key is random and never leaves the process.
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let state = AppState::new(db.clone(), live, Clock::system(), &secret, settings);
    state.attach_jobs(jobs);
    attach_push(&state, storage, &args.push)?;
    let tasks = crate::server::start_jobs(&state);
    println!(
        "gonggu worker running (jobs queue {})",
        state
            .jobs
            .get()
            .map(|j| j.store.queue())
            .unwrap_or_default()
    );
    tracing::info!(database = db.dialect().name(), "worker running");
    crate::server::shutdown_signal().await;
    tracing::info!("shutting down: finishing running jobs");
    let _ = state.shutdown.send(true);
    let grace = Duration::from_secs(args.shutdown_grace_secs);
    if tokio::time::timeout(grace, futures::future::join_all(tasks))
        .await
        .is_err()
    {
        tracing::warn!("jobs still running after the grace period; leaving them to be taken over");
    }
    db.close().await;
    Ok(())
}

async fn serve(storage: &StorageArgs, args: &ServeArgs) -> Result<()> {
    // Configuration mistakes first: before connecting to anything.
    let mut settings = Settings::from_args(args).map_err(anyhow::Error::msg)?;
    settings.jobs.nightly = args.nightly.nightly()?;
    let configured_secret = config::secret_from(
        args.jwt_secret.as_deref(),
        args.jwt_secret_file.as_deref(),
        "GONGGU_JWT_SECRET_FILE",
    )?;
    let db = open_db(storage).await?;
    let live = open_live(storage).await?;
    if storage.database_url.is_some() && configured_secret.is_none() {
        tracing::warn!(
            "no GONGGU_JWT_SECRET set: every instance of a scale-out deployment needs the same one"
        );
    }
    let secret = jwt_secret(configured_secret.as_deref(), &storage.data_dir)?;
    let clock = Clock::system();
    if !args.no_demo && crate::seed::is_empty(&db).await? {
        let summary = crate::seed::run(&db, &live, &clock, true).await?;
        tracing::info!("empty database: loaded the demo ({summary})");
    }
    let state = AppState::new(db.clone(), live, clock, &secret, settings);
    state.attach_jobs(open_jobs(storage).await?);
    attach_push(&state, storage, &args.push)?;
    let server = crate::server::start(state, args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "gonggu listening on http://{} (API docs: http://{}/docs)",
        server.addr, server.addr
    );
    tracing::info!(addr = %server.addr, database = db.dialect().name(), redis = storage.redis_url.is_some(), "serving");
    crate::server::shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    server
        .shutdown(Duration::from_secs(args.shutdown_grace_secs))
        .await;
    db.close().await;
    Ok(())
}
