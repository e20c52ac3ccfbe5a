//! The waiting-room scenario, replayed against a running `gonggu serve`: virtual users ramp up,
//! each enters a hot party's waiting room, follows its position (polling every few seconds, as the
//! seed's clients did, or over SSE), books with its admission pass, and leaves the party so the seat
//! goes to the next person. Reports requests/s, latency percentiles, errors, bookings against seats,
//! the admission order against the entry order, and (SSE) the delay from admission to the client.
//!
//! ```text
//! GONGGU_LOGIN_LIMIT_PER_ADDR=1000000 GONGGU_QUEUE_AUTO_THRESHOLD=0 gonggu serve --no-demo &
//! cargo run --release -p gonggu-bench --bin queue-load -- --base http://127.0.0.1:8080 --mode sse
//! ```
//! The server must know the market and item lists (`gonggu seed`), and allow many logins from one
//! address (the users sign up and log in through the API before the timed part).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use gonggu_bench::latency::Summary;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Poll `GET .../queue/me` every `--poll-secs`.
    Poll,
    /// Follow `GET .../queue/me/events`.
    Sse,
}

#[derive(Debug, Parser)]
#[command(about = "Waiting-room scenario load generator")]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Virtual users at the peak.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Users added per ramp step.
    #[arg(long, default_value_t = 100)]
    ramp_step: usize,
    /// Seconds between ramp steps (the seed's k6 test used 30).
    #[arg(long, default_value_t = 3)]
    ramp_every_secs: u64,
    #[arg(long, value_enum, default_value_t = Mode::Sse)]
    mode: Mode,
    /// Polling interval in poll mode.
    #[arg(long, default_value_t = 5)]
    poll_secs: u64,
    /// Seats in the party (the leader holds one).
    #[arg(long, default_value_t = 50)]
    capacity: i64,
    /// The room's admission rate (the seed let 10 in at a time). Users book and leave as soon as
    /// they see their pass, so seats recycle; passes held longer than the seats last (polling
    /// users see theirs up to `--poll-secs` late) fill the party, which closes its room by design.
    #[arg(long, default_value_t = 600)]
    rate_per_min: i64,
    /// Concurrent sign-ups and logins while preparing the users.
    #[arg(long, default_value_t = 4)]
    setup_concurrency: usize,
    /// Only prepare a party with a paused room and one waiting user, and print a `wrk` command
    /// for `GET .../queue/me` (raw position capacity).
    #[arg(long)]
    wrk_target: bool,
}

/// What every request is timed and counted under.
#[derive(Default)]
struct Stats {
    latencies: Vec<Duration>,
    /// The same latencies by request kind (`enter`, `position`, `follow`, `book`, `leave`).
    by_kind: std::collections::BTreeMap<&'static str, Vec<Duration>>,
    requests: usize,
    errors: Vec<String>,
    /// Per admitted user, in unix ms: entry request sent, entry answered, admitted (server time).
    admissions: Vec<(i64, i64, i64)>,
    bookings: usize,
    refused_after_admission: usize,
    not_admitted: usize,
    /// Server admission time to the client seeing it (SSE).
    push_delays: Vec<Duration>,
}

type Shared = Arc<Mutex<Stats>>;

struct Client {
    http: reqwest::Client,
    base: String,
    stats: Shared,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let started = Instant::now();
        let res = req.send().await;
        let elapsed = started.elapsed();
        {
            let mut stats = self.stats.lock().expect("stats lock");
            stats.requests += 1;
            stats.latencies.push(elapsed);
            stats
                .by_kind
                .entry(kind_of(&method, path))
                .or_default()
                .push(elapsed);
        }
        let res = res.with_context(|| format!("request {path}"))?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((status, value))
    }

    fn error(&self, what: String) {
        self.stats.lock().expect("stats lock").errors.push(what);
    }
}

/// The scenario step a request belongs to.
fn kind_of(method: &reqwest::Method, path: &str) -> &'static str {
    match (method.as_str(), path) {
        ("POST", p) if p.ends_with("/queue") => "enter",
        ("GET", p) if p.ends_with("/queue/me") => "position",
        ("POST", p) if p.ends_with("/bookings") => "book",
        ("DELETE", p) if p.ends_with("/bookings/me") => "leave",
        _ => "other",
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix ms of an RFC 3339 time as the API writes it.
fn parse_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

async fn account(client: &Client, i: usize, run: &str) -> anyhow::Result<String> {
    let email = format!("load-{run}-{i}@bench.gonggu.kr");
    let body = json!({"email": email, "password": "bench-password", "nickname": format!("vu{i}")});
    let (status, res) = client
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(&body),
            &[],
        )
        .await?;
    if status != 201 {
        bail!("signup {status}: {res}");
    }
    let body = json!({"email": email, "password": "bench-password"});
    let (status, res) = client
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&body),
            &[],
        )
        .await?;
    if status != 200 {
        bail!("login {status}: {res}");
    }
    res["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access token")
}

async fn first_id(client: &Client, path: &str) -> anyhow::Result<i64> {
    let (_, res) = client
        .call(reqwest::Method::GET, path, None, None, &[])
        .await?;
    res["items"][0]["id"]
        .as_i64()
        .with_context(|| format!("no rows at {path}: seed the server first (gonggu seed)"))
}

/// A party led by `leader` with its room open (paused when `paused`).
async fn hot_party(
    client: &Client,
    leader: &str,
    args: &Args,
    paused: bool,
) -> anyhow::Result<i64> {
    let market = first_id(client, "/api/v1/markets?limit=1").await?;
    let item = first_id(client, "/api/v1/items?limit=1").await?;
    let now = unix_ms();
    let fmt = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    };
    let body = json!({
        "market_id": market, "item_id": item, "title": "대용량 생수 공구", "description": "load test",
        "capacity": args.capacity, "price_per_share": 3000,
        "meet_at": fmt(now + 48 * 3_600_000), "deadline_at": fmt(now + 47 * 3_600_000),
    });
    let (status, party) = client
        .call(
            reqwest::Method::POST,
            "/api/v1/parties",
            Some(leader),
            Some(&body),
            &[],
        )
        .await?;
    if status != 201 {
        bail!("create party {status}: {party}");
    }
    let id = party["id"].as_i64().context("party id")?;
    let body = json!({"rate_per_min": args.rate_per_min});
    let (status, room) = client
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/parties/{id}/queue/open"),
            Some(leader),
            Some(&body),
            &[],
        )
        .await?;
    if status != 200 {
        bail!("open room {status}: {room}");
    }
    if paused {
        client
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/parties/{id}/queue/pause"),
                Some(leader),
                None,
                &[],
            )
            .await?;
    }
    Ok(id)
}

/// Follows the user's place until it is final; returns the final status.
async fn follow(client: &Client, token: &str, id: i64, args: &Args) -> anyhow::Result<Value> {
    match args.mode {
        Mode::Poll => loop {
            tokio::time::sleep(Duration::from_secs(args.poll_secs)).await;
            let (status, me) = client
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/parties/{id}/queue/me"),
                    Some(token),
                    None,
                    &[],
                )
                .await?;
            if status != 200 {
                bail!("poll {status}: {me}");
            }
            if me["state"] != "waiting" {
                return Ok(me);
            }
        },
        Mode::Sse => {
            let started = Instant::now();
            let mut res = client
                .http
                .get(format!(
                    "{}/api/v1/parties/{id}/queue/me/events",
                    client.base
                ))
                .bearer_auth(token)
                .send()
                .await?;
            {
                let mut stats = client.stats.lock().expect("stats lock");
                stats.requests += 1;
                stats.latencies.push(started.elapsed());
                stats
                    .by_kind
                    .entry("follow (until headers)")
                    .or_default()
                    .push(started.elapsed());
            }
            if res.status() != 200 {
                bail!("follow {}", res.status());
            }
            let mut buf = String::new();
            while let Some(chunk) = res.chunk().await? {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let data: String = block
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .map(str::trim)
                        .collect();
                    if data.is_empty() {
                        continue;
                    }
                    let status: Value = serde_json::from_str(&data)?;
                    if status["state"] != "waiting" {
                        return Ok(status);
                    }
                }
            }
            bail!("the event stream ended early")
        }
    }
}

/// One virtual user: enter, follow, book, leave the party.
async fn virtual_user(
    client: Arc<Client>,
    token: String,
    id: i64,
    args: Arc<Args>,
    pass_ttl_ms: i64,
) {
    let q = format!("/api/v1/parties/{id}/queue");
    let sent = unix_ms();
    match client
        .call(reqwest::Method::POST, &q, Some(&token), None, &[])
        .await
    {
        Ok((201, _)) => {}
        Ok((status, body)) => return client.error(format!("enter {status}: {body}")),
        Err(err) => return client.error(format!("enter: {err:#}")),
    }
    let acked = unix_ms();
    let status = match follow(&client, &token, id, &args).await {
        Ok(s) => s,
        Err(err) => return client.error(format!("follow: {err:#}")),
    };
    let seen = unix_ms();
    if status["state"] != "admitted" {
        client.stats.lock().expect("stats lock").not_admitted += 1;
        return;
    }
    // The pass expires a known time after the admission: that gives the server's admission time.
    let Some(admitted) = status["pass_expires_at"]
        .as_str()
        .and_then(parse_ms)
        .map(|expires| expires - pass_ttl_ms)
    else {
        return client.error(format!("no pass expiry in {status}"));
    };
    {
        let mut stats = client.stats.lock().expect("stats lock");
        if args.mode == Mode::Sse {
            stats
                .push_delays
                .push(Duration::from_millis((seen - admitted).max(0) as u64));
        }
        stats.admissions.push((sent, acked, admitted));
    }
    let pass = status["pass"].as_str().unwrap_or_default();
    let booking = client
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/parties/{id}/bookings"),
            Some(&token),
            None,
            &[("admission-pass", pass)],
        )
        .await;
    match booking {
        Ok((201, _)) => client.stats.lock().expect("stats lock").bookings += 1,
        Ok((status, body)) => {
            client
                .stats
                .lock()
                .expect("stats lock")
                .refused_after_admission += 1;
            return client.error(format!("book {status}: {body}"));
        }
        Err(err) => return client.error(format!("book: {err:#}")),
    }
    match client
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/parties/{id}/bookings/me"),
            Some(&token),
            None,
            &[],
        )
        .await
    {
        Ok((200, _)) => {}
        Ok((status, body)) => client.error(format!("leave {status}: {body}")),
        Err(err) => client.error(format!("leave: {err:#}")),
    }
}

async fn prepare_users(
    client: &Arc<Client>,
    n: usize,
    concurrency: usize,
    run: &str,
) -> anyhow::Result<Vec<String>> {
    let next = Arc::new(Mutex::new(0usize));
    let out = Arc::new(Mutex::new(vec![String::new(); n]));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, next, out, run) = (client.clone(), next.clone(), out.clone(), run.to_owned());
        workers.push(tokio::spawn(async move {
            loop {
                let i = {
                    let mut next = next.lock().expect("lock");
                    let i = *next;
                    *next += 1;
                    i
                };
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                let token = account(&client, i, &run).await?;
                out.lock().expect("lock")[i] = token;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    let tokens = out.lock().expect("lock").clone();
    Ok(tokens)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let stats: Shared = Arc::default();
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(2048)
            .timeout(Duration::from_secs(600))
            .build()?,
        base: args.base.trim_end_matches('/').to_owned(),
        stats: stats.clone(),
    });
    let run = format!("{}", unix_ms());
    let setup = Instant::now();
    let n = if args.wrk_target { 1 } else { args.users };
    let mut tokens = prepare_users(&client, n + 1, args.setup_concurrency, &run).await?;
    let leader = tokens.remove(0);
    let id = hot_party(&client, &leader, &args, args.wrk_target).await?;
    if args.wrk_target {
        let token = &tokens[0];
        client
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/parties/{id}/queue"),
                Some(token),
                None,
                &[],
            )
            .await?;
        println!(
            "wrk -t2 -c64 -d10s --latency -H 'authorization: Bearer {token}' {}/api/v1/parties/{id}/queue/me",
            client.base
        );
        return Ok(());
    }
    eprintln!(
        "prepared {} users and party {id} in {:.1?}",
        n,
        setup.elapsed()
    );
    *stats.lock().expect("stats lock") = Stats::default();

    let pass_ttl_ms: i64 = std::env::var("GONGGU_QUEUE_PASS_TTL_SECS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(300)
        * 1000;
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut launched = 0;
    while launched < args.users {
        let step = args.ramp_step.min(args.users - launched);
        for token in &tokens[launched..launched + step] {
            tasks.push(tokio::spawn(virtual_user(
                client.clone(),
                token.clone(),
                id,
                args.clone(),
                pass_ttl_ms,
            )));
        }
        launched += step;
        if launched < args.users {
            tokio::time::sleep(Duration::from_secs(args.ramp_every_secs)).await;
        }
    }
    for t in tasks {
        t.await?;
    }
    let wall = started.elapsed();
    report(&stats.lock().expect("stats lock"), wall, &args);
    Ok(())
}

fn report(s: &Stats, wall: Duration, args: &Args) {
    println!(
        "mode {:?}, {} users (+{} every {} s), capacity {}, rate {}/min",
        args.mode,
        args.users,
        args.ramp_step,
        args.ramp_every_secs,
        args.capacity,
        args.rate_per_min
    );
    println!(
        "wall {:.1?}, {} requests, {:.0} requests/s",
        wall,
        s.requests,
        s.requests as f64 / wall.as_secs_f64()
    );
    if let Some(l) = Summary::of(&s.latencies) {
        println!(
            "latency mean {:.2?} p50 {:.2?} p99 {:.2?} max {:.2?}",
            l.mean, l.p50, l.p99, l.max
        );
    }
    for (kind, samples) in &s.by_kind {
        if let Some(l) = Summary::of(samples) {
            println!(
                "  {kind}: n {} p50 {:.2?} p99 {:.2?} max {:.2?}",
                l.n, l.p50, l.p99, l.max
            );
        }
    }
    println!("errors {}", s.errors.len());
    for e in s.errors.iter().take(10) {
        println!("  {e}");
    }
    println!(
        "admitted {}, booked {}, refused after admission {}, never admitted {}",
        s.admissions.len(),
        s.bookings,
        s.refused_after_admission,
        s.not_admitted
    );
    // FIFO check without false alarms: when A's entry was answered before B's was sent, A entered
    // first for certain, and must not have been admitted after B (same millisecond allowed).
    let mut pairs = 0usize;
    let mut inversions = 0usize;
    for a in &s.admissions {
        for b in &s.admissions {
            if a.1 < b.0 {
                pairs += 1;
                if a.2 > b.2 {
                    inversions += 1;
                }
            }
        }
    }
    println!("FIFO: {inversions} of {pairs} ordered entry pairs admitted out of order");
    if let Some(p) = Summary::of(&s.push_delays) {
        println!(
            "admission to client (SSE): mean {:.0?} p50 {:.0?} p99 {:.0?} max {:.0?}",
            p.mean, p.p50, p.p99, p.max
        );
    }
}
