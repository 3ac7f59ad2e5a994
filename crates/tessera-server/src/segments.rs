//! The server side of segmentation: building a workspace's [`Segmenter`] at start-up from its
//! stored state and the log, turning saved definitions into a [`Registry`], and turning
//! membership changes into the rows the state file stores.

use std::collections::HashMap;
use tessera_core::audience::{parse_audience, parse_computed};
use tessera_core::identity::{AudienceChangeRow, Engine, EventFacts};
use tessera_core::segment::{
    load_profiles, AudienceDef, ComputedTrait, MembershipChange, Registry, RegistryError, Segmenter,
};
use tessera_store::{Definition, ProfileDb, Store, StoreError};

/// Kinds of saved definitions.
pub const KIND_COMPUTED: &str = "computed_trait";
pub const KIND_AUDIENCE: &str = "audience";

/// Log entries read per query while loading.
const LOAD_CHUNK: usize = 4096;

/// Threads batch evaluation uses.
pub fn batch_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The registry of a workspace's current definitions.
pub fn registry_from(defs: &[Definition]) -> Result<Registry, RegistryError> {
    let mut computed = Vec::new();
    let mut audiences = Vec::new();
    for d in defs.iter().filter(|d| !d.deleted) {
        let bad = |e: tessera_core::audience::LangError| {
            RegistryError::Invalid(format!("\"{}\": {e}", d.name))
        };
        match d.kind.as_str() {
            KIND_COMPUTED => computed.push(ComputedTrait {
                id: d.id.clone(),
                name: d.name.clone(),
                version: d.version,
                def: parse_computed(&d.definition).map_err(bad)?,
            }),
            _ => audiences.push(AudienceDef {
                id: d.id.clone(),
                name: d.name.clone(),
                version: d.version,
                def: parse_audience(&d.definition).map_err(bad)?,
            }),
        }
    }
    Registry::new(computed, audiences)
}

/// The registry of what the store holds for a workspace; definitions that no longer check
/// (which the API never lets in) are logged and left out rather than stopping the applier.
pub fn stored_registry(store: &dyn Store, workspace: &str) -> Result<Registry, StoreError> {
    let defs = store.definitions(workspace)?;
    Ok(registry_from(&defs).unwrap_or_else(|e| {
        tracing::error!(workspace, error = %e, "stored definitions do not check; segmentation starts without them");
        Registry::default()
    }))
}

/// Rebuilds a workspace's segmenter for a restored engine: its profiles and traits from the
/// engine, the events up to the engine's position from the log (each to the profile the
/// timeline says it was applied to), then the definitions, evaluated without recording
/// anything (the state file already holds what they recorded).
pub fn restore_segmenter(
    store: &dyn Store,
    workspace: &str,
    db: &ProfileDb,
    engine: &Engine,
    registry: Registry,
) -> Result<Segmenter, StoreError> {
    let mut seg = Segmenter::new();
    load_profiles(engine, &mut seg);
    let upto = engine.position();
    let assignments: HashMap<i64, i64> = db.assignments_upto(upto)?.into_iter().collect();
    let mut after = 0;
    'read: loop {
        let entries = store.read_log(workspace, after, LOAD_CHUNK)?;
        if entries.is_empty() {
            break;
        }
        for e in &entries {
            if e.position > upto {
                break 'read;
            }
            after = e.position;
            seg.load_clock(e.received_at);
            let Some(slot) = assignments
                .get(&e.position)
                .and_then(|&k| engine.slot_of(k))
            else {
                continue;
            };
            let Ok(f) = EventFacts::parse(e.position, e.timestamp, &e.source_id, &e.body) else {
                continue;
            };
            if let Some(name) = f.event_name() {
                let props = f
                    .properties
                    .and_then(|raw| serde_json::from_str(raw.get()).ok());
                seg.load_event(slot, name, f.timestamp, props.as_ref());
            }
        }
    }
    seg.init_registry(registry, batch_threads());
    Ok(seg)
}

/// The rows of membership changes, stamped with when they were recorded.
pub fn change_rows(changes: Vec<MembershipChange>, recorded_at_us: i64) -> Vec<AudienceChangeRow> {
    changes
        .into_iter()
        .map(|c| AudienceChangeRow {
            position: c.reason.position(),
            reason: c.reason.as_str().to_string(),
            audience: c.audience_id,
            name: c.audience_name,
            version: c.version,
            profile: c.profile,
            entered: c.entered,
            at: c.at,
            recorded_at_us,
        })
        .collect()
}

/// Wall-clock microseconds since the epoch.
pub fn wall_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
