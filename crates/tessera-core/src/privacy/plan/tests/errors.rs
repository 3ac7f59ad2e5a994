//! Plans that are refused, each error with the JSON Pointer to the offending value.

use super::*;

/// Asserts the pointer of the error refusing `schema` (as event "E"'s properties schema,
/// whose pointer starts `/events/E/schema`) and that its message contains `needle`.
#[track_caller]
fn schema_refused(schema: Value, pointer: &str, needle: &str) {
    let e = schema_error(schema.clone());
    assert_eq!(
        e.pointer,
        format!("/events/E/schema{pointer}"),
        "{schema}: {e}"
    );
    assert!(e.message.contains(needle), "{schema}: {e}");
}

#[test]
fn display_names_the_pointer() {
    let e = schema_error(json!({"type": "float"}));
    assert_eq!(
        e.to_string(),
        "at /events/E/schema/type: expected a type name: \
         object, array, string, number, integer, boolean, null"
    );
}

#[test]
fn unknown_keywords_are_refused_with_a_hint() {
    schema_refused(
        json!({"properties": {"total": {"maxLenght": 3}}}),
        "/properties/total/maxLenght",
        "unknown keyword \"maxLenght\"",
    );
    schema_refused(
        json!({"min_length": 3}),
        "/min_length",
        "did you mean \"minLength\"?",
    );
    schema_refused(
        json!({"additionalproperties": false}),
        "/additionalproperties",
        "did you mean \"additionalProperties\"?",
    );
    schema_refused(
        json!({"$ref": "#/x"}),
        "/$ref",
        "keyword \"$ref\" is not supported",
    );
    schema_refused(json!({"allOf": []}), "/allOf", "not supported");
}

#[test]
fn bad_patterns_are_refused_when_read() {
    schema_refused(
        json!({"pattern": "([a-z"}),
        "/pattern",
        "invalid regular expression",
    );
    schema_refused(
        json!({"pattern": 5}),
        "/pattern",
        "expected a regular expression",
    );
    schema_refused(
        json!({"items": {"pattern": "a{99999}{99999}"}}),
        "/items/pattern",
        "invalid regular expression",
    );
}

#[test]
fn keywords_of_the_wrong_type_are_refused() {
    let cases = [
        (json!(5), "", "expected a schema"),
        (json!({"type": 5}), "/type", "expected a type name"),
        (json!({"type": []}), "/type", "non-empty list"),
        (
            json!({"type": ["string", "strng"]}),
            "/type/1",
            "expected a type name",
        ),
        (json!({"type": ["null", "null"]}), "/type/1", "listed twice"),
        (
            json!({"properties": []}),
            "/properties",
            "expected an object",
        ),
        (
            json!({"properties": {"a/b": 3}}),
            "/properties/a~1b",
            "expected a schema",
        ),
        (json!({"required": "a"}), "/required", "expected an array"),
        (
            json!({"required": ["a", 1]}),
            "/required/1",
            "expected a property name",
        ),
        (
            json!({"required": ["a", "a"]}),
            "/required/1",
            "listed twice",
        ),
        (
            json!({"additionalProperties": "no"}),
            "/additionalProperties",
            "expected a schema",
        ),
        (json!({"items": [{}]}), "/items", "tuple"),
        (json!({"minItems": -1}), "/minItems", "non-negative integer"),
        (
            json!({"maxItems": 1.5}),
            "/maxItems",
            "non-negative integer",
        ),
        (
            json!({"minLength": "3"}),
            "/minLength",
            "non-negative integer",
        ),
        (
            json!({"maxLength": null}),
            "/maxLength",
            "non-negative integer",
        ),
        (json!({"enum": []}), "/enum", "non-empty array"),
        (json!({"enum": "a"}), "/enum", "non-empty array"),
        (json!({"minimum": "0"}), "/minimum", "expected a number"),
        (
            json!({"exclusiveMaximum": true}),
            "/exclusiveMaximum",
            "expected a number",
        ),
        (
            json!({"format": "phone"}),
            "/format",
            "unknown format \"phone\"",
        ),
        (json!({"format": 1}), "/format", "expected a string"),
        (json!({"anyOf": []}), "/anyOf", "non-empty array"),
        (json!({"oneOf": [{}, 5]}), "/oneOf/1", "expected a schema"),
        (
            json!({"description": 5}),
            "/description",
            "expected a string",
        ),
    ];
    for (schema, pointer, needle) in cases {
        schema_refused(schema, pointer, needle);
    }
}

#[test]
fn counts_written_as_integral_floats_are_accepted() {
    let p = one(json!({"maxLength": 3.0}));
    assert_eq!(
        p.to_json()["events"]["E"]["schema"],
        json!({"maxLength": 3})
    );
}

#[test]
fn contradictory_bounds_are_refused() {
    schema_refused(
        json!({"minLength": 3, "maxLength": 2}),
        "/minLength",
        "greater",
    );
    schema_refused(
        json!({"minItems": 3, "maxItems": 2}),
        "/minItems",
        "greater",
    );
    schema_refused(json!({"minimum": 1, "maximum": 0.5}), "/minimum", "greater");
    one(json!({"minimum": 1, "maximum": 1.0, "minLength": 2, "maxLength": 2}));
}

/// A schema `levels` levels deep: properties in items in properties...
fn nested(levels: u32) -> Value {
    (0..levels).fold(json!({"type": "string"}), |inner, i| {
        if i % 2 == 0 {
            json!({"properties": {"a": inner}})
        } else {
            json!({"items": inner})
        }
    })
}

#[test]
fn schemas_nest_at_most_max_depth() {
    one(nested(MAX_SCHEMA_DEPTH));
    let e = schema_error(nested(MAX_SCHEMA_DEPTH + 1));
    assert!(e.message.contains("deeper than 32"), "{e}");
    let deep_value = (0..40).fold(json!(1), |v, _| json!([v]));
    schema_refused(json!({"const": deep_value}), "/const", "deeper than 32");
    schema_refused(
        json!({"enum": [1, deep_value]}),
        "/enum/1",
        "deeper than 32",
    );
}

#[test]
fn plan_fields_are_checked() {
    let cases = [
        (json!([]), "", "expected a tracking plan object"),
        (json!({"event": {}}), "/event", "unknown field \"event\""),
        (json!({"events": []}), "/events", "expected an object"),
        (
            json!({"events": {"E": true}}),
            "/events/E",
            "expected an object",
        ),
        (
            json!({"events": {"a/b~c": 1}}),
            "/events/a~1b~0c",
            "expected an object",
        ),
        (
            json!({"events": {"E": {"schema": {}, "desc": ""}}}),
            "/events/E/desc",
            "unknown field",
        ),
        (
            json!({"events": {"E": {"description": 1}}}),
            "/events/E/description",
            "expected a string",
        ),
        (
            json!({"identify": {"traits": {}}}),
            "/identify/traits",
            "unknown field",
        ),
        (
            json!({"identify": {"schema": {"type": "text"}}}),
            "/identify/schema/type",
            "expected a type name",
        ),
        (
            json!({"unplanned": "maybe"}),
            "/unplanned",
            "\"allow\" or \"violate\"",
        ),
        (
            json!({"unplanned": true}),
            "/unplanned",
            "\"allow\" or \"violate\"",
        ),
        (
            json!({"declared_pii": ["a"]}),
            "/declared_pii",
            "expected an object",
        ),
        (
            json!({"declared_pii": {"properties.a/b": 1}}),
            "/declared_pii/properties.a~1b",
            "expected a string",
        ),
    ];
    for (v, pointer, needle) in cases {
        let e = refused(v.clone());
        assert_eq!(e.pointer, pointer, "{v}: {e}");
        assert!(e.message.contains(needle), "{v}: {e}");
    }
}

#[test]
fn optional_fields_may_be_null_or_absent() {
    let p =
        plan(json!({"events": null, "identify": null, "unplanned": null, "declared_pii": null}));
    assert_eq!(p, plan(json!({})));
    assert!(!p.allows_unplanned());
    assert!(p.event_names().is_empty());
}
