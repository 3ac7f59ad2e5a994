//! Reads the JSON form of definitions (written by `json.rs`) back into syntax trees. Strict
//! about shape (unknown fields are refused, so a typo is not silently ignored) and lenient
//! about what does not matter (`"day"` or `"days"`, one-element `and` groups). Errors carry a
//! JSON Pointer to the offending value.

use super::ast::{
    normalize_prop_path, Aggregate, Audience, AudienceRef, CmpOp, ComputedDef, Condition, DateLit,
    EventCond, Literal, Logic, Occurrence, Path, Period, Pos, Predicate, Test, Unit, Window,
};
use super::display::{audience_depth, filter_depth};
use super::error::LangError;
use super::parser::MAX_DEPTH;
use crate::time::parse_iso8601;
use serde_json::{Map, Value};

/// A bound on the JSON nesting, checked while reading so that the reader's recursion stays
/// shallow. JSON nests `and` in `or` where text needs no parentheses, so a tree whose text is
/// within [`MAX_DEPTH`] can be up to about twice as deep in JSON; the exact limit, the depth
/// of the text form, is checked on the finished tree.
const JSON_MAX_DEPTH: u32 = 2 * MAX_DEPTH + 2;

type Object = Map<String, Value>;
type ReadLeaf<'a, L> = &'a dyn Fn(&Object, &str, u32) -> Result<L, LangError>;

impl Audience {
    /// Reads the JSON form of an audience.
    pub fn from_json(v: &Value) -> Result<Audience, LangError> {
        let audience = Audience {
            root: logic(v, "", 0, &condition)?,
        };
        within_text_depth(audience_depth(&audience))?;
        Ok(audience)
    }
}

impl ComputedDef {
    /// Reads the JSON form of a computed trait.
    pub fn from_json(v: &Value) -> Result<ComputedDef, LangError> {
        let m = object(v, "", "a computed trait object")?;
        only_keys(
            m,
            "",
            &["aggregate", "property", "event", "where", "window"],
        )?;
        let name = string(required(m, "", "aggregate")?, "/aggregate")?;
        let aggregate = Aggregate::parse(name).ok_or_else(|| {
            LangError::json(
                "/aggregate",
                format!(
                    "unknown aggregate \"{name}\"; expected count, sum, avg, min, max, first, \
                     last, most_frequent, unique or unique_count"
                ),
            )
        })?;
        let property = match m.get("property") {
            None | Some(Value::Null) => None,
            Some(p) => Some(normalize_prop_path(path(p, "/property")?)),
        };
        match (aggregate.needs_property(), &property) {
            (false, Some(_)) => {
                return Err(LangError::json(
                    "/property",
                    "\"count\" counts events and takes no property",
                ))
            }
            (true, None) => {
                return Err(LangError::json(
                    "",
                    format!("\"{}\" needs an event \"property\"", aggregate.as_str()),
                ))
            }
            _ => {}
        }
        let event = string(required(m, "", "event")?, "/event")?.to_owned();
        let (filter, window) = filter_and_window(m, "", 0)?;
        within_text_depth(filter_depth(filter.as_ref()))?;
        Ok(ComputedDef {
            pos: Pos::UNKNOWN,
            aggregate,
            property,
            event,
            filter,
            window,
        })
    }
}

/// Refuses a tree whose text form the parser would refuse as too deep, so that every
/// definition accepted in JSON can also be shown and stored as text.
fn within_text_depth(depth: u32) -> Result<(), LangError> {
    if depth > MAX_DEPTH {
        return Err(LangError::json(
            "",
            format!(
                "the definition is nested too deeply (its text would have more than {MAX_DEPTH} \
                 levels of parentheses and \"not\")"
            ),
        ));
    }
    Ok(())
}

fn logic<L>(
    v: &Value,
    ptr: &str,
    depth: u32,
    leaf: ReadLeaf<'_, L>,
) -> Result<Logic<L>, LangError> {
    if depth > JSON_MAX_DEPTH {
        return Err(LangError::json(
            ptr,
            format!("the definition is nested too deeply (more than {JSON_MAX_DEPTH} levels)"),
        ));
    }
    let m = object(v, ptr, "a condition object")?;
    for key in ["and", "or"] {
        let Some(terms) = m.get(key) else { continue };
        only_keys(m, ptr, &[key])?;
        let at = child(ptr, key);
        let Value::Array(terms) = terms else {
            return Err(LangError::json(&at, "expected an array of conditions"));
        };
        if terms.is_empty() {
            return Err(LangError::json(&at, "expected at least one condition"));
        }
        let mut read = terms
            .iter()
            .enumerate()
            .map(|(i, t)| logic(t, &child(&at, &i.to_string()), depth + 1, leaf))
            .collect::<Result<Vec<_>, _>>()?;
        // A group of one is just its member: trees keep `And` / `Or` for two or more, as the
        // parser does.
        if read.len() == 1 {
            return Ok(read.pop().expect("one term"));
        }
        return Ok(if key == "and" {
            Logic::And(read)
        } else {
            Logic::Or(read)
        });
    }
    if let Some(inner) = m.get("not") {
        only_keys(m, ptr, &["not"])?;
        let inner = logic(inner, &child(ptr, "not"), depth + 1, leaf)?;
        return Ok(Logic::Not(Box::new(inner)));
    }
    Ok(Logic::Leaf(leaf(m, ptr, depth)?))
}

fn condition(m: &Object, ptr: &str, depth: u32) -> Result<Condition, LangError> {
    if m.contains_key("trait") {
        return Ok(Condition::Trait(predicate(m, ptr, "trait")?));
    }
    if m.contains_key("performed") || m.contains_key("did_not_perform") {
        return Ok(Condition::Event(event(m, ptr, depth)?));
    }
    if let Some(name) = m.get("in_audience") {
        only_keys(m, ptr, &["in_audience"])?;
        let name = string(name, &child(ptr, "in_audience"))?.to_owned();
        return Ok(Condition::InAudience(AudienceRef {
            pos: Pos::UNKNOWN,
            name,
        }));
    }
    Err(LangError::json(
        ptr,
        "expected an object with one of \"and\", \"or\", \"not\", \"trait\", \"performed\", \
         \"did_not_perform\" or \"in_audience\"",
    ))
}

fn event(m: &Object, ptr: &str, depth: u32) -> Result<EventCond, LangError> {
    let negated = !m.contains_key("performed");
    let key = if negated {
        "did_not_perform"
    } else {
        "performed"
    };
    const COUNTS: [&str; 3] = ["at_least", "at_most", "exactly"];
    if negated {
        if let Some(k) = COUNTS.iter().find(|k| m.contains_key(**k)) {
            return Err(LangError::json(
                &child(ptr, k),
                "\"did_not_perform\" takes no count; use \"performed\" with \"at_most\"",
            ));
        }
    }
    only_keys(
        m,
        ptr,
        &[key, "where", "at_least", "at_most", "exactly", "window"],
    )?;
    let event = string(&m[key], &child(ptr, key))?.to_owned();
    let mut occurrence = if negated {
        Occurrence::Never
    } else {
        Occurrence::DEFAULT
    };
    let mut seen = None;
    for k in COUNTS {
        let Some(v) = m.get(k) else { continue };
        let at = child(ptr, k);
        if let Some(other) = seen {
            return Err(LangError::json(
                &at,
                format!("\"{k}\" cannot be combined with \"{other}\""),
            ));
        }
        seen = Some(k);
        let n = whole_number(v, &at)?;
        occurrence = match k {
            "at_least" => Occurrence::AtLeast(n),
            "at_most" => Occurrence::AtMost(n),
            _ => Occurrence::Exactly(n),
        };
    }
    let (filter, window) = filter_and_window(m, ptr, depth)?;
    Ok(EventCond {
        pos: Pos::UNKNOWN,
        event,
        filter,
        occurrence,
        window,
    })
}

fn filter_and_window(
    m: &Object,
    ptr: &str,
    depth: u32,
) -> Result<(Option<Logic<Predicate>>, Window), LangError> {
    let filter = match m.get("where") {
        None | Some(Value::Null) => None,
        Some(f) => Some(logic(f, &child(ptr, "where"), depth + 1, &prop_leaf)?),
    };
    let window = match m.get("window") {
        None | Some(Value::Null) => Window::Ever,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("ever") => Window::Ever,
        Some(w) => Window::Last(period(w, &child(ptr, "window"))?),
    };
    Ok((filter, window))
}

fn prop_leaf(m: &Object, ptr: &str, _depth: u32) -> Result<Predicate, LangError> {
    if m.contains_key("property") {
        return predicate(m, ptr, "property");
    }
    Err(LangError::json(
        ptr,
        "expected an object with one of \"and\", \"or\", \"not\" or \"property\"",
    ))
}

/// `{"trait" | "property": path, "op": .., "value" | "values": ..}`.
fn predicate(m: &Object, ptr: &str, key: &str) -> Result<Predicate, LangError> {
    only_keys(m, ptr, &[key, "op", "value", "values"])?;
    let mut p = path(&m[key], &child(ptr, key))?;
    if key == "property" {
        p = normalize_prop_path(p);
    }
    let op_ptr = child(ptr, "op");
    let op = string(required(m, ptr, "op")?, &op_ptr)?;
    let wants = match op {
        "in" | "not_in" => Some("values"),
        "exists" | "not_exists" => None,
        _ => Some("value"),
    };
    for field in ["value", "values"] {
        if m.contains_key(field) && wants != Some(field) {
            let hint = match wants {
                Some(w) => format!("\"{op}\" takes \"{w}\", not \"{field}\""),
                None => format!("\"{op}\" takes no value"),
            };
            return Err(LangError::json(&child(ptr, field), hint));
        }
    }
    let value = || required(m, ptr, wants.unwrap_or("value"));
    let value_ptr = child(ptr, wants.unwrap_or("value"));
    let test = match op {
        "in" | "not_in" => {
            let Value::Array(items) = value()? else {
                return Err(LangError::json(&value_ptr, "expected an array of values"));
            };
            if items.is_empty() {
                return Err(LangError::json(&value_ptr, "expected at least one value"));
            }
            let list = items
                .iter()
                .enumerate()
                .map(|(i, v)| literal(v, &child(&value_ptr, &i.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            if op == "in" {
                Test::In(list)
            } else {
                Test::NotIn(list)
            }
        }
        "exists" => Test::Exists,
        "not_exists" => Test::NotExists,
        "contains" => Test::Contains(string(value()?, &value_ptr)?.to_owned()),
        "starts_with" => Test::StartsWith(string(value()?, &value_ptr)?.to_owned()),
        "within" => Test::Within(period(value()?, &value_ptr)?),
        "before" => Test::Before(date(value()?, &value_ptr)?),
        "after" => Test::After(date(value()?, &value_ptr)?),
        _ => match CmpOp::parse(op) {
            Some(cmp) => Test::Compare(cmp, literal(value()?, &value_ptr)?),
            None => {
                return Err(LangError::json(
                    &op_ptr,
                    format!(
                        "unknown operator \"{op}\"; expected =, !=, >, >=, <, <=, in, not_in, \
                         contains, starts_with, exists, not_exists, within, before or after"
                    ),
                ))
            }
        },
    };
    Ok(Predicate {
        pos: Pos::UNKNOWN,
        path: p,
        test,
    })
}

fn literal(v: &Value, ptr: &str) -> Result<Literal, LangError> {
    Ok(match v {
        Value::String(s) => Literal::String(s.clone()),
        Value::Number(n) => Literal::Number(n.clone()),
        Value::Bool(b) => Literal::Bool(*b),
        Value::Null => Literal::Null,
        _ => {
            return Err(LangError::json(
                ptr,
                "expected a value (a string, number, true, false or null)",
            ))
        }
    })
}

fn date(v: &Value, ptr: &str) -> Result<DateLit, LangError> {
    let text = string(v, ptr)?;
    let ms = parse_iso8601(text).map_err(|_| {
        LangError::json(
            ptr,
            format!(
                "\"{text}\" is not an ISO-8601 date; expected a date such as \"2024-05-01\" or \
                 \"2024-05-01T12:30:00Z\""
            ),
        )
    })?;
    Ok(DateLit {
        text: text.to_owned(),
        ms,
    })
}

/// `{"amount": 30, "unit": "days"}`.
fn period(v: &Value, ptr: &str) -> Result<Period, LangError> {
    let m = object(
        v,
        ptr,
        "a period such as {\"amount\": 30, \"unit\": \"days\"}",
    )?;
    only_keys(m, ptr, &["amount", "unit"])?;
    let amount = whole_number(required(m, ptr, "amount")?, &child(ptr, "amount"))?;
    let unit_ptr = child(ptr, "unit");
    let name = string(required(m, ptr, "unit")?, &unit_ptr)?;
    let unit = Unit::parse(name).ok_or_else(|| {
        LangError::json(
            &unit_ptr,
            format!("unknown unit \"{name}\"; expected minutes, hours, days or weeks"),
        )
    })?;
    Ok(Period { amount, unit })
}

/// `"address.city"` or `["address", "city"]`.
fn path(v: &Value, ptr: &str) -> Result<Path, LangError> {
    let bad = || {
        LangError::json(
            ptr,
            "expected a name such as \"address.city\" or a non-empty array of non-empty names",
        )
    };
    let segments: Path = match v {
        Value::String(s) => s.split('.').map(str::to_owned).collect(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    if segments.is_empty() || segments.iter().any(String::is_empty) {
        return Err(bad());
    }
    Ok(segments)
}

fn whole_number(v: &Value, ptr: &str) -> Result<u32, LangError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            LangError::json(
                ptr,
                format!("expected a whole number from 0 to {}", u32::MAX),
            )
        })
}

fn object<'v>(v: &'v Value, ptr: &str, what: &str) -> Result<&'v Object, LangError> {
    v.as_object()
        .ok_or_else(|| LangError::json(ptr, format!("expected {what}")))
}

fn string<'v>(v: &'v Value, ptr: &str) -> Result<&'v str, LangError> {
    v.as_str()
        .ok_or_else(|| LangError::json(ptr, "expected a string"))
}

fn required<'v>(m: &'v Object, ptr: &str, key: &str) -> Result<&'v Value, LangError> {
    m.get(key)
        .ok_or_else(|| LangError::json(ptr, format!("field \"{key}\" is required")))
}

fn only_keys(m: &Object, ptr: &str, allowed: &[&str]) -> Result<(), LangError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(LangError::json(
            &child(ptr, k),
            format!("unknown field \"{k}\""),
        )),
        None => Ok(()),
    }
}

/// `ptr/key` with the key escaped as RFC 6901 says.
fn child(ptr: &str, key: &str) -> String {
    format!("{ptr}/{}", key.replace('~', "~0").replace('/', "~1"))
}
