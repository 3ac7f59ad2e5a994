//! How messages of each type are checked: unplanned events, identify traits, pages and
//! screens, paths into nested values, the cap on violations, modes, and the JSON form.

use super::*;

fn unplanned(event: &str) -> Violation {
    Violation {
        event: event.to_owned(),
        path: String::new(),
        rule: "unplanned_event".to_owned(),
        message: "event is not in the tracking plan".to_owned(),
    }
}

#[test]
fn unplanned_events_violate_by_default() {
    let p = plan(json!({"events": {"Signed Up": {}}}));
    let msg = json!({"type": "track", "event": "Signed Upp", "properties": {}});
    assert_eq!(p.check(&msg), [unplanned("Signed Upp")]);
    let explicit = plan(json!({"events": {"Signed Up": {}}, "unplanned": "violate"}));
    assert_eq!(explicit, p);
}

#[test]
fn unplanned_events_may_be_allowed() {
    let p = plan(
        json!({"events": {"Signed Up": {"schema": {"required": ["plan"]}}},
                        "unplanned": "allow"}),
    );
    assert!(p.allows_unplanned());
    let msg = json!({"type": "track", "event": "Anything", "properties": {"x": 1}});
    assert!(p.check(&msg).is_empty());
    // Planned events are still checked.
    let msg = json!({"type": "track", "event": "Signed Up"});
    assert_eq!(pairs(&p.check(&msg)), [("properties.plan", "required")]);
}

#[test]
fn an_event_without_a_schema_takes_any_properties() {
    let p = plan(json!({"events": {"E": {"description": "anything goes"}}}));
    assert!(p.check(&track(json!({"a": [1, {"b": null}]}))).is_empty());
}

#[test]
fn missing_or_null_properties_are_an_empty_object() {
    let p = one(json!({"type": "object", "required": ["a"]}));
    let missing = json!({"type": "track", "event": "E"});
    assert_eq!(pairs(&p.check(&missing)), [("properties.a", "required")]);
    assert_eq!(
        pairs(&p.check(&track(json!(null)))),
        [("properties.a", "required")]
    );
}

#[test]
fn properties_that_are_not_an_object_are_checked_as_they_are() {
    let p = one(json!({"type": "object"}));
    let found = p.check(&track(json!([1])));
    assert_eq!(pairs(&found), [("properties", "type")]);
    assert_eq!(found[0].message, "expected object, got array");
}

#[test]
fn pages_and_screens_are_checked_by_name() {
    let p = plan(json!({"events": {
        "Home": {"schema": {"properties": {"path": {"type": "string", "pattern": "^/"}}}},
    }}));
    let page = json!({"type": "page", "name": "Home", "properties": {"path": "home"}});
    let found = p.check(&page);
    assert_eq!(pairs(&found), [("properties.path", "pattern")]);
    assert_eq!(found[0].event, "Home");
    let screen = json!({"type": "screen", "name": "Home", "properties": {"path": "/"}});
    assert!(p.check(&screen).is_empty());
    let other = json!({"type": "screen", "name": "Settings"});
    assert_eq!(p.check(&other), [unplanned("Settings")]);
}

#[test]
fn unnamed_pages_are_not_checked() {
    let p = plan(json!({}));
    assert!(p
        .check(&json!({"type": "page", "properties": {"a": 1}}))
        .is_empty());
    assert!(p.check(&json!({"type": "screen", "name": null})).is_empty());
    assert_eq!(
        p.check(&json!({"type": "page", "name": "Home"})),
        [unplanned("Home")]
    );
}

fn identify_plan() -> TrackingPlan {
    plan(json!({"identify": {"schema": {
        "properties": {
            "email": {"type": "string", "format": "email"},
            "age": {"type": "integer", "minimum": 0},
        },
        "required": ["email"],
    }}}))
}

#[test]
fn identify_checks_traits() {
    let p = identify_plan();
    let msg = json!({"type": "identify", "userId": "u1", "traits": {"email": "x", "age": -1}});
    let found = p.check(&msg);
    assert_eq!(
        pairs(&found),
        [("traits.age", "minimum"), ("traits.email", "format")]
    );
    assert!(found.iter().all(|v| v.event == "identify"));
    let good = json!({"type": "identify", "traits": {"email": "a@b.co", "age": 3}});
    assert!(p.check(&good).is_empty());
}

#[test]
fn identify_reads_context_traits_too() {
    let p = identify_plan();
    let msg = json!({"type": "identify", "context": {"traits": {"email": "a@b.co"}}});
    assert!(p.check(&msg).is_empty());
    let msg = json!({"type": "identify", "context": {"traits": {"email": 5}}, "traits": {}});
    assert_eq!(pairs(&p.check(&msg)), [("traits.email", "type")]);
    let msg = json!({"type": "identify", "context": {"traits": "nope"}});
    assert_eq!(pairs(&p.check(&msg)), [("traits.email", "required")]);
}

#[test]
fn traits_win_over_context_traits() {
    let p = identify_plan();
    let msg = json!({"type": "identify",
                     "traits": {"email": "a@b.co"},
                     "context": {"traits": {"email": 5, "age": 1.5}}});
    // The good e-mail of traits replaces the bad one; the age only context has still counts.
    assert_eq!(pairs(&p.check(&msg)), [("traits.age", "type")]);
    let msg = json!({"type": "identify",
                     "traits": {"email": 5},
                     "context": {"traits": {"email": "a@b.co"}}});
    assert_eq!(pairs(&p.check(&msg)), [("traits.email", "type")]);
}

#[test]
fn identify_without_a_plan_is_not_checked() {
    let p = plan(json!({"events": {}}));
    assert!(p
        .check(&json!({"type": "identify", "traits": {"a": 1}}))
        .is_empty());
}

#[test]
fn other_messages_are_not_subject_to_plans() {
    let p = plan(json!({}));
    for msg in [
        json!({"type": "group", "groupId": "g", "traits": {"a": 1}}),
        json!({"type": "alias", "previousId": "a", "userId": "b"}),
        json!({"type": 5}),
        json!({}),
        json!("track"),
        json!([{"type": "track", "event": "E"}]),
    ] {
        assert!(p.check(&msg).is_empty(), "{msg}");
    }
}

#[test]
fn a_track_without_an_event_is_the_event_named_empty() {
    let p = plan(json!({}));
    assert_eq!(p.check(&json!({"type": "track"})), [unplanned("")]);
}

#[test]
fn paths_run_through_nested_objects_and_arrays() {
    let p = one(json!({"properties": {
        "items": {"type": "array", "items": {
            "type": "object",
            "required": ["sku"],
            "properties": {"sku": {"type": "string"}, "tags": {"items": {"items": {"type": "string"}}}},
        }},
        "a": {"properties": {"b": {"properties": {"c": {"type": "boolean"}}}}},
    }}));
    let found = p.check(&track(json!({
        "items": [{"sku": "A"}, {"sku": 2}, {}, {"sku": "B", "tags": [["x"], ["y", 3]]}],
        "a": {"b": {"c": "yes"}},
    })));
    assert_eq!(
        pairs(&found),
        [
            ("properties.a.b.c", "type"),
            ("properties.items.1.sku", "type"),
            ("properties.items.2.sku", "required"),
            ("properties.items.3.tags.1.1", "type"),
        ]
    );
}

#[test]
fn violations_are_capped() {
    let p = one(json!({"properties": {"x": {"items": {"type": "string"}}}}));
    let found = p.check(&track(json!({"x": vec![1; 1000]})));
    assert_eq!(found.len(), MAX_VIOLATIONS);
    assert_eq!(found[49].path, "properties.x.49");

    let closed = one(json!({"additionalProperties": false, "required": ["a", "b"]}));
    let many: Map<String, Value> = (0..500).map(|i| (format!("k{i:03}"), json!(i))).collect();
    let found = closed.check(&track(Value::Object(many)));
    assert_eq!(found.len(), MAX_VIOLATIONS);
    assert_eq!(
        pairs(&found[..3]),
        [
            ("properties.a", "required"),
            ("properties.b", "required"),
            ("properties.k000", "additional_properties"),
        ]
    );
}

#[test]
fn modes_parse_and_print() {
    for mode in [Mode::Allow, Mode::Flag, Mode::Block] {
        assert_eq!(Mode::parse(mode.as_str()), Some(mode));
    }
    assert_eq!(Mode::parse("block"), Some(Mode::Block));
    assert_eq!(Mode::parse("Block"), None);
    assert_eq!(Mode::parse(""), None);
}

#[test]
fn the_json_form_is_canonical_and_reads_back() {
    let written = json!({
        "declared_pii": {"traits.email": "email", "properties.customer_ref": "national_id"},
        "unplanned": "allow",
        "identify": {"schema": {"type": ["null", "object"], "properties": {}, "required": []}},
        "events": {
            "Order Completed": {
                "description": "A checkout finished.",
                "schema": {
                    "required": ["total"],
                    "properties": {"total": {"type": ["number"], "minimum": 0, "maxLength": 2.0},
                                   "at": {"format": "date-time", "title": "When"}},
                    "additionalProperties": {"anyOf": [{"const": 1}, {"enum": [1.5, "x"]}]},
                },
            },
            "Home": {},
        },
    });
    let p = plan(written);
    let canonical = json!({
        "declared_pii": {"properties.customer_ref": "national_id", "traits.email": "email"},
        "unplanned": "allow",
        "identify": {"schema": {"type": ["object", "null"]}},
        "events": {
            "Order Completed": {
                "description": "A checkout finished.",
                "schema": {
                    "required": ["total"],
                    "properties": {"total": {"type": "number", "minimum": 0, "maxLength": 2},
                                   "at": {"format": "date-time", "title": "When"}},
                    "additionalProperties": {"anyOf": [{"const": 1}, {"enum": [1.5, "x"]}]},
                },
            },
            "Home": {"schema": true},
        },
    });
    assert_eq!(p.to_json(), canonical);
    assert_eq!(plan(canonical), p);
    assert_eq!(
        p.declared_pii(),
        [
            (
                "properties.customer_ref".to_owned(),
                "national_id".to_owned()
            ),
            ("traits.email".to_owned(), "email".to_owned()),
        ]
    );
    assert_eq!(p.event_names(), ["Home", "Order Completed"]);
}

#[test]
fn an_empty_plan_writes_its_defaults() {
    let p = plan(json!({}));
    assert_eq!(
        p.to_json(),
        json!({"events": {}, "unplanned": "violate", "declared_pii": {}})
    );
}

#[test]
fn plans_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<TrackingPlan>();
}
