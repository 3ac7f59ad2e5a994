//! Writes the JSON form of definitions, the shape the API and the dashboard exchange. It is
//! written by hand rather than derived because the syntax tree is a domain type, not a wire
//! type; `json_read.rs` reads it back and property tests check the round trip.
//!
//! Shapes (see `docs/audience-language.md`):
//! - `{"and": [..]}`, `{"or": [..]}`, `{"not": ..}` around leaves;
//! - `{"trait": "address.city", "op": "=", "value": "Berlin"}` (`values` for `in` / `not_in`,
//!   nothing for `exists` / `not_exists`, `{"amount": 30, "unit": "days"}` for `within`);
//! - `{"performed": "Product Viewed", "where": .., "at_least": 3, "window": {..}}`,
//!   `{"did_not_perform": ..}`, `{"in_audience": "name"}`;
//! - in `where`, leaves are `{"property": "category", "op": .., ..}`;
//! - a computed trait is `{"aggregate": "sum", "property": "revenue", "event": "..", "where":
//!   .., "window": ..}`.

use super::ast::{
    prop_path_needs_prefix, Audience, ComputedDef, Condition, EventCond, Literal, Logic,
    Occurrence, Period, Predicate, Test, Window,
};
use serde_json::{json, Map, Value};

impl Audience {
    /// The JSON form of this audience.
    pub fn to_json(&self) -> Value {
        logic(&self.root, &condition)
    }
}

impl ComputedDef {
    /// The JSON form of this computed trait.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("aggregate".into(), self.aggregate.as_str().into());
        if let Some(p) = &self.property {
            m.insert("property".into(), prop_path(p));
        }
        m.insert("event".into(), self.event.clone().into());
        put_filter_and_window(&mut m, self.filter.as_ref(), self.window);
        Value::Object(m)
    }
}

fn logic<L>(e: &Logic<L>, leaf: &dyn Fn(&L) -> Value) -> Value {
    match e {
        Logic::And(terms) => {
            json!({ "and": terms.iter().map(|t| logic(t, leaf)).collect::<Vec<_>>() })
        }
        Logic::Or(terms) => {
            json!({ "or": terms.iter().map(|t| logic(t, leaf)).collect::<Vec<_>>() })
        }
        Logic::Not(inner) => json!({ "not": logic(inner, leaf) }),
        Logic::Leaf(l) => leaf(l),
    }
}

fn condition(c: &Condition) -> Value {
    match c {
        Condition::Trait(p) => predicate("trait", path(&p.path), p),
        Condition::Event(e) => event(e),
        Condition::InAudience(a) => json!({ "in_audience": a.name }),
    }
}

fn event(e: &EventCond) -> Value {
    let mut m = Map::new();
    let key = if e.occurrence == Occurrence::Never {
        "did_not_perform"
    } else {
        "performed"
    };
    m.insert(key.into(), e.event.clone().into());
    match e.occurrence {
        Occurrence::Never => {}
        o if o == Occurrence::DEFAULT => {}
        Occurrence::AtLeast(n) => {
            m.insert("at_least".into(), n.into());
        }
        Occurrence::AtMost(n) => {
            m.insert("at_most".into(), n.into());
        }
        Occurrence::Exactly(n) => {
            m.insert("exactly".into(), n.into());
        }
    }
    put_filter_and_window(&mut m, e.filter.as_ref(), e.window);
    Value::Object(m)
}

fn put_filter_and_window(m: &mut Map<String, Value>, filter: Option<&Logic<Predicate>>, w: Window) {
    if let Some(f) = filter {
        m.insert(
            "where".into(),
            logic(f, &|p| predicate("property", prop_path(&p.path), p)),
        );
    }
    if let Window::Last(p) = w {
        m.insert("window".into(), period(p));
    }
}

fn predicate(key: &str, path: Value, p: &Predicate) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), path);
    let (op, value) = match &p.test {
        Test::Compare(op, lit) => (op.as_str(), Some(literal(lit))),
        Test::In(list) => ("in", Some(Value::Array(list.iter().map(literal).collect()))),
        Test::NotIn(list) => (
            "not_in",
            Some(Value::Array(list.iter().map(literal).collect())),
        ),
        Test::Contains(s) => ("contains", Some(s.clone().into())),
        Test::StartsWith(s) => ("starts_with", Some(s.clone().into())),
        Test::Exists => ("exists", None),
        Test::NotExists => ("not_exists", None),
        Test::Within(p) => ("within", Some(period(*p))),
        Test::Before(d) => ("before", Some(d.text.clone().into())),
        Test::After(d) => ("after", Some(d.text.clone().into())),
    };
    m.insert("op".into(), op.into());
    if let Some(v) = value {
        let field = if matches!(p.test, Test::In(_) | Test::NotIn(_)) {
            "values"
        } else {
            "value"
        };
        m.insert(field.into(), v);
    }
    Value::Object(m)
}

pub(super) fn literal(lit: &Literal) -> Value {
    match lit {
        Literal::String(s) => Value::String(s.clone()),
        Literal::Number(n) => Value::Number(n.clone()),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Null => Value::Null,
    }
}

fn period(p: Period) -> Value {
    json!({ "amount": p.amount, "unit": p.unit.plural() })
}

/// `"address.city"`, or `["a.b", "c"]` when a segment holds a dot and so cannot be joined.
fn path(segments: &[String]) -> Value {
    if segments.iter().any(|s| s.contains('.')) {
        Value::Array(segments.iter().map(|s| Value::String(s.clone())).collect())
    } else {
        Value::String(segments.join("."))
    }
}

/// A property path, with `properties.` put back where the reader would otherwise strip a real
/// segment.
fn prop_path(segments: &[String]) -> Value {
    if prop_path_needs_prefix(segments) {
        let mut full = vec!["properties".to_owned()];
        full.extend(segments.iter().cloned());
        path(&full)
    } else {
        path(segments)
    }
}
