//! Reads a journey definition from JSON. Strict about shape: unknown fields are refused, so a
//! typo (`"timout"`) is reported instead of silently meaning "the default". Every error names
//! the JSON Pointer of the offending value.

use super::def::{FrequencyCap, Goal, JourneyDef, Next, Reentry, Step, StepKind, Target, Trigger};
use super::duration::Dur;
use super::graph::check_no_wait_free_cycle;
use super::JourneyError;
use crate::activation::condition::{pointer_token, Condition};
use hashbrown::HashMap;
use serde_json::{Map, Value};

/// More steps than this is a sign of a generated or runaway definition.
pub(super) const MAX_STEPS: usize = 100;
const MAX_NAME_CHARS: usize = 200;

type Object = Map<String, Value>;

impl JourneyDef {
    /// Parses and validates a journey definition. `id` is given by the caller (e.g. "jrn_...").
    pub fn parse(id: &str, json: &Value) -> Result<JourneyDef, JourneyError> {
        let m = object(json, "")?;
        only(
            m,
            "",
            &[
                "name",
                "trigger",
                "goal",
                "exit_on",
                "holdout_percent",
                "frequency_cap",
                "reentry",
                "max_trigger_age",
                "steps",
            ],
        )?;
        let name = string(required(m, "", "name")?, "/name")?;
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(JourneyError::new(
                "/name",
                format!("a name may have at most {MAX_NAME_CHARS} characters"),
            ));
        }
        let trigger = trigger(required(m, "", "trigger")?)?;
        let goal = match present(m, "goal") {
            None => None,
            Some(g) => Some(goal(g)?),
        };
        let exit_on = match present(m, "exit_on") {
            None => Vec::new(),
            Some(v) => {
                let items = v.as_array().ok_or_else(|| {
                    JourneyError::new("/exit_on", "expected an array of event names")
                })?;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| string(e, &format!("/exit_on/{i}")).map(str::to_string))
                    .collect::<Result<_, _>>()?
            }
        };
        let holdout_percent = match present(m, "holdout_percent") {
            None => 0,
            Some(v) => v.as_u64().filter(|&p| p <= 100).ok_or_else(|| {
                JourneyError::new("/holdout_percent", "expected an integer from 0 to 100")
            })? as u8,
        };
        let frequency_cap = match present(m, "frequency_cap") {
            None => None,
            Some(v) => Some(frequency_cap(v)?),
        };
        let reentry = match present(m, "reentry").map(|v| v.as_str()) {
            None | Some(Some("after_exit")) => Reentry::AfterExit,
            Some(Some("never")) => Reentry::Never,
            Some(_) => {
                return Err(JourneyError::new(
                    "/reentry",
                    "expected \"never\" or \"after_exit\"",
                ))
            }
        };
        let max_trigger_age = match present(m, "max_trigger_age") {
            None => Dur::default_text("24h"),
            Some(v) => Dur::parse(v, "/max_trigger_age")?,
        };
        let steps = steps(required(m, "", "steps")?)?;
        Ok(JourneyDef {
            id: id.to_string(),
            name: name.to_string(),
            trigger,
            goal,
            exit_on,
            holdout_percent,
            frequency_cap,
            reentry,
            max_trigger_age,
            steps,
        })
    }
}

fn trigger(v: &Value) -> Result<Trigger, JourneyError> {
    let m = object(v, "/trigger")?;
    if let Some(a) = m.get("audience") {
        only(m, "/trigger", &["audience"])?;
        let audience = string(a, "/trigger/audience")?.to_string();
        return Ok(Trigger::Audience { audience });
    }
    only(m, "/trigger", &["event", "where", "audience"])?;
    let event = string(required(m, "/trigger", "event")?, "/trigger/event")?.to_string();
    let filter = filter(m, "/trigger")?;
    Ok(Trigger::Event { event, filter })
}

fn goal(v: &Value) -> Result<Goal, JourneyError> {
    let m = object(v, "/goal")?;
    only(m, "/goal", &["event", "where", "within"])?;
    let event = string(required(m, "/goal", "event")?, "/goal/event")?.to_string();
    let within = match present(m, "within") {
        None => None,
        Some(w) => Some(Dur::parse(w, "/goal/within")?),
    };
    Ok(Goal {
        event,
        filter: filter(m, "/goal")?,
        within,
    })
}

fn frequency_cap(v: &Value) -> Result<FrequencyCap, JourneyError> {
    let m = object(v, "/frequency_cap")?;
    only(m, "/frequency_cap", &["max", "per"])?;
    let max = required(m, "/frequency_cap", "max")?
        .as_u64()
        .filter(|&n| (1..=10_000).contains(&n))
        .ok_or_else(|| {
            JourneyError::new("/frequency_cap/max", "expected an integer from 1 to 10000")
        })? as u32;
    let per = Dur::parse(required(m, "/frequency_cap", "per")?, "/frequency_cap/per")?;
    Ok(FrequencyCap { max, per })
}

fn steps(v: &Value) -> Result<Vec<Step>, JourneyError> {
    let items = v
        .as_array()
        .ok_or_else(|| JourneyError::new("/steps", "expected an array of steps"))?;
    if items.is_empty() {
        return Err(JourneyError::new(
            "/steps",
            "a journey needs at least one step",
        ));
    }
    if items.len() > MAX_STEPS {
        return Err(JourneyError::new(
            "/steps",
            format!("a journey may have at most {MAX_STEPS} steps"),
        ));
    }
    // Ids first, so that references to later steps resolve.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, s) in items.iter().enumerate() {
        let p = format!("/steps/{i}");
        let m = object(s, &p)?;
        let id = string(required(m, &p, "id")?, &format!("{p}/id"))?;
        if id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(JourneyError::new(
                format!("{p}/id"),
                "a step id is 1 to 64 letters, digits, '_' or '-'",
            ));
        }
        if let Some(first) = index.insert(id, i) {
            return Err(JourneyError::new(
                format!("{p}/id"),
                format!("the id \"{id}\" is already used by step {first}"),
            ));
        }
    }
    let steps = items
        .iter()
        .enumerate()
        .map(|(i, s)| step(s, i, items.len(), &index))
        .collect::<Result<Vec<_>, _>>()?;
    check_no_wait_free_cycle(&steps)?;
    Ok(steps)
}

fn step(
    v: &Value,
    i: usize,
    len: usize,
    index: &HashMap<&str, usize>,
) -> Result<Step, JourneyError> {
    let p = format!("/steps/{i}");
    let m = object(v, &p)?;
    let id = m["id"].as_str().unwrap_or_default().to_string();
    let following = if i + 1 < len {
        Target::Step(i + 1)
    } else {
        Target::End
    };
    // A reference to another step; absent means the following one.
    let next = |key: &str| -> Result<Next, JourneyError> {
        match present(m, key) {
            None => Ok(Next {
                given: None,
                target: following,
            }),
            Some(r) => {
                let rp = format!("{p}/{key}");
                let r = string(r, &rp)?;
                let &to = index
                    .get(r)
                    .ok_or_else(|| JourneyError::new(&rp, format!("no step has the id \"{r}\"")))?;
                Ok(Next {
                    given: Some(r.to_string()),
                    target: Target::Step(to),
                })
            }
        }
    };
    let kind_name = string(required(m, &p, "type")?, &format!("{p}/type"))?;
    let kind = match kind_name {
        "wait" => {
            only(m, &p, &["id", "type", "duration", "next"])?;
            StepKind::Wait {
                duration: Dur::parse(required(m, &p, "duration")?, &format!("{p}/duration"))?,
                next: next("next")?,
            }
        }
        "wait_for" => {
            only(
                m,
                &p,
                &[
                    "id",
                    "type",
                    "event",
                    "where",
                    "timeout",
                    "on_event",
                    "on_timeout",
                ],
            )?;
            StepKind::WaitFor {
                event: string(required(m, &p, "event")?, &format!("{p}/event"))?.to_string(),
                filter: filter(m, &p)?,
                timeout: Dur::parse(required(m, &p, "timeout")?, &format!("{p}/timeout"))?,
                on_event: next("on_event")?,
                on_timeout: next("on_timeout")?,
            }
        }
        "branch" => {
            only(m, &p, &["id", "type", "if", "then", "else"])?;
            let cond = condition(required(m, &p, "if")?, &format!("{p}/if"))?;
            required(m, &p, "then")?;
            required(m, &p, "else")?;
            StepKind::Branch {
                cond,
                then: next("then")?,
                otherwise: next("else")?,
            }
        }
        "send" => {
            only(m, &p, &["id", "type", "destination", "payload", "next"])?;
            StepKind::Send {
                destination: string(required(m, &p, "destination")?, &format!("{p}/destination"))?
                    .to_string(),
                payload: present(m, "payload").cloned(),
                next: next("next")?,
            }
        }
        "set_trait" => {
            only(m, &p, &["id", "type", "trait", "value", "next"])?;
            // `null` is a value here (it clears the trait), so only absence is an error.
            let value = m.get("value").cloned().ok_or_else(|| {
                JourneyError::new(format!("{p}/value"), "missing field \"value\"")
            })?;
            StepKind::SetTrait {
                name: string(required(m, &p, "trait")?, &format!("{p}/trait"))?.to_string(),
                value,
                next: next("next")?,
            }
        }
        "exit" => {
            only(m, &p, &["id", "type"])?;
            StepKind::Exit
        }
        other => {
            return Err(JourneyError::new(
                format!("{p}/type"),
                format!(
                    "unknown step type \"{other}\"; expected wait, wait_for, branch, send, \
                     set_trait or exit"
                ),
            ))
        }
    };
    Ok(Step { id, kind })
}

/// The optional `where` of an object at `p`.
fn filter(m: &Object, p: &str) -> Result<Option<Condition>, JourneyError> {
    match present(m, "where") {
        None => Ok(None),
        Some(w) => condition(w, &format!("{p}/where")).map(Some),
    }
}

/// The condition at `p`, in the language destinations use too; its error, whose pointer is
/// relative to the condition, becomes a journey error pointing into the definition.
fn condition(v: &Value, p: &str) -> Result<Condition, JourneyError> {
    Condition::parse(v).map_err(|e| {
        let e = e.within(p);
        JourneyError::new(e.pointer, e.message)
    })
}

/// Refuses keys outside `allowed`, naming the first one (in sorted order, so the message is
/// stable).
fn only(m: &Object, pointer: &str, allowed: &[&str]) -> Result<(), JourneyError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(JourneyError::new(
            format!("{pointer}/{}", pointer_token(k)),
            format!("unknown field \"{k}\"; expected {}", allowed.join(", ")),
        )),
    }
}

fn object<'a>(v: &'a Value, p: &str) -> Result<&'a Object, JourneyError> {
    v.as_object()
        .ok_or_else(|| JourneyError::new(p, "expected an object"))
}

/// A field that must be there (null counts as absent). The error names the missing field's
/// own pointer, which is where the author has to add it.
fn required<'a>(m: &'a Object, p: &str, key: &str) -> Result<&'a Value, JourneyError> {
    present(m, key).ok_or_else(|| {
        JourneyError::new(
            format!("{p}/{}", pointer_token(key)),
            format!("missing field \"{key}\""),
        )
    })
}

/// A field's value, with `null` meaning absent (what most JSON writers emit for "unset").
fn present<'a>(m: &'a Object, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn string<'a>(v: &'a Value, p: &str) -> Result<&'a str, JourneyError> {
    match v.as_str() {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(JourneyError::new(p, "may not be empty")),
        None => Err(JourneyError::new(p, "expected a string")),
    }
}
