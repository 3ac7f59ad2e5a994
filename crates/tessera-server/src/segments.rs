//! The server side of segmentation: building a workspace's [`Segmenter`] at start-up from its
//! stored state and the log, turning saved definitions into a [`Registry`], and turning
//! membership changes into the rows the state file stores.

use std::borrow::Cow;
use std::collections::HashMap;
use tessera_core::audience::{parse_audience, parse_computed};
use tessera_core::identity::{AudienceChangeRow, CommitBatch, Engine, EventFacts};
use tessera_core::segment::{
    load_profiles, AudienceDef, ComputedTrait, MembershipChange, Registry, RegistryError, Segmenter,
};
use tessera_core::MessageType;
use tessera_store::{Definition, LogEntry, ProfileDb, Store, StoreError};

/// Kinds of saved definitions.
pub const KIND_COMPUTED: &str = "computed_trait";
pub const KIND_AUDIENCE: &str = "audience";

/// Log entries read per query while loading.
const LOAD_CHUNK: usize = 16_384;

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
            KIND_AUDIENCE => audiences.push(AudienceDef {
                id: d.id.clone(),
                name: d.name.clone(),
                version: d.version,
                def: parse_audience(&d.definition).map_err(bad)?,
            }),
            // Destinations and journeys live in the same table.
            _ => {}
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
    let started = std::time::Instant::now();
    let mut seg = Segmenter::new();
    load_profiles(engine, &mut seg);
    let profiles_s = started.elapsed().as_secs_f64();
    let upto = engine.position();
    // (position, profile key) in log order, merged with the log as both are read in order.
    let assignments = db.assignments_upto(upto)?;
    let mut next = 0usize;
    let threads = batch_threads();
    let mut after = 0;
    'read: loop {
        let entries = store.read_log(workspace, after, LOAD_CHUNK)?;
        if entries.is_empty() {
            break;
        }
        // The entries up to the engine's position, each with the slot it was applied to.
        let mut todo: Vec<(&LogEntry, u32)> = Vec::with_capacity(entries.len());
        let mut done = false;
        for e in &entries {
            if e.position > upto {
                done = true;
                break;
            }
            after = e.position;
            seg.load_clock(e.received_at);
            while next < assignments.len() && assignments[next].0 < e.position {
                next += 1;
            }
            let key = assignments
                .get(next)
                .filter(|a| a.0 == e.position)
                .map(|a| a.1);
            if let Some(slot) = key.and_then(|k| engine.slot_of(k)) {
                todo.push((e, slot));
            }
        }
        // Parsing is most of the work: split it over the cores, then load in log order.
        let per = todo.len().div_ceil(threads).max(1);
        let parsed: Vec<Vec<Option<Named>>> = std::thread::scope(|s| {
            let handles: Vec<_> = todo
                .chunks(per)
                .map(|chunk| s.spawn(move || chunk.iter().map(|(e, _)| named(e)).collect()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for ((_, slot), n) in todo.iter().zip(parsed.into_iter().flatten()) {
            if let Some(n) = n {
                seg.load_event(*slot, &n.name, n.timestamp, n.properties.as_ref());
            }
        }
        if done {
            break 'read;
        }
    }
    let events_s = started.elapsed().as_secs_f64() - profiles_s;
    seg.init_registry(registry, batch_threads());
    tracing::info!(
        workspace,
        events = seg.events().rows(),
        profiles_s,
        events_s,
        total_s = started.elapsed().as_secs_f64(),
        "segmentation restored"
    );
    Ok(seg)
}

/// A stored event as segmentation loads it.
struct Named {
    name: String,
    timestamp: tessera_core::Millis,
    properties: Option<serde_json::Value>,
}

/// The fields segmentation reads; everything else in the body is skipped.
#[derive(serde::Deserialize)]
struct NamedBody<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    properties: Option<&'a serde_json::value::RawValue>,
}

/// The name, time and properties of a stored event, if it has a name (as
/// [`EventFacts::event_name`] gives it; odd bodies go through the full reader).
fn named(e: &LogEntry) -> Option<Named> {
    let (name, raw) = match serde_json::from_str::<NamedBody<'_>>(&e.body) {
        Ok(b) => {
            let name = match b.kind.as_deref().and_then(MessageType::parse)? {
                MessageType::Track => b.event?.into_owned(),
                MessageType::Page => "page".to_string(),
                MessageType::Screen => "screen".to_string(),
                _ => return None,
            };
            let props = b
                .properties
                .and_then(|r| serde_json::from_str(r.get()).ok());
            (name, props)
        }
        Err(_) => {
            let f = EventFacts::parse(e.position, e.timestamp, &e.source_id, &e.body).ok()?;
            let name = f.event_name()?.to_string();
            let props = f
                .properties
                .and_then(|r| serde_json::from_str(r.get()).ok());
            (name, props)
        }
    };
    Some(Named {
        name,
        timestamp: e.timestamp,
        properties: raw,
    })
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

/// Membership changes taken from the segmenter, waiting for the next commit.
#[derive(Default)]
pub(crate) struct AudienceOutput {
    pub(crate) rows: Vec<AudienceChangeRow>,
    /// Audiences deleted since the last commit.
    pub(crate) dropped: Vec<String>,
    /// The last size stored of each audience.
    sizes: HashMap<String, usize>,
}

impl AudienceOutput {
    pub(crate) fn take_from(&mut self, seg: &mut Segmenter) {
        let changes = seg.take_changes();
        if !changes.is_empty() {
            self.rows.extend(change_rows(changes, wall_micros()));
        }
    }

    /// Moves the changes into `batch`, with a size sample of every audience whose size
    /// changed since the last one.
    pub(crate) fn drain_into(&mut self, seg: &Segmenter, batch: &mut CommitBatch) {
        batch.audience_changes = std::mem::take(&mut self.rows);
        batch.dropped_audiences = std::mem::take(&mut self.dropped);
        for id in &batch.dropped_audiences {
            self.sizes.remove(id);
        }
        for (a, size) in seg.registry().audiences.iter().zip(seg.sizes()) {
            if self.sizes.get(&a.id) != Some(&size) {
                self.sizes.insert(a.id.clone(), size);
                batch
                    .audience_sizes
                    .push((a.id.clone(), seg.now(), size as i64));
            }
        }
    }
}
