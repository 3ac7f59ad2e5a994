//! Activation inside the applier: after each log entry is applied, its event and the audience
//! entries and exits it caused go through the router (forwarding, audience sync) and the
//! journeys, entry by entry, so a journey sees them in the order they happened. What they
//! decide becomes outbox records (committed with the state change) and trait writes.
//!
//! The applier's own entries go through the log too: timer ticks (`type: tick`, appended
//! when a journey timer is due) and trait writes of journeys (`type: set_trait`), so a replay
//! of the log fires every timer and writes every trait at the same place.

use crate::segments::AudienceOutput;
use serde_json::{Map, Value};
use std::collections::HashMap;
use tessera_core::activation::destination::Destination;
use tessera_core::activation::journey::{Action, JourneyDef, Journeys};
use tessera_core::activation::router::Router;
use tessera_core::activation::{AudienceView, EventView, OutboxRecord, ProfileLookup};
use tessera_core::identity::{Engine, EventFacts, CONSENT_PREFIX};
use tessera_core::segment::{apply_event, set_trait, Segmenter};
use tessera_core::{MessageType, Millis, NormalizedEvent};
use tessera_store::LogEntry;

/// The source id of the applier's own log entries (timer ticks).
pub const TICK_SOURCE: &str = "_tessera";

/// A workspace's destinations and journeys with their state.
pub struct Activation {
    pub router: Router,
    pub journeys: Journeys,
    /// Entries at or before this log position were activated before a restart: their records
    /// and journey state are in the state file already.
    pub skip_upto: i64,
    /// Records not produced, by destination and reason (`consent`...).
    pub skipped: HashMap<(String, &'static str), u64>,
}

impl Default for Activation {
    fn default() -> Self {
        Activation {
            router: Router::new(Vec::new()),
            journeys: Journeys::new(),
            skip_upto: 0,
            skipped: HashMap::new(),
        }
    }
}

impl Activation {
    /// Nothing to activate: bodies need not be parsed.
    pub fn is_idle(&self) -> bool {
        self.router.is_empty() && self.journeys.definitions().is_empty()
    }

    /// Sets the destinations and journeys (journey state of unchanged journeys is kept).
    pub fn configure(&mut self, dests: Vec<Destination>, journeys: Vec<JourneyDef>) {
        self.router = Router::new(dests);
        self.journeys.set_definitions(journeys);
    }

    fn count_skips(&mut self, skipped: Vec<(String, &'static str)>) {
        for k in skipped {
            *self.skipped.entry(k).or_default() += 1;
        }
    }
}

/// Reads profiles for activation from the engine and the segmenter.
pub struct Lookup<'a> {
    pub engine: &'a Engine,
    pub seg: &'a Segmenter,
}

impl ProfileLookup for Lookup<'_> {
    fn traits(&self, profile: i64) -> Map<String, Value> {
        let mut out = Map::new();
        let Some(p) = self.engine.profile(profile) else {
            return out;
        };
        for t in p.traits {
            let v = serde_json::from_str(&t.value).unwrap_or(Value::String(t.value));
            out.insert(t.key, v);
        }
        if let Some(slot) = self.engine.slot_of(p.key) {
            out.extend(self.seg.computed_values(slot));
        }
        out
    }

    fn user_id(&self, profile: i64) -> Option<String> {
        let p = self.engine.profile(profile)?;
        p.identifiers
            .into_iter()
            .find(|i| i.kind == "user_id")
            .map(|i| i.value)
    }

    fn consent(&self, profile: i64, category: &str) -> Option<bool> {
        let name = format!("{CONSENT_PREFIX}{category}");
        match self.engine.trait_of(profile, &name)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    fn in_audience(&self, profile: i64, audience: &str) -> bool {
        let Some(slot) = self.engine.slot_of(profile) else {
            return false;
        };
        self.seg
            .registry()
            .audiences
            .iter()
            .position(|a| a.id == audience)
            .is_some_and(|i| self.seg.is_member(i, slot))
    }
}

/// What activation decided since the applier's last commit.
#[derive(Default)]
pub struct Decided {
    /// Outbox records, in the order they were decided.
    pub records: Vec<OutboxRecord>,
    /// Entries to append to the log: trait writes of journeys.
    pub appends: Vec<NormalizedEvent>,
}

/// What one log entry was, once applied.
enum Applied {
    /// A Segment message; the profile (key) it was applied to and the keys it absorbed.
    Event(Option<(i64, Vec<i64>)>),
    /// A timer tick at this instant.
    Tick(Millis),
    /// A trait written by a journey, or an entry that could not be read.
    Other,
}

/// Applies one log entry to the engine and the segmenter: events, and the applier's own
/// entries (timer ticks; trait writes of journeys, applied like the events they stand for, so
/// rebuilds and replays reproduce them).
fn apply_entry(engine: &mut Engine, seg: &mut Segmenter, e: &LogEntry) -> Applied {
    if e.source_id == TICK_SOURCE {
        engine.skip_to(e.position);
        let v: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
        match v["type"].as_str() {
            Some("tick") => {
                seg.advance(e.received_at);
                return Applied::Tick(e.timestamp);
            }
            Some("set_trait") => {
                if let (Some(profile), Some(name)) = (v["profile"].as_i64(), v["trait"].as_str()) {
                    let source = v["source"].as_str().unwrap_or("journey");
                    let at = (e.timestamp, e.position);
                    set_trait(engine, seg, profile, name, &v["value"], at, source);
                }
            }
            _ => tracing::warn!(position = e.position, "skipping an unknown system entry"),
        }
        seg.advance(e.received_at);
        return Applied::Other;
    }
    match EventFacts::parse(e.position, e.timestamp, &e.source_id, &e.body) {
        Ok(f) => Applied::Event(apply_event(engine, seg, &f, e.received_at)),
        Err(err) => {
            tracing::warn!(position = e.position, error = %err.reason, "skipping an unreadable event");
            engine.skip_to(e.position);
            seg.advance(e.received_at);
            Applied::Other
        }
    }
}

/// Applies log entries without activating them (rebuilds and `tessera replay`: what
/// destinations were sent, and journey state, stay as they were).
pub fn apply_entries(engine: &mut Engine, seg: &mut Segmenter, entries: &[LogEntry]) {
    for e in entries {
        apply_entry(engine, seg, e);
    }
}

/// Applies log entries to the engine and the segmenter, and activates each one: what it
/// decides goes to `out`, audience changes to `audience`.
pub(crate) fn apply_and_activate(
    engine: &mut Engine,
    seg: &mut Segmenter,
    act: &mut Activation,
    entries: &[LogEntry],
    audience: &mut AudienceOutput,
    out: &mut Decided,
) {
    for e in entries {
        let before = audience.rows.len();
        let applied = apply_entry(engine, seg, e);
        audience.take_from(seg);
        if act.is_idle() || e.position <= act.skip_upto {
            continue;
        }
        let mut actions = Vec::new();
        let mut skipped = Vec::new();
        {
            let view = Lookup {
                engine: &*engine,
                seg: &*seg,
            };
            match applied {
                Applied::Tick(at) => act.journeys.tick(at, e.position, &view, &mut actions),
                Applied::Event(profile) => {
                    activate_event(act, e, profile, &view, out, &mut actions, &mut skipped)
                }
                Applied::Other => {}
            }
        }
        act.count_skips(skipped);
        run_actions(act, actions, out);
        activate_audience_changes(engine, seg, act, audience, before, e.position, out);
    }
}

/// Routes an applied event and lets journeys see it.
fn activate_event(
    act: &mut Activation,
    e: &LogEntry,
    profile: Option<(i64, Vec<i64>)>,
    view: &Lookup<'_>,
    out: &mut Decided,
    actions: &mut Vec<Action>,
    skipped: &mut Vec<(String, &'static str)>,
) {
    // Bodies are parsed only when something reads them.
    if !act.router.forwards_events() && act.journeys.definitions().is_empty() {
        return;
    }
    let Ok(message) = serde_json::from_str::<Value>(&e.body) else {
        return;
    };
    if let Some((key, absorbed)) = &profile {
        if !absorbed.is_empty() {
            act.journeys.on_merge(*key, absorbed, e.position);
        }
    }
    let ev = EventView {
        position: e.position,
        kind: message.get("type").and_then(Value::as_str).unwrap_or(""),
        name: message
            .get("event")
            .or_else(|| message.get("name"))
            .and_then(Value::as_str),
        timestamp: e.timestamp,
        received_at: e.received_at,
        message: &message,
        profile: profile.as_ref().map(|p| p.0),
    };
    act.router.route_event(&ev, view, &mut out.records, skipped);
    act.journeys.on_event(&ev, view, actions);
}

/// Routes the audience changes in `audience.rows[from..]` and lets journeys see them (and act
/// on them). `position` is the log position they are attributed to: the entry that caused
/// them, or for changes time or a definition made, the last applied one.
pub(crate) fn activate_audience_changes(
    engine: &Engine,
    seg: &Segmenter,
    act: &mut Activation,
    audience: &AudienceOutput,
    from: usize,
    position: i64,
    out: &mut Decided,
) {
    if act.is_idle() || from >= audience.rows.len() {
        return;
    }
    let mut actions = Vec::new();
    let mut skipped = Vec::new();
    {
        let view = Lookup { engine, seg };
        for row in &audience.rows[from..] {
            let change = AudienceView {
                audience: &row.audience,
                name: &row.name,
                profile: row.profile,
                entered: row.entered,
                at: row.at,
                position: row.position.unwrap_or(position),
                reason: &row.reason,
            };
            act.router
                .route_audience(&change, &view, &mut out.records, &mut skipped);
            act.journeys.on_audience(&change, &view, &mut actions);
        }
    }
    act.count_skips(skipped);
    run_actions(act, actions, out);
}

/// Carries out journey actions: sends become records; trait writes become log entries,
/// applied in their turn like any event (so replays and restarts reproduce them).
fn run_actions(act: &mut Activation, actions: Vec<Action>, out: &mut Decided) {
    let mut skipped = Vec::new();
    for a in actions {
        match a {
            Action::Send {
                destination,
                profile,
                key,
                template,
                context,
                at,
                position,
                ..
            } => {
                if let Some(r) = act.router.journey_record(
                    &destination,
                    &key,
                    profile,
                    template.as_ref(),
                    &context,
                    at,
                    position,
                    &mut skipped,
                ) {
                    out.records.push(r);
                }
            }
            Action::SetTrait {
                journey,
                profile,
                name,
                value,
                at,
                position,
            } => out
                .appends
                .push(trait_event(&journey, profile, &name, value, at, position)),
        }
    }
    act.count_skips(skipped);
}

/// A system entry of the log: `kind`, at `at`, with `fields` and a deterministic message id
/// (the dedup window drops one appended twice around a crash).
fn system_event(
    kind: MessageType,
    message_id: String,
    at: Millis,
    fields: Value,
) -> NormalizedEvent {
    let iso = tessera_core::time::format_iso8601(at);
    let mut body = serde_json::json!({
        "type": kind.as_str(),
        "messageId": message_id,
        "timestamp": iso,
        "receivedAt": iso,
    });
    if let (Value::Object(b), Value::Object(f)) = (&mut body, fields) {
        b.extend(f);
    }
    NormalizedEvent {
        message_id,
        kind,
        event: None,
        user_id: None,
        anonymous_id: None,
        timestamp: at,
        received_at: at,
        body: body.to_string(),
    }
}

/// The log entry of a timer tick at `at` (wall-clock milliseconds).
pub fn tick_event(at: Millis) -> NormalizedEvent {
    system_event(MessageType::Tick, format!("tick-{at}"), at, Value::Null)
}

/// The log entry of a trait a journey step writes.
fn trait_event(
    journey: &str,
    profile: i64,
    name: &str,
    value: Value,
    at: Millis,
    position: i64,
) -> NormalizedEvent {
    let fields = serde_json::json!({
        "profile": profile,
        "trait": name,
        "value": value,
        "source": format!("journey:{journey}"),
    });
    let id = format!("trait-{journey}-{profile}-{position}-{name}");
    system_event(MessageType::SetTrait, id, at, fields)
}

/// The log entry of a consent answer given through the admin API: the profile's
/// `consent.<category>` trait, written like a journey's trait write. `id` makes it unique.
pub(crate) fn consent_event(
    profile: i64,
    category: &str,
    granted: bool,
    at: Millis,
    id: &str,
) -> NormalizedEvent {
    let fields = serde_json::json!({
        "profile": profile,
        "trait": format!("{CONSENT_PREFIX}{category}"),
        "value": granted,
        "source": "consent_api",
    });
    system_event(
        MessageType::SetTrait,
        format!("consent-{id}-{category}"),
        at,
        fields,
    )
}
