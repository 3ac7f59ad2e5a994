//! Random plans and messages: the JSON form of any plan reads back to the same plan, and no
//! message, however odd, makes `check` panic or return more than the cap.

use super::*;
use proptest::prelude::*;

fn type_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "object", "array", "string", "number", "integer", "boolean", "null",
    ])
}

/// A small JSON value, for `enum`, `const` and messages.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6..1e6f64).prop_map(Value::from),
        "[a-z@.:0-9-]{0,12}".prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]{1,2}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A schema with no subschemas.
fn leaf_schema() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        any::<bool>().prop_map(Value::from),
        type_name().prop_map(|t| json!({"type": t})),
        prop::collection::btree_set(type_name(), 1..4)
            .prop_map(|ts| json!({"type": ts.into_iter().collect::<Vec<_>>()})),
        (0u64..5, 0u64..5).prop_map(|(a, b)| json!({"minLength": a, "maxLength": a + b})),
        (0u64..5, 0u64..5).prop_map(|(a, b)| json!({"minItems": a, "maxItems": a + b})),
        (-100i64..100, 0.0..50f64)
            .prop_map(|(a, b)| json!({"minimum": a, "maximum": a as f64 + b})),
        (-100i64..100).prop_map(|a| json!({"exclusiveMinimum": a, "exclusiveMaximum": 0.5})),
        prop::sample::select(vec!["^[a-z]+$", "b", "^\\d{2,3}", "(x|y)*z"])
            .prop_map(|p| json!({"pattern": p})),
        prop::sample::select(vec!["email", "date-time", "date", "uri", "uuid"])
            .prop_map(|f| json!({"format": f})),
        prop::collection::vec(json_value(), 1..4).prop_map(|e| json!({"enum": e})),
        json_value().prop_map(|c| json!({"const": c})),
        "[a-z ]{0,10}".prop_map(|d| json!({"type": "string", "description": d, "title": d})),
    ]
}

/// A small schema, nesting through every keyword that holds schemas.
fn schema() -> impl Strategy<Value = Value> {
    leaf_schema().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (
                prop::collection::btree_map("[a-d]{1,2}", inner.clone(), 0..4),
                prop::collection::btree_set("[a-d]{1,2}", 0..3),
                prop::option::of(inner.clone()),
            )
                .prop_map(|(props, required, additional)| {
                    let required: Vec<String> = required.into_iter().collect();
                    let mut s =
                        json!({"type": "object", "properties": props, "required": required});
                    if let Some(a) = additional {
                        s["additionalProperties"] = a;
                    }
                    s
                }),
            (inner.clone(), 0u64..3)
                .prop_map(|(items, min)| json!({"items": items, "minItems": min})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|s| json!({"anyOf": s})),
            prop::collection::vec(inner, 1..3).prop_map(|s| json!({"oneOf": s})),
        ]
    })
}

/// A message of any type, its parts drawn at random.
fn message() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "track", "page", "screen", "identify", "group", "other",
        ]),
        prop::sample::select(vec!["E", "F", ""]),
        json_value(),
        json_value(),
        json_value(),
    )
        .prop_map(|(kind, name, properties, traits, context_traits)| {
            json!({"type": kind, "event": name, "name": name, "properties": properties,
                   "traits": traits, "context": {"traits": context_traits}})
        })
}

fn plan_of(events: Value, identify: Value, allow: bool) -> Value {
    json!({
        "events": {"E": {"schema": events}},
        "identify": {"schema": identify},
        "unplanned": if allow { "allow" } else { "violate" },
        "declared_pii": {"traits.email": "email"},
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn json_form_reads_back(events in schema(), identify in schema(), allow in any::<bool>()) {
        let p = plan(plan_of(events, identify, allow));
        let written = p.to_json();
        let again = plan(written.clone());
        prop_assert_eq!(&again, &p);
        prop_assert_eq!(again.to_json(), written);
    }

    #[test]
    fn check_never_panics(
        events in schema(),
        identify in schema(),
        allow in any::<bool>(),
        msg in message(),
        raw in json_value(),
    ) {
        let p = plan(plan_of(events, identify, allow));
        for m in [&msg, &raw] {
            let found = p.check(m);
            prop_assert!(found.len() <= MAX_VIOLATIONS);
            for v in &found {
                prop_assert!(["E", "F", "", "identify"].contains(&v.event.as_str()), "{:?}", v);
                let root_ok = v.path.is_empty()
                    || v.path.starts_with("properties")
                    || v.path.starts_with("traits");
                prop_assert!(root_ok, "{:?}", v);
            }
        }
    }

    /// A plan that allows anything finds nothing, and a value conforming to a `const` or an
    /// `enum` is accepted as itself.
    #[test]
    fn values_conform_to_schemas_naming_them(v in json_value()) {
        let anything = one(json!(true)).check(&track(json!({"x": v.clone()})));
        let as_const = at_x(json!({"const": v.clone()}), v.clone());
        let in_enum = at_x(json!({"enum": [1, v.clone()]}), v);
        prop_assert!(anything.is_empty() && as_const.is_empty() && in_enum.is_empty());
    }
}
