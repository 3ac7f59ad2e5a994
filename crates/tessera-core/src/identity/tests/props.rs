//! Property tests of the identity engine over random event streams: ids come from small pools
//! (so merges and limit conflicts are frequent), kinds and timestamps (out of order too) are
//! random, and so are the rules. Checked: identifiers are owned by exactly one live profile,
//! limits and caps hold, no event leaves the timelines, batching and restarts change nothing.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

/// Pools of raw values; those marked `false` are blocked by the default rules.
const USERS: [(&str, bool); 4] = [("u1", true), ("u2", true), ("u3", true), ("null", false)];
const ANONS: [(&str, bool); 5] = [
    ("a1", true),
    ("a2", true),
    ("a3", true),
    ("a4", true),
    ("", false),
];
/// The first two are one address.
const EMAILS: [(&str, bool); 5] = [
    ("e1@x.com", true),
    (" E1@X.com", true),
    ("e2@x.com", true),
    ("e3@x.com", true),
    ("undefined", false),
];
/// The first two are one number.
const PHONES: [(&str, bool); 3] = [
    ("+1 555 010 0001", true),
    ("001 555 010 0001", true),
    ("+44 20 7946 0958", true),
];
const DEVICES: [&str; 2] = ["d1", "d2"];
const GROUPS: [&str; 2] = ["g1", "g2"];
const PLANS: [&str; 3] = ["free", "pro", "trial"];

/// Rules the streams run under: defaults, tight limits, a window, caps.
fn rule_sets() -> Vec<Value> {
    vec![
        json!({}),
        json!({"identifiers": {"email": {"limit": 2}, "anonymous_id": {"limit": 2}}}),
        json!({"identifiers": {"email": {"limit": 1, "window": "1h"}, "anonymous_id": {"limit": 2}}}),
        json!({"identifiers": {"user_id": {"limit": 2}, "device_id": {"priority": 1, "limit": 1}}}),
        json!({"max_merges": 2, "max_identifiers": 4}),
        json!({"phone_country_code": "+1",
               "identifiers": {"phone": {"limit": 1}, "anonymous_id": {"limit": 1}}}),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Identify,
    Track,
    Page,
    Alias,
    Group,
}

/// One random event, by pool index.
#[derive(Debug, Clone)]
struct Ev {
    kind: Kind,
    user: Option<usize>,
    anon: Option<usize>,
    email: Option<usize>,
    phone: Option<usize>,
    device: Option<usize>,
    /// Index into users, then anonymous ids.
    previous: usize,
    group: usize,
    plan: Option<usize>,
    /// Minutes after `T0`.
    minute: i64,
}

impl Ev {
    fn body(&self) -> Value {
        let mut b = json!({"type": match self.kind {
            Kind::Identify => "identify",
            Kind::Track => "track",
            Kind::Page => "page",
            Kind::Alias => "alias",
            Kind::Group => "group",
        }});
        let user = match self.kind {
            Kind::Alias => Some(self.user.unwrap_or(0)),
            _ => self.user,
        };
        if let Some(u) = user {
            b["userId"] = json!(USERS[u].0);
        }
        if let Some(a) = self.anon {
            b["anonymousId"] = json!(ANONS[a].0);
        }
        let email = self.email.map(|i| EMAILS[i].0);
        let plan = self.plan.map(|i| PLANS[i]);
        match self.kind {
            Kind::Identify => {
                b["traits"] = json!({});
                if let Some(e) = email {
                    b["traits"]["email"] = json!(e);
                }
                if let Some(p) = self.phone {
                    b["traits"]["phone"] = json!(PHONES[p].0);
                }
                if let Some(p) = plan {
                    b["traits"]["plan"] = json!(p);
                }
            }
            Kind::Track | Kind::Page => {
                b["event"] = json!("Clicked");
                b["context"] = json!({"traits": {}});
                if let Some(e) = email {
                    b["context"]["traits"]["email"] = json!(e);
                }
                if let Some(p) = plan {
                    b["context"]["traits"]["plan"] = json!(p);
                }
                if let Some(d) = self.device {
                    b["context"]["device"] = json!({"id": DEVICES[d]});
                }
            }
            Kind::Alias => {
                b["previousId"] = json!(self.previous_id().0);
            }
            Kind::Group => {
                b["groupId"] = json!(GROUPS[self.group]);
                if let Some(p) = plan {
                    b["traits"] = json!({"plan": p});
                }
                if let Some(e) = email {
                    b["context"] = json!({"traits": {"email": e}});
                }
            }
        }
        b
    }

    fn previous_id(&self) -> (&'static str, bool) {
        if self.previous < USERS.len() {
            USERS[self.previous]
        } else {
            ANONS[self.previous - USERS.len()]
        }
    }

    /// Whether the body carries an identifier that is not blocked.
    fn usable(&self) -> bool {
        let user = match self.kind {
            Kind::Alias => Some(self.user.unwrap_or(0)),
            _ => self.user,
        };
        let mut ok = user.is_some_and(|u| USERS[u].1) || self.anon.is_some_and(|a| ANONS[a].1);
        ok |= self.email.is_some_and(|e| EMAILS[e].1) && !matches!(self.kind, Kind::Alias);
        ok |= self.phone.is_some_and(|p| PHONES[p].1) && matches!(self.kind, Kind::Identify);
        ok |= self.device.is_some() && matches!(self.kind, Kind::Track | Kind::Page);
        ok |= matches!(self.kind, Kind::Alias) && self.previous_id().1;
        ok
    }

    fn ts(&self) -> Millis {
        at(self.minute)
    }
}

fn ev() -> impl Strategy<Value = Ev> {
    let kind = prop_oneof![
        3 => Just(Kind::Identify),
        3 => Just(Kind::Track),
        2 => Just(Kind::Page),
        1 => Just(Kind::Alias),
        1 => Just(Kind::Group),
    ];
    (
        kind,
        prop::option::weighted(0.5, 0..USERS.len()),
        prop::option::weighted(0.6, 0..ANONS.len()),
        prop::option::weighted(0.4, 0..EMAILS.len()),
        prop::option::weighted(0.2, 0..PHONES.len()),
        prop::option::weighted(0.2, 0..DEVICES.len()),
        0..USERS.len() + ANONS.len(),
        0..GROUPS.len(),
        prop::option::weighted(0.4, 0..PLANS.len()),
        0..240i64,
    )
        .prop_map(
            |(kind, user, anon, email, phone, device, previous, group, plan, minute)| Ev {
                kind,
                user,
                anon,
                email,
                phone,
                device,
                previous,
                group,
                plan,
                minute,
            },
        )
}

/// A stream and the rules it runs under.
fn stream() -> impl Strategy<Value = (usize, Vec<Ev>)> {
    (0..rule_sets().len(), prop::collection::vec(ev(), 1..40))
}

fn rules(i: usize) -> IdentityRules {
    IdentityRules::from_json(&rule_sets()[i]).expect("rules are valid")
}

/// Limits and caps of the rules hold on every live profile (windowed types excepted: their
/// old values stop counting, so a profile may hold more).
fn assert_within_limits(e: &Engine) {
    let rules = e.rules();
    for key in e.live_keys() {
        let p = e.profile(key).expect("live");
        assert!(p.merges <= rules.max_merges, "{key}: {} merges", p.merges);
        assert!(
            p.identifiers.len() <= rules.max_identifiers as usize,
            "{key}: {} identifiers",
            p.identifiers.len()
        );
        for t in rules
            .types
            .iter()
            .filter(|t| t.enabled && t.window.is_none())
        {
            let n = p.identifiers.iter().filter(|i| i.kind == t.name).count();
            assert!(
                n <= t.limit as usize,
                "{key}: {n} of {} (limit {})",
                t.name,
                t.limit
            );
        }
    }
}

/// Every pool identifier that is known maps to a live profile that holds it.
fn assert_pool_lookups(e: &Engine) {
    let pools: [(&str, Vec<&str>); 5] = [
        ("user_id", USERS.iter().map(|u| u.0).collect()),
        ("anonymous_id", ANONS.iter().map(|a| a.0).collect()),
        ("email", EMAILS.iter().map(|m| m.0).collect()),
        ("phone", PHONES.iter().map(|p| p.0).collect()),
        ("device_id", DEVICES.to_vec()),
    ];
    for (ty, values) in pools {
        for raw in values {
            if let Some(key) = e.profile_by_identifier(ty, raw) {
                let p = e.profile(key).expect("lookups give live profiles");
                let value = e.identifier(ty, raw).expect("known identifier").value;
                assert!(
                    p.identifiers
                        .iter()
                        .any(|i| i.kind == ty && i.value == value),
                    "{ty}:{raw} maps to {key}, which does not hold it"
                );
            }
        }
    }
}

/// Runs a stream, committing after the events whose `cut` bit is set (and at the end).
fn run_batched(rules: &IdentityRules, events: &[Ev], cut: &[bool]) -> (Harness, Vec<Option<i64>>) {
    let mut h = Harness::new(rules.clone());
    let mut keys = Vec::with_capacity(events.len());
    for (i, ev) in events.iter().enumerate() {
        keys.push(h.send(ev.ts(), &ev.body()));
        if cut.get(i).copied().unwrap_or(false) {
            h.commit();
        }
    }
    h.commit();
    (h, keys)
}

/// A history row with its profile resolved: (profile, position, key, value, time).
type ResolvedHistory = (i64, i64, String, String, Millis);

/// Rows that do not depend on batch boundaries: keys resolved to the profile live now.
fn resolved_rows(h: &Harness) -> (Vec<(i64, i64)>, Vec<ResolvedHistory>) {
    let live = |k: i64| h.engine.resolve_key(k).expect("rows name stored profiles");
    let assignments = h
        .stored
        .assignments
        .iter()
        .map(|&(k, pos)| (live(k), pos))
        .collect();
    let history = h
        .stored
        .history
        .iter()
        .map(|r| {
            (
                live(r.profile),
                r.position,
                r.key.clone(),
                r.value.clone(),
                r.ts,
            )
        })
        .collect();
    (assignments, history)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// (a) After every event, every identifier is on exactly one live profile and the
    /// profiles' identifiers are exactly what lookups map to them.
    #[test]
    fn every_identifier_has_exactly_one_live_profile((r, events) in stream()) {
        let mut h = Harness::new(rules(r));
        for ev in &events {
            h.send(ev.ts(), &ev.body());
            assert_consistent(&h.engine);
            assert_pool_lookups(&h.engine);
        }
    }

    /// (b) No live profile passes a type's limit (types without a window), the identifier cap
    /// or the merge cap.
    #[test]
    fn limits_and_caps_hold((r, events) in stream()) {
        let mut h = Harness::new(rules(r));
        for ev in &events {
            h.send(ev.ts(), &ev.body());
            assert_within_limits(&h.engine);
        }
    }

    /// (c) Every event with a usable identifier is assigned to exactly one profile, which
    /// resolves to a live profile; events without one are assigned nowhere.
    #[test]
    fn no_event_leaves_the_timelines((r, events) in stream(), cut in prop::collection::vec(any::<bool>(), 40)) {
        let (h, keys) = run_batched(&rules(r), &events, &cut);
        let mut assigned: BTreeMap<i64, i64> = BTreeMap::new();
        for &(key, pos) in &h.stored.assignments {
            let live = h.engine.resolve_key(key);
            prop_assert!(live.is_some_and(|k| h.engine.profile(k).is_some()), "{key} resolves");
            prop_assert!(assigned.insert(pos, key).is_none(), "event {pos} assigned twice");
        }
        for (i, (ev, key)) in events.iter().zip(&keys).enumerate() {
            let pos = i as i64 + 1;
            prop_assert_eq!(key.is_some(), ev.usable(), "event {} {:?}", pos, ev.body());
            match key {
                Some(k) => {
                    let stored = assigned.get(&pos).copied();
                    prop_assert!(stored.is_some(), "event {} not assigned", pos);
                    prop_assert_eq!(h.engine.resolve_key(stored.unwrap()), h.engine.resolve_key(*k));
                }
                None => prop_assert!(!assigned.contains_key(&pos)),
            }
        }
    }

    /// (d) The same stream gives the same documents in two fresh engines, whatever the batch
    /// boundaries; and the same stored state and rows.
    #[test]
    fn batching_changes_nothing(
        (r, events) in stream(),
        cut in prop::collection::vec(any::<bool>(), 40),
    ) {
        let rules = rules(r);
        let (every, every_keys) = run_batched(&rules, &events, &[true; 40]);
        let (random, random_keys) = run_batched(&rules, &events, &cut);
        let (once, once_keys) = run_batched(&rules, &events, &[]);
        prop_assert_eq!(&every_keys, &random_keys);
        prop_assert_eq!(&every_keys, &once_keys);
        for h in [&random, &once] {
            prop_assert_eq!(h.engine.live_keys(), every.engine.live_keys());
            prop_assert_eq!(live_docs(&h.engine), live_docs(&every.engine));
            prop_assert_eq!(&h.stored.profiles, &every.stored.profiles);
            prop_assert_eq!(&h.stored.accounts, &every.stored.accounts);
            prop_assert_eq!(&h.stored.merges, &every.stored.merges);
            let absorbed: BTreeSet<_> = h.stored.absorbed.iter().collect();
            prop_assert_eq!(absorbed, every.stored.absorbed.iter().collect::<BTreeSet<_>>());
            prop_assert_eq!(resolved_rows(h), resolved_rows(&every));
        }
        prop_assert_eq!(&every.stored.profiles, &live_docs(&every.engine));
    }

    /// (e) Persisting after k events, restoring into a new engine and applying the rest ends
    /// exactly where an uninterrupted engine does, and the store holds its documents.
    #[test]
    fn a_restart_midway_changes_nothing(
        (r, events) in stream(),
        k in 0usize..40,
        cut in prop::collection::vec(any::<bool>(), 40),
    ) {
        let rules = rules(r);
        let k = k % (events.len() + 1);
        let (straight, straight_keys) = run_batched(&rules, &events, &[]);
        let mut h = Harness::new(rules.clone());
        let mut keys = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            if i == k {
                h.restart();
            }
            keys.push(h.send(ev.ts(), &ev.body()));
            if cut[i] {
                h.commit();
            }
        }
        if k == events.len() {
            h.restart();
        }
        h.commit();
        prop_assert_eq!(keys, straight_keys);
        prop_assert_eq!(h.engine.position(), straight.engine.position());
        prop_assert_eq!(h.engine.live_keys(), straight.engine.live_keys());
        prop_assert_eq!(live_docs(&h.engine), live_docs(&straight.engine));
        prop_assert_eq!(&h.stored.profiles, &live_docs(&straight.engine));
        prop_assert_eq!(&h.stored.accounts, &straight.stored.accounts);
        prop_assert_eq!(&h.stored.merges, &straight.stored.merges);
        for g in GROUPS {
            let a = h.engine.account_by_group_id(g);
            prop_assert_eq!(a, straight.engine.account_by_group_id(g));
            if let Some(a) = a {
                prop_assert_eq!(h.engine.account(a), straight.engine.account(a));
            }
        }
        for &(absorbed, _) in &straight.stored.absorbed {
            prop_assert_eq!(h.engine.resolve_key(absorbed), straight.engine.resolve_key(absorbed));
        }
        assert_consistent(&h.engine);
        assert_restores(&h);
    }

    /// (f) Documents rendered a slice at a time while later events keep changing profiles
    /// (copy-on-write) are exactly the documents of the moment the snapshot started.
    #[test]
    fn snapshots_show_profiles_as_they_were(
        (r, events) in stream(),
        k in 0usize..40,
        budgets in prop::collection::vec(0usize..4, 40),
    ) {
        let rules = rules(r);
        let k = k % (events.len() + 1);
        // The reference: every document changed up to k, rendered at k.
        let mut reference = Harness::new(rules.clone());
        for ev in &events[..k] {
            reference.send(ev.ts(), &ev.body());
        }
        let expected = reference.engine.take_changes();
        let mut h = Harness::new(rules.clone());
        for ev in &events[..k] {
            h.send(ev.ts(), &ev.body());
        }
        prop_assert!(h.engine.start_docs());
        prop_assert!(!h.engine.start_docs(), "one snapshot at a time");
        for (i, ev) in events[k..].iter().enumerate() {
            h.engine.render_docs(budgets[i]);
            h.send(ev.ts(), &ev.body());
        }
        prop_assert!(h.engine.render_docs(usize::MAX));
        let drained = h.engine.drain_changes(false);
        let batch = h.engine.batch_of(drained);
        prop_assert!(batch.documents);
        if k > 0 {
            prop_assert_eq!(batch.docs_position, k as i64);
        }
        let as_map = |v: &[(i64, String)]| v.iter().cloned().collect::<BTreeMap<_, _>>();
        prop_assert_eq!(as_map(&batch.profiles), as_map(&expected.profiles));
        prop_assert_eq!(as_map(&batch.accounts), as_map(&expected.accounts));
        // What changed after the snapshot is still marked for the next documents.
        let rest = h.engine.take_changes();
        let mut straight = Harness::new(rules.clone());
        for ev in &events {
            straight.send(ev.ts(), &ev.body());
        }
        let mut all = as_map(&batch.profiles);
        all.extend(as_map(&rest.profiles));
        for a in rest.absorbed.iter().chain(batch.absorbed.iter()) {
            all.remove(&a.profile);
        }
        let merged_away: BTreeSet<i64> = straight.engine.take_changes().absorbed.iter().map(|a| a.profile).collect();
        all.retain(|key, _| !merged_away.contains(key));
        prop_assert_eq!(all, live_docs(&straight.engine));
    }
}
