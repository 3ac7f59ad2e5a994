//! Admin API for journeys: create, list, read, update (a new version), delete, version
//! history, and metrics (entered, held out, in each step, converted, exited, sent, capped).
//!
//! Stored like destinations (every version in the store's `definitions` table); the applier
//! takes a change on between two events and answers once it is in use.

use crate::activation_defs::{journey_of, KIND_JOURNEY};
use crate::applier::WorkspaceState;
use crate::destinations_api::{read_json, store_and_apply, WsQuery};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::profiles_api::readable_state;
use crate::state::{now_millis, SharedState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use tessera_core::activation::journey::{JourneyDef, JourneyMetrics};
use tessera_core::time::format_iso8601;
use tessera_store::Definition;

fn metrics_json(m: &JourneyMetrics) -> Value {
    let steps: serde_json::Map<String, Value> = m
        .in_step
        .iter()
        .map(|(id, n)| (id.clone(), json!(n)))
        .collect();
    json!({
        "entered": m.entered,
        "held_out": m.held_out,
        "held_out_converted": m.held_out_converted,
        "converted": m.converted,
        "exited": m.exited,
        "active": m.active,
        "held_out_active": m.held_out_active,
        "sent": m.sent,
        "capped": m.capped,
        "in_step": steps,
    })
}

fn journey_json(state: &WorkspaceState, d: &Definition) -> Value {
    let mut v = serde_json::from_str::<Value>(&d.definition).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("id".into(), json!(d.id));
        map.insert("version".into(), json!(d.version));
        map.insert("created_at".into(), json!(format_iso8601(d.created_at)));
        map.insert("updated_at".into(), json!(format_iso8601(d.updated_at)));
        if d.deleted {
            map.insert("deleted".into(), json!(true));
        } else {
            let act = state.activation.read().expect("activation poisoned");
            if let Some(m) = act.journeys.metrics(&d.id) {
                map.insert("metrics".into(), metrics_json(&m));
            }
        }
    }
    v
}

fn current(st: &SharedState, ws: &str, id: &str) -> Result<Definition, ApiError> {
    st.store
        .definitions(ws)?
        .into_iter()
        .find(|d| d.id == id && d.kind == KIND_JOURNEY && journey_of(d).is_some())
        .ok_or_else(|| ApiError::not_found(&format!("journey {id}")))
}

/// `POST /api/v1/journeys`.
pub async fn create(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let id = crate::ids::random_id("jrn_", 16);
    let def = JourneyDef::parse(&id, &read_json(&body)?)?;
    let _serial = st.appliers.definitions_update.lock().await;
    let now = now_millis();
    let d = Definition {
        workspace_id: state.workspace.clone(),
        id,
        kind: KIND_JOURNEY.to_string(),
        name: def.name.clone(),
        version: 1,
        definition: def.to_json().to_string(),
        created_at: now,
        updated_at: now,
        deleted: false,
    };
    store_and_apply(&st, &state, d.clone()).await?;
    Ok((StatusCode::CREATED, Json(journey_json(&state, &d))))
}

/// `GET /api/v1/journeys`.
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
        .filter(|d| d.kind == KIND_JOURNEY)
        .map(|d| journey_json(&state, d))
        .collect();
    Ok(Json(json!({ "journeys": items })))
}

/// `GET /api/v1/journeys/{id}`.
pub async fn get(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    Ok(Json(journey_json(
        &state,
        &current(&st, &state.workspace, &id)?,
    )))
}

/// `GET /api/v1/journeys/{id}/metrics`.
pub async fn metrics(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    current(&st, &state.workspace, &id)?;
    let act = state.activation.read().expect("activation poisoned");
    match act.journeys.metrics(&id) {
        Some(m) => Ok(Json(metrics_json(&m))),
        None => Err(ApiError::not_found(&format!("journey {id}"))),
    }
}

/// `GET /api/v1/journeys/{id}/versions`.
pub async fn versions(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let versions = st.store.definition_versions(&state.workspace, &id)?;
    if !versions.iter().any(|d| d.kind == KIND_JOURNEY) {
        return Err(ApiError::not_found(&format!("journey {id}")));
    }
    let items: Vec<Value> = versions.iter().map(|d| journey_json(&state, d)).collect();
    Ok(Json(json!({ "versions": items })))
}

/// `PUT /api/v1/journeys/{id}`: replaces the definition. Profiles in a step that still exists
/// stay there; others leave the journey.
pub async fn update(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let def = JourneyDef::parse(&id, &read_json(&body)?)?;
    let _serial = st.appliers.definitions_update.lock().await;
    let old = current(&st, &state.workspace, &id)?;
    let d = Definition {
        name: def.name.clone(),
        definition: def.to_json().to_string(),
        version: old.version + 1,
        updated_at: now_millis(),
        ..old
    };
    store_and_apply(&st, &state, d.clone()).await?;
    Ok(Json(journey_json(&state, &d)))
}

/// `DELETE /api/v1/journeys/{id}`: profiles in it leave it; nothing more is sent.
pub async fn delete(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<StatusCode, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let _serial = st.appliers.definitions_update.lock().await;
    let old = current(&st, &state.workspace, &id)?;
    let d = Definition {
        version: old.version + 1,
        updated_at: now_millis(),
        deleted: true,
        ..old
    };
    store_and_apply(&st, &state, d).await?;
    Ok(StatusCode::NO_CONTENT)
}
