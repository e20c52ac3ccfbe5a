//! Runs the mock of the public APIs, for benchmarks and manual runs.
//!
//! ```text
//! gonggu-mock-public-api [--fixtures DIR] [--synthetic-items N] [--host 127.0.0.1] [--port 0]
//!     [--latency-ms N] [--service-key KEY] [--max-rows N] [--fault SPEC]...
//!     [--numbers-as-strings] [--bare-array] [--empty-items string|missing|object]
//! ```
//! `--fixtures DIR` serves `DIR/items.csv` and `DIR/markets.csv`; `--synthetic-items N` serves N
//! generated items instead. Fault specs are `KIND[@PAGE][xN]` (see `ingest::mock::FaultRule`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ingest::mock::{EmptyItems, FaultRule, MockConfig, MockData, MockServer};

const USAGE: &str = "usage: gonggu-mock-public-api [--fixtures DIR | --synthetic-items N] [--host ADDR] [--port N] \
[--latency-ms N] [--service-key KEY] [--max-rows N] [--fault KIND[@PAGE][xN]]... [--numbers-as-strings] [--bare-array] \
[--empty-items string|missing|object]";

struct Args {
    fixtures: Option<PathBuf>,
    synthetic: Option<usize>,
    addr: SocketAddr,
    cfg: MockConfig,
}

fn value<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: bad value {value:?}"))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        fixtures: None,
        synthetic: None,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        cfg: MockConfig::default(),
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--fixtures" => out.fixtures = Some(value(&flag, args.next())?),
            "--synthetic-items" => out.synthetic = Some(value(&flag, args.next())?),
            "--host" => out.addr.set_ip(value::<IpAddr>(&flag, args.next())?),
            "--port" => out.addr.set_port(value(&flag, args.next())?),
            "--latency-ms" => out.cfg.latency = Duration::from_millis(value(&flag, args.next())?),
            "--service-key" => out.cfg.service_key = Some(value(&flag, args.next())?),
            "--max-rows" => out.cfg.max_rows_per_page = value(&flag, args.next())?,
            "--fault" => out
                .cfg
                .faults
                .push(value::<String>(&flag, args.next())?.parse::<FaultRule>()?),
            "--numbers-as-strings" => out.cfg.style.numbers_as_strings = true,
            "--bare-array" => out.cfg.style.bare_array = true,
            "--empty-items" => {
                out.cfg.style.empty_items = match value::<String>(&flag, args.next())?.as_str() {
                    "string" => EmptyItems::EmptyString,
                    "missing" => EmptyItems::Missing,
                    "object" => EmptyItems::EmptyObject,
                    other => return Err(format!("--empty-items: bad value {other:?}")),
                }
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let data = match (&args.fixtures, args.synthetic) {
        (_, Some(n)) => MockData::synthetic_items(n),
        (Some(dir), None) => match MockData::load_dir(dir) {
            Ok(data) => data,
            Err(error) => {
                eprintln!("loading {}: {error}", dir.display());
                return ExitCode::FAILURE;
            }
        },
        (None, None) => MockData::synthetic_items(1_000),
    };
    let (items, markets) = (data.goods.len(), data.stores.len());
    let server = match MockServer::bind(args.addr, data, args.cfg).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("binding {}: {error}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    println!(
        "gonggu mock public API on http://{} ({items} items, {markets} markets)",
        server.addr()
    );
    println!("  paged items:   {}", server.items_url());
    println!("  paged markets: {}", server.markets_url());
    println!("  price root:    {}", server.price_url());
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("waiting for ctrl-c: {error}");
    }
    println!("{} requests served", server.requests());
    server.shutdown().await;
    ExitCode::SUCCESS
}
