//! The abandoned cart end to end, holdouts, frequency caps and the send context.

use super::holdout_bucket;
use super::test_support::{cart, def, send_parts, Driver, HOUR, MIN, T0};
use super::Action;
use serde_json::json;

#[test]
fn abandoned_cart_sends_the_cart_after_an_hour() {
    let mut d = Driver::new(vec![cart("jrn_cart", json!({}))]);
    d.view.set_trait(7, "email", json!("a@example.com"));
    d.track(7, "Product Added", T0, json!({"sku": "A"}));
    d.track(7, "Product Added", T0 + 10 * MIN, json!({"sku": "B"}));
    assert_eq!(
        d.engine.next_due(),
        Some(T0 + HOUR),
        "timed from the first event"
    );
    d.tick(T0 + HOUR - 1);
    assert!(d.take().is_empty());
    d.tick(T0 + 2 * HOUR);
    let sends = d.sends();
    assert_eq!(sends.len(), 1);
    let Action::Send {
        journey,
        journey_name,
        step,
        destination,
        profile,
        key,
        template,
        context,
        at,
        position,
    } = &sends[0]
    else {
        unreachable!()
    };
    assert_eq!(
        (journey.as_str(), journey_name.as_str()),
        ("jrn_cart", "Abandoned cart")
    );
    assert_eq!(
        (step.as_str(), destination.as_str(), *profile),
        ("remind", "dst_abc", 7)
    );
    assert_eq!(
        key, "jrn_cart:7:1:remind",
        "journey:profile:start position:step"
    );
    assert_eq!(template, &Some(json!({"text": "{{events}}"})));
    assert_eq!(*at, T0 + HOUR, "at the due instant, not the tick's");
    assert_eq!(*position, 4, "the tick's position");
    let skus: Vec<_> = context["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["properties"]["sku"].clone())
        .collect();
    assert_eq!(skus, vec![json!("A"), json!("B")]);
    assert_eq!(context["trigger"]["properties"]["sku"], json!("A"));
    assert_eq!(
        context["journey"],
        json!({"id": "jrn_cart", "name": "Abandoned cart"})
    );
    assert_eq!(context["step"], json!("remind"));
    assert_eq!(
        context["profile"],
        json!({"id": "prf_7", "userId": "user-7", "traits": {"email": "a@example.com"}})
    );
    assert_eq!(context["timestamp"], json!("2024-05-01T13:30:00.000Z"));
    let m = d.engine.metrics("jrn_cart").unwrap();
    assert_eq!(
        (m.entered, m.sent, m.exited, m.converted, m.active),
        (1, 1, 1, 0, 0)
    );
    assert_eq!(d.engine.next_due(), None);
}

#[test]
fn ordering_before_the_timeout_converts_without_a_send() {
    let mut d = Driver::new(vec![cart("jrn_cart", json!({}))]);
    d.track(7, "Product Added", T0, json!({}));
    d.track(7, "Order Completed", T0 + 20 * MIN, json!({}));
    d.tick(T0 + 2 * HOUR);
    assert!(d.take().is_empty());
    let m = d.engine.metrics("jrn_cart").unwrap();
    assert_eq!(
        (m.entered, m.converted, m.exited, m.sent, m.active),
        (1, 1, 0, 0, 0)
    );
    assert_eq!(d.engine.next_due(), None);
}

#[test]
fn events_are_capped_at_fifty_keeping_the_first() {
    let mut d = Driver::new(vec![cart("jrn_cart", json!({}))]);
    for i in 0..60 {
        d.track(7, "Product Added", T0 + i, json!({"n": i}));
    }
    d.tick(T0 + 2 * HOUR);
    let sends = d.sends();
    let events = sends[0].clone();
    let (_, context, _) = send_parts(&events);
    let events = context["events"].as_array().unwrap();
    assert_eq!(events.len(), 50);
    assert_eq!(events[0]["properties"]["n"], json!(0));
    assert_eq!(events[49]["properties"]["n"], json!(49));
}

#[test]
fn held_out_profiles_get_nothing_and_their_conversions_are_counted() {
    let mut d = Driver::new(vec![cart("jrn_cart", json!({"holdout_percent": 100}))]);
    d.track(7, "Product Added", T0, json!({}));
    d.track(8, "Product Added", T0, json!({}));
    d.track(7, "Order Completed", T0 + 3 * HOUR, json!({}));
    d.tick(T0 + 30 * HOUR);
    assert!(d.take().is_empty(), "no actions for held-out profiles");
    let m = d.engine.metrics("jrn_cart").unwrap();
    assert_eq!((m.entered, m.held_out, m.held_out_converted), (2, 2, 1));
    assert_eq!(
        (m.sent, m.converted, m.exited, m.active, m.held_out_active),
        (0, 0, 0, 0, 0)
    );
}

#[test]
fn held_out_goal_window_defaults_to_a_day() {
    let mut d = Driver::new(vec![cart("jrn_cart", json!({"holdout_percent": 100}))]);
    d.track(7, "Product Added", T0, json!({}));
    assert_eq!(d.engine.next_due(), Some(T0 + 24 * HOUR));
    assert_eq!(d.engine.metrics("jrn_cart").unwrap().held_out_active, 1);
    // Late (the tick has not come yet), and past the window: not a conversion.
    d.track(7, "Order Completed", T0 + 25 * HOUR, json!({}));
    assert_eq!(d.engine.metrics("jrn_cart").unwrap().held_out_converted, 0);
    d.tick(T0 + 24 * HOUR);
    assert_eq!(d.engine.metrics("jrn_cart").unwrap().held_out_active, 0);
    // An explicit window applies to held-out profiles too.
    let mut d = Driver::new(vec![cart(
        "jrn_cart",
        json!({"holdout_percent": 100, "goal": {"event": "Order Completed", "within": "2h"}}),
    )]);
    d.track(7, "Product Added", T0, json!({}));
    assert_eq!(d.engine.next_due(), Some(T0 + 2 * HOUR));
}

#[test]
fn holdout_is_a_stable_share_of_profiles() {
    let mut d = Driver::new(vec![cart("jrn_cart", json!({"holdout_percent": 30}))]);
    for p in 0..1000 {
        d.track(p, "Product Added", T0, json!({}));
    }
    let m = d.engine.metrics("jrn_cart").unwrap();
    assert!((200..400).contains(&m.held_out), "{}", m.held_out);
    assert_eq!(m.active + m.held_out_active, 1000);
    // Fixed forever: these values are part of running journeys' control groups.
    assert_eq!(holdout_bucket("jrn_cart", 7), holdout_bucket("jrn_cart", 7));
    assert_ne!(
        (0..20).map(|p| holdout_bucket("a", p)).collect::<Vec<_>>(),
        (0..20).map(|p| holdout_bucket("b", p)).collect::<Vec<_>>()
    );
    d.tick(T0 + 2 * HOUR);
    for a in d.take() {
        let Action::Send { profile, .. } = a else {
            continue;
        };
        assert!(holdout_bucket("jrn_cart", profile) >= 30);
    }
}

#[test]
fn goal_window_for_treated_profiles() {
    let goal = json!({"event": "Order Completed", "within": "30m"});
    let mut d = Driver::new(vec![cart("jrn_cart", json!({"goal": goal}))]);
    d.track(7, "Product Added", T0, json!({}));
    // Past the goal window: not a conversion, but the wait_for still sees the event.
    d.track(7, "Order Completed", T0 + 40 * MIN, json!({}));
    let m = d.engine.metrics("jrn_cart").unwrap();
    assert_eq!((m.converted, m.exited, m.active), (0, 1, 0));
}

fn two_carts(cap: serde_json::Value) -> Driver {
    let mut other = cart("jrn_b", json!({"frequency_cap": cap.clone()}));
    other.name = "Other".into();
    Driver::new(vec![cart("jrn_a", json!({"frequency_cap": cap})), other])
}

#[test]
fn frequency_cap_counts_sends_of_all_journeys() {
    let mut d = two_carts(json!({"max": 1, "per": "24h"}));
    d.track(7, "Product Added", T0, json!({}));
    d.tick(T0 + 2 * HOUR);
    let sends = d.sends();
    assert_eq!(sends.len(), 1, "the second journey's send is capped");
    let (key, _, _) = send_parts(&sends[0]);
    assert!(key.starts_with("jrn_a:"), "journeys fire in id order");
    let (a, b) = (
        d.engine.metrics("jrn_a").unwrap(),
        d.engine.metrics("jrn_b").unwrap(),
    );
    assert_eq!((a.sent, a.capped, b.sent, b.capped), (1, 0, 0, 1));
    assert_eq!(b.exited, 1, "a capped send does not stop the journey");
    // Another profile is not affected.
    d.track(8, "Product Added", T0, json!({}));
    d.tick(T0 + 2 * HOUR);
    assert_eq!(d.sends().len(), 1);
    // A day later the cap allows one again.
    d.track(7, "Product Added", T0 + 24 * HOUR, json!({}));
    d.tick(T0 + 26 * HOUR);
    assert_eq!(d.sends().len(), 1);
}

#[test]
fn frequency_cap_window_is_exact() {
    let mut d = two_carts(json!({"max": 2, "per": "1h"}));
    d.track(7, "Product Added", T0, json!({}));
    d.tick(T0 + HOUR);
    assert_eq!(d.sends().len(), 2, "max 2: both journeys send");
    // Sends at T0+1h; a send at T0+2h is exactly `per` later: the old ones no longer count.
    d.track(7, "Product Added", T0 + HOUR, json!({}));
    d.tick(T0 + 2 * HOUR);
    assert_eq!(d.sends().len(), 2);
}

#[test]
fn sends_in_a_loop_get_distinct_keys() {
    let j = def(
        "jrn_loop",
        json!({"name": "Nag", "trigger": {"event": "Signed Up"},
        "steps": [
          {"id": "send", "type": "send", "destination": "dst_x"},
          {"id": "wait", "type": "wait", "duration": "1d"},
          {"id": "check", "type": "branch", "if": {"path": "traits.done", "op": "eq", "value": true},
           "then": "end", "else": "send"},
          {"id": "end", "type": "exit"}
        ]}),
    );
    let mut d = Driver::new(vec![j]);
    d.track(3, "Signed Up", T0, json!({}));
    d.tick(T0 + 2 * 24 * HOUR);
    d.view.set_trait(3, "done", json!(true));
    d.tick(T0 + 10 * 24 * HOUR);
    let keys: Vec<String> = d
        .sends()
        .iter()
        .map(|a| send_parts(a).0.to_string())
        .collect();
    assert_eq!(
        keys,
        vec![
            "jrn_loop:3:1:send",
            "jrn_loop:3:1:send:2",
            "jrn_loop:3:1:send:3"
        ]
    );
    let m = d.engine.metrics("jrn_loop").unwrap();
    assert_eq!((m.sent, m.exited, m.active), (3, 1, 0));
}

#[test]
fn set_trait_steps_produce_actions() {
    let j = def(
        "jrn_t",
        json!({"name": "Tag", "trigger": {"event": "Signed Up"},
               "steps": [{"id": "tag", "type": "set_trait", "trait": "onboarded", "value": {"v": 1}}]}),
    );
    let mut d = Driver::new(vec![j]);
    d.track(3, "Signed Up", T0, json!({}));
    assert_eq!(
        d.take(),
        vec![Action::SetTrait {
            journey: "jrn_t".into(),
            profile: 3,
            name: "onboarded".into(),
            value: json!({"v": 1}),
            at: T0,
            position: 1
        }]
    );
    assert_eq!(d.engine.metrics("jrn_t").unwrap().exited, 1);
}
