//! The paged data.go.kr client: page 1 gives `totalCount`, the other pages are fetched concurrently
//! with a bound and yielded as a stream of parsed pages, so memory stays flat however many rows.
//!
//! ```no_run
//! # async fn run() -> Result<(), ingest::FetchError> {
//! use futures::StreamExt;
//! let cfg = ingest::paged::PagedConfig::new("https://apis.data.go.kr/…/getItems", "KEY");
//! let mut pages = ingest::paged::fetch_items(&cfg)?;
//! while let Some(page) = pages.next().await {
//!     let page = page?; // or record the failed page and go on when `is_transient()`
//!     println!("page {}: {} items", page.page_no, page.records.len());
//! }
//! println!("{} calls", pages.stats().snapshot().calls);
//! # Ok(()) }
//! ```

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::{self, BoxStream, Stream, StreamExt};

use crate::envelope::{parse_paged, Reply, Rows};
use crate::error::{FetchError, FetchErrorKind};
use crate::http::{with_key, with_query, CallStats, Caller, HttpSettings};
use crate::key::ServiceKey;
use crate::record::{item_from_goods, market_from_store, ItemRow, MarketRow, Rejection};
use crate::row::Row;

/// Most rows a data.go.kr operation returns per page.
pub const MAX_ROWS_PER_PAGE: u32 = 1000;

/// Where and how to fetch a paged source.
#[derive(Debug, Clone)]
pub struct PagedConfig {
    /// The operation's full address, e.g. `https://apis.data.go.kr/1234567/SomeService/getItems`.
    pub url: String,
    /// The key as the portal shows it, encoded or decoded (see [`ServiceKey`]). Empty: none sent.
    pub service_key: String,
    /// The key's parameter name: `serviceKey` (some operations want `ServiceKey`).
    pub key_param: String,
    /// The format switch's name (`type`, `_type`, `returnType`, `dataType`); empty: not sent.
    pub format_param: String,
    /// The format switch's value (`json`, `JSON`, `xml`). Replies are sniffed whatever is asked.
    pub format_value: String,
    /// `numOfRows`, at most [`MAX_ROWS_PER_PAGE`].
    pub rows_per_page: u32,
    /// Pages in flight at once (default 8).
    pub concurrency: usize,
    /// A page with fewer rows than `totalCount` implies is retried as transient (default on).
    pub check_page_size: bool,
    /// More query pairs the operation needs.
    pub extra_params: Vec<(String, String)>,
    pub http: HttpSettings,
}

impl PagedConfig {
    /// Defaults: `serviceKey`, `type=json`, 1,000 rows a page, 8 pages in flight, 5 retries.
    pub fn new(url: impl Into<String>, service_key: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            service_key: service_key.into(),
            key_param: "serviceKey".into(),
            format_param: "type".into(),
            format_value: "json".into(),
            rows_per_page: MAX_ROWS_PER_PAGE,
            concurrency: 8,
            check_page_size: true,
            extra_params: Vec::new(),
            http: HttpSettings::default(),
        }
    }

    /// The operation's name for messages: the URL's last path segment.
    pub fn operation(&self) -> String {
        let path = self.url.split(['?', '#']).next().unwrap_or_default();
        path.trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("paged")
            .to_owned()
    }
}

/// One parsed page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub page_no: u32,
    /// `totalCount` as page 1 reported it.
    pub total_count: u64,
    /// Every page the run will fetch.
    pub total_pages: u32,
    pub records: Vec<T>,
    pub rejected: Vec<Rejection>,
}

/// The stream of pages of one run, with its call counters.
///
/// After a permanent error (bad key, unknown service, malformed page) the stream ends; a page whose
/// transient failures outlasted the retries is yielded as an error and the other pages go on.
/// Dropping the stream cancels the requests in flight.
pub struct PagedFetch<T> {
    pages: BoxStream<'static, Result<Page<T>, FetchError>>,
    stats: CallStats,
}

impl<T> PagedFetch<T> {
    /// The run's call counters (live: read them at the end for the quota report).
    pub fn stats(&self) -> &CallStats {
        &self.stats
    }
}

impl<T> Stream for PagedFetch<T> {
    type Item = Result<Page<T>, FetchError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.pages.as_mut().poll_next(cx)
    }
}

/// Items from a paged operation whose rows carry the goods fields (`goodId`, `goodName`, …).
pub fn fetch_items(cfg: &PagedConfig) -> Result<PagedFetch<ItemRow>, FetchError> {
    fetch_paged(cfg, item_from_goods)
}

/// Markets from a paged operation whose rows carry the store fields (`entpId`, `entpName`, …).
pub fn fetch_markets(cfg: &PagedConfig) -> Result<PagedFetch<MarketRow>, FetchError> {
    fetch_paged(cfg, market_from_store)
}

/// Any paged operation, with the row mapping given.
pub fn fetch_paged<T: Send + 'static>(
    cfg: &PagedConfig,
    map: fn(&Row) -> Result<T, Rejection>,
) -> Result<PagedFetch<T>, FetchError> {
    let operation = cfg.operation();
    let config_error = |kind| FetchError {
        operation: operation.clone(),
        page: None,
        attempts: 0,
        kind,
    };
    if cfg.rows_per_page == 0 || cfg.rows_per_page > MAX_ROWS_PER_PAGE {
        return Err(config_error(FetchErrorKind::Config(format!(
            "rows per page must be 1..={MAX_ROWS_PER_PAGE}"
        ))));
    }
    let key = ServiceKey::new(&cfg.service_key)
        .map_err(|e| config_error(FetchErrorKind::Config(e.to_string())))?;
    let stats = CallStats::default();
    let caller = Caller::new(&cfg.http, key, stats.clone()).map_err(config_error)?;
    let run = Arc::new(Run {
        caller,
        cfg: cfg.clone(),
        operation,
        map,
    });
    let concurrency = cfg.concurrency.max(1);

    let pages = stream::once(run.clone().first_page())
        .flat_map(move |first| match first {
            Err(error) => stream::iter([Err(error)]).boxed(),
            Ok((page, plan)) => {
                let run = run.clone();
                let rest = stream::iter(2..=plan.pages)
                    .map(move |n| run.clone().page(n, plan))
                    .buffer_unordered(concurrency);
                stream::iter([Ok(page)]).chain(rest).boxed()
            }
        })
        .scan(false, |stopped, item| {
            if *stopped {
                return futures::future::ready(None);
            }
            if let Err(error) = &item {
                *stopped = error.is_permanent();
            }
            futures::future::ready(Some(item))
        })
        .boxed();
    Ok(PagedFetch { pages, stats })
}

/// How the run pages through the source, learned from page 1.
#[derive(Debug, Clone, Copy)]
struct Plan {
    total_count: u64,
    per_page: u64,
    pages: u32,
}

impl Plan {
    /// Rows page `n` should hold.
    fn expected_rows(&self, n: u32) -> u64 {
        let before = u64::from(n - 1) * self.per_page;
        self.total_count.saturating_sub(before).min(self.per_page)
    }
}

struct Run<T> {
    caller: Caller,
    cfg: PagedConfig,
    operation: String,
    map: fn(&Row) -> Result<T, Rejection>,
}

impl<T: Send + 'static> Run<T> {
    fn url(&self, page: u32) -> String {
        let page = page.to_string();
        let rows = self.cfg.rows_per_page.to_string();
        let mut pairs: Vec<(&str, &str)> = vec![("pageNo", &page), ("numOfRows", &rows)];
        if !self.cfg.format_param.is_empty() {
            pairs.push((&self.cfg.format_param, &self.cfg.format_value));
        }
        pairs.extend(
            self.cfg
                .extra_params
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        with_query(
            &with_key(&self.cfg.url, &self.cfg.key_param, &self.caller.key),
            &pairs,
        )
    }

    #[tracing::instrument(name = "ingest.page", skip_all, fields(operation = %self.operation, page = 1))]
    async fn first_page(self: Arc<Self>) -> Result<(Page<T>, Plan), FetchError> {
        let map = self.map;
        let requested = u64::from(self.cfg.rows_per_page);
        let (rows, records, rejected) = self
            .caller
            .get(
                &self.operation,
                Some(1),
                &self.url(1),
                move |status, body| {
                    let rows = interpret(status, &body)?;
                    let (records, rejected) = map_rows(&rows.rows, map);
                    Ok((
                        Rows {
                            rows: Vec::new(),
                            ..rows
                        },
                        records,
                        rejected,
                    ))
                },
            )
            .await?;
        let got = (records.len() + rejected.len()) as u64;
        let total_count = rows.total_count.unwrap_or(got);
        // The server may cap numOfRows below what was asked: page through at its size.
        let mut per_page = requested.min(
            rows.num_of_rows
                .map(u64::from)
                .filter(|n| *n > 0)
                .unwrap_or(requested),
        );
        if got > 0 && got < per_page && got < total_count {
            per_page = got;
        }
        let pages = u32::try_from(total_count.div_ceil(per_page).max(1)).unwrap_or(u32::MAX);
        let plan = Plan {
            total_count,
            per_page,
            pages,
        };
        tracing::info!(operation = %self.operation, total_count, pages, per_page, "paged source");
        Ok((
            Page {
                page_no: 1,
                total_count,
                total_pages: pages,
                records,
                rejected,
            },
            plan,
        ))
    }

    #[tracing::instrument(name = "ingest.page", skip_all, fields(operation = %self.operation, page = n))]
    async fn page(self: Arc<Self>, n: u32, plan: Plan) -> Result<Page<T>, FetchError> {
        let map = self.map;
        let expected = if self.cfg.check_page_size {
            plan.expected_rows(n)
        } else {
            0
        };
        let (records, rejected) = self
            .caller
            .get(
                &self.operation,
                Some(n),
                &self.url(n),
                move |status, body| {
                    let rows = interpret(status, &body)?;
                    let got = rows.rows.len() as u64;
                    if got < expected {
                        return Err(FetchErrorKind::ShortPage { expected, got });
                    }
                    Ok(map_rows(&rows.rows, map))
                },
            )
            .await?;
        Ok(Page {
            page_no: n,
            total_count: plan.total_count,
            total_pages: plan.pages,
            records,
            rejected,
        })
    }
}

/// Reads a paged reply: rows on success, the API's fault or the HTTP status otherwise.
pub(crate) fn interpret(status: u16, body: &[u8]) -> Result<Rows, FetchErrorKind> {
    interpret_with(status, body, parse_paged)
}

pub(crate) fn interpret_with(
    status: u16,
    body: &[u8],
    parse: fn(&[u8]) -> Result<Reply, crate::envelope::ParseError>,
) -> Result<Rows, FetchErrorKind> {
    let ok = (200..300).contains(&status);
    match parse(body) {
        Ok(Reply::Fault(fault)) => Err(FetchErrorKind::Api {
            code: fault.code,
            message: fault.message,
            gateway: fault.gateway,
            http_status: status,
        }),
        Ok(Reply::Rows(rows)) if ok => Ok(rows),
        Err(error) if ok => Err(FetchErrorKind::Malformed(error)),
        Ok(Reply::Rows(_)) | Err(_) => Err(FetchErrorKind::Status { status }),
    }
}

pub(crate) fn map_rows<T>(
    rows: &[Row],
    map: fn(&Row) -> Result<T, Rejection>,
) -> (Vec<T>, Vec<Rejection>) {
    let mut records = Vec::with_capacity(rows.len());
    let mut rejected = Vec::new();
    for row in rows {
        match map(row) {
            Ok(record) => records.push(record),
            Err(rejection) => rejected.push(rejection),
        }
    }
    (records, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_is_the_last_path_segment() {
        assert_eq!(
            PagedConfig::new("https://apis.data.go.kr/1/Svc/getItems?x=1", "").operation(),
            "getItems"
        );
        assert_eq!(
            PagedConfig::new("http://127.0.0.1:9/items/", "").operation(),
            "items"
        );
    }

    #[test]
    fn the_last_page_expects_only_the_remainder() {
        let plan = Plan {
            total_count: 2_501,
            per_page: 1000,
            pages: 3,
        };
        assert_eq!(plan.expected_rows(1), 1000);
        assert_eq!(plan.expected_rows(3), 501);
    }

    #[test]
    fn a_gateway_error_at_http_403_is_an_api_error_and_html_at_502_is_a_status() {
        let body = b"<OpenAPI_ServiceResponse><cmmMsgHeader><returnReasonCode>32</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>";
        match interpret(403, body) {
            Err(FetchErrorKind::Api {
                code,
                gateway: true,
                http_status: 403,
                ..
            }) => assert_eq!(code, "32"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            interpret(502, b"<html><body>Bad Gateway</body></html>"),
            Err(FetchErrorKind::Status { status: 502 })
        ));
        assert!(matches!(
            interpret(200, b"{\"response\":"),
            Err(FetchErrorKind::Malformed(_))
        ));
    }
}
