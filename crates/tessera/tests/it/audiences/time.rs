//! Time passing: a sliding window lets an event go exactly one window after the event's time,
//! with no new event arriving. The profile leaves its audience with reason `time`, stamped
//! with the instant the window edge passed (not when the server got round to noticing), and
//! windowed computed traits drop the event at the same edge.

use super::*;
use tessera_core::time::format_iso8601;

/// How long the exit may take: the edge is a few seconds after the events are sent.
const EDGE_PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn sliding_windows_let_profiles_go_at_the_window_edge() {
    let (_d, s, key) = fresh("audtime");
    let recent = audience(&s, "Pinged last hour", "performed \"Ping\" within 1 hours");
    computed(&s, "pings_1h", "count \"Ping\" within 1 hours");
    computed(&s, "pings", "count \"Ping\"");
    // Almost an hour old: it leaves the window a few seconds from now. `sentAt` is left out,
    // so the server keeps the event time as sent. An odd millisecond shows the exit is
    // stamped with the edge itself.
    let edge_soon = now_ms() - 3_600_000 + 4_000 + 7;
    let at = format_iso8601(edge_soon);
    send(
        &s,
        &key,
        "track",
        json!({"userId": "old-ping", "event": "Ping", "timestamp": at}),
    );
    // A fresh ping stays in the window for the rest of the test.
    send(
        &s,
        &key,
        "track",
        json!({"userId": "new-ping", "event": "Ping"}),
    );
    // Events older than the window never enter.
    send(
        &s,
        &key,
        "track",
        json!({"userId": "stale-ping", "event": "Ping",
               "timestamp": format_iso8601(now_ms() - 3_700_000)}),
    );
    sync(&s, &key);
    let (old, new) = (
        profile_id(&s, "user_id:old-ping"),
        profile_id(&s, "user_id:new-ping"),
    );
    // The old ping is stored with its own time.
    let stored = ok(&s, &profile("user_id:old-ping", "/events"));
    assert_eq!(stored["events"][0]["timestamp"], at.as_str(), "{stored}");

    // It entered on arrival, then left when the hour was up.
    let done = wait_within(
        &s,
        &format!("/api/v1/audience-events?profile={old}"),
        EDGE_PATIENCE,
        |b| b["events"].as_array().is_some_and(|e| e.len() >= 2),
    );
    let feed = done["events"].as_array().unwrap();
    assert_eq!(
        feed.iter().map(brief).collect::<Vec<_>>(),
        [b("in", &old, "event"), b("out", &old, "time")],
        "{done}"
    );
    let (entered, exited) = (&feed[0], &feed[1]);
    assert_eq!(exited["timestamp"], format_iso8601(edge_soon + 3_600_000));
    assert_eq!(exited["properties"]["position"], Value::Null);
    assert_eq!(exited["properties"]["audience_id"], recent.as_str());
    assert!(
        entered["timestamp"].as_str().unwrap() < exited["timestamp"].as_str().unwrap(),
        "{done}"
    );

    // Everything agrees it is gone; the fresh ping is still in, the stale one never was.
    wait_equal("members", &vec![new.clone()], || member_ids(&s, &recent));
    assert_eq!(audience_names(&s, "user_id:old-ping"), Vec::<String>::new());
    assert_eq!(audience_names(&s, "user_id:new-ping"), ["Pinged last hour"]);
    assert_eq!(
        audience_names(&s, "user_id:stale-ping"),
        Vec::<String>::new()
    );
    wait_equal(
        "old-ping's computed traits",
        &json!({"pings": 1, "pings_1h": 0}),
        || computed_traits(&s, "user_id:old-ping"),
    );
    assert_eq!(
        computed_traits(&s, "user_id:new-ping"),
        json!({"pings": 1, "pings_1h": 1})
    );
    assert_eq!(
        computed_traits(&s, "user_id:stale-ping"),
        json!({"pings": 1, "pings_1h": 0})
    );
    let all = audience_events(&s, &format!("/api/v1/audiences/{recent}/events"));
    let mut briefs: Vec<_> = all.iter().map(brief).collect();
    briefs.sort();
    let mut expected = vec![
        b("in", &old, "event"),
        b("out", &old, "time"),
        b("in", &new, "event"),
    ];
    expected.sort();
    assert_eq!(briefs, expected);
    // The sizes went 0 → 1 → 2 → 1 (samples are taken at commits, so steps may be merged).
    let sizes = wait_for(&s, &format!("/api/v1/audiences/{recent}/sizes"), |b| {
        b["sizes"]
            .as_array()
            .and_then(|a| a.last())
            .is_some_and(|l| l["size"] == 1)
    });
    let seen: Vec<i64> = sizes["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["size"].as_i64().unwrap())
        .collect();
    assert!(seen.contains(&2), "{sizes}");
}
