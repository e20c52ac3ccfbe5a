//! The in-memory "what is near" state of one API instance: a geo index of open parties and one of
//! markets, with the rows themselves, so a nearby query touches no database.
//!
//! It is loaded from SQL at start and kept current by the party events on the bus. Each party event
//! carries the party as it is after the change, with its `version`; a snapshot older than the one
//! held is ignored, so duplicates and reordering between instances are harmless. A
//! [`BusMessage::Gap`] (lagging, or a Redis reconnect) triggers a full reload from SQL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use geo_index::{Cursor, GeoError, GeoIndex, Hit, LatLng};
use store::events::{Envelope, PARTIES_TOPIC};
use store::live::{Bus, BusMessage, LiveError, Subscription};
use store::markets::Market;
use store::parties::Party;
use store::Db;
use tokio::sync::watch;

/// Topic of market changes (written by ingest); any event there reloads the market index.
pub use store::catalog::MARKETS_TOPIC;

/// A party held by the index, with its item's category for filtering and its API form already
/// serialised: a party changes only with an event, while a nearby answer shows twenty of them, so
/// serialising once per change instead of once per answer is most of an answer's cost saved.
#[derive(Debug)]
pub struct IndexedParty {
    pub party: Party,
    pub category_code: Option<String>,
    /// The party as `PartyView` JSON: one object, `{...}`.
    pub json: Box<str>,
}

impl IndexedParty {
    /// The party ready to serve, or `None` (logged with its id) when it cannot be shown: the
    /// index then leaves that one party out instead of failing as a whole.
    pub fn new(party: Party, category_code: Option<String>) -> Option<Arc<Self>> {
        let id = party.id;
        let view = std::panic::AssertUnwindSafe(|| {
            serde_json::to_string(&crate::parties::types::PartyView::from(party.clone()))
        });
        let json = match std::panic::catch_unwind(view) {
            Ok(Ok(json)) => json.into_boxed_str(),
            Ok(Err(err)) => {
                tracing::error!(party.id = id, error = %err, "nearby index: party cannot be shown; left out");
                return None;
            }
            Err(_) => {
                tracing::error!(
                    party.id = id,
                    "nearby index: showing the party panicked; left out"
                );
                return None;
            }
        };
        Some(Arc::new(Self {
            party,
            category_code,
            json,
        }))
    }
}

#[derive(Default)]
struct Parties {
    geo: GeoIndex,
    rows: HashMap<i64, Arc<IndexedParty>>,
    /// Highest version seen per party id, including parties no longer open, so a stale event
    /// cannot resurrect a cancelled party.
    versions: HashMap<i64, i64>,
}

#[derive(Default)]
struct Markets {
    geo: GeoIndex,
    rows: HashMap<i64, Market>,
}

/// Nearby search state shared by the handlers of one instance.
#[derive(Default)]
pub struct NearbyIndex {
    parties: RwLock<Parties>,
    markets: RwLock<Markets>,
    categories: RwLock<HashMap<i64, Option<String>>>,
}

/// Whether a party belongs in the index.
fn is_open(p: &Party) -> bool {
    p.status.is_open()
}

fn point(lat: f64, lng: f64) -> Option<LatLng> {
    LatLng::new(lat, lng).ok()
}

impl NearbyIndex {
    /// Rebuilds both indexes from SQL.
    pub async fn reload(&self, db: &Db) -> Result<(), store::Error> {
        let categories: HashMap<i64, Option<String>> = store::items::category_codes(db)
            .await?
            .into_iter()
            .collect();
        let open = store::parties::list_open_parties(db).await?;
        let markets = store::markets::list_located_markets(db).await?;
        let mut parties = Parties::default();
        for p in open {
            parties.versions.insert(p.id, p.version);
            let Some(at) = point(p.lat, p.lng) else {
                continue;
            };
            let id = p.id;
            let category_code = categories.get(&p.item_id).cloned().flatten();
            if let Some(indexed) = IndexedParty::new(p, category_code) {
                let _ = parties.geo.insert(id, at);
                parties.rows.insert(id, indexed);
            }
        }
        let mut built = Markets::default();
        for m in markets {
            if let Some(at) = m.lat.zip(m.lng).and_then(|(lat, lng)| point(lat, lng)) {
                let _ = built.geo.insert(m.id, at);
                built.rows.insert(m.id, m);
            }
        }
        // Versions seen before the reload stay authoritative if they are newer.
        {
            let mut current = self.parties.write().unwrap_or_else(|e| e.into_inner());
            for (id, v) in &current.versions {
                let newer = parties.versions.get(id).is_none_or(|mine| mine < v);
                if newer && !parties.rows.contains_key(id) {
                    parties.versions.insert(*id, *v);
                }
            }
            *current = parties;
        }
        *self.markets.write().unwrap_or_else(|e| e.into_inner()) = built;
        *self.categories.write().unwrap_or_else(|e| e.into_inner()) = categories;
        Ok(())
    }

    /// Applies the party snapshot of one event. Returns whether it changed the index.
    pub fn apply_party(&self, party: Party, category_code: Option<String>) -> bool {
        let mut state = self.parties.write().unwrap_or_else(|e| e.into_inner());
        if state
            .versions
            .get(&party.id)
            .is_some_and(|seen| *seen >= party.version)
        {
            return false;
        }
        state.versions.insert(party.id, party.version);
        let at = point(party.lat, party.lng);
        let id = party.id;
        let indexed = match (is_open(&party), at) {
            (true, Some(at)) => IndexedParty::new(party, category_code).map(|p| (at, p)),
            _ => None,
        };
        match indexed {
            Some((at, indexed)) => {
                let _ = state.geo.insert(id, at);
                state.rows.insert(id, indexed);
            }
            None => {
                state.geo.remove(id);
                state.rows.remove(&id);
            }
        }
        true
    }

    fn category_of(&self, item_id: i64) -> Option<Option<String>> {
        self.categories
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&item_id)
            .cloned()
    }

    async fn apply_envelope(&self, db: &Db, envelope: Envelope) -> Result<(), store::Error> {
        let event = match envelope.event() {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(event.id = envelope.id, kind = %envelope.kind, error = %err, "unreadable party event skipped");
                return Ok(());
            }
        };
        let Some(change) = event.party_change() else {
            return Ok(());
        };
        let party = change.party.clone();
        let category = match self.category_of(party.item_id) {
            Some(c) => c,
            None => {
                let c = store::items::get_item(db, party.item_id)
                    .await?
                    .and_then(|i| i.category_code);
                self.categories
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(party.item_id, c.clone());
                c
            }
        };
        self.apply_party(party, category);
        Ok(())
    }

    /// Open parties near `center`, nearest first, that pass `keep`.
    pub fn nearest_parties(
        &self,
        center: LatLng,
        radius_m: f64,
        limit: usize,
        after: Option<Cursor>,
        keep: impl Fn(&IndexedParty) -> bool,
    ) -> Result<Vec<(Hit, Arc<IndexedParty>)>, GeoError> {
        let state = self.parties.read().unwrap_or_else(|e| e.into_inner());
        let hits = state.geo.nearest(center, radius_m, limit, after, |id| {
            state.rows.get(&id).is_some_and(|p| keep(p))
        })?;
        Ok(hits
            .into_iter()
            .filter_map(|h| state.rows.get(&h.id).map(|p| (h, p.clone())))
            .collect())
    }

    /// Markets near `center`, nearest first, that pass `keep`.
    pub fn nearest_markets(
        &self,
        center: LatLng,
        radius_m: f64,
        limit: usize,
        after: Option<Cursor>,
        keep: impl Fn(&Market) -> bool,
    ) -> Result<Vec<(Hit, Market)>, GeoError> {
        let state = self.markets.read().unwrap_or_else(|e| e.into_inner());
        let hits = state.geo.nearest(center, radius_m, limit, after, |id| {
            state.rows.get(&id).is_some_and(&keep)
        })?;
        Ok(hits
            .into_iter()
            .filter_map(|h| state.rows.get(&h.id).map(|m| (h, m.clone())))
            .collect())
    }

    /// `(id, version, status)` of every indexed party, sorted: for comparing with a fresh rebuild.
    pub fn party_snapshot(&self) -> Vec<(i64, i64, String)> {
        let state = self.parties.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = state
            .rows
            .values()
            .map(|p| (p.party.id, p.party.version, p.party.status.to_string()))
            .collect();
        out.sort();
        out
    }
}

/// Subscribes to the party and market topics, loads the indexes, and returns the subscriptions to
/// follow. Subscribing first means no event committed during the load is missed.
pub async fn load(
    index: &NearbyIndex,
    db: &Db,
    bus: &dyn Bus,
) -> Result<(Subscription, Subscription), StartError> {
    let parties = bus.subscribe(PARTIES_TOPIC).await?;
    let markets = bus.subscribe(MARKETS_TOPIC).await?;
    index.reload(db).await?;
    Ok((parties, markets))
}

/// Why the nearby index could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("subscribing to events failed")]
    Bus(#[from] LiveError),
    #[error("loading the nearby index failed")]
    Store(#[from] store::Error),
}

/// Follows the events until shutdown.
pub async fn follow(
    index: Arc<NearbyIndex>,
    db: Db,
    (mut parties, mut markets): (Subscription, Subscription),
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let outcome = tokio::select! {
            msg = parties.recv() => match msg {
                Some(BusMessage::Payload(bytes)) => match serde_json::from_slice::<Envelope>(&bytes) {
                    Ok(envelope) => index.apply_envelope(&db, envelope).await,
                    Err(err) => {
                        tracing::warn!(error = %err, "unreadable event on the parties topic");
                        Ok(())
                    }
                },
                Some(BusMessage::Gap) => {
                    tracing::info!("nearby index: events may have been missed; reloading from SQL");
                    index.reload(&db).await
                }
                None => return,
            },
            msg = markets.recv() => match msg {
                Some(_) => index.reload(&db).await,
                None => return,
            },
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
                Ok(())
            }
        };
        if let Err(err) = outcome {
            tracing::warn!(error = %err, "nearby index update failed; reloading on the next event");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if let Err(err) = index.reload(&db).await {
                tracing::warn!(error = %err, "nearby index reload failed");
            }
        }
    }
}
