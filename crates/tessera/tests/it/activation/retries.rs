//! Retries and what they must not disturb: server errors retried with backoff until success,
//! `Retry-After` honoured on 429 and 503 (and only there), a receiver that is down and comes
//! back, a slow destination beside a fast one, and per-profile order through a failure.

use super::*;

/// Binds a receiver on `port` again, retrying briefly: the port was ours a moment ago, but
/// the kernel may still be reusing it for an outgoing connection.
fn restart_on(port: u16) -> Receiver {
    wait_until(&format!("port {port} to be free again"), || {
        Receiver::start_on(port).ok()
    })
}

#[test]
fn server_errors_are_retried_until_the_receiver_accepts() {
    let (_d, s, key) = fresh("act-retry");
    let rx = Receiver::start();
    rx.plan(vec![
        Reply::status(500),
        Reply::status(500),
        Reply::status(503),
    ]);
    let (id, secret) = webhook(
        &s,
        "flaky",
        &rx.url("/"),
        json!({"retry": fast_retry(), "concurrency": 1}),
    );
    track(
        &s,
        &key,
        "ann",
        "Order Completed",
        "r-1",
        json!({"total": 5}),
    );
    let got = arrivals(&rx, 4);
    // The same record each time: same body, same key, each request signed afresh.
    let idem = got[0].header("idempotency-key").unwrap().to_string();
    for r in &got[..4] {
        assert_eq!(r.header("idempotency-key"), Some(idem.as_str()));
        assert_eq!(r.body, got[0].body);
        assert!(signed_by(&secret, r));
    }
    let log = wait_deliveries(&s, &id, Some(&idem), |d| d.len() == 4);
    let brief: Vec<(Value, Value, Value)> = log
        .iter()
        .map(|a| {
            (
                a["attempt"].clone(),
                a["status"].clone(),
                a["outcome"].clone(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            (json!(4), json!(200), json!("delivered")),
            (json!(3), json!(503), json!("retry")),
            (json!(2), json!(500), json!("retry")),
            (json!(1), json!(500), json!("retry")),
        ],
        "{log:#?}"
    );
    // Newest first, in time too.
    let times: Vec<i64> = log.iter().map(|a| ms_of(&a["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{log:#?}");
    let h = wait_health(&s, &id, |h| h["delivered"] == 1);
    assert_eq!(
        (&h["failed_attempts"], &h["dead_letters"]),
        (&json!(3), &json!(0)),
        "{h}"
    );
    assert_eq!(h["status"], "ok", "{h}");
    assert!(
        h["last_error"].as_str().is_some_and(|e| e.contains("503")),
        "{h}"
    );
    // Delivered once: the next request is the next record.
    track(&s, &key, "ann", "Order Completed", "r-2", json!({}));
    let got = arrivals(&rx, 5);
    assert_eq!(message_ids(&got), ["r-1", "r-1", "r-1", "r-1", "r-2"]);
}

#[test]
fn retry_after_is_waited_on_429_and_503_only() {
    let (_d, s, key) = fresh("act-retry-after");
    let rx = Receiver::start();
    // A 500's Retry-After is ignored (backoff of at most 200 ms applies); 429's and 503's
    // one-second waits are honoured even though backoff alone would retry sooner.
    rx.plan(vec![
        Reply::status(500).with_header("Retry-After", "30"),
        Reply::status(429).with_header("Retry-After", "1"),
        Reply::status(503).with_header("Retry-After", "1"),
    ]);
    let (id, _) = webhook(
        &s,
        "throttled",
        &rx.url("/"),
        json!({"retry": fast_retry(), "concurrency": 1}),
    );
    track(&s, &key, "ann", "Clicked", "ra-1", json!({}));
    let got = arrivals(&rx, 4);
    let gap = |i: usize| got[i].at.duration_since(got[i - 1].at);
    assert!(
        gap(2) >= Duration::from_secs(1),
        "429 waited only {:?}",
        gap(2)
    );
    assert!(
        gap(3) >= Duration::from_secs(1),
        "503 waited only {:?}",
        gap(3)
    );
    let idem = got[0].header("idempotency-key").unwrap().to_string();
    let log = wait_deliveries(&s, &id, Some(&idem), |d| d.len() == 4);
    let at: Vec<i64> = log.iter().rev().map(|a| ms_of(&a["at"])).collect();
    assert!(at[2] - at[1] >= 1000 && at[3] - at[2] >= 1000, "{log:#?}");
    let statuses: Vec<&Value> = log.iter().rev().map(|a| &a["status"]).collect();
    assert_eq!(
        statuses,
        [&json!(500), &json!(429), &json!(503), &json!(200)]
    );
}

#[test]
fn a_receiver_that_is_down_gets_everything_once_it_is_back() {
    let (_d, s, key) = fresh("act-down");
    let port = Receiver::start().port();
    // Dropped at once: connections to the port are refused.
    let (id, _) = webhook(
        &s,
        "down",
        &format!("http://127.0.0.1:{port}/in"),
        json!({"retry": fast_retry()}),
    );
    for i in 1..=5 {
        track(
            &s,
            &key,
            &format!("u{i}"),
            "Clicked",
            &format!("d-{i}"),
            json!({}),
        );
    }
    // Every record failed at least twice: connection errors, retried, no HTTP status.
    let log = wait_deliveries(&s, &id, None, |d| {
        let mut keys: Vec<&Value> = d.iter().map(|a| &a["idempotency_key"]).collect();
        keys.sort_by_key(|k| k.to_string());
        keys.dedup();
        keys.len() == 5 && d.len() >= 10
    });
    for a in &log {
        assert_eq!(
            (&a["outcome"], &a["status"]),
            (&json!("retry"), &Value::Null),
            "{a}"
        );
        assert!(a["error"].as_str().is_some_and(|e| !e.is_empty()), "{a}");
    }
    let h = wait_health(&s, &id, |h| h["pending"] == 5);
    assert_eq!(
        (&h["status"], &h["delivered"]),
        (&json!("failing"), &json!(0)),
        "{h}"
    );
    assert!(h["last_error"].is_string(), "{h}");

    let rx = restart_on(port);
    let mut ids = message_ids(&arrivals(&rx, 5));
    ids.sort();
    ids.dedup();
    assert_eq!(ids, ["d-1", "d-2", "d-3", "d-4", "d-5"]);
    let h = wait_health(&s, &id, |h| h["delivered"] == 5);
    assert_eq!(
        (&h["pending"], &h["dead_letters"]),
        (&json!(0), &json!(0)),
        "{h}"
    );
    assert_eq!(h["status"], "ok", "{h}");
}

#[test]
fn a_slow_destination_does_not_delay_a_fast_one() {
    let (_d, s, key) = fresh("act-isolation");
    let slow = Receiver::start();
    slow.set_default(Reply::ok().after(Duration::from_secs(3)));
    let fast = Receiver::start();
    webhook(
        &s,
        "slow",
        &slow.url("/"),
        json!({"config": {"timeout_ms": 10000}, "concurrency": 1}),
    );
    webhook(&s, "fast", &fast.url("/"), json!({}));
    let batch: Vec<Value> = (0..20)
        .map(|i| {
            json!({"type": "track", "userId": format!("u{i}"), "event": "Clicked",
                        "messageId": format!("iso-{i}")})
        })
        .collect();
    send(&s, &key, "batch", json!({ "batch": batch }));
    let got = arrivals(&fast, 20);
    let last_fast = got.iter().map(|r| r.at).max().unwrap();
    // The slow receiver answers one request per 3 s on its single lane: its third request
    // cannot come before ~6 s, by which time the fast one must have everything.
    let slow_got = slow.received();
    assert!(
        slow_got.len() < 3 || slow_got[2].at > last_fast,
        "the slow destination got {} requests before the fast one finished",
        slow_got.len()
    );
    let mut ids = message_ids(&got);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
}

#[test]
fn an_ordered_destination_keeps_each_profiles_events_in_log_order_through_a_failure() {
    let (_d, s, key) = fresh("act-ordered");
    let rx = Receiver::start();
    rx.plan(vec![Reply::status(503)]);
    let (id, _) = webhook(
        &s,
        "ordered",
        &rx.url("/"),
        json!({"ordered": true, "retry": fast_retry()}),
    );
    let users = ["ann", "bob", "cat", "dan", "eve"];
    let mut all = Vec::new();
    for i in 0..6 {
        for u in users {
            let mid = format!("{u}-{i}");
            track(&s, &key, u, "Clicked", &mid, json!({ "i": i }));
            all.push(mid);
        }
    }
    let got = wait_until("every message", || {
        let got = rx.received();
        let ids = message_ids(&got);
        all.iter().all(|m| ids.contains(m)).then_some(got)
    });
    assert!(got.len() > all.len(), "the 503 was not retried");
    for u in users {
        // Each of this profile's messages at its last arrival (a retried one arrived twice),
        // taken in arrival order, must be in log-position order.
        let mut last: Vec<(usize, String, i64)> = Vec::new();
        for (n, r) in got.iter().enumerate() {
            let body = r.json();
            if body["userId"] != u {
                continue;
            }
            let mid = body["messageId"].as_str().unwrap().to_string();
            let pos = key_position(r.header("idempotency-key").unwrap());
            last.retain(|(_, m, _)| *m != mid);
            last.push((n, mid, pos));
        }
        let positions: Vec<i64> = last.iter().map(|l| l.2).collect();
        let mut sorted = positions.clone();
        sorted.sort();
        assert_eq!(positions, sorted, "{u}: {last:?}");
        assert_eq!(last.len(), 6, "{u}: {last:?}");
        // And log order is the order they were sent in.
        let ids: Vec<&str> = last.iter().map(|l| l.1.as_str()).collect();
        let want: Vec<String> = (0..6).map(|i| format!("{u}-{i}")).collect();
        assert_eq!(ids, want);
    }
    wait_health(&s, &id, |h| h["delivered"] == 30);
    // The delivery log pages through the same attempts, newest first, whatever the page size.
    let path = format!("/api/v1/destinations/{id}/deliveries");
    let whole = pages_of(&s, &path, "deliveries", 1000);
    assert!(whole.len() > 30, "{}", whole.len());
    assert_eq!(pages_of(&s, &path, "deliveries", 7), whole);
}

#[test]
fn timeouts_conflicts_and_408_are_retried() {
    let (_d, s, key) = fresh("act-timeout");
    let rx = Receiver::start();
    // An answer slower than the destination's timeout is no answer.
    rx.plan(vec![
        Reply::ok().after(Duration::from_secs(5)),
        Reply::status(408),
        Reply::status(409),
    ]);
    let (id, _) = webhook(
        &s,
        "impatient",
        &rx.url("/"),
        json!({"config": {"timeout_ms": 300}, "retry": fast_retry(), "concurrency": 1}),
    );
    track(&s, &key, "ann", "Clicked", "t-1", json!({}));
    let got = arrivals(&rx, 4);
    assert_eq!(message_ids(&got), ["t-1"; 4]);
    let idem = got[0].header("idempotency-key").unwrap().to_string();
    let log = wait_deliveries(&s, &id, Some(&idem), |d| d.len() == 4);
    let brief: Vec<(&Value, &Value)> = log
        .iter()
        .rev()
        .map(|a| (&a["status"], &a["outcome"]))
        .collect();
    assert_eq!(
        brief,
        [
            (&Value::Null, &json!("retry")),
            (&json!(408), &json!("retry")),
            (&json!(409), &json!("retry")),
            (&json!(200), &json!("delivered")),
        ],
        "{log:#?}"
    );
    let timed_out = &log[3];
    assert!(
        timed_out["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{timed_out}"
    );
}

#[test]
fn an_unordered_destination_goes_on_while_a_record_waits_to_be_retried() {
    let (_d, s, key) = fresh("act-aside");
    let rx = Receiver::start();
    rx.plan(vec![Reply::status(503).with_header("Retry-After", "1")]);
    // One lane: what arrives while the first record waits out its second shows the lane
    // did not wait with it.
    webhook(&s, "aside", &rx.url("/"), json!({"concurrency": 1}));
    for i in 1..=3 {
        track(&s, &key, "ann", "Clicked", &format!("as-{i}"), json!({}));
    }
    let got = arrivals(&rx, 4);
    assert_eq!(message_ids(&got), ["as-1", "as-2", "as-3", "as-1"]);
}

#[test]
fn the_delivery_log_is_newest_first_by_attempt_time() {
    let (_d, s, key) = fresh("act-log-order");
    let rx = Receiver::start();
    rx.plan(vec![Reply::ok().after(Duration::from_millis(500))]);
    // Two lanes: the second attempt starts after the first and finishes before it.
    let (id, _) = webhook(&s, "two lanes", &rx.url("/"), json!({"concurrency": 2}));
    track(&s, &key, "ann", "Clicked", "lo-1", json!({}));
    arrivals(&rx, 1);
    track(&s, &key, "bob", "Clicked", "lo-2", json!({}));
    let log = wait_deliveries(&s, &id, None, |d| d.len() == 2);
    let at: Vec<i64> = log.iter().map(|a| ms_of(&a["at"])).collect();
    assert!(at[0] >= at[1], "not newest first by `at`: {log:#?}");
}
