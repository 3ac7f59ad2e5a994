//! The admin API under `/api/v1`: workspaces, sources (with their write keys) and API tokens.
//! Request and response bodies are defined here, apart from the store's types.

use crate::auth::{authenticate, hash_secret, resolve_workspace, Caller, KNOWN_SCOPES};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::ids::random_id;
use crate::state::{now_millis, SharedState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_core::privacy::plan::Mode;
use tessera_store::{Source, Token, Workspace};

#[derive(Deserialize, Default)]
pub struct WorkspaceQuery {
    pub workspace: Option<String>,
}

/// Parses a JSON request body, naming the field and position of any error.
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}" as &[u8]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| crate::body::json_error(&e))
}

fn check_name(name: &str, what: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("`name` of a {what} must have 1 to 200 characters"),
        ));
    }
    Ok(name.to_string())
}

fn workspace_json(w: &Workspace) -> Value {
    json!({"id": w.id, "name": w.name, "created_at": tessera_core::time::format_iso8601(w.created_at)})
}

fn source_json(s: &Source) -> Value {
    json!({
        "id": s.id,
        "workspace_id": s.workspace_id,
        "name": s.name,
        "write_key": s.write_key,
        "enabled": s.enabled,
        "tracking_plan_mode": s.tracking_plan_mode.as_str(),
        "created_at": tessera_core::time::format_iso8601(s.created_at),
        "updated_at": tessera_core::time::format_iso8601(s.updated_at),
    })
}

fn token_json(t: &Token) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "workspace_id": t.workspace_id,
        "scopes": t.scopes,
        "created_at": tessera_core::time::format_iso8601(t.created_at),
    })
}

// ---- workspaces ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWorkspace {
    name: String,
    id: Option<String>,
}

pub async fn list_workspaces(
    State(st): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers)?;
    let all = st.store.list_workspaces()?;
    let visible: Vec<Value> = all
        .iter()
        .filter(|w| {
            caller
                .token
                .workspace_id
                .as_ref()
                .is_none_or(|own| own == &w.id)
        })
        .map(workspace_json)
        .collect();
    Ok(Json(json!({"workspaces": visible})).into_response())
}

pub async fn create_workspace(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers)?;
    caller.require_global_admin()?;
    let req: NewWorkspace = parse_json(&body)?;
    let id = match req.id {
        Some(id) if valid_slug(&id) => id,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_value",
                "`id` must be 1 to 64 characters of a-z, 0-9, `-` and `_`",
            ))
        }
        None => random_id("ws_", 16),
    };
    let ws = Workspace {
        id,
        name: check_name(&req.name, "workspace")?,
        created_at: now_millis(),
    };
    st.store.create_workspace(&ws)?;
    if let Err(e) = st.appliers.start(&ws.id) {
        tracing::error!(error = %e, "cannot start the new workspace's applier");
    }
    Ok((StatusCode::CREATED, Json(workspace_json(&ws))).into_response())
}

fn valid_slug(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

pub async fn get_workspace(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers)?;
    let ws = resolve_workspace(&st, &caller, &HeaderMap::new(), Some(&id))?;
    Ok(Json(workspace_json(&ws)).into_response())
}

pub async fn delete_workspace(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers)?;
    caller.require_global_admin()?;
    if id == st.default_workspace {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "default_workspace",
            "the default workspace cannot be deleted",
        ));
    }
    if !st.store.delete_workspace(&id)? {
        return Err(ApiError::not_found(&format!("workspace {id}")));
    }
    st.invalidate_write_keys();
    st.governance.forget_workspace(&id);
    let appliers = st.appliers.clone();
    let _ = tokio::task::spawn_blocking(move || appliers.remove(&id)).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- sources ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSource {
    name: String,
    write_key: Option<String>,
    enabled: Option<bool>,
    tracking_plan_mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcePatch {
    name: Option<String>,
    enabled: Option<bool>,
    tracking_plan_mode: Option<String>,
}

/// What the source does with messages that break the tracking plan.
fn check_mode(mode: &str) -> Result<Mode, ApiError> {
    Mode::parse(mode).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_value",
            "`tracking_plan_mode` must be `allow`, `flag` or `block`",
        )
    })
}

fn check_write_key(key: &str) -> Result<String, ApiError> {
    let ok = (8..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        return Err(ApiError::bad_request(
            "invalid_value",
            "`write_key` must be 8 to 128 characters of A-Z, a-z, 0-9, `-`, `_` and `.`",
        ));
    }
    Ok(key.to_string())
}

fn scoped(
    st: &SharedState,
    headers: &HeaderMap,
    q: &WorkspaceQuery,
) -> Result<(Caller, Workspace), ApiError> {
    let caller = authenticate(st, headers)?;
    let ws = resolve_workspace(st, &caller, headers, q.workspace.as_deref())?;
    Ok((caller, ws))
}

pub async fn list_sources(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WorkspaceQuery>,
) -> Result<Response, ApiError> {
    let (_, ws) = scoped(&st, &headers, &q)?;
    let sources: Vec<Value> = st
        .store
        .list_sources(&ws.id)?
        .iter()
        .map(source_json)
        .collect();
    Ok(Json(json!({"sources": sources})).into_response())
}

pub async fn create_source(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WorkspaceQuery>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (caller, ws) = scoped(&st, &headers, &q)?;
    caller.require_admin()?;
    let req: NewSource = parse_json(&body)?;
    let write_key = match req.write_key {
        Some(k) => check_write_key(&k)?,
        None => random_id("wk_", 32),
    };
    let now = now_millis();
    let src = Source {
        id: random_id("src_", 16),
        workspace_id: ws.id,
        name: check_name(&req.name, "source")?,
        write_key,
        enabled: req.enabled.unwrap_or(true),
        tracking_plan_mode: req
            .tracking_plan_mode
            .as_deref()
            .map_or(Ok(Mode::Allow), check_mode)?,
        created_at: now,
        updated_at: now,
    };
    st.store.create_source(&src)?;
    st.invalidate_write_keys();
    Ok((StatusCode::CREATED, Json(source_json(&src))).into_response())
}

fn find_source(st: &SharedState, ws: &Workspace, id: &str) -> Result<Source, ApiError> {
    st.store
        .get_source(&ws.id, id)?
        .ok_or_else(|| ApiError::not_found(&format!("source {id}")))
}

pub async fn get_source(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WorkspaceQuery>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (_, ws) = scoped(&st, &headers, &q)?;
    Ok(Json(source_json(&find_source(&st, &ws, &id)?)).into_response())
}

pub async fn patch_source(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WorkspaceQuery>,
    ApiPath(id): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (caller, ws) = scoped(&st, &headers, &q)?;
    caller.require_admin()?;
    let patch: SourcePatch = parse_json(&body)?;
    let mut src = find_source(&st, &ws, &id)?;
    if let Some(name) = patch.name {
        src.name = check_name(&name, "source")?;
    }
    if let Some(enabled) = patch.enabled {
        src.enabled = enabled;
    }
    if let Some(mode) = patch.tracking_plan_mode {
        src.tracking_plan_mode = check_mode(&mode)?;
    }
    save_source(&st, src)
}

fn save_source(st: &SharedState, mut src: Source) -> Result<Response, ApiError> {
    src.updated_at = now_millis();
    if !st.store.update_source(&src)? {
        return Err(ApiError::not_found(&format!("source {}", src.id)));
    }
    st.invalidate_write_keys();
    Ok(Json(source_json(&src)).into_response())
}

/// `POST /api/v1/sources/{id}/{action}` with action `rotate-key`, `disable` or `enable`.
pub async fn source_action(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WorkspaceQuery>,
    ApiPath((id, action)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let (caller, ws) = scoped(&st, &headers, &q)?;
    caller.require_admin()?;
    let mut src = find_source(&st, &ws, &id)?;
    match action.as_str() {
        "rotate-key" => src.write_key = random_id("wk_", 32),
        "disable" => src.enabled = false,
        "enable" => src.enabled = true,
        other => return Err(ApiError::not_found(&format!("action {other}"))),
    }
    save_source(&st, src)
}

pub async fn delete_source(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WorkspaceQuery>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (caller, ws) = scoped(&st, &headers, &q)?;
    caller.require_admin()?;
    if !st.store.delete_source(&ws.id, &id)? {
        return Err(ApiError::not_found(&format!("source {id}")));
    }
    st.invalidate_write_keys();
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- tokens ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    workspace_id: Option<String>,
    scopes: Vec<String>,
}

pub async fn list_tokens(
    State(st): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&st, &headers)?.require_global_admin()?;
    let tokens: Vec<Value> = st.store.list_tokens()?.iter().map(token_json).collect();
    Ok(Json(json!({"tokens": tokens})).into_response())
}

pub async fn create_token(
    State(st): State<SharedState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authenticate(&st, &headers)?.require_global_admin()?;
    let req: NewToken = parse_json(&body)?;
    if req.scopes.is_empty()
        || req
            .scopes
            .iter()
            .any(|s| !KNOWN_SCOPES.contains(&s.as_str()))
    {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("`scopes` must be a non-empty list of {KNOWN_SCOPES:?}"),
        ));
    }
    if let Some(ws) = &req.workspace_id {
        if st.store.get_workspace(ws)?.is_none() {
            return Err(ApiError::not_found(&format!("workspace {ws}")));
        }
    }
    let secret = random_id("tsk_", 40);
    let token = Token {
        id: random_id("tok_", 16),
        workspace_id: req.workspace_id,
        scopes: req.scopes,
        name: check_name(&req.name, "token")?,
        created_at: now_millis(),
    };
    st.store.create_token(&token, &hash_secret(&secret))?;
    let mut body = token_json(&token);
    body["token"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn delete_token(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    authenticate(&st, &headers)?.require_global_admin()?;
    if !st.store.delete_token(&id)? {
        return Err(ApiError::not_found(&format!("token {id}")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
