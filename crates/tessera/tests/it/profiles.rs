//! Identity resolution and the Profile API as a CDP user relies on them: cross-device merges,
//! Segment's default limits and blocked values, last-write-wins traits with their history,
//! aliases, accounts, explain, split, identity rules, and profiles that come back unchanged
//! after a restart, a `kill -9` mid-load and a `tessera replay`.
//!
//! Profiles are derived from the log by an applier thread, so tests never assert on timing:
//! they poll until the expected state appears, or send a sentinel event and wait for it (the
//! applier works in log order, so once the sentinel is visible everything before it is too).

use crate::support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera::minihttp::Conn;
use tessera_store::ProfileDb;

/// How long derived state may take to appear before a test gives up.
const PATIENCE: Duration = Duration::from_secs(5);

/// Percent-encodes a path segment (`email:ann@x.com` → `email%3Aann%40x.com`).
fn enc(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path of a profile (`type:value` or `prf_…`) or of one of its sub-resources.
fn profile(ident: &str, rest: &str) -> String {
    format!("/v1/profiles/{}{rest}", enc(ident))
}

/// A GET with the admin token that must answer 200.
fn ok(s: &Server, path: &str) -> Value {
    let r = s.admin("GET", path, "");
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

/// Polls `path` until it answers 200 with a body `ready` accepts, and returns that body.
fn wait_for(s: &Server, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = s.admin("GET", path, "");
        if r.status == 200 && ready(&r.json()) {
            return r.json();
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} never became ready; last answer {}: {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_profile(s: &Server, ident: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait_for(s, &profile(ident, ""), ready)
}

/// Sends one Tracking API call and checks it was accepted.
fn send(s: &Server, key: &str, endpoint: &str, body: Value) {
    let r = s.track(&format!("/v1/{endpoint}"), key, &body.to_string());
    assert_eq!(r.status, 200, "{endpoint} {body}: {}", r.text());
}

/// Sends events in one `/v1/batch` call.
fn send_batch(s: &Server, key: &str, events: Vec<Value>) {
    let r = s.track("/v1/batch", key, &json!({ "batch": events }).to_string());
    assert_eq!(r.status, 200, "batch: {}", r.text());
}

/// Waits until everything sent so far is applied and committed: sends a sentinel identify and
/// waits for its event to show on its profile's timeline.
fn sync(s: &Server, key: &str) {
    static N: AtomicU32 = AtomicU32::new(0);
    let user = format!("sync-{}", N.fetch_add(1, Ordering::Relaxed));
    send(s, key, "identify", json!({ "userId": user }));
    wait_for(s, &profile(&format!("user_id:{user}"), "/events"), |b| {
        b["events"].as_array().is_some_and(|e| e.len() == 1)
    });
}

/// A profile's identifiers as `type:value`, in the order the API gives them.
fn idents(p: &Value) -> Vec<String> {
    p["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["type"].as_str().unwrap(),
                i["value"].as_str().unwrap()
            )
        })
        .collect()
}

/// The messageIds of a profile's events, newest first (one page of up to 1000).
fn message_ids(s: &Server, ident: &str) -> Vec<String> {
    ok(s, &profile(ident, "/events?limit=1000"))["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_string())
        .collect()
}

/// The id of the source with this write key.
fn source_id(s: &Server, key: &str) -> String {
    let list = ok(s, "/api/v1/sources");
    list["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|src| src["write_key"] == key)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Traffic full of merges, in one batch: for each person `{tag}-u{i}`, an anonymous page view
/// on two devices (`{tag}-a{i}`, `{tag}-b{i}`), an identify without an anonymous id (a
/// profile of its own), an identify that merges device a in, an alias that merges device b in,
/// an order, and for every fourth person a `group` call. Returns the user ids.
fn merge_traffic(s: &Server, key: &str, tag: &str, people: usize) -> Vec<String> {
    let mut events = Vec::new();
    let mut users = Vec::new();
    let plans = ["free", "pro"];
    for i in 0..people {
        let (u, a, b) = (
            format!("{tag}-u{i}"),
            format!("{tag}-a{i}"),
            format!("{tag}-b{i}"),
        );
        events.push(json!({"type": "page", "anonymousId": a, "name": "Home"}));
        events.push(json!({"type": "identify", "userId": u,
            "traits": {"email": format!("{tag}{i}@x.com"), "plan": plans[i % 2]}}));
        events.push(json!({"type": "page", "anonymousId": b, "name": "Pricing"}));
        events.push(json!({"type": "identify", "userId": u, "anonymousId": a,
            "traits": {"seats": i}}));
        events.push(json!({"type": "alias", "previousId": b, "userId": u}));
        events.push(
            json!({"type": "track", "userId": u, "event": "Order Completed",
            "properties": {"total": i}}),
        );
        if i % 4 == 0 {
            events.push(
                json!({"type": "group", "userId": u, "groupId": format!("{tag}-g{}", i % 8),
                "traits": {"name": format!("Company {}", i % 8)}}),
            );
        }
        users.push(u);
    }
    send_batch(s, key, events);
    users
}

#[test]
fn cross_device_browsing_ends_on_one_profile_with_every_event() {
    let (_d, s, key) = fresh("xdevice");
    let calls = [
        (
            "page",
            json!({"anonymousId": "dev-a", "name": "Home", "messageId": "m1"}),
        ),
        (
            "page",
            json!({"anonymousId": "dev-a", "name": "Pricing", "messageId": "m2"}),
        ),
        (
            "identify",
            json!({"userId": "ann", "anonymousId": "dev-a", "traits": {"email": "Ann@X.com"},
                   "messageId": "m3"}),
        ),
        (
            "page",
            json!({"anonymousId": "dev-b", "name": "Home", "messageId": "m4"}),
        ),
        (
            "track",
            json!({"anonymousId": "dev-b", "event": "Cart Viewed", "messageId": "m5"}),
        ),
        (
            "identify",
            json!({"userId": "ann", "anonymousId": "dev-b", "messageId": "m6"}),
        ),
    ];
    for (endpoint, body) in &calls {
        send(&s, &key, endpoint, body.clone());
    }
    let p = wait_for_profile(&s, "anonymous_id:dev-b", |p| {
        idents(p).contains(&"user_id:ann".to_string())
    });
    assert_eq!(
        idents(&p),
        [
            "anonymous_id:dev-a",
            "anonymous_id:dev-b",
            "email:ann@x.com",
            "user_id:ann"
        ],
        "{p}"
    );
    assert_eq!(p["merged_profiles"], 1, "{p}");
    assert_eq!(p["traits"], json!({"email": "Ann@X.com"}));
    let id = p["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("prf_"), "{id}");
    // Every identifier (emails normalised to lower case), and the id, address the same profile.
    for ident in [
        "user_id:ann",
        "anonymous_id:dev-a",
        "email:ann@x.com",
        "email:ANN@x.com",
        id.as_str(),
    ] {
        assert_eq!(ok(&s, &profile(ident, "")), p, "{ident}");
    }

    // All six events, newest first, including those of the absorbed device-b profile.
    let all = wait_for(&s, &profile("user_id:ann", "/events?limit=100"), |b| {
        b["events"].as_array().unwrap().len() == 6
    });
    assert_eq!(all["next_cursor"], Value::Null);
    let all = all["events"].as_array().unwrap().clone();
    let ids: Vec<&str> = all
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m6", "m5", "m4", "m3", "m2", "m1"]);
    assert!(all.iter().all(|e| e["sourceId"].is_string()));

    // Paging two at a time covers every event exactly once, in the same order.
    let mut paged: Vec<Value> = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let page = ok(
            &s,
            &profile("user_id:ann", &format!("/events?limit=2{cursor}")),
        );
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 2, "{page}");
        paged.extend(events.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, all, "paging must give every event once");
    let positions: Vec<i64> = all
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]), "{positions:?}");

    // One merge: device b's profile (created by m4) into the survivor, joined by m6.
    let pos = |mid: &str| all.iter().find(|e| e["messageId"] == mid).unwrap()["position"].clone();
    let merges = wait_for(&s, &profile("user_id:ann", "/merges"), |b| {
        b["merges"].as_array().unwrap().len() == 1
    });
    let m = &merges["merges"][0];
    assert_eq!(m["survivor"], id.as_str());
    assert_eq!(m["absorbed"], json!([format!("prf_{}", pos("m4"))]));
    assert_eq!(m["position"], pos("m6"));
    let joined_by = m["identifiers"].as_array().unwrap();
    assert!(
        joined_by.contains(&json!({"type": "user_id", "value": "ann"})),
        "{m}"
    );
    assert!(
        joined_by.contains(&json!({"type": "anonymous_id", "value": "dev-b"})),
        "{m}"
    );
    // The absorbed profile's id still answers, as the profile that absorbed it.
    let absorbed = m["absorbed"][0].as_str().unwrap();
    assert_eq!(ok(&s, &profile(absorbed, ""))["id"], id.as_str());
}

#[test]
fn profile_addresses_and_errors() {
    let (_d, s, key) = fresh("profaddr");
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "zoe", "traits": {"email": "zoe@x.com"}}),
    );
    let p = wait_for_profile(&s, "user_id:zoe", |_| true);

    let unknown = s.admin("GET", &profile("user_id:nobody", ""), "");
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert_eq!(unknown.json()["code"], "not_found");
    assert!(unknown.json()["message"].is_string());
    assert_eq!(s.admin("GET", "/v1/profiles/prf_999999", "").status, 404);
    assert_eq!(
        s.admin("GET", &profile("user_id:nobody", "/events"), "")
            .status,
        404
    );
    for malformed in ["zoe", "prf_", "prf_abc"] {
        let r = s.admin("GET", &profile(malformed, ""), "");
        assert_eq!(r.status, 400, "{malformed}: {}", r.text());
        assert_eq!(r.json()["code"], "invalid_identifier", "{malformed}");
    }
    let path = profile("user_id:zoe", "");
    let r = s.get(&path, &[]).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.json()["code"].is_string());
    let r = s
        .get(&path, &[("Authorization", "Bearer not-a-token")])
        .unwrap();
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (401, json!("invalid_token"))
    );
    // A write key is not a read credential.
    let r = s
        .get(&path, &[("Authorization", &format!("Bearer {key}"))])
        .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());

    let r = s.admin("GET", &profile("user_id:zoe", "/nonsense"), "");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s.admin("GET", &profile("user_id:zoe", "/events?cursor=abc"), "");
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, json!("invalid_value"))
    );
    let r = s.admin("GET", &profile("user_id:zoe", "/explain"), "");
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, json!("missing_field"))
    );
    let r = s.admin("GET", "/v1/accounts/email%3Azoe%40x.com", "");
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, json!("invalid_identifier"))
    );
    assert_eq!(
        s.admin("GET", "/v1/accounts/group_id%3Anone", "").status,
        404
    );
    assert_eq!(s.admin("GET", "/v1/accounts/acc_999999", "").status, 404);

    let ids = ok(&s, &profile("user_id:zoe", "/identifiers"));
    assert_eq!(ids["id"], p["id"]);
    let list = ids["identifiers"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{ids}");
    for i in list {
        for field in ["type", "value", "first_seen", "last_seen", "first_profile"] {
            assert!(i[field].is_string(), "{field} in {i}");
        }
        assert!(i["added_by_position"].is_i64(), "{i}");
    }
    for field in ["created_at", "updated_at"] {
        assert!(p[field].as_str().unwrap().ends_with('Z'), "{p}");
    }
    assert_eq!(p["accounts"], json!([]));
}

#[test]
fn a_new_user_id_with_a_known_email_gets_a_new_profile() {
    let (_d, s, key) = fresh("newuser");
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "u-old", "traits": {"email": "shared@x.com", "name": "Old"}}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "u-new", "traits": {"email": "Shared@X.com"}}),
    );
    sync(&s, &key);
    let old = ok(&s, &profile("user_id:u-old", ""));
    let new = ok(&s, &profile("user_id:u-new", ""));
    assert_ne!(
        old["id"], new["id"],
        "one user id per profile (Segment's default)"
    );
    assert_eq!(idents(&old), ["email:shared@x.com", "user_id:u-old"]);
    assert_eq!(
        idents(&new),
        ["user_id:u-new"],
        "the email stays with the profile that had it"
    );
    assert_eq!(ok(&s, &profile("email:shared@x.com", ""))["id"], old["id"]);
    assert_eq!(old["merged_profiles"], 0);
    assert_eq!(new["merged_profiles"], 0);
    assert_eq!(old["traits"]["name"], "Old");
}

#[test]
fn blocked_identifier_values_never_join_profiles() {
    let (_d, s, key) = fresh("blocked");
    let calls = [
        json!({"type": "identify", "userId": "b-u1", "anonymousId": "anonymous"}),
        json!({"type": "identify", "userId": "b-u2", "anonymousId": "anonymous"}),
        json!({"type": "track", "userId": "null", "anonymousId": "b-a1", "event": "E"}),
        json!({"type": "track", "userId": "null", "anonymousId": "b-a2", "event": "E"}),
        json!({"type": "track", "userId": "NULL", "anonymousId": "b-a3", "event": "E"}),
        json!({"type": "identify", "userId": "b-u3", "traits": {"email": ""}}),
        json!({"type": "identify", "userId": "b-u4", "traits": {"email": ""}}),
        json!({"type": "identify", "userId": "b-u5", "traits": {"email": "   "}}),
        json!({"type": "page", "anonymousId": "anonymous", "name": "Nobody's"}),
    ];
    for c in &calls {
        let endpoint = c["type"].as_str().unwrap().to_string();
        send(&s, &key, &endpoint, c.clone());
    }
    sync(&s, &key);
    let profiles: Vec<Value> = [
        "user_id:b-u1",
        "user_id:b-u2",
        "anonymous_id:b-a1",
        "anonymous_id:b-a2",
        "anonymous_id:b-a3",
        "user_id:b-u3",
        "user_id:b-u4",
        "user_id:b-u5",
    ]
    .iter()
    .map(|i| ok(&s, &profile(i, "")))
    .collect();
    let mut ids: Vec<&str> = profiles.iter().map(|p| p["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "blocked values joined profiles: {profiles:?}");
    for p in &profiles {
        assert_eq!(idents(p).len(), 1, "only the real identifier is kept: {p}");
    }
    for blocked in [
        "anonymous_id:anonymous",
        "user_id:null",
        "user_id:NULL",
        "email:",
    ] {
        let r = s.admin("GET", &profile(blocked, ""), "");
        assert_eq!(r.status, 404, "{blocked}: {}", r.text());
    }
    // The anonymous-only page view made no profile, and the blocked ids' events stay with the
    // profiles of the real identifiers only.
    assert_eq!(message_ids(&s, "user_id:b-u1").len(), 1);
    assert_eq!(message_ids(&s, "anonymous_id:b-a1").len(), 1);
}

#[test]
fn traits_are_last_write_wins_by_event_time_with_history() {
    let (_d, s, key) = fresh("traits");
    let src = source_id(&s, &key);
    let newer = "2024-05-02T10:00:00.000Z";
    let older = "2024-05-01T10:00:00.000Z";
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "tw", "traits": {"plan": "pro", "seats": 5}, "timestamp": newer}),
    );
    // An older value arriving late (a backfill, an offline device) does not win.
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "tw", "traits": {"plan": "free"}, "timestamp": older}),
    );
    sync(&s, &key);
    let t = ok(&s, &profile("user_id:tw", "/traits"));
    assert_eq!(t["traits"], json!({"plan": "pro", "seats": 5}), "{t}");
    assert_eq!(ok(&s, &profile("user_id:tw", ""))["traits"], t["traits"]);
    let v = ok(&s, &profile("user_id:tw", "/traits?verbose=true"));
    assert_eq!(
        v["traits"]["plan"],
        json!({"value": "pro", "source": src, "updated_at": newer}),
        "{v}"
    );
    assert_eq!(
        ok(&s, &profile("user_id:tw", "?verbose=true"))["traits"],
        v["traits"]
    );

    // The history holds both values of `plan`, each with its own time.
    let h = ok(&s, &profile("user_id:tw", "/history"));
    let plans: Vec<(Value, Value)> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trait"] == "plan")
        .map(|r| (r["value"].clone(), r["timestamp"].clone()))
        .collect();
    assert_eq!(plans.len(), 2, "{h}");
    assert!(plans.contains(&(json!("pro"), json!(newer))), "{h}");
    assert!(plans.contains(&(json!("free"), json!(older))), "{h}");
    assert!(h["history"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["source"] == src.as_str()));

    // As of a time between the two writes, the older value was the truth.
    let between = "2024-05-01T12:00:00Z";
    let a = ok(
        &s,
        &profile("user_id:tw", &format!("/traits?as_of={between}")),
    );
    assert_eq!(a["traits"], json!({"plan": "free"}), "{a}");
    assert_eq!(a["as_of"], "2024-05-01T12:00:00.000Z");
    let between_ms = 1_714_564_800_000i64; // 2024-05-01T12:00:00Z
    let a_ms = ok(
        &s,
        &profile("user_id:tw", &format!("/traits?as_of={between_ms}")),
    );
    assert_eq!(a_ms["traits"], a["traits"]);
    let av = ok(
        &s,
        &profile(
            "user_id:tw",
            &format!("/traits?as_of={between}&verbose=true"),
        ),
    );
    assert_eq!(
        av["traits"]["plan"],
        json!({"value": "free", "source": src, "updated_at": older})
    );
    let before = ok(
        &s,
        &profile("user_id:tw", "/traits?as_of=2024-04-30T00:00:00Z"),
    );
    assert_eq!(before["traits"], json!({}));
    let after = ok(
        &s,
        &profile("user_id:tw", "/traits?as_of=2024-05-03T00:00:00Z"),
    );
    assert_eq!(after["traits"], t["traits"]);
    let r = s.admin("GET", &profile("user_id:tw", "/traits?as_of=yesterday"), "");
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, json!("invalid_value"))
    );

    // A newer write from another source wins and names that source.
    let crm = s.source("crm");
    let crm_id = source_id(&s, &crm);
    send(
        &s,
        &crm,
        "identify",
        json!({"userId": "tw", "traits": {"plan": "enterprise"}, "timestamp": "2024-05-03T10:00:00.000Z"}),
    );
    sync(&s, &key);
    let v = ok(&s, &profile("user_id:tw", "/traits?verbose=true"));
    assert_eq!(
        v["traits"]["plan"],
        json!({"value": "enterprise", "source": crm_id, "updated_at": "2024-05-03T10:00:00.000Z"})
    );
    assert_eq!(
        v["traits"]["seats"],
        json!({"value": 5, "source": src, "updated_at": newer})
    );
}

#[test]
fn alias_joins_the_anonymous_visitor_to_the_user() {
    let (_d, s, key) = fresh("alias");
    send(
        &s,
        &key,
        "page",
        json!({"anonymousId": "al-anon", "name": "Landing", "messageId": "al1"}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "al-user", "traits": {"email": "al@x.com"}, "messageId": "al2"}),
    );
    sync(&s, &key);
    assert_ne!(
        ok(&s, &profile("anonymous_id:al-anon", ""))["id"],
        ok(&s, &profile("user_id:al-user", ""))["id"]
    );
    send(
        &s,
        &key,
        "alias",
        json!({"previousId": "al-anon", "userId": "al-user", "messageId": "al3"}),
    );
    let p = wait_for_profile(&s, "anonymous_id:al-anon", |p| {
        idents(p).contains(&"user_id:al-user".to_string())
    });
    assert_eq!(
        idents(&p),
        ["anonymous_id:al-anon", "email:al@x.com", "user_id:al-user"]
    );
    assert_eq!(p["merged_profiles"], 1);
    assert_eq!(ok(&s, &profile("user_id:al-user", "")), p);
    sync(&s, &key);
    assert_eq!(message_ids(&s, "user_id:al-user"), ["al3", "al2", "al1"]);
}

#[test]
fn group_calls_make_accounts_with_traits_and_members() {
    let (_d, s, key) = fresh("group");
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "g1", "traits": {"email": "g1@acme.com"}}),
    );
    send(
        &s,
        &key,
        "group",
        json!({"userId": "g1", "groupId": "acme", "traits": {"name": "Acme Inc", "plan": "enterprise"}}),
    );
    send(
        &s,
        &key,
        "group",
        json!({"userId": "g2", "groupId": "acme", "traits": {"employees": 120}}),
    );
    sync(&s, &key);
    let acc = ok(&s, "/v1/accounts/group_id%3Aacme");
    let id = acc["id"].as_str().unwrap();
    assert!(id.starts_with("acc_"), "{acc}");
    assert_eq!(acc["group_id"], "acme");
    assert_eq!(
        acc["traits"],
        json!({"name": "Acme Inc", "plan": "enterprise", "employees": 120})
    );
    let g1 = ok(&s, &profile("user_id:g1", ""));
    let g2 = ok(&s, &profile("user_id:g2", ""));
    let mut members = vec![g1["id"].clone(), g2["id"].clone()];
    members.sort_by_key(|m| m.as_str().unwrap()[4..].parse::<i64>().unwrap());
    assert_eq!(acc["members"], Value::Array(members), "{acc}");
    assert_eq!(acc["member_count"], 2);
    assert_eq!(ok(&s, &format!("/v1/accounts/{id}")), acc);
    assert_eq!(g1["accounts"], json!([id]));
    assert_eq!(g2["accounts"], json!([id]));
    // The account's traits describe the company, not the person.
    assert_eq!(g1["traits"], json!({"email": "g1@acme.com"}));
    assert_eq!(g2["traits"], json!({}));
}

#[test]
fn explain_shows_the_merge_that_joined_two_identifiers() {
    let (_d, s, key) = fresh("explain");
    let calls = [
        ("page", json!({"anonymousId": "ex-a", "messageId": "ex1"})),
        (
            "identify",
            json!({"userId": "ex-u", "anonymousId": "ex-a", "messageId": "ex2"}),
        ),
        ("page", json!({"anonymousId": "ex-b", "messageId": "ex3"})),
        (
            "identify",
            json!({"userId": "ex-u", "anonymousId": "ex-b", "messageId": "ex-merge"}),
        ),
        (
            "page",
            json!({"anonymousId": "ex-other", "messageId": "ex5"}),
        ),
    ];
    for (endpoint, body) in &calls {
        send(&s, &key, endpoint, body.clone());
    }
    sync(&s, &key);
    let p = ok(&s, &profile("user_id:ex-u", ""));
    let b_origin = ok(&s, &profile("anonymous_id:ex-b", "/identifiers"))["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["value"] == "ex-b")
        .unwrap()["first_profile"]
        .clone();
    assert_ne!(b_origin, p["id"], "ex-b first had a profile of its own");

    let e = ok(
        &s,
        &profile(
            "user_id:ex-u",
            &format!("/explain?other={}", enc("anonymous_id:ex-b")),
        ),
    );
    assert_eq!(e["joined"], true, "{e}");
    assert_eq!(e["profile"], p["id"]);
    let steps = e["steps"].as_array().unwrap();
    let merged: Vec<&Value> = steps.iter().filter(|s| s["step"] == "merged").collect();
    assert_eq!(merged.len(), 1, "{e}");
    let m = merged[0];
    assert_eq!(m["survivor"], p["id"]);
    assert_eq!(m["absorbed"], json!([b_origin]));
    assert_eq!(
        m["event"],
        json!({"type": "identify", "messageId": "ex-merge"})
    );
    let by = m["identifiers"].as_array().unwrap();
    assert!(
        by.contains(&json!({"type": "user_id", "value": "ex-u"})),
        "{m}"
    );
    assert!(
        by.contains(&json!({"type": "anonymous_id", "value": "ex-b"})),
        "{m}"
    );
    // The chain also says where each identifier came from, in log order.
    let added: Vec<(Value, Value)> = steps
        .iter()
        .filter(|s| s["step"] == "identifier_added")
        .map(|s| {
            (
                s["identifier"]["value"].clone(),
                s["event"]["messageId"].clone(),
            )
        })
        .collect();
    assert_eq!(
        added,
        [(json!("ex-u"), json!("ex2")), (json!("ex-b"), json!("ex3"))]
    );
    let positions: Vec<i64> = steps
        .iter()
        .map(|s| s["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{e}");
    // The same merge is on the profile's merge list.
    let merges = ok(&s, &profile("user_id:ex-u", "/merges"));
    assert_eq!(merges["merges"].as_array().unwrap().len(), 1, "{merges}");
    assert_eq!(merges["merges"][0]["position"], m["position"]);

    let apart = ok(
        &s,
        &profile(
            "user_id:ex-u",
            &format!("/explain?other={}", enc("anonymous_id:ex-other")),
        ),
    );
    assert_eq!(apart["joined"], false, "{apart}");
    assert_eq!(
        apart["profiles"],
        json!([p["id"], ok(&s, &profile("anonymous_id:ex-other", ""))["id"]])
    );
}

#[test]
fn split_separates_two_people_who_shared_an_email() {
    let (_d, s, key) = fresh("split");
    // Two user ids may share a profile here, so that a shared email can merge them.
    let r = s.admin(
        "PUT",
        "/api/v1/identity",
        r#"{"identifiers": {"user_id": {"limit": 5}}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let calls = [
        json!({"type": "identify", "userId": "mom", "messageId": "s1",
               "traits": {"email": "family@x.com", "name": "Mom"}}),
        json!({"type": "track", "userId": "mom", "event": "Bought Flowers", "messageId": "s2"}),
        json!({"type": "identify", "userId": "kid", "traits": {"name": "Kid"}, "messageId": "s3"}),
        json!({"type": "track", "userId": "kid", "event": "Played Game", "messageId": "s4"}),
        json!({"type": "identify", "userId": "kid", "traits": {"email": "family@x.com"},
               "messageId": "s5"}),
    ];
    for c in &calls {
        let endpoint = c["type"].as_str().unwrap().to_string();
        send(&s, &key, &endpoint, c.clone());
    }
    sync(&s, &key);
    let merged = ok(&s, &profile("user_id:kid", ""));
    assert_eq!(ok(&s, &profile("user_id:mom", ""))["id"], merged["id"]);
    assert_eq!(merged["merged_profiles"], 1);

    let r = s.admin(
        "POST",
        &profile("user_id:kid", "/split"),
        r#"{"type": "email", "value": "family@x.com"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let split = r.json();
    assert_eq!(
        split["blocked"],
        json!({"type": "email", "value": "family@x.com"})
    );
    let mom = ok(&s, &profile("user_id:mom", ""));
    let kid = ok(&s, &profile("user_id:kid", ""));
    assert_ne!(mom["id"], kid["id"]);
    let mut expected = vec![mom["id"].clone(), kid["id"].clone()];
    expected.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    assert_eq!(split["profiles"], Value::Array(expected), "{split}");
    assert_eq!(idents(&mom), ["user_id:mom"]);
    assert_eq!(idents(&kid), ["user_id:kid"]);
    assert_eq!(mom["merged_profiles"], 0);
    assert_eq!(message_ids(&s, "user_id:mom"), ["s2", "s1"]);
    assert_eq!(message_ids(&s, "user_id:kid"), ["s5", "s4", "s3"]);
    assert_eq!(
        ok(&s, &profile("user_id:mom", "/merges"))["merges"],
        json!([])
    );
    assert_eq!(
        s.admin("GET", &profile("email:family@x.com", ""), "")
            .status,
        404
    );
    let rules = ok(&s, "/api/v1/identity");
    assert_eq!(
        rules["blocked_identifiers"],
        json!([{"type": "email", "value": "family@x.com"}])
    );
    assert_eq!(rules["identifiers"]["user_id"]["limit"], 5, "{rules}");
    // Splitting what is not on the profile is refused.
    let r = s.admin(
        "POST",
        &profile("user_id:mom", "/split"),
        r#"{"type": "user_id", "value": "kid"}"#,
    );
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, json!("identifier_not_on_profile"))
    );

    // The split is exactly a rebuild under rules that block the identifier.
    let snapshot = |s: &Server| -> Vec<Value> {
        ["user_id:mom", "user_id:kid"]
            .iter()
            .flat_map(|i| {
                [
                    ok(s, &profile(i, "")),
                    ok(s, &profile(i, "/events?limit=1000")),
                    ok(s, &profile(i, "/history")),
                ]
            })
            .collect()
    };
    let after_split = snapshot(&s);
    let r = s.admin(
        "PUT",
        "/api/v1/identity?rebuild=true",
        r#"{"identifiers": {"user_id": {"limit": 5}},
            "blocked_identifiers": [{"type": "email", "value": "family@x.com"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["rebuilt_in_ms"].is_u64(), "{}", r.text());
    assert_eq!(snapshot(&s), after_split);

    // The blocked email never joins them again.
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "mom", "traits": {"email": "family@x.com"}}),
    );
    sync(&s, &key);
    assert_ne!(
        ok(&s, &profile("user_id:mom", ""))["id"],
        ok(&s, &profile("user_id:kid", ""))["id"]
    );
}

#[test]
fn profiles_survive_a_graceful_restart() {
    let dir = TempDir::new("profrestart");
    let mut s = Server::start(dir.path());
    let key = s.source("test");
    let users = merge_traffic(&s, &key, "r", 12);
    sync(&s, &key);
    let mut snapshot: Vec<(String, Value)> = Vec::new();
    for u in &users {
        let ident = format!("user_id:{u}");
        let p = ok(&s, &profile(&ident, ""));
        assert_eq!(p["merged_profiles"], 2, "{p}");
        for rest in [
            "",
            "/events?limit=1000",
            "/merges",
            "/history?limit=1000",
            "/traits?verbose=true",
            "/identifiers",
        ] {
            let path = profile(&ident, rest);
            snapshot.push((path.clone(), ok(&s, &path)));
        }
    }
    let acc = ok(&s, "/v1/accounts/group_id%3Ar-g0");
    assert!(s.stop().success());

    let s = Server::start(dir.path());
    for (path, before) in &snapshot {
        wait_for(&s, path, |now| now == before);
    }
    assert_eq!(ok(&s, "/v1/accounts/group_id%3Ar-g0"), acc);
    // The restored index keeps resolving new events onto the same profiles.
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "r-u3", "anonymousId": "r-new-device"}),
    );
    let p = wait_for_profile(&s, "anonymous_id:r-new-device", |_| true);
    let (_, r_u3) = snapshot
        .iter()
        .find(|(path, _)| *path == profile("user_id:r-u3", ""))
        .unwrap();
    assert_eq!(p["id"], r_u3["id"], "r-u3's profile");
}

#[test]
fn kill_9_mid_load_keeps_every_acknowledged_identity() {
    const CLIENTS: usize = 2;
    const PEOPLE: usize = 20; // per batch, three events each
    let dir = TempDir::new("profcrash");
    let mut s = Server::start(dir.path());
    let key = s.source("load");
    let auth = basic_auth(&key);
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicUsize::new(0));
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, auth, stop, events, acked) = (
                s.addr.clone(),
                auth.clone(),
                stop.clone(),
                events.clone(),
                acked.clone(),
            );
            std::thread::spawn(move || {
                let Ok(mut conn) = Conn::connect(&addr) else {
                    return;
                };
                for seq in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let people: Vec<(String, String)> = (0..PEOPLE)
                        .map(|i| (format!("k{c}-{seq}-{i}"), format!("ka{c}-{seq}-{i}")))
                        .collect();
                    let mut batch = Vec::new();
                    for (u, a) in &people {
                        batch.push(json!({"type": "page", "anonymousId": a}));
                        batch.push(json!({"type": "identify", "userId": u,
                            "traits": {"email": format!("{u}@x.com")}}));
                        batch.push(json!({"type": "identify", "userId": u, "anonymousId": a}));
                    }
                    let body = json!({ "batch": batch }).to_string();
                    match conn.send(
                        "POST",
                        "/v1/batch",
                        &[("Authorization", &auth)],
                        body.as_bytes(),
                    ) {
                        Ok(r) if r.status == 200 => {
                            acked.lock().unwrap().extend(people);
                            events.fetch_add(batch.len(), Ordering::Relaxed);
                        }
                        Ok(r) if r.status == 429 => std::thread::sleep(Duration::from_millis(10)),
                        Ok(r) => panic!("unexpected answer {}: {}", r.status, r.text()),
                        Err(_) => return, // the server died under us
                    }
                }
            })
        })
        .collect();
    // Pull the plug once a few thousand events are in, while the clients keep sending.
    let deadline = Instant::now() + Duration::from_secs(20);
    while events.load(Ordering::Relaxed) < 3_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() * 3 >= 3_000,
        "only {} events acknowledged before the kill",
        acked.len() * 3
    );

    let s = Server::start(dir.path());
    let mut conn = Conn::connect(&s.addr).unwrap();
    let bearer = format!("Bearer {ADMIN}");
    let mut lookup = |ident: &str| -> Option<String> {
        let r = conn
            .send(
                "GET",
                &profile(ident, ""),
                &[("Authorization", &bearer)],
                b"",
            )
            .unwrap();
        (r.status == 200).then(|| r.json()["id"].as_str().unwrap().to_string())
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    for (u, a) in &acked {
        loop {
            let by_user = lookup(&format!("user_id:{u}"));
            if by_user.is_some() && by_user == lookup(&format!("anonymous_id:{a}")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "acknowledged identify of {u} (device {a}) does not resolve to one profile after restart: {by_user:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    eprintln!(
        "profile crash test: {} acknowledged people all resolve after kill -9 and restart",
        acked.len()
    );
}

/// Runs `tessera replay` on a data directory: (success, stdout, stderr).
fn replay(data_dir: &Path, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["replay", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("TESSERA_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a workspace's state file holds: its log position, the live profiles' documents
/// (`SELECT key, doc FROM profiles ORDER BY key`), the absorbed profiles and the accounts.
type StateFile = (i64, Vec<(i64, String)>, Vec<(i64, i64)>, Vec<(i64, String)>);

/// The newest complete state file of the default workspace in `dir`.
fn state_file(dir: &Path) -> StateFile {
    let db = ProfileDb::open_latest(dir, "default").unwrap();
    let docs = db.profile_docs().unwrap();
    let stored = db.load().unwrap();
    assert_eq!(docs, stored.profiles);
    (stored.position, docs, stored.absorbed, stored.accounts)
}

#[test]
fn replay_is_deterministic_and_equals_the_live_state() {
    let dir = TempDir::new("replay");
    let mut s = Server::start(dir.path());
    let key = s.source("test");
    let users = merge_traffic(&s, &key, "p", 25);
    // Pairs of people sharing a device, which the user_id limit keeps apart.
    let shared: Vec<Value> = users
        .chunks(2)
        .enumerate()
        .flat_map(|(n, pair)| {
            pair.iter().map(move |u| {
                json!({"type": "track", "userId": u, "anonymousId": format!("p-shared{n}"),
                       "event": "Shared Device Used"})
            })
        })
        .collect();
    send_batch(&s, &key, shared);
    sync(&s, &key);
    let scratch = TempDir::new("replayout");
    let x0 = scratch.path().join("busy.db");
    let (ok_, _, err) = replay(
        dir.path(),
        &["--workspace", "default", "--out", x0.to_str().unwrap()],
    );
    assert!(!ok_, "replay must refuse while the server runs");
    assert!(err.contains("in use"), "{err}");
    assert!(s.stop().success());

    // The live state as the server left it (copied, so that opening it changes nothing).
    let live_dir = scratch.path().join("live");
    std::fs::create_dir_all(&live_dir).unwrap();
    for e in std::fs::read_dir(dir.path().join("profiles")).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("default.") {
            std::fs::copy(e.path(), live_dir.join(e.file_name())).unwrap();
        }
    }
    let live = state_file(&live_dir);

    let mut replays = Vec::new();
    for n in 1..=2 {
        let out_dir = scratch.path().join(format!("x{n}"));
        std::fs::create_dir_all(&out_dir).unwrap();
        let out = out_dir.join("default.1.db");
        let (ok_, stdout, err) = replay(
            dir.path(),
            &["--workspace", "default", "--out", out.to_str().unwrap()],
        );
        assert!(ok_, "{stdout}{err}");
        assert!(stdout.contains("workspace default: replayed"), "{stdout}");
        replays.push(state_file(&out_dir));
    }
    // 25 people and the sentinel of `sync`; two absorbed profiles per person; 2 companies.
    assert_eq!(live.1.len(), 26);
    assert_eq!(live.2.len(), 50);
    assert_eq!(live.3.len(), 2);
    assert!(live.0 > 0);
    assert!(
        replays[0] == replays[1],
        "two replays of the same log differ"
    );
    for (what, l, r) in [
        ("profiles", &live.1, &replays[0].1),
        ("accounts", &live.3, &replays[0].3),
    ] {
        assert!(
            l == r,
            "the replay's {what} differ from the live state: live has {}, replay {}; first difference {:?}",
            l.len(),
            r.len(),
            l.iter().zip(r).find(|(a, b)| a != b)
        );
    }
    assert_eq!(live, replays[0], "position or absorbed profiles differ");
}

#[test]
fn identity_rules_are_validated_and_applied() {
    let (_d, s, key) = fresh("rules");
    let defaults = ok(&s, "/api/v1/identity");
    assert_eq!(defaults["workspace"], "default");
    assert_eq!(defaults["identifiers"]["user_id"]["limit"], 1);
    assert_eq!(defaults["identifiers"]["email"]["limit"], 5);
    let blocked = defaults["blocked_values"].as_array().unwrap();
    for v in ["", "null", "anonymous"] {
        assert!(blocked.contains(&json!(v)), "{defaults}");
    }
    assert_eq!(s.get("/api/v1/identity", &[]).unwrap().status, 401);

    let invalid = [
        (
            r#"{"identifiers": {"email": {"limit": "one"}}}"#,
            "identifiers.email.limit",
        ),
        (
            r#"{"identifiers": {"email": {"colour": 1}}}"#,
            "identifiers.email.colour",
        ),
        (
            r#"{"identifiers": {"group_id": {}}}"#,
            "identifiers.group_id",
        ),
        (
            r#"{"identifiers": {"bad type": {}}}"#,
            "identifiers.bad type",
        ),
        (r#"{"max_merges": -1}"#, "max_merges"),
        (r#"{"blocked_patterns": ["("]}"#, "blocked_patterns[0]"),
        (
            r#"{"blocked_identifiers": [{"type": "email"}]}"#,
            "blocked_identifiers[0]",
        ),
        (r#"{"phone_country_code": "abc"}"#, "phone_country_code"),
        (r#"{"colour": "blue"}"#, "colour"),
    ];
    for (body, field) in invalid {
        let r = s.admin("PUT", "/api/v1/identity", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["code"], "invalid_value", "{body}");
        let message = r.json()["message"].as_str().unwrap().to_string();
        assert!(
            message.contains(&format!("`{field}`")),
            "{body}: message does not name `{field}`: {message}"
        );
    }
    let r = s.admin("PUT", "/api/v1/identity", "{not json");
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, json!("invalid_json"))
    );
    assert_eq!(
        ok(&s, "/api/v1/identity"),
        defaults,
        "rejected rules change nothing"
    );

    let r = s.admin(
        "PUT",
        "/api/v1/identity",
        r#"{"identifiers": {"email": {"limit": 1},
                            "loyalty_id": {"trait": "loyalty.id", "priority": 3}},
            "max_merges": 10}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let rules = ok(&s, "/api/v1/identity");
    assert_eq!(r.json(), rules);
    assert_eq!(rules["identifiers"]["email"]["limit"], 1);
    assert_eq!(
        rules["identifiers"]["loyalty_id"],
        json!({"priority": 3, "limit": 5, "trait": "loyalty.id", "enabled": true})
    );
    assert_eq!(rules["max_merges"], 10);
    // Fields not given keep their defaults.
    assert_eq!(
        rules["identifiers"]["user_id"],
        defaults["identifiers"]["user_id"]
    );
    assert_eq!(rules["blocked_values"], defaults["blocked_values"]);

    // The new rules apply to events from now on.
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "lo", "traits": {"loyalty": {"id": "L-1"}}}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"anonymousId": "e-anon", "traits": {"email": "one@x.com"}}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"anonymousId": "e-anon", "traits": {"email": "two@x.com"}}),
    );
    sync(&s, &key);
    let lo = ok(&s, &profile("loyalty_id:L-1", ""));
    assert_eq!(idents(&lo), ["loyalty_id:L-1", "user_id:lo"]);
    // A second email would break the limit: the visitor keeps the first, and the second
    // (with the lower-priority anonymous id dropped) starts a profile of its own.
    let e = ok(&s, &profile("anonymous_id:e-anon", ""));
    assert_eq!(idents(&e), ["anonymous_id:e-anon", "email:one@x.com"]);
    let two = ok(&s, &profile("email:two@x.com", ""));
    assert_ne!(two["id"], e["id"]);
    assert_eq!(idents(&two), ["email:two@x.com"]);

    // A rebuild under the same rules gives the same profiles.
    let r = s.admin("POST", "/api/v1/identity/rebuild", "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["workspace"], "default");
    assert!(r.json()["rebuilt_in_ms"].is_u64(), "{}", r.text());
    assert_eq!(ok(&s, &profile("loyalty_id:L-1", "")), lo);
    assert_eq!(ok(&s, &profile("anonymous_id:e-anon", "")), e);
    assert_eq!(ok(&s, &profile("email:two@x.com", "")), two);
}

// Reproductions of known server bugs, ignored until they are fixed (see the reasons).

#[test]
fn history_pages_cover_every_trait_change() {
    let (_d, s, key) = fresh("histpages");
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "hp", "traits": {"a": 1, "b": 2, "c": 3}}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "hp", "traits": {"d": 4}}),
    );
    sync(&s, &key);
    let all = ok(&s, &profile("user_id:hp", "/history?limit=100"));
    assert_eq!(all["history"].as_array().unwrap().len(), 4, "{all}");
    let mut paged = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let page = ok(
            &s,
            &profile("user_id:hp", &format!("/history?limit=2{cursor}")),
        );
        paged.extend(page["history"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(Value::Array(paged), all["history"]);
}

#[test]
fn merged_traits_break_timestamp_ties_by_log_order() {
    let (_d, s, key) = fresh("tiemerge");
    let t = "2024-01-01T00:00:00.000Z";
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "tie", "traits": {"plan": "a"}, "timestamp": t}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"anonymousId": "tie-x", "traits": {"plan": "b"}, "timestamp": t}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "tie", "anonymousId": "tie-x", "timestamp": "2024-01-02T00:00:00Z"}),
    );
    sync(&s, &key);
    let now = ok(&s, &profile("user_id:tie", "/traits"));
    let as_of = ok(
        &s,
        &profile("user_id:tie", "/traits?as_of=2024-01-03T00:00:00Z"),
    );
    assert_eq!(now["traits"], as_of["traits"]);
    assert_eq!(
        now["traits"],
        json!({"plan": "b"}),
        "a tie goes to the later event"
    );
}

#[test]
fn split_right_after_a_rules_change_keeps_that_change() {
    let (_d, s, key) = fresh("splitrace");
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "sr", "traits": {"email": "sr@x.com"}}),
    );
    sync(&s, &key);
    let r = s.admin(
        "PUT",
        "/api/v1/identity",
        r#"{"identifiers": {"email": {"limit": 1}}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.admin(
        "POST",
        &profile("user_id:sr", "/split"),
        r#"{"type": "email", "value": "sr@x.com"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let rules = ok(&s, "/api/v1/identity");
    assert_eq!(
        rules["blocked_identifiers"],
        json!([{"type": "email", "value": "sr@x.com"}])
    );
    assert_eq!(
        rules["identifiers"]["email"]["limit"], 1,
        "the split undid the rules change: {rules}"
    );
}
