//! Templates: typed placeholders, text interpolation, untouched keys and constants, syntax
//! errors with pointers, and deterministic rendering over random contexts.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn tpl(v: Value) -> Template {
    Template::parse(&v).unwrap_or_else(|e| panic!("{v} should parse: {e}"))
}

fn ctx() -> Value {
    json!({
        "event": "Order Completed",
        "properties": {"total": 99.5, "items": [{"sku": "a"}, {"sku": "b"}], "coupon": null, "paid": true},
        "profile": {"id": "prf_7", "traits": {"email": "a@b.c", "name": "Zoë"}},
    })
}

#[test]
fn whole_string_placeholders_keep_their_type() {
    let t = tpl(json!({
        "total": "{{ properties.total }}",
        "tight": "{{properties.paid}}",
        "items": "{{ properties.items }}",
        "sku": "{{ properties.items.1.sku }}",
        "coupon": "{{ properties.coupon }}",
        "missing": "{{ properties.nope }}",
    }));
    assert_eq!(
        t.render(&ctx()),
        json!({
            "total": 99.5,
            "tight": true,
            "items": [{"sku": "a"}, {"sku": "b"}],
            "sku": "b",
            "coupon": null,
            "missing": null,
        })
    );
}

#[test]
fn text_interpolation() {
    let t = tpl(json!([
        "Hi {{ profile.traits.name }}!",
        "{{event}} for {{ properties.total }}",
        "paid={{properties.paid}} coupon={{properties.coupon}} gone=[{{nope}}]",
        "{{ properties.items.0 }}",
        " {{ event }}",
        "{{event}}{{event}}",
    ]));
    assert_eq!(
        t.render(&ctx()),
        json!([
            "Hi Zoë!",
            "Order Completed for 99.5",
            "paid=true coupon=null gone=[]",
            {"sku": "a"},
            " Order Completed",
            "Order CompletedOrder Completed",
        ])
    );
}

#[test]
fn keys_and_constants_are_untouched() {
    let t = tpl(json!({
        "{{ event }}": "{{ event }}",
        "n": 1, "b": false, "z": null,
        "nested": {"a": ["x", {"deep": "{{ profile.id }}"}], "plain": "text with { single } braces"},
    }));
    assert_eq!(
        t.render(&ctx()),
        json!({
            "{{ event }}": "Order Completed",
            "n": 1, "b": false, "z": null,
            "nested": {"a": ["x", {"deep": "prf_7"}], "plain": "text with { single } braces"},
        })
    );
    // A template without placeholders renders to itself, whatever the context.
    let c = json!({"a": [1, "two", {"three": 3}]});
    assert_eq!(tpl(c.clone()).render(&Value::Null), c);
    assert!(tpl(c).paths().is_empty());
}

#[test]
fn a_scalar_template() {
    assert_eq!(
        tpl(json!("{{ properties }}")).render(&ctx()),
        ctx()["properties"]
    );
    assert_eq!(tpl(json!(5)).render(&ctx()), json!(5));
}

#[test]
fn paths_lists_what_is_read() {
    let t = tpl(json!({"a": "{{ x.y }}", "b": ["{{p}} and {{ q.0 }}"]}));
    assert_eq!(t.paths(), vec!["x.y", "p", "q.0"]);
}

#[test]
fn syntax_errors_point_at_the_string() {
    let cases = [
        (json!("{{ event"), ""),
        (json!("event }}"), ""),
        (json!("}} {{ event }}"), ""),
        (json!("{{ }}"), ""),
        (json!("{{}}"), ""),
        (json!("{{ a..b }}"), ""),
        (json!("{{ {{ a }} }}"), ""),
        (json!("{{{a}}}"), ""),
        (json!({"body": {"text": "Hi {{ name"}}), "/body/text"),
        (json!({"list": ["ok", "{{ }}"]}), "/list/1"),
        (json!({"a/b~c": "{{"}), "/a~1b~0c"),
    ];
    for (v, pointer) in cases {
        let e = Template::parse(&v).expect_err(&format!("{v} should not parse"));
        assert_eq!(e.pointer, pointer, "{v}: {e}");
    }
    let e = Template::parse(&json!({"x": "{{ }}"}))
        .unwrap_err()
        .within("/mapping");
    assert_eq!(e.pointer, "/mapping/x");
    assert!(e.message.contains("empty path"), "{e}");
}

#[test]
fn to_json_and_equality_follow_the_source() {
    let v = json!({"a": "{{ b }}", "c": [1, "x {{ d }}"]});
    let t = tpl(v.clone());
    assert_eq!(t.to_json(), v);
    assert_eq!(tpl(t.to_json()), t);
    assert_ne!(tpl(json!("{{ b }}")), t);
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z ]{0,6}".prop_map(Value::String),
        prop::sample::select(vec![
            "{{ a }}",
            "{{ b.0 }}",
            "x {{ a }} y {{ c.d }}",
            "{{c}}"
        ])
        .prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn rendering_is_deterministic(t in value(), a in leaf(), b in value(), c in value()) {
        let template = Template::parse(&t).unwrap();
        let ctx = json!({"a": a, "b": [b], "c": c});
        let first = template.render(&ctx);
        prop_assert_eq!(&template.render(&ctx), &first);
        prop_assert_eq!(&Template::parse(&template.to_json()).unwrap().render(&ctx), &first);
        // Same shape: the rendered value has a key wherever the template has one.
        if let (Value::Object(x), Value::Object(y)) = (&t, &first) {
            prop_assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
        }
    }
}
