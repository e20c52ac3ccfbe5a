//! Public-data ingest for gonggu: the paged Open API client, the consumer-price API and CSV import.
//!
//! Every source yields validated records ([`ItemRow`], [`MarketRow`]) and rejections naming the
//! field at fault. [`run`] ties a source to the database: it de-duplicates them ([`Dedup`]), writes
//! them in chunks through `store::catalog` and keeps the run record; the other modules never touch
//! the database.
//!
//! * [`paged`]: data.go.kr paged operations as a bounded-concurrency stream of pages.
//! * [`price`]: the consumer-price API (참가격), whole lists in one reply.
//! * [`csv`]: the portal's CSV downloads (CP949 or UTF-8) and gonggu's plain CSV.
//! * [`envelope`]: the reply parsers and every quirk they handle.
//! * [`mock`]: a mock of these APIs with latency and injected faults, for tests and benchmarks.
//! * [`config`]: the settings of one import as a plain value (the command line and jobs build it).
//! * [`run`] and [`feed`]: one ingest run, from the source to chunked upserts and the run record.

pub mod config;
pub mod csv;
pub mod dedup;
pub mod envelope;
pub mod error;
pub mod feed;
mod http;
pub mod key;
pub mod mock;
pub mod paged;
pub mod price;
pub mod record;
pub mod row;
pub mod run;
pub mod xml;

pub use dedup::Dedup;
pub use error::{FetchError, FetchErrorKind};
pub use http::{CallCounts, CallStats, HttpSettings, RetryPolicy};
pub use key::ServiceKey;
pub use record::{ItemRow, MarketRow, Rejection};
pub use row::Row;

#[cfg(test)]
mod tests {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send + 'static>() {}

    #[test]
    fn errors_and_page_streams_can_cross_threads() {
        send_sync::<super::FetchError>();
        send_sync::<super::csv::CsvError>();
        send_sync::<super::Rejection>();
        send::<super::paged::PagedFetch<super::ItemRow>>();
        send::<super::price::PriceClient>();
    }
}
