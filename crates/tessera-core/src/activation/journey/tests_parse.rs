//! Reading definitions: what is accepted, what is refused and where the error points, the
//! canonical JSON, and conditions as journeys use them (`in_audience` answered by the caller).

use super::test_support::{cart, def};
use super::JourneyDef;
use crate::activation::condition::Condition;
use serde_json::{json, Value};

/// The pointer of the error for `v` (which must be refused).
fn err(v: Value) -> (String, String) {
    let e = JourneyDef::parse("jrn_x", &v).expect_err("should be refused");
    assert!(e.to_string().starts_with(&format!("at {}: ", e.pointer)));
    (e.pointer, e.message)
}

fn with_steps(steps: Value) -> Value {
    json!({"name": "J", "trigger": {"event": "A"}, "steps": steps})
}

#[test]
fn the_example_parses_and_round_trips() {
    let d = cart(
        "jrn_1",
        json!({"holdout_percent": 10, "frequency_cap": {"max": 1, "per": "24h"},
                                 "reentry": "never", "max_trigger_age": 3_600_000}),
    );
    assert_eq!(d.id, "jrn_1");
    assert_eq!(d.name, "Abandoned cart");
    let j = d.to_json();
    assert_eq!(j["max_trigger_age"], json!(3_600_000));
    assert_eq!(j["reentry"], json!("never"));
    assert_eq!(j["steps"][0]["on_timeout"], json!("remind"));
    assert!(
        j["steps"][1].get("next").is_none(),
        "defaults stay implicit"
    );
    assert_eq!(JourneyDef::parse("jrn_1", &j).unwrap(), d);
    assert_eq!(d.destinations(), vec!["dst_abc".to_string()]);
}

#[test]
fn defaults_are_written_out() {
    let d = def("j", with_steps(json!([{"id": "a", "type": "exit"}])));
    let j = d.to_json();
    assert_eq!(j["holdout_percent"], json!(0));
    assert_eq!(j["reentry"], json!("after_exit"));
    assert_eq!(j["max_trigger_age"], json!("24h"));
    assert_eq!(j["exit_on"], json!([]));
    assert_eq!(JourneyDef::parse("j", &j).unwrap(), d);
}

#[test]
fn destinations_are_sorted_and_unique() {
    let d = def(
        "j",
        with_steps(json!([
            {"id": "a", "type": "send", "destination": "dst_b"},
            {"id": "b", "type": "send", "destination": "dst_a"},
            {"id": "c", "type": "send", "destination": "dst_b"}
        ])),
    );
    assert_eq!(d.destinations(), vec!["dst_a", "dst_b"]);
}

#[test]
fn errors_name_the_pointer() {
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), ""),
        (json!({"trigger": {"event": "A"}, "steps": []}), "/name"),
        (
            json!({"name": "J", "steps": [{"id": "a", "type": "exit"}]}),
            "/trigger",
        ),
        (
            json!({"name": "J", "trigger": {"event": "A"}, "steps": [], "bogus": 1}),
            "/bogus",
        ),
        (
            json!({"name": "J", "trigger": {"event": "A", "audience": "x"}, "steps": []}),
            "/trigger/event",
        ),
        (
            json!({"name": "J", "trigger": {"evnt": "A"}, "steps": []}),
            "/trigger/evnt",
        ),
        (with_steps(json!([])), "/steps"),
        (with_steps(json!({})), "/steps"),
        (
            with_steps(json!([{"id": "a", "type": "wait", "duration": "0s"}])),
            "/steps/0/duration",
        ),
        (
            with_steps(json!([{"id": "a", "type": "wait", "duration": -5}])),
            "/steps/0/duration",
        ),
        (
            with_steps(json!([{"id": "a", "type": "wait", "duration": "5 minutes"}])),
            "/steps/0/duration",
        ),
        (
            with_steps(json!([{"id": "a", "type": "wait"}])),
            "/steps/0/duration",
        ),
        (
            with_steps(
                json!([{"id": "a", "type": "exit"}, {"id": "b", "type": "wait_for",
            "event": "X"}]),
            ),
            "/steps/1/timeout",
        ),
        (
            with_steps(
                json!([{"id": "a", "type": "exit"}, {"id": "b", "type": "wait_for",
            "event": "X", "timeout": "1h", "on_event": "zzz"}]),
            ),
            "/steps/1/on_event",
        ),
        (
            with_steps(json!([{"id": "a", "type": "exit"}, {"id": "a", "type": "exit"}])),
            "/steps/1/id",
        ),
        (
            with_steps(json!([{"id": "a b", "type": "exit"}])),
            "/steps/0/id",
        ),
        (
            with_steps(json!([{"id": "x".repeat(65), "type": "exit"}])),
            "/steps/0/id",
        ),
        (
            with_steps(json!([{"id": 5, "type": "exit"}])),
            "/steps/0/id",
        ),
        (with_steps(json!([{"type": "exit"}])), "/steps/0/id"),
        (
            with_steps(json!([{"id": "a", "type": "teleport"}])),
            "/steps/0/type",
        ),
        (
            with_steps(json!([{"id": "a", "type": "exit", "next": "a"}])),
            "/steps/0/next",
        ),
        (
            with_steps(json!([{"id": "a", "type": "send"}])),
            "/steps/0/destination",
        ),
        (
            with_steps(json!([{"id": "a", "type": "send", "destination": 3}])),
            "/steps/0/destination",
        ),
        (
            with_steps(json!([{"id": "a", "type": "set_trait", "trait": "t"}])),
            "/steps/0/value",
        ),
        (
            with_steps(
                json!([{"id": "a", "type": "branch", "if": {"in_audience": "x"},
            "then": "a"}]),
            ),
            "/steps/0/else",
        ),
        (
            with_steps(
                json!([{"id": "a", "type": "branch", "if": {"path": "x", "op": "approx",
            "value": 1}, "then": "a", "else": "a"}]),
            ),
            "/steps/0/if/op",
        ),
        (
            with_steps(
                json!([{"id": "a", "type": "branch", "if": {"all": [{"path": "", "op": "eq",
            "value": 1}]}, "then": "a", "else": "a"}]),
            ),
            "/steps/0/if/all/0/path",
        ),
        (
            with_steps(
                json!([{"id": "a", "type": "branch", "if": {"path": "x", "op": "in",
            "value": 1}, "then": "a", "else": "a"}]),
            ),
            "/steps/0/if/value",
        ),
        (
            with_steps(
                json!([{"id": "a", "type": "branch", "if": {"path": "x", "op": "gt"},
            "then": "a", "else": "a"}]),
            ),
            // A missing key is reported at the condition lacking it (as for destinations).
            "/steps/0/if",
        ),
        (
            with_steps(json!([{"id": "a", "type": "branch", "if": {"not": 3},
            "then": "a", "else": "a"}])),
            "/steps/0/if/not",
        ),
        (
            json!({"name": "J", "trigger": {"event": "A", "where": {"any": {}}},
            "steps": [{"id": "a", "type": "exit"}]}),
            "/trigger/where/any",
        ),
        (
            json!({"name": "J", "trigger": {"event": "A"}, "holdout_percent": 101,
            "steps": [{"id": "a", "type": "exit"}]}),
            "/holdout_percent",
        ),
        (
            json!({"name": "J", "trigger": {"event": "A"}, "holdout_percent": -1,
            "steps": [{"id": "a", "type": "exit"}]}),
            "/holdout_percent",
        ),
        (
            json!({"name": "J", "trigger": {"event": "A"}, "reentry": "sometimes",
            "steps": [{"id": "a", "type": "exit"}]}),
            "/reentry",
        ),
        (
            json!({"name": "J", "trigger": {"event": "A"}, "frequency_cap": {"max": 0, "per": "1h"},
            "steps": [{"id": "a", "type": "exit"}]}),
            "/frequency_cap/max",
        ),
        (
            json!({"name": "J", "trigger": {"event": "A"}, "frequency_cap": {"max": 1},
            "steps": [{"id": "a", "type": "exit"}]}),
            "/frequency_cap/per",
        ),
        (
            json!({"name": "J", "trigger": {"event": "A"}, "goal": {"event": "B", "within": "0h"},
            "steps": [{"id": "a", "type": "exit"}]}),
            "/goal/within",
        ),
        (
            json!({"name": "J", "trigger": {"event": "A"}, "exit_on": ["B", 3],
            "steps": [{"id": "a", "type": "exit"}]}),
            "/exit_on/1",
        ),
        (
            json!({"name": "J", "trigger": {"event": "A"}, "max_trigger_age": "1y",
            "steps": [{"id": "a", "type": "exit"}]}),
            "/max_trigger_age",
        ),
        (
            json!({"name": "", "trigger": {"event": "A"},
            "steps": [{"id": "a", "type": "exit"}]}),
            "/name",
        ),
    ];
    for (v, pointer) in cases {
        let (p, message) = err(v.clone());
        assert_eq!(p, pointer, "{v} -> {message}");
    }
}

#[test]
fn too_many_steps_are_refused() {
    let steps: Vec<Value> = (0..101)
        .map(|i| json!({"id": format!("s{i}"), "type": "wait", "duration": "1m"}))
        .collect();
    assert_eq!(err(with_steps(Value::Array(steps.clone()))).0, "/steps");
    assert!(JourneyDef::parse("j", &with_steps(Value::Array(steps[..100].to_vec()))).is_ok());
}

#[test]
fn loops_without_a_wait_are_refused() {
    let (p, m) = err(with_steps(json!([
        {"id": "a", "type": "send", "destination": "d"},
        {"id": "b", "type": "branch", "if": {"in_audience": "x"}, "then": "a", "else": "c"},
        {"id": "c", "type": "exit"}
    ])));
    assert_eq!(p, "/steps/0");
    assert!(m.contains("a → b → a"), "{m}");
    // A self-loop through set_trait.
    let (p, _) = err(with_steps(json!([
        {"id": "e", "type": "exit"},
        {"id": "t", "type": "set_trait", "trait": "x", "value": 1, "next": "t"}
    ])));
    assert_eq!(p, "/steps/1");
    // The same loop through a wait is a legitimate reminder loop.
    def(
        "j",
        with_steps(json!([
            {"id": "a", "type": "send", "destination": "d"},
            {"id": "w", "type": "wait", "duration": "1d"},
            {"id": "b", "type": "branch", "if": {"in_audience": "x"}, "then": "a", "else": "c"},
            {"id": "c", "type": "exit"}
        ])),
    );
}

#[test]
fn durations_accept_the_documented_forms() {
    for (d, ms) in [
        (json!("90s"), 90_000),
        (json!("30m"), 1_800_000),
        (json!("1h"), 3_600_000),
        (json!("2d"), 172_800_000),
        (json!("1w"), 604_800_000),
        (json!("250ms"), 250),
        (json!(1500), 1500),
    ] {
        let j = def(
            "j",
            with_steps(json!([{"id": "a", "type": "wait", "duration": d}])),
        );
        match &j.steps[0].kind {
            super::def::StepKind::Wait { duration, .. } => assert_eq!(duration.ms, ms, "{d}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(j.to_json()["steps"][0]["duration"], d, "kept as written");
    }
    for bad in [
        json!("1.5h"),
        json!("h"),
        json!(""),
        json!(1.5),
        json!(0),
        json!("99999999999999w"),
    ] {
        let v = with_steps(json!([{"id": "a", "type": "wait", "duration": bad}]));
        assert_eq!(err(v).0, "/steps/0/duration", "{bad}");
    }
}

fn holds(cond: Value, doc: Value) -> bool {
    let c = Condition::parse(&cond).unwrap();
    assert_eq!(
        Condition::parse(&c.to_json()).unwrap(),
        c,
        "canonical form reads back"
    );
    c.matches_with(&doc, &|a| a == "aud_in")
}

#[test]
fn conditions_compare_like_the_documentation_says() {
    let doc = json!({"properties": {"total": 120, "price": 9.5, "sku": "SKU-1", "tags": ["a", "b"],
                     "items": [{"n": 1}, {"n": 2}], "none": null}});
    let t = |op: &str, path: &str, v: Value| {
        holds(json!({"path": path, "op": op, "value": v}), doc.clone())
    };
    assert!(t("gt", "properties.total", json!(100)));
    assert!(t("gt", "properties.total", json!(119.5)));
    assert!(
        !t("gt", "properties.total", json!("100")),
        "mismatched types are false"
    );
    // `neq` is exactly `not eq`: another type, or no value at all, is "not equal".
    assert!(
        t("neq", "properties.total", json!("100")),
        "120 is not \"100\""
    );
    assert!(t("neq", "properties.missing", json!(1)));
    assert!(t("eq", "properties.total", json!(120.0)));
    assert!(t("neq", "properties.total", json!(121)));
    assert!(t("lte", "properties.price", json!(9.5)));
    assert!(t("lt", "properties.sku", json!("SKU-2")));
    assert!(t("in", "properties.sku", json!(["X", "SKU-1"])));
    assert!(t("contains", "properties.sku", json!("KU")));
    assert!(t("contains", "properties.tags", json!("b")));
    assert!(!t("contains", "properties.tags", json!("c")));
    assert!(t("starts_with", "properties.sku", json!("SKU")));
    assert!(t("eq", "properties.items.1.n", json!(2)));
    assert!(t("eq", "properties.tags", json!(["a", "b"])));
    assert!(!t("eq", "properties.missing", json!(1)));
    let e = |op: &str, path: &str| holds(json!({"path": path, "op": op}), doc.clone());
    assert!(e("exists", "properties.total"));
    assert!(!e("exists", "properties.none"));
    assert!(e("not_exists", "properties.none"));
    assert!(e("not_exists", "properties.items.5"));
    assert!(holds(
        json!({"all": [{"in_audience": "aud_in"}, {"not": {"in_audience": "aud_out"}}]}),
        doc.clone()
    ));
    assert!(holds(json!({"all": []}), doc.clone()));
    assert!(!holds(json!({"any": []}), doc.clone()));
}
