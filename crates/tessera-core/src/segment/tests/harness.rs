//! The harness shared by the segmentation tests: it feeds events to a real identity engine and
//! a [`Segmenter`] through [`apply_event`], keeps its own record of every named event it sent
//! (and the profile the engine put it in), and checks the segmenter against the reference
//! evaluator over `ProfileData` it builds itself: real-time members and computed values,
//! batch evaluation on one and two threads, the change log (replayed, it must give the
//! members), and the exact instants at which time alone changes membership.

use super::super::*;
use crate::audience::reference::{evaluate_audience, evaluate_computed, EventRecord, ProfileData};
use crate::audience::{Audience, Condition, Logic, Test, Window};
use crate::identity::{Engine, EventFacts, IdentityRules};
use crate::time::{parse_iso8601, Millis};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One named event the harness sent: the profile key the engine gave it when it was applied
/// (resolved to the survivor when read), its name, time and properties.
#[derive(Debug, Clone)]
pub struct Sent {
    pub key: i64,
    pub name: String,
    pub ts: Millis,
    pub props: Option<Value>,
}

/// A membership change as the tests compare them: audience id, profile key, entered, at.
pub type Flip = (String, i64, bool, Millis);

/// What the reference says about one profile at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub computed: BTreeMap<String, Value>,
    /// By registry index.
    pub inside: Vec<bool>,
}

pub struct Sim {
    pub engine: Engine,
    pub seg: Segmenter,
    pub position: i64,
    pub now: Millis,
    pub sent: Vec<Sent>,
    /// Membership as the change log tells it: (audience id, profile key).
    pub replay: BTreeSet<(String, i64)>,
    /// Every change recorded so far, in order.
    pub log: Vec<MembershipChange>,
    /// Threads for `set_registry`.
    pub threads: usize,
}

impl Sim {
    pub fn new(now: Millis) -> Sim {
        let mut seg = Segmenter::new();
        seg.advance(now);
        Sim {
            engine: Engine::new(IdentityRules::default()),
            seg,
            position: 0,
            now,
            sent: Vec::new(),
            replay: BTreeSet::new(),
            log: Vec::new(),
            threads: 1,
        }
    }

    /// Feeds one event received at `received` with event time `ts`, checking the changes it
    /// caused (time changes included) but not the state afterwards.
    pub fn send(
        &mut self,
        received: Millis,
        ts: Millis,
        body: &Value,
    ) -> Result<(), TestCaseError> {
        prop_assert!(received >= self.now, "the harness never goes back in time");
        let expected = self.time_flips_until(received);
        self.position += 1;
        let text = body.to_string();
        let f = EventFacts::parse(self.position, ts, "src", &text).expect("bodies parse");
        apply_event(&mut self.engine, &mut self.seg, &f, received);
        let name = f.event_name().map(str::to_owned);
        self.now = received;
        let key = self
            .event_profile(body)
            .expect("every event the harness sends identifies someone");
        if let Some(name) = name {
            // The segmenter stored the event for the same profile.
            let part = self.seg.events().partition(&name).expect("stored");
            let slot = *part.slot.last().expect("stored");
            prop_assert_eq!(self.seg.key_of(slot), key);
            prop_assert_eq!(part.ts.last(), Some(&ts));
            self.sent.push(Sent {
                key,
                name,
                ts,
                props: body.get("properties").cloned(),
            });
        }
        self.take_changes(expected, Some((self.position, key)))
    }

    /// The live profile an event just applied landed in: its user id decides when it has
    /// one (the engine drops lower-priority identifiers rather than break the one-user-id
    /// limit), else its anonymous id.
    fn event_profile(&self, body: &Value) -> Option<i64> {
        let by = |kind: &str, field: &str| {
            body.get(field)
                .and_then(Value::as_str)
                .and_then(|v| self.engine.profile_by_identifier(kind, v))
        };
        by("user_id", "userId").or_else(|| by("anonymous_id", "anonymousId"))
    }

    /// Moves the clock, firing timers, and checks the changes against the reference.
    pub fn advance(&mut self, to: Millis) -> Result<(), TestCaseError> {
        let expected = self.time_flips_until(to);
        self.seg.advance(to);
        self.now = self.now.max(to);
        self.take_changes(expected, None)
    }

    /// Installs new definitions; changes must be backfills or updates.
    pub fn set_registry(&mut self, registry: Registry) -> Result<(), TestCaseError> {
        let old: BTreeMap<String, Audience> = self
            .seg
            .registry()
            .audiences
            .iter()
            .map(|a| (a.id.clone(), a.def.clone()))
            .collect();
        let ids: BTreeSet<String> = registry.audiences.iter().map(|a| a.id.clone()).collect();
        self.seg.set_registry(registry, self.threads);
        // Removed audiences are dropped silently.
        self.replay.retain(|(id, _)| ids.contains(id));
        let changes = self.seg.take_changes();
        for c in &changes {
            let want = match old.contains_key(&c.audience_id) {
                true => Reason::Updated,
                false => Reason::Backfill,
            };
            prop_assert_eq!(&c.reason, &want, "{:?}", c);
            prop_assert_eq!(c.at, self.now);
        }
        self.replay_changes(changes)
    }

    /// Takes the recorded changes: those with [`Reason::Time`] must be exactly `expected`;
    /// the others, only when `event` (its position and the live key of its profile) was
    /// applied, must be that event's or its merge's, now.
    fn take_changes(
        &mut self,
        expected: Vec<Flip>,
        event: Option<(i64, i64)>,
    ) -> Result<(), TestCaseError> {
        let changes = self.seg.take_changes();
        let mut timed: Vec<Flip> = Vec::new();
        for c in &changes {
            if c.reason == Reason::Time {
                timed.push(flip(c));
                continue;
            }
            let Some((position, key)) = event else {
                return Err(TestCaseError::fail(format!("unexpected change {c:?}")));
            };
            prop_assert_eq!(c.at, self.now, "{:?}", c);
            match c.reason {
                Reason::Event { position: p } => {
                    prop_assert_eq!(p, position, "{:?}", c);
                    prop_assert_eq!(c.profile, key, "{:?}", c);
                }
                Reason::Merge { position: p, into } => {
                    prop_assert_eq!(p, position, "{:?}", c);
                    prop_assert_eq!(into, key, "{:?}", c);
                }
                _ => return Err(TestCaseError::fail(format!("unexpected change {c:?}"))),
            }
        }
        let mut expected = expected;
        timed.sort();
        expected.sort();
        prop_assert_eq!(
            &timed,
            &expected,
            "changes with time alone (actual, then reference) up to {}",
            self.now
        );
        self.replay_changes(changes)
    }

    /// Applies changes to the replayed membership: each must flip it, and times never go
    /// back.
    fn replay_changes(&mut self, changes: Vec<MembershipChange>) -> Result<(), TestCaseError> {
        for c in changes {
            if let Some(last) = self.log.last() {
                prop_assert!(c.at >= last.at, "change {:?} is older than {:?}", c, last);
            }
            let reg = self.seg.registry();
            let i = reg.audience_by_name(&c.audience_name);
            prop_assert!(
                i.is_some_and(|i| reg.audiences[i].id == c.audience_id
                    && reg.audiences[i].version == c.version),
                "{:?} names no current audience",
                c
            );
            let k = (c.audience_id.clone(), c.profile);
            if c.entered {
                prop_assert!(self.replay.insert(k), "entered twice: {:?}", c);
            } else {
                prop_assert!(self.replay.remove(&k), "left without being in: {:?}", c);
            }
            self.log.push(c);
        }
        Ok(())
    }

    /// The reference's view of every live profile: its events (in log order) and its traits,
    /// by live key.
    pub fn snapshot(&self) -> BTreeMap<i64, ProfileData> {
        let mut out: BTreeMap<i64, ProfileData> = self
            .engine
            .live_keys()
            .into_iter()
            .map(|key| {
                let slot = self.engine.slot_of(key).expect("live keys have slots");
                let traits = self.engine.slot_traits(slot).into_iter().collect();
                (
                    key,
                    ProfileData {
                        traits,
                        events: Vec::new(),
                    },
                )
            })
            .collect();
        for s in &self.sent {
            let live = self.engine.resolve_key(s.key).expect("sent keys resolve");
            out.get_mut(&live)
                .expect("a survivor is live")
                .events
                .push(EventRecord {
                    name: s.name.clone(),
                    timestamp_ms: s.ts,
                    properties: s
                        .props
                        .clone()
                        .unwrap_or_else(|| Value::Object(Default::default())),
                });
        }
        out
    }

    /// Checks the segmenter's state at the current time: real-time members and computed
    /// values against the reference, batch evaluation against both, the replayed change log
    /// against the members.
    pub fn check(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(self.seg.now(), self.now);
        check_segmenter(&self.seg, &self.engine, &self.snapshot(), self.now)?;
        let reg = self.seg.registry();
        let mut from_members = BTreeSet::new();
        for (i, a) in reg.audiences.iter().enumerate() {
            for slot in self.seg.members(i).iter() {
                from_members.insert((a.id.clone(), self.seg.key_of(slot)));
            }
        }
        prop_assert_eq!(
            &from_members,
            &self.replay,
            "members and the replayed change log"
        );
        Ok(())
    }

    /// The membership changes time alone makes between now and `to` (included), by the
    /// reference over the current events and traits: it is evaluated at every instant where a
    /// window or `within` edge of one of the profile's own values lies.
    fn time_flips_until(&self, to: Millis) -> Vec<Flip> {
        let reg = self.seg.registry();
        let periods = periods(reg);
        if periods.is_empty() || to <= self.now {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (key, data) in self.snapshot() {
            let mut edges = BTreeSet::new();
            for x in instants(&data) {
                for t in std::iter::once(x).chain(periods.iter().map(|p| x.saturating_add(*p))) {
                    if t > self.now && t <= to {
                        edges.insert(t);
                    }
                }
            }
            if edges.is_empty() {
                continue;
            }
            let mut state = expect(reg, &data, self.now).inside;
            for t in edges {
                let next = expect(reg, &data, t).inside;
                for (i, a) in reg.audiences.iter().enumerate() {
                    if next[i] != state[i] {
                        out.push((a.id.clone(), key, next[i], t));
                    }
                }
                state = next;
            }
        }
        out
    }
}

fn flip(c: &MembershipChange) -> Flip {
    (c.audience_id.clone(), c.profile, c.entered, c.at)
}

/// Every computed trait's value and every audience's membership for one profile at `now`, by
/// the reference (audiences in registry order, so `in audience` reads ones already decided).
pub fn expect(reg: &Registry, data: &ProfileData, now: Millis) -> Expected {
    let computed: BTreeMap<String, Value> = reg
        .computed
        .iter()
        .map(|c| (c.name.clone(), evaluate_computed(&c.def, data, now)))
        .collect();
    let mut by_name: BTreeMap<&str, bool> = BTreeMap::new();
    let mut inside = Vec::new();
    for a in &reg.audiences {
        let v = evaluate_audience(
            &a.def,
            data,
            &computed,
            &|n| by_name.get(n).copied().unwrap_or(false),
            now,
        );
        by_name.insert(&a.name, v);
        inside.push(v);
    }
    Expected { computed, inside }
}

/// Checks a segmenter against the reference over `snap` (live key → data) at `now`: members
/// by registry index, computed values, and batch evaluation on one and two threads.
pub fn check_segmenter(
    seg: &Segmenter,
    engine: &Engine,
    snap: &BTreeMap<i64, ProfileData>,
    now: Millis,
) -> Result<(), TestCaseError> {
    let reg = seg.registry();
    let mut want: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); reg.audiences.len()];
    for (&key, data) in snap {
        let slot = engine.slot_of(key).expect("live keys have slots");
        prop_assert_eq!(seg.key_of(slot), key);
        let e = expect(reg, data, now);
        prop_assert_eq!(
            &seg.computed_values(slot),
            &e.computed,
            "computed values of profile {} at {}: {:?}",
            key,
            now,
            data
        );
        for (i, inside) in e.inside.iter().enumerate() {
            if *inside {
                want[i].insert(slot);
            }
        }
    }
    for (i, a) in reg.audiences.iter().enumerate() {
        let live: BTreeSet<u32> = seg.members(i).iter().collect();
        prop_assert_eq!(
            &live,
            &want[i],
            "real-time members of {} = {} at {} (left: real-time, right: reference)",
            &a.name,
            &a.def,
            now
        );
        for threads in [1, 2] {
            let batch: BTreeSet<u32> = seg.preview(&a.def, threads).iter().collect();
            prop_assert_eq!(
                &batch,
                &want[i],
                "batch members of {} = {} on {} threads at {}",
                &a.name,
                &a.def,
                threads,
                now
            );
        }
    }
    Ok(())
}

/// Every window and `within` period the definitions use, in milliseconds.
pub fn periods(reg: &Registry) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for c in &reg.computed {
        if let Window::Last(p) = c.def.window {
            out.insert(p.millis());
        }
    }
    for a in &reg.audiences {
        visit(&a.def.root, &mut |c| match c {
            Condition::Event(e) => {
                if let Window::Last(p) = e.window {
                    out.insert(p.millis());
                }
            }
            Condition::Trait(p) => {
                if let Test::Within(p) = p.test {
                    out.insert(p.millis());
                }
            }
            Condition::InAudience(_) => {}
        });
    }
    out
}

fn visit(e: &Logic<Condition>, f: &mut dyn FnMut(&Condition)) {
    match e {
        Logic::And(t) | Logic::Or(t) => t.iter().for_each(|x| visit(x, f)),
        Logic::Not(x) => visit(x, f),
        Logic::Leaf(l) => f(l),
    }
}

/// Every instant a profile's values mention: event times, and dates in traits and event
/// properties (which `within` may test, directly or through a computed trait).
fn instants(data: &ProfileData) -> BTreeSet<Millis> {
    let mut out = BTreeSet::new();
    let mut dates = |v: &Value| collect_dates(v, &mut out);
    for v in data.traits.values() {
        dates(v);
    }
    for e in &data.events {
        dates(&e.properties);
    }
    out.extend(data.events.iter().map(|e| e.timestamp_ms));
    out
}

fn collect_dates(v: &Value, out: &mut BTreeSet<Millis>) {
    match v {
        Value::String(s) => {
            if let Ok(t) = parse_iso8601(s) {
                out.insert(t);
            }
        }
        Value::Object(m) => m.values().for_each(|x| collect_dates(x, out)),
        Value::Array(a) => a.iter().for_each(|x| collect_dates(x, out)),
        _ => {}
    }
}

/// A fresh segmenter restored from the engine and the harness's record of events, as a
/// server restart would build it, with `registry` installed.
pub fn rebuilt(sim: &Sim, registry: Registry, threads: usize) -> Segmenter {
    let mut fresh = Segmenter::new();
    load_profiles(&sim.engine, &mut fresh);
    for s in &sim.sent {
        let slot = sim.engine.slot_of(s.key).expect("sent keys have slots");
        fresh.load_event(slot, &s.name, s.ts, s.props.as_ref());
    }
    fresh.load_clock(sim.now);
    fresh.set_registry(registry, threads);
    fresh
}

/// Builds a registry from definitions in text, keeping only those it accepts (in order: an
/// audience may test only the computed traits and audiences kept before it). Definitions
/// that do not parse are a bug of the test.
pub fn build_registry(computed: &[(String, String)], audiences: &[(String, String)]) -> Registry {
    let mut cs = Vec::new();
    for (name, text) in computed {
        let def = crate::audience::parse_computed(text)
            .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"));
        let c = ComputedTrait {
            id: format!("ct_{name}"),
            name: name.clone(),
            version: 1,
            def,
        };
        if Registry::new(vec![c.clone()], Vec::new()).is_ok() {
            cs.push(c);
        }
    }
    let mut auds: Vec<AudienceDef> = Vec::new();
    for (name, text) in audiences {
        let def = crate::audience::parse_audience(text)
            .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"));
        let a = AudienceDef {
            id: format!("aud_{name}"),
            name: name.clone(),
            version: 1,
            def,
        };
        let mut with = auds.clone();
        with.push(a.clone());
        if Registry::new(cs.clone(), with).is_ok() {
            auds.push(a);
        }
    }
    Registry::new(cs, auds).expect("each definition was accepted")
}
