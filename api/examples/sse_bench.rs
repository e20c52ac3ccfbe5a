//! Notification streams under load, on loopback: `--streams N` users, each with one open SSE
//! stream (`GET /api/v1/me/notifications/stream`) on one `gonggu serve` instance. Prints the
//! server's RSS per idle stream (its resident memory's growth from before the streams opened to
//! after, divided by their number), then the latency from a party's creation request to each
//! stream receiving the notification it causes:
//!
//! - **steady**: `--rate` parties a second for `--secs` seconds, each at one of `N / 100` markets
//!   that 100 of the users wishlisted (about `rate × 100` notifications a second);
//! - **burst**: then one party whose title matches a keyword every user wishlisted: N
//!   notifications from one event, all written in one batch of the `notifications` consumer.
//!
//! The clock starts when the bench sends the create request, before the server commits the party
//! and its event, so each figure is an upper bound of commit-to-client. Every stream counts what
//! it receives, so a lost or repeated notification shows as a mismatch with what was expected.
//!
//! ```sh
//! cargo build --release -p gonggu-api --bin gonggu --example sse_bench
//! target/release/examples/sse_bench --streams 10000 --secs 30 --backend embedded
//! GONGGU_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//! GONGGU_TEST_REDIS_URL=redis://127.0.0.1:6379 \
//!   target/release/examples/sse_bench --streams 10000 --secs 30 --backend scaled
//! ```

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use store::wishlists::Wish;
use store::{Clock, Db};
use support::{arg, pct, Backend};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Users per market wishlist.
const PER_MARKET: usize = 100;
/// The keyword every user wishlists; only the burst's party title has it.
const KEYWORD: &str = "대용량";
/// Streams opening at once.
const CONNECTING: usize = 64;

/// When each round's create request was sent (µs since the epoch of the run), by round.
struct Rounds {
    sent_at: Vec<AtomicU64>,
}

impl Rounds {
    fn new(n: usize) -> Self {
        Rounds {
            sent_at: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// What the streams measured.
#[derive(Default)]
struct Tally {
    /// (round, latency in µs) of every notification received.
    seen: Vec<(usize, u64)>,
    /// Notifications received twice (same seq on one stream).
    repeated: u64,
    /// Streams that ended before the bench did.
    dropped: u64,
}

/// One open stream: the response head is read, the body is next.
struct Stream {
    reader: BufReader<TcpStream>,
}

async fn open(port: u16, token: &str) -> Result<Stream> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let req = format!(
        "GET /api/v1/me/notifications/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await?;
    let mut reader = BufReader::with_capacity(4096, tcp);
    let mut status = String::new();
    reader.read_line(&mut status).await?;
    if !status.contains(" 200 ") {
        bail!("stream refused: {}", status.trim());
    }
    let mut chunked = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            bail!("connection closed in the response head");
        }
        if line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
    }
    if !chunked {
        bail!("expected a chunked event stream");
    }
    Ok(Stream { reader })
}

impl Stream {
    /// Appends the next chunk of the body to `buf`; false at the end of the body.
    async fn chunk(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Ok(false);
        }
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .with_context(|| format!("chunk size `{}`", line.trim()))?;
        if size == 0 {
            return Ok(false);
        }
        let start = buf.len();
        buf.resize(start + size, 0);
        self.reader.read_exact(&mut buf[start..]).await?;
        let mut crlf = [0u8; 2];
        self.reader.read_exact(&mut crlf).await?;
        Ok(true)
    }
}

/// The round a notification belongs to: its body is the party's title, `… #<round>`.
fn round_of(data: &str) -> Option<(i64, usize)> {
    let v: Value = serde_json::from_str(data).ok()?;
    let seq = v["seq"].as_i64()?;
    let round = v["body"].as_str()?.rsplit('#').next()?.parse().ok()?;
    Some((seq, round))
}

/// Reads one stream until `stop`, timing every notification against its round's send time.
async fn follow(
    mut stream: Stream,
    epoch: Instant,
    rounds: Arc<Rounds>,
    received: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    tally: Arc<Mutex<Tally>>,
) {
    let mut local = Tally::default();
    let mut buf = Vec::new();
    let mut last_seq = 0;
    loop {
        let more = tokio::select! {
            more = stream.chunk(&mut buf) => more,
            _ = stop.wait_for(|s| *s) => break,
        };
        if !matches!(more, Ok(true)) {
            local.dropped += 1;
            break;
        }
        let now = epoch.elapsed().as_micros() as u64;
        // Whole events end with a blank line; a partial one waits for the next chunk.
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let mut name = "";
            let mut data = String::new();
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if name != "notification" {
                continue;
            }
            let Some((seq, round)) = round_of(&data) else {
                continue;
            };
            if seq <= last_seq {
                local.repeated += 1;
                continue;
            }
            last_seq = seq;
            let sent = rounds
                .sent_at
                .get(round)
                .map_or(0, |t| t.load(Ordering::Acquire));
            local.seen.push((round, now.saturating_sub(sent)));
            received.fetch_add(1, Ordering::Relaxed);
        }
    }
    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
    t.seen.extend(local.seen);
    t.repeated += local.repeated;
    t.dropped += local.dropped;
}

/// Creates one party over HTTP as `token`, after stamping its round's send time.
async fn create(
    http: reqwest::Client,
    url: String,
    token: String,
    body: Value,
    round: usize,
    epoch: Instant,
    rounds: Arc<Rounds>,
) -> Result<()> {
    rounds.sent_at[round].store(epoch.elapsed().as_micros() as u64, Ordering::Release);
    let res = http.post(url).bearer_auth(token).json(&body).send().await?;
    if !res.status().is_success() {
        bail!("create: {} {}", res.status(), res.text().await?);
    }
    Ok(())
}

/// Waits until `received` reaches `want` or `limit` passes.
async fn drain(received: &AtomicU64, want: u64, limit: Duration) {
    let until = Instant::now() + limit;
    while received.load(Ordering::Relaxed) < want && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn summary(label: &str, mut lat: Vec<u64>, expected: u64, took: f64) {
    lat.sort_unstable();
    println!(
        "{label}: received {} of {expected} ({:.0}/s); latency ms: p50 {:.1} p99 {:.1} max {:.1}",
        lat.len(),
        lat.len() as f64 / took,
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        lat.last().map_or(0.0, |m| *m as f64 / 1000.0),
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let streams: usize = arg("--streams").map_or(Ok(10_000), |s| s.parse())?;
    let secs: usize = arg("--secs").map_or(Ok(30), |s| s.parse())?;
    let rate: usize = arg("--rate").map_or(Ok(10), |s| s.parse())?;
    let backend = arg("--backend").unwrap_or_else(|| "embedded".into());
    let bin = arg("--bin").unwrap_or_else(|| "target/release/gonggu".into());
    if streams == 0 || streams > 15_000 || secs > 600 || rate == 0 || rate > 100 {
        bail!("--streams 1..=15000, --secs 0..=600, --rate 1..=100");
    }
    let dir = tempfile::tempdir()?;
    let backend = Backend::new(&backend, dir.path()).await?;
    let servers = backend.start(&bin, dir.path(), 1, streams, &[]).await?;
    let port = servers.ports()[0];
    let db = Db::connect(&backend.db_url, 4).await?;

    let started = Instant::now();
    let markets_n = streams.div_ceil(PER_MARKET);
    let (markets, item) = support::catalog(&db, markets_n).await?;
    let keys = support::token_keys();
    let keyword = Wish::Keyword(store::wishlists::keyword(KEYWORD)?);
    let now = Clock::system().now_ms();
    let mut tokens = Vec::with_capacity(streams);
    for i in 0..streams {
        let (id, token) = support::user(&db, &keys, &format!("sse-{i}")).await?;
        for wish in [Wish::Market(markets[i % markets_n]), keyword.clone()] {
            store::wishlists::create(&db, id, &wish, now)
                .await
                .map_err(|e| anyhow::anyhow!("wishlist: {e}"))?;
        }
        tokens.push(token);
    }
    let steady_rounds = secs * rate;
    let mut leaders = Vec::with_capacity(steady_rounds + 1);
    for r in 0..=steady_rounds {
        leaders.push(
            support::user(&db, &keys, &format!("sse-leader-{r}"))
                .await?
                .1,
        );
    }
    eprintln!(
        "seeded {streams} users with two wishlists each, {markets_n} markets, in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let before = servers.rss_kib();
    let started = Instant::now();
    let mut opened = Vec::with_capacity(streams);
    for chunk in tokens.chunks(CONNECTING) {
        for s in futures::future::join_all(chunk.iter().map(|t| open(port, t))).await {
            opened.push(s?);
        }
    }
    eprintln!(
        "opened {} streams in {:.1} s",
        opened.len(),
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = servers.rss_kib();
    let per_stream = idle.saturating_sub(before) as f64 * 1024.0 / streams as f64;

    let epoch = Instant::now();
    let rounds = Arc::new(Rounds::new(steady_rounds + 1));
    let received = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let (stop_tx, stop) = watch::channel(false);
    let followers: Vec<_> = opened
        .into_iter()
        .map(|s| {
            tokio::spawn(follow(
                s,
                epoch,
                rounds.clone(),
                received.clone(),
                stop.clone(),
                tally.clone(),
            ))
        })
        .collect();

    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/v1/parties");
    // Every user wishlists one market: a steady round reaches the users of its market.
    let per_round = |r: usize| {
        (0..streams)
            .filter(|i| i % markets_n == r % markets_n)
            .count()
    };
    let expected_steady: u64 = (0..steady_rounds).map(|r| per_round(r) as u64).sum();
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate as u32);
    let mut creates = Vec::with_capacity(steady_rounds);
    let steady_start = Instant::now();
    for (r, leader) in leaders.iter().enumerate().take(steady_rounds) {
        ticks.tick().await;
        let body = support::party_body(markets[r % markets_n], item, &format!("벤치 공구 #{r}"), 6);
        creates.push(tokio::spawn(create(
            http.clone(),
            url.clone(),
            leader.clone(),
            body,
            r,
            epoch,
            rounds.clone(),
        )));
    }
    for c in creates {
        c.await??;
    }
    drain(&received, expected_steady, Duration::from_secs(30)).await;
    let steady_took = steady_start.elapsed().as_secs_f64();
    let steady_seen = received.load(Ordering::Relaxed);

    // The burst: one party every user's keyword matches.
    let burst = steady_rounds;
    let burst_start = Instant::now();
    let body = support::party_body(
        markets[0],
        item,
        &format!("{KEYWORD} 벤치 공구 #{burst}"),
        6,
    );
    create(
        http.clone(),
        url.clone(),
        leaders[burst].clone(),
        body,
        burst,
        epoch,
        rounds.clone(),
    )
    .await?;
    drain(
        &received,
        steady_seen + streams as u64,
        Duration::from_secs(120),
    )
    .await;
    let burst_took = burst_start.elapsed().as_secs_f64();
    let loaded = servers.rss_kib();
    let _ = stop_tx.send(true);
    for f in followers {
        let _ = f.await;
    }
    let t = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    let (burst_lat, steady_lat): (Vec<_>, Vec<_>) = t.seen.iter().partition(|(r, _)| *r == burst);
    println!(
        "backend={} streams={streams} rate={rate}/s secs={secs}\n\
         server RSS: {:.1} MiB before streams, {:.1} MiB idle with them ({:.1} KiB per idle stream), \
         {:.1} MiB after the load; repeated {}, streams dropped {}",
        backend.name,
        before as f64 / 1024.0,
        idle as f64 / 1024.0,
        per_stream / 1024.0,
        loaded as f64 / 1024.0,
        t.repeated,
        t.dropped,
    );
    summary(
        "steady",
        steady_lat.into_iter().map(|(_, l)| l).collect(),
        expected_steady,
        steady_took,
    );
    summary(
        "burst",
        burst_lat.into_iter().map(|(_, l)| l).collect(),
        streams as u64,
        burst_took,
    );
    drop(servers);
    Ok(())
}
