//! Property tests for `apply`.
//!
//! Idempotence, for policies whose actions are only Keep, Mask and Drop (any declarations, any
//! field overrides): applying the policy to its own output changes nothing, i.e. the message
//! after the second run equals the message after the first. Its findings contain no Drop
//! (everything droppable is already gone or null), are all among the first run's findings (a
//! masked value is either still recognised as its class and masked to itself, or no longer
//! recognised at all), and include every Keep finding of the first run (kept values are
//! unchanged, so they are classified the same way). Hash is left out on purpose: hashing a
//! declared field's hash yields a new hash.
//!
//! Robustness: on arbitrary JSON (any strings, keys, numbers and nesting) with any policy,
//! Hash included, and any salt, `apply` returns without panicking and every finding's path
//! starts in a scanned section.

use super::{apply, Action, Declared, PiiClass, PiiPolicy};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Values that exercise every detector, including almost-matches.
const SAMPLES: &[&str] = &[
    "alice@example.com",
    "Bob@Example.COM",
    "a***@example.com",
    "+14155552671",
    "+1 (415) 555-2671",
    "0151 12345678",
    "4111 1111 1111 1111",
    "4111111111111111",
    "4111111111111112",
    "DE89370400440532013000",
    "GB82 WEST 1234 5698 7654 32",
    "192.168.1.77",
    "2001:db8::1",
    "::ffff:1.2.3.4",
    "123-45-6789",
    "AB123456C",
    "2024-01-05",
    "1.2.3",
    "N/A",
    "",
    "*",
    "@x.io",
];

const KEYS: &[&str] = &[
    "email",
    "phone",
    "card",
    "items",
    "traits",
    "ip",
    "ref",
    "0",
    "note",
    "externalIds",
    "id",
];

const PATHS: &[&str] = &[
    "properties.email",
    "properties.card",
    "properties.items.*.ref",
    "properties.items.0.email",
    "properties.note",
    "traits.email",
    "traits.phone",
    "context.traits.email",
    "context.ip",
    "context.externalIds.*.id",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(SAMPLES).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => prop::sample::select(&[4111111111111111u64, 378282246310005, 5555555555554444][..])
            .prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        1 => "[a-z0-9@.+ -]{0,12}".prop_map(Value::from),
    ]
}

fn known_keys() -> BoxedStrategy<String> {
    prop::sample::select(KEYS).prop_map(String::from).boxed()
}

fn tree(leaves: BoxedStrategy<Value>, keys: BoxedStrategy<String>) -> BoxedStrategy<Value> {
    leaves
        .prop_recursive(5, 48, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
        .boxed()
}

fn message(body: impl Strategy<Value = Value> + Clone) -> impl Strategy<Value = Value> {
    (body.clone(), body.clone(), body).prop_map(|(p, t, c)| {
        let mut m = Map::new();
        m.insert("type".into(), "track".into());
        m.insert("properties".into(), p);
        m.insert("traits".into(), t);
        m.insert("context".into(), c);
        Value::Object(m)
    })
}

fn policy(actions: &'static [Action]) -> impl Strategy<Value = PiiPolicy> {
    let action = prop::sample::select(actions);
    let declared = prop_oneof![
        Just(Declared::NotPii),
        prop::sample::select(&PiiClass::ALL[..]).prop_map(Declared::Class),
    ];
    (
        prop::collection::vec(action.clone(), 6),
        prop::collection::vec((prop::sample::select(PATHS), action), 0..4),
        prop::collection::vec((prop::sample::select(PATHS), declared), 0..4),
    )
        .prop_map(|(classes, fields, declared)| {
            let mut p = PiiPolicy::keep_all();
            for (c, a) in PiiClass::ALL.into_iter().zip(classes) {
                p = p.with_class(c, a);
            }
            for (path, a) in fields {
                p = p.with_field(path, a);
            }
            for (path, d) in declared {
                p = p.with_declared(path, d);
            }
            p
        })
}

const NO_HASH: &[Action] = &[Action::Keep, Action::Mask, Action::Drop];
const ANY: &[Action] = &[Action::Keep, Action::Hash, Action::Mask, Action::Drop];

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn applying_twice_changes_nothing_more(
        m in message(tree(leaf().boxed(), known_keys())),
        p in policy(NO_HASH),
    ) {
        let mut once = m;
        let first = apply(&mut once, &p, b"salt");
        let mut twice = once.clone();
        let second = apply(&mut twice, &p, b"salt");
        prop_assert_eq!(&twice, &once);
        prop_assert!(second.iter().all(|f| f.action != Action::Drop), "{:?}", second);
        prop_assert!(second.iter().all(|f| first.contains(f)), "{:?} ⊄ {:?}", second, first);
        let kept = first.iter().filter(|f| f.action == Action::Keep);
        for f in kept {
            prop_assert!(second.contains(f), "{:?} lost", f);
        }
    }

    #[test]
    fn never_panics_on_arbitrary_json(
        m in prop_oneof![
            1 => tree(any::<String>().prop_map(Value::from).boxed(), any::<String>().boxed()),
            3 => message(tree(
                prop_oneof![
                    leaf(),
                    any::<String>().prop_map(Value::from),
                    any::<f64>().prop_map(Value::from),
                ]
                .boxed(),
                prop_oneof![known_keys(), any::<String>()].boxed(),
            )),
        ],
        p in policy(ANY),
        salt in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut m = m;
        for f in apply(&mut m, &p, &salt) {
            let section = f.path.split('.').next().unwrap_or_default();
            prop_assert!(["properties", "traits", "context"].contains(&section), "{}", f.path);
        }
    }
}
