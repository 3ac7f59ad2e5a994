//! Hostile and unusual input to the Profile API: unicode identifiers, huge and badly encoded
//! paths, malformed split bodies, out-of-range paging values. Every answer is a `{code,
//! message}` error or a correct result; nothing is a 500 and nothing changes stored profiles.

use super::*;

#[test]
fn unicode_identifiers_round_trip_through_the_api() {
    let (_d, s, key) = fresh("profunicode");
    let user = "Zoë Ångström — 東京 🚀";
    send(
        &s,
        &key,
        "identify",
        json!({"userId": user, "traits": {"email": "ZOË@Exämple.com", "name": user}}),
    );
    let p = wait_for_profile(&s, &format!("user_id:{user}"), |_| true);
    assert_eq!(p["traits"]["name"], user);
    // E-mails are lower-cased whatever their script.
    let by_email = wait_for_profile(&s, "email:zoë@exämple.com", |_| true);
    assert_eq!(by_email["id"], p["id"]);
    assert!(
        profile_identifiers(&p).contains(&format!("user_id:{user}")),
        "{p}"
    );
}

#[test]
fn bad_paths_queries_and_bodies_get_json_errors() {
    let (_d, s, key) = fresh("profhostile");
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "h1", "traits": {"email": "h1@x.com"}}),
    );
    let before = wait_for_profile(&s, "user_id:h1", |_| true);
    let expect = |method: &str, path: &str, body: &str, status: u16, code: &str| {
        let r = s.admin(method, path, body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert_eq!(r.json()["code"], code, "{method} {path}: {}", r.text());
        assert!(r.json()["message"].is_string());
    };
    // A 10 KB value: not found, not a crash.
    let long = format!("user_id:{}", "x".repeat(10_000));
    expect("GET", &profile(&long, ""), "", 404, "not_found");
    // A lone `%` is taken literally; an encoding of invalid UTF-8 is refused.
    expect("GET", "/v1/profiles/user_id%3Ah1%", "", 404, "not_found");
    expect(
        "GET",
        "/v1/profiles/user_id%3A%FF%FE",
        "",
        400,
        "invalid_path",
    );
    // Query values of the wrong type or out of range.
    expect(
        "GET",
        &profile("user_id:h1", "/events?limit=abc"),
        "",
        400,
        "invalid_query",
    );
    expect(
        "GET",
        &profile("user_id:h1", "/events?limit=-1"),
        "",
        400,
        "invalid_query",
    );
    expect(
        "GET",
        &profile("user_id:h1", "?verbose=maybe"),
        "",
        400,
        "invalid_query",
    );
    expect(
        "GET",
        &profile("user_id:h1", "/history?cursor=12"),
        "",
        400,
        "invalid_value",
    );
    expect(
        "GET",
        &profile("user_id:h1", "/traits?as_of=yesterday"),
        "",
        400,
        "invalid_value",
    );
    // A huge limit is clamped, not refused.
    let r = s.admin("GET", &profile("user_id:h1", "/events?limit=99999999"), "");
    assert_eq!(r.status, 200, "{}", r.text());
    // Malformed split bodies.
    let split = profile("user_id:h1", "/split");
    expect("POST", &split, "{not json", 400, "invalid_json");
    expect("POST", &split, r#"{"type": "email"}"#, 400, "invalid_json");
    expect(
        "POST",
        &split,
        r#"{"type": 1, "value": "h1@x.com"}"#,
        400,
        "invalid_json",
    );
    expect(
        "POST",
        &split,
        r#"{"type": "email", "value": "other@x.com"}"#,
        400,
        "identifier_not_on_profile",
    );
    expect(
        "POST",
        &profile("user_id:h1", "/unknown"),
        "{}",
        404,
        "not_found",
    );
    // None of it changed the profile.
    assert_eq!(ok(&s, &profile("user_id:h1", "")), before);
}
