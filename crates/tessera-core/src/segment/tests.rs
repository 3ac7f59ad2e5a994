//! Tests of the segmentation store and evaluators against the reference evaluator. This file
//! holds the shared helpers and a first scenario; `harness` feeds streams and checks the
//! segmenter against the reference, `props` runs random definitions and streams through it,
//! `edges` holds scenarios of risky edge cases, and `parallel` checks batch evaluation with
//! enough profiles to be split between threads.

use super::*;
use crate::audience::{parse_audience, parse_computed};
use crate::identity::{Engine, EventFacts, IdentityRules};
use serde_json::{json, Value};

mod edges;
mod harness;
mod parallel;
mod props;

const DAY: i64 = 86_400_000;

fn feed(engine: &mut Engine, seg: &mut Segmenter, position: i64, received: i64, body: Value) {
    let text = body.to_string();
    let ts = body["ts"].as_i64().unwrap_or(received);
    let f = EventFacts::parse(position, ts, "src", &text).unwrap();
    apply_event(engine, seg, &f, received);
}

fn registry(computed: &[(&str, &str)], audiences: &[(&str, &str)]) -> Registry {
    Registry::new(
        computed
            .iter()
            .map(|(n, d)| ComputedTrait {
                id: format!("ct_{n}"),
                name: n.to_string(),
                version: 1,
                def: parse_computed(d).unwrap(),
            })
            .collect(),
        audiences
            .iter()
            .map(|(n, d)| AudienceDef {
                id: format!("aud_{n}"),
                name: n.to_string(),
                version: 1,
                def: parse_audience(d).unwrap(),
            })
            .collect(),
    )
    .unwrap()
}

#[test]
fn members_enter_on_events_leave_with_time_and_follow_merges() {
    let mut engine = Engine::new(IdentityRules::default());
    let mut seg = Segmenter::new();
    seg.set_registry(
        registry(
            &[("views", r#"count "Viewed" where category = "jeans" within 30 days"#)],
            &[
                ("jeans_fans", r#"performed "Viewed" where category = "jeans" at least 2 times within 30 days and country = "DE""#),
                ("many_views", "views >= 3"),
            ],
        ),
        2,
    );
    let view = |uid: &str, anon: &str, ts: i64| {
        json!({"type": "track", "event": "Viewed", "userId": uid, "anonymousId": anon,
               "properties": {"category": "jeans"}, "ts": ts})
    };
    feed(
        &mut engine,
        &mut seg,
        1,
        DAY,
        json!({"type": "identify", "userId": "u1", "traits": {"country": "DE"}}),
    );
    feed(&mut engine, &mut seg, 2, DAY, view("u1", "a1", DAY));
    assert!(seg.take_changes().is_empty());
    feed(&mut engine, &mut seg, 3, 2 * DAY, view("u1", "a1", 2 * DAY));
    let changes = seg.take_changes();
    assert_eq!(changes.len(), 1);
    assert!(changes[0].entered);
    assert_eq!(changes[0].audience_name, "jeans_fans");
    assert_eq!(changes[0].reason, Reason::Event { position: 3 });
    // An anonymous visitor views once more, then logs in: the merge brings the count to 3.
    feed(
        &mut engine,
        &mut seg,
        4,
        3 * DAY,
        json!({"type": "track", "event": "Viewed", "anonymousId": "a2", "properties": {"category": "jeans"}}),
    );
    feed(
        &mut engine,
        &mut seg,
        5,
        3 * DAY,
        json!({"type": "identify", "userId": "u1", "anonymousId": "a2"}),
    );
    let changes = seg.take_changes();
    assert!(
        changes
            .iter()
            .any(|c| c.audience_name == "many_views" && c.entered && c.profile == 1),
        "{changes:?}"
    );
    assert_eq!(seg.computed_values(0)["views"], json!(3));
    // 30 days after the first view it leaves the window: views drops to 2 at that instant.
    seg.advance(40 * DAY);
    let changes = seg.take_changes();
    let exit = changes
        .iter()
        .find(|c| c.audience_name == "many_views")
        .unwrap();
    assert!(!exit.entered);
    assert_eq!(exit.at, 31 * DAY);
    assert_eq!(exit.reason, Reason::Time);
    let exit = changes
        .iter()
        .find(|c| c.audience_name == "jeans_fans")
        .unwrap();
    assert_eq!(exit.at, 32 * DAY);
    assert_eq!(seg.sizes(), vec![0, 0]);
}

#[test]
fn batch_counts_hold_past_a_byte() {
    let mut seg = Segmenter::new();
    seg.register(0, 1, 0);
    seg.register(1, 2, 1);
    for i in 0..300 {
        seg.load_event(0, "Viewed", i, None);
    }
    for i in 0..254 {
        seg.load_event(1, "Viewed", i, None);
    }
    seg.load_clock(1_000);
    let size = |text: &str| seg.preview(&parse_audience(text).unwrap(), 2).count();
    assert_eq!(size(r#"performed "Viewed" at least 254 times"#), 2);
    assert_eq!(size(r#"performed "Viewed" at least 255 times"#), 1);
    assert_eq!(size(r#"performed "Viewed" at most 254 times"#), 1);
    assert_eq!(size(r#"performed "Viewed" exactly 300 times"#), 1);
    assert_eq!(size(r#"performed "Viewed" exactly 299 times"#), 0);
}
