//! Tracking plans: what a workspace's events may look like, and the violations of those that
//! do not. A plan holds a JSON Schema per event name (for `track` properties, and for `page`
//! and `screen` by their name) and one for `identify` traits; at ingest, before the log, each
//! message is checked and its source's [`Mode`] says what happens to one that violates the
//! plan: stored silently, stored and flagged, or blocked.
//!
//! The schemas are a subset of JSON Schema (draft 2020-12 semantics), read and compiled once
//! by [`TrackingPlan::from_json`] (`schema.rs`), checked by hand-written code (`validate.rs`,
//! with `format.rs` for the `format` keyword). Plans are strict when read, as an unknown
//! keyword would otherwise pass every event, and `check` never fails on a message: whatever
//! it is given, it answers with a bounded list of violations.

mod format;
mod schema;
mod validate;

#[cfg(test)]
mod tests;

use schema::{child, Schema};
use serde_json::{Map, Value};
use thiserror::Error;
use validate::{validate, Sink};

/// At most this many violations are reported for one message, so that a hostile message
/// (thousands of wrong items) cannot make the record of its violations large.
pub const MAX_VIOLATIONS: usize = 50;

/// How deep schemas may nest in a plan (each `properties` entry, `items`,
/// `additionalProperties` and `anyOf`/`oneOf` branch is a level). Checking recurses along
/// the schema, so this bounds its stack whatever the message.
pub const MAX_SCHEMA_DEPTH: u32 = 32;

/// Why a plan was refused: where (a JSON Pointer into the plan, `""` for the whole plan) and
/// what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at {pointer}: {message}")]
pub struct PlanError {
    pub pointer: String,
    pub message: String,
}

/// One way a message breaks the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The event name, `"identify"`, or the page or screen name.
    pub event: String,
    /// Where in the message: `"properties.total"`, `"properties.items.0.sku"`,
    /// `"traits.email"`; `""` for the event itself (an unplanned event).
    pub path: String,
    /// The rule broken: the keyword in snake case (`type`, `required`, `min_length`,
    /// `additional_properties`, `any_of`, ...), `not_allowed` for a `false` schema, or
    /// `unplanned_event`.
    pub rule: String,
    /// For people. Names types and the plan's bounds, never the value: values may be
    /// personal data, and violations are stored and shown.
    pub message: String,
}

/// What a source does with a message that violates its workspace's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Store it and record nothing.
    Allow,
    /// Store it and record its violations.
    Flag,
    /// Do not store it; count it and record its violations.
    Block,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "allow" => Some(Mode::Allow),
            "flag" => Some(Mode::Flag),
            "block" => Some(Mode::Block),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Allow => "allow",
            Mode::Flag => "flag",
            Mode::Block => "block",
        }
    }
}

/// A workspace's tracking plan, compiled for checking.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingPlan {
    events: hashbrown::HashMap<String, Planned>,
    identify: Option<Planned>,
    /// Whether events missing from `events` are accepted (`"unplanned": "allow"`).
    unplanned_allowed: bool,
    /// Sorted by key: the PII module's input, kept here so one document describes the data.
    declared_pii: Vec<(String, String)>,
}

/// The plan of one event, or of `identify`.
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    schema: Schema,
    description: Option<String>,
}

type Object = Map<String, Value>;

fn err(pointer: &str, message: impl Into<String>) -> PlanError {
    PlanError {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}

fn only_keys(m: &Object, ptr: &str, allowed: &[&str]) -> Result<(), PlanError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(
            &child(ptr, k),
            format!("unknown field \"{k}\"; expected {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// An optional field; `null` counts as absent.
fn field<'a>(m: &'a Object, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

impl TrackingPlan {
    /// Reads a plan:
    ///
    /// ```json
    /// {"events": {"Order Completed": {"schema": {...}, "description": "..."}},
    ///  "identify": {"schema": {...}},
    ///  "unplanned": "allow" | "violate",
    ///  "declared_pii": {"properties.customer_ref": "national_id"}}
    /// ```
    ///
    /// Every field is optional: no `events` plans none, no `identify` leaves traits
    /// unchecked, `unplanned` defaults to `"violate"`, and an event without `schema` is
    /// planned with any properties.
    pub fn from_json(v: &Value) -> Result<TrackingPlan, PlanError> {
        let m = v
            .as_object()
            .ok_or_else(|| err("", "expected a tracking plan object"))?;
        only_keys(m, "", &["events", "identify", "unplanned", "declared_pii"])?;
        let mut events = hashbrown::HashMap::new();
        if let Some(e) = field(m, "events") {
            let e = e
                .as_object()
                .ok_or_else(|| err("/events", "expected an object of events by name"))?;
            for (name, plan) in e {
                events.insert(name.clone(), planned(plan, &child("/events", name))?);
            }
        }
        let identify = field(m, "identify")
            .map(|p| planned(p, "/identify"))
            .transpose()?;
        let unplanned_allowed = match field(m, "unplanned") {
            None => false,
            Some(u) => match u.as_str() {
                Some("allow") => true,
                Some("violate") => false,
                _ => return Err(err("/unplanned", "expected \"allow\" or \"violate\"")),
            },
        };
        let mut declared_pii = Vec::new();
        if let Some(d) = field(m, "declared_pii") {
            let d = d.as_object().ok_or_else(|| {
                err(
                    "/declared_pii",
                    "expected an object of field paths to kinds",
                )
            })?;
            for (path, kind) in d {
                let kind = kind
                    .as_str()
                    .ok_or_else(|| err(&child("/declared_pii", path), "expected a string"))?;
                declared_pii.push((path.clone(), kind.to_owned()));
            }
            declared_pii.sort();
        }
        Ok(TrackingPlan {
            events,
            identify,
            unplanned_allowed,
            declared_pii,
        })
    }

    /// The canonical JSON form, which [`TrackingPlan::from_json`] reads back to an equal
    /// plan: keys sorted, `unplanned` and `declared_pii` always written, each event's
    /// `schema` always written, schemas in their canonical form.
    pub fn to_json(&self) -> Value {
        // In name order whatever the map's order (serde_json's `Map` sorts today, but
        // would not with its `preserve_order` feature switched on by some other crate).
        let events: Object = self
            .event_names()
            .into_iter()
            .map(|name| (name.to_owned(), self.events[name].to_json()))
            .collect();
        let mut m = Object::new();
        m.insert("events".into(), Value::Object(events));
        if let Some(p) = &self.identify {
            m.insert("identify".into(), p.to_json());
        }
        let unplanned = if self.unplanned_allowed {
            "allow"
        } else {
            "violate"
        };
        m.insert("unplanned".into(), Value::from(unplanned));
        let pii: Object = self
            .declared_pii
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        m.insert("declared_pii".into(), Value::Object(pii));
        Value::Object(m)
    }

    /// The plan's `declared_pii` as (field path, kind) pairs, sorted by path. Opaque here;
    /// the PII module gives them meaning.
    pub fn declared_pii(&self) -> Vec<(String, String)> {
        self.declared_pii.clone()
    }

    /// The planned event (and page/screen) names, sorted.
    pub fn event_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.events.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Whether events not in the plan are accepted.
    pub fn allows_unplanned(&self) -> bool {
        self.unplanned_allowed
    }

    /// Checks one Segment message; an empty list means it conforms. At most
    /// [`MAX_VIOLATIONS`] are returned.
    ///
    /// - `track`: `properties` against the plan of its `event`; missing or `null`
    ///   properties count as `{}`.
    /// - `page`/`screen`: `properties` against the plan of the same name. An unnamed page or
    ///   screen is not checked: SDKs send those automatically, and there is no name to plan.
    /// - `identify`: `context.traits` overlaid with `traits` (so `traits` wins), against the
    ///   plan's `identify` schema if it has one; a non-object either side is ignored. Paths
    ///   start at `traits` whichever side a trait came from.
    /// - anything else (`group`, `alias`, a non-object) is not subject to plans.
    pub fn check(&self, message: &Value) -> Vec<Violation> {
        let Some(m) = message.as_object() else {
            return Vec::new();
        };
        let name = |key: &str| m.get(key).and_then(Value::as_str);
        match name("type") {
            // Message validation refuses a track without an event before this runs; should
            // one get here, it is checked as the (surely unplanned) event "".
            Some("track") => self.check_event(name("event").unwrap_or(""), m.get("properties")),
            Some("page" | "screen") => match name("name") {
                Some(n) => self.check_event(n, m.get("properties")),
                None => Vec::new(),
            },
            Some("identify") => self.check_identify(m),
            _ => Vec::new(),
        }
    }

    fn check_event(&self, event: &str, properties: Option<&Value>) -> Vec<Violation> {
        let Some(plan) = self.events.get(event) else {
            if self.unplanned_allowed {
                return Vec::new();
            }
            return vec![Violation {
                event: event.to_owned(),
                path: String::new(),
                rule: "unplanned_event".to_owned(),
                message: "event is not in the tracking plan".to_owned(),
            }];
        };
        let empty = Value::Object(Object::new());
        let properties = properties.filter(|p| !p.is_null()).unwrap_or(&empty);
        check_against(&plan.schema, event, "properties", properties)
    }

    fn check_identify(&self, m: &Object) -> Vec<Violation> {
        let Some(plan) = &self.identify else {
            return Vec::new();
        };
        let traits = m.get("traits").filter(|v| v.is_object());
        let context = m
            .get("context")
            .and_then(|c| c.get("traits"))
            .filter(|v| v.is_object());
        let is_empty = |v: &Value| v.as_object().is_some_and(Object::is_empty);
        let merged;
        let traits = match (traits, context) {
            // Merging copies, so it is done only when both sides have something to merge.
            (Some(Value::Object(t)), Some(Value::Object(c))) if !t.is_empty() && !c.is_empty() => {
                let mut all = c.clone();
                all.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
                merged = Value::Object(all);
                &merged
            }
            (Some(t), Some(c)) if is_empty(t) => c,
            (Some(one), _) | (None, Some(one)) => one,
            (None, None) => {
                merged = Value::Object(Object::new());
                &merged
            }
        };
        check_against(&plan.schema, "identify", "traits", traits)
    }
}

/// Checks `value` against `schema` as the part `root` of a message of `event`.
fn check_against(schema: &Schema, event: &str, root: &str, value: &Value) -> Vec<Violation> {
    let mut sink = Sink::new(event, root, MAX_VIOLATIONS);
    validate(schema, value, &mut sink);
    sink.into_violations()
}

/// Reads the plan of one event, or of `identify`, at `ptr`.
fn planned(v: &Value, ptr: &str) -> Result<Planned, PlanError> {
    let m = v
        .as_object()
        .ok_or_else(|| err(ptr, "expected an object with a \"schema\""))?;
    only_keys(m, ptr, &["schema", "description"])?;
    let schema = match field(m, "schema") {
        Some(s) => schema::parse(s, &child(ptr, "schema"), 0)?,
        None => Schema::Bool(true),
    };
    let description = field(m, "description")
        .map(|d| {
            d.as_str()
                .map(str::to_owned)
                .ok_or_else(|| err(&child(ptr, "description"), "expected a string"))
        })
        .transpose()?;
    Ok(Planned {
        schema,
        description,
    })
}

impl Planned {
    fn to_json(&self) -> Value {
        let mut m = Object::new();
        m.insert("schema".into(), self.schema.to_json());
        if let Some(d) = &self.description {
            m.insert("description".into(), Value::from(d.clone()));
        }
        Value::Object(m)
    }
}
