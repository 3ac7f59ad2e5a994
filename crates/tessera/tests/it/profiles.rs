//! Identity resolution and the Profile API as a CDP user relies on them: cross-device merges,
//! Segment's default limits and blocked values, last-write-wins traits with their history,
//! aliases, accounts, explain, split, identity rules, and profiles that come back unchanged
//! after a restart, a `kill -9` mid-load and a `tessera replay`.
//!
//! Profiles are derived from the log by an applier thread, so tests never assert on timing:
//! they poll until the expected state appears, or send a sentinel event and wait for it (the
//! applier works in log order, so once the sentinel is visible everything before it is too).
//! This file holds the helpers; the tests are in `profiles/`, by theme.

use crate::support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera::minihttp::Conn;
use tessera_store::ProfileDb;

/// How long derived state may take to appear before a test gives up.
const PATIENCE: Duration = Duration::from_secs(5);

/// Polls `path` until it answers 200 with a body `ready` accepts, and returns that body.
fn wait_for(s: &Server, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait_within(s, path, PATIENCE, ready)
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

mod durability;
mod hostile;
mod resolution;
mod rules;
mod traits;
