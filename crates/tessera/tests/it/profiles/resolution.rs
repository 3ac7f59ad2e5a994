//! Identity resolution through the Profile API: cross-device merges with every event on one
//! timeline, addressing and errors, Segment's default limits, blocked values, alias, accounts
//! from group calls, and explain.

use super::*;

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
        profile_identifiers(p).contains(&"user_id:ann".to_string())
    });
    assert_eq!(
        profile_identifiers(&p),
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
    // A typo in the type is told apart from an unknown person.
    let r = s.admin("GET", &profile("mail:zoe@x.com", ""), "");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], "unknown_identifier_type");
    assert!(r.json()["message"].as_str().unwrap().contains("email"));
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
    assert_eq!(
        profile_identifiers(&old),
        ["email:shared@x.com", "user_id:u-old"]
    );
    assert_eq!(
        profile_identifiers(&new),
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
        assert_eq!(
            profile_identifiers(p).len(),
            1,
            "only the real identifier is kept: {p}"
        );
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
        profile_identifiers(p).contains(&"user_id:al-user".to_string())
    });
    assert_eq!(
        profile_identifiers(&p),
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
    // ex-u was tied to the profile by ex-a, which its identify carried; so ex-a is in the
    // chain too, added by the first page view.
    assert_eq!(
        added,
        [
            (json!("ex-a"), json!("ex1")),
            (json!("ex-u"), json!("ex2")),
            (json!("ex-b"), json!("ex3"))
        ]
    );
    let matched_by = |value: &str| {
        steps
            .iter()
            .find(|s| s["identifier"]["value"] == value)
            .unwrap()["matched_by"]
            .clone()
    };
    assert_eq!(
        matched_by("ex-u"),
        json!([{"type": "anonymous_id", "value": "ex-a"}])
    );
    assert_eq!(matched_by("ex-a"), json!([]));
    assert_eq!(matched_by("ex-b"), json!([]));
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
fn metrics_count_live_profiles_and_the_appliers_lag() {
    let (_d, s, key) = fresh("profmetrics");
    send(&s, &key, "page", json!({"anonymousId": "m-a"}));
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "m-u", "anonymousId": "m-b"}),
    );
    // Joins the two profiles above into one.
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "m-u", "anonymousId": "m-a"}),
    );
    send(&s, &key, "page", json!({"anonymousId": "m-c"}));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = s.get("/metrics", &[]).unwrap().text();
        if text.contains("tessera_profiles{workspace=\"default\"} 2\n")
            && text.contains("tessera_applier_lag_events{workspace=\"default\"} 0\n")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed 2 live profiles and no lag:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
