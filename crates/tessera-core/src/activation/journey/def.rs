//! A parsed journey definition and its canonical JSON. Step references are resolved to
//! indexes once, at parse time, so the engine never looks an id up while running; the ids
//! as written are kept beside them for the canonical form.

use super::duration::Dur;
use crate::activation::condition::Condition;
use serde_json::{json, Map, Value};

/// One journey of a workspace, checked: every referenced step exists, no loop can run without
/// waiting, all durations are positive.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyDef {
    pub id: String,
    pub name: String,
    pub(super) trigger: Trigger,
    pub(super) goal: Option<Goal>,
    pub(super) exit_on: Vec<String>,
    pub(super) holdout_percent: u8,
    pub(super) frequency_cap: Option<FrequencyCap>,
    pub(super) reentry: Reentry,
    pub(super) max_trigger_age: Dur,
    pub(super) steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Trigger {
    Event {
        event: String,
        filter: Option<Condition>,
    },
    Audience {
        audience: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Goal {
    pub event: String,
    pub filter: Option<Condition>,
    /// `None`: no limit while the profile is in the journey (held-out profiles use 24 h).
    pub within: Option<Dur>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct FrequencyCap {
    pub max: u32,
    pub per: Dur,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reentry {
    Never,
    AfterExit,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Step {
    pub id: String,
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum StepKind {
    Wait {
        duration: Dur,
        next: Next,
    },
    WaitFor {
        event: String,
        filter: Option<Condition>,
        timeout: Dur,
        on_event: Next,
        on_timeout: Next,
    },
    Branch {
        cond: Condition,
        then: Next,
        otherwise: Next,
    },
    Send {
        destination: String,
        payload: Option<Value>,
        next: Next,
    },
    SetTrait {
        name: String,
        value: Value,
        next: Next,
    },
    Exit,
}

/// Where a step goes on.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Next {
    /// The id as written; `None` when it defaulted to the following step.
    pub given: Option<String>,
    pub target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Step(usize),
    /// Past the end of the list: the journey is over (exited).
    End,
}

impl StepKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            StepKind::Wait { .. } => "wait",
            StepKind::WaitFor { .. } => "wait_for",
            StepKind::Branch { .. } => "branch",
            StepKind::Send { .. } => "send",
            StepKind::SetTrait { .. } => "set_trait",
            StepKind::Exit => "exit",
        }
    }

    /// Whether a profile can rest at this step (everything else runs on at once).
    pub fn waits(&self) -> bool {
        matches!(self, StepKind::Wait { .. } | StepKind::WaitFor { .. })
    }

    /// The steps this one can go on to without waiting (a wait's successors are reached only
    /// after time passes, so they do not count for the loop check).
    pub fn immediate_targets(&self) -> Vec<Target> {
        match self {
            StepKind::Branch {
                then, otherwise, ..
            } => vec![then.target, otherwise.target],
            StepKind::Send { next, .. } | StepKind::SetTrait { next, .. } => vec![next.target],
            StepKind::Wait { .. } | StepKind::WaitFor { .. } | StepKind::Exit => Vec::new(),
        }
    }
}

impl JourneyDef {
    /// Canonical JSON form (what was parsed, with defaults written out), used for storage.
    /// [`JourneyDef::parse`] reads it back to an equal definition.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert(
            "trigger".into(),
            match &self.trigger {
                Trigger::Event { event, filter } => with_filter(json!({"event": event}), filter),
                Trigger::Audience { audience } => json!({"audience": audience}),
            },
        );
        if let Some(g) = &self.goal {
            let mut goal = with_filter(json!({"event": g.event}), &g.filter);
            if let Some(w) = &g.within {
                goal["within"] = w.source.clone();
            }
            m.insert("goal".into(), goal);
        }
        m.insert("exit_on".into(), json!(self.exit_on));
        m.insert("holdout_percent".into(), json!(self.holdout_percent));
        if let Some(c) = &self.frequency_cap {
            m.insert(
                "frequency_cap".into(),
                json!({"max": c.max, "per": c.per.source}),
            );
        }
        let reentry = match self.reentry {
            Reentry::Never => "never",
            Reentry::AfterExit => "after_exit",
        };
        m.insert("reentry".into(), json!(reentry));
        m.insert(
            "max_trigger_age".into(),
            self.max_trigger_age.source.clone(),
        );
        let steps: Vec<Value> = self.steps.iter().map(step_json).collect();
        m.insert("steps".into(), Value::Array(steps));
        Value::Object(m)
    }

    /// Destination ids this journey sends to, sorted and without repeats (so the API can
    /// refuse deleting a destination in use).
    pub fn destinations(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Send { destination, .. } => Some(destination.clone()),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The index of a step by id.
    pub(super) fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }
}

fn with_filter(mut v: Value, filter: &Option<Condition>) -> Value {
    if let Some(f) = filter {
        v["where"] = f.to_json();
    }
    v
}

fn step_json(step: &Step) -> Value {
    let mut v = json!({"id": step.id, "type": step.kind.type_name()});
    let put_next = |v: &mut Value, key: &str, next: &Next| {
        if let Some(id) = &next.given {
            v[key] = json!(id);
        }
    };
    match &step.kind {
        StepKind::Wait { duration, next } => {
            v["duration"] = duration.source.clone();
            put_next(&mut v, "next", next);
        }
        StepKind::WaitFor {
            event,
            filter,
            timeout,
            on_event,
            on_timeout,
        } => {
            v["event"] = json!(event);
            v = with_filter(v, filter);
            v["timeout"] = timeout.source.clone();
            put_next(&mut v, "on_event", on_event);
            put_next(&mut v, "on_timeout", on_timeout);
        }
        StepKind::Branch {
            cond,
            then,
            otherwise,
        } => {
            v["if"] = cond.to_json();
            put_next(&mut v, "then", then);
            put_next(&mut v, "else", otherwise);
        }
        StepKind::Send {
            destination,
            payload,
            next,
        } => {
            v["destination"] = json!(destination);
            if let Some(p) = payload {
                v["payload"] = p.clone();
            }
            put_next(&mut v, "next", next);
        }
        StepKind::SetTrait { name, value, next } => {
            v["trait"] = json!(name);
            v["value"] = value.clone();
            put_next(&mut v, "next", next);
        }
        StepKind::Exit => {}
    }
    v
}
