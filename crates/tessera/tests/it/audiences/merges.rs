//! Merges: when an identify ties an anonymous visitor to a known user, memberships follow the
//! merged history. The surviving profile is evaluated over the union of both histories (it
//! enters audiences only the union qualifies for) and the absorbed profile leaves every
//! audience it was in, each change with reason `merge` and the position of the identify.

use super::*;

#[test]
fn merged_profiles_are_evaluated_over_their_union() {
    let (_d, s, key) = fresh("audmerge");
    let viewers = audience(
        &s,
        "Viewers",
        "performed \"Product Viewed\" at least 3 times",
    );
    let heavy = audience(
        &s,
        "Heavy viewers",
        "performed \"Product Viewed\" at least 4 times",
    );
    computed(&s, "views", "count \"Product Viewed\"");
    let view = |who: (&str, &str), n: usize| {
        for _ in 0..n {
            send(
                &s,
                &key,
                "track",
                json!({who.0: who.1, "event": "Product Viewed", "properties": {"sku": "j1"}}),
            );
        }
    };

    // Person 1: a known user with one view, then, on another device and not logged in,
    // three more views; that anonymous profile is a viewer on its own.
    send(&s, &key, "identify", json!({"userId": "m1"}));
    view(("userId", "m1"), 1);
    view(("anonymousId", "anon-m1"), 3);
    // Person 2: two anonymous views first, then two as a user: neither profile qualifies.
    view(("anonymousId", "anon-m2"), 2);
    send(&s, &key, "identify", json!({"userId": "m2"}));
    view(("userId", "m2"), 2);
    sync(&s, &key);
    let (known1, anon1) = (
        profile_id(&s, "user_id:m1"),
        profile_id(&s, "anonymous_id:anon-m1"),
    );
    let (anon2, known2) = (
        profile_id(&s, "anonymous_id:anon-m2"),
        profile_id(&s, "user_id:m2"),
    );
    assert_eq!(member_ids(&s, &viewers), [anon1.as_str()]);
    assert_eq!(member_ids(&s, &heavy), Vec::<String>::new());
    assert_eq!(briefs(&s, &viewers), [b("in", &anon1, "event")]);
    assert_eq!(computed_traits(&s, "user_id:m1")["views"], 1);
    assert_eq!(computed_traits(&s, "anonymous_id:anon-m1")["views"], 3);

    // Both log in on the other device: each pair of profiles merges into the older one.
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "m1", "anonymousId": "anon-m1", "messageId": "merge-1"}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "m2", "anonymousId": "anon-m2", "messageId": "merge-2"}),
    );
    sync(&s, &key);
    assert_eq!(profile_id(&s, "anonymous_id:anon-m1"), known1);
    assert_eq!(profile_id(&s, "user_id:m2"), anon2);
    let position = |ident: &str, mid: &str| {
        ok(&s, &profile(ident, "/events?limit=1000"))["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["messageId"] == mid)
            .unwrap()["position"]
            .clone()
    };
    let (p1, p2) = (
        position("user_id:m1", "merge-1"),
        position("user_id:m2", "merge-2"),
    );

    // Person 1: the absorbed anonymous profile leaves; the survivor enters both audiences,
    // the second of which neither profile qualified for alone.
    // Person 2: only the union of two and two views reaches three and four.
    let mut v: Vec<_> = briefs(&s, &viewers);
    v.sort();
    let mut expected = vec![
        b("in", &anon1, "event"),
        b("out", &anon1, "merge"),
        b("in", &known1, "merge"),
        b("in", &anon2, "merge"),
    ];
    expected.sort();
    assert_eq!(v, expected);
    let mut h: Vec<_> = briefs(&s, &heavy);
    h.sort();
    let mut expected = vec![b("in", &known1, "merge"), b("in", &anon2, "merge")];
    expected.sort();
    assert_eq!(h, expected);
    for e in events_of(&s, &viewers)
        .iter()
        .chain(&events_of(&s, &heavy))
        .filter(|e| e["properties"]["reason"] == "merge")
    {
        let profile = e["properties"]["profile_id"].as_str().unwrap();
        let expected = if profile == anon2 { &p2 } else { &p1 };
        assert_eq!(&e["properties"]["position"], expected, "{e}");
    }
    // The absorbed profile's own feed ends with its exit.
    let anon1_feed = audience_events(&s, &format!("/api/v1/audience-events?profile={anon1}"));
    assert_eq!(
        anon1_feed.iter().map(brief).collect::<Vec<_>>(),
        [b("in", &anon1, "event"), b("out", &anon1, "merge")]
    );
    // Person 2's absorbed profile had entered nothing, so nothing was recorded for it.
    assert_eq!(
        audience_events(&s, &format!("/api/v1/audience-events?profile={known2}")),
        Vec::<Value>::new()
    );

    // Members, the profiles' own view and computed traits all agree on the union.
    let mut both = vec![known1.clone(), anon2.clone()];
    both.sort_by_key(|p| p[4..].parse::<i64>().unwrap());
    assert_eq!(member_ids(&s, &viewers), both);
    assert_eq!(member_ids(&s, &heavy), both);
    for ident in [
        "user_id:m1",
        "anonymous_id:anon-m1",
        "user_id:m2",
        &anon1,
        &known2,
    ] {
        assert_eq!(
            audience_names(&s, ident),
            ["Heavy viewers", "Viewers"],
            "{ident}"
        );
        assert_eq!(computed_traits(&s, ident), json!({"views": 4}), "{ident}");
    }
    let p = call(
        &s,
        "POST",
        "/api/v1/audiences/preview",
        &json!({"definition": "performed \"Product Viewed\" at least 4 times"}),
    )
    .json();
    let mut sample: Vec<String> = p["sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    sample.sort_by_key(|p| p[4..].parse::<i64>().unwrap());
    assert_eq!((p["size"].clone(), sample), (json!(2), both.clone()));

    // The merged profile keeps counting as one.
    view(("anonymousId", "anon-m1"), 1);
    sync(&s, &key);
    assert_eq!(computed_traits(&s, "user_id:m1"), json!({"views": 5}));
    assert_eq!(events_of(&s, &viewers).len(), 4, "no second entry");
}
