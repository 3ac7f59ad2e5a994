//! A marketer's flow: a windowed computed trait and an audience that fill in as events arrive,
//! read from every side (the profile, the members, the entries, the sizes, a preview); then an
//! audience created over existing events (a backfill), a new version, a rename, deletes, and
//! deletes refused while another definition uses what they would remove.

use super::*;

const FANS: &str = "country = \"DE\" and performed \"Product Viewed\" where category = \"jeans\" \
                    at least 3 times within 30 days";
const JEANS_VIEWS: &str = "count \"Product Viewed\" where category = \"jeans\" within 30 days";

#[test]
fn a_marketer_builds_audiences_that_fill_in_backfill_and_change() {
    let (_d, s, key) = fresh("audflow");
    fills_in_real_time(&s, &key);
    backfills_versions_and_deletes(&s, &key);
}

/// The position and `receivedAt` of the event with this messageId on a profile's timeline.
fn stored_event(s: &Server, ident: &str, message_id: &str) -> (i64, String) {
    let events = ok(s, &profile(ident, "/events?limit=1000"));
    let e = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["messageId"] == message_id)
        .unwrap_or_else(|| panic!("{message_id} is not on {ident}: {events}"));
    (
        e["position"].as_i64().unwrap(),
        e["receivedAt"].as_str().unwrap().to_string(),
    )
}

fn fills_in_real_time(s: &Server, key: &str) {
    let ct = create(s, "computed-traits", "jeans_views_30d", json!(JEANS_VIEWS));
    assert!(ct["id"].as_str().unwrap().starts_with("ct_"), "{ct}");
    assert_eq!(ct["version"], 1);
    assert_eq!(ct["definition"], JEANS_VIEWS);
    assert_eq!(ct["name"], "jeans_views_30d");
    let aud = create(s, "audiences", "German jeans fans", json!(FANS));
    let fans = aud["id"].as_str().unwrap().to_string();
    assert!(fans.starts_with("aud_"), "{aud}");
    assert_eq!(
        (aud["version"].clone(), aud["size"].clone()),
        (json!(1), json!(0))
    );
    // Written in its canonical form, which this text already is.
    assert_eq!(aud["definition"], FANS);
    assert!(aud["definition_json"].is_object(), "{aud}");

    // fan-v lives in France; fan-w viewed jeans only twice (and shoes once); fan-u matches.
    let jeans = json!({"category": "jeans"});
    for (user, country) in [("fan-v", "FR"), ("fan-w", "DE"), ("fan-u", "DE")] {
        send(
            s,
            key,
            "identify",
            json!({"userId": user, "traits": {"country": country}}),
        );
    }
    track_n(s, key, "fan-v", "Product Viewed", jeans.clone(), 3);
    track_n(s, key, "fan-w", "Product Viewed", jeans.clone(), 2);
    track_n(
        s,
        key,
        "fan-w",
        "Product Viewed",
        json!({"category": "shoes"}),
        1,
    );
    for i in 1..=3 {
        send(
            s,
            key,
            "track",
            json!({"userId": "fan-u", "event": "Product Viewed", "messageId": format!("fan-u-{i}"),
                   "properties": jeans}),
        );
    }
    let listed = wait_for(s, &profile("user_id:fan-u", "/audiences"), |b| {
        b["audiences"].as_array().is_some_and(|a| !a.is_empty())
    });
    sync(s, key);
    let u = profile_id(s, "user_id:fan-u");
    // The third view made the difference: the entry names it and happened when it arrived.
    let (third, received) = stored_event(s, "user_id:fan-u", "fan-u-3");
    assert_eq!(
        listed,
        json!({"id": u, "audiences": [
            {"audience_id": fans, "name": "German jeans fans", "entered_at": received}
        ]})
    );
    assert_eq!(members(s, &fans), [(u.clone(), received.clone())]);
    let entries = events_of(s, &fans);
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let e = &entries[0];
    assert_eq!(e["type"], "track");
    assert_eq!(e["event"], "Audience Entered");
    assert_eq!(e["timestamp"], received.as_str());
    assert_eq!(
        e["properties"],
        json!({"audience_id": fans, "audience_name": "German jeans fans", "audience_version": 1,
               "profile_id": u, "reason": "event", "position": third})
    );
    assert_eq!(e["context"]["traits"]["tessera_profile_id"], u.as_str());
    assert!(e["messageId"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(e["seq"].is_i64(), "{e}");
    // The same record in the workspace-wide feed, also by profile.
    assert_eq!(
        audience_events(s, &format!("/api/v1/audience-events?profile={u}")),
        entries
    );
    assert!(audience_events(s, "/api/v1/audience-events").contains(e));

    // The computed trait counts jeans views only, per profile.
    assert_eq!(
        computed_traits(s, "user_id:fan-u"),
        json!({"jeans_views_30d": 3})
    );
    assert_eq!(
        computed_traits(s, "user_id:fan-v"),
        json!({"jeans_views_30d": 3})
    );
    assert_eq!(
        computed_traits(s, "user_id:fan-w"),
        json!({"jeans_views_30d": 2})
    );
    let all = ok(s, &profile("user_id:fan-u", "/traits?class=all"));
    assert_eq!(all["traits"], json!({"country": "DE"}), "{all}");
    assert_eq!(
        all["computed_traits"],
        json!({"jeans_views_30d": 3}),
        "{all}"
    );
    let verbose = ok(
        s,
        &profile("user_id:fan-u", "/traits?class=computed&verbose=true"),
    );
    let v = &verbose["traits"]["jeans_views_30d"];
    assert_eq!(
        (&v["value"], &v["computed_trait_id"], &v["version"]),
        (&json!(3), &ct["id"], &json!(1)),
        "{verbose}"
    );
    // Profile traits alone, by default.
    assert_eq!(
        ok(s, &profile("user_id:fan-u", "/traits"))["traits"],
        json!({"country": "DE"})
    );
    // Neither non-matching user entered.
    for user in ["fan-v", "fan-w"] {
        assert_eq!(
            audience_names(s, &format!("user_id:{user}")),
            Vec::<String>::new()
        );
    }
    let sizes = wait_for(s, &format!("/api/v1/audiences/{fans}/sizes"), |b| {
        b["sizes"]
            .as_array()
            .and_then(|a| a.last())
            .is_some_and(|l| l["size"] == 1)
    });
    assert_eq!(sizes["audience_id"], fans.as_str());
    assert_eq!(ok(s, &format!("/api/v1/audiences/{fans}"))["size"], 1);

    // A preview of the same definition, in text or JSON, or through the computed trait,
    // finds the same profile.
    let preview = |definition: Value| {
        let r = call(
            s,
            "POST",
            "/api/v1/audiences/preview",
            &json!({ "definition": definition }),
        );
        assert_eq!(r.status, 200, "{definition}: {}", r.text());
        r.json()
    };
    for definition in [
        json!(FANS),
        aud["definition_json"].clone(),
        json!("jeans_views_30d >= 3 and country = \"DE\""),
    ] {
        let p = preview(definition.clone());
        assert_eq!(
            (&p["size"], &p["sample"]),
            (&json!(1), &json!([u])),
            "{definition}: {p}"
        );
        assert!(p["took_ms"].is_number(), "{p}");
        assert!(
            tessera_core::time::parse_iso8601(p["as_of"].as_str().unwrap()).is_ok(),
            "{p}"
        );
    }
    let w = profile_id(s, "user_id:fan-w");
    let mut de: Vec<Value> = preview(json!("country = \"DE\""))["sample"]
        .as_array()
        .unwrap()
        .clone();
    de.sort_by_key(|v| v.as_str().unwrap().to_string());
    let mut expected = vec![json!(u), json!(w)];
    expected.sort_by_key(|v| v.as_str().unwrap().to_string());
    assert_eq!(de, expected);
    // A preview saves nothing.
    assert_eq!(
        ok(s, "/api/v1/audiences")["audiences"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // More views keep fan-u in without a second entry; fan-w's third jeans view lets them in.
    track_n(s, key, "fan-u", "Product Viewed", jeans.clone(), 1);
    track_n(s, key, "fan-w", "Product Viewed", jeans, 1);
    wait_for(s, &profile("user_id:fan-w", "/audiences"), |b| {
        b["audiences"].as_array().is_some_and(|a| a.len() == 1)
    });
    sync(s, key);
    assert_eq!(
        briefs(s, &fans),
        [b("in", &u, "event"), b("in", &w, "event")]
    );
    assert_eq!(
        computed_traits(s, "user_id:fan-u"),
        json!({"jeans_views_30d": 4})
    );
    // Members page by profile id.
    let mut both = vec![u.clone(), w.clone()];
    both.sort_by_key(|p| p[4..].parse::<i64>().unwrap());
    assert_eq!(member_ids(s, &fans), both);
    let first = ok(s, &format!("/api/v1/audiences/{fans}/members?limit=1"));
    assert_eq!(first["members"][0]["profile_id"], both[0].as_str());
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let second = ok(
        s,
        &format!("/api/v1/audiences/{fans}/members?limit=1&cursor={cursor}"),
    );
    assert_eq!(second["members"][0]["profile_id"], both[1].as_str());
    let last = ok(
        s,
        &format!(
            "/api/v1/audiences/{fans}/members?limit=1&cursor={}",
            second["next_cursor"].as_str().unwrap()
        ),
    );
    assert_eq!(
        (last["members"].clone(), last["next_cursor"].clone()),
        (json!([]), Value::Null)
    );
    // Entries page by sequence number.
    let page = ok(s, &format!("/api/v1/audiences/{fans}/events?limit=1"));
    let next = page["next_cursor"].as_str().unwrap().to_string();
    let rest = ok(
        s,
        &format!("/api/v1/audiences/{fans}/events?limit=10&cursor={next}"),
    );
    assert_eq!(
        [page["events"][0].clone(), rest["events"][0].clone()].to_vec(),
        events_of(s, &fans)
    );
}

fn backfills_versions_and_deletes(s: &Server, key: &str) {
    // Orders exist before any audience reads them.
    let order = json!({"total": 30});
    track_n(s, key, "buyer-1", "Order Completed", order.clone(), 2);
    track_n(s, key, "buyer-2", "Order Completed", order, 1);
    sync(s, key);
    let (b1, b2) = (
        profile_id(s, "user_id:buyer-1"),
        profile_id(s, "user_id:buyer-2"),
    );
    // Created over the existing events: the answer comes once the backfill is in.
    let created = create(
        s,
        "audiences",
        "Repeat buyers",
        json!("performed \"Order Completed\" at least 2 times"),
    );
    assert_eq!(created["size"], 1, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(member_ids(s, &id), [b1.as_str()]);
    let backfill = events_of(s, &id);
    assert_eq!(
        backfill.iter().map(brief).collect::<Vec<_>>(),
        [b("in", &b1, "backfill")]
    );
    assert_eq!(backfill[0]["properties"]["position"], Value::Null);
    assert_eq!(backfill[0]["properties"]["audience_version"], 1);
    assert_eq!(audience_names(s, "user_id:buyer-1"), ["Repeat buyers"]);

    // A new definition is a new version, evaluated again over every profile.
    let path = format!("/api/v1/audiences/{id}");
    let r = call(
        s,
        "PUT",
        &path,
        &json!({"definition": "performed \"Order Completed\" exactly 1 time"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v2 = r.json();
    assert_eq!(
        (&v2["id"], &v2["version"], &v2["name"], &v2["size"]),
        (&json!(id), &json!(2), &json!("Repeat buyers"), &json!(1))
    );
    assert_eq!(
        v2["definition"],
        "performed \"Order Completed\" exactly 1 time"
    );
    assert_eq!(v2["created_at"], created["created_at"]);
    assert_eq!(member_ids(s, &id), [b2.as_str()]);
    let mut changes: Vec<_> = events_of(s, &id)[1..].iter().map(brief).collect();
    changes.sort();
    assert_eq!(
        changes,
        [
            b("in", &b2, "definition_updated"),
            b("out", &b1, "definition_updated")
        ]
    );
    assert!(events_of(s, &id)[1..]
        .iter()
        .all(|e| e["properties"]["audience_version"] == 2));
    assert_eq!(ok(s, &path)["version"], 2);
    let versions = ok(s, &format!("{path}/versions"));
    assert_eq!(versions["id"], id.as_str());
    let listed: Vec<(Value, Value)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].clone(), v["definition"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (
                json!(1),
                json!("performed \"Order Completed\" at least 2 times")
            ),
            (
                json!(2),
                json!("performed \"Order Completed\" exactly 1 time")
            ),
        ]
    );

    let before = events_of(s, &id);
    // Deleted: gone from the list and from profiles, 404 on reads; its history stays in the
    // workspace's feed and its versions.
    let r = s.admin("DELETE", &path, "");
    assert_eq!(r.status, 204, "{}", r.text());
    expect_error(&s.admin("GET", &path, ""), 404, "not_found");
    for rest in ["/members", "/events", "/sizes"] {
        expect_error(
            &s.admin("GET", &format!("{path}{rest}"), ""),
            404,
            "not_found",
        );
    }
    expect_error(
        &call(s, "PUT", &path, &json!({"name": "Back"})),
        404,
        "not_found",
    );
    expect_error(&s.admin("DELETE", &path, ""), 404, "not_found");
    assert!(!ok(s, "/api/v1/audiences")["audiences"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == id.as_str()));
    assert_eq!(audience_names(s, "user_id:buyer-2"), Vec::<String>::new());
    assert_eq!(audience_names(s, "user_id:buyer-1"), Vec::<String>::new());
    let versions = ok(s, &format!("{path}/versions"))["versions"].clone();
    assert_eq!(versions.as_array().unwrap().len(), 3, "{versions}");
    assert_eq!(versions[2]["deleted"], true);
    assert_eq!(
        audience_events(s, "/api/v1/audience-events")
            .iter()
            .filter(|e| e["properties"]["audience_id"] == id.as_str())
            .count(),
        before.len()
    );
    // The name is free again, for a new audience with a new id.
    let again = audience(
        s,
        "Repeat buyers",
        "performed \"Order Completed\" at least 2 times",
    );
    assert_ne!(again, id);
    assert_eq!(
        briefs(s, &again),
        [b("in", &b1, "backfill")],
        "a new audience starts its own history"
    );

    // What another definition uses cannot be deleted.
    let base = audience(s, "German shoppers", "country = \"DE\"");
    let derived = audience(
        s,
        "German buyers",
        "in audience \"German shoppers\" and performed \"Order Completed\"",
    );
    let e = expect_error(
        &s.admin("DELETE", &format!("/api/v1/audiences/{base}"), ""),
        409,
        "in_use",
    );
    assert!(
        e["message"].as_str().unwrap().contains("German shoppers"),
        "{e}"
    );
    // Renamed, it would leave the other audience testing a name that no longer exists.
    expect_error(
        &call(
            s,
            "PUT",
            &format!("/api/v1/audiences/{base}"),
            &json!({"name": "Germans"}),
        ),
        409,
        "in_use",
    );
    assert_eq!(ok(s, &format!("/api/v1/audiences/{base}"))["version"], 1);
    assert_eq!(
        ok(s, &format!("/api/v1/audiences/{base}/versions"))["versions"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "a refused delete stores no version"
    );
    // A computed trait an audience reads is in use too.
    let orders = computed(s, "orders", "count \"Order Completed\"");
    let frequent = audience(s, "Frequent buyers", "orders >= 2");
    assert_eq!(member_ids(s, &frequent), [b1.as_str()]);
    expect_error(
        &s.admin("DELETE", &format!("/api/v1/computed-traits/{orders}"), ""),
        409,
        "in_use",
    );
    // Renamed, `orders` would quietly mean a profile trait of that name.
    expect_error(
        &call(
            s,
            "PUT",
            &format!("/api/v1/computed-traits/{orders}"),
            &json!({"name": "order_count"}),
        ),
        409,
        "in_use",
    );
    assert_eq!(
        ok(s, &format!("/api/v1/computed-traits/{orders}"))["version"],
        1
    );
    assert_eq!(member_ids(s, &frequent), [b1.as_str()]);
    // A new definition under the same name is fine, and re-evaluates what reads it.
    let r = call(
        s,
        "PUT",
        &format!("/api/v1/computed-traits/{orders}"),
        &json!({"definition": "count \"Order Completed\" where total > 30"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["version"], 2);
    assert_eq!(member_ids(s, &frequent), Vec::<String>::new());
    assert_eq!(
        briefs(s, &frequent),
        [
            b("in", &b1, "backfill"),
            b("out", &b1, "definition_updated")
        ]
    );
    // Once nothing uses them, they go.
    for path in [
        format!("/api/v1/audiences/{derived}"),
        format!("/api/v1/audiences/{base}"),
        format!("/api/v1/audiences/{frequent}"),
        format!("/api/v1/computed-traits/{orders}"),
    ] {
        let r = s.admin("DELETE", &path, "");
        assert_eq!(r.status, 204, "DELETE {path}: {}", r.text());
    }
    let left: Vec<Value> = ok(s, "/api/v1/computed-traits")["computed_traits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(left, [json!("jeans_views_30d")]);
    assert_eq!(
        computed_traits(s, "user_id:buyer-1"),
        json!({"jeans_views_30d": 0})
    );

    // A new name only: a version, the same members, and nothing announced again.
    let path = format!("/api/v1/audiences/{again}");
    let before = events_of(s, &again);
    let r = call(s, "PUT", &path, &json!({"name": "Loyal buyers"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (&r.json()["version"], &r.json()["name"], &r.json()["size"]),
        (&json!(2), &json!("Loyal buyers"), &json!(1))
    );
    assert_eq!(member_ids(s, &again), [b1.as_str()]);
    assert_eq!(audience_names(s, "user_id:buyer-1"), ["Loyal buyers"]);
    assert_eq!(
        events_of(s, &again),
        before,
        "renaming an audience re-announced its members"
    );
}
