//! The sources of a run as one stream of events: batches of records, pages that failed after their
//! retries, and a fatal stop. Fetching runs in its own task and hands batches over a bounded
//! channel, so pages keep arriving while the database writes, and memory holds only a few pages.

use std::path::PathBuf;

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::csv::{CsvEncoding, CsvError, CsvLayout};
use crate::http::CallStats;
use crate::paged::{PagedConfig, PagedFetch};
use crate::price::{PriceClient, PriceConfig};
use crate::record::{ItemRow, MarketRow, Rejection};
use crate::FetchError;

/// Where a run reads from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// A paged data.go.kr operation (the full operation URL in the config).
    Paged(PagedConfig),
    /// The consumer-price API (the service root in the config).
    Price(PriceConfig),
    /// A CSV file.
    Csv {
        path: PathBuf,
        encoding: CsvEncoding,
    },
}

impl SourceSpec {
    /// The natural-key namespace used when none is configured: `paged-api:<operation>`,
    /// `price-api`, or `csv:<layout>` (known once the file's header has been read).
    pub fn default_name(&self, layout: Option<CsvLayout>) -> String {
        match self {
            SourceSpec::Paged(cfg) => format!("paged-api:{}", cfg.operation()),
            SourceSpec::Price(_) => "price-api".to_owned(),
            SourceSpec::Csv { .. } => match layout {
                Some(layout) => format!("csv:{}", layout_slug(layout)),
                None => "csv".to_owned(),
            },
        }
    }
}

/// A short name for a CSV layout.
pub fn layout_slug(layout: CsvLayout) -> &'static str {
    match layout {
        CsvLayout::TraditionalMarkets => "traditional-markets",
        CsvLayout::PlainMarkets => "plain-markets",
        CsvLayout::StoreFields => "store-fields",
        CsvLayout::PlainItems => "plain-items",
        CsvLayout::GoodsFields => "goods-fields",
    }
}

/// Records received together: a page, a whole price list, or a file.
#[derive(Debug)]
pub struct Batch<T> {
    /// Pages the run will fetch, when known.
    pub total_pages: Option<u32>,
    pub records: Vec<T>,
    pub rejected: Vec<Rejection>,
}

/// What the feed hands the writer.
#[derive(Debug)]
pub enum Event<T> {
    Batch(Batch<T>),
    /// A page whose transient failures outlasted the retries; the other pages go on.
    PageFailed(FetchError),
    /// The source cannot go on (bad key, unknown service, malformed page, unreadable file).
    Stopped(String, Option<u32>),
}

/// The records one kind of run reads, with the fetch functions for that kind.
pub trait FeedRecord: Sized + Send + 'static {
    fn paged(cfg: &PagedConfig) -> Result<PagedFetch<Self>, FetchError>;
    fn price(
        client: PriceClient,
    ) -> impl std::future::Future<Output = Result<crate::price::PriceList<Self>, FetchError>> + Send;
    fn csv(
        path: &std::path::Path,
        encoding: CsvEncoding,
    ) -> Result<crate::csv::CsvBatch<Self>, CsvError>;
}

impl FeedRecord for ItemRow {
    fn paged(cfg: &PagedConfig) -> Result<PagedFetch<Self>, FetchError> {
        crate::paged::fetch_items(cfg)
    }
    async fn price(client: PriceClient) -> Result<crate::price::PriceList<Self>, FetchError> {
        client.goods().await
    }
    fn csv(
        path: &std::path::Path,
        encoding: CsvEncoding,
    ) -> Result<crate::csv::CsvBatch<Self>, CsvError> {
        crate::csv::read_items(path, encoding)
    }
}

impl FeedRecord for MarketRow {
    fn paged(cfg: &PagedConfig) -> Result<PagedFetch<Self>, FetchError> {
        crate::paged::fetch_markets(cfg)
    }
    async fn price(client: PriceClient) -> Result<crate::price::PriceList<Self>, FetchError> {
        client.stores().await
    }
    fn csv(
        path: &std::path::Path,
        encoding: CsvEncoding,
    ) -> Result<crate::csv::CsvBatch<Self>, CsvError> {
        crate::csv::read_markets(path, encoding)
    }
}

/// A started feed: the events and the call counters of the source.
pub struct Feed<T> {
    pub events: mpsc::Receiver<Event<T>>,
    pub stats: CallStats,
    /// The CSV layout, for file sources.
    pub layout: Option<CsvLayout>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl<T> Drop for Feed<T> {
    fn drop(&mut self) {
        // Dropping the feed cancels the requests in flight.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The error and its causes on one line (none of them carries the service key or a URL).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn stopped<T>(err: &FetchError) -> Event<T> {
    Event::Stopped(error_chain(err), err.page)
}

/// Starts reading `spec`. A CSV file is read (on the blocking pool) before this returns, so its
/// layout is known; a file that cannot be read becomes a [`Event::Stopped`].
pub async fn start<T: FeedRecord>(spec: &SourceSpec, buffer: usize) -> Feed<T> {
    let (tx, events) = mpsc::channel(buffer.max(1));
    match spec {
        SourceSpec::Paged(cfg) => match T::paged(cfg) {
            Ok(mut pages) => {
                let stats = pages.stats().clone();
                let task = tokio::spawn(async move {
                    while let Some(page) = pages.next().await {
                        let event = match page {
                            Ok(page) => Event::Batch(Batch {
                                total_pages: Some(page.total_pages),
                                records: page.records,
                                rejected: page.rejected,
                            }),
                            // Page 1 gives the plan: without it there is nothing to go on with.
                            Err(e) if e.is_transient() && e.page != Some(1) => Event::PageFailed(e),
                            Err(e) => stopped(&e),
                        };
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                });
                Feed {
                    events,
                    stats,
                    layout: None,
                    task: Some(task),
                }
            }
            Err(e) => immediate(tx, events, stopped(&e), CallStats::default(), None),
        },
        SourceSpec::Price(cfg) => match PriceClient::new(cfg) {
            Ok(client) => {
                let stats = client.stats().clone();
                let task = tokio::spawn(async move {
                    let event = match T::price(client).await {
                        Ok(list) => Event::Batch(Batch {
                            total_pages: Some(1),
                            records: list.records,
                            rejected: list.rejected,
                        }),
                        Err(e) => stopped(&e),
                    };
                    let _ = tx.send(event).await;
                });
                Feed {
                    events,
                    stats,
                    layout: None,
                    task: Some(task),
                }
            }
            Err(e) => immediate(tx, events, stopped(&e), CallStats::default(), None),
        },
        SourceSpec::Csv { path, encoding } => {
            let (path, encoding) = (path.clone(), *encoding);
            let shown = path.display().to_string();
            let read = tokio::task::spawn_blocking(move || T::csv(&path, encoding)).await;
            let (event, layout) = match read {
                Ok(Ok(batch)) => (
                    Event::Batch(Batch {
                        total_pages: Some(1),
                        records: batch.records,
                        rejected: batch.rejected,
                    }),
                    Some(batch.layout),
                ),
                Ok(Err(e)) => (
                    Event::Stopped(format!("{shown}: {}", error_chain(&e)), None),
                    None,
                ),
                Err(e) => (
                    Event::Stopped(format!("{shown}: reading the file failed: {e}"), None),
                    None,
                ),
            };
            immediate(tx, events, event, CallStats::default(), layout)
        }
    }
}

/// A feed whose only event is already known.
fn immediate<T>(
    tx: mpsc::Sender<Event<T>>,
    events: mpsc::Receiver<Event<T>>,
    event: Event<T>,
    stats: CallStats,
    layout: Option<CsvLayout>,
) -> Feed<T> {
    // The channel is new and holds at least one event: this cannot fail or wait.
    let _ = tx.try_send(event);
    Feed {
        events,
        stats,
        layout,
        task: None,
    }
}
