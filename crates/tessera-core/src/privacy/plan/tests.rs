//! Tests of tracking plans. This file holds the shared helpers; each schema keyword passing
//! and failing is in `keywords`, the `format` values in `formats`, refused plans with their
//! pointers in `errors`, how messages of each type are checked (unplanned events, identify,
//! pages, paths, the cap, the JSON form) in `messages`, and random plans and messages in
//! `props`.

use super::*;
use serde_json::json;

mod errors;
mod formats;
mod keywords;
mod messages;
mod props;

/// Reads a plan, failing the test with the error if it is refused.
fn plan(v: Value) -> TrackingPlan {
    TrackingPlan::from_json(&v).unwrap_or_else(|e| panic!("{v} should read: {e}"))
}

/// The error a plan is refused with, failing the test if it reads.
fn refused(v: Value) -> PlanError {
    match TrackingPlan::from_json(&v) {
        Ok(_) => panic!("{v} should be refused"),
        Err(e) => e,
    }
}

/// The error a properties schema of event "E" is refused with.
fn schema_error(schema: Value) -> PlanError {
    refused(json!({"events": {"E": {"schema": schema}}}))
}

/// A plan whose one event "E" has `schema` for its properties.
fn one(schema: Value) -> TrackingPlan {
    plan(json!({"events": {"E": {"schema": schema}}}))
}

/// A `track` of "E" with these properties.
fn track(properties: Value) -> Value {
    json!({"type": "track", "event": "E", "properties": properties})
}

/// (path, rule) of each violation, in order.
fn pairs(violations: &[Violation]) -> Vec<(&str, &str)> {
    violations
        .iter()
        .map(|v| (v.path.as_str(), v.rule.as_str()))
        .collect()
}

/// The violations of `value` as property `x` of "E", against `schema` as the schema of `x`.
fn at_x(schema: Value, value: Value) -> Vec<Violation> {
    one(json!({"properties": {"x": schema}})).check(&track(json!({"x": value})))
}

/// Asserts that `value` conforms to `schema`.
#[track_caller]
fn ok(schema: Value, value: Value) {
    let found = at_x(schema.clone(), value.clone());
    assert!(found.is_empty(), "{value} against {schema}: {found:?}");
}

/// Asserts that `value` breaks exactly `rule` of `schema`, at `properties.x`, and returns the
/// message.
#[track_caller]
fn bad(schema: Value, value: Value, rule: &str) -> String {
    let found = at_x(schema.clone(), value.clone());
    assert_eq!(
        pairs(&found),
        [("properties.x", rule)],
        "{value} against {schema}"
    );
    assert_eq!(found[0].event, "E");
    found[0].message.clone()
}
