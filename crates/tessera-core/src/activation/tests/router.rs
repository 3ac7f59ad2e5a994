//! Routing: filters, consent, paused destinations, mappings, audience filters (and
//! `in_audience` in `where`) through the profile lookup, audience payloads, backfills, journey
//! records, stable keys, batch bodies.

use super::*;
use serde_json::json;

/// A profile store: profile 1 is `u1` with traits and in `aud_vip`; profile 2 is anonymous.
struct Profiles;

impl ProfileLookup for Profiles {
    fn traits(&self, profile: i64) -> Map<String, Value> {
        match profile {
            1 => json!({"email": "a@example.com", "plan": "pro", "consent.marketing": true,
                        "consent.ads": false})
            .as_object()
            .unwrap()
            .clone(),
            _ => Map::new(),
        }
    }
    fn user_id(&self, profile: i64) -> Option<String> {
        (profile == 1).then(|| "u1".to_owned())
    }
    fn in_audience(&self, profile: i64, audience: &str) -> bool {
        profile == 1 && audience == "aud_vip"
    }
}

fn dest(id: &str, extra: Value) -> Destination {
    let mut v = json!({"name": id, "type": "webhook", "config": {"url": "https://example.com/"}});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    Destination::parse(id, "whsec_t", &v).unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn message(consent: Value) -> Value {
    json!({
        "type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m-1",
        "properties": {"total": 150, "currency": "EUR"},
        "context": {"consent": {"categoryPreferences": consent}, "ip": "1.2.3.4"},
    })
}

fn event<'a>(msg: &'a Value, profile: Option<i64>) -> EventView<'a> {
    EventView {
        position: 42,
        kind: msg["type"].as_str().unwrap(),
        name: msg.get("event").and_then(Value::as_str),
        timestamp: 1_700_000_000_000,
        received_at: 1_700_000_000_500,
        message: msg,
        profile,
    }
}

fn route(router: &Router, ev: &EventView<'_>) -> (Vec<OutboxRecord>, Vec<(String, &'static str)>) {
    let (mut out, mut skipped) = (Vec::new(), Vec::new());
    router.route_event(ev, &Profiles, &mut out, &mut skipped);
    (out, skipped)
}

fn payload(r: &OutboxRecord) -> Value {
    serde_json::from_str(&r.payload).expect("payloads are JSON")
}

#[test]
fn forwards_the_message_with_the_profile_id() {
    let router = Router::new(vec![dest("d1", json!({}))]);
    let msg = message(json!({}));
    let (out, skipped) = route(&router, &event(&msg, Some(1)));
    assert!(skipped.is_empty());
    assert_eq!(out.len(), 1);
    let r = &out[0];
    assert_eq!((r.destination.as_str(), r.key.as_str()), ("d1", "d1:e:42"));
    assert_eq!(
        (r.position, r.profile, r.kind, r.at),
        (42, Some(1), RecordKind::Event, 1_700_000_000_500)
    );
    let mut want = msg.clone();
    want["context"]["tessera"] = json!({"profileId": "prf_1"});
    assert_eq!(payload(r), want);
    assert_eq!(payload(r)["messageId"], "m-1");
}

#[test]
fn without_a_profile_the_message_is_unchanged_and_spoofing_is_dropped() {
    let router = Router::new(vec![dest("d1", json!({}))]);
    let msg = message(json!({}));
    let (out, _) = route(&router, &event(&msg, None));
    assert_eq!(payload(&out[0]), msg);
    assert_eq!(out[0].profile, None);
    let mut spoofed = msg.clone();
    spoofed["context"]["tessera"] = json!({"profileId": "prf_999"});
    assert_eq!(payload(&route(&router, &event(&spoofed, None)).0[0]), msg);
    let bare = json!({"type": "identify", "userId": "u1"});
    let (out, _) = route(&router, &event(&bare, Some(1)));
    assert_eq!(
        payload(&out[0]),
        json!({"type": "identify", "userId": "u1", "context": {"tessera": {"profileId": "prf_1"}}})
    );
}

#[test]
fn filters_select_events() {
    let router = Router::new(vec![
        dest("types", json!({"filters": {"types": ["identify", "page"]}})),
        dest(
            "events",
            json!({"filters": {"events": ["Order Completed"]}}),
        ),
        dest(
            "where",
            json!({"filters": {"where": {"path": "properties.total", "op": "gt", "value": 100}}}),
        ),
        dest(
            "where_no",
            json!({"filters": {"where": {"path": "properties.currency", "op": "eq", "value": "USD"}}}),
        ),
        dest(
            "vip",
            json!({"filters": {"audiences": ["aud_other", "aud_vip"]}}),
        ),
        dest(
            "all",
            json!({"filters": {"types": ["track"], "events": ["Order Completed"], "audiences": ["aud_vip"]}}),
        ),
        dest("sync_only", json!({"sync_audiences": ["aud_vip"]})),
    ]);
    let msg = message(json!({}));
    let ids = |p| {
        route(&router, &event(&msg, p))
            .0
            .into_iter()
            .map(|r| r.destination)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(Some(1)), vec!["events", "where", "vip", "all"]);
    // The audience filter asks the lookup: profile 2 is in no audience, no profile is in none.
    assert_eq!(ids(Some(2)), vec!["events", "where"]);
    assert_eq!(ids(None), vec!["events", "where"]);
    let page = json!({"type": "page", "name": "Home"});
    let ids: Vec<_> = route(&router, &event(&page, Some(1)))
        .0
        .into_iter()
        .map(|r| r.destination)
        .collect();
    assert_eq!(ids, vec!["types", "vip"]);
}

#[test]
fn where_asks_the_profile_for_in_audience() {
    let router = Router::new(vec![
        dest(
            "vip_big",
            json!({"filters": {"where": {"all": [{"in_audience": "aud_vip"},
                   {"path": "properties.total", "op": "gt", "value": 100}]}}}),
        ),
        dest(
            "not_vip",
            json!({"filters": {"where": {"not": {"in_audience": "aud_vip"}}}}),
        ),
    ]);
    let msg = message(json!({}));
    let ids = |p| {
        route(&router, &event(&msg, p))
            .0
            .into_iter()
            .map(|r| r.destination)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(Some(1)), vec!["vip_big"]);
    assert_eq!(ids(Some(2)), vec!["not_vip"]);
    // Without a profile the event is in no audience.
    assert_eq!(ids(None), vec!["not_vip"]);
}

#[test]
fn consent_is_required_per_destination() {
    let router = Router::new(vec![
        dest("open", json!({})),
        dest("mkt", json!({"consent": ["marketing"]})),
        dest("both", json!({"consent": ["marketing", "analytics"]})),
        dest(
            "filtered",
            json!({"consent": ["ads"], "filters": {"types": ["page"]}}),
        ),
    ]);
    let cases = [
        (
            json!({"marketing": true, "analytics": true}),
            vec!["open", "mkt", "both"],
            vec![],
        ),
        (
            json!({"marketing": true, "analytics": false}),
            vec!["open", "mkt"],
            vec!["both"],
        ),
        (
            json!({"marketing": "true"}),
            vec!["open"],
            vec!["mkt", "both"],
        ),
        (json!({}), vec!["open"], vec!["mkt", "both"]),
    ];
    // Profile 2 never answered: only the event's own answer counts.
    for (prefs, sent, skipped_ids) in cases {
        let msg = message(prefs.clone());
        let (out, skipped) = route(&router, &event(&msg, Some(2)));
        assert_eq!(
            out.iter()
                .map(|r| r.destination.as_str())
                .collect::<Vec<_>>(),
            sent,
            "{prefs}"
        );
        // A destination whose filters did not match is not reported as skipped for consent.
        let want: Vec<(String, &str)> = skipped_ids
            .iter()
            .map(|d| (d.to_string(), "consent"))
            .collect();
        assert_eq!(skipped, want, "{prefs}");
    }
    let no_context = json!({"type": "track", "event": "X"});
    let (out, skipped) = route(&router, &event(&no_context, Some(2)));
    assert_eq!(out.len(), 1);
    assert_eq!(skipped.len(), 2);
}

#[test]
fn paused_destinations_still_get_records_and_others_are_left_out() {
    let router = Router::new(vec![
        dest("paused", json!({"paused": true})),
        dest("off", json!({"forward_events": false})),
    ]);
    assert!(router.forwards_events() && !router.is_empty());
    let msg = message(json!({}));
    let (out, _) = route(&router, &event(&msg, Some(1)));
    assert_eq!(
        out.iter()
            .map(|r| r.destination.as_str())
            .collect::<Vec<_>>(),
        vec!["paused"]
    );
    let quiet = Router::new(vec![dest("off", json!({"forward_events": false}))]);
    assert!(!quiet.forwards_events() && !quiet.is_empty());
    assert!(Router::new(vec![]).is_empty());
    assert!(route(&quiet, &event(&msg, Some(1))).0.is_empty());
}

#[test]
fn mappings_render_over_the_message_and_the_profile() {
    let mapping = json!({
        "email": "{{ profile.traits.email }}", "user": "{{ profile.userId }}", "id": "{{ profile.id }}",
        "total": "{{ properties.total }}", "line": "{{ event }}: {{ properties.total }} {{ properties.currency }}",
    });
    let router = Router::new(vec![
        dest("m", json!({"mapping": mapping})),
        dest("plain", json!({})),
    ]);
    let msg = message(json!({}));
    let (out, _) = route(&router, &event(&msg, Some(1)));
    assert_eq!(
        payload(&out[0]),
        json!({"email": "a@example.com", "user": "u1", "id": "prf_1", "total": 150, "line": "Order Completed: 150 EUR"})
    );
    assert_eq!(payload(&out[1])["messageId"], "m-1");
    let (out, _) = route(&router, &event(&msg, None));
    assert_eq!(
        payload(&out[0]),
        json!({"email": null, "user": null, "id": null, "total": 150, "line": "Order Completed: 150 EUR"})
    );
}

fn change(entered: bool, profile: i64) -> AudienceView<'static> {
    AudienceView {
        audience: "aud_vip",
        name: "VIPs",
        profile,
        entered,
        at: 1_714_566_600_123,
        position: 77,
        reason: "event",
    }
}

#[test]
fn audience_changes_become_track_messages() {
    let router = Router::new(vec![
        dest("s1", json!({"sync_audiences": ["aud_vip", "aud_vip"]})),
        dest("s2", json!({"sync_audiences": ["aud_other"]})),
        dest("fwd", json!({})),
    ]);
    let mut out = Vec::new();
    router.route_audience(&change(true, 1), &Profiles, &mut out, &mut Vec::new());
    router.route_audience(&change(false, 2), &Profiles, &mut out, &mut Vec::new());
    assert_eq!(out.len(), 2);
    let (a, b) = (&out[0], &out[1]);
    assert_eq!(a.key, "s1:a:aud_vip:1:in:1714566600123");
    assert_eq!(
        (a.kind, a.position, a.profile, a.at),
        (RecordKind::AudienceEntered, 77, Some(1), 1_714_566_600_123)
    );
    assert_eq!(
        payload(a),
        json!({
            "type": "track", "event": "Audience Entered", "userId": "u1",
            "properties": {"audience_id": "aud_vip", "audience_name": "VIPs", "profile_id": "prf_1", "reason": "event"},
            "timestamp": "2024-05-01T12:30:00.123Z", "messageId": "s1:a:aud_vip:1:in:1714566600123",
        })
    );
    assert_eq!(b.key, "s1:a:aud_vip:2:out:1714566600123");
    assert_eq!(b.kind, RecordKind::AudienceExited);
    let pb = payload(b);
    assert_eq!(pb["event"], "Audience Exited");
    assert_eq!(pb["anonymousId"], "prf_2");
    assert!(pb.get("userId").is_none());
    let mut none = Vec::new();
    router.route_audience(
        &AudienceView {
            audience: "aud_unknown",
            ..change(true, 1)
        },
        &Profiles,
        &mut none,
        &mut Vec::new(),
    );
    assert!(none.is_empty());
}

#[test]
fn backfills_have_their_own_keys() {
    let router = Router::new(vec![dest("s1", json!({"sync_audiences": ["aud_vip"]}))]);
    let mut out = Vec::new();
    router.backfill(
        "s1",
        "aud_vip",
        "VIPs",
        &[1, 2],
        1_000,
        500,
        &Profiles,
        &mut out,
    );
    router.backfill(
        "nope",
        "aud_vip",
        "VIPs",
        &[1],
        1_000,
        500,
        &Profiles,
        &mut out,
    );
    assert_eq!(
        out.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        vec!["s1:b:aud_vip:1:500", "s1:b:aud_vip:2:500"]
    );
    assert!(out
        .iter()
        .all(|r| r.kind == RecordKind::AudienceEntered && r.position == 500 && r.at == 1_000));
    let p = payload(&out[1]);
    assert_eq!(p["properties"]["reason"], "backfill");
    assert_eq!(p["messageId"], "s1:b:aud_vip:2:500");
    assert_eq!(p["anonymousId"], "prf_2");
    // Distinct from the live entry at the same instant.
    let mut live = Vec::new();
    router.route_audience(
        &AudienceView {
            at: 1_000,
            ..change(true, 1)
        },
        &Profiles,
        &mut live,
        &mut Vec::new(),
    );
    assert_ne!(live[0].key, out[0].key);
}

#[test]
fn journey_records() {
    let router = Router::new(vec![
        dest("j", json!({"consent": ["marketing"]})),
        dest("open", json!({})),
    ]);
    let ctx = json!({"profile": {"id": "prf_1"}, "trigger": message(json!({"marketing": true}))});
    let mut skipped = Vec::new();
    let r = router
        .journey_record(
            "j",
            "jrn:1:step:2",
            1,
            Some(&json!({"to": "{{ profile.id }}", "e": "{{ trigger.event }}"})),
            &ctx,
            9,
            10,
            &mut skipped,
        )
        .unwrap();
    assert_eq!(
        (r.key.as_str(), r.kind, r.profile, r.at, r.position),
        ("jrn:1:step:2", RecordKind::Journey, Some(1), 9, 10)
    );
    assert_eq!(payload(&r), json!({"to": "prf_1", "e": "Order Completed"}));
    let r = router
        .journey_record("open", "k", 1, None, &ctx, 9, 10, &mut skipped)
        .unwrap();
    assert_eq!(payload(&r), ctx);
    assert!(skipped.is_empty());

    let denied = json!({"trigger": message(json!({"marketing": false}))});
    assert!(router
        .journey_record("j", "k", 1, None, &denied, 9, 10, &mut skipped)
        .is_none());
    assert!(router
        .journey_record("missing", "k", 1, None, &ctx, 9, 10, &mut skipped)
        .is_none());
    assert!(router
        .journey_record(
            "open",
            "k",
            1,
            Some(&json!("{{ x")),
            &ctx,
            9,
            10,
            &mut skipped
        )
        .is_none());
    let want: Vec<(String, &str)> = vec![
        ("j".into(), "consent"),
        ("missing".into(), "unknown_destination"),
        ("open".into(), "template"),
    ];
    assert_eq!(skipped, want);
    // Without a trigger message, the profile's consent decides; no answer is not consent.
    let granted = json!({"profile": {"traits": {"consent.marketing": true}}});
    let silent = json!({"profile": {"traits": {}}});
    let journey = |ctx: &Value, skipped: &mut Vec<(String, &'static str)>| {
        router.journey_record("j", "k", 1, None, ctx, 9, 10, skipped)
    };
    assert!(journey(&granted, &mut skipped).is_some());
    assert!(journey(&silent, &mut skipped).is_none());
    // The trigger's own answer wins over the profile's.
    let revoked = json!({"profile": {"traits": {"consent.marketing": true}},
                         "trigger": {"context": {"consent": {"categoryPreferences": {"marketing": false}}}}});
    assert!(journey(&revoked, &mut skipped).is_none());
}

#[test]
fn routing_is_deterministic() {
    let router = Router::new(vec![
        dest("a", json!({"mapping": {"x": "{{ properties }}"}})),
        dest(
            "b",
            json!({"sync_audiences": ["aud_vip"], "forward_events": true}),
        ),
    ]);
    let msg = message(json!({}));
    let once = || {
        let (mut out, _) = route(&router, &event(&msg, Some(1)));
        router.route_audience(&change(true, 1), &Profiles, &mut out, &mut Vec::new());
        out
    };
    assert_eq!(once(), once());
    assert_eq!(router.destinations().len(), 2);
    assert_eq!(event_key("d", 5), "d:e:5");
    assert_eq!(audience_key("d", "a", 3, false, 9), "d:a:a:3:out:9");
}

#[test]
fn batch_bodies() {
    assert_eq!(webhook_body(&[r#"{"a":1}"#]), r#"{"a":1}"#);
    let body = webhook_body(&[r#"{"a":1}"#, r#"{"b":[2]}"#]);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"batch": [{"a": 1}, {"b": [2]}]})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&webhook_body(&[])).unwrap(),
        json!({"batch": []})
    );
    let body = segment_batch_body(&[r#"{"a":1}"#, r#"{"b":2}"#], 1_714_566_600_000);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"batch": [{"a": 1}, {"b": 2}], "sentAt": "2024-05-01T12:30:00.000Z"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&segment_batch_body(&[], 0)).unwrap()["batch"],
        json!([])
    );
}

#[test]
fn batch_idempotency_keys() {
    assert_eq!(batch_idempotency_key(&["d:e:1"]), "d:e:1");
    let k = batch_idempotency_key(&["d:e:1", "d:e:2"]);
    // SHA-256("d:e:1\nd:e:2"), first 16 bytes.
    let full = hex(&Sha256::digest(b"d:e:1\nd:e:2"));
    assert_eq!(k, format!("batch-{}", &full[..32]));
    assert_eq!(k.len(), 6 + 32);
    assert_eq!(k, batch_idempotency_key(&["d:e:1", "d:e:2"]));
    assert_ne!(k, batch_idempotency_key(&["d:e:2", "d:e:1"]));
}

#[test]
fn the_profiles_consent_counts_where_the_event_says_nothing() {
    let router = Router::new(vec![
        dest("mkt", json!({"consent": ["marketing"]})),
        dest("ads", json!({"consent": ["ads"]})),
    ]);
    let silent = json!({"type": "track", "event": "Viewed", "userId": "u1", "messageId": "m"});
    let route = |msg: &Value, profile: Option<i64>| {
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        let ev = EventView {
            position: 7,
            kind: "track",
            name: Some("Viewed"),
            timestamp: 1,
            received_at: 1,
            message: msg,
            profile,
        };
        router.route_event(&ev, &Profiles, &mut out, &mut skipped);
        let mut to: Vec<String> = out.into_iter().map(|r| r.destination).collect();
        to.sort();
        (to, skipped.len())
    };
    // Profile 1 granted marketing and refused ads.
    assert_eq!(route(&silent, Some(1)), (vec!["mkt".to_string()], 1));
    // A profile that never answered consents to nothing; nor does an event without profile.
    assert_eq!(route(&silent, Some(2)), (vec![], 2));
    assert_eq!(route(&silent, None), (vec![], 2));
    // The event's own answer wins over the profile's.
    let refused = message(json!({"marketing": false, "ads": true}));
    assert_eq!(route(&refused, Some(1)), (vec!["ads".to_string()], 1));
    // Audience sync follows the profile's consent.
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let sync = Router::new(vec![dest(
        "sync",
        json!({"consent": ["marketing"], "sync_audiences": ["aud_1"]}),
    )]);
    let change = |profile| AudienceView {
        audience: "aud_1",
        name: "A",
        profile,
        entered: true,
        at: 5,
        position: 3,
        reason: "event",
    };
    sync.route_audience(&change(1), &Profiles, &mut out, &mut skipped);
    sync.route_audience(&change(2), &Profiles, &mut out, &mut skipped);
    assert_eq!(out.len(), 1);
    assert_eq!(skipped, vec![("sync".to_string(), "consent")]);
}
