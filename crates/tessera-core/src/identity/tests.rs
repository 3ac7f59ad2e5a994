//! Tests of the identity engine. This file holds the shared harness (feeding Segment bodies at
//! increasing log positions, persisting `take_changes` batches the way the store does,
//! restarting from them), the invariants every test checks, and the tests of commit batches and
//! restarts. Segment's documented scenarios are table tests in `matching` and `profiles` (run by
//! `table`); invariants over random event streams are property tests in `props`.

use super::*;
use crate::time::Millis;
use serde_json::{json, Value};
use std::collections::BTreeMap;

mod matching;
mod profiles;
mod props;
mod table;

const SOURCE: &str = "src_1";
/// 2024-05-01T12:30:00Z.
const T0: Millis = 1_714_566_600_000;
const MINUTE: Millis = 60_000;
const DAY: Millis = 86_400_000;

/// `minutes` after `T0`.
fn at(minutes: i64) -> Millis {
    T0 + minutes * MINUTE
}

/// What the store holds after committing batches: the input of `Engine::restore`, plus the
/// rows a store appends (assignments, history, merges).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Stored {
    position: i64,
    profiles: BTreeMap<i64, String>,
    /// (absorbed profile, the profile it merged into).
    absorbed: Vec<(i64, i64)>,
    accounts: BTreeMap<i64, String>,
    /// (profile key, event position).
    assignments: Vec<(i64, i64)>,
    history: Vec<HistoryRow>,
    merges: Vec<MergeRow>,
}

impl Stored {
    fn commit(&mut self, batch: CommitBatch) {
        assert!(batch.position >= self.position, "positions go forward");
        self.position = batch.position;
        for (key, doc) in batch.profiles {
            self.profiles.insert(key, doc);
        }
        for a in batch.absorbed {
            self.profiles.remove(&a.profile);
            self.absorbed.push((a.profile, a.survivor));
        }
        for (key, doc) in batch.accounts {
            self.accounts.insert(key, doc);
        }
        self.assignments.extend(batch.assignments);
        self.history.extend(batch.history);
        self.merges.extend(batch.merges);
    }

    fn restore(&self, rules: &IdentityRules) -> Engine {
        Engine::restore(
            rules.clone(),
            self.position,
            self.profiles.clone(),
            self.absorbed.iter().copied(),
            self.accounts.clone(),
        )
        .expect("the stored state restores")
    }
}

/// An engine fed at positions 1, 2, 3… and the store its batches went to.
struct Harness {
    rules: IdentityRules,
    engine: Engine,
    next: i64,
    stored: Stored,
}

impl Harness {
    fn new(rules: IdentityRules) -> Harness {
        Harness {
            engine: Engine::new(rules.clone()),
            rules,
            next: 1,
            stored: Stored::default(),
        }
    }

    fn with_rules(rules: Value) -> Harness {
        Harness::new(IdentityRules::from_json(&rules).expect("rules are valid"))
    }

    /// Applies one event body at the next log position.
    fn send(&mut self, ts: Millis, body: &Value) -> Option<i64> {
        let position = self.next;
        self.next += 1;
        let text = body.to_string();
        let facts = EventFacts::parse(position, ts, SOURCE, &text).expect("the body parses");
        self.engine.apply(&facts)
    }

    fn commit(&mut self) {
        let batch = self.engine.take_changes();
        self.stored.commit(batch);
    }

    /// Commits, then replaces the engine with one restored from the store.
    fn restart(&mut self) {
        self.commit();
        self.engine = self.stored.restore(&self.rules);
    }

    /// (type, value) of every identifier of a live profile.
    fn idents(&self, key: i64) -> Vec<(String, String)> {
        let p = self.engine.profile(key).expect("a live profile");
        p.identifiers
            .into_iter()
            .map(|i| (i.kind, i.value))
            .collect()
    }

    fn trait_value(&self, key: i64, name: &str) -> Option<String> {
        let p = self.engine.profile(key).expect("a live profile");
        p.traits
            .into_iter()
            .find(|t| t.key == name)
            .map(|t| t.value)
    }
}

/// The documents of every live profile.
fn live_docs(e: &Engine) -> BTreeMap<i64, String> {
    e.live_keys()
        .into_iter()
        .map(|k| (k, e.document(k).expect("live keys have documents")))
        .collect()
}

/// Every identifier belongs to exactly one live profile, lookups by identifier agree with the
/// profiles, and live keys, views and stats agree with each other.
fn assert_consistent(e: &Engine) {
    let live = e.live_keys();
    let stats = e.stats();
    assert_eq!(stats.live_profiles, live.len(), "stats count live profiles");
    let mut owner: BTreeMap<(String, String), i64> = BTreeMap::new();
    for &key in &live {
        assert_eq!(
            e.resolve_key(key),
            Some(key),
            "a live key resolves to itself"
        );
        let p = e.profile(key).expect("a live key has a profile");
        assert_eq!(p.key, key);
        // Everything a profile holds was seen by then, absorbed profiles' data included.
        let newest = p.identifiers.iter().map(|i| i.last_seen);
        let newest = newest.chain(p.traits.iter().map(|t| t.updated_at)).max();
        assert!(
            newest.is_none_or(|n| n <= p.updated_at),
            "{key}: updated_at {} is older than what it holds ({newest:?})",
            p.updated_at
        );
        for id in &p.identifiers {
            assert_eq!(
                e.profile_by_identifier(&id.kind, &id.value),
                Some(key),
                "lookup of {}:{} gives the profile holding it",
                id.kind,
                id.value
            );
            let ident = (id.kind.clone(), id.value.clone());
            if let Some(other) = owner.insert(ident, key) {
                panic!("{}:{} is on {other} and {key}", id.kind, id.value);
            }
        }
    }
    assert_eq!(
        owner.len(),
        stats.identifiers,
        "every identifier ever added is on exactly one live profile"
    );
}

/// What the store holds is what the engine holds, and an engine restored from it holds the
/// same again.
fn assert_restores(h: &Harness) {
    assert!(
        h.engine.has_no_pending_changes(),
        "commit before checking the store"
    );
    assert_eq!(
        h.stored.profiles,
        live_docs(&h.engine),
        "stored docs are the live docs"
    );
    let r = h.stored.restore(&h.rules);
    assert_eq!(r.live_keys(), h.engine.live_keys());
    assert_eq!(live_docs(&r), live_docs(&h.engine));
    for &(absorbed, _) in &h.stored.absorbed {
        assert_eq!(r.resolve_key(absorbed), h.engine.resolve_key(absorbed));
        // A merged-away key reads as the profile that absorbed it.
        let survivor = r.resolve_key(absorbed).unwrap();
        assert_eq!(r.profile(absorbed), r.profile(survivor));
        assert_eq!(r.profile(absorbed).map(|p| p.key), Some(survivor));
    }
    for &key in h.stored.accounts.keys() {
        assert_eq!(r.account(key), h.engine.account(key));
    }
    assert_consistent(&r);
}

impl Engine {
    /// No change is waiting to be taken (tests only).
    fn has_no_pending_changes(&self) -> bool {
        self.changes.assignments.is_empty()
            && self.changes.history.is_empty()
            && self.changes.merges.is_empty()
            && self.changes.dirty_profiles.is_empty()
            && self.changes.dirty_accounts.is_empty()
    }
}

#[test]
fn a_batch_resolves_keys_to_the_profile_live_at_its_end() {
    let mut h = Harness::new(IdentityRules::default());
    h.send(at(0), &json!({"type": "page", "anonymousId": "a1"}));
    h.send(at(1), &json!({"type": "page", "anonymousId": "a2"}));
    h.send(
        at(2),
        &json!({"type": "identify", "anonymousId": "a3", "traits": {"email": "x@y.com"}}),
    );
    // Merges 2 and 3 (survivor 2), then 1 and 2 (survivor 1), all in one batch.
    h.send(
        at(3),
        &json!({"type": "identify", "anonymousId": "a2", "traits": {"email": "x@y.com"}}),
    );
    h.send(
        at(4),
        &json!({"type": "alias", "userId": "u1", "previousId": "a1"}),
    );
    assert_eq!(
        h.send(
            at(5),
            &json!({"type": "track", "event": "E", "userId": "u1", "anonymousId": "a2"})
        ),
        Some(1)
    );
    let batch = h.engine.take_changes();
    assert_eq!(batch.position, 6);
    assert_eq!(
        batch.profiles.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![1],
        "only live profiles are written"
    );
    assert_eq!(batch.profiles[0].1, h.engine.document(1).unwrap());
    let absorbed: Vec<(i64, i64, i64, i64)> = batch
        .absorbed
        .iter()
        .map(|a| (a.profile, a.survivor, a.live, a.position))
        .collect();
    assert_eq!(absorbed, vec![(3, 2, 1, 4), (2, 1, 1, 6)]);
    assert_eq!(
        batch.assignments,
        (1..=6).map(|pos| (1, pos)).collect::<Vec<_>>(),
        "every assignment points at the profile live at the end of the batch"
    );
    assert_eq!(batch.merges.len(), 2);
    assert_eq!(
        (batch.merges[0].survivor, batch.merges[0].absorbed.clone()),
        (2, vec![3])
    );
    assert_eq!(
        (batch.merges[1].survivor, batch.merges[1].absorbed.clone()),
        (1, vec![2])
    );
    assert!(batch.history.iter().all(|r| r.profile == 1));
    assert!(h.engine.take_changes().is_empty(), "changes are taken once");
    h.stored.commit(batch);
    assert_restores(&h);
    assert_eq!(h.engine.profile(1).unwrap().merges, 2);
}

#[test]
fn an_event_without_usable_identifiers_changes_nothing_but_the_position() {
    let mut h = Harness::new(IdentityRules::default());
    let r = h.send(
        at(0),
        &json!({"type": "track", "event": "E", "userId": "null"}),
    );
    assert_eq!(r, None);
    let batch = h.engine.take_changes();
    assert_eq!(
        batch,
        CommitBatch {
            position: 1,
            documents: true,
            rules: Some(IdentityRules::default().to_json().to_string()),
            ..CommitBatch::default()
        }
    );
    assert_eq!(h.engine.position(), 1);
    assert!(h.engine.live_keys().is_empty());
}

#[test]
fn a_restarted_engine_decides_as_the_one_that_wrote_the_store() {
    let rules = json!({"identifiers": {"email": {"limit": 1, "window": "1d"}}, "max_merges": 1});
    let events = [
        (
            at(0),
            json!({"type": "identify", "userId": "u1", "traits": {"email": "a@x.com", "plan": "free"}}),
        ),
        (at(1), json!({"type": "page", "anonymousId": "a2"})),
        (
            at(2),
            json!({"type": "group", "groupId": "g1", "anonymousId": "a2", "traits": {"n": 1}}),
        ),
        (
            at(3),
            json!({"type": "identify", "anonymousId": "a2", "traits": {"email": "a@x.com"}}),
        ),
        (
            at(4),
            json!({"type": "identify", "userId": "u1", "traits": {"email": "b@x.com"}}),
        ),
        (
            at(3 * 24 * 60),
            json!({"type": "identify", "userId": "u1", "traits": {"email": "b@x.com", "plan": "pro"}}),
        ),
        (
            at(3 * 24 * 60 + 1),
            json!({"type": "page", "anonymousId": "a3"}),
        ),
        (
            at(3 * 24 * 60 + 2),
            json!({"type": "identify", "anonymousId": "a3", "traits": {"email": "b@x.com"}}),
        ),
    ];
    let mut straight = Harness::with_rules(rules.clone());
    let straight_keys: Vec<Option<i64>> =
        events.iter().map(|(ts, b)| straight.send(*ts, b)).collect();
    straight.commit();
    for cut in 0..=events.len() {
        let mut h = Harness::with_rules(rules.clone());
        let mut keys = Vec::new();
        for (i, (ts, body)) in events.iter().enumerate() {
            if i == cut {
                h.restart();
            }
            keys.push(h.send(*ts, body));
        }
        h.commit();
        assert_eq!(keys, straight_keys, "restart before event {cut}");
        assert_eq!(
            live_docs(&h.engine),
            live_docs(&straight.engine),
            "cut {cut}"
        );
        assert_eq!(h.stored.profiles, straight.stored.profiles, "cut {cut}");
        assert_eq!(h.stored.accounts, straight.stored.accounts, "cut {cut}");
        assert_eq!(h.stored.merges, straight.stored.merges, "cut {cut}");
        assert_restores(&h);
    }
    // The profile of u1 absorbed a2's (which carried the account) and its second email was
    // accepted once the first was outside the window.
    assert_eq!(straight_keys[3], Some(1));
    assert_eq!(straight.engine.profile(1).unwrap().accounts, vec![3]);
    assert_eq!(straight.engine.account(3).unwrap().members, vec![1]);
    assert_eq!(
        straight.engine.profile_by_identifier("email", "b@x.com"),
        Some(1)
    );
    assert_eq!(straight.trait_value(1, "plan").as_deref(), Some("\"pro\""));
    // max_merges 1: a3's profile can no longer join u1's; the anonymous id is dropped instead.
    assert_eq!(straight_keys[7], Some(1));
    assert_eq!(straight.engine.live_keys(), vec![1, 7]);
    assert_eq!(
        straight.idents(7),
        vec![("anonymous_id".into(), "a3".into())]
    );
}
