//! Conditions: every operator, numeric edge cases across integer and float representations,
//! unicode, paths into arrays, combinators, `in_audience`, parse errors with their pointers,
//! round trips.

use super::*;
use serde_json::json;

fn cond(v: Value) -> Condition {
    Condition::parse(&v).unwrap_or_else(|e| panic!("{v} should parse: {e}"))
}

fn check(path: &str, op: &str, value: Value, doc: &Value) -> bool {
    let mut c = json!({"path": path, "op": op});
    if op != "exists" && op != "not_exists" {
        c["value"] = value;
    }
    cond(c).matches(doc)
}

fn err(v: Value) -> ConfigError {
    Condition::parse(&v).expect_err(&format!("{v} should not parse"))
}

#[test]
fn equality_and_inequality() {
    let doc = json!({"properties": {"plan": "pro", "n": 3, "ok": true, "none": null, "tags": ["a", "b"]}});
    assert!(check("properties.plan", "eq", json!("pro"), &doc));
    assert!(!check("properties.plan", "eq", json!("Pro"), &doc));
    assert!(check("properties.ok", "eq", json!(true), &doc));
    assert!(check("properties.none", "eq", json!(null), &doc));
    assert!(check("properties.tags", "eq", json!(["a", "b"]), &doc));
    assert!(!check("properties.tags", "eq", json!(["b", "a"]), &doc));
    // A missing field equals nothing, not even null.
    assert!(!check("properties.missing", "eq", json!(null), &doc));
    assert!(check("properties.missing", "neq", json!("x"), &doc));
    // `neq` is exactly `not eq`. Mismatched types: eq false, neq true.
    assert!(!check("properties.n", "eq", json!("3"), &doc));
    assert!(check("properties.n", "neq", json!("3"), &doc));
    assert!(!check("properties.plan", "neq", json!("pro"), &doc));
}

#[test]
fn numbers_compare_by_value_across_representations() {
    let doc = json!({"i": 1, "f": 1.0, "neg": -5, "big": u64::MAX, "half": 2.5, "p53": 9_007_199_254_740_993u64});
    assert!(check("i", "eq", json!(1.0), &doc));
    assert!(check("f", "eq", json!(1), &doc));
    assert!(check("neg", "lt", json!(0u64), &doc));
    assert!(check("neg", "gte", json!(-5.0), &doc));
    assert!(check("neg", "gt", json!(-5.5), &doc));
    assert!(check("big", "gt", json!(i64::MAX), &doc));
    // 2^64 as a float is above u64::MAX, which f64 would round to 2^64.
    assert!(check(
        "big",
        "lt",
        json!(18_446_744_073_709_551_616.0),
        &doc
    ));
    assert!(!check(
        "big",
        "eq",
        json!(18_446_744_073_709_551_616.0),
        &doc
    ));
    // 2^53 + 1 is not 2^53 although both are the same f64.
    assert!(check("p53", "gt", json!(9_007_199_254_740_992.0), &doc));
    assert!(check("p53", "neq", json!(9_007_199_254_740_992u64), &doc));
    assert!(check("half", "gt", json!(2), &doc));
    assert!(check("half", "lt", json!(3), &doc));
    assert!(check("half", "lte", json!(2.5), &doc));
    assert!(!check("half", "gt", json!(2.5), &doc));
    assert!(check("neg", "gt", json!(-1e300), &doc));
    assert!(check("big", "lt", json!(1e300), &doc));
    // Integers compared with floats having a fractional part, both signs.
    assert!(check("neg", "lt", json!(-4.9), &doc));
    assert!(check("neg", "gt", json!(-5.1), &doc));
}

#[test]
fn exact_number_order() {
    use serde_json::Number;
    let n = |v: Value| match v {
        Value::Number(n) => n,
        _ => unreachable!(),
    };
    let cases: Vec<(Number, Number, Ordering)> = vec![
        (n(json!(0)), n(json!(-0.0)), Ordering::Equal),
        (
            n(json!(i64::MIN)),
            n(json!(-9_223_372_036_854_775_808.0)),
            Ordering::Equal,
        ),
        (n(json!(i64::MIN)), n(json!(-9.3e18)), Ordering::Greater),
        (n(json!(u64::MAX)), n(json!(i64::MIN)), Ordering::Greater),
        (n(json!(0.1)), n(json!(0.2)), Ordering::Less),
    ];
    for (a, b, want) in cases {
        assert_eq!(num_cmp(&a, &b), want, "{a} vs {b}");
        assert_eq!(num_cmp(&b, &a), want.reverse(), "{b} vs {a}");
    }
}

#[test]
fn strings_order_by_code_point() {
    let doc = json!({"s": "banana", "u": "é", "emoji": "😀"});
    assert!(check("s", "gt", json!("apple"), &doc));
    assert!(check("s", "lt", json!("cherry"), &doc));
    assert!(check("s", "gte", json!("banana"), &doc));
    assert!(!check("s", "lt", json!("Banana"), &doc)); // uppercase sorts first
    assert!(check("u", "gt", json!("z"), &doc)); // U+00E9 > U+007A
    assert!(check("emoji", "gt", json!("é"), &doc));
    // Numbers and strings never order against each other.
    assert!(!check("s", "gt", json!(1), &doc));
    assert!(!check("s", "lt", json!(1), &doc));
}

#[test]
fn ordering_other_types_never_matches() {
    let doc = json!({"b": true, "n": null, "a": [1], "o": {}});
    for path in ["b", "n", "a", "o", "missing"] {
        for op in ["gt", "gte", "lt", "lte"] {
            assert!(!check(path, op, json!(1), &doc), "{path} {op}");
        }
    }
}

#[test]
fn in_contains_starts_with() {
    let doc =
        json!({"plan": "pro", "n": 2, "tags": ["vip", 3, {"k": 1}], "title": "Crème brûlée 🍮"});
    assert!(check("plan", "in", json!(["free", "pro"]), &doc));
    assert!(!check("plan", "in", json!(["free"]), &doc));
    assert!(check("n", "in", json!([1, 2.0]), &doc));
    assert!(!check("missing", "in", json!([null]), &doc));
    assert!(check("tags", "contains", json!("vip"), &doc));
    assert!(check("tags", "contains", json!(3.0), &doc));
    assert!(check("tags", "contains", json!({"k": 1}), &doc));
    assert!(!check("tags", "contains", json!("vi"), &doc)); // elements, not substrings
    assert!(check("title", "contains", json!("brûlée"), &doc));
    assert!(check("title", "contains", json!("🍮"), &doc));
    assert!(!check("title", "contains", json!("brulee"), &doc)); // no normalisation
    assert!(!check("n", "contains", json!(2), &doc));
    assert!(check("title", "starts_with", json!("Crè"), &doc));
    assert!(!check("title", "starts_with", json!("crè"), &doc));
    assert!(check("title", "starts_with", json!(""), &doc));
    assert!(!check("n", "starts_with", json!("2"), &doc));
}

#[test]
fn exists_and_not_exists() {
    let doc = json!({"a": 0, "b": null, "c": "", "d": []});
    for p in ["a", "c", "d"] {
        assert!(check(p, "exists", Value::Null, &doc), "{p}");
        assert!(!check(p, "not_exists", Value::Null, &doc), "{p}");
    }
    // An explicit null counts as absent.
    for p in ["b", "missing", "a.deeper"] {
        assert!(!check(p, "exists", Value::Null, &doc), "{p}");
        assert!(check(p, "not_exists", Value::Null, &doc), "{p}");
    }
}

#[test]
fn paths_index_arrays_and_keep_numeric_keys() {
    let doc = json!({"products": [{"sku": "a"}, {"sku": "b"}], "map": {"0": "zero", "01": "one"}, "x.y": 1});
    assert!(check("products.1.sku", "eq", json!("b"), &doc));
    assert!(check("products.2.sku", "not_exists", Value::Null, &doc));
    assert!(check("products.first", "not_exists", Value::Null, &doc));
    assert!(check("map.0", "eq", json!("zero"), &doc));
    assert!(check("map.01", "eq", json!("one"), &doc));
    // "01" is not an index.
    assert!(check("products.01.sku", "not_exists", Value::Null, &doc));
    // Keys containing dots are not addressable; the path reads x then y.
    assert!(check("x.y", "not_exists", Value::Null, &doc));
    let p = FieldPath::parse("a.0.b").unwrap();
    assert_eq!(p.as_str(), "a.0.b");
    assert_eq!(p.lookup(&json!({"a": [{"b": 7}]})), Some(&json!(7)));
    assert_eq!(p.lookup(&json!({"a": "str"})), None);
}

#[test]
fn combinators() {
    let doc = json!({"a": 1, "b": 2});
    let t = json!({"path": "a", "op": "eq", "value": 1});
    let f = json!({"path": "b", "op": "eq", "value": 1});
    assert!(cond(json!({"all": [t, t]})).matches(&doc));
    assert!(!cond(json!({"all": [t, f]})).matches(&doc));
    assert!(cond(json!({"any": [f, t]})).matches(&doc));
    assert!(!cond(json!({"any": [f, f]})).matches(&doc));
    assert!(cond(json!({"not": f})).matches(&doc));
    assert!(!cond(json!({"not": {"not": f}})).matches(&doc));
    assert!(cond(json!({"all": []})).matches(&doc));
    assert!(!cond(json!({"any": []})).matches(&doc));
    let nested = json!({"all": [{"any": [f, {"not": f}]}, t]});
    assert!(cond(nested).matches(&doc));
}

#[test]
fn parse_errors_point_at_the_value() {
    let cases = [
        (json!("a = 1"), ""),
        (json!([]), ""),
        (json!({"path": "a", "op": "eq"}), ""),
        (json!({"op": "eq", "value": 1}), ""),
        (json!({"path": "a", "value": 1}), ""),
        (json!({"path": 1, "op": "eq", "value": 1}), "/path"),
        (json!({"path": "", "op": "eq", "value": 1}), "/path"),
        (json!({"path": "a..b", "op": "eq", "value": 1}), "/path"),
        (json!({"path": "a.", "op": "eq", "value": 1}), "/path"),
        (json!({"path": "a", "op": "equals", "value": 1}), "/op"),
        (json!({"path": "a", "op": 1, "value": 1}), "/op"),
        (json!({"path": "a", "op": "in", "value": "x"}), "/value"),
        (json!({"path": "a", "op": "gt", "value": true}), "/value"),
        (json!({"path": "a", "op": "lte", "value": null}), "/value"),
        (
            json!({"path": "a", "op": "starts_with", "value": 1}),
            "/value",
        ),
        (json!({"path": "a", "op": "exists", "value": 1}), "/value"),
        (
            json!({"path": "a", "op": "eq", "value": 1, "vaule": 2}),
            "/vaule",
        ),
        (
            json!({"path": "a", "op": "eq", "value": 1, "a/b": 2}),
            "/a~1b",
        ),
        (json!({"all": {}}), "/all"),
        (json!({"any": [1]}), "/any/0"),
        (json!({"all": [], "any": []}), ""),
        (
            json!({"not": {"all": [{"path": "a", "op": "zz", "value": 1}]}}),
            "/not/all/0/op",
        ),
        (
            json!({"any": [{"path": "a", "op": "eq", "value": 1}, {"path": "a", "op": "eq"}]}),
            "/any/1",
        ),
    ];
    for (v, pointer) in cases {
        let e = err(v.clone());
        assert_eq!(e.pointer, pointer, "{v}: {e}");
        assert!(!e.message.is_empty());
    }
    let e = err(json!({"path": "a", "op": "equals", "value": 1}));
    assert!(e.message.contains("starts_with"), "{e}");
    assert_eq!(e.to_string(), format!("at /op: {}", e.message));
}

#[test]
fn depth_is_bounded() {
    let mut v = json!({"path": "a", "op": "exists"});
    for _ in 0..(MAX_DEPTH - 1) {
        v = json!({"not": v});
    }
    assert!(Condition::parse(&v).is_ok());
    let e = err(json!({"not": v}));
    assert!(e.message.contains("nest"), "{e}");
    assert_eq!(e.pointer.matches("/not").count(), MAX_DEPTH);
}

#[test]
fn to_json_round_trips() {
    for v in [
        json!({"path": "a.b", "op": "eq", "value": {"x": [1, 2.5]}}),
        json!({"path": "a", "op": "exists"}),
        json!({"all": [{"path": "a", "op": "in", "value": [1, "x"]}, {"not": {"any": []}}]}),
        json!({"any": [{"in_audience": "aud_1"}, {"not": {"in_audience": "aud_2"}}]}),
    ] {
        let c = cond(v.clone());
        assert_eq!(c.to_json(), v);
        assert_eq!(cond(c.to_json()), c);
    }
}

#[test]
fn in_audience_asks_the_caller() {
    let doc = json!({"a": 1});
    let c = cond(json!({"all": [{"path": "a", "op": "eq", "value": 1},
                                {"in_audience": "aud_in"}, {"not": {"in_audience": "aud_out"}}]}));
    assert_eq!(
        c,
        Condition::All(vec![
            Condition::Test {
                path: FieldPath::parse("a").unwrap(),
                op: Op::Eq,
                value: json!(1)
            },
            Condition::InAudience("aud_in".into()),
            Condition::Not(Box::new(Condition::InAudience("aud_out".into()))),
        ])
    );
    assert!(c.matches_with(&doc, &|a| a == "aud_in"));
    assert!(!c.matches_with(&doc, &|a| a == "aud_in" || a == "aud_out"));
    assert!(!c.matches_with(&doc, &|_| false));
    // A document alone belongs to no profile, so it is in no audience.
    assert!(!c.matches(&doc));
    assert!(cond(json!({"not": {"in_audience": "x"}})).matches(&doc));
    // The callback is asked exactly about the audiences the evaluation reaches, in order.
    let asked = std::cell::RefCell::new(Vec::new());
    cond(json!({"any": [{"in_audience": "b"}, {"in_audience": "a"}]})).matches_with(&doc, &|a| {
        asked.borrow_mut().push(a.to_owned());
        false
    });
    assert_eq!(asked.into_inner(), vec!["b", "a"]);
}

#[test]
fn audiences_lists_in_audience_ids_once() {
    let c = cond(json!({"any": [
        {"in_audience": "b"},
        {"path": "x", "op": "exists"},
        {"not": {"all": [{"in_audience": "a"}, {"in_audience": "b"}]}}
    ]}));
    assert_eq!(c.audiences(), vec!["b", "a"]);
    assert!(cond(json!({"path": "x", "op": "exists"}))
        .audiences()
        .is_empty());
}
