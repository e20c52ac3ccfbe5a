//! The consumer-price API (참가격, `ProductPriceInfoService`): whole lists in one XML reply.
//!
//! The configured URL is the service root; the client appends `/getProductInfoSvc.do` (goods) or
//! `/getStoreInfoSvc.do` (stores), the paths the service publishes (without `.do` the host has no
//! such operation). There is no paging and no `totalCount`.

use crate::envelope::parse_price;
use crate::error::{FetchError, FetchErrorKind};
use crate::http::{with_key, CallStats, Caller, HttpSettings};
use crate::key::ServiceKey;
use crate::paged::{interpret_with, map_rows};
use crate::record::{item_from_goods, market_from_store, ItemRow, MarketRow, Rejection};
use crate::row::Row;

/// The goods operation, as published: the list operations keep the `.do` suffix (only the price
/// operation, `getProductPriceInfoSvc`, is published without it).
pub const GOODS_OPERATION: &str = "getProductInfoSvc.do";
/// The stores operation, as published (with `.do`).
pub const STORES_OPERATION: &str = "getStoreInfoSvc.do";

/// Where and how to call the consumer-price API.
#[derive(Debug, Clone)]
pub struct PriceConfig {
    /// The service root, e.g. `http://openapi.price.go.kr/openApiImpl/ProductPriceInfoService`.
    pub base_url: String,
    /// The key as the portal shows it, encoded or decoded. Empty: none sent.
    pub service_key: String,
    /// `serviceKey`, or `ServiceKey` for operations that spell it so.
    pub key_param: String,
    pub http: HttpSettings,
}

impl PriceConfig {
    pub fn new(base_url: impl Into<String>, service_key: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            service_key: service_key.into(),
            key_param: "serviceKey".into(),
            http: HttpSettings::default(),
        }
    }
}

/// One whole list.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceList<T> {
    pub records: Vec<T>,
    pub rejected: Vec<Rejection>,
}

/// A client for both operations, sharing call counters.
#[derive(Debug, Clone)]
pub struct PriceClient {
    caller: Caller,
    cfg: PriceConfig,
}

impl PriceClient {
    pub fn new(cfg: &PriceConfig) -> Result<Self, FetchError> {
        let config_error = |kind| FetchError {
            operation: "ProductPriceInfoService".into(),
            page: None,
            attempts: 0,
            kind,
        };
        let key = ServiceKey::new(&cfg.service_key)
            .map_err(|e| config_error(FetchErrorKind::Config(e.to_string())))?;
        let caller = Caller::new(&cfg.http, key, CallStats::default()).map_err(config_error)?;
        Ok(Self {
            caller,
            cfg: cfg.clone(),
        })
    }

    /// Call counters for the quota report.
    pub fn stats(&self) -> &CallStats {
        &self.caller.stats
    }

    /// Every goods row (`getProductInfoSvc.do`) as items.
    pub async fn goods(&self) -> Result<PriceList<ItemRow>, FetchError> {
        self.list(GOODS_OPERATION, item_from_goods).await
    }

    /// Every store row (`getStoreInfoSvc.do`) as markets.
    pub async fn stores(&self) -> Result<PriceList<MarketRow>, FetchError> {
        self.list(STORES_OPERATION, market_from_store).await
    }

    #[tracing::instrument(name = "ingest.price_list", skip_all, fields(operation = %operation))]
    async fn list<T: Send + 'static>(
        &self,
        operation: &str,
        map: fn(&Row) -> Result<T, Rejection>,
    ) -> Result<PriceList<T>, FetchError> {
        let url = format!("{}/{operation}", self.cfg.base_url.trim_end_matches('/'));
        let url = with_key(&url, &self.cfg.key_param, &self.caller.key);
        let (records, rejected) = self
            .caller
            .get(operation, None, &url, move |status, body| {
                let rows = interpret_with(status, &body, parse_price)?;
                Ok(map_rows(&rows.rows, map))
            })
            .await?;
        tracing::info!(
            operation,
            records = records.len(),
            rejected = rejected.len(),
            "price list"
        );
        Ok(PriceList { records, rejected })
    }
}

/// Every goods row as items, with a fresh client.
pub async fn fetch_goods(cfg: &PriceConfig) -> Result<PriceList<ItemRow>, FetchError> {
    PriceClient::new(cfg)?.goods().await
}

/// Every store row as markets, with a fresh client.
pub async fn fetch_stores(cfg: &PriceConfig) -> Result<PriceList<MarketRow>, FetchError> {
    PriceClient::new(cfg)?.stores().await
}
