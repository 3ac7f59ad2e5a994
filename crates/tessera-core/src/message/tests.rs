//! Unit tests of message normalisation: Segment's field rules, one rule per test.

use super::*;
use serde_json::json;

const NOW: Millis = 1_714_566_600_000; // 2024-05-01T12:30:00Z

fn ctx() -> IngestContext<'static> {
    IngestContext {
        received_at: NOW,
        ..Default::default()
    }
}

fn norm(v: Value) -> Result<NormalizedEvent, MessageError> {
    normalize(v, 100, &ctx(), || "generated".into())
}

fn body(e: &NormalizedEvent) -> Value {
    serde_json::from_str(&e.body).unwrap()
}

#[test]
fn track_needs_an_event_name_and_an_identity() {
    let e = norm(json!({"type": "track", "event": "Order Completed", "userId": "u1"})).unwrap();
    assert_eq!(e.kind, MessageType::Track);
    assert_eq!(e.event.as_deref(), Some("Order Completed"));
    assert_eq!(e.user_id.as_deref(), Some("u1"));
    assert_eq!(
        norm(json!({"type": "track", "userId": "u1"})),
        Err(MessageError::MissingField("event"))
    );
    assert_eq!(
        norm(json!({"type": "track", "event": "X"})),
        Err(MessageError::MissingIdentity)
    );
}

#[test]
fn null_and_blank_ids_count_as_absent_and_numbers_become_text() {
    let e = norm(json!({"type": "identify", "userId": 42, "anonymousId": null})).unwrap();
    assert_eq!(e.user_id.as_deref(), Some("42"));
    assert_eq!(e.anonymous_id, None);
    assert_eq!(body(&e)["userId"], "42");
    assert!(body(&e).get("anonymousId").is_none());
    assert_eq!(
        norm(json!({"type": "identify", "userId": "  ", "anonymousId": null})),
        Err(MessageError::MissingIdentity)
    );
    assert_eq!(
        norm(json!({"type": "identify", "userId": {"a": 1}}))
            .unwrap_err()
            .code(),
        "wrong_type"
    );
}

#[test]
fn alias_needs_previous_id_and_user_id_group_needs_group_id() {
    assert!(norm(json!({"type": "alias", "previousId": "a", "userId": "b"})).is_ok());
    assert_eq!(
        norm(json!({"type": "alias", "userId": "b"})),
        Err(MessageError::MissingField("previousId"))
    );
    assert_eq!(
        norm(json!({"type": "alias", "previousId": "a", "anonymousId": "x"})),
        Err(MessageError::MissingField("userId"))
    );
    assert_eq!(
        norm(json!({"type": "group", "userId": "u"})),
        Err(MessageError::MissingField("groupId"))
    );
}

#[test]
fn type_comes_from_the_endpoint_and_must_agree_with_the_body() {
    let c = IngestContext {
        endpoint_type: Some(MessageType::Page),
        ..ctx()
    };
    let e = normalize(json!({"anonymousId": "a", "name": "Home"}), 10, &c, || {
        "m".into()
    })
    .unwrap();
    assert_eq!(e.kind, MessageType::Page);
    assert_eq!(e.event.as_deref(), Some("Home"));
    assert_eq!(body(&e)["type"], "page");
    let err = normalize(json!({"type": "track", "anonymousId": "a"}), 10, &c, || {
        "m".into()
    });
    assert_eq!(err.unwrap_err().code(), "type_mismatch");
    assert_eq!(
        norm(json!({"userId": "u"})),
        Err(MessageError::MissingField("type"))
    );
    assert_eq!(
        norm(json!({"type": "purchase", "userId": "u"}))
            .unwrap_err()
            .code(),
        "unknown_type"
    );
    assert_eq!(MessageType::from_endpoint("s"), Some(MessageType::Screen));
    assert_eq!(MessageType::from_endpoint("batch"), None);
}

#[test]
fn objects_must_be_objects() {
    let err = norm(json!({"type": "track", "event": "E", "userId": "u", "properties": [1]}));
    assert_eq!(
        err,
        Err(MessageError::WrongType {
            field: "properties",
            expected: "an object"
        })
    );
    assert_eq!(norm(json!([1, 2])), Err(MessageError::NotAnObject));
    // null is tolerated and dropped
    let e = norm(json!({"type": "identify", "userId": "u", "traits": null})).unwrap();
    assert!(body(&e).get("traits").is_none());
}

#[test]
fn message_id_is_kept_or_generated_and_write_key_is_never_stored() {
    let e =
        norm(json!({"type": "identify", "userId": "u", "messageId": "m-1", "writeKey": "secret"}))
            .unwrap();
    assert_eq!(e.message_id, "m-1");
    assert!(!e.body.contains("secret"));
    let e = norm(json!({"type": "identify", "userId": "u"})).unwrap();
    assert_eq!(e.message_id, "generated");
    assert_eq!(body(&e)["messageId"], "generated");
    let long = "x".repeat(MAX_MESSAGE_ID_CHARS + 1);
    assert_eq!(
        norm(json!({"type": "identify", "userId": "u", "messageId": long}))
            .unwrap_err()
            .code(),
        "invalid_value"
    );
}

#[test]
fn clock_skew_is_corrected_from_sent_at() {
    // The device clock is 1 hour fast: it says it sent at 13:30 an event it made at 13:29.
    let e = norm(json!({
        "type": "track", "event": "E", "userId": "u",
        "timestamp": "2024-05-01T13:29:00Z", "sentAt": "2024-05-01T13:30:00Z"
    }))
    .unwrap();
    assert_eq!(e.timestamp, NOW - 60_000);
    let b = body(&e);
    assert_eq!(b["timestamp"], "2024-05-01T12:29:00.000Z");
    assert_eq!(b["originalTimestamp"], "2024-05-01T13:29:00.000Z");
    assert_eq!(b["receivedAt"], "2024-05-01T12:30:00.000Z");
}

#[test]
fn batch_sent_at_applies_and_original_timestamp_wins_over_timestamp() {
    let c = IngestContext {
        batch_sent_at: Some(NOW + 10_000),
        ..ctx()
    };
    let e = normalize(
        json!({"type": "track", "event": "E", "userId": "u", "originalTimestamp": "2024-05-01T12:30:05Z"}),
        10,
        &c,
        || "m".into(),
    )
    .unwrap();
    assert_eq!(e.timestamp, NOW - 5_000);
}

#[test]
fn without_sent_at_a_given_timestamp_is_kept_and_without_any_receipt_time_is_used() {
    let e = norm(
        json!({"type": "track", "event": "E", "userId": "u", "timestamp": "2020-01-01T00:00:00Z"}),
    )
    .unwrap();
    assert_eq!(e.timestamp, 1_577_836_800_000);
    let e = norm(json!({"type": "track", "event": "E", "userId": "u"})).unwrap();
    assert_eq!(e.timestamp, NOW);
    assert_eq!(body(&e)["receivedAt"], body(&e)["timestamp"]);
}

#[test]
fn bad_dates_name_their_field() {
    let err = norm(json!({"type": "track", "event": "E", "userId": "u", "timestamp": "yesterday"}))
        .unwrap_err();
    assert!(err.to_string().contains("`timestamp`"), "{err}");
    let err =
        norm(json!({"type": "track", "event": "E", "userId": "u", "sentAt": 17})).unwrap_err();
    assert!(err.to_string().contains("`sentAt`"), "{err}");
}

#[test]
fn batch_context_merges_under_the_items_own() {
    let batch_ctx =
        json!({"library": {"name": "analytics-python", "version": "2"}, "ip": "1.2.3.4"});
    let batch_int = json!({"All": false});
    let c = IngestContext {
        batch_context: batch_ctx.as_object(),
        batch_integrations: batch_int.as_object(),
        ..ctx()
    };
    let e = normalize(
        json!({"type": "track", "event": "E", "userId": "u", "context": {"library": {"version": "3"}, "page": {"path": "/"}}}),
        10,
        &c,
        || "m".into(),
    )
    .unwrap();
    let b = body(&e);
    assert_eq!(b["context"]["library"]["name"], "analytics-python");
    assert_eq!(b["context"]["library"]["version"], "3");
    assert_eq!(b["context"]["ip"], "1.2.3.4");
    assert_eq!(b["context"]["page"]["path"], "/");
    assert_eq!(b["integrations"]["All"], false);
}

#[test]
fn oversized_messages_are_refused() {
    let err = normalize(json!({}), MAX_EVENT_BYTES + 1, &ctx(), || "m".into()).unwrap_err();
    assert_eq!(err.code(), "event_too_large");
}

#[test]
fn unknown_fields_and_unicode_pass_through() {
    let e = norm(
        json!({"type": "identify", "userId": "ü-🦀", "traits": {"名前": "テスト"}, "custom": [1]}),
    )
    .unwrap();
    let b = body(&e);
    assert_eq!(b["userId"], "ü-🦀");
    assert_eq!(b["traits"]["名前"], "テスト");
    assert_eq!(b["custom"][0], 1);
}
