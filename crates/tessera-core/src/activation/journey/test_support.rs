//! Helpers shared by the journey tests: a profile lookup over plain maps, owned events, and a
//! small driver that feeds an engine and collects its actions.

use super::{Action, JourneyDef, Journeys};
use crate::activation::{AudienceView, EventView, ProfileLookup};
use crate::time::Millis;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const T0: Millis = 1_714_566_600_000; // 2024-05-01T12:30:00Z
pub const MIN: Millis = 60_000;
pub const HOUR: Millis = 3_600_000;

/// Profiles as plain data.
#[derive(Debug, Default, Clone)]
pub struct TestView {
    pub traits: BTreeMap<i64, Map<String, Value>>,
    pub audiences: BTreeSet<(i64, String)>,
}

impl TestView {
    pub fn set_trait(&mut self, profile: i64, name: &str, value: Value) {
        self.traits
            .entry(profile)
            .or_default()
            .insert(name.to_string(), value);
    }
}

impl ProfileLookup for TestView {
    fn traits(&self, profile: i64) -> Map<String, Value> {
        self.traits.get(&profile).cloned().unwrap_or_default()
    }
    fn user_id(&self, profile: i64) -> Option<String> {
        Some(format!("user-{profile}"))
    }
    fn in_audience(&self, profile: i64, audience: &str) -> bool {
        self.audiences.contains(&(profile, audience.to_string()))
    }
}

/// An owned event, lent out as an [`EventView`].
#[derive(Debug, Clone)]
pub struct Ev {
    pub position: i64,
    pub name: String,
    pub timestamp: Millis,
    pub received_at: Millis,
    pub message: Value,
    pub profile: Option<i64>,
}

impl Ev {
    pub fn view(&self) -> EventView<'_> {
        EventView {
            position: self.position,
            kind: "track",
            name: Some(&self.name),
            timestamp: self.timestamp,
            received_at: self.received_at,
            message: &self.message,
            profile: self.profile,
        }
    }
}

/// A `track` of `name` by `profile` at `ts` (received at once).
pub fn track(position: i64, profile: i64, name: &str, ts: Millis, props: Value) -> Ev {
    Ev {
        position,
        name: name.to_string(),
        timestamp: ts,
        received_at: ts,
        message: json!({"type": "track", "event": name, "userId": format!("user-{profile}"),
                        "properties": props}),
        profile: Some(profile),
    }
}

pub fn def(id: &str, v: Value) -> JourneyDef {
    JourneyDef::parse(id, &v).unwrap_or_else(|e| panic!("{id}: {e}"))
}

/// The abandoned-cart journey of the design document.
pub fn cart(id: &str, extra: Value) -> JourneyDef {
    let mut v = json!({
        "name": "Abandoned cart",
        "trigger": {"event": "Product Added"},
        "goal": {"event": "Order Completed"},
        "exit_on": ["Unsubscribed"],
        "steps": [
            {"id": "wait", "type": "wait_for", "event": "Order Completed", "timeout": "1h",
             "on_event": "converted", "on_timeout": "remind"},
            {"id": "remind", "type": "send", "destination": "dst_abc",
             "payload": {"text": "{{events}}"}},
            {"id": "done", "type": "exit"},
            {"id": "converted", "type": "exit"}
        ]
    });
    for (k, x) in extra.as_object().into_iter().flatten() {
        v[k] = x.clone();
    }
    def(id, v)
}

/// An engine with a view, collecting actions.
pub struct Driver {
    pub engine: Journeys,
    pub view: TestView,
    pub out: Vec<Action>,
    pub position: i64,
}

impl Driver {
    pub fn new(defs: Vec<JourneyDef>) -> Driver {
        let mut engine = Journeys::new();
        engine.set_definitions(defs);
        Driver {
            engine,
            view: TestView::default(),
            out: Vec::new(),
            position: 0,
        }
    }

    /// Feeds a track event at the next log position.
    pub fn track(&mut self, profile: i64, name: &str, ts: Millis, props: Value) {
        self.position += 1;
        let ev = track(self.position, profile, name, ts, props);
        self.event(&ev);
    }

    pub fn event(&mut self, ev: &Ev) {
        self.engine.on_event(&ev.view(), &self.view, &mut self.out);
    }

    pub fn tick(&mut self, at: Millis) {
        self.position += 1;
        self.engine
            .tick(at, self.position, &self.view, &mut self.out);
    }

    pub fn audience(
        &mut self,
        profile: i64,
        audience: &str,
        entered: bool,
        at: Millis,
        reason: &str,
    ) {
        self.position += 1;
        let change = AudienceView {
            audience,
            name: "Test audience",
            profile,
            entered,
            at,
            position: self.position,
            reason,
        };
        self.engine.on_audience(&change, &self.view, &mut self.out);
    }

    pub fn merge(&mut self, survivor: i64, absorbed: &[i64]) {
        self.position += 1;
        self.engine.on_merge(survivor, absorbed, self.position);
    }

    /// The actions so far, emptied.
    pub fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    pub fn sends(&mut self) -> Vec<Action> {
        self.take()
            .into_iter()
            .filter(|a| matches!(a, Action::Send { .. }))
            .collect()
    }
}

/// A send's key, context and instant.
pub fn send_parts(a: &Action) -> (&str, &Value, Millis) {
    match a {
        Action::Send {
            key, context, at, ..
        } => (key, context, *at),
        other => panic!("not a send: {other:?}"),
    }
}
