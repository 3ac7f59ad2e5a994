//! The reference evaluator: recomputes computed traits and audience membership from a
//! profile's traits and raw events, as directly as possible. It is deliberately simple and
//! slow; it is the oracle that the incremental (real-time) and columnar (batch) evaluators are
//! tested against, so its rules are the definition of what a definition means.
//!
//! Event conditions match [`EventRecord::name`] exactly (case-sensitive). Whoever builds the
//! records uses the `event` of track calls, and the names `page` and `screen` for page and
//! screen calls (so `performed "page" where name = "Pricing"` works when the page name is in
//! the properties, where analytics.js puts it).

mod aggregate;
mod predicate;

pub use aggregate::evaluate_computed;
pub use predicate::{compare_numbers, resolve, test_value};

use super::ast::{Audience, Condition, Logic, Predicate, PropExpr, Window};
use crate::time::Millis;
use serde_json::Value;
use std::collections::BTreeMap;

/// One event of a profile's history.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The track call's `event`; `page` or `screen` for those calls.
    pub name: String,
    /// The event time (`timestamp` after clock-skew correction), in ms since the epoch.
    pub timestamp_ms: Millis,
    /// The call's `properties` object.
    pub properties: Value,
}

/// What the reference evaluator knows of a profile: its traits and its whole event history
/// (merged profiles included), in any order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileData {
    pub traits: BTreeMap<String, Value>,
    pub events: Vec<EventRecord>,
}

/// Whether the profile is in the audience at `now_ms`.
///
/// `computed` holds this profile's value of every defined computed trait (null included, so
/// that a computed trait shadows a profile trait of the same name even when it has no value);
/// `memberships` says whether the profile is in another audience.
pub fn evaluate_audience(
    audience: &Audience,
    profile: &ProfileData,
    computed: &BTreeMap<String, Value>,
    memberships: &dyn Fn(&str) -> bool,
    now_ms: Millis,
) -> bool {
    eval_logic(&audience.root, &|c: &Condition| match c {
        Condition::Trait(p) => {
            let value = p.path.split_first().and_then(|(first, rest)| {
                let root = computed.get(first).or_else(|| profile.traits.get(first))?;
                resolve(root, rest)
            });
            test_value(value, &p.test, now_ms)
        }
        Condition::Event(e) => {
            let n = matching_events(profile, &e.event, e.filter.as_ref(), e.window, now_ms).count();
            e.occurrence.accepts(n as u64)
        }
        Condition::InAudience(a) => memberships(&a.name),
    })
}

/// The events named `event`, inside `window` at `now_ms`, whose properties pass `filter`, in
/// the order of `profile.events`.
pub fn matching_events<'p>(
    profile: &'p ProfileData,
    event: &'p str,
    filter: Option<&'p PropExpr>,
    window: Window,
    now_ms: Millis,
) -> impl Iterator<Item = &'p EventRecord> + 'p {
    profile.events.iter().filter(move |e| {
        e.name == event
            && window.contains(e.timestamp_ms, now_ms)
            && filter.is_none_or(|f| {
                eval_logic(f, &|p: &Predicate| {
                    test_value(resolve(&e.properties, &p.path), &p.test, now_ms)
                })
            })
    })
}

/// AND / OR / NOT with short-circuits; an empty `And` is true and an empty `Or` false (the
/// parsers never build either).
pub fn eval_logic<L>(e: &Logic<L>, leaf: &dyn Fn(&L) -> bool) -> bool {
    match e {
        Logic::And(terms) => terms.iter().all(|t| eval_logic(t, leaf)),
        Logic::Or(terms) => terms.iter().any(|t| eval_logic(t, leaf)),
        Logic::Not(inner) => !eval_logic(inner, leaf),
        Logic::Leaf(l) => leaf(l),
    }
}
