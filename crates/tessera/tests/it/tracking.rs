//! The Tracking API as SDKs use it: every endpoint and short form, both ways of passing the
//! write key, gzip under any content type, CORS, batch context merging, clock-skew correction,
//! deduplication of re-sent batches, and durability across a graceful restart.

use crate::support::*;
use serde_json::json;

#[test]
fn every_endpoint_and_short_form_stores_its_type() {
    let (_d, s, key) = fresh("endpoints");
    let calls = [
        (
            "identify",
            json!({"userId": "u1", "traits": {"plan": "pro"}}),
        ),
        ("track", json!({"userId": "u1", "event": "Signed Up"})),
        ("page", json!({"anonymousId": "a1", "name": "Home"})),
        ("screen", json!({"anonymousId": "a1", "name": "Settings"})),
        ("group", json!({"userId": "u1", "groupId": "g1"})),
        ("alias", json!({"previousId": "a1", "userId": "u1"})),
    ];
    for (long, body) in &calls {
        assert_eq!(
            s.track(&format!("/v1/{long}"), &key, &body.to_string())
                .status,
            200
        );
        let short = &long[..1];
        let r = s.track(&format!("/v1/{short}"), &key, &body.to_string());
        assert_eq!(r.status, 200, "{short}: {}", r.text());
        assert_eq!(r.json(), json!({"success": true}));
    }
    for (long, _) in &calls {
        assert_eq!(s.events(&format!("type={long}")).len(), 2, "{long}");
    }
    assert_eq!(s.track("/v1/purchase", &key, "{}").status, 404);
}

#[test]
fn write_key_in_the_body_works_without_basic_auth() {
    let (_d, s, key) = fresh("bodykey");
    let body = json!({"writeKey": key, "userId": "u1", "event": "E"}).to_string();
    let r = s
        .request(
            "POST",
            "/v1/t",
            &[("Content-Type", "text/plain")],
            body.as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let batch = json!({"writeKey": key, "batch": [{"type": "track", "userId": "u", "event": "E"}]});
    let r = s
        .request("POST", "/v1/batch", &[], batch.to_string().as_bytes())
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let stored = s.events("");
    assert_eq!(stored.len(), 2);
    assert!(
        !stored[0].to_string().contains(&key),
        "the write key must not be stored"
    );
}

#[test]
fn gzip_bodies_are_decoded_whatever_the_content_type() {
    let (_d, s, key) = fresh("gzip");
    let auth = basic_auth(&key);
    for (i, ct) in [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
    ]
    .iter()
    .enumerate()
    {
        let body = json!({"batch": [{"type": "track", "userId": "u", "event": format!("E{i}")}]});
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", *ct),
            ("Content-Encoding", "gzip"),
        ];
        let r = s
            .request(
                "POST",
                "/v1/batch",
                &headers,
                &gzip(body.to_string().as_bytes()),
            )
            .unwrap();
        assert_eq!(r.status, 200, "{ct}: {}", r.text());
    }
    assert_eq!(s.events("").len(), 3);
}

#[test]
fn cors_preflight_is_answered_for_browsers() {
    let (_d, s, _key) = fresh("cors");
    let headers = [
        ("Origin", "https://shop.example"),
        ("Access-Control-Request-Method", "POST"),
        (
            "Access-Control-Request-Headers",
            "authorization,content-type",
        ),
    ];
    let r = s.request("OPTIONS", "/v1/t", &headers, b"").unwrap();
    assert!(r.status == 204 || r.status == 200, "{}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
}

#[test]
fn batch_context_and_integrations_merge_into_items_and_skew_is_corrected() {
    let (_d, s, key) = fresh("merge");
    let body = json!({
        "batch": [
            {"type": "track", "userId": "u", "event": "A", "context": {"page": {"path": "/a"}},
             "timestamp": "2026-01-01T10:00:00.000Z"},
            {"type": "track", "userId": "u", "event": "B", "integrations": {"Mixpanel": true}}
        ],
        "context": {"library": {"name": "analytics-node"}, "page": {"path": "/batch"}},
        "integrations": {"All": false},
        // The device clock is one hour ahead of the event it sends.
        "sentAt": "2026-01-01T10:00:05.000Z"
    });
    let r = s.track("/v1/batch", &key, &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let a = &s.events("event=A")[0];
    assert_eq!(a["context"]["library"]["name"], "analytics-node");
    assert_eq!(
        a["context"]["page"]["path"], "/a",
        "the item's own context wins"
    );
    assert_eq!(a["integrations"]["All"], false);
    assert_eq!(a["originalTimestamp"], "2026-01-01T10:00:00.000Z");
    // timestamp = receivedAt - (sentAt - originalTimestamp) = receivedAt - 5 s
    let ts = tessera_core::time::parse_iso8601(a["timestamp"].as_str().unwrap()).unwrap();
    let recv = tessera_core::time::parse_iso8601(a["receivedAt"].as_str().unwrap()).unwrap();
    assert_eq!(recv - ts, 5_000);
    let b = &s.events("event=B")[0];
    assert_eq!(b["integrations"]["Mixpanel"], true);
    assert_eq!(b["integrations"]["All"], false);
}

#[test]
fn a_resent_batch_is_not_stored_twice() {
    let (_d, s, key) = fresh("dedup");
    let body = json!({"batch": [
        {"type": "track", "userId": "u", "event": "Order Completed", "messageId": "m-1"},
        {"type": "track", "userId": "u", "event": "Order Completed", "messageId": "m-2"}
    ]})
    .to_string();
    let first = s.track("/v1/batch", &key, &body);
    assert_eq!(first.json()["accepted"], 2);
    // The SDK timed out and retries the same batch.
    let again = s.track("/v1/batch", &key, &body);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["accepted"], 0);
    assert_eq!(again.json()["duplicates"], 2);
    assert_eq!(s.events("event=Order%20Completed").len(), 2);
    assert_eq!(s.events("message_id=m-1").len(), 1);
    // Messages without messageId get distinct generated ones.
    for _ in 0..2 {
        s.track("/v1/track", &key, r#"{"userId":"u","event":"NoId"}"#);
    }
    let no_id = s.events("event=NoId");
    assert_eq!(no_id.len(), 2);
    assert_ne!(no_id[0]["messageId"], no_id[1]["messageId"]);
}

#[test]
fn a_batch_with_bad_items_stores_the_good_ones_and_names_the_bad() {
    let (_d, s, key) = fresh("partial");
    let body = json!({"batch": [
        {"type": "track", "userId": "u", "event": "Good"},
        {"type": "track", "userId": "u"},
        {"type": "identify"},
        {"type": "track", "anonymousId": "a", "event": "Good"}
    ]});
    let r = s.track("/v1/batch", &key, &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["accepted"], 2);
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["index"], 1);
    assert_eq!(rejected[0]["code"], "missing_field");
    assert_eq!(rejected[1]["index"], 2);
    assert_eq!(rejected[1]["code"], "missing_identity");
    assert_eq!(s.events("event=Good").len(), 2);
    // No valid item at all: 400 with the first problem and its index.
    let r = s.track(
        "/v1/batch",
        &key,
        r#"{"batch":[{"type":"track","userId":"u"}]}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "missing_field");
    assert!(r.json()["message"].as_str().unwrap().contains("item 0"));
}

#[test]
fn pixel_form_stores_an_email_open() {
    use base64::Engine;
    let (_d, s, key) = fresh("pixel");
    let msg = json!({"writeKey": key, "userId": "u1", "event": "Email Opened", "properties": {"campaign": "nov"}});
    let data = base64::engine::general_purpose::STANDARD.encode(msg.to_string());
    let r = s
        .get(
            &format!(
                "/v1/pixel/track?data={}",
                data.replace('+', "%2B")
                    .replace('/', "%2F")
                    .replace('=', "%3D")
            ),
            &[],
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/gif"));
    assert_eq!(
        s.events("event=Email%20Opened")[0]["properties"]["campaign"],
        "nov"
    );
}

#[test]
fn graceful_shutdown_keeps_everything_acknowledged() {
    let dir = TempDir::new("graceful");
    let mut s = Server::start(dir.path());
    let key = s.source("web");
    for i in 0..20 {
        let r = s.track(
            "/v1/track",
            &key,
            &format!(r#"{{"userId":"u","event":"E","messageId":"g-{i}"}}"#),
        );
        assert_eq!(r.status, 200);
    }
    assert!(s.stop().success(), "SIGTERM must exit cleanly");
    let s = Server::start(dir.path());
    assert_eq!(s.events("event=E").len(), 20);
    // The source and its key survived too.
    assert_eq!(
        s.track("/v1/track", &key, r#"{"userId":"u","event":"After"}"#)
            .status,
        200
    );
}
