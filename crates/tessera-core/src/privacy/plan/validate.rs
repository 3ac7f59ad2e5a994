//! Checking a value against a compiled schema. This runs on every ingested event, so it
//! allocates only for violations it records, builds each path in one reused buffer, and stops
//! as soon as the cap on violations is reached. Recursion follows the schema, never the value
//! alone, so a deeply nested message costs no more stack than the plan's own depth.
//!
//! Messages describe what was wrong by type and by the plan's own bounds, never by quoting the
//! value: a violation is stored and shown in the debugger, and values may be personal data.

// Numbers compare exactly and `1` equals `1.0`, as in destination filters.
use super::schema::{Node, Schema};
use super::Violation;
pub(crate) use crate::activation::condition::{json_eq, num_cmp as number_cmp};
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;
use std::fmt::Write;

/// Where violations go. A probe (used for `anyOf`/`oneOf` branches) only needs to know whether
/// anything failed, so it stops at the first failure and builds neither paths nor messages.
pub(crate) struct Sink<'a> {
    event: &'a str,
    path: String,
    out: Vec<Violation>,
    limit: usize,
    probe: bool,
    failed: bool,
}

impl<'a> Sink<'a> {
    /// A sink for `event`, with paths starting at `root` (`"properties"` or `"traits"`).
    pub(crate) fn new(event: &'a str, root: &str, limit: usize) -> Sink<'a> {
        Sink {
            event,
            path: root.to_owned(),
            out: Vec::new(),
            limit,
            probe: false,
            failed: false,
        }
    }

    fn probe() -> Sink<'static> {
        Sink {
            event: "",
            path: String::new(),
            out: Vec::new(),
            limit: 1,
            probe: true,
            failed: false,
        }
    }

    pub(crate) fn into_violations(self) -> Vec<Violation> {
        self.out
    }

    fn full(&self) -> bool {
        self.failed || self.out.len() >= self.limit
    }

    /// Records a violation at the current path; the message is only built when kept.
    fn fail(&mut self, rule: &'static str, message: impl FnOnce() -> String) {
        if self.full() {
            return;
        }
        if self.probe {
            self.failed = true;
            return;
        }
        self.out.push(Violation {
            event: self.event.to_owned(),
            path: self.path.clone(),
            rule: rule.to_owned(),
            message: message(),
        });
    }

    /// Appends a path segment; returns what [`Sink::leave`] needs to take it off again.
    fn enter(&mut self, segment: impl std::fmt::Display) -> usize {
        let len = self.path.len();
        if !self.probe {
            if !self.path.is_empty() {
                self.path.push('.');
            }
            // Writing to a String cannot fail.
            let _ = write!(self.path, "{segment}");
        }
        len
    }

    fn leave(&mut self, len: usize) {
        self.path.truncate(len);
    }
}

/// Checks `value` against `schema`, recording violations in `sink`.
pub(crate) fn validate(schema: &Schema, value: &Value, sink: &mut Sink<'_>) {
    let node = match schema {
        Schema::Bool(true) => return,
        Schema::Bool(false) => {
            sink.fail("not_allowed", || "no value is allowed here".to_owned());
            return;
        }
        Schema::Node(n) => n,
    };
    if sink.full() {
        return;
    }
    if let Some(t) = node.types {
        if !t.matches(value) {
            // The other keywords would mostly repeat the same mistake in other words.
            sink.fail("type", || {
                format!("expected {}, got {}", t.describe(), type_name(value))
            });
            return;
        }
    }
    if let Some(c) = &node.constant {
        if !json_eq(c, value) {
            sink.fail("const", || "not the value the plan requires".to_owned());
        }
    }
    if let Some(e) = &node.enumeration {
        if !e.iter().any(|x| json_eq(x, value)) {
            sink.fail("enum", || {
                format!("not one of the {} allowed values", e.len())
            });
        }
    }
    match value {
        Value::Number(n) => numeric(node, n, sink),
        Value::String(s) => string(node, s, sink),
        Value::Array(a) => array(node, a, sink),
        Value::Object(o) => object(node, o, sink),
        Value::Bool(_) | Value::Null => {}
    }
    alternatives(node, value, sink);
}

fn numeric(node: &Node, n: &Number, sink: &mut Sink<'_>) {
    if let Some(min) = &node.minimum {
        if number_cmp(n, min) == Ordering::Less {
            sink.fail("minimum", || format!("expected at least {min}"));
        }
    }
    if let Some(max) = &node.maximum {
        if number_cmp(n, max) == Ordering::Greater {
            sink.fail("maximum", || format!("expected at most {max}"));
        }
    }
    if let Some(min) = &node.exclusive_minimum {
        if number_cmp(n, min) != Ordering::Greater {
            sink.fail("exclusive_minimum", || format!("expected more than {min}"));
        }
    }
    if let Some(max) = &node.exclusive_maximum {
        if number_cmp(n, max) != Ordering::Less {
            sink.fail("exclusive_maximum", || format!("expected less than {max}"));
        }
    }
}

fn string(node: &Node, s: &str, sink: &mut Sink<'_>) {
    if node.min_length.is_some() || node.max_length.is_some() {
        // Characters (Unicode scalar values), as JSON Schema counts them, not bytes.
        let len = s.chars().count() as u64;
        if let Some(min) = node.min_length.filter(|m| len < *m) {
            sink.fail("min_length", || {
                format!("expected at least {min} characters, got {len}")
            });
        }
        if let Some(max) = node.max_length.filter(|m| len > *m) {
            sink.fail("max_length", || {
                format!("expected at most {max} characters, got {len}")
            });
        }
    }
    if let Some(p) = &node.pattern {
        if !p.regex.is_match(s) {
            sink.fail("pattern", || {
                format!("does not match the pattern {}", p.source)
            });
        }
    }
    if let Some(f) = node.format {
        if !f.matches(s) {
            sink.fail("format", || format!("expected {}", f.describe()));
        }
    }
}

fn array(node: &Node, a: &[Value], sink: &mut Sink<'_>) {
    let len = a.len() as u64;
    if let Some(min) = node.min_items.filter(|m| len < *m) {
        sink.fail("min_items", || {
            format!("expected at least {min} items, got {len}")
        });
    }
    if let Some(max) = node.max_items.filter(|m| len > *m) {
        sink.fail("max_items", || {
            format!("expected at most {max} items, got {len}")
        });
    }
    if let Some(items) = &node.items {
        for (i, x) in a.iter().enumerate() {
            if sink.full() {
                break;
            }
            let mark = sink.enter(i);
            validate(items, x, sink);
            sink.leave(mark);
        }
    }
}

fn object(node: &Node, o: &Map<String, Value>, sink: &mut Sink<'_>) {
    for name in &node.required {
        if !o.contains_key(name) {
            let mark = sink.enter(name);
            sink.fail("required", || "required property is missing".to_owned());
            sink.leave(mark);
        }
    }
    // Nothing more to check when no property is described and any other is welcome.
    if node.properties.is_empty() && node.additional.is_none() {
        return;
    }
    for (key, x) in o {
        if sink.full() {
            return;
        }
        let found = node
            .properties
            .binary_search_by(|(name, _)| name.as_str().cmp(key))
            .ok()
            .map(|i| &node.properties[i].1);
        let schema = match (found, &node.additional) {
            (Some(s), _) => s,
            (None, None) => continue,
            (None, Some(Schema::Bool(false))) => {
                let mark = sink.enter(key);
                sink.fail("additional_properties", || {
                    "property is not in the plan".to_owned()
                });
                sink.leave(mark);
                continue;
            }
            (None, Some(s)) => s,
        };
        let mark = sink.enter(key);
        validate(schema, x, sink);
        sink.leave(mark);
    }
}

fn alternatives(node: &Node, value: &Value, sink: &mut Sink<'_>) {
    let matches = |s: &Schema| {
        let mut probe = Sink::probe();
        validate(s, value, &mut probe);
        !probe.failed
    };
    if !node.any_of.is_empty() && !node.any_of.iter().any(matches) {
        let n = node.any_of.len();
        sink.fail("any_of", || format!("matches none of the {n} alternatives"));
    }
    if !node.one_of.is_empty() {
        let n = node.one_of.len();
        // Two matches already break "exactly one"; the rest need not be tried.
        match node.one_of.iter().filter(|s| matches(s)).take(2).count() {
            1 => {}
            0 => sink.fail("one_of", || format!("matches none of the {n} alternatives")),
            _ => sink.fail("one_of", || {
                format!("matches more than one of the {n} alternatives, expected exactly one")
            }),
        }
    }
}

/// The JSON type of a value, in the words of `type`.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
    }
}
