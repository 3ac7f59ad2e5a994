//! Data governance over HTTP: a tracking plan checked at ingest in each source mode (`allow`
//! stores silently, `flag` stores and reports, `block` drops and counts), unplanned events,
//! identify traits, plan versions and errors; and the PII policy: card numbers dropped by
//! default, e-mails hashed by a policy while identity e-mails stay usable, classes declared by
//! the plan, and errors naming a JSON Pointer.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const PLAN: &str = r#"{
  "events": {
    "Order Completed": {
      "description": "A paid order",
      "schema": {
        "type": "object",
        "properties": {"total": {"type": "number"}, "currency": {"type": "string"}},
        "required": ["total"]
      }
    }
  },
  "identify": {"schema": {"properties": {"email": {"type": "string", "format": "email"}}}}
}"#;

/// The id of the source with this write key.
fn source_id(s: &Server, key: &str) -> String {
    ok(s, "/api/v1/sources")["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|src| src["write_key"] == key)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn set_mode(s: &Server, source: &str, mode: &str) {
    let r = s.admin(
        "PATCH",
        &format!("/api/v1/sources/{source}"),
        &json!({ "tracking_plan_mode": mode }).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tracking_plan_mode"], mode);
}

/// Sends one Tracking API call that must answer 200; returns the answer.
fn send(s: &Server, key: &str, endpoint: &str, body: Value) -> Value {
    let r = s.track(&format!("/v1/{endpoint}"), key, &body.to_string());
    assert_eq!(r.status, 200, "{endpoint} {body}: {}", r.text());
    r.json()
}

fn order(id: &str, total: Value) -> Value {
    json!({"type": "track", "messageId": id, "userId": "u1", "event": "Order Completed",
           "properties": {"total": total, "currency": "EUR"}})
}

/// The stored message with this messageId, if any.
fn stored(s: &Server, message_id: &str) -> Option<Value> {
    s.events(&format!("message_id={message_id}"))
        .into_iter()
        .next()
}

/// The report's lines as (event, path, rule, count).
fn report(s: &Server) -> Vec<(String, String, String, u64)> {
    let r = ok(s, "/api/v1/tracking-plan/violations");
    r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let text = |k: &str| l[k].as_str().unwrap().to_string();
            (
                text("event"),
                text("path"),
                text("rule"),
                l["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn line(event: &str, path: &str, rule: &str, n: u64) -> (String, String, String, u64) {
    (event.into(), path.into(), rule.into(), n)
}

fn metric(s: &Server, series: &str) -> u64 {
    let text = s.get("/metrics", &[]).unwrap().text();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_tracking_plan_is_enforced_per_source_mode_and_reported() {
    let (_d, s, key) = fresh("governance-plan");
    let src = source_id(&s, &key);
    expect_error(
        &s.admin("GET", "/api/v1/tracking-plan", ""),
        404,
        "not_found",
    );

    // Refused plans name where they are wrong.
    let bad = json!({"events": {"Order Completed": {"schema": {"type": "nombre"}}}});
    let body = expect_error(
        &s.admin("PUT", "/api/v1/tracking-plan", &bad.to_string()),
        400,
        "invalid_tracking_plan",
    );
    assert_eq!(body["pointer"], "/events/Order Completed/schema/type");
    let bad = json!({"declared_pii": {"properties.ref": "shoe_size"}});
    let body = expect_error(
        &s.admin("PUT", "/api/v1/tracking-plan", &bad.to_string()),
        400,
        "invalid_tracking_plan",
    );
    assert_eq!(body["pointer"], "/declared_pii/properties.ref");

    let r = s.admin("PUT", "/api/v1/tracking-plan", PLAN);
    assert_eq!(r.status, 200, "{}", r.text());
    let plan = ok(&s, "/api/v1/tracking-plan");
    assert_eq!(plan["version"], 1);
    assert_eq!(plan["unplanned"], "violate");
    assert_eq!(
        plan["events"]["Order Completed"]["description"],
        "A paid order"
    );

    // allow (the default): stored, nothing recorded.
    assert_eq!(
        ok(&s, &format!("/api/v1/sources/{src}"))["tracking_plan_mode"],
        "allow"
    );
    send(&s, &key, "track", order("allow-1", json!("12")));
    assert!(stored(&s, "allow-1").is_some());
    assert!(report(&s).is_empty());

    // flag: stored, and the violations are counted and sampled.
    set_mode(&s, &src, "flag");
    assert_eq!(
        ok(&s, &format!("/api/v1/sources/{src}"))["tracking_plan_mode"],
        "flag"
    );
    send(&s, &key, "track", order("flag-1", json!("12")));
    send(&s, &key, "track", order("flag-2", json!(12.5)));
    send(
        &s,
        &key,
        "track",
        json!({"messageId": "flag-3", "userId": "u1", "event": "Mystery"}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"messageId": "flag-4", "userId": "u1", "traits": {"email": "not an address"}}),
    );
    for id in ["flag-1", "flag-2", "flag-3", "flag-4"] {
        assert!(stored(&s, id).is_some(), "{id} is stored in flag mode");
    }
    // The same message again is a duplicate, and not counted twice.
    send(&s, &key, "track", order("flag-1", json!("12")));
    let mut lines = report(&s);
    lines.sort();
    assert_eq!(
        lines,
        vec![
            line("Mystery", "", "unplanned_event", 1),
            line("Order Completed", "properties.total", "type", 1),
            line("identify", "traits.email", "format", 1),
        ]
    );
    let full = ok(&s, "/api/v1/tracking-plan/violations");
    let typed = full["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rule"] == "type")
        .unwrap();
    assert_eq!(typed["sources"][&src], 1);
    assert_eq!(typed["days"].as_array().unwrap().len(), 1);
    let recent = ok(&s, "/api/v1/tracking-plan/violations/recent");
    let newest = &recent["violations"][0];
    assert_eq!(newest["messageId"], "flag-4");
    assert_eq!(newest["source"], src.as_str());
    assert_eq!(newest["path"], "traits.email");
    assert!(
        !recent.to_string().contains("not an address"),
        "samples hold no values"
    );
    // A range in the past has nothing.
    let past = ok(
        &s,
        "/api/v1/tracking-plan/violations?since=2020-01-01T00:00:00Z&until=2020-01-05T00:00:00Z",
    );
    assert_eq!(past["total"], 0);

    // block: the violating messages are not stored; the others are.
    set_mode(&s, &src, "block");
    let before = metric(
        &s,
        "tessera_events_rejected_total{reason=\"tracking_plan\"}",
    );
    let batch = json!({"batch": [
        order("block-ok", json!(30)),
        order("block-bad", json!("thirty")),
        {"type": "track", "messageId": "block-unplanned", "userId": "u1", "event": "Mystery"},
    ]});
    let answer = send(&s, &key, "batch", batch);
    assert_eq!(
        (&answer["accepted"], &answer["blocked"]),
        (&json!(1), &json!(2)),
        "{answer}"
    );
    let single = send(&s, &key, "track", order("block-single", json!(null)));
    assert_eq!(single["blocked"], 1, "{single}");
    assert!(stored(&s, "block-ok").is_some());
    for id in ["block-bad", "block-unplanned", "block-single"] {
        assert!(stored(&s, id).is_none(), "{id} is blocked");
    }
    assert_eq!(
        metric(
            &s,
            "tessera_events_rejected_total{reason=\"tracking_plan\"}"
        ),
        before + 3
    );
    let typed = report(&s).into_iter().find(|l| l.2 == "type").unwrap();
    assert_eq!(typed.3, 3, "blocked messages are counted too");

    // A new version that allows unplanned events lets them through, even in block mode.
    let mut v2: Value = serde_json::from_str(PLAN).unwrap();
    v2["unplanned"] = json!("allow");
    let r = s.admin("PUT", "/api/v1/tracking-plan", &v2.to_string());
    assert_eq!(r.json()["version"], 2, "{}", r.text());
    send(
        &s,
        &key,
        "track",
        json!({"messageId": "v2-unplanned", "userId": "u1", "event": "Mystery"}),
    );
    assert!(stored(&s, "v2-unplanned").is_some());

    // Deleting the plan: nothing is checked, every version is kept.
    assert_eq!(s.admin("DELETE", "/api/v1/tracking-plan", "").status, 204);
    expect_error(
        &s.admin("GET", "/api/v1/tracking-plan", ""),
        404,
        "not_found",
    );
    send(&s, &key, "track", order("no-plan", json!("12")));
    assert!(stored(&s, "no-plan").is_some());
    let versions = ok(&s, "/api/v1/tracking-plan/versions")["versions"].clone();
    let summary: Vec<(u64, bool)> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["deleted"] == true))
        .collect();
    assert_eq!(summary, vec![(1, false), (2, false), (3, true)]);
    assert_eq!(versions[1]["plan"]["unplanned"], "allow");
}

#[test]
fn a_pii_policy_is_applied_before_the_log() {
    let (d, s, key) = fresh("governance-pii");
    let defaults = ok(&s, "/api/v1/privacy/pii-policy");
    assert_eq!(defaults["is_default"], true);
    assert_eq!(defaults["classes"]["payment_card"], "drop");
    assert_eq!(defaults["classes"]["national_id"], "mask");
    assert_eq!(defaults["classes"]["iban"], "mask");

    // Without any policy, card numbers never reach the log.
    send(
        &s,
        &key,
        "track",
        json!({"messageId": "card-1", "userId": "u1", "event": "Checkout",
               "properties": {"card": "4111 1111 1111 1111", "number": 4111111111111111u64,
                              "items": 2}}),
    );
    let card = stored(&s, "card-1").unwrap();
    assert_eq!(card["properties"], json!({"items": 2}), "{card}");
    assert!(
        metric(
            &s,
            "tessera_pii_fields_total{class=\"payment_card\",action=\"drop\"}"
        ) >= 2
    );

    let body = expect_error(
        &s.admin(
            "PUT",
            "/api/v1/privacy/pii-policy",
            r#"{"classes": {"emial": "hash"}}"#,
        ),
        400,
        "invalid_pii_policy",
    );
    assert_eq!(body["pointer"], "/classes/emial");
    let r = s.admin(
        "PUT",
        "/api/v1/privacy/pii-policy",
        r#"{"classes": {"email": "hash"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let policy = ok(&s, "/api/v1/privacy/pii-policy");
    assert_eq!(
        (&policy["version"], &policy["is_default"]),
        (&json!(1), &json!(false))
    );
    assert_eq!(policy["classes"]["email"], "hash");

    // E-mails in properties are hashed, the same address the same way whatever its case.
    for (id, email) in [("mail-1", "Ann@Example.com"), ("mail-2", "ann@example.com")] {
        send(
            &s,
            &key,
            "track",
            json!({"messageId": id, "userId": "u1", "event": "Invited",
                   "properties": {"invitee": email}}),
        );
    }
    let hashed: Vec<String> = ["mail-1", "mail-2"]
        .iter()
        .map(|id| {
            stored(&s, id).unwrap()["properties"]["invitee"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(hashed[0].starts_with("sha256:"), "{hashed:?}");
    assert_eq!(hashed[0], hashed[1], "hashes are stable");

    // `tessera import` applies the same policy, with the same salt.
    let files = TempDir::new("governance-import");
    let file = files.path().join("history.jsonl");
    let line = json!({"type": "track", "messageId": "imported-1", "userId": "u1",
                      "event": "Invited", "timestamp": "2024-03-01T10:00:00Z",
                      "properties": {"invitee": "ANN@example.com", "card": "4111111111111111"}});
    std::fs::write(&file, line.to_string()).unwrap();
    let (done, out, err) = run_tessera([
        std::ffi::OsStr::new("import"),
        file.as_os_str(),
        std::ffi::OsStr::new("--write-key"),
        std::ffi::OsStr::new(&key),
        std::ffi::OsStr::new("--data-dir"),
        d.path().as_os_str(),
    ]);
    assert!(done, "{out}{err}");
    let imported = stored(&s, "imported-1").unwrap();
    assert_eq!(
        imported["properties"],
        json!({"invitee": hashed[0]}),
        "{imported}"
    );

    // An identifying e-mail is kept, so the profile stays resolvable by it.
    send(
        &s,
        &key,
        "identify",
        json!({"messageId": "id-1", "userId": "u-ann", "traits": {"email": "ann@example.com"}}),
    );
    assert_eq!(
        stored(&s, "id-1").unwrap()["traits"]["email"],
        "ann@example.com"
    );
    wait_within(
        &s,
        &profile("email:ann@example.com", ""),
        Duration::from_secs(5),
        |p| profile_identifiers(p).contains(&"user_id:u-ann".to_string()),
    );

    // A class declared in the tracking plan applies where detection sees nothing.
    let plan = json!({"unplanned": "allow",
                      "declared_pii": {"properties.customer_ref": "national_id"}});
    let r = s.admin("PUT", "/api/v1/tracking-plan", &plan.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    send(
        &s,
        &key,
        "track",
        json!({"messageId": "ref-1", "userId": "u1", "event": "Signed",
               "properties": {"customer_ref": "CR-00042-XYZ"}}),
    );
    assert_eq!(
        stored(&s, "ref-1").unwrap()["properties"]["customer_ref"],
        "********-XYZ"
    );
    let versions = ok(&s, "/api/v1/privacy/pii-policy/versions");
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
}
