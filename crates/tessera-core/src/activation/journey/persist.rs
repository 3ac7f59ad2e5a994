//! Persistence as key/value rows, written by the server in the same transaction as the rest
//! of the state. Keys:
//!
//! - `i/<journey>/<profile>`: an instance (JSON object, see [`instance_json`]);
//! - `m/<journey>`: the journey's counters;
//! - `s/<journey>/<profile>`: the profile entered a `"reentry": "never"` journey (`true`);
//! - `f/<profile>`: the profile's recent journey sends, an array of instants.
//!
//! Rows are produced from the live state when taken, so a key changed many times since the
//! last take is written once, with its final value (or deleted). Timers are not stored: they
//! are the instances' due times.

use super::engine::Journeys;
use super::state::{Counters, Dirty, Instance};
use super::JourneyDef;
use super::JourneyError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

impl Journeys {
    /// Every state change since the last call, as key → `Some(JSON text)` or `None`
    /// (deleted), in key order.
    pub fn take_dirty(&mut self) -> Vec<(String, Option<String>)> {
        let dirty = std::mem::take(&mut self.shared.dirty);
        dirty
            .into_iter()
            .map(|d| {
                let (key, value) = match &d {
                    Dirty::Instance(id, p) => (
                        format!("i/{id}/{p}"),
                        self.index(id).and_then(|j| {
                            let inst = self.rts[j].instances.get(p)?;
                            Some(instance_json(&self.defs[j], inst))
                        }),
                    ),
                    Dirty::Metrics(id) => (
                        format!("m/{id}"),
                        self.index(id).map(|j| counters_json(&self.rts[j].counters)),
                    ),
                    Dirty::Seen(id, p) => (
                        format!("s/{id}/{p}"),
                        self.index(id)
                            .filter(|&j| self.rts[j].seen.contains(p))
                            .map(|_| Value::Bool(true)),
                    ),
                    Dirty::Freq(p) => (format!("f/{p}"), self.shared.freq.get(p).map(|h| json!(h))),
                };
                (key, value.map(|v| v.to_string()))
            })
            .collect()
    }

    /// Restores from every stored row, on an engine that has its definitions
    /// (`set_definitions`) and no state yet. Rows of unknown journeys are ignored; an instance
    /// whose step no longer exists (or no longer waits) ends as exited, as a definition change
    /// would have ended it, and that change is reported by the next `take_dirty`.
    pub fn restore(
        &mut self,
        rows: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), JourneyError> {
        let mut orphans = Vec::new();
        for (key, text) in rows {
            let bad = |what: &str| JourneyError::new(key.as_str(), what.to_string());
            let v: Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
            let (kind, rest) = key.split_once('/').ok_or_else(|| bad("unknown key"))?;
            match kind {
                "m" => {
                    if let Some(j) = self.index(rest) {
                        self.rts[j].counters =
                            counters_from(&v).ok_or_else(|| bad("bad counters"))?;
                    }
                }
                "f" => {
                    let p = rest.parse().map_err(|_| bad("bad profile key"))?;
                    let h: Option<Vec<i64>> = v
                        .as_array()
                        .and_then(|a| a.iter().map(Value::as_i64).collect());
                    self.shared
                        .freq
                        .insert(p, h.ok_or_else(|| bad("bad send history"))?);
                }
                "i" | "s" => {
                    let (id, p) = rest.rsplit_once('/').ok_or_else(|| bad("unknown key"))?;
                    let p: i64 = p.parse().map_err(|_| bad("bad profile key"))?;
                    let Some(j) = self.index(id) else { continue };
                    if kind == "s" {
                        self.rts[j].seen.insert(p);
                        continue;
                    }
                    match instance_from(&self.defs[j], &v).map_err(|m| bad(&m))? {
                        Some(inst) => {
                            self.rts[j].instances.insert(p, inst);
                        }
                        None => orphans.push((j, p)),
                    }
                }
                _ => return Err(bad("unknown key")),
            }
        }
        // After all rows, so that a counters row read later cannot overwrite the count.
        for (j, p) in orphans {
            let id = self.defs[j].id.clone();
            self.rts[j].counters.exited += 1;
            self.shared.dirty.insert(Dirty::Instance(id.clone(), p));
            self.shared.dirty.insert(Dirty::Metrics(id));
        }
        self.rebuild_timers();
        Ok(())
    }
}

/// `{"entry_profile", "start", "started_at", "held_out", "step": <id or null>, "due": <ms or
/// null>, "trigger", "events", "visits": {"<send step id>": n}}`.
fn instance_json(def: &JourneyDef, inst: &Instance) -> Value {
    json!({
        "entry_profile": inst.entry_profile,
        "start": inst.start,
        "started_at": inst.started_at,
        "held_out": inst.held_out,
        "step": inst.step.map(|i| def.steps[i].id.clone()),
        "due": inst.due,
        "trigger": inst.trigger,
        "events": inst.events,
        "visits": inst.visits,
    })
}

/// Reads an instance back; `Ok(None)` when its step is gone from the definition.
fn instance_from(def: &JourneyDef, v: &Value) -> Result<Option<Instance>, String> {
    let m = v.as_object().ok_or("expected an object")?;
    let int = |k: &str| {
        m.get(k)
            .and_then(Value::as_i64)
            .ok_or(format!("bad \"{k}\""))
    };
    let held_out = m
        .get("held_out")
        .and_then(Value::as_bool)
        .ok_or("bad \"held_out\"")?;
    let step = match m.get("step") {
        Some(Value::String(id)) => match def.step_index(id) {
            Some(i) if def.steps[i].kind.waits() => Some(i),
            _ => return Ok(None),
        },
        Some(Value::Null) if held_out => None,
        _ => return Err("bad \"step\"".into()),
    };
    let due = match m.get("due") {
        Some(Value::Null) => None,
        _ => Some(int("due")?),
    };
    let visits = match m.get("visits") {
        Some(Value::Object(vs)) => vs
            .iter()
            .map(|(k, n)| Some((k.clone(), u32::try_from(n.as_u64()?).ok()?)))
            .collect::<Option<BTreeMap<_, _>>>()
            .ok_or("bad \"visits\"")?,
        _ => return Err("bad \"visits\"".into()),
    };
    Ok(Some(Instance {
        entry_profile: int("entry_profile")?,
        start: int("start")?,
        started_at: int("started_at")?,
        held_out,
        step,
        due,
        trigger: m.get("trigger").cloned().unwrap_or(Value::Null),
        events: match m.get("events") {
            Some(Value::Array(es)) => es.clone(),
            _ => return Err("bad \"events\"".into()),
        },
        visits,
    }))
}

const COUNTER_KEYS: [&str; 7] = [
    "entered",
    "held_out",
    "held_out_converted",
    "converted",
    "exited",
    "sent",
    "capped",
];

fn counters_json(c: &Counters) -> Value {
    let values = [
        c.entered,
        c.held_out,
        c.held_out_converted,
        c.converted,
        c.exited,
        c.sent,
        c.capped,
    ];
    let m: Map<String, Value> = COUNTER_KEYS
        .iter()
        .zip(values)
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Value::Object(m)
}

fn counters_from(v: &Value) -> Option<Counters> {
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    Some(Counters {
        entered: n(COUNTER_KEYS[0])?,
        held_out: n(COUNTER_KEYS[1])?,
        held_out_converted: n(COUNTER_KEYS[2])?,
        converted: n(COUNTER_KEYS[3])?,
        exited: n(COUNTER_KEYS[4])?,
        sent: n(COUNTER_KEYS[5])?,
        capped: n(COUNTER_KEYS[6])?,
    })
}
