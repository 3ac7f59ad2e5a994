//! Filters over a JSON document: the `where` of a destination, of a journey's trigger, goal
//! and `wait_for` steps, and a journey branch's `if`. One language, one evaluator.
//!
//! The JSON form is `{"path": "properties.total", "op": "gt", "value": 100}` or
//! `{"in_audience": "aud_x"}`, combined with `{"all": [...]}`, `{"any": [...]}` and
//! `{"not": {...}}`. Paths are dot-separated; a numeric segment indexes an array. Comparison
//! rules are deliberately simple and total, because a filter runs on every accepted event and
//! must never fail at that point:
//!
//! - numbers compare by value, whatever their JSON representation (`1`, `1.0`, `u64::MAX`);
//! - strings compare by code point (no Unicode normalisation, no locale);
//! - anything else, including a missing field, a mismatched type or a `gt` between booleans,
//!   does not match, except `neq` and `not_exists`;
//! - `neq` is exactly `not eq`: a missing field, or one of another type, is "not equal"
//!   (`{"path": "properties.plan", "op": "neq", "value": "free"}` matches an event without a
//!   plan, and `120` is not equal to `"120"`). Combine it with `exists` in an `all` to require
//!   the field;
//! - `in_audience` asks the caller, which knows the profile ([`Condition::matches_with`]):
//!   journeys ask about the profile in the journey, destinations about the event's profile.
//!   An event without a profile is in no audience, and [`Condition::matches`] (a document
//!   alone) answers false.
//!
//! Parse errors carry a JSON Pointer relative to the condition; the caller prefixes its own
//! (journeys turn the error into theirs). A missing key is reported at the object that lacks
//! it, a pointer that resolves in the submitted document, with the key named in the message.
//! A value its operator can never match (`"gt"` against `true`) is refused as a mistake.
//! [`ConfigError`] and the small JSON readers shared by all of activation's configuration
//! parsers live here too, conditions being the innermost of them (`destination` re-exports
//! the error).

use serde_json::{json, Map, Number, Value};
use std::cmp::Ordering;
use thiserror::Error;

/// Conditions nest at most this deep, so a hostile definition cannot exhaust the stack of the
/// thread that applies every event.
pub const MAX_DEPTH: usize = 32;

/// Paths longer than this are refused: no real document nests that deep.
const MAX_PATH_SEGMENTS: usize = 32;

/// A dot-separated path into a JSON document, split once at parse time so that lookups (one
/// per event per filter) do not re-split the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    key: String,
    /// The array index this segment names, when it is a canonical decimal number. It is used
    /// only when the value at that point is an array: objects are always looked up by key, so
    /// `{"0": ...}` stays reachable.
    index: Option<usize>,
}

impl FieldPath {
    /// Splits a path. Every segment must be non-empty: `a..b` or a trailing dot is a typo.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        if text.is_empty() {
            return Err("the path is empty".into());
        }
        let mut segments = Vec::new();
        for key in text.split('.') {
            if key.is_empty() {
                return Err(format!("\"{text}\" has an empty segment"));
            }
            if segments.len() == MAX_PATH_SEGMENTS {
                return Err(format!("a path has at most {MAX_PATH_SEGMENTS} segments"));
            }
            // "01" is a key, not an index: only the canonical spelling of a number indexes,
            // so a path means one thing.
            let canonical = key.len() == 1 || !key.starts_with('0');
            let index = if canonical && key.bytes().all(|b| b.is_ascii_digit()) {
                key.parse().ok()
            } else {
                None
            };
            segments.push(Segment {
                key: key.to_owned(),
                index,
            });
        }
        Ok(FieldPath {
            text: text.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path, if there is one (an explicit `null` is a value).
    pub fn lookup<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        let mut cur = doc;
        for seg in &self.segments {
            cur = match cur {
                Value::Object(m) => m.get(&seg.key)?,
                Value::Array(a) => a.get(seg.index?)?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// A comparison operator of a leaf condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Contains,
    StartsWith,
    Exists,
    NotExists,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Eq,
        Op::Neq,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::In,
        Op::Contains,
        Op::StartsWith,
        Op::Exists,
        Op::NotExists,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Neq => "neq",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::In => "in",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::Exists => "exists",
            Op::NotExists => "not_exists",
        }
    }

    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == s)
    }

    /// Whether the operator takes a `value`.
    pub fn takes_value(self) -> bool {
        !matches!(self, Op::Exists | Op::NotExists)
    }
}

/// A filter over a JSON document.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `value` is `Null` for `exists` and `not_exists`, which take none.
    Test {
        path: FieldPath,
        op: Op,
        value: Value,
    },
    /// True when every member is (so an empty `all` is true).
    All(Vec<Condition>),
    /// True when some member is (so an empty `any` is false).
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// The profile is a member of this audience (an id, never empty).
    InAudience(String),
}

impl Condition {
    /// Reads the JSON form. Unknown keys are refused so that a typo is reported instead of
    /// silently matching everything.
    pub fn parse(v: &Value) -> Result<Condition, ConfigError> {
        parse_at(v, "", 0)
    }

    /// Whether the document satisfies the condition, with no profile to ask: every
    /// `in_audience` is false.
    pub fn matches(&self, doc: &Value) -> bool {
        self.matches_with(doc, &|_| false)
    }

    /// Whether the document satisfies the condition, `in_audience` answered by the caller
    /// (which knows the profile the document belongs to).
    pub fn matches_with(&self, doc: &Value, in_audience: &dyn Fn(&str) -> bool) -> bool {
        match self {
            Condition::Test { path, op, value } => test(*op, path.lookup(doc), value),
            Condition::All(cs) => cs.iter().all(|c| c.matches_with(doc, in_audience)),
            Condition::Any(cs) => cs.iter().any(|c| c.matches_with(doc, in_audience)),
            Condition::Not(c) => !c.matches_with(doc, in_audience),
            Condition::InAudience(a) => in_audience(a),
        }
    }

    /// The audience ids named by `in_audience`, in order of appearance and without repeats
    /// (for reference checks: an audience in use cannot be deleted).
    pub fn audiences(&self) -> Vec<String> {
        fn visit(c: &Condition, out: &mut Vec<String>) {
            match c {
                Condition::Test { .. } => {}
                Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| visit(c, out)),
                Condition::Not(c) => visit(c, out),
                Condition::InAudience(a) if !out.contains(a) => out.push(a.clone()),
                Condition::InAudience(_) => {}
            }
        }
        let mut out = Vec::new();
        visit(self, &mut out);
        out
    }

    /// The canonical JSON form; [`Condition::parse`] reads it back to an equal condition.
    pub fn to_json(&self) -> Value {
        match self {
            Condition::Test { path, op, value } => {
                let mut m = Map::new();
                m.insert("path".into(), Value::String(path.as_str().to_owned()));
                m.insert("op".into(), Value::String(op.as_str().to_owned()));
                if op.takes_value() {
                    m.insert("value".into(), value.clone());
                }
                Value::Object(m)
            }
            Condition::All(cs) => {
                json!({"all": cs.iter().map(Condition::to_json).collect::<Vec<_>>()})
            }
            Condition::Any(cs) => {
                json!({"any": cs.iter().map(Condition::to_json).collect::<Vec<_>>()})
            }
            Condition::Not(c) => json!({"not": c.to_json()}),
            Condition::InAudience(a) => json!({"in_audience": a}),
        }
    }
}

fn parse_at(v: &Value, at: &str, depth: usize) -> Result<Condition, ConfigError> {
    if depth >= MAX_DEPTH {
        return Err(ConfigError::new(
            at,
            format!("conditions nest at most {MAX_DEPTH} deep"),
        ));
    }
    let Value::Object(m) = v else {
        return Err(ConfigError::new(
            at,
            "expected a condition object: {\"path\", \"op\", \"value\"}, {\"in_audience\"}, \
             {\"all\"}, {\"any\"} or {\"not\"}",
        ));
    };
    for key in ["all", "any", "not", "in_audience"] {
        if let Some(inner) = m.get(key) {
            if m.len() != 1 {
                return Err(ConfigError::new(
                    at,
                    format!("\"{key}\" must be the only key of its object"),
                ));
            }
            let here = format!("{at}/{key}");
            return match (key, inner) {
                ("not", _) => Ok(Condition::Not(Box::new(parse_at(inner, &here, depth + 1)?))),
                ("in_audience", Value::String(a)) if !a.is_empty() => {
                    Ok(Condition::InAudience(a.clone()))
                }
                ("in_audience", _) => Err(ConfigError::new(here, "expected an audience id")),
                (_, Value::Array(items)) => {
                    let cs = items
                        .iter()
                        .enumerate()
                        .map(|(i, c)| parse_at(c, &format!("{here}/{i}"), depth + 1))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(if key == "all" {
                        Condition::All(cs)
                    } else {
                        Condition::Any(cs)
                    })
                }
                _ => Err(ConfigError::new(here, "expected an array of conditions")),
            };
        }
    }
    if let Some(k) = m
        .keys()
        .find(|k| !matches!(k.as_str(), "path" | "op" | "value"))
    {
        return Err(ConfigError::new(
            format!("{at}/{}", pointer_token(k)),
            format!("unknown key \"{k}\"; a condition has \"path\", \"op\" and \"value\""),
        ));
    }
    let path = match m.get("path") {
        Some(Value::String(s)) => {
            FieldPath::parse(s).map_err(|e| ConfigError::new(format!("{at}/path"), e))?
        }
        Some(_) => return Err(ConfigError::new(format!("{at}/path"), "expected a string")),
        None => return Err(ConfigError::new(at, "missing \"path\"")),
    };
    let op = match m.get("op") {
        Some(Value::String(s)) => Op::parse(s).ok_or_else(|| {
            ConfigError::new(
                format!("{at}/op"),
                format!(
                    "unknown operator \"{s}\"; expected one of {}",
                    Op::ALL.map(Op::as_str).join(", ")
                ),
            )
        })?,
        Some(_) => return Err(ConfigError::new(format!("{at}/op"), "expected a string")),
        None => return Err(ConfigError::new(at, "missing \"op\"")),
    };
    let value = match (op.takes_value(), m.get("value")) {
        (false, None) => Value::Null,
        (false, Some(_)) => {
            return Err(ConfigError::new(
                format!("{at}/value"),
                format!("\"{}\" takes no value", op.as_str()),
            ))
        }
        (true, None) => return Err(ConfigError::new(at, "missing \"value\"")),
        (true, Some(v)) => {
            check_value(op, v).map_err(|e| ConfigError::new(format!("{at}/value"), e))?;
            v.clone()
        }
    };
    Ok(Condition::Test { path, op, value })
}

/// Refuses values the operator can never match, which are surely mistakes.
fn check_value(op: Op, v: &Value) -> Result<(), String> {
    let ok = match op {
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => matches!(v, Value::Number(_) | Value::String(_)),
        Op::In => matches!(v, Value::Array(_)),
        Op::StartsWith => matches!(v, Value::String(_)),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(match op {
        Op::In => "\"in\" takes an array of values".into(),
        Op::StartsWith => "\"starts_with\" takes a string".into(),
        _ => format!("\"{}\" takes a number or a string", op.as_str()),
    })
}

fn test(op: Op, actual: Option<&Value>, expected: &Value) -> bool {
    match op {
        Op::Exists => actual.is_some_and(|v| !v.is_null()),
        Op::NotExists => actual.is_none_or(Value::is_null),
        Op::Neq => !test(Op::Eq, actual, expected),
        _ => {
            let Some(actual) = actual else { return false };
            match op {
                Op::Eq => json_eq(actual, expected),
                Op::Gt => order(actual, expected) == Some(Ordering::Greater),
                Op::Gte => matches!(
                    order(actual, expected),
                    Some(Ordering::Greater | Ordering::Equal)
                ),
                Op::Lt => order(actual, expected) == Some(Ordering::Less),
                Op::Lte => matches!(
                    order(actual, expected),
                    Some(Ordering::Less | Ordering::Equal)
                ),
                Op::In => match expected {
                    Value::Array(items) => items.iter().any(|e| json_eq(actual, e)),
                    _ => false,
                },
                Op::Contains => match (actual, expected) {
                    (Value::String(a), Value::String(e)) => a.contains(e.as_str()),
                    (Value::Array(items), e) => items.iter().any(|a| json_eq(a, e)),
                    _ => false,
                },
                Op::StartsWith => match (actual, expected) {
                    (Value::String(a), Value::String(e)) => a.starts_with(e.as_str()),
                    _ => false,
                },
                Op::Exists | Op::NotExists | Op::Neq => unreachable!("handled above"),
            }
        }
    }
}

/// Equality where numbers compare by value (`1 == 1.0`), recursively inside arrays and
/// objects, and anything else structurally.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// The order of two values of the same comparable type; `None` for anything else.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Some(num_cmp(x, y)),
        // UTF-8 byte order is code point order.
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

/// A JSON number as serde_json holds it: integers keep full 64-bit precision, which a plain
/// conversion to `f64` would lose (`2^53 + 1`).
enum Num {
    Int(i128),
    Float(f64),
}

fn num(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i as i128)
    } else if let Some(u) = n.as_u64() {
        Num::Int(u as i128)
    } else {
        // JSON has no NaN or infinity, so this is always a finite float.
        Num::Float(n.as_f64().unwrap_or(0.0))
    }
}

/// Exact comparison of two JSON numbers, mixing integers and floats correctly.
pub fn num_cmp(a: &Number, b: &Number) -> Ordering {
    match (num(a), num(b)) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Num::Int(x), Num::Float(y)) => int_float_cmp(x, y),
        (Num::Float(x), Num::Int(y)) => int_float_cmp(y, x).reverse(),
    }
}

/// Compares an integer (within the i64 ∪ u64 range) with a finite float without rounding
/// either: the float's integral part is exact in i128 whenever it is within that range.
fn int_float_cmp(i: i128, f: f64) -> Ordering {
    // Every JSON integer lies strictly between these, so a float beyond them decides at once.
    const LOW: f64 = -9_223_372_036_854_775_808.0; // -2^63
    const HIGH: f64 = 18_446_744_073_709_551_616.0; // 2^64
    if f.is_nan() {
        return Ordering::Equal;
    }
    if f < LOW {
        return Ordering::Greater;
    }
    if f >= HIGH {
        return Ordering::Less;
    }
    let whole = f.trunc();
    match i.cmp(&(whole as i128)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal),
        other => other,
    }
}

/// The JSON objects configuration is read from.
pub(super) type Object = Map<String, Value>;

/// A configuration error: what is wrong, and where (a JSON Pointer into the submitted
/// document). Shared by destinations, conditions and templates.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at {pointer}: {message}")]
pub struct ConfigError {
    pub pointer: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// The same error seen from an enclosing document in which the checked value sits at
    /// `prefix` (itself a pointer).
    pub fn within(mut self, prefix: &str) -> ConfigError {
        self.pointer.insert_str(0, prefix);
        self
    }
}

/// Escapes an object key as a JSON Pointer reference token (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

// Small readers shared by the activation configuration parsers (conditions, destinations,
// retry policies), each failing with a pointer to the value it read.

pub(super) fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Object, ConfigError> {
    v.as_object()
        .ok_or_else(|| ConfigError::new(at, "expected an object"))
}

/// A required field; when it is missing the pointer names the field itself (where it should
/// be), as journeys do.
pub(super) fn required<'a>(m: &'a Object, at: &str, key: &str) -> Result<&'a Value, ConfigError> {
    m.get(key).ok_or_else(|| {
        ConfigError::new(
            format!("{at}/{}", pointer_token(key)),
            format!("missing \"{key}\""),
        )
    })
}

pub(super) fn string<'a>(v: &'a Value, at: &str) -> Result<&'a str, ConfigError> {
    v.as_str()
        .ok_or_else(|| ConfigError::new(at, "expected a string"))
}

pub(super) fn boolean(v: &Value, at: &str) -> Result<bool, ConfigError> {
    v.as_bool()
        .ok_or_else(|| ConfigError::new(at, "expected true or false"))
}

pub(super) fn integer(v: &Value, at: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    v.as_u64()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| ConfigError::new(at, format!("expected an integer from {min} to {max}")))
}

pub(super) fn only_keys(m: &Object, at: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ConfigError::new(
            format!("{at}/{}", pointer_token(k)),
            format!(
                "unknown key \"{k}\"; expected one of {}",
                allowed.join(", ")
            ),
        )),
    }
}

#[cfg(test)]
#[path = "tests/condition.rs"]
mod tests;
