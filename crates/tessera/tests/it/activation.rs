//! Activation end to end: destinations (webhooks and Segment-format forwarding), the outbox and
//! its delivery workers, retries, dead letters and replays, audience sync and journeys, each
//! against the real `tessera` binary delivering to local [`Receiver`]s that the tests script
//! (fail, throttle, go down, answer slowly).
//!
//! Delivery is asynchronous and the delivery log, dead letters and outbox counts are written
//! with the applier's next commit (every ~250 ms), so tests never assert on timing: they wait
//! for the condition they need with a deadline ([`wait_until`], [`Receiver::wait_for`]), and
//! prove that something did *not* happen by waiting for a later thing that must come after
//! it (a sentinel event on a one-lane destination, a control profile whose timer is due at
//! the same instant). This file holds the helpers; the tests are in `activation/`, by theme.

use crate::support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tessera::minihttp::Response;
use tessera::receiver::{Received, Receiver, Reply};

/// How long delivered or derived state may take to appear before a test gives up. Generous:
/// tests share two cores with each other and with builds.
const PATIENCE: Duration = Duration::from_secs(20);

/// A retry policy that keeps tests quick: backoff from 50 ms, at most 200 ms.
fn fast_retry() -> Value {
    json!({"base_ms": 50, "max_ms": 200})
}

/// Polls `probe` every 20 ms until it gives a value; fails with `what` after `PATIENCE`.
fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A JSON request with the admin token.
fn call(s: &Server, method: &str, path: &str, body: &Value) -> Response {
    s.admin(method, path, &body.to_string())
}

/// Sends one Tracking API call and checks it was accepted.
fn send(s: &Server, key: &str, endpoint: &str, body: Value) {
    let r = s.track(&format!("/v1/{endpoint}"), key, &body.to_string());
    assert_eq!(r.status, 200, "{endpoint} {body}: {}", r.text());
}

/// A track call for `user` with a chosen messageId.
fn track(s: &Server, key: &str, user: &str, event: &str, message_id: &str, props: Value) {
    send(
        s,
        key,
        "track",
        json!({"userId": user, "event": event, "messageId": message_id, "properties": props}),
    );
}

/// Creates a destination (must answer 201) and returns the answer.
fn create_destination(s: &Server, body: Value) -> Value {
    let r = call(s, "POST", "/api/v1/destinations", &body);
    assert_eq!(r.status, 201, "POST destination {body}: {}", r.text());
    r.json()
}

/// Creates a webhook destination to `url`; `extra` adds or replaces top-level settings (and
/// `config` keys, merged into the config). Returns (id, secret).
fn webhook(s: &Server, name: &str, url: &str, extra: Value) -> (String, String) {
    let mut body = json!({"name": name, "type": "webhook", "config": {"url": url}});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            match (k.as_str(), v) {
                ("config", Value::Object(c)) => {
                    for (ck, cv) in c {
                        body["config"][ck] = cv;
                    }
                }
                (_, v) => body[k] = v,
            }
        }
    }
    let d = create_destination(s, body);
    (
        d["id"].as_str().unwrap().to_string(),
        d["secret"].as_str().unwrap().to_string(),
    )
}

/// A destination as the admin API shows it.
fn destination(s: &Server, id: &str) -> Value {
    ok(s, &format!("/api/v1/destinations/{id}"))
}

/// Waits until a destination's `health` satisfies `ready`; returns it.
fn wait_health(s: &Server, id: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/api/v1/destinations/{id}");
    wait_within(s, &path, PATIENCE, |d| ready(&d["health"]))["health"].clone()
}

/// Every page of a listing whose items are under `field`, following `next_cursor`.
fn all_pages(s: &Server, path: &str, field: &str) -> Vec<Value> {
    pages_of(s, path, field, 100)
}

/// Like [`all_pages`], with pages of `limit` items.
fn pages_of(s: &Server, path: &str, field: &str, limit: usize) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = ok(s, &format!("{path}{sep}limit={limit}{cursor}"));
        out.extend(page[field].as_array().expect(field).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={}", enc(c)),
            None => return out,
        }
    }
}

/// A destination's delivery attempts, newest first; only those of one record with `key`.
fn deliveries(s: &Server, id: &str, key: Option<&str>) -> Vec<Value> {
    let q = key.map_or(String::new(), |k| format!("?key={}", enc(k)));
    all_pages(
        s,
        &format!("/api/v1/destinations/{id}/deliveries{q}"),
        "deliveries",
    )
}

/// Waits until `deliveries` (of one record, or all) satisfy `ready`; returns them.
fn wait_deliveries(
    s: &Server,
    id: &str,
    key: Option<&str>,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_until(&format!("deliveries of {id} {key:?}"), || {
        let d = deliveries(s, id, key);
        ready(&d).then_some(d)
    })
}

/// A destination's dead letters, oldest first.
fn dead_letters(s: &Server, id: &str) -> Vec<Value> {
    all_pages(
        s,
        &format!("/api/v1/destinations/{id}/dead-letters"),
        "dead_letters",
    )
}

/// Waits until a destination holds exactly `n` dead letters; returns them.
fn wait_dead_letters(s: &Server, id: &str, n: usize) -> Vec<Value> {
    wait_until(&format!("{n} dead letters on {id}"), || {
        let d = dead_letters(s, id);
        (d.len() == n).then_some(d)
    })
}

/// Waits until `rx` has at least `n` requests and returns them all.
fn arrivals(rx: &Receiver, n: usize) -> Vec<Received> {
    let got = rx.wait_for(n, PATIENCE);
    assert!(
        got.len() >= n,
        "expected {n} requests, the receiver got {}: {:#?}",
        got.len(),
        bodies(&got)
    );
    got
}

/// The JSON bodies of requests, for assertion messages.
fn bodies(rs: &[Received]) -> Vec<Value> {
    rs.iter().map(Received::json).collect()
}

/// The `messageId` of each request's body, in arrival order.
fn message_ids(rs: &[Received]) -> Vec<String> {
    rs.iter()
        .map(|r| {
            r.json()["messageId"]
                .as_str()
                .unwrap_or_else(|| panic!("no messageId in {}", r.json()))
                .to_string()
        })
        .collect()
}

/// The log position an event record's idempotency key (`<dst>:e:<position>`) names.
fn key_position(key: &str) -> i64 {
    let (_, pos) = key
        .rsplit_once(":e:")
        .unwrap_or_else(|| panic!("{key} is not an event record's key"));
    pos.parse().unwrap()
}

/// HMAC-SHA256 (RFC 2104), written here rather than taken from the server so the test checks
/// the signature independently.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a request's `Tessera-Signature` is a valid signature of its raw body by `secret`,
/// made within five minutes of now.
fn signed_by(secret: &str, r: &Received) -> bool {
    let Some(header) = r.header("tessera-signature") else {
        return false;
    };
    let mut t = None;
    let mut macs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("v1", v)) => macs.push(v.to_string()),
            _ => return false,
        }
    }
    let Some(t) = t else { return false };
    let Ok(secs) = t.parse::<i64>() else {
        return false;
    };
    if (now_ms() / 1000 - secs).abs() > 300 {
        return false;
    }
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&r.body);
    let expected = hex(&hmac_sha256(secret.as_bytes(), &signed));
    macs.contains(&expected)
}

/// Milliseconds since the epoch, by the wall clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// ISO-8601 text of an instant in milliseconds since the epoch.
fn iso(ms: i64) -> String {
    tessera_core::time::format_iso8601(ms)
}

/// Milliseconds since the epoch of an ISO-8601 text.
fn ms_of(text: &Value) -> i64 {
    tessera_core::time::parse_iso8601(text.as_str().expect("a time")).expect("an ISO time")
}

/// The id (`prf_…`) of the profile an identifier resolves to.
fn profile_id(s: &Server, ident: &str) -> String {
    ok(s, &profile(ident, ""))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Creates an audience from text and returns its id.
fn audience(s: &Server, name: &str, definition: &str) -> String {
    let r = call(
        s,
        "POST",
        "/api/v1/audiences",
        &json!({"name": name, "definition": definition}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

#[test]
fn the_tests_hmac_matches_rfc_4231() {
    // Test case 2 of RFC 4231, so a signature mismatch is the server's and not this file's.
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

mod audience_sync;
mod consent;
mod crash;
mod dead_letters;
mod errors;
mod journeys;
mod retries;
mod tls;
mod webhooks;
