//! Each schema keyword, conforming and violated, with the exact path, rule and message.

use super::*;

#[test]
fn type_names_each_match_their_json_type() {
    let values = [
        ("object", json!({})),
        ("array", json!([])),
        ("string", json!("s")),
        ("number", json!(1.5)),
        ("integer", json!(3)),
        ("boolean", json!(true)),
        ("null", json!(null)),
    ];
    for (name, good) in &values {
        ok(json!({"type": name}), good.clone());
        for (other, value) in &values {
            let integral_number = *name == "number" && *other == "integer";
            if other != name && !integral_number {
                bad(json!({"type": name}), value.clone(), "type");
            }
        }
    }
}

#[test]
fn integers_are_numbers_without_a_fraction() {
    ok(json!({"type": "integer"}), json!(1.0));
    ok(json!({"type": "integer"}), json!(-7));
    ok(json!({"type": "integer"}), json!(u64::MAX));
    ok(json!({"type": "integer"}), json!(1e300));
    let m = bad(json!({"type": "integer"}), json!(1.5), "type");
    assert_eq!(m, "expected integer, got number");
    ok(json!({"type": "number"}), json!(3));
}

#[test]
fn a_type_list_accepts_any_of_its_types() {
    ok(json!({"type": ["string", "null"]}), json!(null));
    ok(json!({"type": ["string", "null"]}), json!("a"));
    let m = bad(json!({"type": ["string", "null"]}), json!(3), "type");
    assert_eq!(m, "expected string or null, got number");
    let m = bad(
        json!({"type": ["object", "array", "null"]}),
        json!(true),
        "type",
    );
    assert_eq!(m, "expected object, array or null, got boolean");
}

#[test]
fn a_wrong_type_is_the_only_violation_of_its_value() {
    let schema = json!({"type": "string", "minLength": 3, "enum": ["abc"], "pattern": "^a"});
    bad(schema, json!(12), "type");
}

#[test]
fn keywords_for_other_types_do_not_apply() {
    let schema = json!({"minLength": 3, "minimum": 5, "minItems": 2, "required": ["a"]});
    for value in [
        json!(true),
        json!(null),
        json!("abcd"),
        json!(6),
        json!([1, 2]),
    ] {
        ok(schema.clone(), value);
    }
}

#[test]
fn required_names_the_missing_property() {
    let p = one(json!({"required": ["total", "currency"]}));
    let found = p.check(&track(json!({"currency": null})));
    assert_eq!(pairs(&found), [("properties.total", "required")]);
    assert_eq!(found[0].message, "required property is missing");
    assert!(p
        .check(&track(json!({"total": 1, "currency": "EUR"})))
        .is_empty());
}

#[test]
fn properties_check_only_the_properties_present() {
    let p = one(json!({"properties": {"a": {"type": "string"}, "b": {"type": "number"}}}));
    assert!(p.check(&track(json!({}))).is_empty());
    assert!(p.check(&track(json!({"a": "x", "zzz": 1}))).is_empty());
    let found = p.check(&track(json!({"a": 1, "b": "x"})));
    assert_eq!(
        pairs(&found),
        [("properties.a", "type"), ("properties.b", "type")]
    );
}

#[test]
fn additional_properties_false_names_each_extra_property() {
    let p = one(json!({"properties": {"a": {}}, "additionalProperties": false}));
    assert!(p.check(&track(json!({"a": 1}))).is_empty());
    let found = p.check(&track(json!({"a": 1, "b": 2, "c": 3})));
    assert_eq!(
        pairs(&found),
        [
            ("properties.b", "additional_properties"),
            ("properties.c", "additional_properties")
        ]
    );
    assert_eq!(found[0].message, "property is not in the plan");
}

#[test]
fn additional_properties_as_a_schema_checks_the_extra_ones() {
    let p = one(json!({"properties": {"a": {}}, "additionalProperties": {"type": "number"}}));
    assert!(p.check(&track(json!({"a": "s", "b": 2}))).is_empty());
    let found = p.check(&track(json!({"a": "s", "b": "2"})));
    assert_eq!(pairs(&found), [("properties.b", "type")]);
    let open = one(json!({"additionalProperties": true}));
    assert!(open.check(&track(json!({"b": "2"}))).is_empty());
}

#[test]
fn a_false_schema_allows_nothing() {
    bad(json!(false), json!(1), "not_allowed");
    ok(json!(true), json!({"any": ["thing"]}));
}

#[test]
fn items_check_every_element_with_its_index() {
    let p = one(json!({"properties": {"x": {"items": {"type": "string"}}}}));
    let found = p.check(&track(json!({"x": ["a", 2, "c", null]})));
    assert_eq!(
        pairs(&found),
        [("properties.x.1", "type"), ("properties.x.3", "type")]
    );
}

#[test]
fn min_and_max_items() {
    let schema = json!({"minItems": 2, "maxItems": 3});
    ok(schema.clone(), json!([1, 2]));
    ok(schema.clone(), json!([1, 2, 3]));
    let m = bad(schema.clone(), json!([1]), "min_items");
    assert_eq!(m, "expected at least 2 items, got 1");
    let m = bad(schema, json!([1, 2, 3, 4]), "max_items");
    assert_eq!(m, "expected at most 3 items, got 4");
}

#[test]
fn enum_compares_numbers_by_value() {
    let schema = json!({"enum": ["EUR", "USD", 1, null, {"a": [1]}]});
    for v in [json!("EUR"), json!(1.0), json!(null), json!({"a": [1.0]})] {
        ok(schema.clone(), v);
    }
    let m = bad(schema.clone(), json!("GBP"), "enum");
    assert_eq!(m, "not one of the 5 allowed values");
    bad(schema.clone(), json!({"a": [1], "b": 2}), "enum");
    bad(schema, json!([1]), "enum");
}

#[test]
fn const_requires_the_one_value() {
    ok(json!({"const": {"v": 2}}), json!({"v": 2.0}));
    let m = bad(json!({"const": "web"}), json!("ios"), "const");
    assert_eq!(m, "not the value the plan requires");
    bad(json!({"const": 0}), json!(false), "const");
}

#[test]
fn minimum_and_maximum_are_inclusive() {
    let schema = json!({"minimum": 0, "maximum": 10.5});
    for v in [json!(0), json!(0.0), json!(10.5), json!(5)] {
        ok(schema.clone(), v);
    }
    assert_eq!(
        bad(schema.clone(), json!(-1), "minimum"),
        "expected at least 0"
    );
    assert_eq!(
        bad(schema.clone(), json!(-0.001), "minimum"),
        "expected at least 0"
    );
    assert_eq!(bad(schema, json!(11), "maximum"), "expected at most 10.5");
}

#[test]
fn exclusive_bounds_refuse_the_bound_itself() {
    let schema = json!({"exclusiveMinimum": 0, "exclusiveMaximum": 1});
    ok(schema.clone(), json!(0.5));
    let m = bad(schema.clone(), json!(0), "exclusive_minimum");
    assert_eq!(m, "expected more than 0");
    let m = bad(schema, json!(1.0), "exclusive_maximum");
    assert_eq!(m, "expected less than 1");
}

#[test]
fn bounds_compare_large_integers_exactly() {
    // 2^53 + 1 is not representable as an f64; comparing through f64 would call it equal.
    let schema = json!({"maximum": 9007199254740992_u64});
    ok(schema.clone(), json!(9007199254740992_u64));
    bad(schema, json!(9007199254740993_u64), "maximum");
    ok(
        json!({"minimum": -9223372036854775808_i64}),
        json!(i64::MIN),
    );
    bad(json!({"maximum": u64::MAX}), json!(1.9e19), "maximum");
    ok(json!({"minimum": 0.5}), json!(1));
    bad(json!({"minimum": 0.5}), json!(0), "minimum");
    bad(
        json!({"exclusiveMaximum": 2.5}),
        json!(3),
        "exclusive_maximum",
    );
}

#[test]
fn lengths_count_characters_not_bytes() {
    let schema = json!({"minLength": 2, "maxLength": 5});
    ok(schema.clone(), json!("héllo"));
    ok(schema.clone(), json!("日本"));
    let m = bad(schema.clone(), json!("a"), "min_length");
    assert_eq!(m, "expected at least 2 characters, got 1");
    let m = bad(schema, json!("héllo!"), "max_length");
    assert_eq!(m, "expected at most 5 characters, got 6");
}

#[test]
fn patterns_search_unless_anchored() {
    ok(json!({"pattern": "b"}), json!("abc"));
    ok(json!({"pattern": "^[A-Z]{3}$"}), json!("EUR"));
    let m = bad(json!({"pattern": "^[A-Z]{3}$"}), json!("euro"), "pattern");
    assert_eq!(m, "does not match the pattern ^[A-Z]{3}$");
}

#[test]
fn any_of_needs_one_matching_alternative() {
    let schema = json!({"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]});
    ok(schema.clone(), json!("ab"));
    ok(schema.clone(), json!(4));
    let m = bad(schema.clone(), json!("abc"), "any_of");
    assert_eq!(m, "matches none of the 2 alternatives");
    bad(schema, json!(4.5), "any_of");
}

#[test]
fn one_of_needs_exactly_one() {
    let schema = json!({"oneOf": [{"type": "integer"}, {"minimum": 10}]});
    ok(schema.clone(), json!(3));
    ok(schema.clone(), json!(10.5));
    let m = bad(schema.clone(), json!(12), "one_of");
    assert_eq!(
        m,
        "matches more than one of the 2 alternatives, expected exactly one"
    );
    let m = bad(
        json!({"type": "number", "oneOf": [{"maximum": 1}]}),
        json!(3),
        "one_of",
    );
    assert_eq!(m, "matches none of the 1 alternatives");
}

#[test]
fn alternatives_hold_whole_subtrees() {
    let schema = json!({"anyOf": [
        {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}}},
        {"type": "array", "items": {"type": "string"}},
    ]});
    ok(schema.clone(), json!({"sku": "A1"}));
    ok(schema.clone(), json!(["a", "b"]));
    bad(schema.clone(), json!({"sku": 1}), "any_of");
    bad(schema, json!(["a", 1]), "any_of");
}

#[test]
fn annotations_change_nothing() {
    let schema = json!({"type": "string", "description": "d", "title": "t", "$comment": "c",
                        "$schema": "https://json-schema.org/draft/2020-12/schema"});
    ok(schema.clone(), json!("s"));
    bad(schema, json!(1), "type");
}

#[test]
fn messages_never_quote_the_value() {
    let secret = "jane.doe.4711@example.com";
    let schemas = [
        json!({"type": "number"}),
        json!({"maxLength": 3}),
        json!({"pattern": "^x"}),
        json!({"enum": ["a"]}),
        json!({"const": "a"}),
        json!({"format": "uuid"}),
        json!({"anyOf": [{"type": "null"}]}),
        json!({"oneOf": [{"type": "null"}]}),
    ];
    for schema in schemas {
        for v in at_x(schema.clone(), json!(secret)) {
            assert!(!v.message.contains("4711"), "{schema}: {}", v.message);
        }
    }
}
