//! The settings of one import as a plain value: what `gonggu ingest` parses from its command line,
//! and what a scheduled job holds, so both run exactly the same import.
//!
//! [`IngestConfig::source_spec`] checks the combination (which source needs which setting, and
//! that the rejected share is a share) and builds the [`SourceSpec`]; [`IngestConfig::run`] runs it.

use std::path::PathBuf;
use std::time::Duration;

use crate::csv::CsvEncoding;
use crate::feed::SourceSpec;
use crate::http::{HttpSettings, RetryPolicy};
use crate::paged::PagedConfig;
use crate::price::PriceConfig;
use crate::run::{Kind, RunContext, RunError, RunOptions, RunReport};

/// Pages requested at once from a paged source.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// `numOfRows` per page.
pub const DEFAULT_ROWS_PER_PAGE: u32 = 1000;
/// The paged API's format switch.
pub const DEFAULT_FORMAT_PARAM: &str = "type";
pub const DEFAULT_FORMAT_VALUE: &str = "json";
/// The service key's parameter name.
pub const DEFAULT_KEY_PARAM: &str = "serviceKey";
/// Retries of a failed call.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Delay before the first retry, in milliseconds (doubling, with jitter, up to 30 s).
pub const DEFAULT_RETRY_BASE_MS: u64 = 500;
/// Whole-request timeout, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// The rejected share's default lives with the run that applies it (run imports no config).
pub use crate::run::DEFAULT_MAX_REJECTED_SHARE;

/// Where the rows come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A paged data.go.kr operation: `url` is the operation's full address.
    PagedApi,
    /// The consumer-price API (참가격): `url` is the service root.
    PriceApi,
    /// A CSV file: `file`.
    Csv,
}

/// A combination of settings that cannot run (a source without what it needs).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConfigError(pub &'static str);

/// Everything one import needs to know.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub kind: Kind,
    pub source: SourceKind,
    /// The CSV file (CSV source only).
    pub file: Option<PathBuf>,
    /// The paged operation's address, or the price API's service root.
    pub url: Option<String>,
    /// The data.go.kr service key as the portal shows it; empty: none sent.
    pub service_key: String,
    pub concurrency: usize,
    pub encoding: CsvEncoding,
    pub rows_per_page: u32,
    pub format_param: String,
    pub format_value: String,
    pub key_param: String,
    /// More query pairs the paged operation needs.
    pub params: Vec<(String, String)>,
    pub max_retries: u32,
    pub retry_base: Duration,
    pub timeout: Duration,
    pub options: RunOptions,
}

impl IngestConfig {
    /// The defaults for `kind` from `source`.
    pub fn new(kind: Kind, source: SourceKind) -> Self {
        Self {
            kind,
            source,
            file: None,
            url: None,
            service_key: String::new(),
            concurrency: DEFAULT_CONCURRENCY,
            encoding: CsvEncoding::Auto,
            rows_per_page: DEFAULT_ROWS_PER_PAGE,
            format_param: DEFAULT_FORMAT_PARAM.to_owned(),
            format_value: DEFAULT_FORMAT_VALUE.to_owned(),
            key_param: DEFAULT_KEY_PARAM.to_owned(),
            params: Vec::new(),
            max_retries: DEFAULT_MAX_RETRIES,
            retry_base: Duration::from_millis(DEFAULT_RETRY_BASE_MS),
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            options: RunOptions::default(),
        }
    }

    /// The source these settings describe, checked.
    pub fn source_spec(&self) -> Result<SourceSpec, ConfigError> {
        let http = HttpSettings {
            retry: RetryPolicy {
                max_retries: self.max_retries,
                base_delay: self.retry_base,
                ..RetryPolicy::default()
            },
            timeout: self.timeout.max(Duration::from_secs(1)),
        };
        let url = || {
            self.url
                .clone()
                .filter(|u| !u.trim().is_empty())
                .ok_or(ConfigError(
                    "--url is required with --source paged-api or price-api",
                ))
        };
        let share = self.options.max_rejected_share;
        // NaN would compare false and silently allow every rejection.
        if !(0.0..=1.0).contains(&share) {
            return Err(ConfigError(
                "--max-rejected-share must be between 0 and 1 (0.01 is 1 %)",
            ));
        }
        if self.file.is_some() && self.source != SourceKind::Csv {
            return Err(ConfigError("a FILE is only read with --source csv"));
        }
        Ok(match self.source {
            SourceKind::PagedApi => {
                let mut cfg = PagedConfig::new(url()?, self.service_key.clone());
                cfg.concurrency = self.concurrency.max(1);
                cfg.rows_per_page = self.rows_per_page;
                cfg.format_param = self.format_param.clone();
                cfg.format_value = self.format_value.clone();
                cfg.key_param = self.key_param.clone();
                cfg.extra_params = self.params.clone();
                cfg.http = http;
                SourceSpec::Paged(cfg)
            }
            SourceKind::PriceApi => {
                let mut cfg = PriceConfig::new(url()?, self.service_key.clone());
                cfg.key_param = self.key_param.clone();
                cfg.http = http;
                SourceSpec::Price(cfg)
            }
            SourceKind::Csv => SourceSpec::Csv {
                path: self
                    .file
                    .clone()
                    .ok_or(ConfigError("--source csv needs the FILE to read"))?,
                encoding: self.encoding,
            },
        })
    }

    /// Runs the import: checks the settings, then [`crate::run::run`].
    pub async fn run(&self, ctx: &RunContext<'_>) -> Result<RunReport, IngestError> {
        let spec = self.source_spec()?;
        Ok(crate::run::run(ctx, self.kind, &spec, &self.options).await?)
    }
}

/// Why an import could not run or be recorded (a run whose source failed is a report, not this).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the ingest run could not be recorded")]
    Run(#[from] RunError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_needs_its_own_setting() {
        let paged = IngestConfig::new(Kind::Items, SourceKind::PagedApi);
        assert_eq!(
            paged.source_spec().err(),
            Some(ConfigError(
                "--url is required with --source paged-api or price-api"
            ))
        );
        let csv = IngestConfig::new(Kind::Markets, SourceKind::Csv);
        assert_eq!(
            csv.source_spec().err(),
            Some(ConfigError("--source csv needs the FILE to read"))
        );
        let mut file_for_api = IngestConfig::new(Kind::Items, SourceKind::PriceApi);
        file_for_api.url = Some("http://127.0.0.1:1/svc".into());
        file_for_api.file = Some("items.csv".into());
        assert!(file_for_api.source_spec().is_err());
    }

    #[test]
    fn a_paged_source_takes_the_settings_given() {
        let mut cfg = IngestConfig::new(Kind::Items, SourceKind::PagedApi);
        cfg.url = Some("http://127.0.0.1:1/svc/getItems".into());
        cfg.concurrency = 0;
        cfg.rows_per_page = 500;
        cfg.params = vec![("cond".into(), "1".into())];
        let Ok(SourceSpec::Paged(paged)) = cfg.source_spec() else {
            panic!("a paged source");
        };
        assert_eq!(paged.concurrency, 1, "at least one page in flight");
        assert_eq!(paged.rows_per_page, 500);
        assert_eq!(paged.extra_params, cfg.params);
        assert_eq!(paged.http.retry.max_retries, DEFAULT_MAX_RETRIES);
    }

    #[test]
    fn the_rejected_share_defaults_to_one_percent_and_must_be_a_share() {
        let mut cfg = IngestConfig::new(Kind::Markets, SourceKind::Csv);
        cfg.file = Some("markets.csv".into());
        assert_eq!(cfg.options.max_rejected_share, 0.01);
        for share in [0.0, 0.1, 1.0] {
            cfg.options.max_rejected_share = share;
            assert!(cfg.source_spec().is_ok(), "{share}");
        }
        for share in [-0.01, 1.5, f64::NAN, f64::INFINITY] {
            cfg.options.max_rejected_share = share;
            assert!(cfg.source_spec().is_err(), "{share}");
        }
    }
}
