//! What the engine remembers: one instance per (journey, profile) in progress, counters per
//! journey, the profiles a "never re-enter" journey has seen, every profile's recent journey
//! sends (for frequency caps), and the timers derived from the instances.
//!
//! All maps are ordered (`BTreeMap`/`BTreeSet`): iteration order decides the order of actions
//! and rows, and it must not depend on a hasher's seed.

use super::def::JourneyDef;
use crate::time::Millis;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The most events an instance keeps for its sends' context (the first ones: the trigger is
/// always among them).
pub(super) const MAX_EVENTS: usize = 50;

/// One profile's progress through one journey.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Instance {
    /// The profile it started on: part of the idempotency key, which must not change when a
    /// merge moves the instance to another profile.
    pub entry_profile: i64,
    /// The log position of the entry that started it (idempotency keys).
    pub start: i64,
    /// The instant it started (goal windows are measured from here).
    pub started_at: Millis,
    /// In the control group: runs no steps, only watches for the goal until `due`.
    pub held_out: bool,
    /// The wait or wait_for step it rests at (`None` when held out).
    pub step: Option<usize>,
    /// When its timer fires: the end of a wait, a wait_for's timeout, a held-out window.
    pub due: Option<Millis>,
    /// The trigger message, or the audience change, as JSON.
    pub trigger: Value,
    /// Messages with the trigger's event name seen while active, the trigger first.
    pub events: Vec<Value>,
    /// Visits per send step id, so a send inside a loop gets a new key each time round.
    pub visits: BTreeMap<String, u32>,
}

/// A journey's counters. Conversions are counted once per instance: the goal ends the
/// instance, so there is nothing left to convert again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Counters {
    pub entered: u64,
    pub held_out: u64,
    pub held_out_converted: u64,
    pub converted: u64,
    pub exited: u64,
    pub sent: u64,
    pub capped: u64,
}

/// The state of one journey.
#[derive(Debug, Default)]
pub(super) struct Runtime {
    pub counters: Counters,
    pub instances: BTreeMap<i64, Instance>,
    /// Profiles that ever entered; kept for `"reentry": "never"` only.
    pub seen: BTreeSet<i64>,
}

/// A state row that changed since the last `take_dirty`. Journeys are named by id, not by
/// index: indexes move when definitions change, ids do not.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Dirty {
    Instance(String, i64),
    Metrics(String),
    Seen(String, i64),
    Freq(i64),
}

/// State shared by all journeys of the workspace.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Each profile's journey sends (instants, ascending), from every journey.
    pub freq: BTreeMap<i64, Vec<Millis>>,
    /// How much send history to keep: the longest `per` and the largest `max` of all caps;
    /// `None` when no journey has a cap, and then no history is recorded.
    pub cap_keep: Option<(Millis, usize)>,
    /// (due, journey index, profile): fired in this order.
    pub timers: BTreeSet<(Millis, usize, i64)>,
    pub dirty: BTreeSet<Dirty>,
}

impl Shared {
    /// Recomputes what cap history is needed, after the definitions changed.
    pub fn set_cap_keep(&mut self, defs: &[JourneyDef]) {
        self.cap_keep = defs
            .iter()
            .filter_map(|d| d.frequency_cap.as_ref())
            .map(|c| (c.per.ms, c.max as usize))
            .reduce(|a, b| (a.0.max(b.0), a.1.max(b.1)));
    }

    /// Journey sends of `profile` in the `per` before `at` (`at` included).
    pub fn sends_within(&self, profile: i64, at: Millis, per: Millis) -> usize {
        let from = at.saturating_sub(per);
        self.freq
            .get(&profile)
            .map_or(0, |h| h.iter().filter(|&&t| t > from && t <= at).count())
    }

    /// Records a send, dropping history no cap can look at any more.
    pub fn record_send(&mut self, profile: i64, at: Millis) {
        let Some((keep_ms, keep_n)) = self.cap_keep else {
            return;
        };
        let h = self.freq.entry(profile).or_default();
        let i = h.partition_point(|&t| t <= at);
        h.insert(i, at);
        let from = at.saturating_sub(keep_ms);
        h.retain(|&t| t > from);
        trim(h, keep_n);
        self.dirty.insert(Dirty::Freq(profile));
    }

    /// Moves the absorbed profile's send history to the survivor.
    pub fn merge_sends(&mut self, survivor: i64, absorbed: i64) {
        let Some(moved) = self.freq.remove(&absorbed) else {
            return;
        };
        self.dirty.insert(Dirty::Freq(absorbed));
        let keep_n = self.cap_keep.map_or(0, |(_, n)| n);
        let h = self.freq.entry(survivor).or_default();
        h.extend(moved);
        h.sort_unstable();
        trim(h, keep_n);
        if h.is_empty() {
            self.freq.remove(&survivor);
        }
        self.dirty.insert(Dirty::Freq(survivor));
    }
}

/// Keeps the newest `n` instants: no cap counts more than its `max`.
fn trim(h: &mut Vec<Millis>, n: usize) {
    if h.len() > n {
        h.drain(..h.len() - n);
    }
}

/// How an instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// Reached the goal.
    Converted,
    /// Reached an exit step or the end, met an exit_on event, lost its step to a definition
    /// change, or lost to another instance in a merge.
    Exited,
    /// A held-out instance met the goal.
    HeldOutConverted,
    /// A held-out instance's window passed (or it lost in a merge): nothing to count.
    HeldOutEnded,
}

/// One journey's state with the shared state, for the bookkeeping every path shares.
pub(super) struct Book<'a> {
    pub j: usize,
    pub def: &'a JourneyDef,
    pub rt: &'a mut Runtime,
    pub sh: &'a mut Shared,
}

impl Book<'_> {
    /// Removes a profile's instance (and its timer) to work on it.
    pub fn take(&mut self, profile: i64) -> Option<Instance> {
        let inst = self.rt.instances.remove(&profile)?;
        if let Some(due) = inst.due {
            self.sh.timers.remove(&(due, self.j, profile));
        }
        self.sh
            .dirty
            .insert(Dirty::Instance(self.def.id.clone(), profile));
        Some(inst)
    }

    /// Puts an instance (back) in place, with its timer.
    pub fn park(&mut self, profile: i64, inst: Instance) {
        if let Some(due) = inst.due {
            self.sh.timers.insert((due, self.j, profile));
        }
        self.sh
            .dirty
            .insert(Dirty::Instance(self.def.id.clone(), profile));
        self.rt.instances.insert(profile, inst);
    }

    /// Counts how a taken instance ended (it is simply not put back).
    pub fn finish(&mut self, end: End) {
        let c = &mut self.rt.counters;
        match end {
            End::Converted => c.converted += 1,
            End::Exited => c.exited += 1,
            End::HeldOutConverted => c.held_out_converted += 1,
            End::HeldOutEnded => return,
        }
        self.touch_metrics();
    }

    pub fn touch_metrics(&mut self) {
        self.sh.dirty.insert(Dirty::Metrics(self.def.id.clone()));
    }
}
