//! Errors of the activation API: malformed and invalid destinations and journeys (each error
//! naming the offending value with a JSON Pointer), unknown ids, references to things that do
//! not exist, and deletes refused while something else uses what they would remove.

use super::*;

fn post(s: &Server, path: &str, body: &str) -> Response {
    s.admin("POST", path, body)
}

/// A destination body that is valid, for tests to break one field at a time.
fn valid() -> Value {
    json!({"name": "ok", "type": "webhook", "config": {"url": "http://127.0.0.1:9/x"}})
}

#[test]
fn invalid_destinations_are_refused_with_a_pointer() {
    let (_d, s, _key) = fresh("act-err-dst");
    let dst = "/api/v1/destinations";
    expect_error(&post(&s, dst, "{\"name\": "), 400, "invalid_json");
    expect_error(&post(&s, dst, "[1]"), 400, "invalid_json");

    let bad = |change: &dyn Fn(&mut Value), pointer: &str| {
        let mut body = valid();
        change(&mut body);
        let e = expect_error(&call(&s, "POST", dst, &body), 400, "invalid_destination");
        assert_eq!(e["pointer"], pointer, "{body}: {e}");
    };
    bad(&|b| b["colour"] = json!("red"), "/colour");
    bad(&|b| b["config"]["retries"] = json!(3), "/config/retries");
    bad(
        &|b| b["filters"] = json!({"event": ["x"]}),
        "/filters/event",
    );
    bad(
        &|b| b["config"]["url"] = json!("ftp://example.com/x"),
        "/config/url",
    );
    bad(&|b| b["config"]["url"] = json!("http://"), "/config/url");
    bad(&|b| b["type"] = json!("carrier-pigeon"), "/type");
    bad(&|b| b["name"] = json!(""), "/name");
    bad(
        &|b| b["config"]["headers"] = json!({"Idempotency-Key": "x"}),
        "/config/headers/Idempotency-Key",
    );
    bad(
        &|b| b["filters"] = json!({"types": ["tap"]}),
        "/filters/types/0",
    );
    bad(&|b| b["concurrency"] = json!(0), "/concurrency");
    bad(
        &|b| b["retry"] = json!({"window": "forever"}),
        "/retry/window",
    );
    bad(
        &|b| b["config"]["write_key"] = json!("wk"),
        "/config/write_key",
    );

    let mut unknown_aud = valid();
    unknown_aud["sync_audiences"] = json!(["aud_doesnotexist"]);
    expect_error(
        &call(&s, "POST", dst, &unknown_aud),
        400,
        "unknown_audience",
    );
    let mut unknown_aud = valid();
    unknown_aud["filters"] = json!({"audiences": ["aud_doesnotexist"]});
    expect_error(
        &call(&s, "POST", dst, &unknown_aud),
        400,
        "unknown_audience",
    );
    // None of them was created.
    let listed = ok(&s, dst);
    assert_eq!(listed["destinations"], json!([]), "{listed}");

    // An update is checked the same way, and leaves the destination as it was.
    let (id, _) = webhook(&s, "ok", "http://127.0.0.1:9/x", json!({}));
    let mut body = valid();
    body["config"]["url"] = json!("ftp://x");
    let e = expect_error(
        &call(&s, "PUT", &format!("{dst}/{id}"), &body),
        400,
        "invalid_destination",
    );
    assert_eq!(e["pointer"], "/config/url");
    assert_eq!(destination(&s, &id)["version"], 1);
    expect_error(
        &post(&s, &format!("{dst}/{id}/explode"), ""),
        404,
        "not_found",
    );
}

#[test]
fn a_missing_required_field_is_pointed_at_as_journeys_do() {
    // Journeys point a missing required member at the member (`/trigger`); destinations
    // point at the object that lacks it (`""`, the whole document), which names nothing.
    let (_d, s, _key) = fresh("act-err-missing");
    let mut body = valid();
    body.as_object_mut().unwrap().remove("config");
    let r = call(&s, "POST", "/api/v1/destinations", &body);
    let e = expect_error(&r, 400, "invalid_destination");
    let mut no_url = valid();
    no_url["config"].as_object_mut().unwrap().remove("url");
    let r = call(&s, "POST", "/api/v1/destinations", &no_url);
    let e2 = expect_error(&r, 400, "invalid_destination");
    assert_eq!(
        (&e["pointer"], &e2["pointer"]),
        (&json!("/config"), &json!("/config/url")),
        "{e} {e2}"
    );
}

#[test]
fn unknown_ids_answer_404() {
    let (_d, s, _key) = fresh("act-err-404");
    let d = "/api/v1/destinations/dst_nope";
    let body = valid().to_string();
    // A valid journey, so that the answer is about the id and not the body.
    let jbody = json!({"name": "j", "trigger": {"event": "E"},
                       "steps": [{"id": "e", "type": "exit"}]})
    .to_string();
    for (method, path, body) in [
        ("GET", d.to_string(), ""),
        ("PUT", d.to_string(), body.as_str()),
        ("DELETE", d.to_string(), ""),
        ("POST", format!("{d}/pause"), ""),
        ("POST", format!("{d}/resume"), ""),
        ("POST", format!("{d}/rotate-secret"), ""),
        ("GET", format!("{d}/deliveries"), ""),
        ("GET", format!("{d}/dead-letters"), ""),
        ("GET", format!("{d}/dead-letters/x"), ""),
        ("POST", format!("{d}/dead-letters/replay"), ""),
        ("GET", "/api/v1/journeys/jrn_nope".into(), ""),
        ("PUT", "/api/v1/journeys/jrn_nope".into(), jbody.as_str()),
        ("DELETE", "/api/v1/journeys/jrn_nope".into(), ""),
        ("GET", "/api/v1/journeys/jrn_nope/metrics".into(), ""),
        ("GET", "/api/v1/journeys/jrn_nope/versions".into(), ""),
    ] {
        let r = s.admin(method, &path, body);
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        assert_eq!(
            r.json()["code"],
            "not_found",
            "{method} {path}: {}",
            r.text()
        );
    }
    // A known destination, but no such dead letter.
    let (id, _) = webhook(&s, "ok", "http://127.0.0.1:9/x", json!({}));
    let r = s.admin(
        "GET",
        &format!("/api/v1/destinations/{id}/dead-letters/nope"),
        "",
    );
    expect_error(&r, 404, "not_found");
}

/// A journey body: the abandoned cart, sending to `dst`, with `steps` replaced when given.
fn journey(dst: &str, steps: Option<Value>) -> Value {
    json!({
        "name": "Cart",
        "trigger": {"event": "Product Added"},
        "steps": steps.unwrap_or_else(|| json!([
            {"id": "wait", "type": "wait", "duration": "1h"},
            {"id": "send", "type": "send", "destination": dst}
        ]))
    })
}

#[test]
fn invalid_journeys_and_references_are_refused() {
    let (_d, s, _key) = fresh("act-err-jrn");
    let (dst, _) = webhook(&s, "ok", "http://127.0.0.1:9/x", json!({}));
    let jp = "/api/v1/journeys";
    expect_error(&post(&s, jp, "{"), 400, "invalid_json");

    let invalid = |body: Value, pointer: &str| {
        let e = expect_error(&call(&s, "POST", jp, &body), 400, "invalid_journey");
        assert_eq!(e["pointer"], pointer, "{body}: {e}");
    };
    let twice = json!([
        {"id": "a", "type": "wait", "duration": "1h"},
        {"id": "a", "type": "exit"}
    ]);
    invalid(journey(&dst, Some(twice)), "/steps/1/id");
    let dangling = json!([
        {"id": "a", "type": "wait", "duration": "1h", "next": "nowhere"},
        {"id": "b", "type": "exit"}
    ]);
    invalid(journey(&dst, Some(dangling)), "/steps/0/next");
    let mut extra = journey(&dst, None);
    extra["colour"] = json!("red");
    invalid(extra, "/colour");
    let mut no_trigger = journey(&dst, None);
    no_trigger.as_object_mut().unwrap().remove("trigger");
    invalid(no_trigger, "/trigger");
    let mut holdout = journey(&dst, None);
    holdout["holdout_percent"] = json!(101);
    invalid(holdout, "/holdout_percent");
    let bad_timeout = json!([
        {"id": "w", "type": "wait_for", "event": "X", "timeout": "soon"},
        {"id": "e", "type": "exit"}
    ]);
    invalid(journey(&dst, Some(bad_timeout)), "/steps/0/timeout");

    // A send to a destination that does not exist.
    let r = call(&s, "POST", jp, &journey("dst_nope", None));
    expect_error(&r, 400, "unknown_destination");
    assert_eq!(listed(&s, jp, "journeys"), 0);

    // A destination a journey sends to cannot be deleted; once the journey is gone it can.
    let r = call(&s, "POST", jp, &journey(&dst, None));
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json()["id"].as_str().unwrap().to_string();
    let r = s.admin("DELETE", &format!("/api/v1/destinations/{dst}"), "");
    expect_error(&r, 409, "in_use");
    assert_eq!(destination(&s, &dst)["version"], 1);
    // Nor can the journey be pointed at a missing one.
    let r = call(&s, "PUT", &format!("{jp}/{j}"), &journey("dst_nope", None));
    expect_error(&r, 400, "unknown_destination");
    assert_eq!(s.admin("DELETE", &format!("{jp}/{j}"), "").status, 204);
    assert_eq!(s.admin("GET", &format!("{jp}/{j}"), "").status, 404);
    assert_eq!(
        s.admin("DELETE", &format!("/api/v1/destinations/{dst}"), "")
            .status,
        204
    );
    assert_eq!(
        s.admin("GET", &format!("/api/v1/destinations/{dst}"), "")
            .status,
        404
    );
}

/// How many items a listing holds.
fn listed(s: &Server, path: &str, field: &str) -> usize {
    ok(s, path)[field].as_array().unwrap().len()
}

#[test]
fn an_audience_a_destination_syncs_cannot_be_deleted() {
    let (_d, s, _key) = fresh("act-err-aud");
    let aud = audience(&s, "Buyers", "performed \"Order Completed\"");
    let (id, _) = webhook(
        &s,
        "sync",
        "http://127.0.0.1:9/x",
        json!({"sync_audiences": [aud]}),
    );
    let r = s.admin("DELETE", &format!("/api/v1/audiences/{aud}"), "");
    expect_error(&r, 409, "in_use");
    // Nor can the destination be changed to name a missing audience.
    let mut body = valid();
    body["sync_audiences"] = json!([aud, "aud_missing"]);
    let r = call(&s, "PUT", &format!("/api/v1/destinations/{id}"), &body);
    expect_error(&r, 400, "unknown_audience");
    // Once the destination is gone, the audience can go.
    assert_eq!(
        s.admin("DELETE", &format!("/api/v1/destinations/{id}"), "")
            .status,
        204
    );
    assert_eq!(
        s.admin("DELETE", &format!("/api/v1/audiences/{aud}"), "")
            .status,
        204
    );
    assert_eq!(listed(&s, "/api/v1/destinations", "destinations"), 0);
}

#[test]
fn bad_queries_replays_and_missing_credentials_are_refused() {
    let (_d, s, key) = fresh("act-err-misc");
    let (id, _) = webhook(&s, "ok", "http://127.0.0.1:9/x", json!({}));
    let d = format!("/api/v1/destinations/{id}");
    let r = s.admin("GET", &format!("{d}/deliveries?cursor=abc"), "");
    expect_error(&r, 400, "invalid_cursor");
    let r = s.admin("GET", &format!("{d}/dead-letters?cursor=abc"), "");
    expect_error(&r, 400, "invalid_cursor");
    let r = s.admin("GET", &format!("{d}/deliveries?colour=red"), "");
    assert_eq!(r.status, 400, "{}", r.text());
    let replay = format!("{d}/dead-letters/replay");
    expect_error(&s.admin("POST", &replay, "{"), 400, "invalid_json");
    expect_error(
        &s.admin("POST", &replay, r#"{"idz":[]}"#),
        400,
        "invalid_json",
    );
    expect_error(
        &s.admin("POST", &replay, r#"{"kind":"email"}"#),
        400,
        "invalid_field",
    );
    expect_error(
        &s.admin("POST", &replay, r#"{"since":"yesterday"}"#),
        400,
        "invalid_field",
    );
    // The admin API wants the admin token: none, or a source's write key, is refused.
    for auth in [None, Some(basic_auth(&key))] {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        for (method, path) in [
            ("GET", "/api/v1/destinations".to_string()),
            ("GET", d.clone()),
            ("POST", format!("{d}/pause")),
            ("GET", format!("{d}/deliveries")),
            ("POST", replay.clone()),
            ("GET", "/api/v1/journeys".to_string()),
        ] {
            let r = s.request(method, &path, &headers, b"").unwrap();
            assert!(
                r.status == 401 || r.status == 403,
                "{method} {path} with {auth:?}: {} {}",
                r.status,
                r.text()
            );
        }
    }
    assert_eq!(destination(&s, &id)["paused"], false);
}

#[test]
fn a_deleted_destination_sends_nothing_even_after_a_restart() {
    let (dir, mut s, key) = fresh("act-err-deleted");
    let rx = Receiver::start();
    let (id, _) = webhook(&s, "old", &rx.url("/old"), json!({"paused": true}));
    track(&s, &key, "ann", "Clicked", "del-1", json!({}));
    wait_health(&s, &id, |h| h["pending"] == 1);
    assert_eq!(
        s.admin("DELETE", &format!("/api/v1/destinations/{id}"), "")
            .status,
        204
    );
    for path in ["", "/deliveries", "/dead-letters"] {
        let r = s.admin("GET", &format!("/api/v1/destinations/{id}{path}"), "");
        expect_error(&r, 404, "not_found");
    }
    s.kill9();
    let s = Server::start(dir.path());
    // A new destination to the same receiver: once its sentinel arrives, one lane of it has
    // run after the restart, and the deleted one's record has had every chance to leak.
    webhook(&s, "new", &rx.url("/new"), json!({"concurrency": 1}));
    track(&s, &key, "ann", "Clicked", "del-2", json!({}));
    let got = arrivals(&rx, 1);
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/new"], "{:#?}", bodies(&got));
    assert_eq!(message_ids(&got), ["del-2"]);
}
