//! Party chat under load, on loopback: `--sockets N` members in parties of 10, one WebSocket each,
//! every member sending a message every 10 s for `--secs` seconds. Prints messages sent and
//! delivered per second, send-to-receive latency (p50, p99, max, over every delivery, the
//! sender's own acknowledgement included), and the server's RSS per idle socket (the growth of the
//! servers' resident memory from before the sockets opened to after, divided by their number).
//!
//! The servers are real `gonggu serve` processes (built with `--release`), so their memory is
//! theirs alone; this process seeds the data (users straight in SQL, parties and bookings over
//! HTTP) and plays the clients.
//!
//! ```sh
//! cargo build --release -p gonggu-api --bin gonggu --example chat_bench
//! target/release/examples/chat_bench --sockets 5000 --secs 60 --backend embedded
//! GONGGU_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//! GONGGU_TEST_REDIS_URL=redis://127.0.0.1:6379 \
//!   target/release/examples/chat_bench --sockets 5000 --secs 60 --backend scaled
//! ```
//!
//! `--backend scaled` runs two instances on one PostgreSQL schema and one Redis prefix; the sockets
//! of each party alternate between them, so most deliveries cross the bus.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use store::Db;
use support::{arg, pct, Backend};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const PARTY_SIZE: usize = 10;
const SEND_EVERY: Duration = Duration::from_secs(10);
/// Sockets opening at once.
const CONNECTING: usize = 64;

/// One member: token, party, and the port of the instance it talks to.
#[derive(Clone)]
struct Member {
    token: String,
    party: i64,
    port: u16,
}

/// Users straight in SQL (no argon2), parties and bookings over HTTP.
async fn seed(db: &Db, client: &reqwest::Client, ports: &[u16], n: usize) -> Result<Vec<Member>> {
    let keys = support::token_keys();
    let (markets, item) = support::catalog(db, 1).await?;
    let body = support::party_body(markets[0], item, "벤치 공구", PARTY_SIZE);
    let mut members = Vec::with_capacity(n);
    let base = format!("http://127.0.0.1:{}", ports[0]);
    for p in 0..n.div_ceil(PARTY_SIZE) {
        let mut party = 0;
        for m in 0..PARTY_SIZE.min(n - p * PARTY_SIZE) {
            let (_, token) = support::user(db, &keys, &format!("chat-{p}-{m}")).await?;
            // The first of each ten leads the party; the others book a seat.
            let req = if m == 0 {
                client.post(format!("{base}/api/v1/parties")).json(&body)
            } else {
                client
                    .post(format!("{base}/api/v1/parties/{party}/bookings"))
                    .json(&json!({}))
            };
            let res = req.bearer_auth(&token).send().await?;
            if !res.status().is_success() {
                bail!("seeding: {} {}", res.status(), res.text().await?);
            }
            if m == 0 {
                let created: Value = res.json().await?;
                party = created["id"].as_i64().context("party id")?;
            }
            members.push(Member {
                token,
                party,
                port: ports[m % ports.len()],
            });
        }
    }
    Ok(members)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(member: &Member) -> Result<Ws> {
    let mut req = format!(
        "ws://127.0.0.1:{}/api/v1/parties/{}/chat/ws",
        member.port, member.party
    )
    .into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {}", member.token).parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(ws)
}

/// What the clients measured.
#[derive(Default)]
struct Tally {
    sent: u64,
    /// Send-to-receive latencies, in microseconds.
    latencies: Vec<u64>,
    errors: u64,
}

/// One client: sends every 10 s (from a staggered start) until `end`, and times every message
/// it receives by the send time carried in its text.
async fn client(i: usize, mut ws: Ws, epoch: Instant, end: Instant, tally: Arc<Mutex<Tally>>) {
    let mut local = Tally::default();
    let offset = SEND_EVERY.mul_f64((i % 1000) as f64 / 1000.0);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, SEND_EVERY);
    let stop = tokio::time::sleep_until(end.into());
    tokio::pin!(stop);
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticks.tick() => {
                let at = epoch.elapsed().as_micros() as u64;
                let frame = json!({"type": "send", "client_msg_id": format!("{i}-{n}"), "text": at.to_string()});
                n += 1;
                if ws.send(WsMessage::Text(frame.to_string().into())).await.is_err() {
                    local.errors += 1;
                    break;
                }
                local.sent += 1;
            }
            msg = ws.next() => match msg {
                Some(Ok(WsMessage::Text(text))) => {
                    let now = epoch.elapsed().as_micros() as u64;
                    let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                    match v["type"].as_str() {
                        Some("message") => {
                            if let Some(at) = v["text"].as_str().and_then(|t| t.parse::<u64>().ok()) {
                                local.latencies.push(now.saturating_sub(at));
                            }
                        }
                        Some("error") => local.errors += 1,
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                _ => { local.errors += 1; break; }
            }
        }
    }
    let _ = ws.close(None).await;
    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
    t.sent += local.sent;
    t.errors += local.errors;
    t.latencies.extend(local.latencies);
}

#[tokio::main]
async fn main() -> Result<()> {
    let sockets: usize = arg("--sockets").map_or(Ok(5_000), |s| s.parse())?;
    let secs: u64 = arg("--secs").map_or(Ok(60), |s| s.parse())?;
    let backend = arg("--backend").unwrap_or_else(|| "embedded".into());
    let bin = arg("--bin").unwrap_or_else(|| "target/release/gonggu".into());
    if sockets == 0 || sockets > 20_000 || secs == 0 || secs > 600 {
        bail!("--sockets 1..=20000, --secs 1..=600");
    }
    let dir = tempfile::tempdir()?;
    let http = reqwest::Client::new();
    let backend = Backend::new(&backend, dir.path()).await?;
    let instances = if backend.redis.is_some() { 2 } else { 1 };
    let servers = backend
        .start(&bin, dir.path(), instances, sockets, &[])
        .await?;
    let ports = servers.ports();
    let db = Db::connect(&backend.db_url, 4).await?;
    let started = Instant::now();
    let members = seed(&db, &http, &ports, sockets).await?;
    eprintln!(
        "seeded {} members in {} parties in {:.1} s",
        members.len(),
        members.len().div_ceil(PARTY_SIZE),
        started.elapsed().as_secs_f64()
    );
    // Let the chat consumer write the join messages before measuring memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = servers.rss_kib();

    let started = Instant::now();
    let mut opened = Vec::with_capacity(members.len());
    for chunk in members.chunks(CONNECTING) {
        let tries = chunk.iter().map(open);
        for ws in futures::future::join_all(tries).await {
            opened.push(ws?);
        }
    }
    eprintln!(
        "opened {} sockets in {:.1} s",
        opened.len(),
        started.elapsed().as_secs_f64()
    );
    // Idle: the replays and presence frames went out to the sockets' buffers.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = servers.rss_kib();
    let per_socket = (after.saturating_sub(before)) as f64 * 1024.0 / opened.len() as f64;

    let tally = Arc::new(Mutex::new(Tally::default()));
    let epoch = Instant::now();
    let end = epoch + Duration::from_secs(secs);
    let tasks: Vec<_> = opened
        .into_iter()
        .enumerate()
        .map(|(i, ws)| tokio::spawn(client(i, ws, epoch, end, tally.clone())))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let took = epoch.elapsed().as_secs_f64();
    let peak = servers.rss_kib();
    let mut t = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    t.latencies.sort_unstable();
    println!(
        "backend={} instances={instances} sockets={sockets} secs={secs}\n\
         sent {} ({:.0}/s), delivered {} ({:.0}/s), errors {}\n\
         latency ms: p50 {:.1} p99 {:.1} max {:.1}\n\
         server RSS: {:.1} MiB before sockets, {:.1} MiB idle with them ({:.1} KiB per idle socket), {:.1} MiB after the load",
        backend.name,
        t.sent,
        t.sent as f64 / took,
        t.latencies.len(),
        t.latencies.len() as f64 / took,
        t.errors,
        pct(&t.latencies, 0.50),
        pct(&t.latencies, 0.99),
        t.latencies.last().map_or(0.0, |m| *m as f64 / 1000.0),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        per_socket / 1024.0,
        peak as f64 / 1024.0,
    );
    drop(servers);
    Ok(())
}
