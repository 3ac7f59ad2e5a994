//! `kill -9` in the middle of deliveries: every record decided before the kill is delivered
//! after the restart (at least once), and a record sent twice carries the same
//! `Idempotency-Key` both times, so a receiver can apply it once.

use super::*;
use std::collections::BTreeMap;

#[test]
fn kill_9_mid_delivery_loses_nothing_and_repeats_keep_their_key() {
    let (dir, mut s, key) = fresh("act-crash");
    let rx = Receiver::start();
    // Slow enough, on one lane, that most records are still queued when the process dies.
    rx.set_default(Reply::ok().after(Duration::from_millis(200)));
    let (id, _) = webhook(
        &s,
        "slowish",
        &rx.url("/"),
        json!({"concurrency": 1, "retry": fast_retry()}),
    );
    let batch: Vec<Value> = (0..50)
        .map(|i| {
            json!({"type": "track", "userId": format!("u{}", i % 7), "event": "Clicked",
                        "messageId": format!("k-{i}")})
        })
        .collect();
    send(&s, &key, "batch", json!({ "batch": batch }));
    // Acknowledged means stored: from here every record must come out. Kill once a few have
    // arrived (and one is in flight).
    arrivals(&rx, 5);
    s.kill9();
    let before = rx.received().len();
    assert!(before < 50, "everything was delivered before the kill");
    // The receiver speeds up; only the kill had to land mid-delivery.
    rx.set_default(Reply::ok());
    let s = Server::start(dir.path());

    let want: Vec<String> = (0..50).map(|i| format!("k-{i}")).collect();
    let got = wait_until("every messageId after the restart", || {
        let got = rx.received();
        let ids = message_ids(&got);
        want.iter().all(|m| ids.contains(m)).then_some(got)
    });
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &got {
        let mid = r.json()["messageId"].as_str().unwrap().to_string();
        let k = r.header("idempotency-key").expect("a key").to_string();
        keys.entry(mid).or_default().push(k);
    }
    assert_eq!(keys.len(), 50);
    let mut distinct_keys: Vec<&String> = Vec::new();
    for (mid, ks) in &keys {
        assert!(
            ks.iter().all(|k| k == &ks[0]),
            "{mid} arrived under several keys: {ks:?}"
        );
        assert!(ks[0].starts_with(&format!("{id}:e:")), "{mid}: {ks:?}");
        distinct_keys.push(&ks[0]);
    }
    // One key per message, never shared between two.
    distinct_keys.sort();
    distinct_keys.dedup();
    assert_eq!(distinct_keys.len(), 50);
    // And the outbox agrees once the state file has caught up.
    let h = wait_health(&s, &id, |h| h["delivered"] == 50);
    assert_eq!(
        (&h["pending"], &h["dead_letters"]),
        (&json!(0), &json!(0)),
        "{h}"
    );
}

#[test]
fn records_retrying_paused_or_dead_at_a_kill_9_are_all_there_after_restart() {
    let (dir, mut s, key) = fresh("act-crash-states");
    let port = Receiver::start().port();
    let (down, _) = webhook(
        &s,
        "down",
        &format!("http://127.0.0.1:{port}/"),
        json!({"retry": fast_retry(), "filters": {"events": ["Down"]}}),
    );
    let held_rx = Receiver::start();
    let (held, _) = webhook(
        &s,
        "held",
        &held_rx.url("/"),
        json!({"paused": true, "filters": {"events": ["Held"]}}),
    );
    let dead_rx = Receiver::start();
    dead_rx.plan(vec![Reply::status(400)]);
    let (dead, _) = webhook(
        &s,
        "dead",
        &dead_rx.url("/"),
        json!({"filters": {"events": ["Dead"]}}),
    );
    for (event, n) in [("Down", 2), ("Held", 2), ("Dead", 1)] {
        for i in 0..n {
            track(&s, &key, "ann", event, &format!("{event}-{i}"), json!({}));
        }
    }
    // Each state is in the state file before the kill.
    wait_health(&s, &down, |h| {
        h["pending"] == 2 && h["failed_attempts"].as_u64() >= Some(2)
    });
    wait_health(&s, &held, |h| h["pending"] == 2);
    wait_dead_letters(&s, &dead, 1);
    s.kill9();
    let s = Server::start(dir.path());

    let rx = wait_until("the port", || Receiver::start_on(port).ok());
    let mut ids = message_ids(&arrivals(&rx, 2));
    ids.sort();
    ids.dedup();
    assert_eq!(ids, ["Down-0", "Down-1"]);

    let h = destination(&s, &held)["health"].clone();
    assert_eq!(
        (&h["status"], &h["pending"]),
        (&json!("paused"), &json!(2)),
        "{h}"
    );
    assert!(held_rx.received().is_empty());
    let r = s.admin("POST", &format!("/api/v1/destinations/{held}/resume"), "");
    assert_eq!(r.status, 200, "{}", r.text());
    let mut ids = message_ids(&arrivals(&held_rx, 2));
    ids.sort();
    assert_eq!(ids, ["Held-0", "Held-1"]);

    let dl = wait_dead_letters(&s, &dead, 1);
    assert_eq!(dl[0]["payload"]["messageId"], "Dead-0");
    let r = s.admin(
        "POST",
        &format!("/api/v1/destinations/{dead}/dead-letters/replay"),
        "",
    );
    assert_eq!(r.json()["replayed"], 1, "{}", r.text());
    assert_eq!(message_ids(&arrivals(&dead_rx, 2)), ["Dead-0", "Dead-0"]);
    for id in [&down, &held, &dead] {
        wait_health(&s, id, |h| h["pending"] == 0 && h["dead_letters"] == 0);
    }
}

#[test]
fn changing_concurrency_under_load_loses_nothing() {
    let (_d, s, key) = fresh("act-reconf");
    let rx = Receiver::start();
    // Slow on one lane, so most records are still queued in memory when the lanes restart.
    rx.set_default(Reply::ok().after(Duration::from_millis(100)));
    let (id, _) = webhook(&s, "busy", &rx.url("/"), json!({"concurrency": 1}));
    let batch: Vec<Value> = (0..30)
        .map(|i| {
            json!({"type": "track", "userId": "ann", "event": "Clicked",
                        "messageId": format!("c-{i}")})
        })
        .collect();
    send(&s, &key, "batch", json!({ "batch": batch }));
    // At once: the records were decided a moment ago and may not be in the state file yet.
    let mut body = destination(&s, &id);
    for k in [
        "id",
        "secret",
        "version",
        "health",
        "created_at",
        "updated_at",
    ] {
        body.as_object_mut().unwrap().remove(k);
    }
    body["concurrency"] = json!(4);
    let r = call(&s, "PUT", &format!("/api/v1/destinations/{id}"), &body);
    assert_eq!(r.status, 200, "{}", r.text());
    rx.set_default(Reply::ok());
    let want: Vec<String> = (0..30).map(|i| format!("c-{i}")).collect();
    let deadline = Instant::now() + PATIENCE;
    let missing = loop {
        let ids = message_ids(&rx.received());
        let missing: Vec<&String> = want.iter().filter(|m| !ids.contains(m)).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let h = destination(&s, &id)["health"].clone();
    assert!(
        missing.is_empty(),
        "never delivered after the concurrency change: {missing:?}; health {h}"
    );
}
