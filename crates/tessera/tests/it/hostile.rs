//! Malformed and hostile input: each gets the right status and a `{"code","message"}` body,
//! and nothing of it is stored.

use crate::support::*;
use serde_json::json;

/// Sends `body` and checks status and code, and that the log did not move.
fn refused(
    s: &Server,
    key: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    status: u16,
    code: &str,
) {
    let before = s.log_position();
    let auth = basic_auth(key);
    let mut h = vec![("Authorization", auth.as_str())];
    h.extend_from_slice(headers);
    let r = s.request("POST", path, &h, body).unwrap();
    assert_eq!(r.status, status, "{path}: {}", r.text());
    let v = r.json();
    assert_eq!(v["code"], code, "{}", r.text());
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.text()
    );
    assert_eq!(
        s.log_position(),
        before,
        "a refused request must store nothing"
    );
}

#[test]
fn invalid_json_and_wrong_types_name_the_problem() {
    let (_d, s, key) = fresh("badjson");
    let cases: [(&str, &[u8], &str); 8] = [
        ("/v1/track", b"{\"userId\": \"u\", ", "invalid_json"),
        ("/v1/batch", b"[1,2,3]", "invalid_json"),
        ("/v1/batch", br#"{"batch": "nope"}"#, "wrong_type"),
        (
            "/v1/track",
            br#"{"userId": "u", "event": 42}"#,
            "wrong_type",
        ),
        (
            "/v1/track",
            br#"{"userId": ["u"], "event": "E"}"#,
            "wrong_type",
        ),
        (
            "/v1/identify",
            br#"{"userId": "u", "traits": "x"}"#,
            "wrong_type",
        ),
        (
            "/v1/track",
            br#"{"userId": "u", "event": "E", "timestamp": "noon"}"#,
            "invalid_value",
        ),
        (
            "/v1/track",
            br#"{"type": "identify", "userId": "u", "event": "E"}"#,
            "type_mismatch",
        ),
    ];
    for (path, body, code) in cases {
        refused(&s, &key, path, &[], body, 400, code);
    }
    let r = s.track("/v1/track", &key, r#"{"userId": "u", "event": 42}"#);
    assert!(
        r.json()["message"].as_str().unwrap().contains("event"),
        "the message names the field"
    );
}

#[test]
fn missing_ids_are_refused() {
    let (_d, s, key) = fresh("missing");
    let cases: [(&str, &[u8], &str); 5] = [
        ("/v1/track", br#"{"event": "E"}"#, "missing_identity"),
        (
            "/v1/track",
            br#"{"event": "E", "userId": null, "anonymousId": ""}"#,
            "missing_identity",
        ),
        ("/v1/track", br#"{"userId": "u"}"#, "missing_field"),
        ("/v1/alias", br#"{"userId": "u"}"#, "missing_field"),
        ("/v1/group", br#"{"userId": "u"}"#, "missing_field"),
    ];
    for (path, body, code) in cases {
        refused(&s, &key, path, &[], body, 400, code);
    }
}

#[test]
fn unknown_missing_and_disabled_write_keys_get_401() {
    let (_d, s, key) = fresh("keys");
    let body = br#"{"userId": "u", "event": "E"}"#;
    refused(
        &s,
        "not-a-key",
        "/v1/track",
        &[],
        body,
        401,
        "unknown_write_key",
    );
    let before = s.log_position();
    let r = s.request("POST", "/v1/track", &[], body).unwrap();
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (401, json!("missing_write_key"))
    );
    assert_eq!(s.log_position(), before);
    let sources = s.admin("GET", "/api/v1/sources", "").json();
    let id = sources["sources"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.admin("POST", &format!("/api/v1/sources/{id}/disable"), "")
            .status,
        200
    );
    refused(&s, &key, "/v1/track", &[], body, 401, "source_disabled");
}

#[test]
fn oversized_events_and_batches_are_refused() {
    let (_d, s, key) = fresh("size");
    let big = "x".repeat(33 * 1024);
    let event = json!({"userId": "u", "event": "E", "properties": {"blob": big}}).to_string();
    refused(
        &s,
        &key,
        "/v1/track",
        &[],
        event.as_bytes(),
        413,
        "event_too_large",
    );
    // In a batch the oversized item is rejected and named; the rest is stored.
    let batch = format!(r#"{{"batch":[{event},{{"type":"track","userId":"u","event":"Small"}}]}}"#)
        .replace(
            r#"{"userId":"u","event":"E""#,
            r#"{"type":"track","userId":"u","event":"E""#,
        );
    let r = s.track("/v1/batch", &key, &batch);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["rejected"][0]["code"], "event_too_large");
    assert_eq!(r.json()["rejected"][0]["index"], 0);
    // Over 500 KB of body.
    let huge = "y".repeat(520 * 1024);
    let body = format!(
        r#"{{"batch":[{{"type":"track","userId":"u","event":"E","properties":{{"p":"{huge}"}}}}]}}"#
    );
    refused(
        &s,
        &key,
        "/v1/batch",
        &[],
        body.as_bytes(),
        413,
        "body_too_large",
    );
    // Over 2,500 events.
    let item = r#"{"type":"track","userId":"u","event":"E"}"#;
    let many = format!(r#"{{"batch":[{}]}}"#, vec![item; 2_501].join(","));
    refused(
        &s,
        &key,
        "/v1/batch",
        &[],
        many.as_bytes(),
        400,
        "too_many_events",
    );
}

#[test]
fn a_gzip_bomb_is_refused_without_inflating_it() {
    let (_d, s, key) = fresh("bomb");
    // 50 MB of zeros compresses to about 50 KB.
    let bomb = gzip(&vec![b' '; 50 * 1024 * 1024]);
    assert!(bomb.len() < 500 * 1024);
    refused(
        &s,
        &key,
        "/v1/batch",
        &[("Content-Encoding", "gzip")],
        &bomb,
        413,
        "body_too_large",
    );
    refused(
        &s,
        &key,
        "/v1/batch",
        &[("Content-Encoding", "gzip")],
        b"not gzip at all",
        400,
        "invalid_gzip",
    );
    refused(
        &s,
        &key,
        "/v1/batch",
        &[("Content-Encoding", "br")],
        b"{}",
        415,
        "unsupported_encoding",
    );
}

#[test]
fn non_utf8_and_deeply_nested_json_are_refused() {
    let (_d, s, key) = fresh("nested");
    refused(
        &s,
        &key,
        "/v1/track",
        &[],
        b"{\"userId\": \"\xff\xfe\", \"event\": \"E\"}",
        400,
        "invalid_json",
    );
    refused(
        &s,
        &key,
        "/v1/batch",
        &[],
        b"{\"batch\": [\xc3\x28]}",
        400,
        "invalid_json",
    );
    let deep = format!(
        r#"{{"userId":"u","event":"E","properties":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    refused(
        &s,
        &key,
        "/v1/track",
        &[],
        deep.as_bytes(),
        400,
        "invalid_json",
    );
    let deep_batch = format!(
        r#"{{"batch":[{{"type":"track","userId":"u","event":"E","p":{}1{}}}]}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    refused(
        &s,
        &key,
        "/v1/batch",
        &[],
        deep_batch.as_bytes(),
        400,
        "invalid_json",
    );
    // The server is still healthy afterwards.
    assert_eq!(
        s.track("/v1/track", &key, r#"{"userId":"u","event":"Fine"}"#)
            .status,
        200
    );
}

#[test]
fn unknown_fields_and_unicode_are_kept_verbatim() {
    let (_d, s, key) = fresh("unicode");
    let body = json!({"userId": "ユーザー🦀", "event": "Café \u{2028} ✓", "customTopLevel": {"k": [1, null]}, "properties": {"emoji": "👩‍👩‍👧"}});
    assert_eq!(s.track("/v1/track", &key, &body.to_string()).status, 200);
    let e = &s.events("")[0];
    assert_eq!(e["userId"], "ユーザー🦀");
    assert_eq!(e["event"], "Café \u{2028} ✓");
    assert_eq!(e["customTopLevel"]["k"], json!([1, null]));
    assert_eq!(e["properties"]["emoji"], "👩‍👩‍👧");
    let q = "user_id=%E3%83%A6%E3%83%BC%E3%82%B6%E3%83%BC%F0%9F%A6%80";
    assert_eq!(s.events(q).len(), 1);
}
