//! The real-time evaluator of one workspace: it holds the segmentation store (profile traits
//! and events by column), the values of computed traits, the membership of every audience and
//! the timers of sliding windows, and keeps them exact as events are applied, profiles merge
//! and time passes.
//!
//! After each applied event only the definitions that event can change are evaluated, and
//! only for its profile: the profile's relevant events are read from the column store and
//! evaluated with the reference rules, so the result is exactly the reference's. Each entry
//! and exit is recorded with its time and reason.
//!
//! Time comes from the caller: the `received_at` of applied events and explicit
//! [`Segmenter::advance`] calls. A timer fires at the instant a window edge is crossed and its
//! changes carry that instant, not the time the caller got round to advancing the clock.

use super::batch::{self, BatchView};
use super::bitset::Bitset;
use super::events::EventStore;
use super::registry::{Plan, Registry};
use super::table::Table;
use super::timers::{audience_edges, computed_edges, Earliest};
use crate::audience::reference::{evaluate_audience, evaluate_computed, EventRecord, ProfileData};
use crate::audience::{Aggregate, Audience};
use crate::time::Millis;
use hashbrown::HashMap;
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// Why a profile entered or left an audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The event at this log position.
    Event { position: i64 },
    /// The profile was merged into another (it exits everything), or absorbed one (the
    /// survivor is evaluated again), by the event at this position.
    Merge { position: i64, into: i64 },
    /// A window or `within` edge passed.
    Time,
    /// The audience was created and evaluated over every profile.
    Backfill,
    /// The audience's definition (or a computed trait it reads) changed.
    Updated,
    /// The profile state was re-derived from the log (after a split or a rules change).
    Rebuilt,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Event { .. } => "event",
            Reason::Merge { .. } => "merge",
            Reason::Time => "time",
            Reason::Backfill => "backfill",
            Reason::Updated => "definition_updated",
            Reason::Rebuilt => "rebuilt",
        }
    }

    /// The log position of the event behind the change, if one was.
    pub fn position(&self) -> Option<i64> {
        match self {
            Reason::Event { position } | Reason::Merge { position, .. } => Some(*position),
            _ => None,
        }
    }
}

/// One entry into or exit from an audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub audience_id: String,
    pub audience_name: String,
    pub version: u32,
    /// The profile's key (its id is `prf_<key>`).
    pub profile: i64,
    pub entered: bool,
    pub at: Millis,
    pub reason: Reason,
}

/// What applying one event did, as the identity engine reports it.
#[derive(Debug, Clone, Default)]
pub struct Applied<'a> {
    pub position: i64,
    pub received_at: Millis,
    /// The live profile slot the event belongs to, and its key.
    pub slot: u32,
    pub key: i64,
    /// Slots (with their keys) merged into `slot` by this event.
    pub absorbed: Vec<(u32, i64)>,
    /// The event's name (track `event`, or `page` / `screen`), time and properties.
    pub event: Option<(&'a str, Millis, Option<&'a Value>)>,
    /// Traits of the live profile whose value changed (after merging), with the new value.
    pub traits: Vec<(String, Option<Value>)>,
}

#[derive(Default)]
pub struct Segmenter {
    pub(super) registry: Registry,
    pub(super) now: Millis,
    pub(super) events: EventStore,
    pub(super) traits: Table,
    pub(super) keys: Vec<i64>,
    pub(super) live_of: Vec<u32>,
    pub(super) live: Bitset,
    /// Slots merged into each live slot that absorbed any.
    group: HashMap<u32, Vec<u32>>,
    /// Per computed trait: values by live slot, only where not the default.
    pub(super) computed: Vec<HashMap<u32, Value>>,
    /// Per audience (registry order): members by live slot.
    pub(super) members: Vec<Bitset>,
    timers: BinaryHeap<Reverse<(Millis, u32)>>,
    scheduled: HashMap<u32, Millis>,
    changes: Vec<MembershipChange>,
}

impl Segmenter {
    pub fn new() -> Segmenter {
        Segmenter::default()
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The clock: the latest `received_at` applied or instant advanced to.
    pub fn now(&self) -> Millis {
        self.now
    }

    pub fn events(&self) -> &EventStore {
        &self.events
    }

    /// Registers a profile slot (restoring state, or a profile the engine created).
    pub fn register(&mut self, slot: u32, key: i64, live: u32) {
        let i = slot as usize;
        if self.keys.len() <= i {
            self.keys.resize(i + 1, 0);
            self.live_of.resize(i + 1, u32::MAX);
        }
        self.keys[i] = key;
        self.live_of[i] = live;
        if live == slot {
            self.live.set(slot, true);
        } else {
            self.live.set(slot, false);
            self.group.entry(live).or_default().push(slot);
        }
    }

    /// The key of a slot's live profile.
    pub fn key_of(&self, slot: u32) -> i64 {
        self.keys[self.live_of[slot as usize] as usize]
    }

    /// Loads an event without evaluating anything (restoring at start-up, before
    /// [`Segmenter::recompute`]).
    pub fn load_event(&mut self, slot: u32, name: &str, ts: Millis, props: Option<&Value>) {
        self.events.push(slot, name, ts, props);
    }

    /// Sets a trait without evaluating anything (restoring at start-up).
    pub fn load_trait(&mut self, slot: u32, key: &str, value: Option<&Value>) {
        self.traits.set(slot as usize, &[key.to_owned()], value);
    }

    /// Moves the clock without timers (restoring at start-up).
    pub fn load_clock(&mut self, now: Millis) {
        self.now = self.now.max(now);
    }

    /// The changes recorded since the last call.
    pub fn take_changes(&mut self) -> Vec<MembershipChange> {
        std::mem::take(&mut self.changes)
    }

    /// Whether a live slot is in an audience (by registry index).
    pub fn is_member(&self, audience: usize, slot: u32) -> bool {
        self.members[audience].contains(self.live_of_slot(slot))
    }

    fn live_of_slot(&self, slot: u32) -> u32 {
        self.live_of.get(slot as usize).copied().unwrap_or(slot)
    }

    /// The members of an audience (live slots).
    pub fn members(&self, audience: usize) -> &Bitset {
        &self.members[audience]
    }

    /// Audience sizes, by registry index.
    pub fn sizes(&self) -> Vec<usize> {
        self.members.iter().map(Bitset::count).collect()
    }

    /// The value of every computed trait for a live slot, defaults included.
    pub fn computed_values(&self, slot: u32) -> BTreeMap<String, Value> {
        let slot = self.live_of_slot(slot);
        self.registry
            .computed
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let v = self.computed[i]
                    .get(&slot)
                    .cloned()
                    .unwrap_or_else(|| default_value(c.def.aggregate));
                (c.name.clone(), v)
            })
            .collect()
    }

    /// Applies what one event did: stores it, fires the timers due before it, and evaluates
    /// what it can change for its profile.
    pub fn apply(&mut self, a: Applied<'_>) {
        self.advance(a.received_at);
        // A new profile is evaluated for everything: audiences true of an empty profile
        // (`did not perform`, `plan != "pro"`) include it whatever the event touched.
        let new = a.slot as usize >= self.keys.len() || self.keys[a.slot as usize] != a.key;
        if new {
            self.register(a.slot, a.key, a.slot);
        }
        for &(s, key) in &a.absorbed {
            if s as usize >= self.keys.len() || self.keys[s as usize] == 0 {
                self.register(s, key, s);
            }
            self.absorb(a.slot, s, a.position);
        }
        for (k, v) in &a.traits {
            self.traits
                .set(a.slot as usize, std::slice::from_ref(k), v.as_ref());
        }
        if let Some((name, ts, props)) = a.event {
            self.events.push(a.slot, name, ts, props);
        }
        let plan = if a.absorbed.is_empty() && !new {
            let changed: Vec<String> = a.traits.iter().map(|(k, _)| k.clone()).collect();
            self.registry.plan_for(a.event.map(|(n, _, _)| n), &changed)
        } else {
            self.registry.plan_all()
        };
        let reason = match a.absorbed.is_empty() {
            true => Reason::Event {
                position: a.position,
            },
            false => Reason::Merge {
                position: a.position,
                into: a.key,
            },
        };
        if !plan.is_empty() {
            self.evaluate(a.slot, &plan, reason);
        }
    }

    /// `absorbed` (live until now) joins `survivor`: it leaves every audience it was in.
    fn absorb(&mut self, survivor: u32, absorbed: u32, position: i64) {
        let into = self.keys[survivor as usize];
        for i in 0..self.members.len() {
            if self.members[i].set(absorbed, false) {
                self.record(i, absorbed, false, Reason::Merge { position, into });
            }
        }
        for values in &mut self.computed {
            values.remove(&absorbed);
        }
        let mut moved = self.group.remove(&absorbed).unwrap_or_default();
        moved.push(absorbed);
        for &s in &moved {
            self.live_of[s as usize] = survivor;
        }
        self.group.entry(survivor).or_default().extend(moved);
        self.live.set(absorbed, false);
        self.live.set(survivor, true);
    }

    fn record(&mut self, audience: usize, slot: u32, entered: bool, reason: Reason) {
        self.record_key(audience, self.keys[slot as usize], entered, reason);
    }

    pub(super) fn record_key(
        &mut self,
        audience: usize,
        profile: i64,
        entered: bool,
        reason: Reason,
    ) {
        let a = &self.registry.audiences[audience];
        self.changes.push(MembershipChange {
            audience_id: a.id.clone(),
            audience_name: a.name.clone(),
            version: a.version,
            profile,
            entered,
            at: self.now,
            reason,
        });
    }

    /// Fires every timer due up to `now`, then moves the clock there.
    pub fn advance(&mut self, now: Millis) {
        while let Some(&Reverse((t, slot))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.scheduled.get(&slot) == Some(&t) {
                self.scheduled.remove(&slot);
            }
            self.now = self.now.max(t);
            let live = self.live_of_slot(slot);
            if !self.live.contains(live) {
                continue;
            }
            let plan = self.registry.plan_timed();
            if !plan.is_empty() {
                self.evaluate(live, &plan, Reason::Time);
            }
        }
        self.now = self.now.max(now);
    }

    /// The profile's traits and events of the given names in log order, each with only the
    /// property paths given (all properties for `None`).
    fn materialize<'n>(
        &self,
        live: u32,
        reads: impl Iterator<Item = (&'n String, Option<&'n BTreeSet<Vec<String>>>)>,
    ) -> ProfileData {
        let mut slots = vec![live];
        if let Some(g) = self.group.get(&live) {
            slots.extend(g);
        }
        let mut events = Vec::new();
        for (name, paths) in reads {
            let Some(part) = self.events.partition(name) else {
                continue;
            };
            let mut rows: Vec<usize> = slots.iter().flat_map(|&s| part.rows_of(s)).collect();
            rows.sort_unstable();
            events.extend(rows.into_iter().map(|r| EventRecord {
                name: name.clone(),
                timestamp_ms: part.ts[r],
                properties: Value::Object(match paths {
                    Some(p) => part.props.project(r, p),
                    None => part.props.row_object(r),
                }),
            }));
        }
        ProfileData {
            traits: self.traits.row_object(live as usize).into_iter().collect(),
            events,
        }
    }

    /// Evaluates computed traits and audiences (registry indices; audiences in registry
    /// order) for one live profile, records membership changes and schedules its next timer.
    fn evaluate(&mut self, live: u32, plan: &Plan, reason: Reason) {
        let data = self.materialize(live, plan.reads.iter().map(|(n, p)| (n, Some(p))));
        for &c in &plan.computed {
            let def = &self.registry.computed[c].def;
            let v = evaluate_computed(def, &data, self.now);
            if v == default_value(def.aggregate) {
                self.computed[c].remove(&live);
            } else {
                self.computed[c].insert(live, v);
            }
        }
        // Only the computed traits the audiences read: they shadow profile traits of the
        // same name, so each is passed even when it has no value.
        let values: BTreeMap<String, Value> = plan
            .computed_read
            .iter()
            .map(|&c| {
                let def = &self.registry.computed[c];
                let v = self.computed[c]
                    .get(&live)
                    .cloned()
                    .unwrap_or_else(|| default_value(def.def.aggregate));
                (def.name.clone(), v)
            })
            .collect();
        for &i in &plan.audiences {
            let inside = {
                let reg = &self.registry;
                let members = &self.members;
                let is_in = |name: &str| {
                    reg.audience_by_name(name)
                        .is_some_and(|j| members[j].contains(live))
                };
                evaluate_audience(&reg.audiences[i].def, &data, &values, &is_in, self.now)
            };
            if self.members[i].set(live, inside) {
                self.record(i, live, inside, reason.clone());
            }
        }
        // Edges of what was evaluated only: a timer that fires evaluates every
        // time-dependent definition and schedules the next edge of all of them, so an edge
        // of something not evaluated now is already scheduled.
        let mut next = Earliest::after(self.now);
        for &c in &plan.timed_computed {
            computed_edges(&self.registry.computed[c].def, &data, &mut next);
        }
        for &a in &plan.timed_audiences {
            audience_edges(&self.registry.audiences[a].def, &data, &values, &mut next);
        }
        if let Some(t) = next.at {
            self.schedule(live, t);
        }
    }

    fn schedule(&mut self, live: u32, t: Millis) {
        if self.scheduled.get(&live).is_some_and(|&s| s <= t) {
            return;
        }
        self.scheduled.insert(live, t);
        self.timers.push(Reverse((t, live)));
    }

    /// A read-only view for batch evaluation.
    pub fn view(&self) -> BatchView<'_> {
        BatchView {
            events: &self.events,
            traits: &self.traits,
            live_of: &self.live_of,
            live: &self.live,
            registry: &self.registry,
            computed: &self.computed,
            members: &self.members,
            now: self.now,
            merged: !self.group.is_empty(),
        }
    }

    /// Evaluates an unsaved audience over every profile (preview).
    pub fn preview(&self, audience: &Audience, threads: usize) -> Bitset {
        batch::evaluate(&self.view(), audience, threads)
    }

    /// Replaces the definitions. Audiences whose definition (or a computed trait they read)
    /// changed are evaluated again over every profile and their changes recorded (new ones as
    /// a backfill); unchanged ones keep their members; removed ones are dropped silently.
    pub fn set_registry(&mut self, registry: Registry, threads: usize) {
        let old = std::mem::take(&mut self.registry);
        let mut old_members = std::mem::take(&mut self.members);
        let mut old_computed = std::mem::take(&mut self.computed);
        // Computed traits: keep values of unchanged definitions, compute the others.
        let mut changed_computed = BTreeSet::new();
        let mut computed = Vec::new();
        for c in &registry.computed {
            // By id: a renamed computed trait keeps its values.
            match old.computed.iter().position(|x| x.id == c.id) {
                Some(i) if old.computed[i].def == c.def => {
                    computed.push(std::mem::take(&mut old_computed[i]))
                }
                _ => {
                    changed_computed.insert(c.name.clone());
                    computed.push(HashMap::new());
                }
            }
        }
        self.registry = registry;
        self.computed = computed;
        for (i, c) in self.registry.computed.clone().iter().enumerate() {
            if changed_computed.contains(&c.name) {
                self.backfill_computed(i, threads);
            }
        }
        self.members = vec![Bitset::default(); self.registry.audiences.len()];
        let mut changed_audiences: BTreeSet<String> = BTreeSet::new();
        for i in 0..self.registry.audiences.len() {
            let a = self.registry.audiences[i].clone();
            let d = self.registry.deps(i).clone();
            // By id: a renamed audience keeps its members and announces nothing.
            let previous = old.audiences.iter().position(|x| x.id == a.id);
            let same = previous.is_some_and(|j| old.audiences[j].def == a.def)
                && !d
                    .computed_traits
                    .iter()
                    .any(|c| changed_computed.contains(c))
                && !d.audiences.iter().any(|x| changed_audiences.contains(x));
            if same {
                let j = previous.expect("checked above");
                self.members[i] = std::mem::take(&mut old_members[j]);
                continue;
            }
            changed_audiences.insert(a.name.clone());
            let now = batch::evaluate(&self.view(), &a.def, threads);
            let before = previous
                .map(|j| std::mem::take(&mut old_members[j]))
                .unwrap_or_default();
            let reason = match previous {
                Some(_) => Reason::Updated,
                None => Reason::Backfill,
            };
            self.diff_into(i, before, now, reason);
        }
        self.reschedule_all(threads);
    }

    /// Evaluates every audience over every profile again and records what changed (after a
    /// rebuild swapped in re-derived profiles).
    pub fn recompute(&mut self, reason: Option<Reason>, threads: usize) {
        for i in 0..self.registry.computed.len() {
            self.backfill_computed(i, threads);
        }
        for i in 0..self.registry.audiences.len() {
            let def = self.registry.audiences[i].def.clone();
            let now = batch::evaluate(&self.view(), &def, threads);
            let before = std::mem::take(&mut self.members[i]);
            match &reason {
                Some(r) => self.diff_into(i, before, now, r.clone()),
                None => self.members[i] = now,
            }
        }
        self.reschedule_all(threads);
    }

    /// Sets an audience's members from `before` to `now`, recording the difference.
    fn diff_into(&mut self, i: usize, before: Bitset, now: Bitset, reason: Reason) {
        let entered: Vec<u32> = before.complement_in(&now).iter().collect();
        let exited: Vec<u32> = now.complement_in(&before).iter().collect();
        self.members[i] = now;
        for s in entered {
            self.record(i, s, true, reason.clone());
        }
        for s in exited {
            self.record(i, s, false, reason.clone());
        }
    }

    /// Computes a computed trait for every profile that has events of its name, on `threads`
    /// threads.
    fn backfill_computed(&mut self, i: usize, threads: usize) {
        let def = &self.registry.computed[i].def;
        let Some(part) = self.events.partition(&def.event) else {
            self.computed[i] = HashMap::new();
            return;
        };
        let mut lives: Vec<u32> = part.slot.iter().map(|&s| self.live_of_slot(s)).collect();
        lives.sort_unstable();
        lives.dedup();
        let reads = self.registry.event_reads(&[i], &[]);
        let this = &*self;
        let compute = |chunk: &[u32]| -> Vec<(u32, Value)> {
            chunk
                .iter()
                .filter_map(|&live| {
                    let data = this.materialize(live, reads.iter().map(|(n, p)| (n, Some(p))));
                    let v = evaluate_computed(def, &data, this.now);
                    (v != default_value(def.aggregate)).then_some((live, v))
                })
                .collect()
        };
        let per = lives.len().div_ceil(threads.max(1)).max(1);
        let parts: Vec<Vec<(u32, Value)>> = if threads <= 1 || lives.len() < 4096 {
            vec![compute(&lives)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = lives
                    .chunks(per)
                    .map(|c| s.spawn(move || compute(c)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a backfill thread panicked"))
                    .collect()
            })
        };
        self.computed[i] = parts.into_iter().flatten().collect();
    }

    /// Schedules the next timer of every profile that has time-dependent definitions.
    fn reschedule_all(&mut self, threads: usize) {
        self.timers.clear();
        self.scheduled.clear();
        let (c, a) = (
            &self.registry.timed_computed,
            &self.registry.timed_audiences,
        );
        if c.is_empty() && a.is_empty() {
            return;
        }
        for (slot, t) in batch::next_edges(&self.view(), c, a, threads) {
            self.schedule(slot, t);
        }
    }

    /// Approximate heap bytes of the hot state.
    pub fn heap_bytes(&self) -> usize {
        self.events.heap_bytes()
            + self.traits.heap_bytes()
            + self.keys.capacity() * 8
            + self.live_of.capacity() * 4
            + self.members.iter().map(Bitset::heap_bytes).sum::<usize>()
            + self
                .computed
                .iter()
                .map(|m| m.capacity() * 48)
                .sum::<usize>()
            + self.timers.capacity() * 16
            + self.scheduled.capacity() * 13
    }
}

/// A computed trait's value when nothing matched: 0 for the counting aggregates, else null.
pub fn default_value(a: Aggregate) -> Value {
    match a {
        Aggregate::Count | Aggregate::UniqueCount => Value::from(0),
        _ => Value::Null,
    }
}
