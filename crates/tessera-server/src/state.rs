//! The state every handler shares: the store, the appliers, the metrics, a cache of write
//! keys, and what ingest applies (suppressions, tracking plans, PII policies).

use crate::applier::Appliers;
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_core::Millis;
use tessera_store::{Source, Store, StoreError};

/// How long a write key lookup is trusted before the store is asked again. Changes made
/// through this node's admin API take effect at once; this bounds how long another node
/// sharing the store may keep accepting a key that was rotated or disabled.
const WRITE_KEY_TTL: Duration = Duration::from_secs(5);

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// Every workspace's applier and derived profile state.
    pub appliers: Arc<Appliers>,
    /// Id of the workspace used when a request names none.
    pub default_workspace: String,
    /// Identifiers whose events are dropped at ingest (data-subject requests).
    pub suppressions: crate::suppression::Suppressions,
    /// The last retention purge of each workspace.
    pub purges: crate::retention::Purges,
    /// Tracking plans and PII policies applied at ingest, and the violations they found.
    pub governance: crate::governance::Governance,
    write_keys: RwLock<HashMap<String, (Instant, Option<Source>)>>,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        appliers: Arc<Appliers>,
        default_workspace: String,
    ) -> AppState {
        AppState {
            store,
            metrics,
            appliers,
            default_workspace,
            suppressions: Default::default(),
            purges: Default::default(),
            governance: Default::default(),
            write_keys: RwLock::new(HashMap::new()),
        }
    }

    /// The source a write key belongs to (cached, including "no such key").
    pub fn source_for_write_key(&self, key: &str) -> Result<Option<Source>, StoreError> {
        if let Some((at, src)) = self.write_keys.read().expect("cache poisoned").get(key) {
            if at.elapsed() < WRITE_KEY_TTL {
                return Ok(src.clone());
            }
        }
        let src = self.store.source_by_write_key(key)?;
        let mut cache = self.write_keys.write().expect("cache poisoned");
        // Unknown keys are cached too, so a flood of bad keys cannot hammer the store; the
        // cache is bounded so that flood cannot grow memory either.
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key.to_string(), (Instant::now(), src.clone()));
        Ok(src)
    }

    /// Forgets cached write keys after a source changed.
    pub fn invalidate_write_keys(&self) {
        self.write_keys.write().expect("cache poisoned").clear();
    }
}

/// The wall clock in milliseconds: read only at the edge, never in the core.
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}
