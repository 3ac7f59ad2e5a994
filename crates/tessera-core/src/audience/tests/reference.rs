//! The reference evaluator's semantics, as tables: each trait test on present, absent and
//! null values; event conditions and windows at their edges; each aggregate.

use super::*;
use crate::audience::reference::{evaluate_audience, evaluate_computed, EventRecord, ProfileData};
use crate::time::{format_iso8601, Millis};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// 2024-05-01T12:30:00Z.
const NOW: Millis = 1_714_566_600_000;
const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;

fn ev(name: &str, at: Millis, properties: Value) -> EventRecord {
    EventRecord {
        name: name.to_owned(),
        timestamp_ms: at,
        properties,
    }
}

fn traits() -> BTreeMap<String, Value> {
    let v = json!({
        "country": "DE",
        "ltv": 150,
        "plan": "Pro",
        "email": "Ann@Example.com",
        "tags": ["Jeans", "shoes", 7],
        "vip": true,
        "nothing": null,
        "address": {"city": "Berlin"},
        "signup": "2024-04-01T00:00:00Z",
        "seen": format_iso8601(NOW - 2 * DAY),
        "future": format_iso8601(NOW + DAY),
        "score": 5,
    });
    serde_json::from_value(v).unwrap()
}

fn events() -> Vec<EventRecord> {
    let pv = |ago: Millis, category: &str| {
        ev("Product Viewed", NOW - ago, json!({ "category": category }))
    };
    vec![
        pv(DAY, "jeans"),
        pv(10 * DAY, "jeans"),
        pv(29 * DAY, "jeans"),
        // Exactly 30 days old: just outside `within 30 days`.
        pv(30 * DAY, "jeans"),
        pv(40 * DAY, "jeans"),
        pv(2 * DAY, "shoes"),
        pv(3 * DAY - 1, "Jeans"),
        // From the future: in `ever`, in no window yet.
        pv(-HOUR, "jeans"),
        ev("Order Completed", NOW - 5 * DAY, json!({"total": 50})),
        ev("Order Completed", NOW - DAY, json!({"total": 70.5})),
        ev("Order Completed", NOW - 2 * DAY, json!({"total": "12"})),
        ev("Order Completed", NOW - 3 * DAY + 1, json!({"coupon": "X"})),
        ev("Login", NOW, json!({})),
        ev("Login", NOW - HOUR, json!({})),
        ev("Visit", NOW - 4 * DAY, json!({"utm": {"source": "google"}})),
        ev("Visit", NOW - 3 * DAY, json!({"utm": {"source": "bing"}})),
        ev("page", NOW - DAY, json!({"name": "Pricing"})),
    ]
}

fn profile() -> ProfileData {
    ProfileData {
        traits: traits(),
        events: events(),
    }
}

/// Whether the test profile is in `text`, with `vip` its only other audience.
fn holds_with(text: &str, computed: &BTreeMap<String, Value>) -> bool {
    evaluate_audience(&aud(text), &profile(), computed, &|name| name == "vip", NOW)
}

fn holds(text: &str) -> bool {
    holds_with(text, &BTreeMap::new())
}

fn value_of(text: &str, p: &ProfileData) -> Value {
    evaluate_computed(&computed(text), p, NOW)
}

fn check_table(table: &[(&str, bool)]) {
    let wrong: Vec<_> = table
        .iter()
        .filter(|(text, expected)| holds(text) != *expected)
        .map(|(text, expected)| format!("{text} should be {expected}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn comparisons_follow_the_kinds_of_both_sides() {
    check_table(&[
        (r#"country = "DE""#, true),
        (r#"country = "de""#, false),
        (r#"country != "FR""#, true),
        (r#"country != "DE""#, false),
        ("ltv > 100", true),
        ("ltv >= 150", true),
        ("ltv > 150", false),
        ("ltv < 150.5", true),
        ("ltv <= 149.99", false),
        ("ltv = 150.0", true),
        (r#"ltv = "150""#, false),
        // `!=` is the negation of `=`, whatever the kinds.
        (r#"ltv != "150""#, true),
        (r#"ltv > "100""#, false),
        (r#"country > "DA""#, true),
        (r#"country < "DE""#, false),
        ("country < 5", false),
        ("vip = true", true),
        (r#"vip = "true""#, false),
        ("vip != false", true),
        ("vip > false", false),
        (r#"plan in ("pro", "Pro")"#, true),
        (r#"plan in ("pro", 1)"#, false),
        (r#"plan not in ("pro")"#, true),
        ("ltv in (1, 150)", true),
        (r#"address.city = "Berlin""#, true),
        ("address.zip exists", false),
        ("country.x exists", false),
        (r#"tags = "Jeans""#, false),
    ]);
}

#[test]
fn absent_and_null_values_fail_every_test_but_the_negative_ones() {
    check_table(&[
        (r#"missing = "x""#, false),
        (r#"missing != "x""#, true),
        ("missing > 1", false),
        ("missing <= 1", false),
        (r#"missing in ("a", 1)"#, false),
        (r#"missing not in ("a", 1)"#, true),
        (r#"missing contains "a""#, false),
        (r#"missing starts_with """#, false),
        ("missing exists", false),
        ("missing not exists", true),
        ("missing within 1 day", false),
        (r#"missing before "2100-01-01""#, false),
        (r#"missing after "1900-01-01""#, false),
        ("missing = null", true),
        ("missing != null", false),
        ("missing in (null)", true),
        // A stored null is the same as absent.
        ("nothing exists", false),
        ("nothing not exists", true),
        ("nothing = null", true),
        (r#"nothing != "x""#, true),
        ("country = null", false),
        ("country != null", true),
    ]);
}

#[test]
fn text_tests_ignore_case_and_look_inside_lists() {
    check_table(&[
        (r#"email contains "example""#, true),
        (r#"email contains "EXAMPLE.COM""#, true),
        (r#"email contains "@gmail""#, false),
        (r#"email starts_with "ann@""#, true),
        (r#"email starts_with "example""#, false),
        (r#"ltv contains "1""#, false),
        (r#"tags contains "jeans""#, true),
        (r#"tags contains "jea""#, false),
        (r#"tags contains "7""#, false),
        (r#"tags starts_with "SHO""#, true),
        (r#"tags starts_with "x""#, false),
    ]);
}

#[test]
fn date_tests_read_iso_strings_and_windows_are_open_at_the_far_end() {
    check_table(&[
        ("seen within 3 days", true),
        // Exactly two days old: `within 2 days` is (now - 2 days, now].
        ("seen within 2 days", false),
        ("seen within 49 hours", true),
        ("seen within 2881 minutes", true),
        ("seen within 1 week", true),
        ("future within 3 days", false),
        (r#"signup before "2024-05-01""#, true),
        (r#"signup before "2024-04-01""#, false),
        (r#"signup after "2024-04-01""#, false),
        (r#"signup after "2024-03-31T23:59:59.999Z""#, true),
        (r#"signup after "2024-04-01T01:00:00+02:00""#, true),
        ("country within 3 days", false),
        ("ltv within 3 days", false),
    ]);
}

#[test]
fn computed_traits_shadow_profile_traits_even_when_null() {
    let computed: BTreeMap<String, Value> = [
        ("country".into(), json!("FR")),
        ("score".into(), Value::Null),
    ]
    .into();
    assert!(holds_with(r#"country = "FR""#, &computed));
    assert!(!holds_with(r#"country = "DE""#, &computed));
    assert!(holds("score exists"));
    assert!(!holds_with("score exists", &computed));
}

#[test]
fn audience_membership_comes_from_the_caller() {
    check_table(&[
        (r#"in audience "vip""#, true),
        (r#"in audience "gold""#, false),
        (r#"not in audience "gold""#, true),
        (r#"in audience "vip" and not in audience "gold""#, true),
    ]);
}

#[test]
fn event_conditions_count_matching_events_in_their_window() {
    check_table(&[
        (r#"performed "Product Viewed""#, true),
        (r#"performed "product viewed""#, false),
        (r#"performed "Unknown""#, false),
        (r#"performed "Unknown" at most 0 times"#, true),
        (r#"did not perform "Unknown""#, true),
        // -1, -10 and -29 days; the one 30 days old has left the window.
        (
            r#"performed "Product Viewed" where category = "jeans" at least 3 times within 30 days"#,
            true,
        ),
        (
            r#"performed "Product Viewed" where category = "jeans" at least 4 times within 30 days"#,
            false,
        ),
        (
            r#"performed "Product Viewed" where category = "jeans" exactly 3 times in the last 720 hours"#,
            true,
        ),
        // `ever` takes them all, the future one included.
        (
            r#"performed "Product Viewed" where category = "jeans" exactly 6 times"#,
            true,
        ),
        (
            r#"performed "Product Viewed" where properties.category = "jeans" exactly 6 times ever"#,
            true,
        ),
        (
            r#"performed "Product Viewed" where (category = "jeans" or category = "shoes") exactly 2 times within 7 days"#,
            true,
        ),
        (
            r#"performed "Product Viewed" where category contains "JEANS" exactly 2 times within 7 days"#,
            true,
        ),
        (
            r#"performed "Product Viewed" where (not category = "jeans") exactly 2 times"#,
            true,
        ),
        (
            r#"performed "Product Viewed" at most 2 times within 2 days"#,
            true,
        ),
        (
            r#"performed "Product Viewed" at most 0 times within 2 days"#,
            false,
        ),
        // An event at `now` is inside; one exactly an hour old is not.
        (r#"performed "Login" exactly 1 time within 1 hour"#, true),
        (
            r#"performed "Login" exactly 2 times within 61 minutes"#,
            true,
        ),
        // The order one day old has just left a one-day window.
        (r#"did not perform "Order Completed" within 1 day"#, true),
        (r#"did not perform "Order Completed" within 2 days"#, false),
        (
            r#"did not perform "Order Completed" where total > 100"#,
            true,
        ),
        (r#"performed "Order Completed" where total > 60"#, true),
        (
            r#"performed "Order Completed" where total exists exactly 3 times"#,
            true,
        ),
        (r#"performed "Visit" where utm.source = "bing""#, true),
        (r#"performed "page" where name = "Pricing""#, true),
        (
            r#"country = "DE" and performed "Product Viewed" where category = "jeans" at least 3 times within 30 days"#,
            true,
        ),
    ]);
}

#[test]
fn did_not_perform_is_the_negation_of_performed() {
    let conditions = [
        r#""Product Viewed" where category = "shoes" within 1 day"#,
        r#""Product Viewed" where category = "shoes" within 3 days"#,
        r#""Order Completed" where total > 60"#,
        r#""Nothing""#,
    ];
    for c in conditions {
        assert_eq!(
            holds(&format!("did not perform {c}")),
            !holds(&format!("performed {c}")),
            "{c}"
        );
    }
}

#[test]
fn aggregates_over_the_test_profile() {
    let p = profile();
    let table = [
        (
            r#"count "Product Viewed" where category = "jeans" within 30 days"#,
            json!(3),
        ),
        (r#"count "Product Viewed""#, json!(8)),
        (r#"count "Nothing""#, json!(0)),
        (r#"count "Login" within 1 hour"#, json!(1)),
        // Numbers only: the string "12" and the order without a total are skipped.
        (r#"sum total of "Order Completed""#, json!(120.5)),
        (
            r#"sum total of "Order Completed" within 3 days"#,
            json!(70.5),
        ),
        (r#"avg total of "Order Completed""#, json!(60.25)),
        (r#"min total of "Order Completed""#, json!(50)),
        (r#"max total of "Order Completed""#, json!(70.5)),
        // first / last take any value, by time.
        (r#"first total of "Order Completed""#, json!(50)),
        (r#"last total of "Order Completed""#, json!(70.5)),
        (
            r#"last total of "Order Completed" where total < 60"#,
            json!(50),
        ),
        (r#"first utm.source of "Visit""#, json!("google")),
        (r#"last properties.utm.source of "Visit""#, json!("bing")),
        (r#"first utm of "Visit""#, json!({"source": "google"})),
        (
            r#"most_frequent category of "Product Viewed""#,
            json!("jeans"),
        ),
        (
            r#"most_frequent category of "Product Viewed" within 7 days"#,
            json!("Jeans"),
        ),
        (
            r#"unique category of "Product Viewed" within 7 days"#,
            json!(["Jeans", "jeans", "shoes"]),
        ),
        (r#"unique_count category of "Product Viewed""#, json!(3)),
        (
            r#"unique_count category of "Product Viewed" within 1 day"#,
            json!(0),
        ),
    ];
    let wrong: Vec<_> = table
        .iter()
        .filter(|(text, expected)| value_of(text, &p) != *expected)
        .map(|(text, expected)| format!("{text}: expected {expected}, got {}", value_of(text, &p)))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn aggregates_of_nothing_are_null_except_counts() {
    let p = ProfileData::default();
    for agg in Aggregate::ALL {
        let text = if agg == Aggregate::Count {
            r#"count "X""#.to_owned()
        } else {
            format!(r#"{} a of "X""#, agg.as_str())
        };
        let expected = match agg {
            Aggregate::Count | Aggregate::UniqueCount => json!(0),
            _ => Value::Null,
        };
        assert_eq!(value_of(&text, &p), expected, "{text}");
    }
}

/// A profile whose `X` events carry the given values of `v`, one second apart, in order.
fn values_profile(values: Value) -> ProfileData {
    let events = values
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, v)| ev("X", NOW - 100_000 + i as Millis * 1000, json!({ "v": v })))
        .collect();
    ProfileData {
        traits: BTreeMap::new(),
        events,
    }
}

#[test]
fn numeric_aggregates_keep_integers_exact_and_fall_back_to_floats() {
    let cases = [
        ("sum", json!([3, 4]), json!(7)),
        ("sum", json!([3, 4.0]), json!(7.0)),
        ("sum", json!([i64::MAX, 1]), json!(9.223372036854776e18)),
        ("sum", json!([-5, 2, "x", null, true]), json!(-3)),
        ("avg", json!([3, 4]), json!(3.5)),
        ("avg", json!([2, 2]), json!(2.0)),
        ("min", json!([3, 1.0, 1, 2]), json!(1.0)),
        ("max", json!([3, 3.0, -1]), json!(3)),
        ("max", json!([u64::MAX, 1]), json!(u64::MAX)),
        ("min", json!(["a", {"b": 1}]), Value::Null),
    ];
    for (agg, values, expected) in cases {
        let p = values_profile(values.clone());
        assert_eq!(
            value_of(&format!(r#"{agg} v of "X""#), &p),
            expected,
            "{agg} {values}"
        );
    }
}

#[test]
fn value_aggregates_order_booleans_numbers_then_strings() {
    let cases = [
        (
            "unique",
            json!(["x", 3, false, 1.5, "x", [1], {"a": 1}, null, true]),
            json!([false, true, 1.5, 3, "x"]),
        ),
        ("unique", json!([1, 1.0, 1]), json!([1, 1.0])),
        ("unique_count", json!([1, 1.0, "1", true]), json!(4)),
        (
            "most_frequent",
            json!(["b", "a", 2, true, "a", "b", 2, true]),
            json!(true),
        ),
        ("most_frequent", json!(["b", "a", "b", "a"]), json!("a")),
        ("most_frequent", json!([2, 1.0, 1, 2]), json!(2)),
        ("most_frequent", json!([1.0, 1]), json!(1)),
        ("most_frequent", json!(["B", "a"]), json!("B")),
        ("most_frequent", json!([[1], [1]]), Value::Null),
    ];
    for (agg, values, expected) in cases {
        let p = values_profile(values.clone());
        assert_eq!(
            value_of(&format!(r#"{agg} v of "X""#), &p),
            expected,
            "{agg} {values}"
        );
    }
}

#[test]
fn first_and_last_break_timestamp_ties_by_list_order() {
    let p = ProfileData {
        traits: BTreeMap::new(),
        events: vec![
            ev("X", NOW - DAY, json!({"v": "b"})),
            ev("X", NOW - 2 * DAY, json!({"v": "a"})),
            ev("X", NOW - DAY, json!({"v": "c"})),
            ev("X", NOW - 2 * DAY, json!({"v": "d"})),
        ],
    };
    assert_eq!(value_of(r#"first v of "X""#, &p), json!("a"));
    assert_eq!(value_of(r#"last v of "X""#, &p), json!("c"));
}

#[test]
fn computed_values_feed_audiences() {
    let p = profile();
    let defs = [
        (
            "jeans_views",
            r#"count "Product Viewed" where category = "jeans" within 30 days"#,
        ),
        ("spent", r#"sum total of "Order Completed""#),
        ("cats", r#"unique category of "Product Viewed""#),
    ];
    let values: BTreeMap<String, Value> = defs
        .iter()
        .map(|(name, def)| (name.to_string(), value_of(def, &p)))
        .collect();
    let holds = |text: &str| evaluate_audience(&aud(text), &p, &values, &|_| false, NOW);
    assert!(holds("jeans_views >= 3 and spent > 100"));
    assert!(!holds("jeans_views > 3"));
    assert!(holds(r#"cats contains "SHOES""#));
}
