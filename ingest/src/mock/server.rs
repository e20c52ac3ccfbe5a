//! The mock's axum server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use percent_encoding::percent_decode_str;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::fault::Fault;
use super::render::{self, PageView};
use super::{Dataset, MockConfig, MockData};

/// Where the paged item rows are served.
pub const ITEMS_PATH: &str = "/items";
/// Where the paged market rows are served.
pub const MARKETS_PATH: &str = "/markets";
/// The consumer-price service root.
pub const PRICE_ROOT: &str = "/ProductPriceInfoService";
/// The consumer-price goods list, as published (with `.do`).
pub const PRICE_GOODS_PATH: &str = "/ProductPriceInfoService/getProductInfoSvc.do";
/// The consumer-price store list, as published (with `.do`).
pub const PRICE_STORES_PATH: &str = "/ProductPriceInfoService/getStoreInfoSvc.do";

/// A running mock; stops when dropped or shut down.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

struct Shared {
    data: MockData,
    cfg: MockConfig,
    requests: AtomicU64,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    attempts: Mutex<HashMap<(String, u32), u32>>,
}

/// Counts a request as in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn new(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MockServer {
    /// Starts on `127.0.0.1` at a free port.
    pub async fn start(data: MockData, cfg: MockConfig) -> std::io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), data, cfg).await
    }

    /// Starts on the given address.
    pub async fn bind(addr: SocketAddr, data: MockData, cfg: MockConfig) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            data,
            cfg,
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            attempts: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route(ITEMS_PATH, get(paged_items))
            .route(MARKETS_PATH, get(paged_markets))
            .route(PRICE_GOODS_PATH, get(price_goods))
            .route(PRICE_STORES_PATH, get(price_stores))
            .fallback(no_such_service)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                rx.await.ok();
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "mock server failed");
            }
        });
        Ok(Self {
            addr,
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The paged items operation.
    pub fn items_url(&self) -> String {
        self.url(ITEMS_PATH)
    }

    /// The paged markets operation.
    pub fn markets_url(&self) -> String {
        self.url(MARKETS_PATH)
    }

    /// The consumer-price service root.
    pub fn price_url(&self) -> String {
        self.url(PRICE_ROOT)
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// The most requests that were being answered at the same moment.
    pub fn peak_in_flight(&self) -> u64 {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Stops accepting connections and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).ok();
        }
        if let Some(task) = self.task.take() {
            task.await.ok();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).ok();
        }
    }
}

type AppState = State<Arc<Shared>>;

async fn paged_items(State(shared): AppState, RawQuery(query): RawQuery) -> Response {
    paged(
        &shared,
        ITEMS_PATH,
        |d| &d.goods,
        query.as_deref().unwrap_or(""),
    )
    .await
}

async fn paged_markets(State(shared): AppState, RawQuery(query): RawQuery) -> Response {
    paged(
        &shared,
        MARKETS_PATH,
        |d| &d.stores,
        query.as_deref().unwrap_or(""),
    )
    .await
}

async fn price_goods(State(shared): AppState, uri: Uri, RawQuery(query): RawQuery) -> Response {
    price(
        &shared,
        uri.path(),
        &shared.data.goods,
        "iros.openapi.service.vo.goodVO",
        query.as_deref().unwrap_or(""),
    )
    .await
}

async fn price_stores(State(shared): AppState, uri: Uri, RawQuery(query): RawQuery) -> Response {
    price(
        &shared,
        uri.path(),
        &shared.data.stores,
        "iros.openapi.service.vo.entpInfoVO",
        query.as_deref().unwrap_or(""),
    )
    .await
}

/// An unknown path. Under the consumer-price root it is an HTTP 404 page: the service has only
/// the operations it publishes, so a client calling a list operation without its `.do` must fail
/// here as it would there. Elsewhere the data.go.kr gateway's error 12 (no such service).
async fn no_such_service(State(shared): AppState, uri: Uri) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let path = uri.path();
    if path == PRICE_ROOT || path.starts_with(&format!("{PRICE_ROOT}/")) {
        let html = "<html><body><h1>404 Not Found</h1></body></html>";
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html")],
            html,
        )
            .into_response();
    }
    xml(StatusCode::OK, render::gateway_error("12"))
}

/// Raw (still encoded) query pairs.
fn pairs(query: &str) -> Vec<(&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

fn param<'q>(pairs: &[(&'q str, &'q str)], name: &str) -> Option<&'q str> {
    pairs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// True when the key arrived encoded exactly once: only unreserved characters and `%XX` escapes,
/// and one decoding gives the expected key.
fn key_ok(expected: &Option<String>, pairs: &[(&str, &str)]) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let Some(raw) = param(pairs, "serviceKey") else {
        return false;
    };
    let well_formed = raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b));
    well_formed
        && percent_decode_str(raw)
            .decode_utf8()
            .is_ok_and(|k| k == expected.as_str())
}

impl Shared {
    /// Counts the request and returns the fault to inject, if any.
    fn begin(&self, path: &str, page: u32) -> Option<Fault> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
            let n = attempts.entry((path.to_owned(), page)).or_insert(0);
            *n += 1;
            *n
        };
        self.cfg
            .faults
            .iter()
            .find(|rule| rule.applies(path, page, attempt))
            .map(|rule| rule.fault.clone())
    }
}

async fn paged(
    shared: &Shared,
    path: &str,
    dataset: fn(&MockData) -> &Dataset,
    query: &str,
) -> Response {
    let pairs = pairs(query);
    let number = |name: &str, default: u32| {
        param(&pairs, name)
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(default)
    };
    let page_no = number("pageNo", 1).max(1);
    let num_of_rows = number("numOfRows", 10).clamp(1, shared.cfg.max_rows_per_page.max(1));
    let json = ["type", "_type", "returnType", "dataType"]
        .iter()
        .any(|name| param(&pairs, name).is_some_and(|v| v.eq_ignore_ascii_case("json")));
    let fault = shared.begin(path, page_no);
    let _in_flight = InFlight::new(shared);
    tokio::time::sleep(shared.cfg.latency).await;
    if !key_ok(&shared.cfg.service_key, &pairs) {
        return xml(StatusCode::OK, render::gateway_error("30"));
    }
    let data = dataset(&shared.data);
    let start = (page_no as usize - 1).saturating_mul(num_of_rows as usize);
    let rows = data.slice(start, start.saturating_add(num_of_rows as usize));
    let empty = matches!(fault, Some(Fault::EmptyPage));
    let view = PageView {
        rows: if empty { &[] } else { &rows },
        page_no,
        num_of_rows,
        total_count: data.len() as u64,
    };
    let body = if json {
        render::paged_json(&view, &shared.cfg.style)
    } else {
        render::paged_xml(&view, &shared.cfg.style)
    };
    match fault {
        Some(fault) => inject(fault, json, body).await,
        None => reply(StatusCode::OK, json, body),
    }
}

async fn price(
    shared: &Shared,
    path: &str,
    data: &Dataset,
    row_element: &str,
    query: &str,
) -> Response {
    let pairs = pairs(query);
    let fault = shared.begin(path, 1);
    tokio::time::sleep(shared.cfg.latency).await;
    if !key_ok(&shared.cfg.service_key, &pairs) {
        return xml(StatusCode::OK, render::gateway_error("30"));
    }
    let rows = data.slice(0, data.len());
    let empty = matches!(fault, Some(Fault::EmptyPage));
    let body = render::price_xml(if empty { &[] } else { &rows }, row_element);
    match fault {
        Some(fault) => inject(fault, false, body).await,
        None => xml(StatusCode::OK, body),
    }
}

async fn inject(fault: Fault, json: bool, body: String) -> Response {
    match fault {
        Fault::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let html = format!("<html><body><h1>{status}</h1></body></html>");
            ([(header::CONTENT_TYPE, "text/html")], (status, html)).into_response()
        }
        Fault::RateLimited => xml(StatusCode::TOO_MANY_REQUESTS, render::gateway_error("22")),
        Fault::QuotaCode => reply(
            StatusCode::OK,
            json,
            render::result_code("22", render::result_message("22"), json),
        ),
        Fault::ResultCode(code) => {
            let message = render::result_message(&code);
            reply(
                StatusCode::OK,
                json,
                render::result_code(&code, message, json),
            )
        }
        Fault::Gateway { status, code } => xml(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            render::gateway_error(&code),
        ),
        Fault::Truncated => truncated(json, body),
        Fault::Malformed => {
            let cut = body.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|i| body.is_char_boundary(*i))
                .unwrap_or(0);
            reply(StatusCode::OK, json, body[..cut].to_owned())
        }
        Fault::EmptyPage => reply(StatusCode::OK, json, body),
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            reply(StatusCode::OK, json, body)
        }
    }
}

/// Announces the full length, sends half, then fails the stream so the connection is cut.
fn truncated(json: bool, body: String) -> Response {
    let full = body.len();
    let half = Bytes::from(body.into_bytes()).slice(..full / 2);
    // The pause lets the head and the first half reach the client before the connection is cut.
    let cut = async {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "mock: truncated body",
        ))
    };
    let chunks = futures::stream::once(async move { Ok(half) }).chain(futures::stream::once(cut));
    let mut response = Response::new(Body::from_stream(chunks));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type(json));
    headers.insert(header::CONTENT_LENGTH, full.into());
    response
}

fn content_type(json: bool) -> header::HeaderValue {
    header::HeaderValue::from_static(if json {
        "application/json;charset=UTF-8"
    } else {
        "text/xml;charset=UTF-8"
    })
}

fn reply(status: StatusCode, json: bool, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type(json))], body).into_response()
}

fn xml(status: StatusCode, body: String) -> Response {
    reply(status, false, body)
}
