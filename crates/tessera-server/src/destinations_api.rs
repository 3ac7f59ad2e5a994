//! Admin API for destinations: create (answering the signing secret), list, read (with
//! delivery health), update (a new version), pause and resume, rotate the secret, delete.
//!
//! Destinations are stored with every version beside audiences; a change is handed to the
//! workspace's applier, which takes it on between two events (backfilling newly synced
//! audiences) and restarts the destination's delivery lanes. A write answers once that is
//! done.

use crate::activation_defs::{config_of, destination_of, destination_text, KIND_DESTINATION};
use crate::applier::WorkspaceState;
use crate::audiences_api::{applied, applier_unavailable, with_change};
use crate::delivery::Health;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::profiles_api::readable_state;
use crate::state::{now_millis, SharedState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tessera_core::activation::destination::{ConfigError, Destination};
use tessera_core::activation::signature::new_secret;
use tessera_core::time::format_iso8601;
use tessera_store::Definition;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    pub workspace: Option<String>,
}

/// Checks the workspace's destinations and journeys with `change` applied (journeys send only
/// to existing destinations; destinations read only existing audiences), stores the new
/// version and waits until the applier uses it.
pub(crate) async fn store_and_apply(
    st: &SharedState,
    state: &Arc<WorkspaceState>,
    change: Definition,
) -> Result<(), ApiError> {
    let ws = state.workspace.clone();
    let defs = with_change(st, &ws, &change)?;
    let config = config_of(&defs);
    let audiences: Vec<String> = {
        let seg = state.segments.read().expect("segments poisoned");
        seg.registry()
            .audiences
            .iter()
            .map(|a| a.id.clone())
            .collect()
    };
    for d in &config.destinations {
        if let Some(a) = d
            .audiences_used()
            .into_iter()
            .find(|a| !audiences.contains(a))
        {
            return Err(ApiError::bad_request(
                "unknown_audience",
                format!(
                    "destination \"{}\" names audience {a}, which does not exist",
                    d.name
                ),
            ));
        }
    }
    for j in &config.journeys {
        for dest in j.destinations() {
            if !config.destinations.iter().any(|d| d.id == dest) {
                let (status, code) = match change.kind.as_str() {
                    KIND_DESTINATION => (StatusCode::CONFLICT, "in_use"),
                    _ => (StatusCode::BAD_REQUEST, "unknown_destination"),
                };
                return Err(ApiError::new(
                    status,
                    code,
                    format!(
                        "journey \"{}\" sends to destination {dest}, which would not exist",
                        j.name
                    ),
                ));
            }
        }
        let trigger = j.to_json()["trigger"]["audience"]
            .as_str()
            .map(str::to_string);
        if let Some(a) = trigger.filter(|a| !audiences.contains(a)) {
            return Err(ApiError::bad_request(
                "unknown_audience",
                format!(
                    "journey \"{}\" names audience {a}, which does not exist",
                    j.name
                ),
            ));
        }
    }
    st.store.save_definition(&change)?;
    let rx = st
        .appliers
        .set_activation(&ws, config)
        .map_err(applier_unavailable)?;
    applied(rx).await
}

/// A JSON object body; a `workspace` field in it names the workspace, as for other admin
/// writes, and is not part of the settings.
pub(crate) fn read_json(body: &[u8]) -> Result<Value, ApiError> {
    crate::extract::json_object(body, &["workspace"])
}

fn current(st: &SharedState, ws: &str, id: &str) -> Result<(Definition, Destination), ApiError> {
    st.store
        .definitions(ws)?
        .into_iter()
        .find(|d| d.id == id && d.kind == KIND_DESTINATION)
        .and_then(|d| destination_of(&d).map(|dest| (d, dest)))
        .ok_or_else(|| ApiError::not_found(&format!("destination {id}")))
}

/// A destination as answered: its settings, id, secret, version and delivery health.
fn dest_json(
    state: &WorkspaceState,
    st: &SharedState,
    d: &Definition,
    dest: &Destination,
) -> Value {
    let mut v = dest.to_json();
    v["id"] = json!(d.id);
    v["secret"] = json!(dest.secret);
    v["version"] = json!(d.version);
    v["created_at"] = json!(format_iso8601(d.created_at));
    v["updated_at"] = json!(format_iso8601(d.updated_at));
    let counts = state.db().outbox_counts(&d.id).unwrap_or_default();
    let live = st
        .appliers
        .delivery
        .health(&state.workspace, &d.id)
        .unwrap_or_default();
    let skipped: u64 = {
        let act = state.activation.read().expect("activation poisoned");
        act.skipped
            .iter()
            .filter(|((dest, _), _)| *dest == d.id)
            .map(|(_, n)| n)
            .sum()
    };
    let iso = |t: Option<i64>| t.map(format_iso8601);
    v["health"] = json!({
        "status": status(dest, &live, counts.dead),
        "pending": counts.pending,
        "delivered": counts.delivered,
        "dead_letters": counts.dead,
        "queued_in_memory": live.queued,
        "skipped_without_consent": skipped,
        "skipped_revoked": counts.skipped.max(live.skipped_revoked),
        "failed_attempts": live.failed_attempts,
        "last_success_at": iso(live.last_success_at),
        "last_error": live.last_error,
        "last_error_at": iso(live.last_error_at),
        "delay_ms": {"p50": live.delay_p50_ms, "p99": live.delay_p99_ms},
        "latency_ms": {"p50": live.latency_p50_ms, "p99": live.latency_p99_ms},
    });
    v
}

/// `paused`; `failing` while records wait to be retried after the last request failed;
/// `dead_letters` when there are some; else `ok`.
fn status(dest: &Destination, live: &Health, dead: u64) -> &'static str {
    let failing = live.queued > 0 && live.last_error_at > live.last_success_at;
    match (dest.paused, failing, dead) {
        (true, _, _) => "paused",
        (_, true, _) => "failing",
        (_, _, d) if d > 0 => "dead_letters",
        _ => "ok",
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    new_secret(bytes)
}

/// Parses settings, checking the CA certificates with the TLS stack.
fn parse_destination(id: &str, secret: &str, config: &Value) -> Result<Destination, ApiError> {
    let dest = Destination::parse(id, secret, config)?;
    if let Some(pem) = &dest.ca_certificate {
        crate::delivery::client_config(Some(pem))
            .map_err(|e| ApiError::from(ConfigError::new("/config/ca_certificate", e)))?;
    }
    Ok(dest)
}

/// `POST /api/v1/destinations`.
pub async fn create(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let config = read_json(&body)?;
    let id = crate::ids::random_id("dst_", 16);
    let secret = random_secret();
    let dest = parse_destination(&id, &secret, &config)?;
    let _serial = st.appliers.definitions_update.lock().await;
    let now = now_millis();
    let d = Definition {
        workspace_id: state.workspace.clone(),
        id,
        kind: KIND_DESTINATION.to_string(),
        name: dest.name.clone(),
        version: 1,
        definition: destination_text(&secret, &dest.to_json()),
        created_at: now,
        updated_at: now,
        deleted: false,
    };
    store_and_apply(&st, &state, d.clone()).await?;
    Ok((StatusCode::CREATED, Json(dest_json(&state, &st, &d, &dest))))
}

/// `GET /api/v1/destinations`.
pub async fn list(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let items: Vec<Value> = st
        .store
        .definitions(&state.workspace)?
        .iter()
        .filter(|d| d.kind == KIND_DESTINATION)
        .filter_map(|d| destination_of(d).map(|dest| dest_json(&state, &st, d, &dest)))
        .collect();
    Ok(Json(json!({ "destinations": items })))
}

/// `GET /api/v1/destinations/{id}`.
pub async fn get(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let (d, dest) = current(&st, &state.workspace, &id)?;
    Ok(Json(dest_json(&state, &st, &d, &dest)))
}

/// Stores a new version of a destination made by `change` from the current one.
async fn new_version(
    st: &SharedState,
    state: &Arc<WorkspaceState>,
    id: &str,
    change: impl FnOnce(&Destination) -> Result<(String, Value), ApiError>,
) -> Result<Json<Value>, ApiError> {
    let _serial = st.appliers.definitions_update.lock().await;
    let (old, dest) = current(st, &state.workspace, id)?;
    let (secret, config) = change(&dest)?;
    let next = parse_destination(id, &secret, &config)?;
    let d = Definition {
        name: next.name.clone(),
        definition: destination_text(&secret, &next.to_json()),
        version: old.version + 1,
        updated_at: now_millis(),
        ..old
    };
    store_and_apply(st, state, d.clone()).await?;
    Ok(Json(dest_json(state, st, &d, &next)))
}

/// `PUT /api/v1/destinations/{id}`: replaces the settings (the secret stays).
pub async fn update(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let config = read_json(&body)?;
    new_version(&st, &state, &id, |d| Ok((d.secret.clone(), config))).await
}

/// `POST /api/v1/destinations/{id}/{action}`: `pause`, `resume` or `rotate-secret`.
pub async fn action(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath((id, action)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    new_version(&st, &state, &id, |d| {
        let mut config = d.to_json();
        let secret = match action.as_str() {
            "pause" | "resume" => {
                config["paused"] = json!(action == "pause");
                d.secret.clone()
            }
            "rotate-secret" => random_secret(),
            other => {
                return Err(ApiError::not_found(&format!(
                    "action `{other}` (expected pause, resume or rotate-secret)"
                )))
            }
        };
        Ok((secret, config))
    })
    .await
}

/// `DELETE /api/v1/destinations/{id}`: refused while a journey sends to it. Records not yet
/// delivered stay in the outbox (listed by nobody) and are not sent.
pub async fn delete(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<StatusCode, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let _serial = st.appliers.definitions_update.lock().await;
    let (old, _) = current(&st, &state.workspace, &id)?;
    let d = Definition {
        version: old.version + 1,
        updated_at: now_millis(),
        deleted: true,
        ..old
    };
    store_and_apply(&st, &state, d).await?;
    Ok(StatusCode::NO_CONTENT)
}
