//! Webhook and Segment-format destinations as a receiver sees them: signed requests with an
//! idempotency key and the configured headers, the forwarded message, the delivery log and
//! health; filters, mappings, pausing and consent; Segment's `/v1/batch` with Basic auth.

use super::*;

#[test]
fn a_webhook_receives_signed_events_and_the_log_and_health_show_them() {
    let (_d, s, key) = fresh("act-hook");
    let rx = Receiver::start();
    let created = create_destination(
        &s,
        json!({"name": "Orders hook", "type": "webhook",
               "config": {"url": rx.url("/hooks/orders"), "headers": {"X-Api-Key": "k-123"}},
               "retry": fast_retry()}),
    );
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(id.starts_with("dst_"), "{created}");
    assert!(
        secret.starts_with("whsec_") && secret.len() > 20,
        "{created}"
    );
    assert_eq!(created["version"], 1, "{created}");
    assert_eq!(created["name"], "Orders hook");
    assert_eq!(created["config"]["method"], "POST", "{created}");
    assert_eq!(created["forward_events"], true, "{created}");
    let h = &created["health"];
    assert_eq!(
        (
            &h["status"],
            &h["pending"],
            &h["delivered"],
            &h["dead_letters"]
        ),
        (&json!("ok"), &json!(0), &json!(0), &json!(0)),
        "{created}"
    );

    // A client-sent `context.tessera` is Tessera's key: the forwarded one is the real profile.
    send(
        &s,
        &key,
        "track",
        json!({"userId": "ann", "event": "Order Completed", "messageId": "hook-1",
               "properties": {"total": 42}, "context": {"tessera": {"profileId": "prf_forged"}}}),
    );
    let got = arrivals(&rx, 1);
    let r = &got[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/hooks/orders")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-api-key"), Some("k-123"));
    assert!(
        signed_by(&secret, r),
        "bad signature {:?}",
        r.header("tessera-signature")
    );
    // A signature over another body or with another secret must not verify.
    let mut tampered = r.clone();
    tampered.body.push(b' ');
    assert!(!signed_by(&secret, &tampered));
    let body = r.json();
    assert_eq!(body["messageId"], "hook-1", "{body}");
    assert_eq!(body["type"], "track");
    assert_eq!(body["event"], "Order Completed");
    assert_eq!(body["properties"], json!({"total": 42}));
    let ann = profile_id(&s, "user_id:ann");
    assert_eq!(
        body["context"]["tessera"],
        json!({"profileId": ann}),
        "{body}"
    );

    // The idempotency key names the destination and the event's log position.
    let idem = r
        .header("idempotency-key")
        .expect("an Idempotency-Key")
        .to_string();
    let timeline = ok(&s, &profile("user_id:ann", "/events?limit=10"));
    let position = timeline["events"][0]["position"].as_i64().unwrap();
    assert_eq!(idem, format!("{id}:e:{position}"));

    let log = wait_deliveries(&s, &id, None, |d| !d.is_empty());
    assert_eq!(log.len(), 1, "{log:#?}");
    let a = &log[0];
    assert_eq!(
        (
            &a["idempotency_key"],
            &a["attempt"],
            &a["status"],
            &a["outcome"]
        ),
        (&json!(idem), &json!(1), &json!(200), &json!("delivered")),
        "{a}"
    );
    assert!(a["latency_ms"].is_u64() && a["error"].is_null(), "{a}");
    assert!((ms_of(&a["at"]) - now_ms()).abs() < 60_000, "{a}");

    let h = wait_health(&s, &id, |h| h["delivered"] == 1);
    assert_eq!(
        (
            &h["status"],
            &h["pending"],
            &h["dead_letters"],
            &h["failed_attempts"]
        ),
        (&json!("ok"), &json!(0), &json!(0), &json!(0)),
        "{h}"
    );
    assert!(
        h["last_success_at"].is_string() && h["last_error"].is_null(),
        "{h}"
    );
    assert_eq!(h["queued_in_memory"], 0, "{h}");
    assert!(
        h["latency_ms"]["p50"].is_u64() && h["delay_ms"]["p99"].is_u64(),
        "{h}"
    );

    // Listed, and read back with the same secret.
    let listed = ok(&s, "/api/v1/destinations")["destinations"].clone();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == id.as_str()),
        "{listed}"
    );
    assert_eq!(destination(&s, &id)["secret"], secret.as_str());

    // A new secret signs what follows; the old one no longer verifies.
    let rotated = call(
        &s,
        "POST",
        &format!("/api/v1/destinations/{id}/rotate-secret"),
        &json!({}),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let new_secret = rotated.json()["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated.json()["version"], 2);
    track(&s, &key, "ann", "Order Completed", "hook-2", json!({}));
    let got = arrivals(&rx, 2);
    assert!(signed_by(&new_secret, &got[1]) && !signed_by(&secret, &got[1]));

    // PUT replaces the settings: a new version with the same secret, and new headers.
    let put = call(
        &s,
        "PUT",
        &format!("/api/v1/destinations/{id}"),
        &json!({"name": "Orders hook v3", "type": "webhook",
                "config": {"url": rx.url("/v3?tenant=7"), "method": "PUT", "headers": {"X-Api-Key": "k-456"}}}),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(
        (&put.json()["version"], &put.json()["secret"]),
        (&json!(3), &json!(new_secret))
    );
    track(&s, &key, "ann", "Order Completed", "hook-3", json!({}));
    let got = arrivals(&rx, 3);
    let r = &got[2];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("PUT", "/v3?tenant=7")
    );
    assert_eq!(r.header("x-api-key"), Some("k-456"));
    assert!(signed_by(&new_secret, r));
}

/// A one-lane destination delivers in queue order, so once `sentinel` arrives everything
/// routed to it before has arrived too: the messageIds it got, sentinel last.
fn until_sentinel(rx: &Receiver, sentinel: &str) -> Vec<String> {
    wait_until(&format!("sentinel {sentinel}"), || {
        let ids = message_ids(&rx.received());
        ids.contains(&sentinel.to_string()).then_some(ids)
    })
}

#[test]
fn filters_choose_what_is_forwarded_and_a_mapping_shapes_it() {
    let (_d, s, key) = fresh("act-filter");
    let (types, events, wher, mapped) = (
        Receiver::start(),
        Receiver::start(),
        Receiver::start(),
        Receiver::start(),
    );
    // One lane each, so a sentinel proves nothing else is coming.
    let one = |f: Value| json!({"concurrency": 1, "filters": f});
    webhook(
        &s,
        "identifies",
        &types.url("/"),
        one(json!({"types": ["identify"]})),
    );
    webhook(
        &s,
        "orders",
        &events.url("/"),
        one(json!({"events": ["Order Completed"]})),
    );
    webhook(
        &s,
        "big",
        &wher.url("/"),
        one(json!({"where": {"path": "properties.total", "op": "gt", "value": 10}})),
    );
    let mut m = one(json!({"events": ["Order Completed"]}));
    m["mapping"] = json!({"email": "{{ profile.traits.email }}", "sku": "{{ properties.sku }}",
                          "total": "{{ properties.total }}", "note": "Order by {{ userId }}",
                          "source": "tessera", "user": {"id": "{{ profile.userId }}"}});
    webhook(&s, "mapped", &mapped.url("/"), m);

    send(
        &s,
        &key,
        "identify",
        json!({"userId": "ann", "messageId": "f-id", "traits": {"email": "ann@example.com"}}),
    );
    track(
        &s,
        &key,
        "ann",
        "Product Viewed",
        "f-view",
        json!({"total": 50}),
    );
    track(
        &s,
        &key,
        "ann",
        "Order Completed",
        "f-big",
        json!({"total": 42, "sku": "SKU-1"}),
    );
    track(
        &s,
        &key,
        "ann",
        "Order Completed",
        "f-small",
        json!({"total": 8, "sku": "SKU-2"}),
    );
    send(
        &s,
        &key,
        "page",
        json!({"userId": "ann", "name": "Home", "messageId": "f-page"}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "ann", "messageId": "f-end"}),
    );
    track(
        &s,
        &key,
        "ann",
        "Order Completed",
        "f-end2",
        json!({"total": 99, "sku": "S"}),
    );

    assert_eq!(until_sentinel(&types, "f-end"), ["f-id", "f-end"]);
    assert_eq!(
        until_sentinel(&events, "f-end2"),
        ["f-big", "f-small", "f-end2"]
    );
    assert_eq!(
        until_sentinel(&wher, "f-end2"),
        ["f-view", "f-big", "f-end2"]
    );
    // The mapped bodies have no messageId: wait for three, the sentinel being the last.
    let got = arrivals(&mapped, 3);
    let mut want = Vec::new();
    for (sku, total) in [("SKU-1", 42), ("SKU-2", 8), ("S", 99)] {
        want.push(
            json!({"email": "ann@example.com", "sku": sku, "total": total,
                         "note": "Order by ann", "source": "tessera", "user": {"id": "ann"}}),
        );
    }
    assert_eq!(bodies(&got), want);
    // Mapped requests are still signed and keyed like any other.
    assert!(got.iter().all(|r| r.header("idempotency-key").is_some()));
}

#[test]
fn a_paused_destination_holds_its_records_until_resumed() {
    let (_d, s, key) = fresh("act-pause");
    let rx = Receiver::start();
    let (id, _) = webhook(&s, "held", &rx.url("/"), json!({"paused": true}));
    assert_eq!(destination(&s, &id)["health"]["status"], "paused");
    for i in 1..=3 {
        track(&s, &key, "ann", "Clicked", &format!("p-{i}"), json!({}));
    }
    // The records wait in the outbox; once they are there a delivery would have had every
    // chance to happen, and none did.
    wait_health(&s, &id, |h| h["pending"] == 3);
    assert!(rx.received().is_empty(), "{:#?}", bodies(&rx.received()));

    let resume = |action: &str| {
        let r = call(
            &s,
            "POST",
            &format!("/api/v1/destinations/{id}/{action}"),
            &json!({}),
        );
        assert_eq!(r.status, 200, "{action}: {}", r.text());
        r.json()
    };
    assert_eq!(resume("resume")["paused"], false);
    let mut ids = message_ids(&arrivals(&rx, 3));
    ids.sort();
    assert_eq!(ids, ["p-1", "p-2", "p-3"]);
    wait_health(&s, &id, |h| h["delivered"] == 3 && h["pending"] == 0);

    // Pausing again through the action holds the next one the same way.
    assert_eq!(resume("pause")["paused"], true);
    track(&s, &key, "ann", "Clicked", "p-4", json!({}));
    wait_health(&s, &id, |h| h["pending"] == 1 && h["status"] == "paused");
    assert_eq!(rx.received().len(), 3);
    resume("resume");
    assert_eq!(message_ids(&arrivals(&rx, 4))[3], "p-4");
    assert_eq!(rx.received().len(), 4);
}

#[test]
fn a_consent_category_must_be_granted_by_the_event() {
    let (_d, s, key) = fresh("act-consent");
    let rx = Receiver::start();
    let (id, _) = webhook(
        &s,
        "marketing",
        &rx.url("/"),
        json!({"consent": ["marketing"], "concurrency": 1}),
    );
    let with = |granted: Value| json!({"consent": {"categoryPreferences": granted}});
    let cases = [
        ("c-yes", with(json!({"marketing": true, "ads": false}))),
        ("c-no", with(json!({"marketing": false}))),
        ("c-other", with(json!({"ads": true}))),
        ("c-none", json!({})),
        ("c-end", with(json!({"marketing": true}))),
    ];
    for (mid, context) in cases {
        send(
            &s,
            &key,
            "track",
            json!({"userId": "ann", "event": "Signed Up", "messageId": mid, "context": context}),
        );
    }
    assert_eq!(until_sentinel(&rx, "c-end"), ["c-yes", "c-end"]);
    let body = rx.received()[0].json();
    assert_eq!(
        body["context"]["consent"]["categoryPreferences"]["marketing"],
        true
    );
    let h = wait_health(&s, &id, |h| h["delivered"] == 2);
    assert_eq!(h["skipped_without_consent"], 3, "{h}");
}

#[test]
fn a_segment_destination_posts_batches_to_v1_batch_with_basic_auth() {
    let (_d, s, key) = fresh("act-segment");
    let rx = Receiver::start();
    // One lane, so the three records of one call can share one request.
    let created = create_destination(
        &s,
        json!({"name": "Segment", "type": "segment",
               "config": {"url": rx.url("/api/?tenant=7"), "write_key": "wk_downstream"},
               "concurrency": 1}),
    );
    assert_eq!(
        created["batching"],
        json!({"size": 100, "wait_ms": 1000}),
        "{created}"
    );
    let id = created["id"].as_str().unwrap().to_string();
    let batch = json!({"batch": [
        {"type": "identify", "userId": "ann", "messageId": "s-1", "traits": {"plan": "pro"}},
        {"type": "track", "userId": "ann", "event": "Order Completed", "messageId": "s-2"},
        {"type": "page", "userId": "ann", "name": "Home", "messageId": "s-3"}
    ]});
    send(&s, &key, "batch", batch);
    let got = arrivals(&rx, 1);
    let r = &got[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v1/batch?tenant=7")
    );
    assert_eq!(
        r.header("authorization"),
        Some(basic_auth("wk_downstream").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    let items = body["batch"].as_array().expect("a batch");
    let ids: Vec<&str> = items
        .iter()
        .map(|m| m["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["s-1", "s-2", "s-3"], "{body}");
    assert_eq!(items[0]["type"], "identify");
    assert_eq!(items[0]["traits"], json!({"plan": "pro"}));
    assert_eq!(items[1]["event"], "Order Completed");
    let ann = profile_id(&s, "user_id:ann");
    assert!(items
        .iter()
        .all(|m| m["context"]["tessera"]["profileId"] == ann.as_str()));
    assert!(body["sentAt"].as_str().is_some(), "{body}");
    assert!((ms_of(&body["sentAt"]) - now_ms()).abs() < 60_000, "{body}");
    // A batch of several records is keyed by their keys together.
    assert!(
        r.header("idempotency-key")
            .is_some_and(|k| k.starts_with("batch-")),
        "{:?}",
        r.headers
    );
    // Each record's attempt is in the log, under its own key.
    let log = wait_deliveries(&s, &id, None, |d| d.len() == 3);
    assert!(
        log.iter()
            .all(|a| a["outcome"] == "delivered" && a["status"] == 200),
        "{log:#?}"
    );
    assert_eq!(rx.received().len(), 1);
}

#[test]
fn a_batching_webhook_sends_several_records_in_one_signed_request() {
    let (_d, s, key) = fresh("act-hook-batch");
    let rx = Receiver::start();
    let (id, secret) = webhook(
        &s,
        "batched",
        &rx.url("/b"),
        json!({"batching": {"size": 3, "wait_ms": 2000}, "concurrency": 1}),
    );
    let batch: Vec<Value> = (1..=3)
        .map(|i| {
            json!({"type": "track", "userId": "ann", "event": "Clicked",
                        "messageId": format!("b-{i}")})
        })
        .collect();
    send(&s, &key, "batch", json!({ "batch": batch }));
    let got = arrivals(&rx, 1);
    let r = &got[0];
    assert!(signed_by(&secret, r));
    let body = r.json();
    let ids: Vec<&Value> = body["batch"]
        .as_array()
        .unwrap_or_else(|| panic!("not a batch: {body}"))
        .iter()
        .map(|m| &m["messageId"])
        .collect();
    assert_eq!(ids, [&json!("b-1"), &json!("b-2"), &json!("b-3")], "{body}");
    // A batch's key is derived from its records' keys: `batch-<hex>`.
    let k = r.header("idempotency-key").unwrap();
    let hex = k.strip_prefix("batch-").unwrap_or_else(|| panic!("{k}"));
    assert!(
        !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{k}"
    );
    // Each record is logged under its own key.
    let log = wait_deliveries(&s, &id, None, |d| d.len() == 3);
    let mut keys: Vec<i64> = log
        .iter()
        .map(|a| key_position(a["idempotency_key"].as_str().unwrap()))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3, "{log:#?}");
    assert_eq!(rx.received().len(), 1);
}
