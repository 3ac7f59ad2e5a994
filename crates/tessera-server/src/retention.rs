//! Retention: per workspace, events older than N days (by event time) are purged, and
//! optionally profiles inactive for M days with all their events. A purge deletes the events
//! from the log for good (as a deletion request does) and re-derives the workspace without
//! them, so profiles, traits, timelines and memberships no longer reflect them; audience
//! entries and exits from before the cutoff go too. It runs when the settings change and then
//! every hour.
//!
//! `GET/PUT /api/v1/privacy/retention` with `{"events_days": N | null,
//! "profiles_inactive_days": M | null}`; the answer also shows the last purge.

use crate::destinations_api::WsQuery;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::governance_api::{current, read_body, save, Doc};
use crate::privacy_requests::{caught_up, erase};
use crate::profiles_api::readable_state;
use crate::state::{now_millis, SharedState};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tessera_core::time::format_iso8601;

/// The settings as a versioned workspace document, like the tracking plan.
const RETENTION: Doc = Doc {
    kind: "retention",
    id: "retention",
    noun: "retention settings",
    key: "retention",
    canonical: |v| Ok(Retention::from_json(v)?.to_json()),
};
const DAY_MS: i64 = 24 * 3600 * 1000;
/// How often purges run.
const EVERY: Duration = Duration::from_secs(3600);

/// A workspace's retention settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub events_days: Option<u32>,
    pub profiles_inactive_days: Option<u32>,
}

impl Retention {
    fn from_json(v: &Value) -> Result<Retention, ApiError> {
        let days = |key: &str| -> Result<Option<u32>, ApiError> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(d) => d
                    .as_u64()
                    .filter(|d| (1..=36_500).contains(d))
                    .map(|d| Some(d as u32))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_field",
                            format!("`{key}` must be a number of days from 1 to 36500, or null"),
                        )
                    }),
            }
        };
        crate::extract::only_fields(v, &["events_days", "profiles_inactive_days"])?;
        Ok(Retention {
            events_days: days("events_days")?,
            profiles_inactive_days: days("profiles_inactive_days")?,
        })
    }

    fn to_json(self) -> Value {
        json!({"events_days": self.events_days, "profiles_inactive_days": self.profiles_inactive_days})
    }

    fn is_off(self) -> bool {
        self.events_days.is_none() && self.profiles_inactive_days.is_none()
    }
}

/// The last purge of each workspace.
#[derive(Default)]
pub struct Purges(Mutex<HashMap<String, Value>>);

/// A workspace's stored settings (off when none).
pub fn stored(st: &SharedState, ws: &str) -> Retention {
    current(st, ws, &RETENTION)
        .ok()
        .flatten()
        .and_then(|d| serde_json::from_str::<Value>(&d.definition).ok())
        .and_then(|v| Retention::from_json(&v).ok())
        .unwrap_or_default()
}

/// Purges what a workspace keeps no longer; answers what was removed.
pub fn purge(st: &SharedState, ws: &str, r: Retention) -> Result<Value, String> {
    if r.is_off() {
        return Ok(json!({"events_deleted": 0, "profiles_deleted": 0}));
    }
    let state = st.appliers.start(ws).map_err(|e| e.to_string())?;
    caught_up(st, &state)?;
    let now = now_millis();
    let mut positions = Vec::new();
    let events_cutoff = r.events_days.map(|d| now - d as i64 * DAY_MS);
    if let Some(cutoff) = events_cutoff {
        positions.extend(
            st.store
                .positions_before(ws, cutoff)
                .map_err(|e| e.to_string())?,
        );
    }
    let mut forget = Vec::new();
    if let Some(days) = r.profiles_inactive_days {
        let cutoff = now - days as i64 * DAY_MS;
        let inactive: Vec<i64> = {
            let engine = state.engine.read().expect("engine poisoned");
            engine
                .live_keys()
                .into_iter()
                .filter(|&k| engine.profile(k).is_some_and(|p| p.updated_at < cutoff))
                .collect()
        };
        let db = state.db();
        for key in inactive {
            positions.extend(
                db.timeline(key, None, usize::MAX)
                    .map_err(|e| e.to_string())?,
            );
            forget.extend(db.absorbed_into(key).map_err(|e| e.to_string())?);
            forget.push(key);
        }
    }
    positions.sort_unstable();
    positions.dedup();
    if positions.is_empty() && forget.is_empty() {
        return Ok(json!({"events_deleted": 0, "profiles_deleted": 0}));
    }
    let deleted = erase(st, ws, &positions, forget.clone())?;
    if let Some(cutoff) = events_cutoff {
        state
            .db()
            .purge_audience_history(cutoff)
            .map_err(|e| e.to_string())?;
    }
    tracing::info!(
        workspace = ws,
        events = deleted,
        profiles = forget.len(),
        "retention purge done"
    );
    Ok(json!({"events_deleted": deleted, "profiles_deleted": forget.len()}))
}

fn run_and_record(st: &SharedState, ws: &str, r: Retention) {
    let outcome = match purge(st, ws, r) {
        Ok(v) => json!({"at": format_iso8601(now_millis()), "status": "done", "result": v}),
        Err(e) => {
            tracing::error!(workspace = ws, error = %e, "retention purge failed");
            json!({"at": format_iso8601(now_millis()), "status": "failed", "error": e})
        }
    };
    st.purges
        .0
        .lock()
        .expect("purges poisoned")
        .insert(ws.to_string(), outcome);
}

/// Runs every workspace's purge now and then every hour, on its own thread.
pub fn start(st: SharedState) {
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || loop {
            for ws in st.store.list_workspaces().unwrap_or_default() {
                let r = stored(&st, &ws.id);
                if !r.is_off() {
                    run_and_record(&st, &ws.id, r);
                }
            }
            std::thread::sleep(EVERY);
        })
        .expect("the retention thread starts");
}

fn answer(st: &SharedState, ws: &str, r: Retention) -> Value {
    let mut v = r.to_json();
    v["last_purge"] = st
        .purges
        .0
        .lock()
        .expect("purges poisoned")
        .get(ws)
        .cloned()
        .unwrap_or(Value::Null);
    v
}

/// `GET /api/v1/privacy/retention`.
pub async fn get(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let r = stored(&st, &state.workspace);
    Ok(Json(answer(&st, &state.workspace, r)))
}

/// `PUT /api/v1/privacy/retention`: stores the settings and purges at once (in the
/// background; `last_purge` shows the outcome).
pub async fn put(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let mut body = read_body(&body)?;
    // An earlier answer sent back carries the last purge, which is not a setting.
    if let Value::Object(m) = &mut body {
        m.remove("last_purge");
    }
    let r = Retention::from_json(&body)?;
    let ws = state.workspace.clone();
    save(&st, &ws, &RETENTION, Some(r.to_json().to_string())).await?;
    let runner = st.clone();
    let purge_ws = ws.clone();
    tokio::task::spawn_blocking(move || run_and_record(&runner, &purge_ws, r));
    Ok(Json(answer(&st, &ws, r)))
}
