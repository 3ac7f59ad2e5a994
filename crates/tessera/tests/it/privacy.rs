//! Data-subject requests over HTTP: a deletion by e-mail after which no byte of the person is
//! left in any database file (the test scans them), while another person is untouched; a
//! deletion while the person's events keep arriving; suppression and unsuppression at ingest;
//! and an export with everything held.

use crate::support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(60);

fn track(s: &Server, key: &str, body: Value) {
    let r = s.track("/v1/track", key, &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
}

fn identify(s: &Server, key: &str, body: Value) {
    let r = s.track("/v1/identify", key, &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Files a request (202) and waits until it is done; returns the finished request.
fn request(s: &Server, kind: &str, identifier: &str) -> Value {
    let r = s.admin(
        "POST",
        "/api/v1/privacy/requests",
        &json!({"type": kind, "identifier": identifier}).to_string(),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let created = r.json();
    assert!(
        ["pending", "running", "done"].contains(&created["status"].as_str().unwrap()),
        "{created}"
    );
    let id = created["id"].as_str().unwrap().to_string();
    let done = wait_within(
        s,
        &format!("/api/v1/privacy/requests/{id}"),
        PATIENCE,
        |r| r["status"] == "done" || r["status"] == "failed",
    );
    assert_eq!(done["status"], "done", "{done}");
    done
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Which of `needles` occur in some file under `dir` (as raw bytes).
fn found_in_files(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut paths = Vec::new();
    files(dir, &mut paths);
    let mut out = Vec::new();
    for p in paths {
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                out.push(format!("{n} in {}", p.display()));
            }
        }
    }
    out
}

#[test]
fn a_deletion_by_email_leaves_nothing_of_the_person_in_the_database_files() {
    let (d, s, key) = fresh("privacy-delete");
    // Something of the person in every kind of derived state: an audience, a destination's
    // outbox, a journey waiting.
    let aud = s.admin(
        "POST",
        "/api/v1/audiences",
        r#"{"name":"Buyers","definition":"performed \"Order Completed\""}"#,
    );
    assert_eq!(aud.status, 201, "{}", aud.text());
    let rx = tessera::receiver::Receiver::start();
    let dst = s.admin(
        "POST",
        "/api/v1/destinations",
        &json!({"name": "crm", "type": "webhook", "config": {"url": rx.url("/")}}).to_string(),
    );
    assert_eq!(dst.status, 201, "{}", dst.text());
    let dst_id = dst.json()["id"].as_str().unwrap().to_string();
    // A tool that keeps its own copy of people asks to be told of deletions.
    let deletions = tessera::receiver::Receiver::start();
    let notified = s.admin(
        "POST",
        "/api/v1/destinations",
        &json!({"name": "warehouse", "type": "webhook", "config": {"url": deletions.url("/forget")},
                "forward_events": false, "deletion_webhook": true})
        .to_string(),
    );
    assert_eq!(notified.status, 201, "{}", notified.text());
    let notified_id = notified.json()["id"].as_str().unwrap().to_string();
    let jr = s.admin(
        "POST",
        "/api/v1/journeys",
        &json!({"name": "Follow-up", "trigger": {"event": "Order Completed"},
                "steps": [{"id": "wait", "type": "wait", "duration": "2d"},
                          {"id": "send", "type": "send", "destination": dst_id}]})
        .to_string(),
    );
    assert_eq!(jr.status, 201, "{}", jr.text());

    let secrets = [
        "erase.me.4711@example.org",
        "erase-me-4711",
        "anon-erase-4711",
        "Zelda Quuxberg",
        "quux-secret-7781",
    ];
    track(
        &s,
        &key,
        json!({"anonymousId": "anon-erase-4711", "event": "Product Viewed",
               "properties": {"note": "quux-secret-7781"}}),
    );
    identify(
        &s,
        &key,
        json!({"userId": "erase-me-4711", "anonymousId": "anon-erase-4711",
               "traits": {"email": "erase.me.4711@example.org", "name": "Zelda Quuxberg"}}),
    );
    track(
        &s,
        &key,
        json!({"userId": "erase-me-4711", "event": "Order Completed",
               "properties": {"total": 12, "note": "quux-secret-7781"}}),
    );
    identify(
        &s,
        &key,
        json!({"userId": "keep-me-1", "traits": {"email": "keep.me@example.org", "name": "Kept Person"}}),
    );
    track(
        &s,
        &key,
        json!({"userId": "keep-me-1", "event": "Order Completed", "properties": {"total": 3}}),
    );
    rx.wait_for(5, PATIENCE);
    let ident = enc("email:erase.me.4711@example.org");
    wait_within(
        &s,
        &format!("/v1/profiles/{ident}/audiences"),
        PATIENCE,
        |a| a["audiences"].as_array().is_some_and(|v| !v.is_empty()),
    );

    // The scan does find the person before the deletion.
    assert!(!found_in_files(d.path(), &secrets).is_empty());
    let done = request(&s, "delete", "email:erase.me.4711@example.org");
    assert_eq!(done["result"]["profiles_deleted"], 1, "{done}");
    assert_eq!(done["result"]["events_deleted"], 3, "{done}");
    // The deletion webhook was told whom to delete (signed, with a stable key).
    assert_eq!(
        done["result"]["notifications"],
        json!([{"destination": notified_id, "status": 200}]),
        "{done}"
    );
    let notice = &deletions.received()[0];
    assert_eq!(notice.path, "/forget");
    assert!(notice.header("tessera-signature").is_some());
    assert_eq!(
        notice.header("idempotency-key").map(str::to_string),
        Some(format!(
            "{notified_id}:delete:{}",
            done["id"].as_str().unwrap()
        ))
    );
    let body = notice.json();
    assert_eq!(body["type"], "delete");
    let values: Vec<&str> = body["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert!(values.contains(&"erase.me.4711@example.org"), "{body}");
    assert!(values.contains(&"erase-me-4711"), "{body}");
    assert_eq!(
        done["identifier"], "email:e***@example.org",
        "only a hint of the identifier is kept: {done}"
    );
    for ident in [
        "email:erase.me.4711@example.org",
        "user_id:erase-me-4711",
        "anonymous_id:anon-erase-4711",
    ] {
        let r = s
            .get(
                &format!("/v1/profiles/{}", enc(ident)),
                &[("Authorization", &format!("Bearer {ADMIN}"))],
            )
            .unwrap();
        assert_eq!(r.status, 404, "{ident}: {}", r.text());
    }
    // The other person is untouched, and still in the audience.
    let kept = ok(&s, &format!("/v1/profiles/{}", enc("user_id:keep-me-1")));
    assert_eq!(kept["traits"]["name"], "Kept Person", "{kept}");
    let members = ok(
        &s,
        &format!(
            "/api/v1/audiences/{}/members",
            aud.json()["id"].as_str().unwrap()
        ),
    );
    assert_eq!(members["members"].as_array().unwrap().len(), 1, "{members}");

    let left = found_in_files(d.path(), &secrets);
    assert!(left.is_empty(), "still on disk: {left:?}");
    // Kept data is still on disk (the scan would find it).
    assert!(!found_in_files(d.path(), &["keep.me@example.org"]).is_empty());
}

#[test]
fn a_deletion_while_the_persons_events_keep_arriving_leaves_none_from_before() {
    let (_d, s, key) = fresh("privacy-racing");
    identify(
        &s,
        &key,
        json!({"userId": "racer", "messageId": "before-1", "traits": {"plan": "pro"}}),
    );
    track(
        &s,
        &key,
        json!({"userId": "racer", "event": "Ping", "messageId": "before-2"}),
    );
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let body =
                    json!({"userId": "racer", "event": "Ping", "messageId": format!("during-{n}")});
                let r = s.track("/v1/track", &key, &body.to_string());
                assert_eq!(r.status, 200, "suppressed events are still acknowledged");
                std::thread::sleep(Duration::from_millis(5));
            }
            n
        });
        std::thread::sleep(Duration::from_millis(100));
        request(&s, "delete", "user_id:racer");
        stop.store(true, Ordering::SeqCst);
        assert!(sender.join().unwrap() > 0);
    });
    // Nothing from before the deletion is left; whatever came after it (the suppression is
    // lifted once it is done) is a new profile without the old traits.
    let left = s.events("user_id=racer");
    assert!(
        left.iter()
            .all(|e| e["messageId"].as_str().unwrap().starts_with("during-")),
        "{left:?}"
    );
    let r = s.admin("GET", &format!("/v1/profiles/{}", enc("user_id:racer")), "");
    if r.status == 200 {
        assert!(r.json()["traits"].get("plan").is_none(), "{}", r.text());
    } else {
        assert_eq!(r.status, 404, "{}", r.text());
    }
}

#[test]
fn suppressed_identifiers_are_dropped_at_ingest_until_unsuppressed() {
    let (_d, s, key) = fresh("privacy-suppress");
    identify(
        &s,
        &key,
        json!({"userId": "quiet", "traits": {"email": "quiet@example.org"}}),
    );
    let done = request(&s, "suppress", "user_id:quiet");
    assert!(
        done["result"]["identifiers_suppressed"].as_u64().unwrap() >= 2,
        "{done}"
    );
    // Any identifier of the person suppresses the event: here only the e-mail is sent.
    identify(
        &s,
        &key,
        json!({"anonymousId": "fresh-device", "messageId": "while-suppressed",
               "traits": {"email": "Quiet@Example.org"}}),
    );
    track(
        &s,
        &key,
        json!({"userId": "someone-else", "event": "Ping", "messageId": "other"}),
    );
    wait_within(&s, "/api/v1/events?limit=10", PATIENCE, |e| {
        e["events"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x["messageId"] == "other"))
    });
    assert!(s.events("message_id=while-suppressed").is_empty());
    let metrics = s.get("/metrics", &[]).unwrap().text();
    assert!(
        metrics.contains("tessera_events_rejected_total{reason=\"suppressed\"} 1"),
        "{metrics}"
    );
    // The data held before a plain suppression stays.
    assert_eq!(
        ok(&s, &format!("/v1/profiles/{}", enc("user_id:quiet")))["traits"]["email"],
        "quiet@example.org"
    );

    request(&s, "unsuppress", "email:quiet@example.org");
    track(
        &s,
        &key,
        json!({"userId": "quiet", "event": "Ping", "messageId": "after"}),
    );
    assert_eq!(s.events("message_id=after").len(), 1);
}

#[test]
fn an_export_holds_everything_about_the_person_and_bad_requests_are_refused() {
    let (_d, s, key) = fresh("privacy-export");
    identify(
        &s,
        &key,
        json!({"userId": "ex-1", "traits": {"email": "ex@example.org", "plan": "pro"},
               "context": {"consent": {"categoryPreferences": {"marketing": true}}}}),
    );
    track(
        &s,
        &key,
        json!({"userId": "ex-1", "event": "Order Completed", "properties": {"total": 9}}),
    );
    let ident = enc("user_id:ex-1");
    wait_within(&s, &format!("/v1/profiles/{ident}/events"), PATIENCE, |e| {
        e["events"].as_array().is_some_and(|v| v.len() == 2)
    });
    let done = request(&s, "export", "email:ex@example.org");
    let doc = &done["document"];
    assert_eq!(doc["found"], true, "{done}");
    assert!(doc["profile_id"].as_str().unwrap().starts_with("prf_"));
    let ids: Vec<&str> = doc["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"ex-1") && ids.contains(&"ex@example.org"),
        "{doc}"
    );
    assert_eq!(doc["traits"]["plan"], "pro");
    assert_eq!(doc["events"].as_array().unwrap().len(), 2, "{doc}");
    assert_eq!(doc["consent"]["marketing"], true, "{doc}");
    assert!(!doc["trait_history"].as_array().unwrap().is_empty());
    let listed = ok(&s, "/api/v1/privacy/requests");
    assert_eq!(listed["requests"][0]["id"], done["id"]);
    assert!(listed["requests"][0].get("document").is_none());

    for (body, code) in [
        (
            json!({"type": "forget", "identifier": "user_id:x"}),
            "invalid_field",
        ),
        (json!({"type": "delete"}), "invalid_field"),
        (
            json!({"type": "delete", "identifier": "no-colon"}),
            "invalid_identifier",
        ),
        (
            json!({"type": "delete", "identifier": "shoe_size:42"}),
            "unknown_identifier_type",
        ),
        (
            json!({"type": "delete", "identifier": "user_id:x", "extra": 1}),
            "invalid_field",
        ),
    ] {
        let r = s.admin("POST", "/api/v1/privacy/requests", &body.to_string());
        expect_error(&r, 400, code);
    }
    let r = s.admin("GET", "/api/v1/privacy/requests/dsr_unknown", "");
    expect_error(&r, 404, "not_found");
}

fn days_ago(days: i64) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - days * 24 * 3600 * 1000;
    tessera_core::time::format_iso8601(ms)
}

/// Stores retention settings and waits for the purge they start.
fn retain(s: &Server, settings: Value) -> Value {
    let before = ok(s, "/api/v1/privacy/retention")["last_purge"]["at"].clone();
    let r = s.admin("PUT", "/api/v1/privacy/retention", &settings.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let done = wait_within(s, "/api/v1/privacy/retention", PATIENCE, |v| {
        v["last_purge"]["at"] != before && !v["last_purge"].is_null()
    });
    assert_eq!(done["last_purge"]["status"], "done", "{done}");
    done
}

#[test]
fn retention_purges_old_events_and_inactive_profiles_from_the_log_and_the_profiles() {
    let (_d, s, key) = fresh("privacy-retention");
    identify(
        &s,
        &key,
        json!({"userId": "old-1", "messageId": "old-identify", "timestamp": days_ago(10),
               "traits": {"plan": "ancient"}}),
    );
    track(
        &s,
        &key,
        json!({"userId": "old-1", "event": "Ping", "messageId": "old-track", "timestamp": days_ago(9)}),
    );
    identify(
        &s,
        &key,
        json!({"userId": "mixed", "messageId": "mixed-old", "timestamp": days_ago(10),
               "traits": {"old_trait": "x"}}),
    );
    identify(
        &s,
        &key,
        json!({"userId": "mixed", "messageId": "mixed-new", "traits": {"new_trait": "y"}}),
    );
    identify(
        &s,
        &key,
        json!({"userId": "idle", "messageId": "idle-1", "timestamp": days_ago(4),
               "traits": {"plan": "free"}}),
    );
    wait_within(
        &s,
        &format!("/v1/profiles/{}", enc("user_id:idle")),
        PATIENCE,
        |_| true,
    );

    let done = retain(&s, json!({"events_days": 5}));
    assert_eq!(done["events_days"], 5);
    assert_eq!(done["last_purge"]["result"]["events_deleted"], 3, "{done}");
    let left: Vec<String> = s
        .events("")
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !left
            .iter()
            .any(|m| m.starts_with("old-") || m == "mixed-old"),
        "{left:?}"
    );
    let r = s.admin("GET", &format!("/v1/profiles/{}", enc("user_id:old-1")), "");
    assert_eq!(r.status, 404, "{}", r.text());
    let mixed = ok(&s, &format!("/v1/profiles/{}", enc("user_id:mixed")));
    assert!(mixed["traits"].get("old_trait").is_none(), "{mixed}");
    assert_eq!(mixed["traits"]["new_trait"], "y", "{mixed}");

    // Profiles idle for 3 days go whole, with their events.
    let done = retain(
        &s,
        json!({"events_days": null, "profiles_inactive_days": 3}),
    );
    assert_eq!(
        done["last_purge"]["result"]["profiles_deleted"], 1,
        "{done}"
    );
    let r = s.admin("GET", &format!("/v1/profiles/{}", enc("user_id:idle")), "");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(s.events("message_id=idle-1").is_empty());
    assert_eq!(
        ok(&s, &format!("/v1/profiles/{}", enc("user_id:mixed")))["traits"]["new_trait"],
        "y"
    );

    for bad in [
        json!({"events_days": 0}),
        json!({"events_days": "5"}),
        json!({"keep": 1}),
    ] {
        let r = s.admin("PUT", "/api/v1/privacy/retention", &bad.to_string());
        expect_error(&r, 400, "invalid_field");
    }
}
