//! Running an instance's steps from a given step until it waits or ends, appending the
//! actions its sends and trait writes produce.

use super::def::{StepKind, Target};
use super::engine::Action;
use super::state::{Book, End, Instance};
use crate::activation::ProfileLookup;
use crate::time::{format_iso8601, Millis};
use serde_json::{json, Value};

/// One journey's state, with what a step needs from outside: the profiles, where actions go,
/// and the log position the actions are attributed to.
pub(super) struct Run<'a> {
    pub book: Book<'a>,
    pub view: &'a dyn ProfileLookup,
    pub out: &'a mut Vec<Action>,
    pub position: i64,
}

impl Run<'_> {
    /// Runs `inst` (taken out of the state) from `to` at instant `at`, until it rests at a
    /// wait (and is parked again) or ends.
    pub fn go(&mut self, profile: i64, mut inst: Instance, mut to: Target, at: Millis) {
        let def = self.book.def;
        // The definition has no wait-free loop, so a run visits each step at most once before
        // it waits or ends; the bound only guards that promise.
        for _ in 0..=def.steps.len() {
            let Target::Step(i) = to else {
                return self.book.finish(End::Exited);
            };
            let step = &def.steps[i];
            to = match &step.kind {
                StepKind::Wait { duration, .. } => {
                    return self.rest(profile, inst, i, at.saturating_add(duration.ms));
                }
                StepKind::WaitFor { timeout, .. } => {
                    return self.rest(profile, inst, i, at.saturating_add(timeout.ms));
                }
                StepKind::Exit => return self.book.finish(End::Exited),
                StepKind::Branch {
                    cond,
                    then,
                    otherwise,
                } => {
                    let doc = json!({
                        "traits": Value::Object(self.view.traits(profile)),
                        "trigger": inst.trigger,
                    });
                    let view = self.view;
                    if cond.matches_with(&doc, &|a| view.in_audience(profile, a)) {
                        then.target
                    } else {
                        otherwise.target
                    }
                }
                StepKind::Send {
                    destination,
                    payload,
                    next,
                } => {
                    self.send(profile, &mut inst, i, destination, payload, at);
                    next.target
                }
                StepKind::SetTrait { name, value, next } => {
                    self.out.push(Action::SetTrait {
                        journey: def.id.clone(),
                        profile,
                        name: name.clone(),
                        value: value.clone(),
                        at,
                        position: self.position,
                    });
                    next.target
                }
            };
        }
        debug_assert!(false, "journey {} ran without waiting", def.id);
        self.book.finish(End::Exited);
    }

    fn rest(&mut self, profile: i64, mut inst: Instance, step: usize, due: Millis) {
        inst.step = Some(step);
        inst.due = Some(due);
        self.book.park(profile, inst);
    }

    /// A send step: skipped (and counted) when the profile reached the frequency cap,
    /// otherwise an action and an entry in the profile's send history.
    fn send(
        &mut self,
        profile: i64,
        inst: &mut Instance,
        step: usize,
        destination: &str,
        payload: &Option<Value>,
        at: Millis,
    ) {
        let def = self.book.def;
        let step_id = &def.steps[step].id;
        let visit = inst.visits.entry(step_id.clone()).or_insert(0);
        *visit += 1;
        let visit = *visit;
        self.book.touch_metrics();
        if let Some(cap) = &def.frequency_cap {
            if self.book.sh.sends_within(profile, at, cap.per.ms) >= cap.max as usize {
                self.book.rt.counters.capped += 1;
                return;
            }
        }
        self.book.rt.counters.sent += 1;
        self.book.sh.record_send(profile, at);
        let mut key = format!(
            "{}:{}:{}:{}",
            def.id, inst.entry_profile, inst.start, step_id
        );
        if visit > 1 {
            key.push_str(&format!(":{visit}"));
        }
        let context = json!({
            "journey": {"id": def.id, "name": def.name},
            "step": step_id,
            "profile": {
                "id": format!("prf_{profile}"),
                "userId": self.view.user_id(profile),
                "traits": Value::Object(self.view.traits(profile)),
            },
            "trigger": inst.trigger,
            "events": inst.events,
            "timestamp": format_iso8601(at),
        });
        self.out.push(Action::Send {
            journey: def.id.clone(),
            journey_name: def.name.clone(),
            step: step_id.clone(),
            destination: destination.to_string(),
            profile,
            key,
            template: payload.clone(),
            context,
            at,
            position: self.position,
        });
    }
}
