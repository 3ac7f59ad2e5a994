//! Definitions that cannot be saved and callers that may not save them: syntax errors with
//! their line and column, JSON-form errors with their JSON Pointer, type errors, taken names,
//! cycles, malformed bodies, read-only and other-workspace tokens, bad cursors. Every answer
//! is a `{"code", "message"}` error and none of them stores anything.

use super::*;

#[test]
fn bad_definitions_and_callers_get_json_errors() {
    let (_d, s, key) = fresh("auderrors");
    definitions_are_checked(&s);
    bodies_queries_and_ids_are_checked(&s);
    tokens_limit_what_callers_see_and_do(&s, &key);
}

/// POSTs a create of `kind` with this JSON body.
fn post(s: &Server, kind: &str, body: &Value) -> Response {
    call(s, "POST", &format!("/api/v1/{kind}"), body)
}

/// A create that must fail with `status` and `code`.
fn refused(
    s: &Server,
    kind: &str,
    name: &str,
    definition: Value,
    status: u16,
    code: &str,
) -> Value {
    let r = post(s, kind, &json!({"name": name, "definition": definition}));
    expect_error(&r, status, code)
}

fn definitions_are_checked(s: &Server) {
    // Text that cannot be read: where, and what was expected.
    let e = refused(
        s,
        "audiences",
        "Bad",
        json!("country = and"),
        400,
        "invalid_definition",
    );
    assert_eq!((&e["line"], &e["column"]), (&json!(1), &json!(11)), "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("line 1, column 11: "),
        "{e}"
    );
    let errors = e["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{e}");
    assert_eq!(
        (&errors[0]["code"], &errors[0]["line"], &errors[0]["column"]),
        (&json!("invalid_definition"), &json!(1), &json!(11))
    );
    assert!(errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    let e = refused(
        s,
        "audiences",
        "Bad",
        json!("country = \"DE\"\n  and performed \"X\" at least -1 times"),
        400,
        "invalid_definition",
    );
    assert_eq!((&e["line"], &e["column"]), (&json!(2), &json!(30)), "{e}");
    let e = refused(
        s,
        "computed-traits",
        "bad",
        json!("count revenue of \"Order Completed\""),
        400,
        "invalid_definition",
    );
    assert_eq!((&e["line"], &e["column"]), (&json!(1), &json!(7)), "{e}");
    assert!(e.get("pointer").is_none(), "{e}");

    // The JSON form is accepted and means the same as the text.
    let as_json = json!({"and": [
        {"trait": "country", "op": "=", "value": "DE"},
        {"performed": "Product Viewed",
         "where": {"property": "category", "op": "=", "value": "jeans"},
         "at_least": 3,
         "window": {"amount": 30, "unit": "days"}},
    ]});
    let from_json = create(s, "audiences", "From JSON", as_json);
    let text = "country = \"DE\" and performed \"Product Viewed\" where category = \"jeans\" \
                at least 3 times within 30 days";
    assert_eq!(from_json["definition"], text, "{from_json}");
    let from_text = create(s, "audiences", "From text", json!(text));
    assert_eq!(from_text["definition_json"], from_json["definition_json"]);
    // What GET answers as `definition_json` goes back in as a definition.
    let round = create(
        s,
        "audiences",
        "Round trip",
        from_text["definition_json"].clone(),
    );
    assert_eq!(round["definition"], text);
    let ct = create(
        s,
        "computed-traits",
        "order_total_90d",
        json!({"aggregate": "sum", "property": "total", "event": "Order Completed",
               "window": {"amount": 90, "unit": "day"}}),
    );
    assert_eq!(
        ct["definition"],
        "sum total of \"Order Completed\" within 90 days"
    );

    // JSON-form errors point at the offending value.
    let e = refused(
        s,
        "audiences",
        "Bad",
        json!({"and": [{"trait": "country", "op": "=", "value": "DE"},
                       {"trait": "plan", "op": "==", "value": "pro"}]}),
        400,
        "invalid_definition",
    );
    assert_eq!(e["pointer"], "/and/1/op", "{e}");
    assert!(e.get("line").is_none(), "{e}");
    assert_eq!(e["errors"][0]["pointer"], "/and/1/op", "{e}");
    let e = refused(
        s,
        "audiences",
        "Bad",
        json!({"performed": "Product Viewed", "at_lest": 3}),
        400,
        "invalid_definition",
    );
    assert!(e["pointer"].is_string(), "{e}");
    let e = refused(
        s,
        "computed-traits",
        "bad",
        json!({"aggregate": "count", "property": "total", "event": "Order Completed"}),
        400,
        "invalid_definition",
    );
    assert_eq!(e["pointer"], "/property", "{e}");

    // Definitions that read but make no sense.
    for (kind, definition) in [
        ("audiences", "in audience \"Nobody\""),
        ("audiences", "order_total_90d > \"100\""),
        ("audiences", "order_total_90d contains \"1\""),
        ("audiences", "performed \"Product Viewed\" within 0 days"),
        ("audiences", "plan > true"),
        ("computed-traits", "count \"Order Completed\" within 0 days"),
    ] {
        refused(
            s,
            kind,
            "Bad",
            json!(definition),
            400,
            "definition_type_error",
        );
    }
    // A preview is checked the same way, and says where.
    let r = call(
        s,
        "POST",
        "/api/v1/audiences/preview",
        &json!({"definition": "country = \"DE\" and in audience \"Nobody\""}),
    );
    let e = expect_error(&r, 400, "definition_type_error");
    assert_eq!((&e["line"], &e["column"]), (&json!(1), &json!(20)), "{e}");
    let r = call(
        s,
        "POST",
        "/api/v1/audiences/preview",
        &json!({"definition": "country = "}),
    );
    expect_error(&r, 400, "invalid_definition");

    // Names are unique among computed traits and audiences alike.
    refused(
        s,
        "audiences",
        "From JSON",
        json!("country = \"FR\""),
        409,
        "name_taken",
    );
    refused(
        s,
        "audiences",
        "  From JSON ",
        json!("country = \"FR\""),
        409,
        "name_taken",
    );
    refused(
        s,
        "audiences",
        "order_total_90d",
        json!("country = \"FR\""),
        409,
        "name_taken",
    );
    refused(
        s,
        "computed-traits",
        "From text",
        json!("count \"X\""),
        409,
        "name_taken",
    );
    let other = audience(s, "Other", "country = \"FR\"");
    expect_error(
        &call(
            s,
            "PUT",
            &format!("/api/v1/audiences/{other}"),
            &json!({"name": "From JSON"}),
        ),
        409,
        "name_taken",
    );

    // No audience may depend on itself, directly or through others.
    let a = audience(s, "Cycle A", "country = \"DE\"");
    audience(s, "Cycle B", "in audience \"Cycle A\"");
    audience(s, "Cycle C", "in audience \"Cycle B\" and country = \"DE\"");
    let a_path = format!("/api/v1/audiences/{a}");
    for definition in ["in audience \"Cycle C\"", "in audience \"Cycle A\""] {
        let r = call(s, "PUT", &a_path, &json!({ "definition": definition }));
        expect_error(&r, 409, "definition_cycle");
    }
    refused(
        s,
        "audiences",
        "Self",
        json!("in audience \"Self\""),
        409,
        "definition_cycle",
    );
    assert_eq!(ok(s, &a_path)["version"], 1);
    assert_eq!(ok(s, &a_path)["definition"], "country = \"DE\"");

    // Nothing refused was stored.
    let names = |kind: &str, key: &str| -> Vec<String> {
        let mut n: Vec<String> = ok(s, &format!("/api/v1/{kind}"))[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names("audiences", "audiences"),
        [
            "Cycle A",
            "Cycle B",
            "Cycle C",
            "From JSON",
            "From text",
            "Other",
            "Round trip"
        ]
    );
    assert_eq!(
        names("computed-traits", "computed_traits"),
        ["order_total_90d"]
    );
}

fn bodies_queries_and_ids_are_checked(s: &Server) {
    let raw = |method: &str, path: &str, body: &str| s.admin(method, path, body);
    for (body, code) in [
        (r#"{"name": "x"}"#, "invalid_field"),
        (r#"{"definition": "country = \"DE\""}"#, "invalid_field"),
        (
            r#"{"name": "", "definition": "country = \"DE\""}"#,
            "invalid_field",
        ),
        (
            r#"{"name": "   ", "definition": "country = \"DE\""}"#,
            "invalid_field",
        ),
        (
            r#"{"name": 5, "definition": "country = \"DE\""}"#,
            "invalid_field",
        ),
        (
            r#"{"name": null, "definition": "country = \"DE\""}"#,
            "invalid_field",
        ),
        (r#"{"name": "x", "definition": 5}"#, "invalid_definition"),
        (r#"{"name": "x", "definition": null}"#, "invalid_definition"),
        (
            r#"{"name": "x", "definition": ["country"]}"#,
            "invalid_definition",
        ),
        (
            r#"{"name": "x", "definition": "country = \"DE\"", "size": 3}"#,
            "invalid_field",
        ),
        (
            r#"{"name": "x", "definiton": "country = \"DE\""}"#,
            "invalid_field",
        ),
        ("{not json", "invalid_json"),
        ("", "invalid_json"),
        (r#"["x"]"#, "invalid_json"),
        (r#""x""#, "invalid_json"),
    ] {
        for kind in ["audiences", "computed-traits"] {
            let r = raw("POST", &format!("/api/v1/{kind}"), body);
            let e = expect_error(&r, 400, code);
            assert!(
                e.get("errors").is_none() || code == "invalid_definition",
                "{e}"
            );
        }
    }
    let long = "n".repeat(201);
    let r = post(
        s,
        "audiences",
        &json!({"name": long, "definition": "country = \"DE\""}),
    );
    expect_error(&r, 400, "invalid_field");

    let other = ok(s, "/api/v1/audiences")["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Other")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/audiences/{other}");
    for (body, code) in [
        (r#"{"nmae": "x"}"#, "invalid_field"),
        (r#"{"definition": 1}"#, "invalid_definition"),
        (r#"{"definition": "country ="}"#, "invalid_definition"),
        (r#"{"name": ""}"#, "invalid_field"),
        ("nope", "invalid_json"),
    ] {
        expect_error(&raw("PUT", &path, body), 400, code);
    }
    assert_eq!(ok(s, &path)["version"], 1, "refused updates store nothing");
    // An update with nothing in it is still a version (nothing changes but the number).
    let r = raw("PUT", &path, "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["definition"], "country = \"FR\"");

    for (body, code) in [
        ("{}", "invalid_field"),
        ("nope", "invalid_json"),
        (r#"{"definition": 5}"#, "invalid_definition"),
    ] {
        expect_error(&raw("POST", "/api/v1/audiences/preview", body), 400, code);
    }

    // Unknown ids, and ids of the other kind, are 404s.
    let ct = ok(s, "/api/v1/computed-traits")["computed_traits"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        "/api/v1/audiences/aud_nope".to_string(),
        "/api/v1/audiences/aud_nope/versions".to_string(),
        "/api/v1/audiences/aud_nope/members".to_string(),
        "/api/v1/audiences/aud_nope/events".to_string(),
        "/api/v1/audiences/aud_nope/sizes".to_string(),
        "/api/v1/computed-traits/ct_nope".to_string(),
        format!("/api/v1/computed-traits/{other}"),
        format!("/api/v1/computed-traits/{other}/versions"),
        format!("/api/v1/audiences/{ct}"),
        format!("/api/v1/audiences/{ct}/versions"),
        format!("/api/v1/audiences/{ct}/members"),
    ] {
        expect_error(&raw("GET", &path, ""), 404, "not_found");
    }
    expect_error(
        &raw("DELETE", &format!("/api/v1/audiences/{ct}"), ""),
        404,
        "not_found",
    );
    expect_error(
        &raw("PUT", "/api/v1/computed-traits/ct_nope", r#"{"name": "x"}"#),
        404,
        "not_found",
    );

    // Cursors and query values that this API never gave out.
    for (query, code) in [
        (format!("{path}/members?cursor=garbage"), "invalid_value"),
        (format!("{path}/members?cursor=prf_"), "invalid_value"),
        (format!("{path}/members?limit=many"), "invalid_query"),
        (format!("{path}/events?cursor=abc"), "invalid_value"),
        (format!("{path}/sizes?since=yesterday"), "invalid_query"),
        (format!("{path}/sizes?until=soon"), "invalid_query"),
        (
            "/api/v1/audience-events?cursor=-x".to_string(),
            "invalid_value",
        ),
        (
            "/api/v1/audience-events?profile=bogus".to_string(),
            "invalid_query",
        ),
        (format!("{path}?colour=red"), "invalid_query"),
        ("/api/v1/audiences?page=2".to_string(), "invalid_query"),
    ] {
        expect_error(&raw("GET", &query, ""), 400, code);
    }
    // Out-of-range page sizes are clamped, not refused.
    assert_eq!(
        ok(s, &format!("{path}/members?limit=0"))["members"],
        json!([])
    );

    // The Profile API side.
    expect_error(
        &raw("GET", &profile("user_id:nobody", "/audiences"), ""),
        404,
        "not_found",
    );
    send_identify(s);
    expect_error(
        &raw("GET", &profile("user_id:err-1", "/traits?class=bogus"), ""),
        400,
        "invalid_query",
    );
    expect_error(
        &raw(
            "GET",
            &profile("user_id:err-1", "/traits?class=computed&as_of=2024-01-01"),
            "",
        ),
        400,
        "invalid_query",
    );
}

/// A profile for the Profile API checks.
fn send_identify(s: &Server) {
    let key = s.source("errors");
    send(s, &key, "identify", json!({"userId": "err-1"}));
    wait_for(s, &profile("user_id:err-1", ""), |_| true);
}

fn tokens_limit_what_callers_see_and_do(s: &Server, key: &str) {
    send(
        s,
        key,
        "identify",
        json!({"userId": "tok-1", "traits": {"country": "FR"}}),
    );
    sync(s, key);
    let other = ok(s, "/api/v1/audiences")["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Other")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let token = |body: Value| {
        let r = call(s, "POST", "/api/v1/tokens", &body);
        assert_eq!(r.status, 201, "{}", r.text());
        format!("Bearer {}", r.json()["token"].as_str().unwrap())
    };
    let with = |auth: &str, method: &str, path: &str, body: &str| {
        s.request(method, path, &[("Authorization", auth)], body.as_bytes())
            .unwrap()
    };
    let path = format!("/api/v1/audiences/{other}");
    let create = r#"{"name": "Nope", "definition": "country = \"DE\""}"#;

    // A read-only token reads and previews, but changes nothing.
    let ro = token(json!({"name": "reader", "scopes": ["read"]}));
    for (method, p, body) in [
        ("POST", "/api/v1/audiences", create),
        (
            "POST",
            "/api/v1/computed-traits",
            r#"{"name": "n", "definition": "count \"X\""}"#,
        ),
        ("PUT", path.as_str(), r#"{"name": "Renamed"}"#),
        ("DELETE", path.as_str(), ""),
    ] {
        expect_error(&with(&ro, method, p, body), 403, "forbidden");
    }
    let list = with(&ro, "GET", "/api/v1/audiences", "");
    assert_eq!(list.status, 200, "{}", list.text());
    assert!(list.json()["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == other.as_str()));
    for p in [
        path.clone(),
        format!("{path}/versions"),
        format!("{path}/members"),
        format!("{path}/events"),
        format!("{path}/sizes"),
        "/api/v1/audience-events".to_string(),
        "/api/v1/computed-traits".to_string(),
        profile("user_id:tok-1", "/audiences"),
    ] {
        let r = with(&ro, "GET", &p, "");
        assert_eq!(r.status, 200, "GET {p}: {}", r.text());
    }
    let r = with(
        &ro,
        "POST",
        "/api/v1/audiences/preview",
        r#"{"definition": "country = \"FR\""}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["sample"], json!([profile_id(s, "user_id:tok-1")]));
    assert_eq!(ok(s, &path)["name"], "Other");
    assert_eq!(ok(s, &path)["version"], 2);

    // A token of another workspace sees nothing of this one.
    let r = call(
        s,
        "POST",
        "/api/v1/workspaces",
        &json!({"name": "Elsewhere", "id": "elsewhere"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let foreign = token(
        json!({"name": "elsewhere admin", "workspace_id": "elsewhere",
                                "scopes": ["admin"]}),
    );
    for p in [
        path.clone(),
        format!("{path}/versions"),
        format!("{path}/members"),
        format!("{path}/events"),
        "/api/v1/audiences?workspace=default".to_string(),
    ] {
        expect_error(&with(&foreign, "GET", &p, ""), 404, "not_found");
    }
    expect_error(
        &with(&foreign, "PUT", &path, r#"{"name": "Mine"}"#),
        404,
        "not_found",
    );
    expect_error(&with(&foreign, "DELETE", &path, ""), 404, "not_found");
    let r = with(&foreign, "GET", "/api/v1/audiences", "");
    assert_eq!((r.status, r.json()["audiences"].clone()), (200, json!([])));
    // Its own workspace is separate: names taken here are free there, previews see only its
    // own profiles, and what it creates does not show here.
    let r = with(
        &foreign,
        "POST",
        "/api/v1/audiences",
        r#"{"name": "Other", "definition": "country = \"FR\""}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let theirs = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["size"], 0);
    let r = with(
        &foreign,
        "POST",
        "/api/v1/audiences/preview",
        r#"{"definition": "country = \"FR\""}"#,
    );
    assert_eq!(
        (r.status, r.json()["size"].clone()),
        (200, json!(0)),
        "{}",
        r.text()
    );
    expect_error(
        &s.admin("GET", &format!("/api/v1/audiences/{theirs}"), ""),
        404,
        "not_found",
    );
    assert_eq!(
        ok(
            s,
            &format!("/api/v1/audiences/{theirs}?workspace=elsewhere")
        )["name"],
        "Other"
    );

    // Without a token, nothing.
    let r = s.get("/api/v1/audiences", &[]).unwrap();
    expect_error(&r, 401, "missing_token");
}
