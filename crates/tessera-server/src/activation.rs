//! Activation inside the applier: after each log entry is applied, its event and the audience
//! entries and exits it caused go through the router (forwarding, audience sync) and the
//! journeys, entry by entry, so a journey sees them in the order they happened. What they
//! decide becomes outbox records (committed with the state change) and trait writes.
//!
//! Timer ticks are log entries (`type: tick`, appended by the applier when a journey timer is
//! due), so a replay of the log fires every timer at the same place.

use crate::segments::AudienceOutput;
use serde_json::{Map, Value};
use std::collections::HashMap;
use tessera_core::activation::destination::Destination;
use tessera_core::activation::journey::{Action, JourneyDef, Journeys};
use tessera_core::activation::router::Router;
use tessera_core::activation::{AudienceView, EventView, OutboxRecord, ProfileLookup};
use tessera_core::identity::{Engine, EventFacts};
use tessera_core::segment::{apply_event, set_trait, Segmenter};
use tessera_core::{MessageType, Millis, NormalizedEvent};
use tessera_store::LogEntry;

/// The source id of the applier's own log entries (timer ticks).
pub const TICK_SOURCE: &str = "_tessera";
/// Rounds of trait writes and the audience changes they cause, per entry: a journey setting a
/// trait that enters an audience that triggers a journey that sets a trait... ends here.
const MAX_ROUNDS: usize = 8;

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

/// Applies log entries to the engine and the segmenter, and activates each one: records go
/// to `out`, audience changes to `audience`.
pub(crate) fn apply_and_activate(
    engine: &mut Engine,
    seg: &mut Segmenter,
    act: &mut Activation,
    entries: &[LogEntry],
    audience: &mut AudienceOutput,
    out: &mut Vec<OutboxRecord>,
) {
    for e in entries {
        let before = audience.rows.len();
        let mut tick = false;
        let mut applied = None;
        if e.source_id == TICK_SOURCE {
            engine.skip_to(e.position);
            seg.advance(e.received_at);
            tick = true;
        } else {
            match EventFacts::parse(e.position, e.timestamp, &e.source_id, &e.body) {
                Ok(f) => applied = apply_event(engine, seg, &f, e.received_at),
                Err(err) => {
                    tracing::warn!(position = e.position, error = %err.reason, "skipping an unreadable event");
                    engine.skip_to(e.position);
                    seg.advance(e.received_at);
                }
            }
        }
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
            // Bodies are parsed only when something reads them.
            let reads_events =
                act.router.forwards_events() || !act.journeys.definitions().is_empty();
            let message = (!tick && reads_events)
                .then(|| serde_json::from_str::<Value>(&e.body).ok())
                .flatten();
            if tick {
                act.journeys
                    .tick(e.timestamp, e.position, &view, &mut actions);
            } else if let Some(message) = message {
                if let Some((key, absorbed)) = &applied {
                    if !absorbed.is_empty() {
                        act.journeys.on_merge(*key, absorbed, e.position);
                    }
                }
                let kind = message.get("type").and_then(Value::as_str).unwrap_or("");
                let name = message
                    .get("event")
                    .or_else(|| message.get("name"))
                    .and_then(Value::as_str);
                let ev = EventView {
                    position: e.position,
                    kind,
                    name,
                    timestamp: e.timestamp,
                    received_at: e.received_at,
                    message: &message,
                    profile: applied.as_ref().map(|a| a.0),
                };
                act.router.route_event(&ev, &view, out, &mut skipped);
                act.journeys.on_event(&ev, &view, &mut actions);
            }
        }
        let mut from = before;
        for _ in 0..MAX_ROUNDS {
            activate_audience_changes(
                engine,
                seg,
                act,
                audience,
                from,
                e.position,
                &mut actions,
                out,
            );
            from = audience.rows.len();
            if actions.is_empty() {
                break;
            }
            run_actions(
                engine,
                seg,
                act,
                std::mem::take(&mut actions),
                out,
                &mut skipped,
            );
            audience.take_from(seg);
        }
        act.count_skips(skipped);
    }
}

/// Routes the audience changes in `audience.rows[from..]` and lets journeys see them.
/// `position` is the log position they are attributed to: the entry that caused them, or for
/// changes time made while the log was idle (always new), the last applied one.
#[allow(clippy::too_many_arguments)]
pub(crate) fn activate_audience_changes(
    engine: &Engine,
    seg: &Segmenter,
    act: &mut Activation,
    audience: &AudienceOutput,
    from: usize,
    position: i64,
    actions: &mut Vec<Action>,
    out: &mut Vec<OutboxRecord>,
) {
    if act.is_idle() {
        return;
    }
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
        act.router.route_audience(&change, &view, out);
        act.journeys.on_audience(&change, &view, actions);
    }
}

/// Carries out journey actions: sends become records, trait writes go to the engine.
fn run_actions(
    engine: &mut Engine,
    seg: &mut Segmenter,
    act: &mut Activation,
    actions: Vec<Action>,
    out: &mut Vec<OutboxRecord>,
    skipped: &mut Vec<(String, &'static str)>,
) {
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
                    skipped,
                ) {
                    out.push(r);
                }
            }
            Action::SetTrait {
                journey,
                profile,
                name,
                value,
                at,
                position,
            } => set_trait(
                engine,
                seg,
                profile,
                &name,
                &value,
                (at, position),
                &format!("journey:{journey}"),
            ),
        }
    }
}

/// The log entry of a timer tick at `at` (wall-clock milliseconds).
pub fn tick_event(at: Millis) -> NormalizedEvent {
    let iso = tessera_core::time::format_iso8601(at);
    let message_id = format!("tick-{at}");
    let body = serde_json::json!({
        "type": "tick",
        "messageId": message_id,
        "timestamp": iso,
        "receivedAt": iso,
    })
    .to_string();
    NormalizedEvent {
        message_id,
        kind: MessageType::Tick,
        event: None,
        user_id: None,
        anonymous_id: None,
        timestamp: at,
        received_at: at,
        body,
    }
}
