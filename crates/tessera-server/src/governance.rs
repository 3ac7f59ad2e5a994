//! Data governance at ingest: each message is checked against the workspace's tracking plan
//! (as its source's mode says) and its personal data handled as the PII policy says, after
//! normalisation and suppressions and before the log, so the log only ever holds what the
//! policy lets through. `tessera import` applies the policy through [`Rules`] too.
//!
//! Per workspace, the compiled plan and the effective policy (the stored one, or the defaults,
//! with the plan's `declared_pii` added) are cached here and dropped when the admin API changes
//! either. Both steps work on the JSON value normalisation built, before its text is written,
//! so they cost no parsing; a workspace without a plan and with a policy that keeps everything
//! costs one map lookup per request.
//!
//! Violations are counted per day in the store, in one group-committed write for all requests
//! that arrive while the previous one runs (a request is answered once its counts are written),
//! and the newest are kept in memory as samples for the debugger. Neither holds a value.

use crate::metrics::Metrics;
use crate::state::AppState;
use crate::suppression::Suppressions;
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tessera_core::privacy::pii::{self, Declared, PiiPolicy};
use tessera_core::privacy::plan::{Mode, PlanError, TrackingPlan, Violation};
use tessera_core::{Millis, NormalizedEvent};
use tessera_store::{Definition, Source, Store, StoreError, ViolationCount};

/// Kind and fixed id of the tracking plan in the `definitions` table.
pub const KIND_PLAN: &str = "tracking_plan";
pub const PLAN_ID: &str = "plan";
/// Kind and fixed id of the PII policy in the `definitions` table.
pub const KIND_POLICY: &str = "pii_policy";
pub const POLICY_ID: &str = "policy";

/// Violation samples kept per workspace for the debugger.
pub const RECENT: usize = 100;
/// Longest event name or path stored with a count: event names come from clients, and a
/// count's key should not be a way to store arbitrary text.
const MAX_LABEL: usize = 256;
const DAY_MS: Millis = 86_400_000;

/// What ingest applies to one workspace's messages.
pub struct Rules {
    pub plan: Option<TrackingPlan>,
    /// `None` when the effective policy keeps everything: nothing to scan.
    pub policy: Option<PiiPolicy>,
    /// The workspace's salt for hashed values (empty without a policy).
    salt: Vec<u8>,
}

impl Rules {
    /// A workspace's rules as stored: its plan, and its policy (or the defaults) with the plan's
    /// declared classes.
    pub fn load(
        store: &dyn Store,
        suppressions: &Suppressions,
        ws: &str,
    ) -> Result<Rules, StoreError> {
        let defs = store.definitions(ws)?;
        let find = |kind: &str, id: &str| defs.iter().find(|d| d.kind == kind && d.id == id);
        let plan = find(KIND_PLAN, PLAN_ID).and_then(stored_plan);
        let policy = find(KIND_POLICY, POLICY_ID).map_or_else(PiiPolicy::default, stored_policy);
        let policy = effective_policy(policy, plan.as_ref());
        let (policy, salt) = if policy.is_noop() {
            (None, Vec::new())
        } else {
            let salt = suppressions.salt(store, ws)?;
            (Some(policy), salt.into_bytes())
        };
        Ok(Rules { plan, policy, salt })
    }

    /// Applies the PII policy to a message (nothing when it keeps everything).
    pub fn protect(&self, message: &mut Value) -> Vec<pii::Finding> {
        match &self.policy {
            Some(policy) => pii::apply(message, policy, &self.salt),
            None => Vec::new(),
        }
    }
}

/// One recorded violation, as the debugger shows it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub event: String,
    pub path: String,
    pub rule: String,
    pub message: String,
    pub source_id: String,
    pub message_id: String,
    pub received_at: Millis,
    pub blocked: bool,
}

/// What [`Governance::screen`] did to a batch.
#[derive(Default)]
pub struct Screened {
    /// Messages removed because they break the plan (source mode `block`).
    pub blocked: usize,
    /// Violations of messages kept (mode `flag`): messageId, receivedAt.
    flagged: Vec<(String, Millis, Vec<Violation>)>,
    /// Violations of blocked messages: messageId, receivedAt.
    blocked_violations: Vec<(String, Millis, Vec<Violation>)>,
    /// The messageIds of the events kept, in order (only when some were flagged), to tell
    /// from the log's answer which flagged ones were stored and which were duplicates.
    appended: Vec<String>,
}

impl Screened {
    fn is_empty(&self) -> bool {
        self.flagged.is_empty() && self.blocked_violations.is_empty()
    }
}

type CountKey = (String, String, String, String, String, i64);

#[derive(Default)]
pub struct Governance {
    rules: RwLock<HashMap<String, Arc<Rules>>>,
    /// Bumped by every [`Governance::forget`], so a load that raced a change is not cached.
    generation: AtomicU64,
    recent: Mutex<HashMap<String, VecDeque<Sample>>>,
    /// Counts waiting for the next write, added up by key.
    pending: Mutex<HashMap<CountKey, u64>>,
    /// Held by the request writing the pending counts.
    flush_turn: tokio::sync::Mutex<()>,
    /// Serialises changes to plans and policies through the admin API.
    pub update: tokio::sync::Mutex<()>,
}

/// Reads a stored plan; one that no longer reads (the API lets none in) is logged and left out.
pub fn stored_plan(d: &Definition) -> Option<TrackingPlan> {
    let plan = serde_json::from_str::<Value>(&d.definition)
        .map_err(|e| e.to_string())
        .and_then(|v| TrackingPlan::from_json(&v).map_err(|e| e.to_string()));
    match plan {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(workspace = %d.workspace_id, version = d.version, error = %e, "stored tracking plan does not read; ingest ignores it");
            None
        }
    }
}

/// Reads a stored policy; one that no longer reads is logged and replaced by the defaults,
/// which protect more than keeping everything would.
pub fn stored_policy(d: &Definition) -> PiiPolicy {
    let policy = serde_json::from_str::<Value>(&d.definition)
        .map_err(|e| e.to_string())
        .and_then(|v| PiiPolicy::from_json(&v).map_err(|e| e.to_string()));
    policy.unwrap_or_else(|e| {
        tracing::error!(workspace = %d.workspace_id, version = d.version, error = %e, "stored PII policy does not read; ingest uses the defaults");
        PiiPolicy::default()
    })
}

/// The policy ingest applies: `policy` with the plan's declared classes for paths the policy
/// does not declare itself (the policy is the privacy owner's word, the plan the tracking
/// owner's).
pub fn effective_policy(mut policy: PiiPolicy, plan: Option<&TrackingPlan>) -> PiiPolicy {
    for (path, kind) in plan.map(TrackingPlan::declared_pii).unwrap_or_default() {
        if policy.declared(&path).is_none() {
            if let Some(d) = Declared::parse(&kind) {
                policy = policy.with_declared(path, d);
            }
        }
    }
    policy
}

/// Refuses a plan whose `declared_pii` the PII policy could not use: an unknown class, or a
/// path outside `properties`, `traits` and `context`.
pub fn check_declared(plan: &TrackingPlan) -> Result<(), PlanError> {
    let declared: Map<String, Value> = plan
        .declared_pii()
        .into_iter()
        .map(|(path, kind)| (path, Value::String(kind)))
        .collect();
    let mut doc = Map::new();
    doc.insert("declared".into(), Value::Object(declared));
    PiiPolicy::from_json(&Value::Object(doc))
        .map(|_| ())
        .map_err(|e| PlanError {
            pointer: e.pointer.replacen("/declared", "/declared_pii", 1),
            message: e.message,
        })
}

/// The unix day of a time in milliseconds.
pub fn day_of(ms: Millis) -> i64 {
    ms.div_euclid(DAY_MS)
}

fn label(s: &str) -> String {
    match s.char_indices().nth(MAX_LABEL) {
        Some((at, _)) => s[..at].to_string(),
        None => s.to_string(),
    }
}

impl Governance {
    /// The rules of a workspace, loaded on first use.
    pub fn rules(&self, st: &AppState, ws: &str) -> Result<Arc<Rules>, StoreError> {
        if let Some(r) = self.rules.read().expect("rules poisoned").get(ws) {
            return Ok(r.clone());
        }
        let generation = self.generation.load(Ordering::Acquire);
        let rules = Arc::new(Rules::load(st.store.as_ref(), &st.suppressions, ws)?);
        let mut all = self.rules.write().expect("rules poisoned");
        if self.generation.load(Ordering::Acquire) == generation {
            all.insert(ws.to_string(), rules.clone());
        }
        Ok(rules)
    }

    /// Drops a workspace's cached rules after its plan or policy changed (or it was deleted):
    /// the next message loads them again.
    pub fn forget(&self, ws: &str) {
        let mut all = self.rules.write().expect("rules poisoned");
        self.generation.fetch_add(1, Ordering::AcqRel);
        all.remove(ws);
    }

    /// Forgets everything held for a deleted workspace.
    pub fn forget_workspace(&self, ws: &str) {
        self.forget(ws);
        self.recent.lock().expect("recent poisoned").remove(ws);
    }

    /// Takes normalised messages (from `normalize_value`, bodies not written yet), checks them
    /// against the plan (unless the source's mode is `allow`), leaves out those a `block`
    /// source may not store, applies the PII policy to the others and writes their bodies.
    /// Working on the values normalisation already built saves parsing every body again.
    pub fn screen(
        &self,
        rules: &Rules,
        metrics: &Metrics,
        source: &Source,
        messages: Vec<(NormalizedEvent, Value)>,
    ) -> (Vec<NormalizedEvent>, Screened) {
        let mut out = Screened::default();
        let plan = rules
            .plan
            .as_ref()
            .filter(|_| source.tracking_plan_mode != Mode::Allow);
        let block = source.tracking_plan_mode == Mode::Block;
        let mut kept = Vec::with_capacity(messages.len());
        for (mut e, mut v) in messages {
            let violations = plan.map(|p| p.check(&v)).unwrap_or_default();
            if !violations.is_empty() {
                metrics.count_violations(block, violations.len() as u64);
                if block {
                    out.blocked += 1;
                    out.blocked_violations
                        .push((e.message_id, e.received_at, violations));
                    continue;
                }
                out.flagged
                    .push((e.message_id.clone(), e.received_at, violations));
            }
            metrics.count_pii(&rules.protect(&mut v));
            e.body = v.to_string();
            kept.push(e);
        }
        if out.blocked > 0 {
            metrics.reject("tracking_plan", out.blocked as u64);
        }
        if !out.flagged.is_empty() {
            out.appended = kept.iter().map(|e| e.message_id.clone()).collect();
        }
        (kept, out)
    }

    /// Records what [`Governance::screen`] found once the events it kept are in the log:
    /// `positions` are their positions (`None` for a duplicate, whose violations were counted
    /// when it was first stored). Counts are written before this returns; a failure to write
    /// them is logged, as the events are stored either way.
    pub async fn record(
        &self,
        store: &Arc<dyn Store>,
        source: &Source,
        screened: Screened,
        positions: &[Option<i64>],
    ) {
        if screened.is_empty() {
            return;
        }
        let ws = &source.workspace_id;
        // Whether each appended messageId was stored (a batch may repeat one: stored once).
        let mut new: HashMap<&str, bool> = HashMap::new();
        for (id, p) in screened.appended.iter().zip(positions) {
            *new.entry(id.as_str()).or_default() |= p.is_some();
        }
        let stored = screened
            .flagged
            .into_iter()
            .filter(|(id, ..)| new.remove(id.as_str()) == Some(true))
            .map(|(id, at, v)| (id, at, v, false));
        let blocked = screened
            .blocked_violations
            .into_iter()
            .map(|(id, at, v)| (id, at, v, true));
        let mut counts: HashMap<CountKey, u64> = HashMap::new();
        let mut samples = Vec::new();
        let (mut flagged_events, mut blocked_events) = (0usize, 0usize);
        for (message_id, received_at, violations, blocked) in stored.chain(blocked) {
            if blocked {
                blocked_events += 1;
            } else {
                flagged_events += 1;
            }
            for v in violations {
                let key = (
                    ws.clone(),
                    source.id.clone(),
                    label(&v.event),
                    label(&v.path),
                    v.rule.clone(),
                    day_of(received_at),
                );
                *counts.entry(key).or_default() += 1;
                // A request keeps at most as many samples as the debugger shows.
                if samples.len() == RECENT {
                    continue;
                }
                samples.push(Sample {
                    event: label(&v.event),
                    path: label(&v.path),
                    rule: v.rule,
                    message: v.message,
                    source_id: source.id.clone(),
                    message_id: message_id.clone(),
                    received_at,
                    blocked,
                });
            }
        }
        tracing::debug!(workspace = %ws, source = %source.id, flagged_events, blocked_events, "tracking plan violations");
        self.remember(ws, samples);
        self.persist(store, counts).await;
    }

    fn remember(&self, ws: &str, samples: Vec<Sample>) {
        let mut recent = self.recent.lock().expect("recent poisoned");
        let ring = recent.entry(ws.to_string()).or_default();
        for s in samples {
            if ring.len() == RECENT {
                ring.pop_front();
            }
            ring.push_back(s);
        }
    }

    /// The newest violation samples of a workspace, newest first.
    pub fn recent(&self, ws: &str) -> Vec<Sample> {
        let recent = self.recent.lock().expect("recent poisoned");
        recent
            .get(ws)
            .map(|r| r.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds `counts` to the pending ones and waits until they are written. Group commit: the
    /// request whose turn it is writes everything pending, what others added meanwhile
    /// included, so under a flood of violations the store sees one transaction per write's
    /// duration, not one per request.
    async fn persist(&self, store: &Arc<dyn Store>, counts: HashMap<CountKey, u64>) {
        {
            let mut pending = self.pending.lock().expect("pending poisoned");
            for (k, n) in counts {
                *pending.entry(k).or_default() += n;
            }
        }
        let _turn = self.flush_turn.lock().await;
        let batch: Vec<ViolationCount> =
            std::mem::take(&mut *self.pending.lock().expect("pending poisoned"))
                .into_iter()
                .map(
                    |((workspace_id, source_id, event, path, rule, day), count)| ViolationCount {
                        workspace_id,
                        source_id,
                        event,
                        path,
                        rule,
                        day,
                        count,
                    },
                )
                .collect();
        if batch.is_empty() {
            // An earlier turn wrote ours.
            return;
        }
        let rows = batch.len();
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.record_violations(&batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(rows, error = %e, "cannot record tracking plan violations")
            }
            Err(e) => {
                tracing::error!(rows, error = %e, "cannot record tracking plan violations")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tessera_core::privacy::pii::PiiClass;
    use tessera_core::MessageType;

    fn plan(v: Value) -> TrackingPlan {
        TrackingPlan::from_json(&v).unwrap()
    }

    fn source(mode: Mode) -> Source {
        Source {
            id: "src_1".into(),
            workspace_id: "w".into(),
            name: "Web".into(),
            write_key: "wk_1".into(),
            enabled: true,
            tracking_plan_mode: mode,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn track(id: &str, properties: Value) -> (NormalizedEvent, Value) {
        let message = json!({"type": "track", "messageId": id, "event": "Order",
                             "userId": "u", "properties": properties});
        let event = NormalizedEvent {
            message_id: id.into(),
            kind: MessageType::Track,
            event: Some("Order".into()),
            user_id: Some("u".into()),
            anonymous_id: None,
            timestamp: 5,
            received_at: 5,
            body: String::new(),
        };
        (event, message)
    }

    fn order_plan() -> TrackingPlan {
        plan(json!({"events": {"Order": {"schema": {
            "properties": {"total": {"type": "number"}}}}}}))
    }

    #[test]
    fn the_policy_declares_before_the_plan() {
        let p = plan(json!({"declared_pii": {
            "properties.a": "email", "properties.b": "national_id"}}));
        let policy = PiiPolicy::default().with_declared("properties.a", Declared::NotPii);
        let merged = effective_policy(policy, Some(&p));
        assert_eq!(merged.declared("properties.a"), Some(Declared::NotPii));
        assert_eq!(
            merged.declared("properties.b"),
            Some(Declared::Class(PiiClass::NationalId))
        );
    }

    #[test]
    fn declared_pii_the_policy_cannot_use_is_refused_with_its_pointer() {
        let e = check_declared(&plan(json!({"declared_pii": {"userId": "email"}}))).unwrap_err();
        assert_eq!(e.pointer, "/declared_pii/userId");
        let e =
            check_declared(&plan(json!({"declared_pii": {"properties.x": "size"}}))).unwrap_err();
        assert_eq!(e.pointer, "/declared_pii/properties.x");
        check_declared(&plan(json!({"declared_pii": {"properties.x": "none"}}))).unwrap();
    }

    #[test]
    fn block_removes_violating_messages_and_flag_keeps_them() {
        let g = Governance::default();
        let m = Metrics::default();
        let rules = Rules {
            plan: Some(order_plan()),
            policy: None,
            salt: Vec::new(),
        };
        let batch = || {
            vec![
                track("a", json!({"total": 1})),
                track("b", json!({"total": "x"})),
            ]
        };
        let (events, s) = g.screen(&rules, &m, &source(Mode::Block), batch());
        assert_eq!((s.blocked, events.len()), (1, 1));
        assert_eq!(events[0].message_id, "a");
        assert_eq!(m.rejected_by_reason().get("tracking_plan"), Some(&1));

        let (events, s) = g.screen(&rules, &m, &source(Mode::Flag), batch());
        assert_eq!((s.blocked, events.len()), (0, 2));
        assert_eq!(s.flagged.len(), 1);
        assert_eq!(s.flagged[0].0, "b");
        assert_eq!(s.appended, ["a", "b"]);

        let (events, s) = g.screen(&rules, &m, &source(Mode::Allow), batch());
        assert!(s.is_empty() && events.len() == 2, "allow checks nothing");
        assert!(
            events.iter().all(|e| e.body.starts_with('{')),
            "bodies are written"
        );
    }

    #[test]
    fn bodies_are_written_after_the_policy_applied() {
        let g = Governance::default();
        let m = Metrics::default();
        let rules = Rules {
            plan: None,
            policy: Some(PiiPolicy::default()),
            salt: b"salt".to_vec(),
        };
        let messages = vec![
            track("a", json!({"card": "4111 1111 1111 1111", "n": 1})),
            track("b", json!({"ip": "10.0.0.1"})),
        ];
        let untouched = messages[1].1.to_string();
        let (events, _) = g.screen(&rules, &m, &source(Mode::Block), messages);
        let a: Value = serde_json::from_str(&events[0].body).unwrap();
        assert_eq!(a["properties"], json!({"n": 1}));
        assert_eq!(events[1].body, untouched, "a kept IP changes nothing");
    }

    #[test]
    fn samples_are_bounded_and_newest_first() {
        let g = Governance::default();
        let samples = (0..RECENT + 5)
            .map(|i| Sample {
                event: "E".into(),
                path: String::new(),
                rule: "unplanned_event".into(),
                message: String::new(),
                source_id: "s".into(),
                message_id: format!("m{i}"),
                received_at: i as Millis,
                blocked: false,
            })
            .collect();
        g.remember("w", samples);
        let recent = g.recent("w");
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].message_id, format!("m{}", RECENT + 4));
        g.forget_workspace("w");
        assert!(g.recent("w").is_empty());
    }

    #[test]
    fn labels_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_LABEL + 10);
        assert_eq!(label(&long).chars().count(), MAX_LABEL);
        assert_eq!(label("short"), "short");
        assert_eq!(day_of(86_400_000 * 3 + 5), 3);
        assert_eq!(day_of(-1), -1);
    }
}
