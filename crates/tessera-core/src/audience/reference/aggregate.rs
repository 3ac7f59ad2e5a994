//! Computed traits by brute force: select the matching events, then aggregate the property.
//!
//! - Events are taken in timestamp order; events with equal timestamps keep their order in
//!   the profile's list. `first` / `last` and the order of additions in `sum` follow it.
//! - Events whose property is absent or null are skipped by every aggregate but `count`.
//! - `sum`, `avg`, `min`, `max` read numbers only (a string `"12"` is not a number).
//!   `sum` is an integer when every value is an integer and the total fits in 64 bits, a
//!   float otherwise; `avg` is always a float; `min` / `max` return the value as it was
//!   (the first one among equal values).
//! - `most_frequent`, `unique`, `unique_count` read strings, numbers and booleans (lists and
//!   objects are skipped). Values are distinct by their JSON form (`1` and `1.0` are two
//!   values). Their order: booleans (false, true), then numbers by value (the integer form
//!   first among equal values), then strings by code point. `unique` is sorted in that order;
//!   `most_frequent` breaks ties by taking the smallest value in it.
//! - With nothing to aggregate the result is null, except `count` and `unique_count`, which
//!   are 0: they count, and "viewed 0 distinct products" is a fact, not an unknown.

use super::predicate::{compare_numbers, resolve};
use super::{matching_events, ProfileData};
use crate::audience::ast::{Aggregate, ComputedDef};
use crate::time::Millis;
use serde_json::{Number, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The value of a computed trait for the profile at `now_ms`.
pub fn evaluate_computed(def: &ComputedDef, profile: &ProfileData, now_ms: Millis) -> Value {
    let mut events: Vec<_> =
        matching_events(profile, &def.event, def.filter.as_ref(), def.window, now_ms).collect();
    if def.aggregate == Aggregate::Count {
        return Value::from(events.len());
    }
    // A stable sort: equal timestamps keep the profile's order.
    events.sort_by_key(|e| e.timestamp_ms);
    let path = def.property.as_deref().unwrap_or(&[]);
    let values: Vec<&Value> = events
        .iter()
        .filter_map(|e| resolve(&e.properties, path))
        .filter(|v| !v.is_null())
        .collect();
    let numbers = || values.iter().filter_map(|v| v.as_number());
    match def.aggregate {
        Aggregate::Count => unreachable!("handled above"),
        Aggregate::Sum => sum(numbers()).map_or(Value::Null, Value::Number),
        Aggregate::Avg => {
            let n = numbers().count();
            match sum(numbers()).and_then(|s| s.as_f64()) {
                Some(total) if n > 0 => float(total / n as f64),
                _ => Value::Null,
            }
        }
        Aggregate::Min => extreme(numbers(), Ordering::Less),
        Aggregate::Max => extreme(numbers(), Ordering::Greater),
        Aggregate::First => values.first().map_or(Value::Null, |v| (*v).clone()),
        Aggregate::Last => values.last().map_or(Value::Null, |v| (*v).clone()),
        Aggregate::MostFrequent => {
            let counts = tally(&values);
            // Iterating in ascending order and replacing only on a strictly higher count
            // leaves the smallest of the most frequent values.
            let mut best: Option<(&Scalar, u64)> = None;
            for (k, n) in &counts {
                if best.is_none_or(|(_, b)| *n > b) {
                    best = Some((k, *n));
                }
            }
            best.map_or(Value::Null, |(k, _)| k.to_value())
        }
        Aggregate::Unique => {
            let counts = tally(&values);
            if counts.is_empty() {
                Value::Null
            } else {
                Value::Array(counts.keys().map(|k| k.to_value()).collect())
            }
        }
        Aggregate::UniqueCount => Value::from(tally(&values).len()),
    }
}

/// The exact integer total when possible, the float total (in the given order) otherwise;
/// `None` when there is nothing to add or the float total overflows.
fn sum<'a>(numbers: impl Iterator<Item = &'a Number> + Clone) -> Option<Number> {
    let mut any = false;
    let mut exact: Option<i64> = Some(0);
    for n in numbers.clone() {
        any = true;
        exact = exact.and_then(|t| t.checked_add(n.as_i64()?));
    }
    if !any {
        return None;
    }
    if let Some(t) = exact {
        return Some(Number::from(t));
    }
    let total: f64 = numbers.map(|n| n.as_f64().unwrap_or(0.0)).sum();
    Number::from_f64(total)
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// The smallest (`Less`) or largest (`Greater`) number, the first of equals.
fn extreme<'a>(numbers: impl Iterator<Item = &'a Number>, want: Ordering) -> Value {
    let mut best: Option<&Number> = None;
    for n in numbers {
        if best.is_none_or(|b| compare_numbers(n, b) == want) {
            best = Some(n);
        }
    }
    best.map_or(Value::Null, |n| Value::Number(n.clone()))
}

/// How many times each scalar value occurs.
fn tally<'a>(values: &[&'a Value]) -> BTreeMap<Scalar<'a>, u64> {
    let mut counts = BTreeMap::new();
    for v in values {
        let key = match v {
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::Number(n),
            Value::String(s) => Scalar::String(s),
            _ => continue,
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// A value that `most_frequent` and `unique` count, in their stated order.
#[derive(Debug, Clone, Copy)]
enum Scalar<'a> {
    Bool(bool),
    Number(&'a Number),
    String(&'a str),
}

impl Scalar<'_> {
    fn rank(&self) -> u8 {
        match self {
            Scalar::Bool(_) => 0,
            Scalar::Number(_) => 1,
            Scalar::String(_) => 2,
        }
    }

    fn to_value(self) -> Value {
        match self {
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Number(n) => Value::Number(n.clone()),
            Scalar::String(s) => Value::String(s.to_owned()),
        }
    }
}

impl Ord for Scalar<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(b),
            // Equal by value but written differently (`1`, `1.0`): the integer first, then by
            // text, so that the order is total and consistent with distinctness.
            (Scalar::Number(a), Scalar::Number(b)) => compare_numbers(a, b)
                .then_with(|| a.is_f64().cmp(&b.is_f64()))
                .then_with(|| a.to_string().cmp(&b.to_string())),
            (Scalar::String(a), Scalar::String(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Scalar<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Scalar<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Scalar<'_> {}
