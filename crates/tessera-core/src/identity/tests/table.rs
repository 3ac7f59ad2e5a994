//! The runner of the table tests (`matching`, `profiles`): each row is a name, the workspace's
//! rules, a sequence of events and the checks that must hold afterwards. Every row also checks
//! the engine's invariants and that an engine restored from the committed batches agrees.

use super::*;

/// (type, value) pairs, or (key, JSON value) for traits.
type Pairs = Vec<(&'static str, &'static str)>;
/// A merge row as a table states it: (position, survivor, absorbed, identifiers).
type MergeSpec = (i64, i64, Vec<i64>, Pairs);
/// A merge row without its time, for comparing.
type MergeKey = (i64, i64, Vec<i64>, Vec<(String, String)>);

/// Something that must hold after a row's events.
pub(super) enum Check {
    /// What `apply` returned for each event, in order.
    Returned(Vec<Option<i64>>),
    /// The keys of the live profiles.
    Live(Vec<i64>),
    /// Exactly these (type, value) identifiers are on the live profile with this key.
    Idents(i64, Pairs),
    /// `profile_by_identifier(type, raw value)`.
    Lookup(&'static str, String, Option<i64>),
    /// `resolve_key(from) == Some(to)`, and `from` is not itself live unless equal.
    Resolves(i64, i64),
    /// A trait of a live profile has this JSON text.
    Trait(i64, &'static str, &'static str),
    /// A live profile has no such trait.
    NoTrait(i64, &'static str),
    /// How many profiles were merged into a live profile.
    MergeCount(i64, u32),
    /// The merge rows committed: (position, survivor, absorbed, identifiers).
    Merges(Vec<MergeSpec>),
    /// The committed history rows of one trait: (profile, position, JSON value).
    History(&'static str, Vec<(i64, i64, &'static str)>),
    /// The account of a group id: its key, traits (key, JSON value) and live members.
    Account(&'static str, i64, Pairs, Vec<i64>),
    /// The account keys of a live profile.
    Accounts(i64, Vec<i64>),
    /// `created_at` and `updated_at` of a live profile.
    Times(i64, Millis, Millis),
}

pub(super) use Check::*;

pub(super) struct Case {
    name: String,
    rules: Value,
    events: Vec<(Millis, Value)>,
    expect: Vec<Check>,
}

pub(super) fn case(
    name: &str,
    rules: Value,
    events: Vec<(Millis, Value)>,
    expect: Vec<Check>,
) -> Case {
    Case {
        name: name.to_string(),
        rules,
        events,
        expect,
    }
}

/// Events one minute apart.
pub(super) fn seq(bodies: Vec<Value>) -> Vec<(Millis, Value)> {
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, b)| (at(i as i64), b))
        .collect()
}

pub(super) fn default_rules() -> Value {
    json!({})
}

fn pairs(v: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut v = v;
    v.sort();
    v
}

fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs(
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    )
}

pub(super) fn run(case: &Case) {
    let name = &case.name;
    let mut h = Harness::with_rules(case.rules.clone());
    let mut returned = Vec::new();
    for (ts, body) in &case.events {
        returned.push(h.send(*ts, body));
        // Commit after every event, like an applier under light load.
        h.commit();
    }
    for check in &case.expect {
        match check {
            Returned(want) => assert_eq!(&returned, want, "{name}: keys returned by apply"),
            Live(want) => assert_eq!(&h.engine.live_keys(), want, "{name}: live keys"),
            Idents(key, want) => {
                assert_eq!(
                    pairs(h.idents(*key)),
                    owned(want),
                    "{name}: identifiers of {key}"
                )
            }
            Lookup(ty, raw, want) => assert_eq!(
                h.engine.profile_by_identifier(ty, raw),
                *want,
                "{name}: profile of {ty} {raw:?}"
            ),
            Resolves(from, to) => {
                assert_eq!(
                    h.engine.resolve_key(*from),
                    Some(*to),
                    "{name}: {from} resolves"
                );
                assert_eq!(
                    h.engine.profile(*from).map(|p| p.key),
                    Some(*to),
                    "{name}: a merged-away key reads as its survivor"
                );
            }
            Trait(key, t, want) => assert_eq!(
                h.trait_value(*key, t).as_deref(),
                Some(*want),
                "{name}: trait {t} of {key}"
            ),
            NoTrait(key, t) => assert_eq!(h.trait_value(*key, t), None, "{name}: trait {t}"),
            MergeCount(key, n) => assert_eq!(
                h.engine.profile(*key).expect("live").merges,
                *n,
                "{name}: merges of {key}"
            ),
            Merges(want) => {
                let got: Vec<MergeKey> = h
                    .stored
                    .merges
                    .iter()
                    .map(|m| {
                        (
                            m.position,
                            m.survivor,
                            m.absorbed.clone(),
                            m.identifiers.clone(),
                        )
                    })
                    .collect();
                let want: Vec<MergeKey> = want
                    .iter()
                    .map(|(p, s, a, ids)| {
                        let ids = ids
                            .iter()
                            .map(|(t, v)| (t.to_string(), v.to_string()))
                            .collect();
                        (*p, *s, a.clone(), ids)
                    })
                    .collect();
                assert_eq!(got, want, "{name}: merge rows");
                assert_eq!(
                    h.stored.absorbed.len(),
                    want.iter().map(|m| m.2.len()).sum::<usize>(),
                    "{name}: one absorbed row per absorbed profile"
                );
            }
            History(t, want) => {
                let got: Vec<(i64, i64, String)> = h
                    .stored
                    .history
                    .iter()
                    .filter(|r| r.key == *t)
                    .map(|r| {
                        assert_eq!(r.source, SOURCE);
                        (r.profile, r.position, r.value.clone())
                    })
                    .collect();
                let want: Vec<(i64, i64, String)> = want
                    .iter()
                    .map(|(k, p, v)| (*k, *p, v.to_string()))
                    .collect();
                assert_eq!(got, want, "{name}: history of {t}");
            }
            Account(group_id, key, traits, members) => {
                assert_eq!(
                    h.engine.account_by_group_id(group_id),
                    Some(*key),
                    "{name}: account of {group_id}"
                );
                let a = h.engine.account(*key).expect("the account exists");
                assert_eq!(a.group_id, *group_id);
                let got: Vec<(String, String)> =
                    a.traits.into_iter().map(|t| (t.key, t.value)).collect();
                assert_eq!(got, owned(traits), "{name}: traits of {group_id}");
                assert_eq!(&a.members, members, "{name}: members of {group_id}");
            }
            Times(key, created, updated) => {
                let p = h.engine.profile(*key).expect("live");
                assert_eq!(
                    (p.created_at, p.updated_at),
                    (*created, *updated),
                    "{name}: times of {key}"
                );
            }
            Accounts(key, want) => assert_eq!(
                &h.engine.profile(*key).expect("live").accounts,
                want,
                "{name}: accounts of {key}"
            ),
        }
    }
    assert_consistent(&h.engine);
    assert_restores(&h);
}
