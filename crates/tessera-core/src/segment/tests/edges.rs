//! Scenarios of the edge cases most likely to go wrong: an event exactly at a window's edge,
//! late and future-dated events, merges that make profiles leave, profiles without events,
//! audiences of audiences changing with time, `within` on trait dates, timers of profiles
//! merged away, definitions replaced, and numbers that only fit in 64 unsigned bits. Each
//! step is also checked against the reference and batch evaluation by the harness.

use super::harness::Sim;
use super::{registry, DAY};
use crate::segment::Reason;
use crate::time::{format_iso8601, Millis};
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000;
/// 2023-11-14T00:00:00Z.
const T0: i64 = 19_675 * DAY;

fn sim(computed: &[(&str, &str)], audiences: &[(&str, &str)]) -> Sim {
    let mut s = Sim::new(T0);
    s.set_registry(registry(computed, audiences)).unwrap();
    s
}

/// Sends an event received at `received` with event time `ts`; checks it.
fn send(s: &mut Sim, received: Millis, ts: Millis, body: Value) {
    s.send(received, ts, &body).unwrap();
    s.check().unwrap();
}

/// Moves the clock to `t`; checks it.
fn wait(s: &mut Sim, t: Millis) {
    s.advance(t).unwrap();
    s.check().unwrap();
}

fn view(who: (&str, &str)) -> Value {
    let mut v = json!({"type": "track", "event": "Viewed", "properties": {"category": "jeans"}});
    v[who.0] = json!(who.1);
    v
}

fn identify(who: &[(&str, &str)], traits: Value) -> Value {
    let mut v = json!({"type": "identify", "traits": traits});
    for (field, id) in who {
        v[*field] = json!(id);
    }
    v
}

const U1: (&str, &str) = ("userId", "u1");
const U2: (&str, &str) = ("userId", "u2");
const A1: (&str, &str) = ("anonymousId", "a1");

/// The changes recorded from index `from` on: (audience, profile key, entered, at, reason).
fn since(s: &Sim, from: usize) -> Vec<(String, i64, bool, Millis, &'static str)> {
    s.log[from..]
        .iter()
        .map(|c| {
            (
                c.audience_name.clone(),
                c.profile,
                c.entered,
                c.at,
                c.reason.as_str(),
            )
        })
        .collect()
}

fn change(
    audience: &str,
    profile: i64,
    entered: bool,
    at: Millis,
    reason: &'static str,
) -> (String, i64, bool, Millis, &'static str) {
    (audience.to_owned(), profile, entered, at, reason)
}

#[test]
fn an_event_counts_until_exactly_one_window_after_its_time() {
    let mut s = sim(&[], &[("recent", r#"performed "Viewed" within 7 days"#)]);
    send(&mut s, T0, T0, view(U1));
    assert_eq!(since(&s, 0), vec![change("recent", 1, true, T0, "event")]);
    wait(&mut s, T0 + 7 * DAY - 1);
    assert_eq!(s.log.len(), 1);
    wait(&mut s, T0 + 7 * DAY);
    assert_eq!(
        since(&s, 1),
        vec![change("recent", 1, false, T0 + 7 * DAY, "time")]
    );
    // An event received exactly when the previous one leaves: the exit comes first, then
    // the entry, at the same instant.
    send(&mut s, T0 + 8 * DAY, T0 + 8 * DAY, view(U1));
    let n = s.log.len();
    send(&mut s, T0 + 15 * DAY, T0 + 15 * DAY, view(U1));
    assert_eq!(
        since(&s, n),
        vec![
            change("recent", 1, false, T0 + 15 * DAY, "time"),
            change("recent", 1, true, T0 + 15 * DAY, "event"),
        ]
    );
    wait(&mut s, T0 + 25 * DAY);
    // A late event already out of its window changes nothing.
    let n = s.log.len();
    send(&mut s, T0 + 26 * DAY, T0 + 19 * DAY, view(U1));
    assert_eq!(since(&s, n), vec![]);
    // A late event still inside its window leaves one window after its own time.
    send(&mut s, T0 + 27 * DAY, T0 + 22 * DAY, view(U1));
    wait(&mut s, T0 + 40 * DAY);
    assert_eq!(
        since(&s, n),
        vec![
            change("recent", 1, true, T0 + 27 * DAY, "event"),
            change("recent", 1, false, T0 + 29 * DAY, "time"),
        ]
    );
    // An event from the future enters when its time comes, not when it is received.
    let n = s.log.len();
    let future = T0 + 41 * DAY + 2 * HOUR;
    send(&mut s, T0 + 41 * DAY, future, view(U1));
    assert_eq!(since(&s, n), vec![]);
    wait(&mut s, T0 + 60 * DAY);
    assert_eq!(
        since(&s, n),
        vec![
            change("recent", 1, true, future, "time"),
            change("recent", 1, false, future + 7 * DAY, "time"),
        ]
    );
}

#[test]
fn a_merge_can_make_both_profiles_leave() {
    let mut s = sim(
        &[("views", r#"count "Viewed""#)],
        &[
            ("once", r#"performed "Viewed" at most 1 time"#),
            ("many", "views >= 2"),
        ],
    );
    send(&mut s, T0, T0, view(U1));
    send(&mut s, T0 + HOUR, T0 + HOUR, view(A1));
    let n = s.log.len();
    assert_eq!(n, 2);
    send(
        &mut s,
        T0 + 2 * HOUR,
        T0 + 2 * HOUR,
        identify(&[U1, A1], json!({})),
    );
    let mut got = since(&s, n);
    got.sort();
    let at = T0 + 2 * HOUR;
    assert_eq!(
        got,
        vec![
            change("many", 1, true, at, "merge"),
            change("once", 1, false, at, "merge"),
            change("once", 2, false, at, "merge"),
        ]
    );
    assert!(s.log[n..].iter().all(|c| c.reason
        == Reason::Merge {
            position: 3,
            into: 1
        }));
    let slot = s.engine.slot_of(1).unwrap();
    assert_eq!(s.seg.computed_values(slot)["views"], json!(2));
    // The absorbed profile's slot reads as its survivor.
    let absorbed = s.engine.slot_of(2).unwrap();
    assert_eq!(s.seg.key_of(absorbed), 1);
    let many = s.seg.registry().audience_by_name("many").unwrap();
    assert!(s.seg.is_member(many, absorbed));
}

#[test]
fn profiles_without_events_are_in_audiences_true_of_doing_nothing() {
    let mut s = sim(
        &[("spend", r#"sum price of "Bought""#)],
        &[
            ("never", r#"did not perform "Bought""#),
            ("not_de", r#"country != "DE""#),
            ("no_spend", "spend not exists"),
        ],
    );
    // Created by an identify without events, by an event that none of them reads, and with
    // the trait they test.
    send(&mut s, T0, T0, identify(&[U1], json!({"country": "FR"})));
    send(&mut s, T0 + 1, T0 + 1, view(A1));
    send(
        &mut s,
        T0 + 2,
        T0 + 2,
        identify(&[U2], json!({"country": "DE"})),
    );
    let mut got = since(&s, 0);
    got.sort();
    assert_eq!(
        got,
        vec![
            change("never", 1, true, T0, "event"),
            change("never", 2, true, T0 + 1, "event"),
            change("never", 3, true, T0 + 2, "event"),
            change("no_spend", 1, true, T0, "event"),
            change("no_spend", 2, true, T0 + 1, "event"),
            change("no_spend", 3, true, T0 + 2, "event"),
            change("not_de", 1, true, T0, "event"),
            change("not_de", 2, true, T0 + 1, "event"),
        ]
    );
    let n = s.log.len();
    send(
        &mut s,
        T0 + 3,
        T0 + 3,
        json!({"type": "track", "event": "Bought", "anonymousId": "a1", "properties": {"price": 5}}),
    );
    let mut got = since(&s, n);
    got.sort();
    assert_eq!(
        got,
        vec![
            change("never", 2, false, T0 + 3, "event"),
            change("no_spend", 2, false, T0 + 3, "event"),
        ]
    );
    // A new audience is backfilled over every profile, those without events included.
    let n = s.log.len();
    s.set_registry(registry(
        &[("spend", r#"sum price of "Bought""#)],
        &[
            ("never", r#"did not perform "Bought""#),
            ("not_de", r#"country != "DE""#),
            ("no_spend", "spend not exists"),
            ("quiet", r#"did not perform "Viewed""#),
        ],
    ))
    .unwrap();
    s.check().unwrap();
    assert_eq!(
        since(&s, n),
        vec![
            change("quiet", 1, true, T0 + 3, "backfill"),
            change("quiet", 3, true, T0 + 3, "backfill"),
        ]
    );
}

#[test]
fn an_audience_of_an_audience_follows_it_in_time() {
    let mut s = sim(
        &[],
        &[
            ("active", r#"performed "Viewed" within 3 days"#),
            (
                "lapsed_de",
                r#"not in audience "active" and country = "DE""#,
            ),
        ],
    );
    send(&mut s, T0, T0, identify(&[U1], json!({"country": "DE"})));
    send(&mut s, T0 + HOUR, T0 + HOUR, view(U1));
    wait(&mut s, T0 + 10 * DAY);
    let edge = T0 + HOUR + 3 * DAY;
    assert_eq!(
        since(&s, 0),
        vec![
            change("lapsed_de", 1, true, T0, "event"),
            change("active", 1, true, T0 + HOUR, "event"),
            change("lapsed_de", 1, false, T0 + HOUR, "event"),
            change("active", 1, false, edge, "time"),
            change("lapsed_de", 1, true, edge, "time"),
        ]
    );
}

#[test]
fn within_on_a_trait_date_follows_the_date_and_its_updates() {
    let mut s = sim(&[], &[("new", "signup within 30 days")]);
    let signup = |t: Millis| json!({ "signup": format_iso8601(t) });
    send(&mut s, T0, T0, identify(&[U1], signup(T0 - 10 * DAY)));
    // A signup date in the future enters when it comes.
    send(&mut s, T0, T0, identify(&[U2], signup(T0 + 5 * DAY)));
    wait(&mut s, T0 + 20 * DAY);
    // A newer date moves the exit later; an older one earlier.
    send(
        &mut s,
        T0 + 21 * DAY,
        T0 + 21 * DAY,
        identify(&[U1], signup(T0 + 21 * DAY)),
    );
    send(
        &mut s,
        T0 + 22 * DAY,
        T0 + 22 * DAY,
        identify(&[U2], signup(T0 - 30 * DAY)),
    );
    wait(&mut s, T0 + 60 * DAY);
    assert_eq!(
        since(&s, 0),
        vec![
            change("new", 1, true, T0, "event"),
            change("new", 2, true, T0 + 5 * DAY, "time"),
            change("new", 1, false, T0 + 20 * DAY, "time"),
            change("new", 1, true, T0 + 21 * DAY, "event"),
            change("new", 2, false, T0 + 22 * DAY, "event"),
            change("new", 1, false, T0 + 51 * DAY, "time"),
        ]
    );
}

#[test]
fn a_timer_of_a_profile_merged_away_fires_for_its_survivor() {
    let mut s = sim(&[], &[("recent", r#"performed "Viewed" within 7 days"#)]);
    send(&mut s, T0, T0, identify(&[U1], json!({})));
    send(&mut s, T0 + DAY, T0 + DAY, view(A1));
    send(
        &mut s,
        T0 + 2 * DAY,
        T0 + 2 * DAY,
        identify(&[U1, A1], json!({})),
    );
    wait(&mut s, T0 + 20 * DAY);
    assert_eq!(
        since(&s, 0),
        vec![
            change("recent", 2, true, T0 + DAY, "event"),
            change("recent", 2, false, T0 + 2 * DAY, "merge"),
            change("recent", 1, true, T0 + 2 * DAY, "merge"),
            change("recent", 1, false, T0 + 8 * DAY, "time"),
        ]
    );
}

#[test]
fn replaced_definitions_are_backfilled_or_updated() {
    let mut s = sim(
        &[("views", r#"count "Viewed""#)],
        &[
            ("de", r#"country = "DE""#),
            ("fans", "views >= 2"),
            ("pro", "plan exists"),
            ("gone", r#"plan = "free""#),
        ],
    );
    send(
        &mut s,
        T0,
        T0,
        identify(&[U1], json!({"country": "DE", "plan": "free"})),
    );
    send(&mut s, T0, T0, view(U1));
    send(&mut s, T0 + DAY, T0 + DAY, view(U1));
    send(&mut s, T0 + 2 * DAY, T0 + 2 * DAY, view(A1));
    wait(&mut s, T0 + 3 * DAY);
    let n = s.log.len();
    // `views` gets a window (so `fans`, unchanged, is evaluated again), `pro` changes,
    // `viewers` is new, `gone` is removed, `de` stays as it was.
    s.set_registry(registry(
        &[("views", r#"count "Viewed" within 1 day"#)],
        &[
            ("de", r#"country = "DE""#),
            ("fans", "views >= 2"),
            ("pro", r#"plan = "pro""#),
            ("viewers", r#"performed "Viewed""#),
        ],
    ))
    .unwrap();
    s.check().unwrap();
    let mut got = since(&s, n);
    got.sort();
    let now = T0 + 3 * DAY;
    assert_eq!(
        got,
        vec![
            change("fans", 1, false, now, "definition_updated"),
            change("pro", 1, false, now, "definition_updated"),
            change("viewers", 1, true, now, "backfill"),
            change("viewers", 4, true, now, "backfill"),
        ]
    );
    // The new window has timers.
    let n = s.log.len();
    send(&mut s, now, now, view(U1));
    send(&mut s, now + HOUR, now + HOUR, view(U1));
    wait(&mut s, now + 5 * DAY);
    assert_eq!(
        since(&s, n),
        vec![
            change("fans", 1, true, now + HOUR, "event"),
            change("fans", 1, false, now + DAY, "time"),
        ]
    );
}

#[test]
fn equal_event_times_keep_log_order_across_a_merge() {
    let mut s = sim(
        &[
            ("first_price", r#"first price of "Bought""#),
            ("last_price", r#"last price of "Bought""#),
            ("top", r#"most_frequent category of "Bought""#),
        ],
        &[("cheap_first", "first_price < 5")],
    );
    let bought = |who: (&str, &str), price: Value, category: &str| {
        let mut v = json!({"type": "track", "event": "Bought",
                           "properties": {"price": price, "category": category}});
        v[who.0] = json!(who.1);
        v
    };
    send(&mut s, T0 + HOUR, T0, bought(A1, json!(9.5), "shoes"));
    send(&mut s, T0 + HOUR, T0, bought(U1, json!(1), "jeans"));
    send(
        &mut s,
        T0 + 2 * HOUR,
        T0 + 2 * HOUR,
        identify(&[U1, A1], json!({})),
    );
    let slot = s.engine.slot_of(1).unwrap();
    let values = s.seg.computed_values(slot);
    assert_eq!(values["first_price"], json!(9.5));
    assert_eq!(values["last_price"], json!(1));
    assert_eq!(values["top"], json!("jeans"));
}

#[test]
fn numbers_beyond_i64_keep_their_value() {
    let big = json!(9_223_372_036_854_775_809u64);
    let mut s = sim(
        &[("top_price", r#"max price of "Bought""#)],
        &[
            ("huge_ltv", "ltv = 9223372036854775808"),
            (
                "huge_price",
                r#"performed "Bought" where price = 9223372036854775808"#,
            ),
        ],
    );
    send(&mut s, T0, T0, identify(&[U1], json!({ "ltv": big })));
    send(
        &mut s,
        T0,
        T0,
        json!({"type": "track", "event": "Bought", "userId": "u1", "properties": {"price": big}}),
    );
    let slot = s.engine.slot_of(1).unwrap();
    assert_eq!(s.seg.computed_values(slot)["top_price"], big);
    assert_eq!(s.seg.sizes(), vec![0, 0]);
}
