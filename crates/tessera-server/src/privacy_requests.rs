//! Carrying out data-subject requests, one at a time per request, on a blocking thread:
//!
//! - **delete**: the person's identifiers are suppressed while it runs (events arriving
//!   meanwhile are dropped), the applier catches up, the events of the profile (and of every
//!   profile merged into it) are deleted from the log with their pages overwritten, and the
//!   workspace's state is re-derived from the log without them, leaving out their audience
//!   history, outbox records, journey state and queued deliveries. The old state file is
//!   removed, so nothing of the person stays in the database files.
//! - **suppress** / **suppress_with_delete**: the identifiers' salted hashes are stored, so
//!   future events carrying them are dropped at ingest; **unsuppress** lifts that.
//! - **export**: one JSON document with what is held about the person.
//!
//! The identifier is kept with the request only until it is finished, so a restart can carry
//! out what was pending.

use crate::applier::WorkspaceState;
use crate::state::{now_millis, SharedState};
use crate::suppression::identifier_hash;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::identity::profile_id;
use tessera_core::time::format_iso8601;
use tessera_store::PrivacyRequest;

/// How long a request waits for the applier to apply what was accepted before it.
const CATCH_UP: Duration = Duration::from_secs(120);

/// Carries out a request and records its outcome.
pub fn run(st: &SharedState, mut req: PrivacyRequest) {
    req.status = "running".into();
    req.updated_at = now_millis();
    if let Err(e) = st.store.save_privacy_request(&req) {
        tracing::error!(request = %req.id, error = %e, "privacy request could not start");
        return;
    }
    let started = Instant::now();
    let outcome = carry_out(st, &req);
    req.status = if outcome.is_ok() { "done" } else { "failed" }.into();
    req.result = Some(
        match outcome {
            Ok(v) => v,
            Err(e) => json!({"error": e}),
        }
        .to_string(),
    );
    req.identifier = None;
    req.updated_at = now_millis();
    tracing::info!(request = %req.id, kind = %req.kind, status = %req.status, took_ms = started.elapsed().as_millis() as u64, "privacy request finished");
    if let Err(e) = st.store.save_privacy_request(&req) {
        tracing::error!(request = %req.id, error = %e, "privacy request outcome not stored");
    }
}

fn carry_out(st: &SharedState, req: &PrivacyRequest) -> Result<Value, String> {
    let ws = &req.workspace_id;
    let identifier = req
        .identifier
        .as_deref()
        .ok_or("the request's identifier is no longer held")?;
    let (kind, value) = identifier
        .split_once(':')
        .ok_or("the identifier must be type:value")?;
    let state = st.appliers.start(ws).map_err(|e| e.to_string())?;
    match req.kind.as_str() {
        "export" => {
            caught_up(st, &state)?;
            export(st, &state, kind, value)
        }
        "delete" => delete(st, &state, req, kind, value, false),
        "suppress_with_delete" => delete(st, &state, req, kind, value, true),
        "suppress" => {
            let hashes = person_hashes(st, &state, kind, value)?;
            st.store
                .add_suppressions(ws, &req.id, &hashes, now_millis())
                .map_err(|e| e.to_string())?;
            st.suppressions
                .reload(st.store.as_ref(), ws)
                .map_err(|e| e.to_string())?;
            Ok(json!({"identifiers_suppressed": hashes.len()}))
        }
        "unsuppress" => {
            let hashes = vec![given_hash(st, &state, kind, value)?];
            let n = st
                .store
                .remove_suppressions(ws, &hashes)
                .map_err(|e| e.to_string())?;
            st.suppressions
                .reload(st.store.as_ref(), ws)
                .map_err(|e| e.to_string())?;
            Ok(json!({"identifiers_unsuppressed": n}))
        }
        other => Err(format!("unknown request type {other}")),
    }
}

/// The salted hash of the identifier as given (normalised as the workspace's rules say).
fn given_hash(
    st: &SharedState,
    state: &WorkspaceState,
    kind: &str,
    value: &str,
) -> Result<String, String> {
    let normalized = {
        let engine = state.engine.read().expect("engine poisoned");
        engine
            .rules()
            .normalize(kind, value)
            .ok_or("the identifier's value is blocked or empty under the identity rules")?
    };
    let salt = st
        .suppressions
        .salt(st.store.as_ref(), &state.workspace)
        .map_err(|e| e.to_string())?;
    Ok(identifier_hash(&salt, kind, &normalized))
}

/// Hashes of every identifier of the person's profile, and of the one given.
fn person_hashes(
    st: &SharedState,
    state: &WorkspaceState,
    kind: &str,
    value: &str,
) -> Result<Vec<String>, String> {
    let salt = st
        .suppressions
        .salt(st.store.as_ref(), &state.workspace)
        .map_err(|e| e.to_string())?;
    let mut out = vec![given_hash(st, state, kind, value)?];
    let engine = state.engine.read().expect("engine poisoned");
    if let Some(p) = engine
        .profile_by_identifier(kind, value)
        .and_then(|k| engine.profile(k))
    {
        for i in p.identifiers {
            out.push(identifier_hash(&salt, &i.kind, &i.value));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Waits until what the log holds now is applied and in the state file.
pub(crate) fn caught_up(st: &SharedState, state: &WorkspaceState) -> Result<(), String> {
    let head = st.store.last_position().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let applied = state.applied();
        let scanned = state.scanned.load(std::sync::atomic::Ordering::SeqCst);
        if applied.max(scanned) >= head && state.persisted(applied) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the workspace's applier did not catch up; try again".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn delete(
    st: &SharedState,
    state: &Arc<WorkspaceState>,
    req: &PrivacyRequest,
    kind: &str,
    value: &str,
    keep_suppressed: bool,
) -> Result<Value, String> {
    let ws = &state.workspace;
    let store = st.store.as_ref();
    let hashes = person_hashes(st, state, kind, value)?;
    // From here on, events of the person are dropped at ingest: none can slip in between
    // finding the person's events and re-deriving the state without them.
    st.suppressions
        .hold(store, ws, &hashes)
        .map_err(|e| e.to_string())?;
    if keep_suppressed {
        store
            .add_suppressions(ws, &req.id, &hashes, now_millis())
            .map_err(|e| e.to_string())?;
        st.suppressions
            .reload(store, ws)
            .map_err(|e| e.to_string())?;
    }
    let outcome = (|| {
        caught_up(st, state)?;
        let live = {
            let engine = state.engine.read().expect("engine poisoned");
            engine.profile_by_identifier(kind, value)
        };
        let Some(live) = live else {
            return Ok(json!({"profiles_deleted": 0, "events_deleted": 0}));
        };
        let identifiers: Vec<Value> = {
            let engine = state.engine.read().expect("engine poisoned");
            engine
                .profile(live)
                .map(|p| p.identifiers)
                .unwrap_or_default()
                .into_iter()
                .map(|i| json!({"type": i.kind, "value": i.value}))
                .collect()
        };
        let db = state.db();
        let mut keys = vec![live];
        keys.extend(db.absorbed_into(live).map_err(|e| e.to_string())?);
        let positions = db
            .timeline(live, None, usize::MAX)
            .map_err(|e| e.to_string())?;
        let events = erase(st, ws, &positions, keys.clone())?;
        let notices = notify_destinations(st, state, req, identifiers);
        Ok(
            json!({"profiles_deleted": keys.len(), "events_deleted": events,
                  "identifiers": hashes.len(), "notifications": notices}),
        )
    })();
    st.suppressions
        .release(store, ws, &hashes)
        .map_err(|e| e.to_string())?;
    outcome
}

/// Deletes events from the log for good and re-derives the workspace without them and
/// without anything of the profiles in `forget`; answers how many events were deleted. Used
/// by deletion requests and retention purges.
pub(crate) fn erase(
    st: &SharedState,
    ws: &str,
    positions: &[i64],
    forget: Vec<i64>,
) -> Result<usize, String> {
    let deleted = st
        .store
        .delete_events(ws, positions)
        .map_err(|e| e.to_string())?;
    let rx = st.appliers.forget(ws, forget).map_err(|e| e.to_string())?;
    rx.recv().map_err(|_| "the applier stopped".to_string())??;
    Ok(deleted)
}

/// Tells destinations with a deletion webhook whom to delete; answers what each said.
fn notify_destinations(
    st: &SharedState,
    state: &WorkspaceState,
    req: &PrivacyRequest,
    identifiers: Vec<Value>,
) -> Vec<Value> {
    let dests: Vec<_> = {
        let act = state.activation.read().expect("activation poisoned");
        act.router
            .destinations()
            .iter()
            .filter(|d| d.deletion_webhook)
            .cloned()
            .collect()
    };
    let body = json!({
        "type": "delete",
        "request_id": req.id,
        "identifiers": identifiers,
        "timestamp": format_iso8601(now_millis()),
    })
    .to_string();
    dests
        .iter()
        .map(|d| {
            let key = format!("{}:delete:{}", d.id, req.id);
            match st.appliers.delivery.notify_deletion(d, &key, &body) {
                Ok(status) => json!({"destination": d.id, "status": status}),
                Err(e) => json!({"destination": d.id, "error": e}),
            }
        })
        .collect()
}

/// Everything held about the person: profile, identifiers, traits and their history, events,
/// audiences, deliveries, and the consent their events declared.
fn export(
    st: &SharedState,
    state: &WorkspaceState,
    kind: &str,
    value: &str,
) -> Result<Value, String> {
    let (live, view) = {
        let engine = state.engine.read().expect("engine poisoned");
        match engine.profile_by_identifier(kind, value) {
            Some(k) => (k, engine.profile(k)),
            None => return Ok(json!({"found": false})),
        }
    };
    let Some(view) = view else {
        return Ok(json!({"found": false}));
    };
    let err = |e: tessera_store::StoreError| e.to_string();
    let db = state.db();
    let positions = db.timeline(live, None, usize::MAX).map_err(err)?;
    let mut events: Vec<Value> = st
        .store
        .events_at(&state.workspace, &positions)
        .map_err(err)?
        .into_iter()
        .filter_map(|e| serde_json::from_str(&e.body).ok())
        .collect();
    events.reverse();
    let consent = events
        .iter()
        .rev()
        .find_map(|e| e.pointer("/context/consent/categoryPreferences").cloned())
        .unwrap_or(json!({}));
    let traits: Map<String, Value> = view
        .traits
        .iter()
        .map(|t| {
            let v = serde_json::from_str(&t.value).unwrap_or(Value::String(t.value.clone()));
            (t.key.clone(), v)
        })
        .collect();
    let history: Vec<Value> = db
        .history(live, None, usize::MAX)
        .map_err(err)?
        .into_iter()
        .map(|h| {
            json!({"trait": h.key, "value": serde_json::from_str::<Value>(&h.value).unwrap_or(Value::Null),
                   "source": h.source, "at": format_iso8601(h.ts)})
        })
        .collect();
    let audiences: Vec<Value> = db
        .memberships_of(live)
        .map_err(err)?
        .into_iter()
        .map(|(a, at)| json!({"audience_id": a, "entered_at": format_iso8601(at)}))
        .collect();
    let deliveries: Vec<Value> = db
        .records_of_profile(live)
        .map_err(err)?
        .into_iter()
        .map(|r| {
            json!({"destination": r.destination, "kind": r.kind.as_str(), "status": r.status,
                   "created_at": format_iso8601(r.at),
                   "payload": serde_json::from_str::<Value>(&r.payload).unwrap_or(Value::Null)})
        })
        .collect();
    Ok(json!({
        "found": true,
        "profile_id": profile_id(view.key),
        "created_at": format_iso8601(view.created_at),
        "updated_at": format_iso8601(view.updated_at),
        "identifiers": view.identifiers.iter().map(|i| json!({
            "type": i.kind, "value": i.value,
            "first_seen": format_iso8601(i.first_seen), "last_seen": format_iso8601(i.last_seen)
        })).collect::<Vec<_>>(),
        "traits": traits,
        "trait_history": history,
        "consent": consent,
        "audiences": audiences,
        "events": events,
        "deliveries": deliveries,
    }))
}
