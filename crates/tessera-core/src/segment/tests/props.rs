//! Property tests: random definitions (computed traits of every aggregate, audiences of trait,
//! event, computed-trait and `in audience` conditions, with windows, counts and filters) and
//! random event streams (tracks, identifies and aliases over a few user and anonymous ids, so
//! profiles merge; late and slightly early event times; time passing between events) must
//! give the same members and computed values in real time, in batch and by the reference, at
//! every step; time alone must change membership exactly at the window edges; definitions
//! changed mid-stream and a segmenter rebuilt from the engine must agree too.

use super::super::*;
use super::harness::{build_registry, check_segmenter, rebuilt, Sim};
use crate::audience::{parse_computed, Aggregate, ValueKind};
use crate::time::format_iso8601;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

const CASES: u32 = 256;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// 2023-11-14T00:00:00Z, where streams start.
const T0: i64 = 19_675 * DAY;

const USERS: [&str; 4] = ["u1", "u2", "u3", "u4"];
const ANONS: [&str; 6] = ["a1", "a2", "a3", "a4", "a5", "a6"];
const EVENTS: [&str; 2] = ["Viewed", "Bought"];

/// One step of a stream.
#[derive(Debug, Clone)]
enum Step {
    /// An event received `gap` after the previous step, with its time `skew` off that.
    Send { gap: i64, skew: i64, body: Value },
    /// The clock moves `gap` on.
    Advance { gap: i64 },
}

/// An audience condition; computed traits and audiences are referred to by index, and
/// written once it is known which exist (and of which kind).
#[derive(Debug, Clone)]
enum Cond {
    Text(String),
    Computed(usize, usize),
    InAudience(usize),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

/// Definitions of a case: computed traits and audiences, each with the definition used
/// before the switch (`None`: the same) and whether it exists before the switch at all.
#[derive(Debug, Clone)]
struct Defs {
    computed: Vec<(String, Option<String>, bool)>,
    audiences: Vec<(Cond, Option<Cond>, bool)>,
}

fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![
        1 => Just(0),
        3 => (1..180i64).prop_map(|m| m * MINUTE),
        3 => (1..48i64).prop_map(|h| h * HOUR),
        3 => (1..=20i64).prop_map(|d| d * DAY),
    ]
}

/// The event time against the receive time: mostly equal, sometimes late, rarely early.
fn skew() -> impl Strategy<Value = i64> {
    prop_oneof![
        12 => Just(0),
        3 => (1..=10i64).prop_map(|d| -d * DAY),
        2 => (1..=300i64).prop_map(|m| -m * MINUTE),
        1 => (1..=120i64).prop_map(|m| m * MINUTE),
    ]
}

/// A date string around the stream's span.
fn date() -> impl Strategy<Value = Value> {
    (-40i64..100, 0..24i64).prop_map(|(d, h)| json!(format_iso8601(T0 + d * DAY + h * HOUR)))
}

fn ids() -> impl Strategy<Value = (Option<usize>, Option<usize>)> {
    prop_oneof![
        (0..USERS.len()).prop_map(|u| (Some(u), None)),
        (0..ANONS.len()).prop_map(|a| (None, Some(a))),
        (0..USERS.len(), 0..ANONS.len()).prop_map(|(u, a)| (Some(u), Some(a))),
    ]
}

fn properties() -> impl Strategy<Value = Option<Value>> {
    let category = prop::option::weighted(0.8, select(vec!["jeans", "shirts", "shoes"]));
    let price = prop::option::weighted(
        0.7,
        select(vec![
            json!(1),
            json!(5),
            json!(9.5),
            json!(20),
            json!(0.1),
            json!(1.0),
            json!("12"),
            json!(9_223_372_036_854_775_809u64),
            Value::Null,
        ]),
    );
    let at = prop::option::weighted(0.2, date());
    let item = prop::option::weighted(
        0.2,
        select(vec![
            json!({"sku": "A"}),
            json!({"sku": "B", "size": 3}),
            json!({}),
            json!("A"),
            json!([1, "a"]),
        ]),
    );
    prop::option::weighted(
        0.9,
        (category, price, at, item).prop_map(|(c, p, at, item)| {
            let mut m = Map::new();
            if let Some(c) = c {
                m.insert("category".into(), json!(c));
            }
            if let Some(p) = p {
                m.insert("price".into(), p);
            }
            if let Some(at) = at {
                m.insert("at".into(), at);
            }
            if let Some(item) = item {
                m.insert("item".into(), item);
            }
            Value::Object(m)
        }),
    )
}

fn traits() -> impl Strategy<Value = Map<String, Value>> {
    let country = prop::option::weighted(0.5, select(vec![json!("DE"), json!("FR"), Value::Null]));
    let plan = prop::option::weighted(0.3, select(vec!["free", "pro"]).prop_map(|p| json!(p)));
    let ltv = prop::option::weighted(
        0.4,
        select(vec![
            json!(0),
            json!(50),
            json!(99.5),
            json!(150),
            json!(9_223_372_036_854_775_809u64),
        ]),
    );
    let signup = prop::option::weighted(0.4, date());
    let address = prop::option::weighted(
        0.15,
        select(vec![
            json!({"city": "Berlin"}),
            json!({"city": "Paris"}),
            json!("unknown"),
        ]),
    );
    let tags = prop::option::weighted(
        0.15,
        select(vec![json!(["vip", "jeans"]), json!(["Vip"]), json!([])]),
    );
    (country, plan, ltv, signup, address, tags).prop_map(|(c, p, l, s, a, t)| {
        let mut m = Map::new();
        for (k, v) in [
            ("country", c),
            ("plan", p),
            ("ltv", l),
            ("signup", s),
            ("address", a),
            ("tags", t),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        m
    })
}

fn with_ids(mut body: Map<String, Value>, (user, anon): (Option<usize>, Option<usize>)) -> Value {
    if let Some(u) = user {
        body.insert("userId".into(), json!(USERS[u]));
    }
    if let Some(a) = anon {
        body.insert("anonymousId".into(), json!(ANONS[a]));
    }
    Value::Object(body)
}

fn call() -> impl Strategy<Value = Value> {
    let track = (
        ids(),
        select(EVENTS.to_vec()),
        properties(),
        prop::option::weighted(0.1, traits()),
    )
        .prop_map(|(who, event, props, context)| {
            let mut m = Map::new();
            m.insert("type".into(), json!("track"));
            m.insert("event".into(), json!(event));
            if let Some(p) = props {
                m.insert("properties".into(), p);
            }
            if let Some(t) = context {
                m.insert("context".into(), json!({ "traits": t }));
            }
            with_ids(m, who)
        });
    let identify = (ids(), traits()).prop_map(|(who, traits)| {
        let mut m = Map::new();
        m.insert("type".into(), json!("identify"));
        m.insert("traits".into(), Value::Object(traits));
        with_ids(m, who)
    });
    let alias = (0..USERS.len(), 0..ANONS.len() + USERS.len()).prop_map(|(u, prev)| {
        let prev = ANONS
            .get(prev)
            .copied()
            .unwrap_or_else(|| USERS[prev - ANONS.len()]);
        json!({"type": "alias", "userId": USERS[u], "previousId": prev})
    });
    prop_oneof![6 => track, 3 => identify, 1 => alias]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (gap(), skew(), call()).prop_map(|(gap, skew, body)| Step::Send { gap, skew, body }),
        1 => gap().prop_map(|gap| Step::Advance { gap }),
    ]
}

fn window() -> impl Strategy<Value = &'static str> {
    select(vec![
        "",
        " within 1 day",
        " within 3 days",
        " within 7 days",
        " within 30 days",
        " within 6 hours",
        " within 36 hours",
        " within 2 weeks",
        " in the last 14 days",
        " ever",
    ])
}

const FILTER_LEAVES: [&str; 19] = [
    r#"category = "jeans""#,
    r#"category in ("jeans", "shoes")"#,
    r#"category != "shirts""#,
    r#"category contains "SH""#,
    r#"category starts_with "j""#,
    "category exists",
    "category not exists",
    "price > 5",
    "price >= 9.5",
    "price < 10",
    "price = 1",
    "price = null",
    "price exists",
    r#"at after "2023-12-01""#,
    r#"price in (1, "12")"#,
    "price = 9223372036854775808",
    r#"item.sku = "A""#,
    "item exists",
    r#"item contains "A""#,
];

fn filter() -> impl Strategy<Value = String> {
    let leaf = || select(FILTER_LEAVES.to_vec());
    prop_oneof![
        4 => Just(String::new()),
        3 => leaf().prop_map(|l| format!(" where {l}")),
        1 => (leaf(), leaf(), any::<bool>()).prop_map(|(a, b, and)| {
            format!(" where ({a} {} {b})", if and { "and" } else { "or" })
        }),
        1 => leaf().prop_map(|l| format!(" where (not {l})")),
    ]
}

fn event_cond() -> impl Strategy<Value = String> {
    let count = select(vec![
        "",
        "",
        " at least 2 times",
        " at least 3 times",
        " at least 0 times",
        " at most 1 time",
        " at most 2 times",
        " exactly 1 time",
        " exactly 2 times",
        " exactly 0 times",
    ]);
    (
        prop::bool::weighted(0.25),
        select(EVENTS.to_vec()),
        filter(),
        count,
        window(),
    )
        .prop_map(|(never, event, f, c, w)| match never {
            true => format!("did not perform \"{event}\"{f}{w}"),
            false => format!("performed \"{event}\"{f}{c}{w}"),
        })
}

const TRAIT_CONDS: [&str; 19] = [
    r#"country = "DE""#,
    r#"country in ("DE", "FR")"#,
    r#"country != "DE""#,
    "country not exists",
    r#"plan = "pro""#,
    "plan exists",
    "ltv > 100",
    "ltv <= 50",
    "ltv = 99.5",
    "ltv = 9223372036854775808",
    "signup within 30 days",
    "signup within 3 days",
    "signup within 12 hours",
    r#"signup before "2024-01-01""#,
    r#"signup after "2023-12-01T12:00:00Z""#,
    r#"address.city = "Berlin""#,
    "address exists",
    r#"tags contains "VIP""#,
    r#"tags starts_with "j""#,
];

fn cond() -> impl Strategy<Value = Cond> {
    let leaf = prop_oneof![
        3 => select(TRAIT_CONDS.to_vec()).prop_map(|t| Cond::Text(t.to_owned())),
        5 => event_cond().prop_map(Cond::Text),
        2 => (0..3usize, 0..16usize).prop_map(|(c, v)| Cond::Computed(c, v)),
        1 => (0..4usize).prop_map(Cond::InAudience),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..=3).prop_map(Cond::And),
            prop::collection::vec(inner.clone(), 2..=3).prop_map(Cond::Or),
            inner.prop_map(|c| Cond::Not(Box::new(c))),
        ]
    })
}

fn computed_text() -> impl Strategy<Value = String> {
    (
        select(Aggregate::ALL.to_vec()),
        select(vec!["price", "category", "at", "item.sku", "item"]),
        select(EVENTS.to_vec()),
        filter(),
        window(),
    )
        .prop_map(|(agg, prop, event, f, w)| match agg {
            Aggregate::Count => format!("count \"{event}\"{f}{w}"),
            _ => format!("{} {prop} of \"{event}\"{f}{w}", agg.as_str()),
        })
}

fn defs() -> impl Strategy<Value = Defs> {
    (
        prop::collection::vec(
            (
                computed_text(),
                prop::option::weighted(0.2, computed_text()),
                prop::bool::weighted(0.8),
            ),
            0..=3,
        ),
        prop::collection::vec(
            (
                cond(),
                prop::option::weighted(0.2, cond()),
                prop::bool::weighted(0.8),
            ),
            1..=4,
        ),
    )
        .prop_map(|(computed, audiences)| Defs {
            computed,
            audiences,
        })
}

/// Writes a condition of audience number `me`, given the kind of each computed trait (`None`
/// where there is none: the name is then a profile trait, always absent).
fn render(c: &Cond, me: usize, kinds: &[Option<ValueKind>]) -> String {
    match c {
        Cond::Text(t) => t.clone(),
        Cond::Computed(i, v) => {
            let name = format!("c{i}");
            let forms: &[&str] = match kinds.get(*i).copied().flatten() {
                Some(ValueKind::Number) => &[
                    "{} > 0",
                    "{} >= 2",
                    "{} = 1",
                    "{} < 10",
                    "{} <= 9.5",
                    "{} = 0",
                    "{} > 5.5",
                    "{} != 0",
                ],
                Some(ValueKind::List) => &[
                    r#"{} contains "jeans""#,
                    "{} exists",
                    r#"{} starts_with "SH""#,
                    "{} not exists",
                    r#"{} contains "12""#,
                ],
                _ => &[
                    r#"{} = "jeans""#,
                    "{} exists",
                    "{} within 7 days",
                    "{} > 5",
                    "{} = 9.5",
                    r#"{} in ("shoes", 1)"#,
                    "{} not exists",
                    "{} within 30 days",
                ],
            };
            forms[v % forms.len()].replace("{}", &name)
        }
        Cond::InAudience(k) => match me {
            0 => "country exists".to_owned(),
            _ => format!("in audience \"a{}\"", k % me),
        },
        Cond::And(t) => join(t, " and ", me, kinds),
        Cond::Or(t) => join(t, " or ", me, kinds),
        Cond::Not(x) => format!("not ({})", render(x, me, kinds)),
    }
}

fn join(terms: &[Cond], op: &str, me: usize, kinds: &[Option<ValueKind>]) -> String {
    let parts: Vec<String> = terms
        .iter()
        .map(|t| format!("({})", render(t, me, kinds)))
        .collect();
    parts.join(op)
}

/// The registries before and after the switch.
fn registries(d: &Defs) -> (Registry, Registry) {
    let phase = |first: bool| {
        let computed: Vec<(String, String)> = d
            .computed
            .iter()
            .enumerate()
            .filter(|(_, (_, _, kept))| !first || *kept)
            .map(|(i, (main, alt, _))| {
                let text = match (first, alt) {
                    (true, Some(alt)) => alt.clone(),
                    _ => main.clone(),
                };
                (format!("c{i}"), text)
            })
            .collect();
        let mut kinds = vec![None; d.computed.len()];
        for (name, text) in &computed {
            let i: usize = name[1..].parse().expect("names are c<index>");
            kinds[i] = parse_computed(text).ok().map(|c| c.result_kind());
        }
        let audiences: Vec<(String, String)> = d
            .audiences
            .iter()
            .enumerate()
            .filter(|(_, (_, _, kept))| !first || *kept)
            .map(|(i, (main, alt, _))| {
                let c = match (first, alt) {
                    (true, Some(alt)) => alt,
                    _ => main,
                };
                (format!("a{i}"), render(c, i, &kinds))
            })
            .collect();
        build_registry(&computed, &audiences)
    };
    (phase(true), phase(false))
}

/// Runs one case; see the module documentation.
fn run(d: &Defs, steps: &[Step], switch: usize, threads: usize) -> Result<(), TestCaseError> {
    let (before, after) = registries(d);
    let switch_at = switch % (steps.len() + 1);
    let mut sim = Sim::new(T0);
    sim.threads = threads;
    sim.set_registry(match switch_at {
        0 => after.clone(),
        _ => before,
    })?;
    let mut t = T0;
    for (i, step) in steps.iter().enumerate() {
        if i == switch_at && i > 0 {
            sim.set_registry(after.clone())?;
            sim.check()?;
        }
        match step {
            Step::Send { gap, skew, body } => {
                t += gap;
                sim.send(t, t + skew, body)?;
            }
            Step::Advance { gap } => {
                t += gap;
                sim.advance(t)?;
            }
        }
        sim.check()?;
    }
    if switch_at == steps.len() && switch_at > 0 {
        sim.set_registry(after.clone())?;
        sim.check()?;
    }
    // A segmenter restored from the engine must hold the same state, and keep it as time
    // passes (its timers come from the batch scan of window edges, not from evaluations).
    let mut fresh = rebuilt(&sim, sim.seg.registry().clone(), threads);
    for c in fresh.take_changes() {
        prop_assert!(c.entered && c.reason == Reason::Backfill, "{:?}", c);
    }
    prop_assert_eq!(fresh.sizes(), sim.seg.sizes());
    check_segmenter(&fresh, &sim.engine, &sim.snapshot(), t)?;
    fresh.recompute(Some(Reason::Rebuilt), threads);
    prop_assert_eq!(fresh.take_changes(), vec![]);
    for days in [1, 7, 30, 90] {
        t += days * DAY;
        sim.advance(t)?;
        sim.check()?;
        fresh.advance(t);
        fresh.take_changes();
        check_segmenter(&fresh, &sim.engine, &sim.snapshot(), t)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn real_time_batch_and_reference_agree(
        d in defs(),
        steps in prop::collection::vec(step(), 1..32),
        switch in 0usize..40,
        threads in 1usize..=2,
    ) {
        run(&d, &steps, switch, threads)?;
    }
}

/// How many generated definitions the registry accepts, so that the generators stay useful.
#[test]
fn most_generated_definitions_are_accepted() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut generated, mut accepted) = (0, 0);
    for _ in 0..200 {
        let d = defs().new_tree(&mut runner).expect("generates").current();
        let (_, after) = registries(&d);
        generated += d.computed.len() + d.audiences.len();
        accepted += after.computed.len() + after.audiences.len();
    }
    assert!(
        accepted * 10 >= generated * 9,
        "only {accepted} of {generated} definitions accepted"
    );
}
