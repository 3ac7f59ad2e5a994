//! Durability: memberships, computed traits and the record of entries and exits come back the
//! same after a graceful restart and after `kill -9` (events applied again after a crash do not
//! announce anything twice), and re-deriving profiles (a split, a rules change with a rebuild)
//! records what changed with reason `rebuilt` while keeping the history from before.

use super::*;

/// What must come back unchanged.
#[derive(Debug, PartialEq)]
struct Snapshot {
    /// Each audience's members with their entry times.
    members: Vec<(String, Vec<(String, String)>)>,
    /// Every entry and exit of the workspace, as the feed lists them.
    events: Vec<Value>,
    /// Each profile's id, audiences and computed traits.
    profiles: Vec<(String, String, Vec<String>, Value)>,
}

fn snapshot(s: &Server, audiences: &[&str], idents: &[&str]) -> Snapshot {
    Snapshot {
        members: audiences
            .iter()
            .map(|a| (a.to_string(), members(s, a)))
            .collect(),
        events: audience_events(s, "/api/v1/audience-events"),
        profiles: idents
            .iter()
            .map(|i| {
                (
                    i.to_string(),
                    profile_id(s, i),
                    audience_names(s, i),
                    computed_traits(s, i),
                )
            })
            .collect(),
    }
}

/// How many entries the feed holds per profile.
fn entries_per_profile(events: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for e in events.iter().filter(|e| e["event"] == "Audience Entered") {
        let p = e["properties"]["profile_id"].as_str().unwrap().to_string();
        *out.entry(p).or_insert(0) += 1;
    }
    out
}

/// Compares what the restarted server holds with what it held before: after a sentinel shows
/// that it re-applied everything in the log, then once more after another sentinel (nothing
/// is recorded late either).
fn assert_same(s: &Server, key: &str, before: &Snapshot, audiences: &[&str], idents: &[&str]) {
    for _ in 0..2 {
        sync(s, key);
        let now = snapshot(s, audiences, idents);
        assert_eq!(
            entries_per_profile(&now.events),
            entries_per_profile(&before.events),
            "entries per profile changed\nbefore: {:#?}\nafter: {:#?}",
            before.events,
            now.events
        );
        assert_eq!(&now, before);
    }
}

/// The profiles `user_id:{user}` for each user, by their ids in key order.
fn sorted_ids(s: &Server, users: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = users
        .iter()
        .map(|u| profile_id(s, &format!("user_id:{u}")))
        .collect();
    ids.sort_by_key(|p| p[4..].parse::<i64>().unwrap());
    ids
}

#[test]
fn memberships_survive_a_restart_and_kill_9_without_duplicates() {
    let dir = TempDir::new("auddurable");
    let mut s = Server::start(dir.path());
    let key = s.source("test");
    let viewers = audience(
        &s,
        "Viewers",
        "performed \"Product Viewed\" at least 2 times within 30 days",
    );
    computed(&s, "views_30d", "count \"Product Viewed\" within 30 days");
    let view = json!({"sku": "j1"});
    track_n(&s, &key, "d1", "Product Viewed", view.clone(), 2);
    track_n(&s, &key, "d2", "Product Viewed", view.clone(), 1);
    track_n(&s, &key, "d2", "Order Completed", json!({"total": 5}), 1);
    track_n(&s, &key, "d3", "Signed Up", json!({}), 1);
    sync(&s, &key);
    // Created over existing orders: a backfill.
    let buyers = audience(&s, "Buyers", "performed \"Order Completed\"");
    let mut auds = vec![viewers.as_str(), buyers.as_str()];
    let idents = ["user_id:d1", "user_id:d2", "user_id:d3"];
    let (d1, d2, d3) = (
        profile_id(&s, "user_id:d1"),
        profile_id(&s, "user_id:d2"),
        profile_id(&s, "user_id:d3"),
    );
    assert_eq!(member_ids(&s, &viewers), [d1.as_str()]);
    assert_eq!(briefs(&s, &buyers), [b("in", &d2, "backfill")]);
    assert_eq!(computed_traits(&s, "user_id:d1"), json!({"views_30d": 2}));

    // A graceful restart.
    let first = snapshot(&s, &auds, &idents);
    assert!(s.stop().success());
    let mut s = Server::start(dir.path());
    assert_same(&s, &key, &first, &auds, &idents);

    // Changes of every kind (entries by event, a backfill, a new version), then kill -9
    // before the server writes its profile documents again (every ten seconds or so): the
    // restart applies these events again, now under the newest definitions.
    track_n(&s, &key, "d3", "Product Viewed", view.clone(), 2);
    track_n(&s, &key, "d1", "Order Completed", json!({"total": 7}), 1);
    sync(&s, &key);
    let big = audience(
        &s,
        "Big viewers",
        "performed \"Product Viewed\" at least 2 times",
    );
    let r = call(
        &s,
        "PUT",
        &format!("/api/v1/audiences/{viewers}"),
        &json!({"definition": "performed \"Product Viewed\" within 30 days"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    track_n(&s, &key, "d2", "Product Viewed", view, 1);
    sync(&s, &key);
    auds.push(big.as_str());
    assert_eq!(
        member_ids(&s, &viewers),
        sorted_ids(&s, &["d1", "d2", "d3"])
    );
    assert_eq!(member_ids(&s, &buyers), sorted_ids(&s, &["d1", "d2"]));
    // d1 and d3 had two views when it was created; d2's second view came after.
    let mut expected = vec![
        b("in", &d1, "backfill"),
        b("in", &d3, "backfill"),
        b("in", &d2, "event"),
    ];
    expected.sort();
    let mut found = briefs(&s, &big);
    found.sort();
    assert_eq!(found, expected);
    assert_eq!(
        briefs(&s, &viewers),
        [
            b("in", &d1, "event"),
            b("in", &d3, "event"),
            b("in", &d2, "definition_updated")
        ]
    );
    let second = snapshot(&s, &auds, &idents);
    s.kill9();
    let s = Server::start(dir.path());
    assert_same(&s, &key, &second, &auds, &idents);
}

#[test]
fn rebuilds_record_what_changed_and_keep_the_history() {
    let dir = TempDir::new("audrebuild");
    let s = Server::start(dir.path());
    let key = s.source("test");
    // Two user ids may share a profile here, so that a shared email can merge them.
    let r = s.admin(
        "PUT",
        "/api/v1/identity",
        r#"{"identifiers": {"user_id": {"limit": 5}}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let flowers = audience(&s, "Flower buyers", "performed \"Bought Flowers\"");
    let gamers = audience(&s, "Gamers", "performed \"Played Game\"");
    computed(&s, "games", "count \"Played Game\"");
    // Mom and her kid share an email, which merges their profiles.
    for call in [
        json!({"type": "identify", "userId": "mom", "traits": {"email": "family@x.com"}}),
        json!({"type": "track", "userId": "mom", "event": "Bought Flowers"}),
        json!({"type": "identify", "userId": "kid"}),
        json!({"type": "track", "userId": "kid", "event": "Played Game"}),
        json!({"type": "identify", "userId": "kid", "traits": {"email": "family@x.com"}}),
    ] {
        let endpoint = call["type"].as_str().unwrap().to_string();
        send(&s, &key, &endpoint, call);
    }
    sync(&s, &key);
    let mom = profile_id(&s, "user_id:mom");
    assert_eq!(profile_id(&s, "user_id:kid"), mom);
    let kid = ok(&s, &profile("user_id:mom", "/merges"))["merges"][0]["absorbed"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        briefs(&s, &gamers),
        [
            b("in", &kid, "event"),
            b("out", &kid, "merge"),
            b("in", &mom, "merge")
        ]
    );
    assert_eq!(member_ids(&s, &flowers), [mom.as_str()]);
    assert_eq!(member_ids(&s, &gamers), [mom.as_str()]);

    // A split re-derives the profiles: the kid's game leaves with the kid. Only memberships
    // that changed are recorded, as `rebuilt`, after everything recorded before; and the
    // answer comes once that is in place.
    let before = audience_events(&s, "/api/v1/audience-events");
    let r = s.admin(
        "POST",
        &profile("user_id:kid", "/split"),
        r#"{"type": "email", "value": "family@x.com"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(profile_id(&s, "user_id:kid"), kid);
    let in_place = |what: &str| {
        assert_eq!(
            member_ids(&s, &gamers),
            [kid.as_str()],
            "Gamers' members right after {what}"
        );
        assert_eq!(member_ids(&s, &flowers), [mom.as_str()]);
        assert_eq!(audience_names(&s, "user_id:kid"), ["Gamers"]);
        assert_eq!(audience_names(&s, "user_id:mom"), ["Flower buyers"]);
        assert_eq!(computed_traits(&s, "user_id:mom"), json!({"games": 0}));
        assert_eq!(computed_traits(&s, "user_id:kid"), json!({"games": 1}));
    };
    in_place("the split");
    let after = audience_events(&s, "/api/v1/audience-events");
    assert_eq!(after.len(), before.len() + 2, "{after:#?}");
    assert_eq!(
        after[..before.len()],
        before[..],
        "history before the split"
    );
    let mut new: Vec<_> = after[before.len()..].iter().map(brief).collect();
    new.sort();
    assert_eq!(new, [b("in", &kid, "rebuilt"), b("out", &mom, "rebuilt")]);
    assert!(after[before.len()..]
        .iter()
        .all(|e| e["properties"]["audience_id"] == gamers.as_str()
            && e["properties"]["position"].is_null()));

    // A rebuild that changes nothing records nothing.
    let r = s.admin("POST", "/api/v1/identity/rebuild", "");
    assert_eq!(r.status, 200, "{}", r.text());
    in_place("a rebuild");
    sync(&s, &key);
    assert_eq!(audience_events(&s, "/api/v1/audience-events"), after);

    // Unblocking the email with a rebuild merges them again.
    let r = s.admin(
        "PUT",
        "/api/v1/identity?rebuild=true",
        r#"{"identifiers": {"user_id": {"limit": 5}}, "blocked_identifiers": []}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(profile_id(&s, "user_id:kid"), mom);
    assert_eq!(
        member_ids(&s, &gamers),
        [mom.as_str()],
        "Gamers' members right after the rules rebuild"
    );
    let again = audience_events(&s, "/api/v1/audience-events");
    assert_eq!(again.len(), after.len() + 2, "{again:#?}");
    assert_eq!(again[..after.len()], after[..]);
    let mut new: Vec<_> = again[after.len()..].iter().map(brief).collect();
    new.sort();
    assert_eq!(new, [b("in", &mom, "rebuilt"), b("out", &kid, "rebuilt")]);
    assert_eq!(
        audience_names(&s, "user_id:kid"),
        ["Flower buyers", "Gamers"]
    );
    assert_eq!(computed_traits(&s, "user_id:mom"), json!({"games": 1}));

    // All of it survives a restart on the re-derived state file.
    let auds = [flowers.as_str(), gamers.as_str()];
    let idents = ["user_id:mom", "user_id:kid"];
    let before_restart = snapshot(&s, &auds, &idents);
    let mut s = s;
    assert!(s.stop().success());
    let s = Server::start(dir.path());
    assert_same(&s, &key, &before_restart, &auds, &idents);
}
