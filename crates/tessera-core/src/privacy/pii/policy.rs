//! A workspace's PII policy and its JSON form.
//!
//! ```json
//! {"classes":  {"email": "hash", "payment_card": "drop"},
//!  "fields":   {"properties.card": "drop", "traits.phone": "mask"},
//!  "declared": {"properties.customer_ref": "national_id", "properties.note": "none"}}
//! ```
//!
//! `classes` says what happens to each class; a class not named keeps its default: payment
//! cards are dropped, national ids and IBANs masked, everything else kept (people expect card
//! numbers never to be stored, even by a workspace that never wrote a policy). `fields`
//! overrides the class's action for one path; `declared` (usually from a tracking plan) fixes a
//! path's class whatever detection says, `"none"` meaning never personal.
//!
//! Paths are dotted, from the message root, and must start in a scanned section
//! (`properties`, `traits`, `context`): a path elsewhere could never match, so it is refused as
//! the typo it almost certainly is. A `*` segment stands for any array index
//! (`properties.items.*.email`). Every error names a JSON Pointer into the document.

use super::{Action, PiiClass};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A field's class as declared, overriding detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// Always this class, whatever the value looks like.
    Class(PiiClass),
    /// Never personal data (`"none"`), whatever the value looks like.
    NotPii,
}

impl Declared {
    pub fn as_str(self) -> &'static str {
        match self {
            Declared::Class(c) => c.as_str(),
            Declared::NotPii => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Declared> {
        match s {
            "none" => Some(Declared::NotPii),
            _ => PiiClass::parse(s).map(Declared::Class),
        }
    }
}

/// Why a policy document was refused, and where (a JSON Pointer; `""` is the whole document).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", location(.pointer), .message)]
pub struct PolicyError {
    pub pointer: String,
    pub message: String,
}

fn location(pointer: &str) -> String {
    if pointer.is_empty() {
        "at the top level".to_string()
    } else {
        format!("at {pointer}")
    }
}

fn err(pointer: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// Escapes an object key as a JSON Pointer reference token (RFC 6901).
fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The action of every class, indexed by [`PiiClass::index`]; its `Default` is the documented
/// defaults, so `PiiPolicy::default()` protects cards without any configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClassActions([Action; 6]);

impl Default for ClassActions {
    fn default() -> Self {
        ClassActions(PiiClass::ALL.map(default_action))
    }
}

/// The action of a class no policy names.
pub fn default_action(class: PiiClass) -> Action {
    match class {
        PiiClass::PaymentCard => Action::Drop,
        PiiClass::NationalId | PiiClass::Iban => Action::Mask,
        PiiClass::Email | PiiClass::Phone | PiiClass::IpAddress => Action::Keep,
    }
}

/// A workspace's policy: an action per class, actions per field path (overriding the class's),
/// and declared classes per field path (overriding detection).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PiiPolicy {
    classes: ClassActions,
    fields: BTreeMap<String, Action>,
    declared: BTreeMap<String, Declared>,
}

const SECTIONS: [&str; 3] = ["properties", "traits", "context"];
const TOP_KEYS: [&str; 3] = ["classes", "fields", "declared"];

impl PiiPolicy {
    /// A policy that keeps everything (and declares nothing): [`PiiPolicy::is_noop`].
    pub fn keep_all() -> PiiPolicy {
        PiiPolicy {
            classes: ClassActions([Action::Keep; 6]),
            ..PiiPolicy::default()
        }
    }

    /// Reads the JSON form (see the module documentation). Sections and classes left out keep
    /// their defaults; unknown keys are refused.
    pub fn from_json(v: &Value) -> Result<PiiPolicy, PolicyError> {
        let top = v.as_object().ok_or_else(|| err("", "expected an object"))?;
        if let Some(k) = top.keys().find(|k| !TOP_KEYS.contains(&k.as_str())) {
            return Err(err(
                format!("/{}", token(k)),
                format!(
                    "unknown key \"{k}\"; expected one of {}",
                    TOP_KEYS.join(", ")
                ),
            ));
        }
        let mut policy = PiiPolicy::default();
        for (k, v) in section(top, "classes")? {
            let at = format!("/classes/{}", token(k));
            let class = PiiClass::parse(k).ok_or_else(|| {
                err(
                    &at,
                    format!("unknown class \"{k}\"; expected one of {}", class_names()),
                )
            })?;
            policy.classes.0[class.index()] = action(v, &at)?;
        }
        for (k, v) in section(top, "fields")? {
            let at = format!("/fields/{}", token(k));
            check_path(k, &at)?;
            policy.fields.insert(k.clone(), action(v, &at)?);
        }
        for (k, v) in section(top, "declared")? {
            let at = format!("/declared/{}", token(k));
            check_path(k, &at)?;
            let d = v.as_str().and_then(Declared::parse).ok_or_else(|| {
                err(
                    &at,
                    format!("expected a class ({}) or \"none\"", class_names()),
                )
            })?;
            policy.declared.insert(k.clone(), d);
        }
        Ok(policy)
    }

    /// The canonical JSON form: every class with its action (defaults spelled out), then the
    /// field actions and declarations, keys sorted. `from_json(&p.to_json()) == p`.
    pub fn to_json(&self) -> Value {
        let classes: Map<String, Value> = PiiClass::ALL
            .iter()
            .map(|&c| (c.as_str().to_string(), self.class_action(c).as_str().into()))
            .collect();
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .map(|(k, a)| (k.clone(), a.as_str().into()))
            .collect();
        let declared: Map<String, Value> = self
            .declared
            .iter()
            .map(|(k, d)| (k.clone(), d.as_str().into()))
            .collect();
        let mut top = Map::new();
        top.insert("classes".into(), Value::Object(classes));
        top.insert("fields".into(), Value::Object(fields));
        top.insert("declared".into(), Value::Object(declared));
        Value::Object(top)
    }

    /// Every action is Keep and nothing is declared: applying the policy could change nothing,
    /// so ingest may skip scanning (and with it the findings, which would all say Keep).
    pub fn is_noop(&self) -> bool {
        self.classes.0.iter().all(|&a| a == Action::Keep)
            && self.fields.values().all(|&a| a == Action::Keep)
            && self.declared.is_empty()
    }

    pub fn class_action(&self, class: PiiClass) -> Action {
        self.classes.0[class.index()]
    }

    /// The action set for exactly this path (no `*` matching).
    pub fn field_action(&self, path: &str) -> Option<Action> {
        self.fields.get(path).copied()
    }

    /// The class declared for exactly this path (no `*` matching).
    pub fn declared(&self, path: &str) -> Option<Declared> {
        self.declared.get(path).copied()
    }

    pub fn with_class(mut self, class: PiiClass, action: Action) -> PiiPolicy {
        self.classes.0[class.index()] = action;
        self
    }

    /// Sets a field's action. The path is not checked here (unlike `from_json`); a path outside
    /// the scanned sections simply never matches.
    pub fn with_field(mut self, path: impl Into<String>, action: Action) -> PiiPolicy {
        self.fields.insert(path.into(), action);
        self
    }

    /// Declares a field's class (for instance from a tracking plan).
    pub fn with_declared(mut self, path: impl Into<String>, declared: Declared) -> PiiPolicy {
        self.declared.insert(path.into(), declared);
        self
    }
}

fn class_names() -> String {
    PiiClass::ALL.map(PiiClass::as_str).join(", ")
}

/// An optional object-valued section of the document; absent reads as empty.
fn section<'a>(
    top: &'a Map<String, Value>,
    key: &str,
) -> Result<impl Iterator<Item = (&'a String, &'a Value)>, PolicyError> {
    match top.get(key) {
        None => Ok(None.into_iter().flatten()),
        Some(Value::Object(m)) => Ok(Some(m.iter()).into_iter().flatten()),
        Some(_) => Err(err(format!("/{key}"), "expected an object")),
    }
}

fn action(v: &Value, at: &str) -> Result<Action, PolicyError> {
    v.as_str()
        .and_then(Action::parse)
        .ok_or_else(|| err(at, "expected one of \"keep\", \"hash\", \"mask\", \"drop\""))
}

/// A field path: dotted, no empty segment, under a scanned section and below its root.
fn check_path(path: &str, at: &str) -> Result<(), PolicyError> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(err(
            at,
            format!("field path \"{path}\" has an empty segment"),
        ));
    }
    if segments.len() < 2 || !SECTIONS.contains(&segments[0]) {
        return Err(err(
            at,
            format!(
                "field path \"{path}\" is never scanned; expected a field under {}",
                SECTIONS.join(", ")
            ),
        ));
    }
    Ok(())
}
