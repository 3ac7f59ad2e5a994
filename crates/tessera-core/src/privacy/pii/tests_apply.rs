//! `apply` on whole Segment messages (findings and the rewritten message), hashing, masking,
//! drops in arrays, the depth limit, declarations, and identity paths left alone.

use super::{apply, hash_value, mask, Action, Declared, Finding, PiiClass, PiiPolicy, MAX_DEPTH};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const SALT: &[u8] = b"workspace-salt";

fn policy(v: Value) -> PiiPolicy {
    PiiPolicy::from_json(&v).unwrap()
}

/// Findings as sorted `(path, class, action)`, so tests do not depend on the map's key order.
fn sorted(mut f: Vec<Finding>) -> Vec<(String, PiiClass, Action)> {
    f.sort_by(|a, b| a.path.cmp(&b.path));
    f.into_iter().map(|f| (f.path, f.class, f.action)).collect()
}

fn finding(path: &str, class: PiiClass, action: Action) -> (String, PiiClass, Action) {
    (path.to_string(), class, action)
}

fn sha(salt: &[u8], value: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(value.as_bytes());
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[test]
fn track_message() {
    use Action::*;
    use PiiClass::*;
    let mut m = json!({
        "type": "track", "event": "Order Completed", "messageId": "m-1",
        "userId": "alice@example.com", "anonymousId": "4111111111111111",
        "timestamp": "2024-01-05T10:00:00Z",
        "properties": {
            "email": "  Bob@Example.com ",
            "card": "4111 1111 1111 1111",
            "card_number": 5555555555554444u64,
            "iban": "DE89 3704 0044 0532 0130 00",
            "ssn": "123-45-6789",
            "total": 12.99, "order_id": "ORD-2024-000123", "placed_on": "2024-01-05",
            "items": [{"sku": "A1", "gift_email": "carol@example.com"}, "378282246310005", 3]
        },
        "context": {
            "ip": "203.0.113.42",
            "library": {"name": "analytics.js", "version": "2.11.1"},
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
            "traits": {"email": "alice@example.com", "phone": "+14155552671"}
        }
    });
    let p = policy(json!({"classes": {"email": "hash", "ip_address": "mask"}}));
    let findings = apply(&mut m, &p, SALT);
    assert_eq!(
        sorted(findings),
        vec![
            finding("context.ip", IpAddress, Mask),
            finding("context.traits.email", Email, Keep),
            finding("context.traits.phone", Phone, Keep),
            finding("properties.card", PaymentCard, Drop),
            finding("properties.card_number", PaymentCard, Drop),
            finding("properties.email", Email, Hash),
            finding("properties.iban", Iban, Mask),
            finding("properties.items.0.gift_email", Email, Hash),
            finding("properties.items.1", PaymentCard, Drop),
            finding("properties.ssn", NationalId, Mask),
        ]
    );
    assert_eq!(
        m,
        json!({
            "type": "track", "event": "Order Completed", "messageId": "m-1",
            "userId": "alice@example.com", "anonymousId": "4111111111111111",
            "timestamp": "2024-01-05T10:00:00Z",
            "properties": {
                "email": sha(SALT, "bob@example.com"),
                "iban": "DE****************3000",
                "ssn": "*******6789",
                "total": 12.99, "order_id": "ORD-2024-000123", "placed_on": "2024-01-05",
                "items": [{"sku": "A1", "gift_email": sha(SALT, "carol@example.com")}, null, 3]
            },
            "context": {
                "ip": "203.0.113.0",
                "library": {"name": "analytics.js", "version": "2.11.1"},
                "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
                "traits": {"email": "alice@example.com", "phone": "+14155552671"}
            }
        })
    );
}

#[test]
fn identify_message_leaves_identity_paths_alone_by_default() {
    use Action::*;
    use PiiClass::*;
    let message = json!({
        "type": "identify", "userId": "u1", "previousId": "bob@example.com",
        "traits": {"email": "Alice@Example.com", "phone": "+44 20 7946 0958",
                   "backup_email": "alice@work.example", "plan": "pro"},
        "context": {
            "traits": {"email": "alice@example.com"},
            "externalIds": [{"id": "alice@example.com", "type": "email", "collection": "users"}],
            "device": {"id": "4111111111111111", "advertisingId": "203.0.113.9"}
        }
    });
    let p = policy(json!({"classes": {"email": "hash", "phone": "mask", "ip_address": "drop"}}));
    let mut m = message.clone();
    let findings = apply(&mut m, &p, SALT);
    assert_eq!(
        sorted(findings),
        vec![
            finding("context.device.advertisingId", IpAddress, Keep),
            finding("context.device.id", PaymentCard, Keep),
            finding("context.externalIds.0.id", Email, Keep),
            finding("context.traits.email", Email, Keep),
            finding("traits.backup_email", Email, Hash),
            finding("traits.email", Email, Keep),
            finding("traits.phone", Phone, Keep),
        ]
    );
    let mut expected = message.clone();
    expected["traits"]["backup_email"] = json!(sha(SALT, "alice@work.example"));
    assert_eq!(m, expected);

    // Naming an identity path in `fields` (exactly or by its `*` form) applies the action.
    let p = policy(
        json!({"fields": {"traits.email": "hash", "traits.phone": "mask",
                                     "context.externalIds.*.id": "hash"}}),
    );
    let mut m = message.clone();
    apply(&mut m, &p, SALT);
    assert_eq!(m["traits"]["email"], json!(sha(SALT, "alice@example.com")));
    assert_eq!(m["traits"]["phone"], json!("+** ** **** 0958"));
    assert_eq!(
        m["context"]["externalIds"][0]["id"],
        json!(sha(SALT, "alice@example.com"))
    );
    assert_eq!(m["context"]["traits"]["email"], json!("alice@example.com"));
    assert_eq!(m["previousId"], json!("bob@example.com"));
}

#[test]
fn hashing_is_stable_salted_and_normalised() {
    let h = hash_value("alice@example.com", PiiClass::Email, SALT);
    assert_eq!(h, sha(SALT, "alice@example.com"));
    assert_eq!(h.len(), "sha256:".len() + 64);
    assert!(h[7..]
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    // Stable, case-insensitive and trimmed for e-mails, different under another salt.
    assert_eq!(h, hash_value(" ALICE@Example.COM ", PiiClass::Email, SALT));
    assert_ne!(
        h,
        hash_value("alice@example.com", PiiClass::Email, b"other")
    );
    assert_eq!(hash_value("x", PiiClass::Email, b""), sha(b"", "x"));
    // Presentation is not part of the value.
    let card = hash_value("4111111111111111", PiiClass::PaymentCard, SALT);
    assert_eq!(
        card,
        hash_value("4111 1111 1111 1111", PiiClass::PaymentCard, SALT)
    );
    assert_eq!(
        card,
        hash_value("4111-1111-1111-1111", PiiClass::PaymentCard, SALT)
    );
    let iban = hash_value("DE89370400440532013000", PiiClass::Iban, SALT);
    assert_eq!(
        iban,
        hash_value("de89 3704 0044 0532 0130 00", PiiClass::Iban, SALT)
    );
    let phone = hash_value("+14155552671", PiiClass::Phone, SALT);
    assert_eq!(
        phone,
        hash_value("+1 (415) 555-2671", PiiClass::Phone, SALT)
    );
    assert_eq!(
        hash_value("2001:DB8::1", PiiClass::IpAddress, SALT),
        hash_value("2001:db8:0:0::1", PiiClass::IpAddress, SALT)
    );
    // Other than e-mail, case matters (a NINO is upper case, other values are as sent).
    assert_ne!(
        hash_value("Call me", PiiClass::Phone, SALT),
        hash_value("call me", PiiClass::Phone, SALT)
    );

    // In a message: the same address in two cases hashes the same, so it still joins.
    let p = policy(json!({"classes": {"email": "hash"}}));
    let mut m = json!({"properties": {"a": "Bob@Example.com", "b": "bob@example.com"}});
    apply(&mut m, &p, SALT);
    assert_eq!(m["properties"]["a"], m["properties"]["b"]);
    let mut again = json!({"properties": {"a": "bob@example.com"}});
    apply(&mut again, &p, b"another workspace");
    assert_ne!(again["properties"]["a"], m["properties"]["a"]);
}

#[test]
fn masks_per_class() {
    use PiiClass::*;
    let cases = [
        ("alice@example.com", Email, "a***@example.com"),
        ("a***@example.com", Email, "a***@example.com"),
        ("*x@example.com", Email, "***@example.com"),
        ("Émile@example.fr", Email, "É***@example.fr"),
        ("not an address", Email, "**********ress"),
        ("+1 (415) 555-2671", Phone, "+* (***) ***-2671"),
        ("+14155552671", Phone, "+*******2671"),
        ("4111 1111 1111 1111", PaymentCard, "**** **** **** 1111"),
        ("378282246310005", PaymentCard, "***********0005"),
        ("DE89370400440532013000", Iban, "DE****************3000"),
        (
            "GB82 WEST 1234 5698 7654 32",
            Iban,
            "GB****************5432",
        ),
        ("192.168.1.77", IpAddress, "192.168.1.0"),
        ("2001:db8:85a3::8a2e:370:7334", IpAddress, "2001:db8:85a3::"),
        ("2001:db8::1", IpAddress, "2001:db8::"),
        ("123-45-6789", NationalId, "*******6789"),
        ("AB123456C", NationalId, "*****456C"),
        ("AB1", NationalId, "***"),
        ("", NationalId, ""),
    ];
    for (value, class, masked) in cases {
        assert_eq!(mask(value, class), masked, "mask({value:?}, {class:?})");
        assert_eq!(mask(masked, class), masked, "masking {masked:?} again");
    }
}

#[test]
fn drops_in_arrays_become_null() {
    let mut m = json!({"properties": {
        "cards": ["4111111111111111", "not a card", 4111111111111111u64, [["5555555555554444"]]],
        "items": [{"email": "a@example.com", "card": "4111111111111111", "qty": 2}]
    }});
    let p = policy(json!({"classes": {"email": "drop"}}));
    let findings = apply(&mut m, &p, SALT);
    assert_eq!(
        m,
        json!({"properties": {
            "cards": [null, "not a card", null, [[null]]],
            "items": [{"qty": 2}]
        }})
    );
    let paths: Vec<String> = sorted(findings).into_iter().map(|f| f.0).collect();
    assert_eq!(
        paths,
        [
            "properties.cards.0",
            "properties.cards.2",
            "properties.cards.3.0.0",
            "properties.items.0.card",
            "properties.items.0.email",
        ]
    );
}

#[test]
fn values_deeper_than_the_limit_are_left_alone() {
    // Builds `properties.d2.d3…` so that the e-mail at the bottom sits at `depth` segments.
    fn nested(depth: usize) -> Value {
        let mut v = json!({"email": "a@example.com"});
        for level in (2..depth).rev() {
            v = json!({ format!("d{level}"): v });
        }
        json!({ "properties": v })
    }
    let p = policy(json!({"classes": {"email": "mask"}}));
    let mut at_limit = nested(MAX_DEPTH);
    let findings = apply(&mut at_limit, &p, SALT);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].path.split('.').count(), MAX_DEPTH);
    assert!(at_limit.to_string().contains("a***@example.com"));

    let mut too_deep = nested(MAX_DEPTH + 1);
    let before = too_deep.clone();
    assert!(apply(&mut too_deep, &p, SALT).is_empty());
    assert_eq!(too_deep, before);

    // Deep arrays count the same way, and a very deep document does not overflow the stack.
    let mut deep = json!("a@example.com");
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let mut m = json!({"properties": {"x": deep}});
    assert!(apply(&mut m, &p, SALT).is_empty());
}

#[test]
fn declarations_override_detection() {
    let p = policy(json!({
        "declared": {"properties.customer_ref": "national_id", "properties.contact": "none",
                     "properties.items.*.ref": "phone", "properties.mobile": "phone"},
        "classes": {"email": "drop", "phone": "mask"}
    }));
    let mut m = json!({"properties": {
        "customer_ref": "CUST-000123",
        "contact": "alice@example.com",
        "items": [{"ref": "0151 12345678"}, {"ref": 4915112345678u64}],
        "mobile": 4915112345678u64,
        "flag": true, "nothing": null, "price": 4.5
    }});
    let findings = apply(&mut m, &p, SALT);
    assert_eq!(
        m,
        json!({"properties": {
            "customer_ref": "*******0123",
            "contact": "alice@example.com",
            "items": [{"ref": "**** ****5678"}, {"ref": "*********5678"}],
            "mobile": "*********5678",
            "flag": true, "nothing": null, "price": 4.5
        }})
    );
    // "none" means no finding at all; declared numbers are read as their digits.
    assert_eq!(findings.len(), 4);
    assert!(findings.iter().all(|f| f.path != "properties.contact"));
}

#[test]
fn field_actions_override_the_class_but_only_for_classified_values() {
    let p = policy(
        json!({"fields": {"properties.contact": "drop", "properties.items.*.card": "mask",
                                      "properties.items.1.card": "keep"}}),
    );
    let mut m = json!({"properties": {
        "contact": "alice@example.com",
        "other": "bob@example.com",
        "items": [{"card": "4111111111111111"}, {"card": "4111111111111111"}, {"card": "n/a"}]
    }});
    apply(&mut m, &p, SALT);
    assert_eq!(
        m,
        json!({"properties": {
            "other": "bob@example.com",
            "items": [{"card": "************1111"}, {"card": "4111111111111111"}, {"card": "n/a"}]
        }})
    );
    // A field action on a value that is not personal data does nothing to it.
    let mut m = json!({"properties": {"contact": "n/a"}});
    assert!(apply(&mut m, &p, SALT).is_empty());
    assert_eq!(m, json!({"properties": {"contact": "n/a"}}));
}

#[test]
fn numbers_are_cards_only_as_long_integers() {
    let mut m = json!({"properties": {
        "card": 4111111111111111u64, "negative": -4111111111111111i64, "float": 4111111111111111.0,
        "short": 411111111111u64, "not_luhn": 4111111111111112u64, "id": 1234567890123456789u64
    }});
    let findings = apply(&mut m, &PiiPolicy::default(), SALT);
    assert_eq!(
        sorted(findings),
        vec![finding(
            "properties.card",
            PiiClass::PaymentCard,
            Action::Drop
        )]
    );
    assert!(m["properties"].get("card").is_none());
    assert_eq!(m["properties"].as_object().unwrap().len(), 5);
}

#[test]
fn envelope_fields_and_odd_shapes_are_left_alone() {
    let p = policy(json!({"classes": {"email": "drop", "ip_address": "drop"}}));
    let mut m = json!({"type": "page", "userId": "a@example.com", "groupId": "1.2.3.4",
                       "messageId": "a@example.com", "name": "a@example.com"});
    let before = m.clone();
    assert!(apply(&mut m, &p, SALT).is_empty());
    assert_eq!(m, before);
    for mut odd in [
        json!(null),
        json!("a@example.com"),
        json!([{"properties": {"e": "a@example.com"}}]),
    ] {
        let before = odd.clone();
        assert!(apply(&mut odd, &p, SALT).is_empty());
        assert_eq!(odd, before);
    }
    // A section that is itself a personal value is classified under its own name.
    let mut m = json!({"properties": "a@example.com", "traits": 3, "context": []});
    let findings = apply(&mut m, &p, SALT);
    assert_eq!(
        sorted(findings),
        vec![finding("properties", PiiClass::Email, Action::Drop)]
    );
    assert_eq!(m, json!({"traits": 3, "context": []}));
}

#[test]
fn keep_all_reports_but_changes_nothing() {
    let mut m = json!({"properties": {"e": "a@example.com", "c": "4111111111111111"},
                       "context": {"ip": "8.8.8.8"}});
    let before = m.clone();
    let findings = apply(&mut m, &PiiPolicy::keep_all(), SALT);
    assert_eq!(m, before);
    assert_eq!(findings.len(), 3);
    assert!(findings.iter().all(|f| f.action == Action::Keep));
}

#[test]
fn declared_through_the_builder() {
    let p = PiiPolicy::keep_all()
        .with_declared("properties.code", Declared::Class(PiiClass::Iban))
        .with_field("properties.code", Action::Hash);
    let mut m = json!({"properties": {"code": "x1"}});
    apply(&mut m, &p, SALT);
    assert_eq!(m["properties"]["code"], json!(sha(SALT, "X1")));
}
