//! The Profile API: `GET /v1/profiles/{ident}` and its sub-resources, `POST .../split`, and
//! `GET /v1/accounts/{ident}`. A profile is addressed by `type:value` (URL-encoded) or by its
//! id (`prf_…`); an id that was merged away answers as the profile that absorbed it.

use crate::applier::WorkspaceState;
use crate::auth::{authenticate, resolve_workspace, SCOPE_READ};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::paging::{bad_cursor, event_json, page_size, position_cursor};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tessera_core::identity::{
    account_id, parse_account_id, parse_profile_id, profile_id, MergeRow, TraitView,
};
use tessera_core::time::{format_iso8601, parse_iso8601};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProfileQuery {
    workspace: Option<String>,
    verbose: Option<bool>,
    as_of: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    other: Option<String>,
    /// `profile` (default), `computed` or `all`.
    class: Option<String>,
}

fn internal(message: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

/// The workspace's state, after checking the caller may read it.
pub(crate) fn readable_state(
    st: &SharedState,
    headers: &HeaderMap,
    workspace: Option<&str>,
    admin: bool,
) -> Result<Arc<WorkspaceState>, ApiError> {
    let caller = authenticate(st, headers)?;
    if admin {
        caller.require_admin()?;
    } else if !caller.has_scope(SCOPE_READ) {
        return Err(ApiError::forbidden("this token may not read profiles"));
    }
    let ws = resolve_workspace(st, &caller, headers, workspace)?;
    st.appliers.start(&ws.id).map_err(|e| {
        tracing::error!(error = %e, "workspace state unavailable");
        internal("the workspace's profile state is unavailable")
    })
}

/// Resolves `type:value` or `prf_…` to a live profile key.
pub(crate) fn resolve(state: &WorkspaceState, ident: &str) -> Result<i64, ApiError> {
    let engine = state.engine.read().expect("engine poisoned");
    let found = match ident.split_once(':') {
        Some((kind, value)) => {
            let kind = kind.trim();
            if !engine.knows_type(kind) {
                let known: Vec<&str> = engine.rules().types.iter().map(|t| t.name.as_str()).collect();
                return Err(ApiError::bad_request(
                    "unknown_identifier_type",
                    format!("`{kind}` is not an identifier type of this workspace; its types are {}", known.join(", ")),
                ));
            }
            engine.profile_by_identifier(kind, value)
        }
        None => match parse_profile_id(ident) {
            Some(key) => engine.resolve_key(key),
            None => {
                return Err(ApiError::bad_request(
                    "invalid_identifier",
                    "address a profile as `type:value` (e.g. `email:ann@example.com`) or by its id (`prf_…`)",
                ))
            }
        },
    };
    found.ok_or_else(|| ApiError::not_found(&format!("profile {ident}")))
}

fn iso(ms: i64) -> String {
    format_iso8601(ms)
}

fn raw_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Traits as `{key: value}`, or with `verbose` as `{key: {value, source, updated_at}}`; from
/// the engine (current) or from history rows (as of a time) alike.
fn traits_json<'a>(
    traits: impl IntoIterator<Item = (&'a str, &'a str, &'a str, i64)>,
    verbose: bool,
) -> Value {
    let mut out = Map::new();
    for (key, value, source, ts) in traits {
        let v = if verbose {
            json!({"value": raw_json(value), "source": source, "updated_at": iso(ts)})
        } else {
            raw_json(value)
        };
        out.insert(key.to_string(), v);
    }
    Value::Object(out)
}

fn current_traits(traits: &[TraitView], verbose: bool) -> Value {
    let rows = traits.iter().map(|t| {
        (
            t.key.as_str(),
            t.value.as_str(),
            t.source.as_str(),
            t.updated_at,
        )
    });
    traits_json(rows, verbose)
}

fn limit(q: &ProfileQuery) -> usize {
    page_size(q.limit)
}

/// History's cursor: `position:key` of the last row of the previous page.
fn history_cursor(q: &ProfileQuery) -> Result<Option<(i64, String)>, ApiError> {
    q.cursor
        .as_deref()
        .map(|c| {
            c.split_once(':')
                .and_then(|(p, k)| Some((p.parse::<i64>().ok()?, k.to_string())))
                .ok_or_else(bad_cursor)
        })
        .transpose()
}

fn time_param(s: &str, name: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    parse_iso8601(s).map_err(|e| ApiError::bad_request("invalid_value", format!("`{name}`: {e}")))
}

/// Waits (briefly) until the state file holds everything applied when the request came, so
/// that timelines, history and merge records agree with the profile the caller just read.
/// When the state file is further behind (a long commit under heavy load), the answer is a
/// retryable 503 rather than stale rows.
pub(crate) async fn caught_up(state: &WorkspaceState) -> Result<(), ApiError> {
    let target = state.applied();
    for _ in 0..300 {
        if state.persisted(target) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "catching_up",
        "profile timelines and history are still being written; retry shortly",
    ))
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| internal("query task failed"))?
}

/// `GET /v1/profiles/{ident}`.
pub async fn get_profile(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(ident): ApiPath<String>,
    ApiQuery(q): ApiQuery<ProfileQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), false)?;
    let key = resolve(&state, &ident)?;
    let view = state
        .engine
        .read()
        .expect("engine poisoned")
        .profile(key)
        .ok_or_else(|| ApiError::not_found(&format!("profile {ident}")))?;
    Ok(Json(json!({
        "id": profile_id(view.key),
        "identifiers": view.identifiers.iter()
            .map(|i| json!({"type": i.kind, "value": i.value})).collect::<Vec<_>>(),
        "traits": current_traits(&view.traits, q.verbose.unwrap_or(false)),
        "accounts": view.accounts.iter().map(|&a| account_id(a)).collect::<Vec<_>>(),
        "merged_profiles": view.merges,
        "created_at": iso(view.created_at),
        "updated_at": iso(view.updated_at),
    })))
}

/// `GET /v1/profiles/{ident}/{resource}`.
pub async fn get_resource(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath((ident, resource)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ProfileQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), false)?;
    let key = resolve(&state, &ident)?;
    let from_memory = matches!(
        (resource.as_str(), &q.as_of),
        ("traits", None) | ("identifiers", _) | ("audiences", _)
    );
    if !from_memory {
        caught_up(&state).await?;
    }
    match resource.as_str() {
        "traits" => traits(state, key, &q).await,
        "identifiers" => {
            let view = state
                .engine
                .read()
                .expect("engine poisoned")
                .profile(key)
                .ok_or_else(|| ApiError::not_found(&format!("profile {ident}")))?;
            let ids: Vec<Value> = view
                .identifiers
                .iter()
                .map(|i| {
                    json!({"type": i.kind, "value": i.value, "first_seen": iso(i.first_seen),
                           "last_seen": iso(i.last_seen), "added_by_position": i.position,
                           "first_profile": profile_id(i.origin)})
                })
                .collect();
            Ok(Json(json!({"id": profile_id(key), "identifiers": ids})))
        }
        "events" => events(st, state, key, &q).await,
        "merges" => {
            let db = state.db();
            let merges = blocking(move || Ok(db.merges(key)?)).await?;
            Ok(Json(json!({
                "id": profile_id(key),
                "merges": merges.iter().map(merge_json).collect::<Vec<_>>(),
            })))
        }
        "history" => {
            let (after, limit) = (history_cursor(&q)?, limit(&q));
            let db = state.db();
            let rows = blocking(move || Ok(db.history(key, after, limit)?)).await?;
            let next = (rows.len() == limit)
                .then(|| rows.last().map(|h| format!("{}:{}", h.position, h.key)))
                .flatten();
            let items: Vec<Value> = rows
                .iter()
                .map(|h| {
                    json!({"trait": h.key, "value": raw_json(&h.value), "source": h.source,
                           "timestamp": iso(h.ts), "position": h.position})
                })
                .collect();
            Ok(Json(
                json!({"id": profile_id(key), "history": items, "next_cursor": next}),
            ))
        }
        "explain" => crate::explain::explain(st, state, key, &ident, q.other.as_deref()).await,
        "audiences" => crate::audiences_api::profile_audiences(state, key).await,
        other => Err(ApiError::not_found(&format!("profile resource `{other}`"))),
    }
}

/// A profile's computed traits, current as of the segmenter's clock; with `verbose` each
/// with its definition's id and version.
fn computed_traits(state: &WorkspaceState, key: i64, verbose: bool) -> Value {
    let slot = state.engine.read().expect("engine poisoned").slot_of(key);
    let seg = state.segments.read().expect("segments poisoned");
    let Some(slot) = slot else {
        return json!({});
    };
    let values = seg.computed_values(slot);
    let mut out = Map::new();
    for c in &seg.registry().computed {
        let v = values.get(&c.name).cloned().unwrap_or(Value::Null);
        let v = match verbose {
            true => json!({"value": v, "computed_trait_id": c.id, "version": c.version,
                           "as_of": iso(seg.now())}),
            false => v,
        };
        out.insert(c.name.clone(), v);
    }
    Value::Object(out)
}

async fn traits(
    state: Arc<WorkspaceState>,
    key: i64,
    q: &ProfileQuery,
) -> Result<Json<Value>, ApiError> {
    let verbose = q.verbose.unwrap_or(false);
    let class = q.class.as_deref().unwrap_or("profile");
    if !["profile", "computed", "all"].contains(&class) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`class` is `profile`, `computed` or `all`",
        ));
    }
    if class != "profile" && q.as_of.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`as_of` reads profile traits only; computed traits are current",
        ));
    }
    let computed = (class != "profile").then(|| computed_traits(&state, key, verbose));
    if class == "computed" {
        return Ok(Json(
            json!({"id": profile_id(key), "class": "computed", "traits": computed}),
        ));
    }
    let traits = match &q.as_of {
        Some(t) => {
            let at = time_param(t, "as_of")?;
            let db = state.db();
            let rows = blocking(move || Ok(db.traits_as_of(key, at)?)).await?;
            let rows = rows
                .iter()
                .map(|h| (h.key.as_str(), h.value.as_str(), h.source.as_str(), h.ts));
            traits_json(rows, verbose)
        }
        None => {
            let view = state
                .engine
                .read()
                .expect("engine poisoned")
                .profile(key)
                .ok_or_else(|| ApiError::not_found("profile"))?;
            current_traits(&view.traits, verbose)
        }
    };
    let mut out = json!({"id": profile_id(key), "traits": traits});
    if let Some(c) = computed {
        out["computed_traits"] = c;
    }
    if let Some(t) = &q.as_of {
        out["as_of"] = json!(iso(time_param(t, "as_of")?));
    }
    Ok(Json(out))
}

async fn events(
    st: SharedState,
    state: Arc<WorkspaceState>,
    key: i64,
    q: &ProfileQuery,
) -> Result<Json<Value>, ApiError> {
    let (before, limit) = (position_cursor(q.cursor.as_deref())?, limit(q));
    let db = state.db();
    let store = st.store.clone();
    let ws = state.workspace.clone();
    let rows = blocking(move || {
        let positions = db.timeline(key, before, limit)?;
        Ok((positions.len(), store.events_at(&ws, &positions)?))
    })
    .await?;
    let (found, events) = rows;
    let next = (found == limit)
        .then(|| events.last().map(|e| e.position.to_string()))
        .flatten();
    let items = events
        .iter()
        .map(event_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(
        json!({"id": profile_id(key), "events": items, "next_cursor": next}),
    ))
}

fn merge_json(m: &MergeRow) -> Value {
    json!({
        "survivor": profile_id(m.survivor),
        "absorbed": m.absorbed.iter().map(|&a| profile_id(a)).collect::<Vec<_>>(),
        "identifiers": m.identifiers.iter()
            .map(|(t, v)| json!({"type": t, "value": v})).collect::<Vec<_>>(),
        "position": m.position,
        "timestamp": iso(m.ts),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

/// `POST /v1/profiles/{ident}/split`: removes an identifier from a profile for good (it is
/// blocked from joining anything again) and re-derives the workspace's profiles from the log,
/// so the events it wrongly joined go back where they belong.
pub async fn split(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath((ident, action)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ProfileQuery>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    if action != "split" {
        return Err(ApiError::not_found(&format!("profile action `{action}`")));
    }
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let req: SplitRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("split body: {e}")))?;
    let key = resolve(&state, &ident)?;
    let (value, before) = {
        let engine = state.engine.read().expect("engine poisoned");
        let id = engine.identifier(&req.kind, &req.value);
        match id {
            Some(id) if engine.profile_by_identifier(&req.kind, &req.value) == Some(key) => (
                id.value,
                engine
                    .profile(key)
                    .map(|p| p.identifiers)
                    .unwrap_or_default(),
            ),
            _ => {
                return Err(ApiError::bad_request(
                    "identifier_not_on_profile",
                    format!(
                        "{}:{} is not an identifier of {}",
                        req.kind,
                        req.value,
                        profile_id(key)
                    ),
                ))
            }
        }
    };
    // The stored rules, not the applier's copy, which may not have taken a change made just
    // before this request yet; read, changed and stored under the rules lock.
    let _serial = st.appliers.rules_update.lock().await;
    let mut rules = st.appliers.rules_for(&state.workspace).map_err(|e| {
        tracing::error!(error = %e, "cannot read identity rules");
        internal("the workspace's identity rules are unavailable")
    })?;
    if !rules
        .blocked_identifiers
        .contains(&(req.kind.clone(), value.clone()))
    {
        rules
            .blocked_identifiers
            .push((req.kind.clone(), value.clone()));
    }
    st.store.set_identity_rules(
        &state.workspace,
        &rules.to_json().to_string(),
        crate::state::now_millis(),
    )?;
    crate::identity_api::rebuild_and_wait(&st, &state.workspace, rules).await?;
    let engine = state.engine.read().expect("engine poisoned");
    let mut after: Vec<String> = before
        .iter()
        .filter_map(|i| engine.profile_by_identifier(&i.kind, &i.value))
        .map(profile_id)
        .collect();
    after.sort();
    after.dedup();
    Ok(Json(json!({
        "blocked": {"type": req.kind, "value": value},
        "profiles": after,
    })))
}

/// `GET /v1/accounts/{ident}`: by `group_id:value` or `acc_…`.
pub async fn get_account(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(ident): ApiPath<String>,
    ApiQuery(q): ApiQuery<ProfileQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), false)?;
    let engine = state.engine.read().expect("engine poisoned");
    let key = match ident.split_once(':') {
        Some(("group_id", g)) => engine.account_by_group_id(g),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_identifier",
                "address an account as `group_id:value` or by its id (`acc_…`)",
            ))
        }
        None => parse_account_id(&ident),
    };
    let view = key
        .and_then(|k| engine.account(k))
        .ok_or_else(|| ApiError::not_found(&format!("account {ident}")))?;
    Ok(Json(json!({
        "id": account_id(view.key),
        "group_id": view.group_id,
        "traits": current_traits(&view.traits, q.verbose.unwrap_or(false)),
        "members": view.members.iter().map(|&m| profile_id(m)).collect::<Vec<_>>(),
        "member_count": view.members.len(),
        "created_at": iso(view.created_at),
        "updated_at": iso(view.updated_at),
    })))
}
