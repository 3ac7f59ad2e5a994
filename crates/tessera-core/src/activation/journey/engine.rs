//! The engine's public face: [`Journeys`] holds a workspace's definitions and all per-profile
//! state, and is fed the log's entries in order; [`Action`] is what it asks the router to do.

use super::def::{JourneyDef, Trigger};
use super::run::Run;
use super::state::{Book, Dirty, Runtime, Shared};
use crate::activation::{AudienceView, EventView, ProfileLookup};
use crate::time::Millis;
use serde_json::Value;
use std::collections::BTreeMap;

/// Something a journey step asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Deliver a message to a destination; the router renders `template` (or its default
    /// payload when `None`) with `context`.
    Send {
        journey: String,
        journey_name: String,
        step: String,
        destination: String,
        /// The profile now (after merges, the survivor).
        profile: i64,
        /// Deterministic idempotency key:
        /// `"<journey>:<entry profile>:<instance start position>:<step>[:<n>]"`. The profile is
        /// the one the instance started on, so a merge does not change the keys of its sends;
        /// `n` (2, 3, ...) counts repeated visits of one step in a loop.
        key: String,
        template: Option<Value>,
        /// `{"journey": {"id","name"}, "step", "profile": {"id","userId","traits"},
        /// "trigger", "events", "timestamp"}`.
        context: Value,
        /// The instant decided: the event's timestamp, or the timer's due time.
        at: Millis,
        /// The log position of the event or tick that caused it.
        position: i64,
    },
    /// Write a trait on the profile.
    SetTrait {
        journey: String,
        profile: i64,
        name: String,
        value: Value,
        at: Millis,
        position: i64,
    },
}

/// A journey's counters and current occupancy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyMetrics {
    pub entered: u64,
    pub held_out: u64,
    pub held_out_converted: u64,
    pub converted: u64,
    pub exited: u64,
    pub sent: u64,
    pub capped: u64,
    /// Treated (not held-out) instances in progress; always the sum of `in_step`.
    pub active: u64,
    /// Held-out instances still watching for the goal (not part of `active`).
    pub held_out_active: u64,
    /// Current profiles per step id, every step in step order (only waits hold profiles).
    pub in_step: Vec<(String, u64)>,
}

/// All journeys of one workspace and all per-profile state.
#[derive(Debug, Default)]
pub struct Journeys {
    /// Sorted by id: the order journeys see each input in, and timers fire in.
    pub(super) defs: Vec<JourneyDef>,
    /// Parallel to `defs`.
    pub(super) rts: Vec<Runtime>,
    pub(super) shared: Shared,
}

/// Audience changes that re-derive memberships rather than report new ones: a rebuild or the
/// backfill of a new connection must not start journeys for people already in the audience.
const REPLAYED_REASONS: [&str; 2] = ["backfill", "rebuilt"];

impl Journeys {
    pub fn new() -> Journeys {
        Journeys::default()
    }

    /// Replaces the definitions (a repeated id keeps its last definition). Journeys whose id
    /// disappeared drop their instances, counters and re-entry memory. A journey whose
    /// definition changed keeps its counters and the instances whose current step id still
    /// exists and still waits; the others end as exited. Held-out instances are kept.
    pub fn set_definitions(&mut self, defs: Vec<JourneyDef>) {
        let by_id: BTreeMap<String, JourneyDef> =
            defs.into_iter().map(|d| (d.id.clone(), d)).collect();
        let mut old: BTreeMap<String, (JourneyDef, Runtime)> = std::mem::take(&mut self.defs)
            .into_iter()
            .zip(std::mem::take(&mut self.rts))
            .map(|(d, r)| (d.id.clone(), (d, r)))
            .collect();
        for (id, def) in by_id {
            let rt = match old.remove(&id) {
                None => Runtime::default(),
                Some((old_def, rt)) if old_def == def => rt,
                Some((old_def, rt)) => self.adapt(&old_def, &def, rt),
            };
            self.defs.push(def);
            self.rts.push(rt);
        }
        for (id, (_, rt)) in old {
            let dirty = &mut self.shared.dirty;
            dirty.extend(rt.instances.keys().map(|&p| Dirty::Instance(id.clone(), p)));
            dirty.extend(rt.seen.iter().map(|&p| Dirty::Seen(id.clone(), p)));
            dirty.insert(Dirty::Metrics(id));
        }
        self.shared.set_cap_keep(&self.defs);
        self.rebuild_timers();
    }

    /// Re-points instances at the new definition's step indexes.
    fn adapt(&mut self, old: &JourneyDef, new: &JourneyDef, mut rt: Runtime) -> Runtime {
        let dirty = &mut self.shared.dirty;
        rt.instances.retain(|&profile, inst| {
            dirty.insert(Dirty::Instance(new.id.clone(), profile));
            let Some(step) = inst.step else {
                return true;
            };
            let id = &old.steps[step].id;
            match new.step_index(id) {
                Some(i) if new.steps[i].kind.waits() => {
                    inst.step = Some(i);
                    true
                }
                _ => {
                    rt.counters.exited += 1;
                    dirty.insert(Dirty::Metrics(new.id.clone()));
                    false
                }
            }
        });
        rt
    }

    pub(super) fn rebuild_timers(&mut self) {
        self.shared.timers.clear();
        for (j, rt) in self.rts.iter().enumerate() {
            for (&profile, inst) in &rt.instances {
                if let Some(due) = inst.due {
                    self.shared.timers.insert((due, j, profile));
                }
            }
        }
    }

    /// The definitions, sorted by id.
    pub fn definitions(&self) -> &[JourneyDef] {
        &self.defs
    }

    fn run<'a>(
        &'a mut self,
        j: usize,
        view: &'a dyn ProfileLookup,
        out: &'a mut Vec<Action>,
        position: i64,
    ) -> Run<'a> {
        Run {
            book: Book {
                j,
                def: &self.defs[j],
                rt: &mut self.rts[j],
                sh: &mut self.shared,
            },
            view,
            out,
            position,
        }
    }

    /// An applied event (in log order). May trigger entries, satisfy wait_for steps, goals,
    /// exit rules; runs steps until they wait; appends actions. Events without a profile do
    /// nothing. An event that meets an active instance never also starts a new one (even if
    /// it ended the old one).
    pub fn on_event(
        &mut self,
        ev: &EventView<'_>,
        view: &dyn ProfileLookup,
        out: &mut Vec<Action>,
    ) {
        let Some(profile) = ev.profile else { return };
        for j in 0..self.defs.len() {
            let mut run = self.run(j, view, out, ev.position);
            if run.book.rt.instances.contains_key(&profile) {
                run.active_event(profile, ev);
                continue;
            }
            let def = run.book.def;
            let Trigger::Event { event, filter } = &def.trigger else {
                continue;
            };
            let triggers = ev.name == Some(event.as_str())
                && ev.timestamp >= ev.received_at.saturating_sub(def.max_trigger_age.ms)
                && run.may_enter(profile)
                && filter
                    .as_ref()
                    .is_none_or(|f| f.matches_with(ev.message, &|a| view.in_audience(profile, a)));
            if triggers {
                let msg = ev.message.clone();
                run.enter(profile, ev.timestamp, msg.clone(), Some(msg));
            }
        }
    }

    /// An audience entry or exit: an entry starts journeys triggered by that audience (unless
    /// it only replays a membership: reasons `backfill` and `rebuilt`). The trigger in the
    /// send context is `{"type": "audience_entered", "audience": {"id","name"}, "reason",
    /// "timestamp"}`, and `events` stays empty.
    pub fn on_audience(
        &mut self,
        change: &AudienceView<'_>,
        view: &dyn ProfileLookup,
        out: &mut Vec<Action>,
    ) {
        if !change.entered || REPLAYED_REASONS.contains(&change.reason) {
            return;
        }
        for j in 0..self.defs.len() {
            let mut run = self.run(j, view, out, change.position);
            let hit = matches!(&run.book.def.trigger,
                Trigger::Audience { audience } if audience == change.audience);
            if hit && run.may_enter(change.profile) {
                let trigger = serde_json::json!({
                    "type": "audience_entered",
                    "audience": {"id": change.audience, "name": change.name},
                    "reason": change.reason,
                    "timestamp": crate::time::format_iso8601(change.at),
                });
                run.enter(change.profile, change.at, trigger, None);
            }
        }
    }

    /// `absorbed` profiles were merged into `survivor`: their instances move to the survivor
    /// unless it already has one of that journey (then the absorbed one ends as exited; among
    /// several absorbed, the first listed wins); re-entry memory and frequency-cap history are
    /// combined. Merges produce no actions, so `position` is not needed.
    pub fn on_merge(&mut self, survivor: i64, absorbed: &[i64], _position: i64) {
        for j in 0..self.defs.len() {
            let mut book = Book {
                j,
                def: &self.defs[j],
                rt: &mut self.rts[j],
                sh: &mut self.shared,
            };
            for &a in absorbed.iter().filter(|&&a| a != survivor) {
                book.merge(survivor, a);
            }
        }
        for &a in absorbed.iter().filter(|&&a| a != survivor) {
            self.shared.merge_sends(survivor, a);
        }
    }

    /// A timer tick at instant `at` (log position `position`): fires every timer due at or
    /// before `at`, in (due, journey id, profile) order, each at its own due instant. Timers
    /// that firing sets up and that are due by `at` fire in the same tick, in order.
    pub fn tick(
        &mut self,
        at: Millis,
        position: i64,
        view: &dyn ProfileLookup,
        out: &mut Vec<Action>,
    ) {
        while let Some(&(due, j, profile)) = self.shared.timers.first() {
            if due > at {
                break;
            }
            self.run(j, view, out, position).fire(profile, due);
        }
    }

    /// The earliest due timer, if any.
    pub fn next_due(&self) -> Option<Millis> {
        self.shared.timers.first().map(|t| t.0)
    }

    /// A journey's metrics; `None` for an unknown id. Counts the journey's instances, so it
    /// costs time proportional to them.
    pub fn metrics(&self, journey: &str) -> Option<JourneyMetrics> {
        let j = self.index(journey)?;
        let (def, rt) = (&self.defs[j], &self.rts[j]);
        let mut per_step = vec![0u64; def.steps.len()];
        let mut held_out_active = 0;
        for inst in rt.instances.values() {
            match inst.step {
                Some(i) => per_step[i] += 1,
                None => held_out_active += 1,
            }
        }
        let c = &rt.counters;
        Some(JourneyMetrics {
            entered: c.entered,
            held_out: c.held_out,
            held_out_converted: c.held_out_converted,
            converted: c.converted,
            exited: c.exited,
            sent: c.sent,
            capped: c.capped,
            active: per_step.iter().sum(),
            held_out_active,
            in_step: def
                .steps
                .iter()
                .map(|s| s.id.clone())
                .zip(per_step)
                .collect(),
        })
    }

    pub(super) fn index(&self, journey: &str) -> Option<usize> {
        self.defs
            .binary_search_by(|d| d.id.as_str().cmp(journey))
            .ok()
    }
}
