//! Destinations and journeys as stored (in the store's versioned `definitions` table, kinds
//! `destination` and `journey`), and what the applier does when they change: newly synced
//! audiences are backfilled with their current members.

use crate::activation::{Activation, Lookup};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use tessera_core::activation::destination::Destination;
use tessera_core::activation::journey::JourneyDef;
use tessera_core::activation::OutboxRecord;
use tessera_core::identity::Engine;
use tessera_core::segment::Segmenter;
use tessera_store::{Definition, ProfileDb, Store, StoreError};

pub const KIND_DESTINATION: &str = "destination";
pub const KIND_JOURNEY: &str = "journey";

/// A workspace's destinations and journeys.
#[derive(Debug, Clone, Default)]
pub struct ActivationConfig {
    pub destinations: Vec<Destination>,
    pub journeys: Vec<JourneyDef>,
}

/// The stored text of a destination: its settings and its signing secret.
pub fn destination_text(secret: &str, config: &Value) -> String {
    json!({"secret": secret, "config": config}).to_string()
}

/// A stored destination, parsed. `None` for text this build cannot read (logged).
pub fn destination_of(d: &Definition) -> Option<Destination> {
    let v: Value = serde_json::from_str(&d.definition).ok()?;
    let secret = v.get("secret")?.as_str()?;
    match Destination::parse(&d.id, secret, v.get("config")?) {
        Ok(dest) => Some(dest),
        Err(e) => {
            tracing::error!(destination = %d.id, error = %e, "stored destination unreadable; skipped");
            None
        }
    }
}

/// A stored journey, parsed. `None` for text this build cannot read (logged).
pub fn journey_of(d: &Definition) -> Option<JourneyDef> {
    let v: Value = serde_json::from_str(&d.definition).ok()?;
    match JourneyDef::parse(&d.id, &v) {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::error!(journey = %d.id, error = %e, "stored journey unreadable; skipped");
            None
        }
    }
}

/// The configuration made of these definitions (other kinds are ignored).
pub fn config_of(defs: &[Definition]) -> ActivationConfig {
    let mut config = ActivationConfig::default();
    for d in defs.iter().filter(|d| !d.deleted) {
        match d.kind.as_str() {
            KIND_DESTINATION => config.destinations.extend(destination_of(d)),
            KIND_JOURNEY => config.journeys.extend(journey_of(d)),
            _ => {}
        }
    }
    config
}

/// A workspace's stored destinations and journeys.
pub fn stored_activation(
    store: &dyn Store,
    workspace: &str,
) -> Result<ActivationConfig, StoreError> {
    Ok(config_of(&store.definitions(workspace)?))
}

impl ActivationConfig {
    /// Activation as it was at the state file's position: journey state from the file, and
    /// entries up to that position not activated again.
    pub fn restore(&self, db: &ProfileDb) -> Result<Activation, StoreError> {
        let mut act = Activation::default();
        act.configure(self.destinations.clone(), self.journeys.clone());
        act.journeys
            .restore(db.journey_state()?)
            .map_err(|e| StoreError::InvalidState(format!("journey state: {e}")))?;
        act.skip_upto = db.position()?;
        Ok(act)
    }

    /// Takes this configuration on. An audience a destination newly syncs is backfilled: one
    /// entry record per current member.
    pub fn apply(
        &self,
        act: &mut Activation,
        engine: &Engine,
        seg: &Segmenter,
        out: &mut Vec<OutboxRecord>,
    ) {
        let before: BTreeSet<(String, String)> = subscriptions(act.router.destinations());
        act.configure(self.destinations.clone(), self.journeys.clone());
        let new: Vec<(String, String)> = subscriptions(&self.destinations)
            .into_iter()
            .filter(|s| !before.contains(s))
            .collect();
        if new.is_empty() {
            return;
        }
        let members = seg.member_keys();
        let view = Lookup { engine, seg };
        for (dest, audience) in new {
            let Some(a) = seg.registry().audiences.iter().find(|a| a.id == audience) else {
                continue;
            };
            let keys: Vec<i64> = members
                .get(&audience)
                .map(|m| m.iter().copied().collect())
                .unwrap_or_default();
            act.router.backfill(
                &dest,
                &audience,
                &a.name,
                &keys,
                seg.now(),
                engine.position(),
                &view,
                out,
            );
        }
    }
}

fn subscriptions(dests: &[Destination]) -> BTreeSet<(String, String)> {
    dests
        .iter()
        .flat_map(|d| {
            d.sync_audiences
                .iter()
                .map(move |a| (d.id.clone(), a.clone()))
        })
        .collect()
}
