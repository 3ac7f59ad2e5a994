//! Suppressed identifiers: events carrying one are dropped at ingest and counted. Only salted
//! hashes of identifiers are kept (type and normalised value, SHA-256 with the workspace's
//! secret salt), so a suppression list holds nothing that names a person.
//!
//! A workspace's hashes are read from the store on first use and kept in memory; every change
//! goes through this node, which updates both. Deletions suppress the person's identifiers
//! for as long as they run (in memory only), so events arriving meanwhile do not survive them.

use crate::applier::Appliers;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use tessera_core::identity::EventFacts;
use tessera_core::NormalizedEvent;
use tessera_store::{Store, StoreError};

/// One workspace's suppressions.
#[derive(Default)]
struct Suppressed {
    salt: String,
    /// Stored ones.
    hashes: HashSet<String>,
    /// Temporary ones (deletions in progress), with how many deletions hold each.
    running: HashMap<String, usize>,
}

impl Suppressed {
    fn is_empty(&self) -> bool {
        self.hashes.is_empty() && self.running.is_empty()
    }

    fn contains(&self, h: &str) -> bool {
        self.hashes.contains(h) || self.running.contains_key(h)
    }
}

#[derive(Default)]
pub struct Suppressions {
    by_workspace: RwLock<HashMap<String, Arc<RwLock<Suppressed>>>>,
}

/// The salted hash of an identifier (type and normalised value).
pub fn identifier_hash(salt: &str, kind: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0x1f]);
    h.update(kind.as_bytes());
    h.update([0x1f]);
    h.update(value.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Suppressions {
    fn workspace(
        &self,
        store: &dyn Store,
        ws: &str,
    ) -> Result<Arc<RwLock<Suppressed>>, StoreError> {
        if let Some(s) = self
            .by_workspace
            .read()
            .expect("suppressions poisoned")
            .get(ws)
        {
            return Ok(s.clone());
        }
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).expect("the OS provides randomness");
        let fresh: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        let loaded = Suppressed {
            salt: store.workspace_salt(ws, &fresh)?,
            hashes: store.suppressions(ws)?.into_iter().collect(),
            running: HashMap::new(),
        };
        let mut all = self.by_workspace.write().expect("suppressions poisoned");
        Ok(all
            .entry(ws.to_string())
            .or_insert_with(|| Arc::new(RwLock::new(loaded)))
            .clone())
    }

    /// The workspace's salt for identifier hashes.
    pub fn salt(&self, store: &dyn Store, ws: &str) -> Result<String, StoreError> {
        Ok(self
            .workspace(store, ws)?
            .read()
            .expect("poisoned")
            .salt
            .clone())
    }

    /// Stored suppressions were added or removed: reread them.
    pub fn reload(&self, store: &dyn Store, ws: &str) -> Result<(), StoreError> {
        let w = self.workspace(store, ws)?;
        let hashes: HashSet<String> = store.suppressions(ws)?.into_iter().collect();
        w.write().expect("poisoned").hashes = hashes;
        Ok(())
    }

    /// Suppresses hashes while a deletion runs.
    pub fn hold(&self, store: &dyn Store, ws: &str, hashes: &[String]) -> Result<(), StoreError> {
        let w = self.workspace(store, ws)?;
        let mut w = w.write().expect("poisoned");
        for h in hashes {
            *w.running.entry(h.clone()).or_default() += 1;
        }
        Ok(())
    }

    /// Lifts what [`Suppressions::hold`] added.
    pub fn release(
        &self,
        store: &dyn Store,
        ws: &str,
        hashes: &[String],
    ) -> Result<(), StoreError> {
        let w = self.workspace(store, ws)?;
        let mut w = w.write().expect("poisoned");
        for h in hashes {
            if let Some(n) = w.running.get_mut(h) {
                *n -= 1;
                if *n == 0 {
                    w.running.remove(h);
                }
            }
        }
        Ok(())
    }

    /// Removes the normalised messages (their bodies not written yet) that carry a suppressed
    /// identifier; returns how many were removed. Runs on the messages as sent, before a PII
    /// policy could hash the identifiers it matches. Costs nothing for a workspace without
    /// suppressions.
    pub fn filter(
        &self,
        store: &dyn Store,
        appliers: &Appliers,
        ws: &str,
        source_id: &str,
        events: &mut Vec<(NormalizedEvent, Value)>,
    ) -> Result<usize, StoreError> {
        let w = self.workspace(store, ws)?;
        let w = w.read().expect("poisoned");
        if w.is_empty() {
            return Ok(0);
        }
        let Ok(state) = appliers.start(ws) else {
            return Ok(0);
        };
        // The engine's own reading of identifiers (normalised as its rules say), so that what
        // is suppressed is exactly what would have identified the person.
        let engine = state.engine.read().expect("engine poisoned");
        let before = events.len();
        events.retain(|(e, message)| {
            let body = message.to_string();
            let Ok(f) = EventFacts::parse(0, e.timestamp, source_id, &body) else {
                return true;
            };
            !engine
                .identifiers_in(&f)
                .iter()
                .any(|(kind, value)| w.contains(&identifier_hash(&w.salt, kind, value)))
        });
        Ok(before - events.len())
    }
}
