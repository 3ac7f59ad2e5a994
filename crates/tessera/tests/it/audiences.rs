//! Computed traits and audiences through the HTTP API, as a marketer builds them and as the
//! destinations that consume `Audience Entered` / `Audience Exited` rely on them: real-time
//! entries, backfills, new versions, deletes, previews, errors and permissions, merges,
//! sliding windows that expire with time, restarts, `kill -9` and rebuilds.
//!
//! Memberships are derived from the log by the applier thread, so tests never assert on
//! timing: they poll with a deadline until the expected state appears, or send a sentinel event
//! and wait for it (the applier works in log order, so once the sentinel is visible everything
//! before it is too). This file holds the helpers; the tests are in `audiences/`, by theme.

use crate::support::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tessera::minihttp::Response;

/// How long derived state may take to appear before a test gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `path` until it answers 200 with a body `ready` accepts.
fn wait_for(s: &Server, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait_within(s, path, PATIENCE, ready)
}

/// Polls until `read` gives `expected`; on timeout, fails showing both.
fn wait_equal<T: PartialEq + std::fmt::Debug>(what: &str, expected: &T, read: impl Fn() -> T) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = read();
        if &now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never became as expected\nexpected: {expected:#?}\nfound:    {now:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends one Tracking API call and checks it was accepted.
fn send(s: &Server, key: &str, endpoint: &str, body: Value) {
    let r = s.track(&format!("/v1/{endpoint}"), key, &body.to_string());
    assert_eq!(r.status, 200, "{endpoint} {body}: {}", r.text());
}

/// Sends `n` track calls of `event` for a user (`userId`) with these properties.
fn track_n(s: &Server, key: &str, user: &str, event: &str, props: Value, n: usize) {
    for _ in 0..n {
        send(
            s,
            key,
            "track",
            json!({"userId": user, "event": event, "properties": props}),
        );
    }
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

/// The id (`prf_…`) of the profile an identifier resolves to.
fn profile_id(s: &Server, ident: &str) -> String {
    ok(s, &profile(ident, ""))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A JSON request with the admin token.
fn call(s: &Server, method: &str, path: &str, body: &Value) -> Response {
    s.admin(method, path, &body.to_string())
}

/// Creates a definition (`kind` is `audiences` or `computed-traits`) and returns the answer.
fn create(s: &Server, kind: &str, name: &str, definition: Value) -> Value {
    let body = json!({"name": name, "definition": definition});
    let r = call(s, "POST", &format!("/api/v1/{kind}"), &body);
    assert_eq!(r.status, 201, "POST {kind} {body}: {}", r.text());
    r.json()
}

/// Creates an audience from text and returns its id.
fn audience(s: &Server, name: &str, text: &str) -> String {
    create(s, "audiences", name, json!(text))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Creates a computed trait from text and returns its id.
fn computed(s: &Server, name: &str, text: &str) -> String {
    create(s, "computed-traits", name, json!(text))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every member of an audience as (profile id, entered_at), following `next_cursor`.
fn members(s: &Server, audience: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = ok(
            s,
            &format!("/api/v1/audiences/{audience}/members?limit=1000{cursor}"),
        );
        for m in page["members"].as_array().unwrap() {
            out.push((
                m["profile_id"].as_str().unwrap().to_string(),
                m["entered_at"].as_str().unwrap().to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// The profile ids of an audience's members, in order.
fn member_ids(s: &Server, audience: &str) -> Vec<String> {
    members(s, audience).into_iter().map(|(p, _)| p).collect()
}

/// Every entry and exit of a listing (`/api/v1/audiences/{id}/events` or
/// `/api/v1/audience-events`, with or without a query), following `next_cursor`.
fn audience_events(s: &Server, path: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = ok(s, &format!("{path}{sep}limit=1000{cursor}"));
        out.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// The entries and exits of one audience.
fn events_of(s: &Server, audience: &str) -> Vec<Value> {
    audience_events(s, &format!("/api/v1/audiences/{audience}/events"))
}

/// An entry or exit in short: (`in` or `out`, profile id, reason).
fn brief(e: &Value) -> (String, String, String) {
    let dir = match e["event"].as_str() {
        Some("Audience Entered") => "in",
        Some("Audience Exited") => "out",
        other => panic!("not an audience event: {other:?} in {e}"),
    };
    (
        dir.to_string(),
        e["properties"]["profile_id"].as_str().unwrap().to_string(),
        e["properties"]["reason"].as_str().unwrap().to_string(),
    )
}

/// The short form of every entry and exit of one audience, in order.
fn briefs(s: &Server, audience: &str) -> Vec<(String, String, String)> {
    events_of(s, audience).iter().map(brief).collect()
}

/// `(dir, profile, reason)` as owned strings, for comparing with [`brief`].
fn b(dir: &str, profile: &str, reason: &str) -> (String, String, String) {
    (dir.to_string(), profile.to_string(), reason.to_string())
}

/// The names of the audiences a profile is in, sorted.
fn audience_names(s: &Server, ident: &str) -> Vec<String> {
    let mut names: Vec<String> = ok(s, &profile(ident, "/audiences"))["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// A profile's computed traits (`{name: value}`).
fn computed_traits(s: &Server, ident: &str) -> Value {
    ok(s, &profile(ident, "/traits?class=computed"))["traits"].clone()
}

/// Milliseconds since the epoch, by the wall clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

mod durability;
mod errors;
mod flow;
mod merges;
mod time;
