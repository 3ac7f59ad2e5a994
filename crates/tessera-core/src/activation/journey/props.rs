//! Property tests over random small journey sets and random streams of events, audience
//! changes, trait changes, ticks, merges and definition changes for a few profiles:
//!
//! 1. persistence: an engine restored at a random cut from the accumulated `take_dirty` rows
//!    behaves exactly like the uninterrupted one afterwards (actions, rows, metrics, next_due);
//! 2. determinism: the same stream (definitions given in another order) gives the same actions;
//! 3. invariants: `active == sum(in_step)`, treated entries are all accounted for
//!    (`entered - held_out == converted + exited + active`), held-out ones too, `sent` is the
//!    number of sends, no send reaches a held-out profile, and `sent + capped` is the number
//!    of send-step visits, counted by a shadow engine whose journeys have no caps (a capped
//!    send does not change the flow, so the shadow visits exactly the same steps).

use super::test_support::{TestView, MIN, T0};
use super::{holdout_bucket, Action, JourneyDef, Journeys};
use crate::activation::AudienceView;
use crate::time::Millis;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const NAMES: [&str; 3] = ["A", "B", "C"];

/// A journey's shape, as random bytes turned into JSON by [`journey_json`].
#[derive(Debug, Clone)]
struct Shape {
    trigger: u8,
    goal: Option<u8>,
    exit_on: Option<u8>,
    holdout: u8,
    cap: Option<(u8, u8)>,
    never: bool,
    steps: Vec<(u8, u8, u8, u8)>,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        0u8..7,
        proptest::option::of(0u8..3),
        proptest::option::weighted(0.3, 0u8..3),
        prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        proptest::option::of((1u8..3, 1u8..4)),
        any::<bool>(),
        proptest::collection::vec((0u8..8, any::<u8>(), any::<u8>(), any::<u8>()), 1..5),
    )
        .prop_map(
            |(trigger, goal, exit_on, holdout, cap, never, steps)| Shape {
                trigger,
                goal,
                exit_on,
                holdout,
                cap,
                never,
                steps,
            },
        )
}

/// The definition for a shape; `variant` 1 renames the journey (a change that keeps every
/// instance), 2 renames every step (a change that ends every instance).
fn journey_json(s: &Shape, variant: u8) -> Value {
    let n = s.steps.len() + 1;
    let prefix = if variant == 2 { "t" } else { "s" };
    let id = |i: usize| format!("{prefix}{i}");
    let any_id = |x: u8| id(x as usize % n);
    let mut steps = Vec::new();
    for (i, &(kind, a, b, c)) in s.steps.iter().enumerate() {
        // Only waits may point backwards, so no loop can run without waiting.
        let fwd = |x: u8| id(i + 1 + x as usize % (n - i - 1));
        let mut step = match kind {
            // Sends are what most properties are about: three kinds of eight.
            3..=5 => json!({"type": "send", "destination": format!("dst_{}", a % 2)}),
            0 => json!({"type": "wait", "duration": (["30m", "1h", "2h"][a as usize % 3])}),
            1 => {
                let mut w = json!({"type": "wait_for", "event": NAMES[a as usize % 3],
                                   "timeout": (["30m", "1h"][b as usize % 2])});
                if a % 8 >= 4 {
                    w["where"] = json!({"path": "properties.v", "op": "gte", "value": 2});
                }
                if c % 2 == 1 {
                    w["on_event"] = json!(any_id(c / 2));
                }
                if b % 3 == 0 {
                    w["on_timeout"] = json!(any_id(b / 3));
                }
                w
            }
            2 => {
                let cond = [
                    json!({"path": "traits.x", "op": "eq", "value": 1}),
                    json!({"in_audience": "aud1"}),
                    json!({"any": [{"path": "trigger.properties.v", "op": "gt", "value": 2},
                                   {"not": {"path": "traits.x", "op": "exists"}}]}),
                ][a as usize % 3]
                    .clone();
                json!({"type": "branch", "if": cond, "then": fwd(b), "else": fwd(c)})
            }
            6 => json!({"type": "set_trait", "trait": "y", "value": a}),
            _ => json!({"type": "exit"}),
        };
        step["id"] = json!(id(i));
        if matches!(kind, 3..=6) && c % 2 == 1 {
            step["next"] = json!(fwd(b));
        }
        if kind == 0 && b % 3 == 0 {
            step["next"] = json!(any_id(c));
        }
        steps.push(step);
    }
    steps.push(json!({"id": id(n - 1), "type": "exit"}));
    let trigger = match s.trigger {
        t @ 0..3 => json!({"event": NAMES[t as usize]}),
        t @ 3..6 => json!({"event": NAMES[t as usize - 3],
                           "where": {"path": "properties.v", "op": "lt", "value": 4}}),
        _ => json!({"audience": "aud1"}),
    };
    let mut v = json!({
        "name": if variant == 1 { "renamed" } else { "journey" },
        "trigger": trigger,
        "holdout_percent": ([0, 50, 100][s.holdout as usize]),
        "reentry": if s.never { "never" } else { "after_exit" },
        "steps": steps,
    });
    if let Some(g) = s.goal {
        v["goal"] = json!({"event": NAMES[g as usize]});
    }
    if let Some(e) = s.exit_on {
        v["exit_on"] = json!([NAMES[e as usize]]);
    }
    if let Some((max, per)) = s.cap {
        v["frequency_cap"] = json!({"max": max, "per": format!("{per}h")});
    }
    v
}

#[derive(Debug, Clone)]
enum Op {
    Track {
        profile: i64,
        name: usize,
        dt: i64,
        v: i64,
        old: bool,
    },
    Tick {
        dt: i64,
    },
    Merge {
        survivor: i64,
        absorbed: i64,
    },
    Audience {
        profile: i64,
        entered: bool,
    },
    Trait {
        profile: i64,
        x: i64,
    },
    /// Bit i keeps journey i; two bits per journey in `variants` pick its variant.
    Redefine {
        keep: u8,
        variants: u8,
    },
    /// The server persists: `take_dirty`.
    Take,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1i64..5, 0usize..3, 0i64..40, 0i64..5, proptest::bool::weighted(0.1))
            .prop_map(|(profile, name, dt, v, old)| Op::Track { profile, name, dt, v, old }),
        3 => (0i64..120).prop_map(|dt| Op::Tick { dt }),
        1 => (1i64..5, 1i64..5).prop_map(|(survivor, absorbed)| Op::Merge { survivor, absorbed }),
        1 => (1i64..5, any::<bool>()).prop_map(|(profile, entered)| Op::Audience { profile, entered }),
        1 => (1i64..5, 0i64..2).prop_map(|(profile, x)| Op::Trait { profile, x }),
        // Mostly keeping every journey, as real edits do.
        1 => (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(keep, variants, all)| {
            Op::Redefine { keep: if all { 0xff } else { keep }, variants }
        }),
        2 => Just(Op::Take),
    ]
}

/// A concrete input, with positions, times and merged profiles resolved.
#[derive(Debug, Clone)]
enum Input {
    Event {
        position: i64,
        name: &'static str,
        ts: Millis,
        received: Millis,
        profile: i64,
        v: i64,
    },
    Tick {
        at: Millis,
        position: i64,
    },
    Merge {
        survivor: i64,
        absorbed: i64,
        position: i64,
    },
    Audience {
        profile: i64,
        entered: bool,
        at: Millis,
        position: i64,
    },
    Trait {
        profile: i64,
        x: i64,
    },
    Defs(Vec<JourneyDef>),
    Take,
}

fn concretize(shapes: &[Shape], ops: &[Op]) -> Vec<Input> {
    let (mut t, mut position) = (T0, 0);
    let mut merged: BTreeMap<i64, i64> = BTreeMap::new();
    let resolve = |m: &BTreeMap<i64, i64>, mut p: i64| {
        while let Some(&s) = m.get(&p) {
            p = s;
        }
        p
    };
    let mut inputs = Vec::new();
    for op in ops {
        position += 1;
        inputs.push(match *op {
            Op::Track {
                profile,
                name,
                dt,
                v,
                old,
            } => {
                t += dt * MIN;
                Input::Event {
                    position,
                    name: NAMES[name],
                    // Slightly out of order, as client clocks are.
                    ts: t - (dt % 3) * 10 * MIN,
                    received: t + if old { 30 * 60 * MIN } else { 0 },
                    profile: resolve(&merged, profile),
                    v,
                }
            }
            Op::Tick { dt } => {
                t += dt * MIN;
                Input::Tick { at: t, position }
            }
            Op::Merge { survivor, absorbed } => {
                let (s, a) = (resolve(&merged, survivor), resolve(&merged, absorbed));
                if s == a {
                    continue;
                }
                merged.insert(a, s);
                Input::Merge {
                    survivor: s,
                    absorbed: a,
                    position,
                }
            }
            Op::Audience { profile, entered } => Input::Audience {
                profile: resolve(&merged, profile),
                entered,
                at: t,
                position,
            },
            Op::Trait { profile, x } => Input::Trait {
                profile: resolve(&merged, profile),
                x,
            },
            Op::Redefine { keep, variants } => Input::Defs(defs(shapes, keep, variants)),
            Op::Take => Input::Take,
        });
    }
    inputs
}

fn defs(shapes: &[Shape], keep: u8, variants: u8) -> Vec<JourneyDef> {
    shapes
        .iter()
        .enumerate()
        .filter(|&(i, _)| keep & (1 << i) != 0)
        .map(|(i, s)| {
            let variant = (variants >> (2 * i)) & 3;
            JourneyDef::parse(&format!("jrn_{i}"), &journey_json(s, variant)).expect("valid")
        })
        .collect()
}

/// An engine with its own copy of the world it reads.
struct Subject {
    engine: Journeys,
    view: TestView,
    /// Accumulated rows, as the server's table would hold them.
    rows: BTreeMap<String, String>,
    defs: Vec<JourneyDef>,
    uncapped: bool,
}

impl Subject {
    fn new(defs: Vec<JourneyDef>, uncapped: bool) -> Subject {
        let mut s = Subject {
            engine: Journeys::new(),
            view: TestView::default(),
            rows: BTreeMap::new(),
            defs: Vec::new(),
            uncapped,
        };
        s.set(defs);
        s
    }

    fn set(&mut self, mut defs: Vec<JourneyDef>) {
        if self.uncapped {
            defs.iter_mut().for_each(|d| d.frequency_cap = None);
        }
        self.defs = defs.clone();
        self.engine.set_definitions(defs);
    }

    fn take(&mut self) -> Vec<(String, Option<String>)> {
        let rows = self.engine.take_dirty();
        for (k, v) in &rows {
            match v {
                Some(v) => self.rows.insert(k.clone(), v.clone()),
                None => self.rows.remove(k),
            };
        }
        rows
    }

    fn feed(&mut self, input: &Input, out: &mut Vec<Action>) {
        let (e, view) = (&mut self.engine, &mut self.view);
        match input {
            Input::Event {
                position,
                name,
                ts,
                received,
                profile,
                v,
            } => {
                let message = json!({"type": "track", "event": name, "properties": {"v": v}});
                let ev = crate::activation::EventView {
                    position: *position,
                    kind: "track",
                    name: Some(name),
                    timestamp: *ts,
                    received_at: *received,
                    message: &message,
                    profile: Some(*profile),
                };
                e.on_event(&ev, view, out);
            }
            Input::Tick { at, position } => e.tick(*at, *position, view, out),
            Input::Merge {
                survivor,
                absorbed,
                position,
            } => {
                e.on_merge(*survivor, &[*absorbed], *position);
                if let Some(t) = view.traits.remove(absorbed) {
                    view.traits.entry(*survivor).or_default().extend(t);
                }
            }
            Input::Audience {
                profile,
                entered,
                at,
                position,
            } => {
                let member = (*profile, "aud1".to_string());
                if *entered != view.audiences.contains(&member) {
                    if *entered {
                        view.audiences.insert(member);
                    } else {
                        view.audiences.remove(&member);
                    }
                    let change = AudienceView {
                        audience: "aud1",
                        name: "Audience one",
                        profile: *profile,
                        entered: *entered,
                        at: *at,
                        position: *position,
                        reason: "event",
                    };
                    e.on_audience(&change, view, out);
                }
            }
            Input::Trait { profile, x } => view.set_trait(*profile, "x", json!(x)),
            Input::Defs(defs) => self.set(defs.clone()),
            Input::Take => {
                self.take();
            }
        }
    }

    fn metrics(&self) -> Vec<Option<super::JourneyMetrics>> {
        (0..3)
            .map(|i| self.engine.metrics(&format!("jrn_{i}")))
            .collect()
    }
}

fn check_invariants(
    s: &Subject,
    new_actions: &[Action],
    sent: &BTreeMap<String, u64>,
) -> Result<(), TestCaseError> {
    for def in &s.defs {
        let m = s.engine.metrics(&def.id).expect("defined");
        prop_assert_eq!(m.active, m.in_step.iter().map(|(_, n)| n).sum::<u64>());
        prop_assert_eq!(
            m.entered - m.held_out,
            m.converted + m.exited + m.active,
            "{:?}",
            m
        );
        prop_assert!(
            m.held_out >= m.held_out_converted + m.held_out_active,
            "{:?}",
            m
        );
        prop_assert_eq!(m.sent, sent[&def.id]);
    }
    for a in new_actions {
        if let Action::Send { journey, key, .. } = a {
            let def = s
                .defs
                .iter()
                .find(|d| &d.id == journey)
                .expect("sent by a journey");
            let entry: i64 = key.split(':').nth(1).unwrap().parse().unwrap();
            prop_assert!(holdout_bucket(journey, entry) >= u64::from(def.holdout_percent));
        }
    }
    Ok(())
}

fn sends_of(actions: &[Action], journey: &str) -> u64 {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Send { journey: j, .. } if j == journey))
        .count() as u64
}

proptest! {
    // Failures are reported with their minimal input; no regression file is written into the
    // crate (the seeds would not survive changes to the generators anyway).
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn journeys_persist_replay_and_keep_their_invariants(
        shapes in proptest::collection::vec(shape(), 1..4),
        ops in proptest::collection::vec(op(), 0..60),
        cut_frac in 0.0f64..=1.0,
    ) {
        let inputs = concretize(&shapes, &ops);
        let all = defs(&shapes, 0xff, 0);
        // A cut at the end restores nothing afterwards; the others are checked.
        let cut = ((inputs.len() as f64 * cut_frac) as usize).min(inputs.len().saturating_sub(1));

        let mut a = Subject::new(all.clone(), false);
        let mut shadow = Subject::new(all.clone(), true);
        let (mut out_a, mut out_shadow) = (Vec::new(), Vec::new());
        // Sends per journey since it was (re)created: counters go with a dropped journey.
        let mut sent: BTreeMap<String, u64> = BTreeMap::new();
        let mut b: Option<Subject> = None;
        for (i, input) in inputs.iter().enumerate() {
            if i == cut {
                a.take();
                let mut restored = Subject::new(a.defs.clone(), false);
                restored.engine.restore(a.rows.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                restored.rows = a.rows.clone();
                // The profiles are the outside world, not the engine's state.
                restored.view = a.view.clone();
                prop_assert!(restored.engine.take_dirty().is_empty());
                prop_assert_eq!(restored.engine.next_due(), a.engine.next_due());
                prop_assert_eq!(restored.metrics(), a.metrics());
                b = Some(restored);
            }
            let before = out_a.len();
            a.feed(input, &mut out_a);
            shadow.feed(input, &mut out_shadow);
            if let Some(b) = b.as_mut() {
                let mut out_b = Vec::new();
                b.feed(input, &mut out_b);
                prop_assert_eq!(&out_a[before..], &out_b[..]);
                prop_assert_eq!(a.take(), b.take());
                prop_assert_eq!(a.engine.next_due(), b.engine.next_due());
            }
            sent.retain(|j, _| a.defs.iter().any(|d| &d.id == j));
            for def in &a.defs {
                *sent.entry(def.id.clone()).or_default() += sends_of(&out_a[before..], &def.id);
            }
            check_invariants(&a, &out_a[before..], &sent)?;
        }
        if let Some(b) = &b {
            prop_assert_eq!(b.metrics(), a.metrics());
            prop_assert_eq!(&b.rows, &a.rows);
        }

        // Visits: the shadow sent at every send step a capped engine visited.
        for (ma, ms) in a.metrics().into_iter().zip(shadow.metrics()) {
            let (Some(ma), Some(ms)) = (ma, ms) else { continue };
            prop_assert_eq!(ma.sent + ma.capped, ms.sent);
            prop_assert_eq!(ms.capped, 0);
            prop_assert_eq!((ma.entered, ma.converted, ma.exited, &ma.in_step),
                            (ms.entered, ms.converted, ms.exited, &ms.in_step));
        }

        // Determinism: a fresh engine, definitions in another order, the same actions.
        let mut reversed = all.clone();
        reversed.reverse();
        let mut c = Subject::new(reversed, false);
        let mut out_c = Vec::new();
        for input in &inputs {
            c.feed(input, &mut out_c);
        }
        prop_assert_eq!(out_c, out_a);
    }
}
