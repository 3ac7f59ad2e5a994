//! The JSON form: its exact shape, reading it back, and its errors with JSON Pointers.

use super::*;
use serde_json::{json, Value};

fn json_error(v: Value) -> String {
    match Audience::from_json(&v) {
        Ok(a) => panic!("{v} should be refused, but gave {a}"),
        Err(e) => {
            assert!(matches!(e.location(), Location::Json(_)), "{e:?}");
            e.to_string()
        }
    }
}

#[test]
fn the_issue_example_has_a_readable_json_form() {
    let a = aud(
        r#"country = "DE" and performed "Product Viewed" where category = "jeans" at least 3 times within 30 days"#,
    );
    let expected = json!({"and": [
        {"trait": "country", "op": "=", "value": "DE"},
        {
            "performed": "Product Viewed",
            "where": {"property": "category", "op": "=", "value": "jeans"},
            "at_least": 3,
            "window": {"amount": 30, "unit": "days"}
        }
    ]});
    assert_eq!(a.to_json(), expected);
    assert_eq!(Audience::from_json(&expected).unwrap(), a);
}

#[test]
fn every_leaf_shape() {
    let cases = [
        (
            r#"plan in ("a", 1) or plan not in (null)"#,
            json!({"or": [
                {"trait": "plan", "op": "in", "values": ["a", 1]},
                {"trait": "plan", "op": "not_in", "values": [null]}
            ]}),
        ),
        (
            r#"not (email contains "x" and email starts_with "y")"#,
            json!({"not": {"and": [
                {"trait": "email", "op": "contains", "value": "x"},
                {"trait": "email", "op": "starts_with", "value": "y"}
            ]}}),
        ),
        (
            "a exists and b not exists and c within 1 week and d != 2.5",
            json!({"and": [
                {"trait": "a", "op": "exists"},
                {"trait": "b", "op": "not_exists"},
                {"trait": "c", "op": "within", "value": {"amount": 1, "unit": "weeks"}},
                {"trait": "d", "op": "!=", "value": 2.5}
            ]}),
        ),
        (
            r#"s before "2024-05-01" or s after "2024-05-01T00:00:00Z""#,
            json!({"or": [
                {"trait": "s", "op": "before", "value": "2024-05-01"},
                {"trait": "s", "op": "after", "value": "2024-05-01T00:00:00Z"}
            ]}),
        ),
        (
            r#"did not perform "X" where (a > 1 or not b exists) within 2 hours"#,
            json!({
                "did_not_perform": "X",
                "where": {"or": [
                    {"property": "a", "op": ">", "value": 1},
                    {"not": {"property": "b", "op": "exists"}}
                ]},
                "window": {"amount": 2, "unit": "hours"}
            }),
        ),
        (
            r#"performed "X" at most 2 times or performed "Y" exactly 0 times"#,
            json!({"or": [
                {"performed": "X", "at_most": 2},
                {"performed": "Y", "exactly": 0}
            ]}),
        ),
        (
            r#"in audience "vip" and address.city = "B" and `a.b`.c = 1"#,
            json!({"and": [
                {"in_audience": "vip"},
                {"trait": "address.city", "op": "=", "value": "B"},
                {"trait": ["a.b", "c"], "op": "=", "value": 1}
            ]}),
        ),
        (
            r#"performed "X" where properties.properties.a = 1"#,
            json!({"performed": "X", "where": {"property": "properties.properties.a", "op": "=", "value": 1}}),
        ),
    ];
    for (text, expected) in cases {
        let a = aud(text);
        assert_eq!(a.to_json(), expected, "{text}");
        assert_eq!(Audience::from_json(&expected).unwrap(), a, "{text}");
    }
}

#[test]
fn computed_traits_have_a_json_form() {
    let c = computed(r#"sum revenue of "Order Completed" where currency = "EUR" within 90 days"#);
    let expected = json!({
        "aggregate": "sum",
        "property": "revenue",
        "event": "Order Completed",
        "where": {"property": "currency", "op": "=", "value": "EUR"},
        "window": {"amount": 90, "unit": "days"}
    });
    assert_eq!(c.to_json(), expected);
    assert_eq!(ComputedDef::from_json(&expected).unwrap(), c);
    let count = computed(r#"count "X""#);
    assert_eq!(count.to_json(), json!({"aggregate": "count", "event": "X"}));
    assert_eq!(
        ComputedDef::from_json(&json!({"aggregate": "COUNT", "event": "X", "property": null}))
            .unwrap(),
        count
    );
}

#[test]
fn the_reader_is_lenient_where_it_does_not_matter() {
    let same = [
        (json!({"and": [{"trait": "a", "op": "exists"}]}), "a exists"),
        (
            json!({"performed": "X", "window": {"amount": 1, "unit": "Day"}}),
            r#"performed "X" within 1 day"#,
        ),
        (
            json!({"performed": "X", "window": null}),
            r#"performed "X""#,
        ),
        (
            json!({"performed": "X", "window": "ever"}),
            r#"performed "X""#,
        ),
        (json!({"performed": "X", "at_least": 1}), r#"performed "X""#),
        (
            json!({"performed": "X", "where": {"property": "properties.c", "op": "=", "value": 1}}),
            r#"performed "X" where c = 1"#,
        ),
        (
            json!({"trait": ["address", "city"], "op": "exists"}),
            "address.city exists",
        ),
    ];
    for (v, text) in same {
        assert_eq!(Audience::from_json(&v).unwrap(), aud(text), "{v}");
    }
}

#[test]
fn json_errors_point_at_the_offending_value() {
    let cases = [
        (json!("country = \"DE\""), "at the top level: expected a condition object"),
        (json!({}), "at the top level: expected an object with one of \"and\", \"or\", \"not\", \"trait\", \"performed\", \"did_not_perform\" or \"in_audience\""),
        (json!({"and": []}), "at /and: expected at least one condition"),
        (json!({"and": {"trait": "a"}}), "at /and: expected an array of conditions"),
        (json!({"and": [{"trait": "a", "op": "exists"}], "or": []}), "at /or: unknown field \"or\""),
        (json!({"or": [{"trait": "a", "op": "exists"}, 5]}), "at /or/1: expected a condition object"),
        (json!({"trait": "a", "op": "=="}), "at /op: unknown operator \"==\"; expected =, !=, >, >=, <, <=, in, not_in, contains, starts_with, exists, not_exists, within, before or after"),
        (json!({"trait": "a", "op": "="}), "at the top level: field \"value\" is required"),
        (json!({"trait": "a"}), "at the top level: field \"op\" is required"),
        (json!({"trait": "a", "op": "in", "value": [1]}), "at /value: \"in\" takes \"values\", not \"value\""),
        (json!({"trait": "a", "op": "exists", "value": 1}), "at /value: \"exists\" takes no value"),
        (json!({"trait": "a", "op": "in", "values": []}), "at /values: expected at least one value"),
        (json!({"trait": "a", "op": "in", "values": [1, [2]]}), "at /values/1: expected a value (a string, number, true, false or null)"),
        (json!({"trait": "a", "op": "=", "value": {"x": 1}}), "at /value: expected a value (a string, number, true, false or null)"),
        (json!({"trait": "a", "op": "contains", "value": 1}), "at /value: expected a string"),
        (json!({"trait": "a", "op": "before", "value": "soon"}), "at /value: \"soon\" is not an ISO-8601 date; expected a date such as \"2024-05-01\" or \"2024-05-01T12:30:00Z\""),
        (json!({"trait": "a", "op": "within", "value": {"amount": -1, "unit": "days"}}), "at /value/amount: expected a whole number from 0 to 4294967295"),
        (json!({"trait": "a", "op": "within", "value": {"amount": 1, "unit": "fortnights"}}), "at /value/unit: unknown unit \"fortnights\"; expected minutes, hours, days or weeks"),
        (json!({"trait": "a", "op": "within", "value": {"amount": 1}}), "at /value: field \"unit\" is required"),
        (json!({"trait": "a..b", "op": "exists"}), "at /trait: expected a name such as \"address.city\" or a non-empty array of non-empty names"),
        (json!({"trait": [], "op": "exists"}), "at /trait: expected a name such as \"address.city\" or a non-empty array of non-empty names"),
        (json!({"trait": "a", "op": "exists", "valeu": 1}), "at /valeu: unknown field \"valeu\""),
        (json!({"performed": 5}), "at /performed: expected a string"),
        (json!({"performed": "X", "at_least": 1, "exactly": 2}), "at /exactly: \"exactly\" cannot be combined with \"at_least\""),
        (json!({"performed": "X", "at_least": 1.5}), "at /at_least: expected a whole number from 0 to 4294967295"),
        (json!({"did_not_perform": "X", "at_most": 1}), "at /at_most: \"did_not_perform\" takes no count; use \"performed\" with \"at_most\""),
        (json!({"performed": "X", "where": {"trait": "a", "op": "exists"}}), "at /where: expected an object with one of \"and\", \"or\", \"not\" or \"property\""),
        (json!({"performed": "X", "where": {"and": [{"property": "a", "op": "exists"}, {"property": "b", "op": "~"}]}}), "at /where/and/1/op: unknown operator \"~\"; expected =, !=, >, >=, <, <=, in, not_in, contains, starts_with, exists, not_exists, within, before or after"),
        (json!({"performed": "X", "window": {"amount": 1, "unit": "days", "x": 1}}), "at /window/x: unknown field \"x\""),
        (json!({"in_audience": "vip", "a/b~": 1}), "at /a~1b~0: unknown field \"a/b~\""),
    ];
    for (v, expected) in cases {
        assert_eq!(json_error(v.clone()), expected, "{v}");
    }
}

#[test]
fn computed_json_errors() {
    let cases = [
        (json!({"aggregate": "median", "property": "a", "event": "X"}), "at /aggregate: unknown aggregate \"median\"; expected count, sum, avg, min, max, first, last, most_frequent, unique or unique_count"),
        (json!({"aggregate": "count", "property": "a", "event": "X"}), "at /property: \"count\" counts events and takes no property"),
        (json!({"aggregate": "sum", "event": "X"}), "at the top level: \"sum\" needs an event \"property\""),
        (json!({"aggregate": "sum", "property": "a"}), "at the top level: field \"event\" is required"),
        (json!({"aggregate": "sum", "property": "a", "event": "X", "at_least": 3}), "at /at_least: unknown field \"at_least\""),
        (json!([]), "at the top level: expected a computed trait object"),
    ];
    for (v, expected) in cases {
        assert_eq!(
            ComputedDef::from_json(&v).unwrap_err().to_string(),
            expected,
            "{v}"
        );
    }
}

#[test]
fn deep_json_is_refused_without_overflowing_the_stack() {
    let mut v = json!({"trait": "a", "op": "exists"});
    for _ in 0..1_000 {
        v = json!({ "not": v });
    }
    let e = json_error(v);
    assert!(e.contains("nested too deeply"), "{e}");
}

/// `levels` alternating `or` / `and` groups around a leaf, each with a second member.
fn alternating(levels: usize) -> Value {
    let mut v = json!({"trait": "a", "op": "exists"});
    for i in 0..levels {
        let key = if i % 2 == 0 { "and" } else { "or" };
        v = json!({ key: [v, {"trait": "b", "op": "exists"}] });
    }
    v
}

#[test]
fn json_is_as_deep_as_text_may_be_and_no_deeper() {
    let nots = |n: usize, leaf: Value| {
        let mut v = leaf;
        for _ in 0..n {
            v = json!({ "not": v });
        }
        v
    };
    let a_exists = json!({"trait": "a", "op": "exists"});
    let a = Audience::from_json(&nots(MAX_DEPTH as usize, a_exists.clone())).unwrap();
    assert_eq!(aud(&a.to_string()), a);
    assert_eq!(
        json_error(nots(MAX_DEPTH as usize + 1, a_exists)),
        "at the top level: the definition is nested too deeply (its text would have more than \
         64 levels of parentheses and \"not\")"
    );
    // An `and` inside an `or` needs no parentheses, so this is deeper in JSON than in text.
    let a = Audience::from_json(&alternating(120)).unwrap();
    assert_eq!(aud(&a.to_string()), a);
    assert!(json_error(alternating(140)).contains("nested too deeply"));
    // A `where` group counts too: `not performed "X" where (not not ... p exists)`.
    let p_exists = json!({"property": "p", "op": "exists"});
    let with_filter =
        |n: usize| json!({"not": {"performed": "X", "where": nots(n, p_exists.clone())}});
    let a = Audience::from_json(&with_filter(MAX_DEPTH as usize - 2)).unwrap();
    assert_eq!(aud(&a.to_string()), a);
    assert!(json_error(with_filter(MAX_DEPTH as usize - 1)).contains("nested too deeply"));
    let c = json!({"aggregate": "count", "event": "X", "where": nots(MAX_DEPTH as usize, p_exists.clone())});
    assert!(ComputedDef::from_json(&c)
        .unwrap_err()
        .to_string()
        .contains("nested too deeply"));
}
