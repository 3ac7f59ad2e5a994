//! Admin API for computed traits and audiences: create, list, read, update (a new version),
//! delete, version history; audience preview over every profile, members (paged), size over
//! time, and the entries and exits (`Audience Entered` / `Audience Exited`) in order.
//!
//! Definitions are stored (every version) in the store; the workspace's applier takes the new
//! set on between two events, evaluates what changed over every profile (a backfill for a new
//! audience) and from then on keeps memberships in real time. A write answers once that is
//! done, with the audience's size.

use crate::applier::WorkspaceState;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::paging::page_size;
use crate::profiles_api::{blocking, caught_up, readable_state};
use crate::segments::{batch_threads, registry_from, KIND_AUDIENCE, KIND_COMPUTED};
use crate::state::{now_millis, SharedState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use tessera_core::audience::{parse_audience, parse_computed, Audience, ComputedDef};
use tessera_core::identity::profile_id;
use tessera_core::time::{format_iso8601, parse_iso8601};
use tessera_store::{AudienceEvent, Definition};

/// Profiles a preview returns as its sample.
const SAMPLE: usize = 10;
/// Longest name accepted.
const MAX_NAME: usize = 200;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DefQuery {
    workspace: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    since: Option<String>,
    until: Option<String>,
    profile: Option<String>,
}

/// Which kind of definition a route serves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Computed,
    Audience,
}

impl Kind {
    fn stored(self) -> &'static str {
        match self {
            Kind::Computed => KIND_COMPUTED,
            Kind::Audience => KIND_AUDIENCE,
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            Kind::Computed => "ct",
            Kind::Audience => "aud",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Kind::Computed => "computed trait",
            Kind::Audience => "audience",
        }
    }
}

/// A definition as parsed from a request: its canonical text.
fn canonical(kind: Kind, definition: &Value) -> Result<String, ApiError> {
    match (kind, definition) {
        (Kind::Audience, Value::String(text)) => Ok(parse_audience(text)?.to_string()),
        (Kind::Audience, v @ Value::Object(_)) => Ok(Audience::from_json(v)?.to_string()),
        (Kind::Computed, Value::String(text)) => Ok(parse_computed(text)?.to_string()),
        (Kind::Computed, v @ Value::Object(_)) => Ok(ComputedDef::from_json(v)?.to_string()),
        _ => Err(ApiError::bad_request(
            "invalid_definition",
            "`definition` must be a string in the audience language or its JSON form (an object)",
        )),
    }
}

fn definition_json(kind: Kind, text: &str) -> Value {
    match kind {
        Kind::Audience => parse_audience(text).map_or(Value::Null, |a| a.to_json()),
        Kind::Computed => parse_computed(text).map_or(Value::Null, |c| c.to_json()),
    }
}

/// The request body of a create or update: `name` and `definition`, each optional on update.
struct DefBody {
    name: Option<String>,
    definition: Option<String>,
}

fn read_body(kind: Kind, body: &[u8], create: bool) -> Result<DefBody, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    let Value::Object(map) = v else {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object with `name` and `definition`",
        ));
    };
    if let Some(k) = map
        .keys()
        .find(|k| !["name", "definition", "workspace"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("unknown field `{k}`; expected `name` and `definition`"),
        ));
    }
    let name = match map.get("name") {
        None if !create => None,
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= MAX_NAME => {
            Some(n.trim().to_string())
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("`name` must be a non-empty string of at most {MAX_NAME} characters"),
            ))
        }
    };
    let definition = match map.get("definition") {
        None if !create => None,
        None => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "`definition` is required",
            ))
        }
        Some(d) => Some(canonical(kind, d)?),
    };
    Ok(DefBody { name, definition })
}

/// The applier did not take a change on (it stopped, or its commit failed).
pub(crate) fn applier_unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "definitions unavailable");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "applier_unavailable",
        "the workspace's applier is not running; retry shortly",
    )
}

/// A workspace's current definitions (of every kind) as they would be with `change`.
pub(crate) fn with_change(
    st: &SharedState,
    ws: &str,
    change: &Definition,
) -> Result<Vec<Definition>, ApiError> {
    let mut defs: Vec<Definition> = st
        .store
        .definitions(ws)?
        .into_iter()
        .filter(|d| d.id != change.id)
        .collect();
    if !change.deleted {
        defs.push(change.clone());
    }
    Ok(defs)
}

/// Checks the workspace's definitions with `change` applied, stores the new version and
/// waits until the applier evaluated it.
async fn store_and_apply(
    st: &SharedState,
    state: &Arc<WorkspaceState>,
    change: Definition,
) -> Result<(), ApiError> {
    let ws = state.workspace.clone();
    let defs = with_change(st, &ws, &change)?;
    let registry = registry_from(&defs)?;
    st.store.save_definition(&change)?;
    let rx = st
        .appliers
        .set_definitions(&ws, registry)
        .map_err(applier_unavailable)?;
    applied(rx).await?;
    caught_up(state).await
}

/// Waits for the applier's answer to a change.
pub(crate) async fn applied(
    rx: std::sync::mpsc::Receiver<Result<(), String>>,
) -> Result<(), ApiError> {
    tokio::task::spawn_blocking(move || rx.recv())
        .await
        .map_err(applier_unavailable)?
        .map_err(applier_unavailable)?
        .map_err(applier_unavailable)
}

/// Refuses to remove or rename a computed trait or audience that another audience reads (its
/// name would then mean a profile trait, or nothing): 409 `in_use`. `doing` says what was
/// asked ("deleted", "renamed").
fn ensure_unused(defs: &[Definition], old: &Definition, doing: &str) -> Result<(), ApiError> {
    let registry = registry_from(defs)?;
    let user = registry.audiences.iter().enumerate().find(|(i, a)| {
        let deps = registry.deps(*i);
        a.id != old.id
            && match old.kind.as_str() {
                KIND_COMPUTED => deps.computed_traits.contains(&old.name),
                _ => deps.audiences.contains(&old.name),
            }
    });
    match user {
        Some((_, a)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "in_use",
            format!(
                "\"{}\" cannot be {doing}: audience \"{}\" uses it",
                old.name, a.name
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses to delete an audience a destination syncs or filters on, or a journey starts from:
/// 409 `in_use`.
fn ensure_not_activated(defs: &[Definition], old: &Definition) -> Result<(), ApiError> {
    let config = crate::activation_defs::config_of(defs);
    let by_destination = config
        .destinations
        .iter()
        .find(|d| d.audiences_used().contains(&old.id))
        .map(|d| format!("destination \"{}\"", d.name));
    let by_journey = config
        .journeys
        .iter()
        .find(|j| j.to_json()["trigger"]["audience"].as_str() == Some(old.id.as_str()))
        .map(|j| format!("journey \"{}\"", j.name));
    match by_destination.or(by_journey) {
        Some(user) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "in_use",
            format!("\"{}\" cannot be deleted: {user} uses it", old.name),
        )),
        None => Ok(()),
    }
}

/// The current version of a definition of this kind.
fn current(st: &SharedState, ws: &str, kind: Kind, id: &str) -> Result<Definition, ApiError> {
    st.store
        .definitions(ws)?
        .into_iter()
        .find(|d| d.id == id && d.kind == kind.stored())
        .ok_or_else(|| ApiError::not_found(&format!("{} {id}", kind.noun())))
}

/// The JSON of a definition, with the audience's size when it is live.
fn def_json(state: &WorkspaceState, kind: Kind, d: &Definition) -> Value {
    let mut v = json!({
        "id": d.id,
        "name": d.name,
        "version": d.version,
        "definition": d.definition,
        "definition_json": definition_json(kind, &d.definition),
        "created_at": format_iso8601(d.created_at),
        "updated_at": format_iso8601(d.updated_at),
    });
    if d.deleted {
        v["deleted"] = json!(true);
    }
    if kind == Kind::Audience && !d.deleted {
        let seg = state.segments.read().expect("segments poisoned");
        if let Some(i) = seg.registry().audience_by_name(&d.name) {
            v["size"] = json!(seg.members(i).count());
        }
    }
    v
}

/// `POST /api/v1/computed-traits` and `POST /api/v1/audiences`.
pub async fn create(
    st: SharedState,
    kind: Kind,
    headers: HeaderMap,
    q: DefQuery,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let b = read_body(kind, &body, true)?;
    let _serial = st.appliers.definitions_update.lock().await;
    let now = now_millis();
    let d = Definition {
        workspace_id: state.workspace.clone(),
        id: crate::ids::random_id(&format!("{}_", kind.prefix()), 16),
        kind: kind.stored().to_string(),
        name: b.name.unwrap_or_default(),
        version: 1,
        definition: b.definition.unwrap_or_default(),
        created_at: now,
        updated_at: now,
        deleted: false,
    };
    store_and_apply(&st, &state, d.clone()).await?;
    Ok((StatusCode::CREATED, Json(def_json(&state, kind, &d))))
}

/// `GET /api/v1/computed-traits` and `GET /api/v1/audiences`.
pub async fn list(
    st: SharedState,
    kind: Kind,
    headers: HeaderMap,
    q: DefQuery,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), false)?;
    let items: Vec<Value> = st
        .store
        .definitions(&state.workspace)?
        .iter()
        .filter(|d| d.kind == kind.stored())
        .map(|d| def_json(&state, kind, d))
        .collect();
    let key = match kind {
        Kind::Computed => "computed_traits",
        Kind::Audience => "audiences",
    };
    Ok(Json(json!({ key: items })))
}

/// `GET /api/v1/{kind}/{id}`.
pub async fn get(
    st: SharedState,
    kind: Kind,
    headers: HeaderMap,
    id: String,
    q: DefQuery,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), false)?;
    let d = current(&st, &state.workspace, kind, &id)?;
    Ok(Json(def_json(&state, kind, &d)))
}

/// `PUT /api/v1/{kind}/{id}`: a new version with the fields given.
pub async fn update(
    st: SharedState,
    kind: Kind,
    headers: HeaderMap,
    id: String,
    q: DefQuery,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let b = read_body(kind, &body, false)?;
    let _serial = st.appliers.definitions_update.lock().await;
    let old = current(&st, &state.workspace, kind, &id)?;
    if b.name.as_ref().is_some_and(|n| *n != old.name) {
        ensure_unused(&st.store.definitions(&state.workspace)?, &old, "renamed")?;
    }
    let d = Definition {
        name: b.name.unwrap_or_else(|| old.name.clone()),
        definition: b.definition.unwrap_or_else(|| old.definition.clone()),
        version: old.version + 1,
        updated_at: now_millis(),
        ..old
    };
    store_and_apply(&st, &state, d.clone()).await?;
    Ok(Json(def_json(&state, kind, &d)))
}

/// `DELETE /api/v1/{kind}/{id}`: a final version marked deleted. Refused while another
/// definition uses it.
pub async fn delete(
    st: SharedState,
    kind: Kind,
    headers: HeaderMap,
    id: String,
    q: DefQuery,
) -> Result<StatusCode, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let _serial = st.appliers.definitions_update.lock().await;
    let old = current(&st, &state.workspace, kind, &id)?;
    let defs = st.store.definitions(&state.workspace)?;
    ensure_unused(&defs, &old, "deleted")?;
    ensure_not_activated(&defs, &old)?;
    let name = old.name.clone();
    let d = Definition {
        version: old.version + 1,
        updated_at: now_millis(),
        deleted: true,
        ..old
    };
    store_and_apply(&st, &state, d).await.map_err(|e| {
        if e.code == "definition_type_error" {
            ApiError::new(
                StatusCode::CONFLICT,
                "in_use",
                format!("\"{name}\" is used by another definition: {}", e.message),
            )
        } else {
            e
        }
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/{kind}/{id}/versions`.
pub async fn versions(
    st: SharedState,
    kind: Kind,
    headers: HeaderMap,
    id: String,
    q: DefQuery,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), false)?;
    let all = st.store.definition_versions(&state.workspace, &id)?;
    if all.is_empty() || all[0].kind != kind.stored() {
        return Err(ApiError::not_found(&format!("{} {id}", kind.noun())));
    }
    let items: Vec<Value> = all
        .iter()
        .map(|d| {
            json!({"version": d.version, "name": d.name, "definition": d.definition,
                   "deleted": d.deleted, "updated_at": format_iso8601(d.updated_at)})
        })
        .collect();
    Ok(Json(json!({"id": id, "versions": items})))
}

/// `POST /api/v1/audiences/preview`: size and a sample of an unsaved definition.
pub async fn preview(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DefQuery>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), false)?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    let definition = v.get("definition").ok_or_else(|| {
        ApiError::bad_request(
            "invalid_field",
            "the body must be {\"definition\": \"...\"}",
        )
    })?;
    let audience = parse_audience(&canonical(Kind::Audience, definition)?)?;
    let started = Instant::now();
    let (size, sample, as_of) = blocking(move || {
        let seg = state.segments.read().expect("segments poisoned");
        tessera_core::audience::check(&audience, &seg.registry().catalog())?;
        let members = seg.preview(&audience, batch_threads());
        let sample: Vec<String> = members
            .iter()
            .take(SAMPLE)
            .map(|s| profile_id(seg.key_of(s)))
            .collect();
        Ok((members.count(), sample, seg.now()))
    })
    .await?;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Json(json!({
        "size": size,
        "sample": sample,
        "took_ms": (took * 1000.0).round() / 1000.0,
        "as_of": format_iso8601(as_of),
    })))
}

/// The key-ordered members cursor: the last profile id of the previous page.
fn member_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| tessera_core::identity::parse_profile_id(c).ok_or_else(crate::paging::bad_cursor))
        .transpose()
}

/// `GET /api/v1/audiences/{id}/members`.
pub async fn members(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DefQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), false)?;
    current(&st, &state.workspace, Kind::Audience, &id)?;
    caught_up(&state).await?;
    let (after, limit) = (member_cursor(q.cursor.as_deref())?, page_size(q.limit));
    let db = state.db();
    let aud = id.clone();
    let rows = blocking(move || Ok(db.members(&aud, after, limit)?)).await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|(p, _)| profile_id(*p)))
        .flatten();
    let items: Vec<Value> = rows
        .iter()
        .map(|(p, at)| json!({"profile_id": profile_id(*p), "entered_at": format_iso8601(*at)}))
        .collect();
    Ok(Json(
        json!({"audience_id": id, "members": items, "next_cursor": next}),
    ))
}

fn time_param(s: &str, name: &str) -> Result<i64, ApiError> {
    s.parse::<i64>().or_else(|_| parse_iso8601(s)).map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            format!("`{name}` must be an ISO-8601 date-time or milliseconds since the epoch"),
        )
    })
}

/// `GET /api/v1/audiences/{id}/sizes`: the size after each change, over time.
pub async fn sizes(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DefQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), false)?;
    current(&st, &state.workspace, Kind::Audience, &id)?;
    caught_up(&state).await?;
    let from = q
        .since
        .as_deref()
        .map(|s| time_param(s, "since"))
        .transpose()?;
    let to = q
        .until
        .as_deref()
        .map(|s| time_param(s, "until"))
        .transpose()?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let db = state.db();
    let aud = id.clone();
    let rows = blocking(move || {
        Ok(db.audience_sizes(
            &aud,
            from.unwrap_or(i64::MIN),
            to.unwrap_or(i64::MAX),
            limit,
        )?)
    })
    .await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|(at, n)| json!({"at": format_iso8601(*at), "size": n}))
        .collect();
    Ok(Json(json!({"audience_id": id, "sizes": items})))
}

/// An entry or exit as the event destinations receive: a Segment track call.
pub fn audience_event_json(e: &AudienceEvent) -> Value {
    let c = &e.change;
    let direction = if c.entered { "in" } else { "out" };
    json!({
        "seq": e.seq,
        // When the applier recorded it (wall clock, microseconds): how far real time lags.
        "recorded_at_us": c.recorded_at_us,
        "type": "track",
        "event": if c.entered { "Audience Entered" } else { "Audience Exited" },
        "messageId": format!("aud-{}-{}-{}-{direction}", c.audience, c.profile, c.at),
        "timestamp": format_iso8601(c.at),
        "properties": {
            "audience_id": c.audience,
            "audience_name": c.name,
            "audience_version": c.version,
            "profile_id": profile_id(c.profile),
            "reason": c.reason,
            "position": c.position,
        },
        "context": {"traits": {"tessera_profile_id": profile_id(c.profile)}},
    })
}

/// `GET /api/v1/audiences/{id}/events` (one audience) and `GET /api/v1/audience-events`
/// (all): entries and exits in the order they happened, after `cursor` (a `seq`).
pub async fn events(
    st: SharedState,
    headers: HeaderMap,
    id: Option<String>,
    q: DefQuery,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), false)?;
    if let Some(id) = &id {
        current(&st, &state.workspace, Kind::Audience, id)?;
    }
    caught_up(&state).await?;
    let after = match q.cursor.as_deref() {
        Some(c) => c.parse::<i64>().map_err(|_| crate::paging::bad_cursor())?,
        None => 0,
    };
    let profile = q
        .profile
        .as_deref()
        .map(|p| {
            tessera_core::identity::parse_profile_id(p).ok_or_else(|| {
                ApiError::bad_request("invalid_query", "`profile` must be a profile id (`prf_…`)")
            })
        })
        .transpose()?;
    let limit = page_size(q.limit);
    let db = state.db();
    let rows =
        blocking(move || Ok(db.audience_events(id.as_deref(), profile, after, limit)?)).await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|e| e.seq.to_string()))
        .flatten();
    let items: Vec<Value> = rows.iter().map(audience_event_json).collect();
    Ok(Json(json!({"events": items, "next_cursor": next})))
}

/// `GET /v1/profiles/{ident}/audiences`, after the profile was resolved.
pub async fn profile_audiences(
    state: Arc<WorkspaceState>,
    key: i64,
) -> Result<Json<Value>, ApiError> {
    caught_up(&state).await?;
    let db = state.db();
    let rows = blocking(move || Ok(db.memberships_of(key)?)).await?;
    let seg = state.segments.read().expect("segments poisoned");
    let items: Vec<Value> = rows
        .iter()
        .filter_map(|(aud, at)| {
            let a = seg.registry().audiences.iter().find(|a| &a.id == aud)?;
            Some(json!({"audience_id": aud, "name": a.name, "entered_at": format_iso8601(*at)}))
        })
        .collect();
    Ok(Json(json!({"id": profile_id(key), "audiences": items})))
}

/// The CRUD handlers of one kind of definition, for the router.
macro_rules! kind_handlers {
    ($module:ident, $kind:expr) => {
        pub mod $module {
            use super::*;

            pub async fn create(
                State(st): State<SharedState>,
                headers: HeaderMap,
                ApiQuery(q): ApiQuery<DefQuery>,
                body: axum::body::Bytes,
            ) -> Result<(StatusCode, Json<Value>), ApiError> {
                super::create(st, $kind, headers, q, body).await
            }
            pub async fn list(
                State(st): State<SharedState>,
                headers: HeaderMap,
                ApiQuery(q): ApiQuery<DefQuery>,
            ) -> Result<Json<Value>, ApiError> {
                super::list(st, $kind, headers, q).await
            }
            pub async fn get(
                State(st): State<SharedState>,
                headers: HeaderMap,
                ApiPath(id): ApiPath<String>,
                ApiQuery(q): ApiQuery<DefQuery>,
            ) -> Result<Json<Value>, ApiError> {
                super::get(st, $kind, headers, id, q).await
            }
            pub async fn update(
                State(st): State<SharedState>,
                headers: HeaderMap,
                ApiPath(id): ApiPath<String>,
                ApiQuery(q): ApiQuery<DefQuery>,
                body: axum::body::Bytes,
            ) -> Result<Json<Value>, ApiError> {
                super::update(st, $kind, headers, id, q, body).await
            }
            pub async fn delete(
                State(st): State<SharedState>,
                headers: HeaderMap,
                ApiPath(id): ApiPath<String>,
                ApiQuery(q): ApiQuery<DefQuery>,
            ) -> Result<StatusCode, ApiError> {
                super::delete(st, $kind, headers, id, q).await
            }
            pub async fn versions(
                State(st): State<SharedState>,
                headers: HeaderMap,
                ApiPath(id): ApiPath<String>,
                ApiQuery(q): ApiQuery<DefQuery>,
            ) -> Result<Json<Value>, ApiError> {
                super::versions(st, $kind, headers, id, q).await
            }
        }
    };
}

kind_handlers!(audiences, Kind::Audience);
kind_handlers!(computed_traits, Kind::Computed);

/// `GET /api/v1/audiences/{id}/events`.
pub async fn audience_events(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DefQuery>,
) -> Result<Json<Value>, ApiError> {
    events(st, headers, Some(id), q).await
}

/// `GET /api/v1/audience-events`.
pub async fn all_audience_events(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DefQuery>,
) -> Result<Json<Value>, ApiError> {
    events(st, headers, None, q).await
}
