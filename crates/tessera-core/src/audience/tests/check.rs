//! The type check: what it refuses, where it points, and what it lets through.

use super::*;
use serde_json::json;

fn catalog() -> Catalog {
    Catalog::new()
        .with_computed("ltv", ValueKind::Number)
        .with_computed("fav_category", ValueKind::String)
        .with_computed("categories", ValueKind::List)
        .with_computed("last_plan", ValueKind::Any)
        .with_audience("vip")
}

/// The messages of the check of `text`, each with its location.
fn problems(text: &str) -> Vec<String> {
    match check(&aud(text), &catalog()) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| {
                assert_eq!(e.code(), "definition_type_error");
                e.to_string()
            })
            .collect(),
    }
}

#[test]
fn sensible_definitions_pass() {
    let ok = [
        r#"country = "DE" and ltv > 100"#,
        r#"ltv in (1, 2.5, null) and ltv != null"#,
        r#"fav_category = "jeans" and fav_category starts_with "je""#,
        r#"categories contains "jeans" and categories starts_with "sho" and categories exists"#,
        r#"last_plan = "pro" or last_plan > 3 or last_plan contains "x""#,
        // Profile traits have no declared type: anything goes.
        r#"plan = 3 or plan = "pro" or plan contains "p" or plan within 3 days"#,
        r#"performed "X" at least 0 times within 1 minute"#,
        r#"in audience "vip""#,
        r#"ltv.cents = "x""#,
        r#"a = true and b != null and c = false"#,
    ];
    for text in ok {
        assert_eq!(problems(text), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn mismatches_are_reported_at_their_condition_in_reading_order() {
    let text = "ltv > \"100\"\n  and fav_category = 3\n  and categories = \"jeans\"\n  and not in audience \"gold\"";
    assert_eq!(
        problems(text),
        [
            "line 1, column 1: \"ltv\" is a number (a computed trait) but is compared with the string \"100\"",
            "line 2, column 7: \"fav_category\" is a string (a computed trait) but is compared with the number 3",
            "line 3, column 7: \"categories\" is a list; test its elements with contains",
            "line 4, column 11: unknown audience \"gold\"",
        ]
    );
}

#[test]
fn each_rule_has_its_message() {
    let cases = [
        (
            r#"ltv in (1, "2")"#,
            r#"line 1, column 1: "ltv" is a number (a computed trait) but is compared with the string "2""#,
        ),
        (
            "ltv = true",
            r#"line 1, column 1: "ltv" is a number (a computed trait) but is compared with the value true"#,
        ),
        (
            r#"ltv contains "1""#,
            r#"line 1, column 1: "ltv" is a number; contains and starts_with test strings and lists"#,
        ),
        (
            "ltv within 3 days",
            r#"line 1, column 1: "ltv" is a number; within, before and after test ISO-8601 dates"#,
        ),
        (
            r#"categories before "2024-01-01""#,
            r#"line 1, column 1: "categories" is a list; within, before and after test ISO-8601 dates"#,
        ),
        (
            "plan > true",
            r#"line 1, column 1: ">" orders numbers or strings; true has no order"#,
        ),
        (
            "plan <= null",
            r#"line 1, column 1: "<=" orders numbers or strings; null has no order"#,
        ),
        (
            r#"performed "X" where price >= false"#,
            r#"line 1, column 21: ">=" orders numbers or strings; false has no order"#,
        ),
        (
            "seen within 0 days",
            r#"line 1, column 1: "within 0 days" is an empty period; the amount must be at least 1"#,
        ),
        (
            r#"performed "X" within 0 hours"#,
            r#"line 1, column 1: "within 0 hours" is an empty period; the amount must be at least 1"#,
        ),
        (
            r#"did not perform "" within 1 day"#,
            "line 1, column 1: the event name is empty",
        ),
        (
            r#"`my list` = 1"#,
            // Not in the catalog: a profile trait, unchecked.
            "",
        ),
    ];
    for (text, expected) in cases {
        let found = problems(text);
        if expected.is_empty() {
            assert!(found.is_empty(), "{text}: {found:?}");
        } else {
            assert_eq!(found, [expected], "{text}");
        }
    }
}

#[test]
fn definitions_from_json_are_pointed_at_by_json_pointer() {
    let a = Audience::from_json(&json!({"and": [
        {"trait": "country", "op": "=", "value": "DE"},
        {"not": {"in_audience": "gold"}},
        {"performed": "X", "where": {"or": [
            {"property": "a", "op": "=", "value": 1},
            {"property": "b", "op": ">", "value": null}
        ]}, "window": {"amount": 0, "unit": "days"}},
        {"trait": "ltv", "op": "in", "values": [1, "x"]}
    ]}))
    .unwrap();
    let errors: Vec<String> = check(&a, &catalog())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "at /and/1/not/in_audience: unknown audience \"gold\"",
            "at /and/2/where/or/1/value: \">\" orders numbers or strings; null has no order",
            "at /and/2/window: \"within 0 days\" is an empty period; the amount must be at least 1",
            "at /and/3/values/1: \"ltv\" is a number (a computed trait) but is compared with the string \"x\"",
        ]
    );
}

#[test]
fn computed_definitions_are_checked_on_their_own() {
    assert_eq!(
        check_computed(&computed(r#"count "X" within 7 days"#)),
        Ok(())
    );
    let errors = check_computed(&computed(
        r#"sum total of "" where total > null within 0 weeks"#,
    ))
    .unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "line 1, column 1: the event name is empty",
            "line 1, column 23: \">\" orders numbers or strings; null has no order",
            "line 1, column 1: \"within 0 weeks\" is an empty period; the amount must be at least 1",
        ]
    );
}

#[test]
fn result_kinds_follow_the_aggregate() {
    let kinds = [
        (r#"count "X""#, ValueKind::Number),
        (r#"sum a of "X""#, ValueKind::Number),
        (r#"avg a of "X""#, ValueKind::Number),
        (r#"min a of "X""#, ValueKind::Number),
        (r#"max a of "X""#, ValueKind::Number),
        (r#"unique_count a of "X""#, ValueKind::Number),
        (r#"unique a of "X""#, ValueKind::List),
        (r#"first a of "X""#, ValueKind::Any),
        (r#"last a of "X""#, ValueKind::Any),
        (r#"most_frequent a of "X""#, ValueKind::Any),
    ];
    for (text, kind) in kinds {
        assert_eq!(computed(text).result_kind(), kind, "{text}");
    }
}
