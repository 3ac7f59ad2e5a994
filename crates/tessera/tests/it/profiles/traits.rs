//! Traits: last write wins by event time (then log position, also across merges), with every
//! change kept, paged and readable as of any time.

use super::*;

#[test]
fn traits_are_last_write_wins_by_event_time_with_history() {
    let (_d, s, key) = fresh("traits");
    let src = source_id(&s, &key);
    let newer = "2024-05-02T10:00:00.000Z";
    let older = "2024-05-01T10:00:00.000Z";
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "tw", "traits": {"plan": "pro", "seats": 5}, "timestamp": newer}),
    );
    // An older value arriving late (a backfill, an offline device) does not win.
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "tw", "traits": {"plan": "free"}, "timestamp": older}),
    );
    sync(&s, &key);
    let t = ok(&s, &profile("user_id:tw", "/traits"));
    assert_eq!(t["traits"], json!({"plan": "pro", "seats": 5}), "{t}");
    assert_eq!(ok(&s, &profile("user_id:tw", ""))["traits"], t["traits"]);
    let v = ok(&s, &profile("user_id:tw", "/traits?verbose=true"));
    assert_eq!(
        v["traits"]["plan"],
        json!({"value": "pro", "source": src, "updated_at": newer}),
        "{v}"
    );
    assert_eq!(
        ok(&s, &profile("user_id:tw", "?verbose=true"))["traits"],
        v["traits"]
    );

    // The history holds both values of `plan`, each with its own time.
    let h = ok(&s, &profile("user_id:tw", "/history"));
    let plans: Vec<(Value, Value)> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trait"] == "plan")
        .map(|r| (r["value"].clone(), r["timestamp"].clone()))
        .collect();
    assert_eq!(plans.len(), 2, "{h}");
    assert!(plans.contains(&(json!("pro"), json!(newer))), "{h}");
    assert!(plans.contains(&(json!("free"), json!(older))), "{h}");
    assert!(h["history"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["source"] == src.as_str()));

    // As of a time between the two writes, the older value was the truth.
    let between = "2024-05-01T12:00:00Z";
    let a = ok(
        &s,
        &profile("user_id:tw", &format!("/traits?as_of={between}")),
    );
    assert_eq!(a["traits"], json!({"plan": "free"}), "{a}");
    assert_eq!(a["as_of"], "2024-05-01T12:00:00.000Z");
    let between_ms = 1_714_564_800_000i64; // 2024-05-01T12:00:00Z
    let a_ms = ok(
        &s,
        &profile("user_id:tw", &format!("/traits?as_of={between_ms}")),
    );
    assert_eq!(a_ms["traits"], a["traits"]);
    let av = ok(
        &s,
        &profile(
            "user_id:tw",
            &format!("/traits?as_of={between}&verbose=true"),
        ),
    );
    assert_eq!(
        av["traits"]["plan"],
        json!({"value": "free", "source": src, "updated_at": older})
    );
    let before = ok(
        &s,
        &profile("user_id:tw", "/traits?as_of=2024-04-30T00:00:00Z"),
    );
    assert_eq!(before["traits"], json!({}));
    let after = ok(
        &s,
        &profile("user_id:tw", "/traits?as_of=2024-05-03T00:00:00Z"),
    );
    assert_eq!(after["traits"], t["traits"]);
    let r = s.admin("GET", &profile("user_id:tw", "/traits?as_of=yesterday"), "");
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, json!("invalid_value"))
    );

    // A newer write from another source wins and names that source.
    let crm = s.source("crm");
    let crm_id = source_id(&s, &crm);
    send(
        &s,
        &crm,
        "identify",
        json!({"userId": "tw", "traits": {"plan": "enterprise"}, "timestamp": "2024-05-03T10:00:00.000Z"}),
    );
    sync(&s, &key);
    let v = ok(&s, &profile("user_id:tw", "/traits?verbose=true"));
    assert_eq!(
        v["traits"]["plan"],
        json!({"value": "enterprise", "source": crm_id, "updated_at": "2024-05-03T10:00:00.000Z"})
    );
    assert_eq!(
        v["traits"]["seats"],
        json!({"value": 5, "source": src, "updated_at": newer})
    );
}

#[test]
fn history_pages_cover_every_trait_change() {
    let (_d, s, key) = fresh("histpages");
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "hp", "traits": {"a": 1, "b": 2, "c": 3}}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "hp", "traits": {"d": 4}}),
    );
    sync(&s, &key);
    let all = ok(&s, &profile("user_id:hp", "/history?limit=100"));
    assert_eq!(all["history"].as_array().unwrap().len(), 4, "{all}");
    let mut paged = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let page = ok(
            &s,
            &profile("user_id:hp", &format!("/history?limit=2{cursor}")),
        );
        paged.extend(page["history"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(Value::Array(paged), all["history"]);
}

#[test]
fn merged_traits_break_timestamp_ties_by_log_order() {
    let (_d, s, key) = fresh("tiemerge");
    let t = "2024-01-01T00:00:00.000Z";
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "tie", "traits": {"plan": "a"}, "timestamp": t}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"anonymousId": "tie-x", "traits": {"plan": "b"}, "timestamp": t}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "tie", "anonymousId": "tie-x", "timestamp": "2024-01-02T00:00:00Z"}),
    );
    sync(&s, &key);
    let now = ok(&s, &profile("user_id:tie", "/traits"));
    let as_of = ok(
        &s,
        &profile("user_id:tie", "/traits?as_of=2024-01-03T00:00:00Z"),
    );
    assert_eq!(now["traits"], as_of["traits"]);
    assert_eq!(
        now["traits"],
        json!({"plan": "b"}),
        "a tie goes to the later event"
    );
}
