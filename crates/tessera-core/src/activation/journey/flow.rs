//! What one input does to one journey for one profile: an entry, an event meeting an active
//! instance, a timer firing, a merge.

use super::def::{Reentry, StepKind, Target, Trigger};
use super::holdout_bucket;
use super::run::Run;
use super::state::{Book, Dirty, End, Instance, MAX_EVENTS};
use crate::activation::condition::Condition;
use crate::activation::EventView;
use crate::time::Millis;
use serde_json::Value;
use std::collections::BTreeMap;

/// Held-out profiles watch for the goal this long (24 h) when the goal sets no `within`:
/// without a bound they would hold their place in the journey forever.
const HELD_OUT_DEFAULT_WINDOW: Millis = 86_400_000;

impl Run<'_> {
    /// Whether `profile` may start an instance now (it has none, and re-entry allows it).
    pub fn may_enter(&self, profile: i64) -> bool {
        let rt = &self.book.rt;
        let excluded = self.book.def.reentry == Reentry::Never && rt.seen.contains(&profile);
        !rt.instances.contains_key(&profile) && !excluded
    }

    /// Starts an instance: held out (only watching the goal) or run from the first step.
    pub fn enter(&mut self, profile: i64, at: Millis, trigger: Value, first_event: Option<Value>) {
        let def = self.book.def;
        self.book.rt.counters.entered += 1;
        self.book.touch_metrics();
        if def.reentry == Reentry::Never && self.book.rt.seen.insert(profile) {
            self.book
                .sh
                .dirty
                .insert(Dirty::Seen(def.id.clone(), profile));
        }
        let held_out = holdout_bucket(&def.id, profile) < u64::from(def.holdout_percent);
        let mut inst = Instance {
            entry_profile: profile,
            start: self.position,
            started_at: at,
            held_out,
            step: None,
            due: None,
            trigger,
            events: first_event.into_iter().collect(),
            visits: BTreeMap::new(),
        };
        if !held_out {
            return self.go(profile, inst, Target::Step(0), at);
        }
        self.book.rt.counters.held_out += 1;
        // Without a goal there is nothing to watch for: the held-out instance ends at once.
        if let Some(goal) = &def.goal {
            let window = goal
                .within
                .as_ref()
                .map_or(HELD_OUT_DEFAULT_WINDOW, |w| w.ms);
            inst.due = Some(at.saturating_add(window));
            // Held-out instances keep no events: they never send.
            inst.events.clear();
            self.book.park(profile, inst);
        }
    }

    /// An event of a profile with an active instance: collected for the context, then the
    /// goal, exit rules and the wait_for step are checked, in that order.
    pub fn active_event(&mut self, profile: i64, ev: &EventView<'_>) {
        let def = self.book.def;
        let Some(name) = ev.name else { return };
        let view = self.view;
        let matches = |event: &str, filter: &Option<Condition>| {
            event == name
                && filter
                    .as_ref()
                    .is_none_or(|f| f.matches_with(ev.message, &|a| view.in_audience(profile, a)))
        };
        let Some(inst) = self.book.rt.instances.get_mut(&profile) else {
            return;
        };
        let goal_met = def.goal.as_ref().is_some_and(|g| {
            let window = match (&g.within, inst.held_out) {
                (Some(w), _) => Some(w.ms),
                (None, true) => Some(HELD_OUT_DEFAULT_WINDOW),
                (None, false) => None,
            };
            matches(&g.event, &g.filter)
                && window.is_none_or(|w| ev.timestamp.saturating_sub(inst.started_at) <= w)
        });
        if inst.held_out {
            if goal_met {
                self.book.take(profile);
                self.book.finish(End::HeldOutConverted);
            }
            return;
        }
        if let Trigger::Event { event, .. } = &def.trigger {
            if event == name && inst.events.len() < MAX_EVENTS {
                inst.events.push(ev.message.clone());
                self.book
                    .sh
                    .dirty
                    .insert(Dirty::Instance(def.id.clone(), profile));
            }
        }
        if goal_met {
            self.book.take(profile);
            return self.book.finish(End::Converted);
        }
        if def.exit_on.iter().any(|e| e == name) {
            self.book.take(profile);
            return self.book.finish(End::Exited);
        }
        let Some(step) = self.book.rt.instances[&profile].step else {
            return;
        };
        if let StepKind::WaitFor {
            event,
            filter,
            on_event,
            ..
        } = &def.steps[step].kind
        {
            if matches(event, filter) {
                let inst = self.book.take(profile).expect("checked above");
                self.go(profile, inst, on_event.target, ev.timestamp);
            }
        }
    }

    /// A timer of `profile` fired at its due instant.
    pub fn fire(&mut self, profile: i64, due: Millis) {
        let Some(inst) = self.book.take(profile) else {
            return;
        };
        if inst.held_out {
            return self.book.finish(End::HeldOutEnded);
        }
        let def = self.book.def;
        let next = inst.step.map(|i| &def.steps[i].kind);
        match next {
            Some(StepKind::Wait { next, .. }) => self.go(profile, inst, next.target, due),
            Some(StepKind::WaitFor { on_timeout, .. }) => {
                self.go(profile, inst, on_timeout.target, due)
            }
            // Unreachable: instances rest only at waits, and definition changes keep them only
            // where the new step still waits.
            _ => self.book.finish(End::Exited),
        }
    }
}

impl Book<'_> {
    /// Moves `absorbed`'s instance and re-entry memory to `survivor`; when the survivor
    /// already has an instance, the absorbed one ends as exited (held-out ones end silently).
    pub fn merge(&mut self, survivor: i64, absorbed: i64) {
        if let Some(inst) = self.take(absorbed) {
            if self.rt.instances.contains_key(&survivor) {
                self.finish(if inst.held_out {
                    End::HeldOutEnded
                } else {
                    End::Exited
                });
            } else {
                self.park(survivor, inst);
            }
        }
        if self.rt.seen.remove(&absorbed) {
            self.sh
                .dirty
                .insert(Dirty::Seen(self.def.id.clone(), absorbed));
            if self.rt.seen.insert(survivor) {
                self.sh
                    .dirty
                    .insert(Dirty::Seen(self.def.id.clone(), survivor));
            }
        }
    }
}
