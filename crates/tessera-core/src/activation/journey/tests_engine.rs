//! Engine rules one by one: branches, audience triggers, exits, re-entry, trigger age,
//! merges, timer order, definition changes, metrics and persistence.

use super::test_support::{cart, def, send_parts, track, Driver, TestView, HOUR, MIN, T0};
use super::{Action, Journeys};
use serde_json::{json, Value};

fn branching() -> super::JourneyDef {
    def(
        "jrn_br",
        json!({"name": "Branch", "trigger": {"event": "Signed Up", "where":
            {"path": "properties.plan", "op": "in", "value": ["pro", "team"]}},
        "steps": [
          {"id": "vip", "type": "branch", "if": {"any": [
              {"path": "traits.ltv", "op": "gte", "value": 1000},
              {"in_audience": "aud_vip"}]}, "then": "vip_send", "else": "plain_send"},
          {"id": "plain_send", "type": "send", "destination": "dst_plain", "next": "end"},
          {"id": "vip_send", "type": "send", "destination": "dst_vip"},
          {"id": "end", "type": "exit"}
        ]}),
    )
}

fn destinations(actions: &[Action]) -> Vec<(i64, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                profile,
                destination,
                ..
            } => Some((*profile, destination.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn branches_on_traits_audiences_and_trigger_filters() {
    let mut d = Driver::new(vec![branching()]);
    d.view.set_trait(1, "ltv", json!(1500));
    d.view.set_trait(2, "ltv", json!(10));
    d.view.audiences.insert((3, "aud_vip".into()));
    for p in 1..=4 {
        d.track(p, "Signed Up", T0, json!({"plan": "pro"}));
    }
    d.track(5, "Signed Up", T0, json!({"plan": "free"}));
    let got = destinations(&d.take());
    assert_eq!(
        got,
        vec![
            (1, "dst_vip".to_string()),
            (2, "dst_plain".to_string()),
            (3, "dst_vip".to_string()),
            (4, "dst_plain".to_string())
        ]
    );
    assert_eq!(
        d.engine.metrics("jrn_br").unwrap().entered,
        4,
        "5 fails the where"
    );
}

#[test]
fn branch_sees_the_trigger() {
    let j = def(
        "jrn_t",
        json!({"name": "T", "trigger": {"event": "Order Completed"},
        "steps": [
          {"id": "big", "type": "branch", "if": {"path": "trigger.properties.total", "op": "gt",
           "value": 100}, "then": "thanks", "else": "end"},
          {"id": "thanks", "type": "send", "destination": "dst_x"},
          {"id": "end", "type": "exit"}
        ]}),
    );
    let mut d = Driver::new(vec![j]);
    d.track(1, "Order Completed", T0, json!({"total": 150}));
    d.track(2, "Order Completed", T0, json!({"total": 50}));
    assert_eq!(destinations(&d.take()), vec![(1, "dst_x".to_string())]);
}

fn audience_journey() -> super::JourneyDef {
    def(
        "jrn_aud",
        json!({"name": "Welcome VIP", "trigger": {"audience": "aud_vip"},
               "steps": [{"id": "w", "type": "wait", "duration": "10m"},
                         {"id": "s", "type": "send", "destination": "dst_x"}]}),
    )
}

#[test]
fn audience_entries_trigger_but_exits_and_replays_do_not() {
    let mut d = Driver::new(vec![audience_journey()]);
    d.audience(1, "aud_vip", false, T0, "event");
    d.audience(1, "aud_other", true, T0, "event");
    d.audience(1, "aud_vip", true, T0, "backfill");
    d.audience(1, "aud_vip", true, T0, "rebuilt");
    assert_eq!(d.engine.metrics("jrn_aud").unwrap().entered, 0);
    d.audience(1, "aud_vip", true, T0, "time");
    d.tick(T0 + HOUR);
    let sends = d.sends();
    let (key, context, at) = send_parts(&sends[0]);
    assert_eq!((key, at), ("jrn_aud:1:5:s", T0 + 10 * MIN));
    assert_eq!(context["trigger"]["type"], json!("audience_entered"));
    assert_eq!(
        context["trigger"]["audience"],
        json!({"id": "aud_vip", "name": "Test audience"})
    );
    assert_eq!(context["events"], json!([]));
}

#[test]
fn exit_on_ends_the_instance() {
    let mut d = Driver::new(vec![cart("jrn_cart", json!({}))]);
    d.track(7, "Product Added", T0, json!({}));
    d.track(7, "Unsubscribed", T0 + MIN, json!({}));
    d.tick(T0 + 2 * HOUR);
    assert!(d.take().is_empty());
    let m = d.engine.metrics("jrn_cart").unwrap();
    assert_eq!((m.exited, m.active, m.converted), (1, 0, 0));
}

#[test]
fn reentry_after_exit_and_never() {
    for (reentry, entries) in [("after_exit", 2), ("never", 1)] {
        let mut d = Driver::new(vec![cart("jrn_cart", json!({"reentry": reentry}))]);
        d.track(7, "Product Added", T0, json!({}));
        d.track(7, "Product Added", T0 + MIN, json!({})); // still active: no entry
        d.track(7, "Order Completed", T0 + 2 * MIN, json!({}));
        d.track(7, "Product Added", T0 + 3 * MIN, json!({}));
        assert_eq!(
            d.engine.metrics("jrn_cart").unwrap().entered,
            entries,
            "{reentry}"
        );
    }
}

#[test]
fn old_events_do_not_trigger() {
    let mut d = Driver::new(vec![
        cart("jrn_default", json!({})),
        cart("jrn_week", json!({"max_trigger_age": "1w"})),
    ]);
    let mut ev = track(1, 7, "Product Added", T0 - 25 * HOUR, json!({}));
    ev.received_at = T0;
    d.event(&ev);
    assert_eq!(d.engine.metrics("jrn_default").unwrap().entered, 0);
    assert_eq!(d.engine.metrics("jrn_week").unwrap().entered, 1);
    ev.timestamp = T0 - 24 * HOUR; // exactly the limit still triggers
    ev.profile = Some(8);
    d.event(&ev);
    assert_eq!(d.engine.metrics("jrn_default").unwrap().entered, 1);
}

#[test]
fn events_without_a_profile_do_nothing() {
    let mut d = Driver::new(vec![cart("jrn_cart", json!({}))]);
    let mut ev = track(1, 7, "Product Added", T0, json!({}));
    ev.profile = None;
    d.event(&ev);
    assert_eq!(d.engine.metrics("jrn_cart").unwrap().entered, 0);
}

#[test]
fn merges_move_instances_and_keep_the_survivors() {
    let mut d = Driver::new(vec![cart("jrn_cart", json!({}))]);
    d.track(2, "Product Added", T0, json!({"sku": "absorbed"}));
    d.track(3, "Product Added", T0 + MIN, json!({"sku": "absorbed too"}));
    d.merge(1, &[2, 3]);
    let m = d.engine.metrics("jrn_cart").unwrap();
    assert_eq!((m.active, m.exited), (1, 1), "2 moved to 1; 3 lost to it");
    d.track(1, "Product Added", T0 + 2 * MIN, json!({"sku": "survivor"}));
    d.tick(T0 + 2 * HOUR);
    let sends = d.sends();
    assert_eq!(sends.len(), 1);
    let Action::Send {
        profile,
        key,
        context,
        ..
    } = &sends[0]
    else {
        unreachable!()
    };
    assert_eq!(*profile, 1);
    assert_eq!(key, "jrn_cart:2:1:remind", "keys keep the entry profile");
    assert_eq!(context["events"].as_array().unwrap().len(), 2);
    // The survivor's own instance wins over an absorbed one.
    d.track(5, "Product Added", T0, json!({}));
    d.track(6, "Product Added", T0, json!({}));
    d.merge(5, &[6]);
    d.tick(T0 + 3 * HOUR);
    assert_eq!(d.sends().len(), 1);
}

#[test]
fn merges_combine_cap_history_and_reentry_memory() {
    let mut d = Driver::new(vec![cart(
        "jrn_cart",
        json!({"reentry": "never", "frequency_cap": {"max": 1, "per": "1d"}}),
    )]);
    d.track(2, "Product Added", T0, json!({}));
    d.tick(T0 + HOUR);
    assert_eq!(d.sends().len(), 1);
    d.merge(1, &[2]);
    d.track(1, "Product Added", T0 + 2 * HOUR, json!({}));
    assert_eq!(
        d.engine.metrics("jrn_cart").unwrap().entered,
        1,
        "1 inherited 2's entry"
    );
    // Cap history moved too: a second journey's send to 1 is capped.
    let mut d2 = Driver::new(vec![
        cart("jrn_a", json!({"frequency_cap": {"max": 1, "per": "1d"}})),
        cart(
            "jrn_b",
            json!({"frequency_cap": {"max": 1, "per": "1d"}, "trigger": {"event": "Viewed"}}),
        ),
    ]);
    d2.track(2, "Product Added", T0, json!({}));
    d2.tick(T0 + HOUR);
    d2.merge(1, &[2]);
    d2.track(1, "Viewed", T0 + 2 * HOUR, json!({}));
    d2.tick(T0 + 4 * HOUR);
    let b = d2.engine.metrics("jrn_b").unwrap();
    assert_eq!((b.sent, b.capped), (0, 1));
}

#[test]
fn timers_fire_in_due_journey_profile_order_at_their_instants() {
    let waiter = |id: &str, dur: &str| {
        def(
            id,
            json!({"name": id, "trigger": {"event": "Go"},
                       "steps": [{"id": "w", "type": "wait", "duration": dur},
                                 {"id": "s", "type": "send", "destination": "dst"}]}),
        )
    };
    let mut d = Driver::new(vec![waiter("jrn_b", "1h"), waiter("jrn_a", "2h")]);
    d.track(9, "Go", T0, json!({}));
    d.track(4, "Go", T0 + 30 * MIN, json!({}));
    assert_eq!(d.engine.next_due(), Some(T0 + HOUR));
    d.tick(T0 + 5 * HOUR);
    let got: Vec<(String, Value)> = d
        .sends()
        .iter()
        .map(|a| match a {
            Action::Send {
                journey,
                profile,
                at,
                ..
            } => (journey.clone(), json!([profile, at - T0])),
            _ => unreachable!(),
        })
        .collect();
    let h = HOUR;
    assert_eq!(
        got,
        vec![
            ("jrn_b".into(), json!([9, h])),
            ("jrn_b".into(), json!([4, h + 30 * MIN])),
            ("jrn_a".into(), json!([9, 2 * h])),
            ("jrn_a".into(), json!([4, 2 * h + 30 * MIN])),
        ]
    );
}

#[test]
fn changed_definitions_keep_instances_whose_step_remains() {
    let mut d = Driver::new(vec![cart("jrn_cart", json!({})), audience_journey()]);
    d.track(7, "Product Added", T0, json!({}));
    d.audience(7, "aud_vip", true, T0, "event");
    // Same step ids, longer timeout: the instance stays (with its due time).
    let mut longer = cart("jrn_cart", json!({}));
    longer.name = "Renamed".into();
    d.engine
        .set_definitions(vec![longer.clone(), audience_journey()]);
    assert_eq!(d.engine.metrics("jrn_cart").unwrap().active, 1);
    assert_eq!(d.engine.next_due(), Some(T0 + 10 * MIN));
    // The wait step is gone: the instance exits, counters stay.
    let gone = def(
        "jrn_cart",
        json!({"name": "X", "trigger": {"event": "Product Added"},
                                      "steps": [{"id": "other", "type": "wait", "duration": "1h"}]}),
    );
    d.engine.set_definitions(vec![gone, audience_journey()]);
    let m = d.engine.metrics("jrn_cart").unwrap();
    assert_eq!((m.entered, m.exited, m.active), (1, 1, 0));
    // The audience journey disappears: its instances and metrics go, rows are deleted.
    d.engine.take_dirty();
    d.engine.set_definitions(vec![longer]);
    assert!(d.engine.metrics("jrn_aud").is_none());
    assert_eq!(d.engine.next_due(), None);
    let rows = d.engine.take_dirty();
    assert!(
        rows.contains(&("i/jrn_aud/7".to_string(), None)),
        "{rows:?}"
    );
    assert!(rows.contains(&("m/jrn_aud".to_string(), None)), "{rows:?}");
    assert_eq!(d.engine.definitions().len(), 1);
}

#[test]
fn in_step_counts_profiles_per_step() {
    let j = def(
        "jrn_s",
        json!({"name": "S", "trigger": {"event": "Go"},
        "steps": [{"id": "first", "type": "wait", "duration": "1h"},
                  {"id": "second", "type": "wait_for", "event": "Done", "timeout": "1d"},
                  {"id": "end", "type": "exit"}]}),
    );
    let mut d = Driver::new(vec![j]);
    for p in 1..=3 {
        d.track(p, "Go", T0 + p * MIN, json!({}));
    }
    d.tick(T0 + HOUR + 90 * 1000);
    let m = d.engine.metrics("jrn_s").unwrap();
    let counts: Vec<(&str, u64)> = m.in_step.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    assert_eq!(counts, vec![("first", 2), ("second", 1), ("end", 0)]);
    assert_eq!(m.active, 3);
    assert!(d.engine.metrics("nope").is_none());
}

#[test]
fn restored_engine_continues_identically() {
    let defs = vec![
        cart(
            "jrn_a",
            json!({"holdout_percent": 50, "reentry": "never",
                             "frequency_cap": {"max": 1, "per": "1d"}}),
        ),
        cart("jrn_b", json!({"frequency_cap": {"max": 2, "per": "1d"}})),
    ];
    let mut d = Driver::new(defs.clone());
    let mut rows = std::collections::BTreeMap::new();
    for p in 0..20 {
        d.track(p, "Product Added", T0 + p * MIN, json!({"p": p}));
    }
    d.tick(T0 + HOUR + 5 * MIN);
    for (k, v) in d.engine.take_dirty() {
        match v {
            Some(v) => rows.insert(k, v),
            None => rows.remove(&k),
        };
    }
    let mut restored = Journeys::new();
    restored.set_definitions(defs);
    restored.restore(rows).unwrap();
    assert!(restored.take_dirty().is_empty());
    assert_eq!(restored.next_due(), d.engine.next_due());
    let (mut out1, mut out2) = (Vec::new(), Vec::new());
    let view = TestView::default();
    d.engine.tick(T0 + 3 * HOUR, 99, &view, &mut out1);
    restored.tick(T0 + 3 * HOUR, 99, &view, &mut out2);
    assert!(!out1.is_empty());
    assert_eq!(out1, out2);
    for j in ["jrn_a", "jrn_b"] {
        assert_eq!(d.engine.metrics(j), restored.metrics(j));
    }
}

#[test]
fn restore_refuses_garbage_and_ignores_unknown_journeys() {
    let mut e = Journeys::new();
    e.set_definitions(vec![cart("jrn_a", json!({}))]);
    e.restore([("i/jrn_zzz/1".to_string(), "{}".to_string())])
        .unwrap();
    let err = e
        .restore([("m/jrn_a".to_string(), "nope".to_string())])
        .unwrap_err();
    assert_eq!(err.pointer, "m/jrn_a");
    assert!(e.restore([("x/1".to_string(), "1".to_string())]).is_err());
    assert!(e
        .restore([("i/jrn_a/1".to_string(), "{}".to_string())])
        .is_err());
}
