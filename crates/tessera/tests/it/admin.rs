//! The admin API: sources (create, list, get, rotate, disable, delete), workspaces, tokens and
//! their scoping, error bodies, the OpenAPI document, health and metrics.

use crate::support::*;
use serde_json::{json, Value};

#[test]
fn sources_lifecycle() {
    let (_d, s, _) = fresh("sources");
    let r = s.admin(
        "POST",
        "/api/v1/sources",
        r#"{"name": "iOS app", "write_key": "wk_custom_key_1"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let src = r.json();
    assert_eq!(src["write_key"], "wk_custom_key_1");
    assert_eq!(src["enabled"], true);
    let id = src["id"].as_str().unwrap().to_string();
    let dup = s.admin(
        "POST",
        "/api/v1/sources",
        r#"{"name": "again", "write_key": "wk_custom_key_1"}"#,
    );
    assert_eq!(
        (dup.status, dup.json()["code"].clone()),
        (409, json!("conflict"))
    );

    let list = s.admin("GET", "/api/v1/sources", "").json();
    assert_eq!(list["sources"].as_array().unwrap().len(), 2);
    assert_eq!(
        s.admin("GET", &format!("/api/v1/sources/{id}"), "").json()["name"],
        "iOS app"
    );

    let event = r#"{"userId":"u","event":"E"}"#;
    assert_eq!(s.track("/v1/track", "wk_custom_key_1", event).status, 200);
    let rotated = s
        .admin("POST", &format!("/api/v1/sources/{id}/rotate-key"), "")
        .json();
    let new_key = rotated["write_key"].as_str().unwrap();
    assert_ne!(new_key, "wk_custom_key_1");
    assert_eq!(
        s.track("/v1/track", "wk_custom_key_1", event).status,
        401,
        "the old key stops working"
    );
    assert_eq!(s.track("/v1/track", new_key, event).status, 200);

    let patched = s.admin(
        "PATCH",
        &format!("/api/v1/sources/{id}"),
        r#"{"enabled": false, "name": "iOS"}"#,
    );
    assert_eq!(patched.json()["enabled"], false);
    assert_eq!(s.track("/v1/track", new_key, event).status, 401);
    assert_eq!(
        s.admin("POST", &format!("/api/v1/sources/{id}/enable"), "")
            .status,
        200
    );
    assert_eq!(s.track("/v1/track", new_key, event).status, 200);

    assert_eq!(
        s.admin("DELETE", &format!("/api/v1/sources/{id}"), "")
            .status,
        204
    );
    assert_eq!(
        s.admin("GET", &format!("/api/v1/sources/{id}"), "").status,
        404
    );
    assert_eq!(s.track("/v1/track", new_key, event).status, 401);
    // Its events stay in the log.
    assert_eq!(s.events(&format!("source={id}")).len(), 3);
}

#[test]
fn bad_admin_input_gets_a_clear_error() {
    let (_d, s, _) = fresh("adminbad");
    for (body, code) in [
        ("{", "invalid_json"),
        (r#"{"nme": "typo"}"#, "unknown_field"),
        (r#"{}"#, "missing_field"),
        (r#"{"name": ""}"#, "invalid_value"),
        (r#"{"name": "x", "write_key": "short"}"#, "invalid_value"),
        (r#"{"name": 5}"#, "wrong_type"),
    ] {
        let r = s.admin("POST", "/api/v1/sources", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["code"], code, "{body}: {}", r.text());
    }
    let r = s.admin("GET", "/api/v1/nothing-here", "");
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (404, json!("not_found"))
    );
}

#[test]
fn tokens_are_required_and_scoped_to_their_workspace() {
    let (_d, s, _) = fresh("tokens");
    let r = s.get("/api/v1/sources", &[]).unwrap();
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (401, json!("missing_token"))
    );
    let r = s
        .get("/api/v1/sources", &[("Authorization", "Bearer wrong")])
        .unwrap();
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (401, json!("invalid_token"))
    );

    assert_eq!(
        s.admin(
            "POST",
            "/api/v1/workspaces",
            r#"{"name": "EU shop", "id": "eu"}"#
        )
        .status,
        201
    );
    let created = s.admin(
        "POST",
        "/api/v1/tokens",
        r#"{"name": "eu admin", "workspace_id": "eu", "scopes": ["admin"]}"#,
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let secret = created.json()["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {secret}");
    let auth = [("Authorization", bearer.as_str())];

    // The scoped token sees its own workspace by default...
    let r = s
        .request("POST", "/api/v1/sources", &auth, br#"{"name": "eu web"}"#)
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["workspace_id"], "eu");
    // ...and another workspace does not exist for it.
    let r = s.get("/api/v1/sources?workspace=default", &auth).unwrap();
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (404, json!("not_found"))
    );
    let r = s
        .get(
            "/api/v1/sources",
            &[auth[0], ("Tessera-Workspace", "default")],
        )
        .unwrap();
    assert_eq!(r.status, 404);
    let r = s.get("/api/v1/workspaces", &auth).unwrap().json();
    assert_eq!(r["workspaces"].as_array().unwrap().len(), 1);
    // It may not mint tokens or workspaces.
    let r = s
        .request(
            "POST",
            "/api/v1/tokens",
            &auth,
            br#"{"name": "x", "scopes": ["admin"]}"#,
        )
        .unwrap();
    assert_eq!(r.status, 403);
    // The instance admin sees both workspaces; the listing never shows secrets.
    assert_eq!(
        s.admin("GET", "/api/v1/workspaces", "").json()["workspaces"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(!s
        .admin("GET", "/api/v1/tokens", "")
        .text()
        .contains(&secret));
    // A read token cannot change anything.
    let ro = s
        .admin(
            "POST",
            "/api/v1/tokens",
            r#"{"name": "ro", "scopes": ["read"]}"#,
        )
        .json();
    let ro_auth = format!("Bearer {}", ro["token"].as_str().unwrap());
    let r = s
        .request(
            "POST",
            "/api/v1/sources",
            &[("Authorization", &ro_auth)],
            br#"{"name": "x"}"#,
        )
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        s.get("/api/v1/events", &[("Authorization", &ro_auth)])
            .unwrap()
            .status,
        200
    );
    // Revoked tokens stop working.
    let id = created.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.admin("DELETE", &format!("/api/v1/tokens/{id}"), "")
            .status,
        204
    );
    assert_eq!(s.get("/api/v1/sources", &auth).unwrap().status, 401);
}

#[test]
fn workspaces_isolate_events() {
    let (_d, s, default_key) = fresh("isolation");
    s.admin(
        "POST",
        "/api/v1/workspaces",
        r#"{"name": "Other", "id": "other"}"#,
    );
    let other = s
        .admin(
            "POST",
            "/api/v1/sources?workspace=other",
            r#"{"name": "o"}"#,
        )
        .json();
    let other_key = other["write_key"].as_str().unwrap();
    s.track(
        "/v1/track",
        &default_key,
        r#"{"userId":"u","event":"InDefault","messageId":"same"}"#,
    );
    // The same messageId in another workspace is a different message.
    let r = s.track(
        "/v1/track",
        other_key,
        r#"{"userId":"u","event":"InOther","messageId":"same"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(s.events("").len(), 1);
    let r = s.admin("GET", "/api/v1/events?workspace=other", "").json();
    assert_eq!(r["events"][0]["event"], "InOther");
    assert_eq!(
        s.admin("GET", "/api/v1/events?workspace=nope", "").status,
        404
    );
    assert_eq!(
        s.admin("DELETE", "/api/v1/workspaces/default", "").status,
        409
    );
}

#[test]
fn openapi_health_and_metrics_are_served() {
    let (_d, s, key) = fresh("ops");
    let doc: Value = s.get("/api/v1/openapi.json", &[]).unwrap().json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/batch",
        "/api/v1/sources",
        "/api/v1/events",
        "/api/v1/sources/{id}/{action}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    assert_eq!(s.get("/readyz", &[]).unwrap().status, 200);
    s.track("/v1/track", &key, r#"{"userId":"u","event":"E"}"#);
    s.track("/v1/track", &key, "{oops");
    let m = s.get("/metrics", &[]).unwrap().text();
    assert!(m.contains("tessera_events_accepted_total 1"), "{m}");
    assert!(
        m.contains("tessera_events_rejected_total{reason=\"invalid_json\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("tessera_log_commit_duration_seconds_count"),
        "{m}"
    );
    assert!(
        m.contains("tessera_http_request_duration_seconds_bucket{route=\"tracking\""),
        "{m}"
    );
    assert!(m.contains("tessera_log_bytes"), "{m}");
}
