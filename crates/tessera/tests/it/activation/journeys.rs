//! Journeys end to end, on the abandoned cart: a reminder with the cart's items when no order
//! follows, none when it does, none for a held-out profile, a frequency cap counted across
//! journeys, and a waiting profile that survives `kill -9`.
//!
//! Waits run on event time, so a `Product Added` stamped one hour ago plus two seconds is
//! reminded about two seconds from now. To show a reminder was *not* sent, a control profile
//! (or journey) whose timer is due at the same instant or later is used: once its reminder
//! arrives, the other timer has fired too.

use super::*;

/// The abandoned-cart journey of the docs, sending to `dst`.
fn cart(name: &str, dst: &str, holdout: u8, cap: bool) -> Value {
    let mut j = json!({
        "name": name,
        "trigger": {"event": "Product Added"},
        "goal": {"event": "Order Completed"},
        "holdout_percent": holdout,
        "steps": [
            {"id": "wait", "type": "wait_for", "event": "Order Completed", "timeout": "1h",
             "on_event": "converted", "on_timeout": "remind"},
            {"id": "remind", "type": "send", "destination": dst},
            {"id": "done", "type": "exit"},
            {"id": "converted", "type": "exit"}
        ]
    });
    if cap {
        j["frequency_cap"] = json!({"max": 1, "per": "24h"});
    }
    j
}

/// Creates a journey (must answer 201); returns its id.
fn create_journey(s: &Server, body: Value) -> String {
    let r = call(s, "POST", "/api/v1/journeys", &body);
    assert_eq!(r.status, 201, "POST journey {body}: {}", r.text());
    let j = r.json();
    let id = j["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("jrn_"), "{j}");
    assert_eq!(j["name"], body["name"], "{j}");
    assert_eq!(j["metrics"]["entered"], 0, "{j}");
    id
}

/// Waits until a journey's metrics satisfy `ready`; returns them.
fn wait_metrics(s: &Server, id: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait_within(
        s,
        &format!("/api/v1/journeys/{id}/metrics"),
        PATIENCE,
        ready,
    )
}

/// A webhook that receives journey sends only (no forwarded events).
fn reminders(s: &Server, rx: &Receiver) -> (String, String) {
    webhook(
        s,
        "reminders",
        &rx.url("/remind"),
        json!({"forward_events": false}),
    )
}

/// Adds a product to `user`'s cart at instant `at` (ms).
fn add(s: &Server, key: &str, user: &str, mid: &str, sku: &str, at: i64) {
    send(
        s,
        key,
        "track",
        json!({"userId": user, "event": "Product Added", "messageId": mid,
               "properties": {"sku": sku}, "timestamp": iso(at)}),
    );
}

/// An instant whose one-hour timer is due `secs` seconds from now.
fn due_in(secs: i64) -> i64 {
    now_ms() - 3_600_000 + secs * 1000
}

#[test]
fn an_abandoned_cart_gets_one_reminder_with_its_items() {
    let (_d, s, key) = fresh("act-jrn-cart");
    let rx = Receiver::start();
    let (dst, secret) = reminders(&s, &rx);
    let j = create_journey(&s, cart("Abandoned cart", &dst, 0, true));

    // Older than max_trigger_age (24 h) when received: history, not a cart to remind about.
    add(&s, &key, "old", "cart-old", "Z", now_ms() - 25 * 3_600_000);
    // Three seconds: ample to see ann waiting before the timer fires.
    let t0 = due_in(3);
    add(&s, &key, "ann", "cart-1", "A", t0);
    add(&s, &key, "ann", "cart-2", "B", t0 + 500);
    let m = wait_metrics(&s, &j, |m| m["entered"] == 1);
    assert_eq!(
        (&m["active"], &m["in_step"]["wait"]),
        (&json!(1), &json!(1)),
        "{m}"
    );

    let got = arrivals(&rx, 1);
    let r = &got[0];
    assert_eq!(r.path, "/remind");
    assert!(signed_by(&secret, r));
    assert!(
        r.header("idempotency-key")
            .is_some_and(|k| k.starts_with(&j)),
        "{:?}",
        r.headers
    );
    let body = r.json();
    assert_eq!(
        body["journey"],
        json!({"id": j, "name": "Abandoned cart"}),
        "{body}"
    );
    assert_eq!(body["step"], "remind");
    let p = &body["profile"];
    assert_eq!(
        (&p["id"], &p["userId"]),
        (&json!(profile_id(&s, "user_id:ann")), &json!("ann")),
        "{body}"
    );
    assert!(p["traits"].is_object(), "{body}");
    assert_eq!(body["trigger"]["messageId"], "cart-1", "{body}");
    let items: Vec<(&Value, &Value)> = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| (&e["messageId"], &e["properties"]["sku"]))
        .collect();
    assert_eq!(
        items,
        [
            (&json!("cart-1"), &json!("A")),
            (&json!("cart-2"), &json!("B"))
        ],
        "{body}"
    );
    // Sent at the timer's instant: one hour after the trigger, in event time.
    assert_eq!(ms_of(&body["timestamp"]), t0 + 3_600_000, "{body}");

    let m = wait_metrics(&s, &j, |m| m["sent"] == 1 && m["exited"] == 1);
    assert_eq!(
        (
            &m["entered"],
            &m["active"],
            &m["converted"],
            &m["in_step"]["wait"]
        ),
        (&json!(1), &json!(0), &json!(0), &json!(0)),
        "{m}"
    );
    assert_eq!(rx.received().len(), 1);
    // The journey reads back with its metrics, and lists.
    let read = ok(&s, &format!("/api/v1/journeys/{j}"));
    assert_eq!(read["metrics"]["sent"], 1, "{read}");
    let listed = ok(&s, "/api/v1/journeys");
    assert_eq!(listed["journeys"].as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn an_order_before_the_timer_converts_and_sends_nothing() {
    let (_d, s, key) = fresh("act-jrn-conv");
    let rx = Receiver::start();
    let (dst, _) = reminders(&s, &rx);
    let j = create_journey(&s, cart("Abandoned cart", &dst, 0, false));
    // Three seconds: ample for the order to be applied before the timer could fire.
    let t0 = due_in(3);
    add(&s, &key, "buyer", "b-1", "A", t0);
    send(
        &s,
        &key,
        "track",
        json!({"userId": "buyer", "event": "Order Completed", "messageId": "b-2"}),
    );
    // The control's timer is due 100 ms after the buyer's would have been.
    add(&s, &key, "control", "c-1", "A", t0 + 100);
    // Both entered, the buyer converted (the control's timer may already have fired).
    wait_metrics(&s, &j, |m| m["converted"] == 1 && m["entered"] == 2);
    let got = arrivals(&rx, 1);
    assert_eq!(got[0].json()["profile"]["userId"], "control");
    let m = wait_metrics(&s, &j, |m| m["exited"] == 1);
    assert_eq!(
        (&m["sent"], &m["converted"], &m["active"]),
        (&json!(1), &json!(1), &json!(0)),
        "{m}"
    );
    assert_eq!(rx.received().len(), 1, "{:#?}", bodies(&rx.received()));
}

#[test]
fn a_held_out_profile_gets_nothing_and_is_counted() {
    let (_d, s, key) = fresh("act-jrn-hold");
    let rx = Receiver::start();
    let (dst, _) = reminders(&s, &rx);
    let held = create_journey(&s, cart("Everyone held out", &dst, 100, false));
    // The same cart in a journey without holdout: its reminder is due at the same instant.
    let control = create_journey(&s, cart("Control", &dst, 0, false));
    add(&s, &key, "hana", "h-1", "A", due_in(2));
    let m = wait_metrics(&s, &held, |m| m["held_out"] == 1);
    assert_eq!((&m["active"], &m["sent"]), (&json!(0), &json!(0)), "{m}");
    let got = arrivals(&rx, 1);
    assert_eq!(got[0].json()["journey"]["id"], control.as_str());
    wait_metrics(&s, &control, |m| m["sent"] == 1 && m["exited"] == 1);
    let m = ok(&s, &format!("/api/v1/journeys/{held}/metrics"));
    assert_eq!((&m["sent"], &m["held_out"]), (&json!(0), &json!(1)), "{m}");
    // The held-out profile still watches the goal: its order is counted as a held-out
    // conversion (what the holdout compares with).
    send(
        &s,
        &key,
        "track",
        json!({"userId": "hana", "event": "Order Completed", "messageId": "h-2"}),
    );
    let m = wait_metrics(&s, &held, |m| m["held_out_converted"] == 1);
    assert_eq!((&m["converted"], &m["sent"]), (&json!(0), &json!(0)), "{m}");
    assert_eq!(rx.received().len(), 1);
}

#[test]
fn a_frequency_cap_counts_sends_of_every_journey() {
    let (_d, s, key) = fresh("act-jrn-cap");
    let rx = Receiver::start();
    let (dst, _) = reminders(&s, &rx);
    let welcome = create_journey(
        &s,
        json!({"name": "Checkout nudge", "trigger": {"event": "Checkout Started"},
               "steps": [{"id": "nudge", "type": "send", "destination": dst}]}),
    );
    let cart_j = create_journey(&s, cart("Abandoned cart", &dst, 0, true));
    // The nudge is sent now; the cart reminder, due two seconds later, would be the
    // profile's second journey message within 24 h.
    send(
        &s,
        &key,
        "track",
        json!({"userId": "cap", "event": "Checkout Started", "messageId": "cap-1"}),
    );
    add(&s, &key, "cap", "cap-2", "A", due_in(2));
    let got = arrivals(&rx, 1);
    assert_eq!(got[0].json()["journey"]["id"], welcome.as_str());
    let m = wait_metrics(&s, &cart_j, |m| m["capped"] == 1);
    assert_eq!((&m["sent"], &m["exited"]), (&json!(0), &json!(1)), "{m}");
    assert_eq!(
        ok(&s, &format!("/api/v1/journeys/{welcome}/metrics"))["sent"],
        1
    );
    assert_eq!(rx.received().len(), 1, "{:#?}", bodies(&rx.received()));
}

#[test]
fn waiting_profiles_survive_kill_9_and_are_reminded_once() {
    let (dir, mut s, key) = fresh("act-jrn-crash");
    let rx = Receiver::start();
    let (dst, _) = reminders(&s, &rx);
    let j = create_journey(&s, cart("Abandoned cart", &dst, 0, true));
    // lee's timer falls due while the server is down, kim's after it is back.
    let lee_due = due_in(1) + 3_600_000;
    add(&s, &key, "lee", "l-1", "A", due_in(1));
    add(&s, &key, "kim", "k-1", "A", due_in(4));
    // Both entered (lee's timer may even have fired already; either way is covered).
    wait_metrics(&s, &j, |m| m["entered"] == 2);
    s.kill9();
    wait_until("lee's timer to fall due", || {
        (now_ms() > lee_due + 300).then_some(())
    });
    let s = Server::start(dir.path());
    let m = wait_metrics(&s, &j, |m| m["sent"] == 2 && m["exited"] == 2);
    assert_eq!((&m["entered"], &m["active"]), (&json!(2), &json!(0)), "{m}");
    // Delivered at least once; any repeat is the same record, under the same key.
    let got = wait_until("both reminders", || {
        let got = rx.received();
        let users: Vec<Value> = got
            .iter()
            .map(|r| r.json()["profile"]["userId"].clone())
            .collect();
        (users.contains(&json!("lee")) && users.contains(&json!("kim"))).then_some(got)
    });
    let mut keys: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            let user = r.json()["profile"]["userId"].as_str().unwrap().to_string();
            (user, r.header("idempotency-key").unwrap().to_string())
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 2, "{keys:?}");
    // lee's reminder is stamped with its due instant, not the restart's.
    let lee = got
        .iter()
        .find(|r| r.json()["profile"]["userId"] == "lee")
        .unwrap();
    assert_eq!(ms_of(&lee.json()["timestamp"]), lee_due);
    let h = wait_health(&s, &dst, |h| h["delivered"] == 2);
    assert_eq!(h["pending"], 0, "{h}");
}

#[test]
fn entering_an_audience_starts_a_journey_but_a_backfill_does_not() {
    let (_d, s, key) = fresh("act-jrn-aud");
    let aud = audience(&s, "Buyers", "performed \"Order Completed\"");
    track(&s, &key, "early", "Order Completed", "e-1", json!({}));
    wait_within(
        &s,
        &format!("/api/v1/audiences/{aud}/members"),
        PATIENCE,
        |m| m["members"].as_array().is_some_and(|m| m.len() == 1),
    );
    let rx = Receiver::start();
    let (dst, _) = reminders(&s, &rx);
    // Payload templates render over the send context.
    let j = create_journey(
        &s,
        json!({"name": "Welcome buyers", "trigger": {"audience": aud},
               "steps": [{"id": "hello", "type": "send", "destination": dst,
                          "payload": {"to": "{{ profile.userId }}",
                                      "why": "{{ trigger.audience.name }}",
                                      "step": "{{ step }}"}}]}),
    );
    track(&s, &key, "late", "Order Completed", "l-1", json!({}));
    let got = arrivals(&rx, 1);
    assert_eq!(
        got[0].json(),
        json!({"to": "late", "why": "Buyers", "step": "hello"})
    );
    let m = wait_metrics(&s, &j, |m| m["sent"] == 1);
    // "early" was already a member when the journey was made: not entered.
    assert_eq!(m["entered"], 1, "{m}");
    assert_eq!(rx.received().len(), 1);
}

#[test]
fn a_new_version_keeps_waiting_profiles_and_a_deleted_journey_sends_nothing() {
    let (_d, s, key) = fresh("act-jrn-versions");
    let rx = Receiver::start();
    let (dst, _) = reminders(&s, &rx);
    let kept = create_journey(&s, cart("Cart", &dst, 0, false));
    let gone = create_journey(&s, cart("Cart (to delete)", &dst, 0, false));
    add(&s, &key, "vic", "v-1", "A", due_in(3));
    wait_metrics(&s, &kept, |m| m["entered"] == 1);
    wait_metrics(&s, &gone, |m| m["entered"] == 1);
    // Same step ids: vic stays in `wait` and is reminded under the new name.
    let r = call(
        &s,
        "PUT",
        &format!("/api/v1/journeys/{kept}"),
        &cart("Cart v2", &dst, 0, false),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["version"], 2, "{}", r.text());
    assert_eq!(r.json()["metrics"]["in_step"]["wait"], 1, "{}", r.text());
    let r = s.admin("DELETE", &format!("/api/v1/journeys/{gone}"), "");
    assert_eq!(r.status, 204, "{}", r.text());
    // The deleted journey's timer was due at the same instant as the kept one's.
    let got = arrivals(&rx, 1);
    assert_eq!(
        got[0].json()["journey"],
        json!({"id": kept, "name": "Cart v2"})
    );
    let m = wait_metrics(&s, &kept, |m| m["sent"] == 1 && m["exited"] == 1);
    assert_eq!(m["entered"], 1, "{m}");
    let versions = ok(&s, &format!("/api/v1/journeys/{kept}/versions"));
    let names: Vec<&Value> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["name"])
        .collect();
    assert_eq!(names.len(), 2, "{versions}");
    assert!(names.contains(&&json!("Cart")) && names.contains(&&json!("Cart v2")));
    assert_eq!(rx.received().len(), 1, "{:#?}", bodies(&rx.received()));
}

/// A `set_trait` step writes the trait through the log: it is on the profile (with the
/// journey as its source), audiences read it, and it is still there after `kill -9` and a
/// restart (the restart re-derives it from the log, as it does events).
#[test]
fn journey_trait_writes_reach_the_profile_and_survive_a_crash() {
    let (d, mut s, key) = fresh("act-jrn-trait");
    let aud = audience(&s, "Onboarding", "onboarding = \"started\"");
    let id = create_journey(
        &s,
        json!({"name": "Onboarding", "trigger": {"event": "Signed Up"},
               "steps": [{"id": "mark", "type": "set_trait", "trait": "onboarding",
                          "value": "started"}]}),
    );
    track(&s, &key, "tina", "Signed Up", "trait-1", json!({}));
    let traits_path = format!("/v1/profiles/{}/traits?verbose=true", enc("user_id:tina"));
    let traits = wait_within(&s, &traits_path, PATIENCE, |t| {
        t["traits"]["onboarding"]["value"] == "started"
    });
    assert_eq!(
        traits["traits"]["onboarding"]["source"],
        format!("journey:{id}"),
        "{traits}"
    );
    let members = format!("/api/v1/audiences/{aud}/members");
    wait_within(&s, &members, PATIENCE, |m| {
        m["members"].as_array().is_some_and(|a| a.len() == 1)
    });
    wait_metrics(&s, &id, |m| m["entered"] == 1 && m["exited"] == 1);

    s.kill9();
    let s = Server::start(d.path());
    let traits = ok(&s, &traits_path);
    assert_eq!(
        traits["traits"]["onboarding"]["value"], "started",
        "{traits}"
    );
    // Applying the write again after the restart did not run the journey again.
    let m = ok(&s, &format!("/api/v1/journeys/{id}/metrics"));
    assert_eq!((&m["entered"], &m["exited"]), (&json!(1), &json!(1)), "{m}");
}
