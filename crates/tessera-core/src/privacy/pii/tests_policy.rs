//! The policy's JSON form: defaults, overrides, the canonical form round-tripping, `is_noop`,
//! and errors naming a JSON Pointer.

use super::{default_action, Action, Declared, PiiClass, PiiPolicy, PolicyError};
use serde_json::json;

fn error(v: serde_json::Value) -> PolicyError {
    PiiPolicy::from_json(&v).expect_err("the policy should be refused")
}

#[test]
fn action_names_round_trip() {
    for a in Action::ALL {
        assert_eq!(Action::parse(a.as_str()), Some(a));
    }
    assert_eq!(Action::parse("Hash"), None);
    assert_eq!(Declared::parse("none"), Some(Declared::NotPii));
    assert_eq!(
        Declared::parse("iban"),
        Some(Declared::Class(PiiClass::Iban))
    );
    assert_eq!(Declared::parse("secret"), None);
}

#[test]
fn defaults_protect_cards_without_configuration() {
    for p in [
        PiiPolicy::default(),
        PiiPolicy::from_json(&json!({})).unwrap(),
    ] {
        assert_eq!(p.class_action(PiiClass::PaymentCard), Action::Drop);
        assert_eq!(p.class_action(PiiClass::NationalId), Action::Mask);
        assert_eq!(p.class_action(PiiClass::Iban), Action::Mask);
        assert_eq!(p.class_action(PiiClass::Email), Action::Keep);
        assert_eq!(p.class_action(PiiClass::Phone), Action::Keep);
        assert_eq!(p.class_action(PiiClass::IpAddress), Action::Keep);
        assert!(!p.is_noop());
    }
    assert_eq!(default_action(PiiClass::PaymentCard), Action::Drop);
}

#[test]
fn reads_classes_fields_and_declarations() {
    let p = PiiPolicy::from_json(&json!({
        "classes": {"email": "hash", "payment_card": "mask"},
        "fields": {"properties.card": "drop", "traits.phone": "mask",
                   "properties.items.*.sku": "keep"},
        "declared": {"properties.customer_ref": "national_id", "properties.note": "none"}
    }))
    .unwrap();
    assert_eq!(p.class_action(PiiClass::Email), Action::Hash);
    assert_eq!(p.class_action(PiiClass::PaymentCard), Action::Mask);
    // Classes not named keep their defaults.
    assert_eq!(p.class_action(PiiClass::NationalId), Action::Mask);
    assert_eq!(p.field_action("properties.card"), Some(Action::Drop));
    assert_eq!(p.field_action("traits.phone"), Some(Action::Mask));
    assert_eq!(p.field_action("properties.items.*.sku"), Some(Action::Keep));
    assert_eq!(p.field_action("properties.other"), None);
    assert_eq!(
        p.declared("properties.customer_ref"),
        Some(Declared::Class(PiiClass::NationalId))
    );
    assert_eq!(p.declared("properties.note"), Some(Declared::NotPii));
}

#[test]
fn canonical_json_round_trips() {
    let p = PiiPolicy::from_json(&json!({
        "fields": {"traits.phone": "mask", "properties.card": "drop"},
        "declared": {"properties.note": "none", "context.x": "ip_address"},
        "classes": {"email": "hash"}
    }))
    .unwrap();
    let canonical = p.to_json();
    assert_eq!(
        canonical,
        json!({
            "classes": {"email": "hash", "phone": "keep", "payment_card": "drop", "iban": "mask",
                        "ip_address": "keep", "national_id": "mask"},
            "fields": {"properties.card": "drop", "traits.phone": "mask"},
            "declared": {"context.x": "ip_address", "properties.note": "none"}
        })
    );
    assert_eq!(PiiPolicy::from_json(&canonical).unwrap(), p);
    assert_eq!(
        PiiPolicy::from_json(&PiiPolicy::default().to_json()).unwrap(),
        PiiPolicy::default()
    );
    let built = PiiPolicy::keep_all()
        .with_class(PiiClass::Iban, Action::Drop)
        .with_field("properties.a", Action::Hash)
        .with_declared("traits.b", Declared::Class(PiiClass::Phone));
    assert_eq!(PiiPolicy::from_json(&built.to_json()).unwrap(), built);
}

#[test]
fn noop_means_every_action_keep_and_nothing_declared() {
    assert!(PiiPolicy::keep_all().is_noop());
    let all_keep = json!({"classes": {"email": "keep", "phone": "keep", "payment_card": "keep",
        "iban": "keep", "ip_address": "keep", "national_id": "keep"}});
    let p = PiiPolicy::from_json(&all_keep).unwrap();
    assert!(p.is_noop());
    assert_eq!(p, PiiPolicy::keep_all());
    assert!(p.clone().with_field("properties.a", Action::Keep).is_noop());
    assert!(!p.clone().with_field("properties.a", Action::Mask).is_noop());
    assert!(!p
        .clone()
        .with_declared("properties.a", Declared::NotPii)
        .is_noop());
    assert!(!p.with_class(PiiClass::Email, Action::Hash).is_noop());
}

#[test]
fn errors_name_a_json_pointer() {
    let cases = [
        (json!([]), "", "expected an object"),
        (json!({"clases": {}}), "/clases", "unknown key"),
        (json!({"classes": []}), "/classes", "expected an object"),
        (
            json!({"classes": {"mail": "hash"}}),
            "/classes/mail",
            "unknown class",
        ),
        (
            json!({"classes": {"email": "encrypt"}}),
            "/classes/email",
            "expected one of",
        ),
        (
            json!({"classes": {"email": null}}),
            "/classes/email",
            "expected one of",
        ),
        (json!({"fields": "drop"}), "/fields", "expected an object"),
        (
            json!({"fields": {"properties.card": "Drop"}}),
            "/fields/properties.card",
            "expected one of",
        ),
        (
            json!({"fields": {"userId": "hash"}}),
            "/fields/userId",
            "never scanned",
        ),
        (
            json!({"fields": {"properties": "hash"}}),
            "/fields/properties",
            "never scanned",
        ),
        (
            json!({"fields": {"properties..a": "hash"}}),
            "/fields/properties..a",
            "empty segment",
        ),
        (json!({"fields": {"": "hash"}}), "/fields/", "empty segment"),
        (
            json!({"declared": {"traits.x": "ssn"}}),
            "/declared/traits.x",
            "or \"none\"",
        ),
        (
            json!({"declared": {"traits.x": 3}}),
            "/declared/traits.x",
            "or \"none\"",
        ),
        (
            json!({"declared": {"event": "email"}}),
            "/declared/event",
            "never scanned",
        ),
        // Keys with '/' and '~' are escaped in the pointer (RFC 6901).
        (
            json!({"fields": {"properties.a/b~c": "x"}}),
            "/fields/properties.a~1b~0c",
            "expected one of",
        ),
    ];
    for (doc, pointer, message) in cases {
        let e = error(doc.clone());
        assert_eq!(e.pointer, pointer, "{doc}");
        assert!(e.message.contains(message), "{doc}: {}", e.message);
    }
}

#[test]
fn error_display_names_the_place() {
    let e = error(json!({"classes": {"email": "x"}}));
    assert_eq!(
        e.to_string(),
        "at /classes/email: expected one of \"keep\", \"hash\", \"mask\", \"drop\""
    );
    assert_eq!(
        error(json!(1)).to_string(),
        "at the top level: expected an object"
    );
}
