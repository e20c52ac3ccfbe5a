//! Party chat under load, against running `gonggu serve` instances: `--sockets` members in parties
//! of `--party-size` (each party's leader and members), every member on its own WebSocket (spread
//! over the `--base` instances in turn, so with two instances most messages cross the bus), each
//! sending a message every `--send-every-secs` for `--secs`. Reports messages/s sent and delivered,
//! send-to-receive latency (every delivery, the sender's own acknowledgement included), lost or
//! doubled deliveries, and the servers' memory per idle socket (their RSS with every socket open
//! and idle, less their RSS before, over the sockets).
//!
//! ```text
//! GONGGU_SIGNUP_LIMIT_PER_ADDR=1000000 GONGGU_LOGIN_LIMIT_PER_ADDR=1000000 gonggu serve --no-demo &
//! cargo run --release -p gonggu-bench --bin chat-load -- --base http://127.0.0.1:8080 --pid $!
//! ```
//! The server must know the market and item lists (`gonggu seed`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use gonggu_bench::latency::Summary;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Parser)]
#[command(about = "Party chat load generator")]
struct Args {
    /// The instances' base URLs (repeat the flag); sockets are spread over them in turn.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: Vec<String>,
    /// The instances' process ids (repeat), to read their memory from `/proc`.
    #[arg(long)]
    pid: Vec<u32>,
    /// Sockets, one per member.
    #[arg(long, default_value_t = 5000)]
    sockets: usize,
    /// Members per party (the leader included; a party holds at most 50).
    #[arg(long, default_value_t = 10)]
    party_size: usize,
    /// Each member sends a message this often.
    #[arg(long, default_value_t = 10)]
    send_every_secs: u64,
    /// How long the members send.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Concurrent requests while preparing users and parties (sign-ups hash passwords).
    #[arg(long, default_value_t = 8)]
    setup_concurrency: usize,
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .context("no VmRSS")
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = http.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req
        .send()
        .await
        .with_context(|| format!("request {path}"))?;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Signs user `i` up and logs in; returns (user id, access token).
async fn account(
    http: &reqwest::Client,
    base: &str,
    run: &str,
    i: usize,
) -> anyhow::Result<(i64, String)> {
    let email = format!("chat-{run}-{i}@bench.gonggu.kr");
    let body = json!({"email": email, "password": "bench-password", "nickname": format!("m{i}")});
    let (status, res) = call(
        http,
        base,
        reqwest::Method::POST,
        "/api/v1/auth/signup",
        None,
        Some(body),
    )
    .await?;
    if status != 201 {
        bail!("signup {status}: {res}");
    }
    let id = res["id"].as_i64().context("user id")?;
    let body = json!({"email": email, "password": "bench-password"});
    let (status, res) = call(
        http,
        base,
        reqwest::Method::POST,
        "/api/v1/auth/login",
        None,
        Some(body),
    )
    .await?;
    if status != 200 {
        bail!("login {status}: {res}");
    }
    let token = res["access_token"].as_str().context("access token")?;
    Ok((id, token.to_owned()))
}

/// Party `p`: its leader (the first of its members) creates it, the others join. Returns its id.
async fn party(
    http: &reqwest::Client,
    base: &str,
    members: &[(i64, String)],
    market: i64,
    item: i64,
) -> anyhow::Result<i64> {
    let now = unix_ms();
    let body = json!({
        "market_id": market, "item_id": item, "title": "채팅 부하 공구", "description": "load test",
        "capacity": members.len().max(2), "price_per_share": 3000,
        "meet_at": rfc3339(now + 48 * 3_600_000), "deadline_at": rfc3339(now + 47 * 3_600_000),
    });
    let (status, party) = call(
        http,
        base,
        reqwest::Method::POST,
        "/api/v1/parties",
        Some(&members[0].1),
        Some(body),
    )
    .await?;
    if status != 201 {
        bail!("create party {status}: {party}");
    }
    let id = party["id"].as_i64().context("party id")?;
    for (_, token) in &members[1..] {
        let (status, res) = call(
            http,
            base,
            reqwest::Method::POST,
            &format!("/api/v1/parties/{id}/bookings"),
            Some(token),
            None,
        )
        .await?;
        if !(200..300).contains(&status) {
            bail!("join party {status}: {res}");
        }
    }
    Ok(id)
}

/// What every socket records.
#[derive(Default)]
struct Stats {
    latencies: Vec<Duration>,
    /// Deliveries per (party, seq): each must reach every member once.
    deliveries: HashMap<(i64, i64), usize>,
    sent: usize,
    errors: Vec<String>,
}

type Shared = Arc<Mutex<Stats>>;

/// One member: opens its socket, then (once `go` fires) sends every `every` from a random offset
/// until `until`, and records every message it receives. A sent message's `client_msg_id` carries
/// its send time (µs since `epoch`), so any receiver can time it.
#[allow(clippy::too_many_arguments)]
async fn member(
    url: String,
    token: String,
    party: i64,
    epoch: Instant,
    every: Duration,
    go: tokio::sync::watch::Receiver<Option<Instant>>,
    opened: Arc<AtomicUsize>,
    stats: Shared,
) -> anyhow::Result<()> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("connect")?;
    opened.fetch_add(1, Ordering::Relaxed);
    let (mut tx, mut rx) = socket.split();
    let receiver = {
        let stats = stats.clone();
        async move {
            while let Some(frame) = rx.next().await {
                let Message::Text(text) = frame? else {
                    continue;
                };
                let now = epoch.elapsed();
                let v: Value = serde_json::from_str(&text)?;
                match v["type"].as_str() {
                    Some("message") if v["kind"] == "user" => {
                        let sent_us = v["client_msg_id"]
                            .as_str()
                            .and_then(|id| id.rsplit('-').next()?.parse::<u64>().ok());
                        let mut s = stats.lock().expect("stats lock");
                        if let Some(us) = sent_us {
                            s.latencies
                                .push(now.saturating_sub(Duration::from_micros(us)));
                        }
                        let seq = v["seq"].as_i64().unwrap_or(-1);
                        *s.deliveries.entry((party, seq)).or_default() += 1;
                    }
                    Some("error") => stats
                        .lock()
                        .expect("stats lock")
                        .errors
                        .push(format!("error frame: {text}")),
                    _ => {}
                }
            }
            Ok::<(), anyhow::Error>(())
        }
    };
    let sender = async move {
        let mut go = go;
        let until = loop {
            if let Some(until) = *go.borrow_and_update() {
                break until;
            }
            go.changed().await?;
        };
        let offset = Duration::from_millis(rand_below(every.as_millis() as u64));
        tokio::time::sleep(offset).await;
        let mut n = 0u64;
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if Instant::now() >= until {
                break;
            }
            n += 1;
            let id = format!("{party}-{n}-{}", epoch.elapsed().as_micros());
            let frame = json!({"type": "send", "client_msg_id": id, "text": format!("메시지 {n}")});
            tx.send(Message::text(frame.to_string())).await?;
            stats.lock().expect("stats lock").sent += 1;
        }
        // Let the last messages arrive before closing.
        tokio::time::sleep(Duration::from_secs(2)).await;
        tx.close().await?;
        Ok::<(), anyhow::Error>(())
    };
    let (r, s) = tokio::join!(receiver, sender);
    s?;
    r
}

/// A cheap spread of start offsets (not for anything that needs good randomness).
fn rand_below(n: u64) -> u64 {
    static STATE: AtomicUsize = AtomicUsize::new(0x2545_f491);
    let x = STATE.fetch_add(0x9e37_79b9, Ordering::Relaxed) as u64;
    let x = (x ^ (x >> 13)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    (x ^ (x >> 29)) % n.max(1)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bases: Vec<String> = args
        .base
        .iter()
        .map(|b| b.trim_end_matches('/').to_owned())
        .collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(600))
        .build()?;
    let run = unix_ms().to_string();
    let setup = Instant::now();
    let first = &bases[0];
    let id_at = |v: Value| v["items"][0]["id"].as_i64();
    let (_, markets) = call(
        &http,
        first,
        reqwest::Method::GET,
        "/api/v1/markets?limit=1",
        None,
        None,
    )
    .await?;
    let (_, items) = call(
        &http,
        first,
        reqwest::Method::GET,
        "/api/v1/items?limit=1",
        None,
        None,
    )
    .await?;
    let market = id_at(markets).context("no markets: run `gonggu seed` first")?;
    let item = id_at(items).context("no items: run `gonggu seed` first")?;

    let users: Vec<(i64, String)> = futures::stream::iter(0..args.sockets)
        .map(|i| account(&http, &bases[i % bases.len()], &run, i))
        .buffered(args.setup_concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let groups: Vec<&[(i64, String)]> = users.chunks(args.party_size.max(2)).collect();
    let parties: Vec<i64> = futures::stream::iter(groups.iter().enumerate())
        .map(|(i, g)| party(&http, &bases[i % bases.len()], g, market, item))
        .buffered(args.setup_concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    eprintln!(
        "{} members in {} parties prepared in {:.0?}",
        users.len(),
        parties.len(),
        setup.elapsed()
    );

    let rss = |pids: &[u32]| -> anyhow::Result<u64> { pids.iter().map(|&p| rss_kib(p)).sum() };
    let before = rss(&args.pid)?;
    let stats: Shared = Arc::default();
    let opened = Arc::new(AtomicUsize::new(0));
    let epoch = Instant::now();
    let (go_tx, go) = tokio::sync::watch::channel(None);
    let every = Duration::from_secs(args.send_every_secs);
    let mut tasks = Vec::new();
    let open_deadline = Instant::now() + Duration::from_secs(300);
    for (p, group) in groups.iter().enumerate() {
        for (m, (_, token)) in group.iter().enumerate() {
            let base = &bases[(p * args.party_size + m) % bases.len()];
            let url = format!(
                "{}/api/v1/parties/{}/chat/ws",
                base.replacen("http", "ws", 1),
                parties[p]
            );
            tasks.push(tokio::spawn(member(
                url,
                token.clone(),
                parties[p],
                epoch,
                every,
                go.clone(),
                opened.clone(),
                stats.clone(),
            )));
        }
        // Open the sockets a party at a time, so the handshakes do not all queue at once.
        while opened.load(Ordering::Relaxed) < tasks.len() {
            if Instant::now() > open_deadline || tasks.iter().any(|t| t.is_finished()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    while opened.load(Ordering::Relaxed) < users.len() {
        if Instant::now() > open_deadline || tasks.iter().any(|t| t.is_finished()) {
            bail!(
                "only {} of {} sockets opened",
                opened.load(Ordering::Relaxed),
                users.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Idle for a moment: what the servers hold per open, quiet socket.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss(&args.pid)?;
    let started = Instant::now();
    let _ = go_tx.send(Some(started + Duration::from_secs(args.secs)));
    for t in tasks {
        if let Err(err) = t.await? {
            stats
                .lock()
                .expect("stats lock")
                .errors
                .push(format!("{err:#}"));
        }
    }
    let wall = started.elapsed();
    let s = stats.lock().expect("stats lock");
    let delivered: usize = s.deliveries.values().sum();
    let messages = s.deliveries.len();
    let size = args.party_size.max(2);
    let short = s
        .deliveries
        .values()
        .filter(|&&n| n < size.min(users.len()))
        .count();
    let doubled = s.deliveries.values().filter(|&&n| n > size).count();
    println!(
        "{} sockets in {} parties on {} instance(s), a message per member every {} s for {} s:",
        users.len(),
        parties.len(),
        bases.len(),
        args.send_every_secs,
        args.secs
    );
    println!(
        "  sent {} messages ({:.0}/s), {} stored, {} deliveries ({:.0}/s); {} messages short of \
         a member, {} delivered twice; {} errors",
        s.sent,
        s.sent as f64 / wall.as_secs_f64(),
        messages,
        delivered,
        delivered as f64 / wall.as_secs_f64(),
        short,
        doubled,
        s.errors.len()
    );
    if let Some(l) = Summary::of(&s.latencies) {
        println!(
            "  send to receive: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            l.p50.as_secs_f64() * 1e3,
            l.p99.as_secs_f64() * 1e3,
            l.max.as_secs_f64() * 1e3
        );
    }
    if !args.pid.is_empty() {
        println!(
            "  server RSS {:.1} MiB before the sockets, {:.1} MiB with them idle: {:.1} KiB per \
             idle socket",
            before as f64 / 1024.0,
            idle as f64 / 1024.0,
            idle.saturating_sub(before) as f64 / users.len() as f64
        );
    }
    for e in s.errors.iter().take(5) {
        eprintln!("  error: {e}");
    }
    Ok(())
}
