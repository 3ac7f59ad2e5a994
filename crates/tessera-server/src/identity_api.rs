//! Admin API for a workspace's identity rules: `GET`/`PUT /api/v1/identity` and
//! `POST /api/v1/identity/rebuild`. New rules apply to events from then on; a rebuild
//! re-derives every profile from the log under the current rules.

use crate::auth::{authenticate, resolve_workspace, SCOPE_READ};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::{now_millis, SharedState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Instant;
use tessera_core::identity::IdentityRules;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RulesQuery {
    workspace: Option<String>,
    rebuild: Option<bool>,
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "applier unavailable");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "applier_unavailable",
        "the workspace's applier is not running; retry shortly",
    )
}

/// Asks the workspace's applier to rebuild and waits until the new state is in place.
pub async fn rebuild_and_wait(
    st: &SharedState,
    workspace: &str,
    rules: IdentityRules,
) -> Result<u128, ApiError> {
    let started = Instant::now();
    let rx = st.appliers.rebuild(workspace, rules).map_err(unavailable)?;
    let outcome = tokio::task::spawn_blocking(move || rx.recv())
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
    outcome.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "rebuild_failed",
            format!("rebuilding profiles failed: {e}"),
        )
    })?;
    Ok(started.elapsed().as_millis())
}

/// `GET /api/v1/identity`.
pub async fn get_rules(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<RulesQuery>,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&st, &headers)?;
    if !caller.has_scope(SCOPE_READ) {
        return Err(ApiError::forbidden(
            "this token may not read identity rules",
        ));
    }
    let ws = resolve_workspace(&st, &caller, &headers, q.workspace.as_deref())?;
    let rules = st.appliers.rules_for(&ws.id).map_err(unavailable)?;
    let mut body = rules.to_json();
    body["workspace"] = json!(ws.id);
    Ok(Json(body))
}

/// `PUT /api/v1/identity[?rebuild=true]`: fields not given keep their defaults.
pub async fn put_rules(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<RulesQuery>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&st, &headers)?;
    caller.require_admin()?;
    let ws = resolve_workspace(&st, &caller, &headers, q.workspace.as_deref())?;
    let _serial = st.appliers.rules_update.lock().await;
    let mut v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("identity rules: {e}")))?;
    if let Value::Object(m) = &mut v {
        m.remove("workspace");
    }
    let mut rules = IdentityRules::from_json(&v)
        .map_err(|e| ApiError::bad_request("invalid_value", e.to_string()))?;
    // Identifiers blocked by splits stay blocked unless the body lists them itself: a routine
    // rules update must not merge people a split separated.
    if v.get("blocked_identifiers").is_none() {
        rules.blocked_identifiers = st
            .appliers
            .rules_for(&ws.id)
            .map_err(unavailable)?
            .blocked_identifiers;
    }
    st.store
        .set_identity_rules(&ws.id, &rules.to_json().to_string(), now_millis())?;
    let mut out = rules.to_json();
    if q.rebuild.unwrap_or(false) {
        let took = rebuild_and_wait(&st, &ws.id, rules).await?;
        out["rebuilt_in_ms"] = json!(took as u64);
    } else {
        st.appliers.set_rules(&ws.id, rules).map_err(unavailable)?;
    }
    out["workspace"] = json!(ws.id);
    Ok(Json(out))
}

/// `POST /api/v1/identity/rebuild`: re-derives every profile of the workspace from the log.
pub async fn rebuild(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<RulesQuery>,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&st, &headers)?;
    caller.require_admin()?;
    let ws = resolve_workspace(&st, &caller, &headers, q.workspace.as_deref())?;
    let rules = st.appliers.rules_for(&ws.id).map_err(unavailable)?;
    let took = rebuild_and_wait(&st, &ws.id, rules).await?;
    Ok(Json(
        json!({"workspace": ws.id, "rebuilt_in_ms": took as u64}),
    ))
}
