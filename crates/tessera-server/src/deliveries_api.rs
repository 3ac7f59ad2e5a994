//! Admin API for what was delivered: a destination's delivery log (every attempt, newest
//! first), its dead-letter queue (listed, inspected one by one) and replays of dead letters
//! (one, several, all, or those matching a filter).

use crate::destinations_api::WsQuery;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::paging::page_size;
use crate::profiles_api::{blocking, readable_state};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_core::activation::RecordKind;
use tessera_core::identity::profile_id;
use tessera_core::time::{format_iso8601, parse_iso8601};
use tessera_store::{DeadLetterFilter, StoredAttempt, StoredRecord};

/// The most dead letters one replay request takes.
const MAX_REPLAY: usize = 100_000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    workspace: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// Only attempts of this record.
    key: Option<String>,
}

fn bad_cursor() -> ApiError {
    ApiError::bad_request(
        "invalid_cursor",
        "`cursor` must be a cursor returned by an earlier page",
    )
}

fn cursor(c: Option<&str>) -> Result<Option<i64>, ApiError> {
    c.map(|c| c.parse::<i64>().map_err(|_| bad_cursor()))
        .transpose()
}

fn attempt_json(a: &StoredAttempt) -> Value {
    json!({
        "idempotency_key": a.key,
        "attempt": a.attempt,
        "at": format_iso8601(a.at),
        "status": a.status,
        "outcome": a.outcome,
        "latency_ms": a.latency_ms,
        "response": a.response,
        "error": a.error,
    })
}

fn record_json(r: &StoredRecord) -> Value {
    let payload: Value =
        serde_json::from_str(&r.payload).unwrap_or(Value::String(r.payload.clone()));
    json!({
        "id": r.key,
        "idempotency_key": r.key,
        "kind": r.kind.as_str(),
        "position": r.position,
        "profile_id": r.profile.map(profile_id),
        "created_at": format_iso8601(r.at),
        "status": r.status,
        "attempts": r.attempts,
        "first_attempt_at": r.first_attempt_at.map(format_iso8601),
        "last_attempt_at": r.last_attempt_at.map(format_iso8601),
        "last_status": r.last_status,
        "last_error": r.last_error,
        "payload": payload,
    })
}

/// The destination must exist in the workspace (so ids of other workspaces answer 404).
fn ensure_destination(st: &SharedState, ws: &str, id: &str) -> Result<(), ApiError> {
    let known = st
        .store
        .definitions(ws)?
        .iter()
        .any(|d| d.id == id && d.kind == crate::activation_defs::KIND_DESTINATION);
    match known {
        true => Ok(()),
        false => Err(ApiError::not_found(&format!("destination {id}"))),
    }
}

/// `GET /api/v1/destinations/{id}/deliveries`: attempts, newest first.
pub async fn deliveries(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    ensure_destination(&st, &state.workspace, &id)?;
    let limit = page_size(q.limit);
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.split_once('-')
                .and_then(|(at, seq)| Some((at.parse().ok()?, seq.parse().ok()?)))
                .ok_or_else(bad_cursor)?,
        ),
    };
    let db = state.db();
    let rows =
        blocking(move || Ok(db.delivery_attempts(&id, q.key.as_deref(), before, limit)?)).await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| format!("{}-{}", r.at, r.seq)))
        .flatten();
    Ok(Json(json!({
        "deliveries": rows.iter().map(attempt_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// `GET /api/v1/destinations/{id}/dead-letters`: oldest first.
pub async fn dead_letters(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    ensure_destination(&st, &state.workspace, &id)?;
    let limit = page_size(q.limit);
    let after = cursor(q.cursor.as_deref())?.unwrap_or(0);
    let db = state.db();
    let rows = blocking(move || Ok(db.dead_letters(&id, after, limit)?)).await?;
    let next = (rows.len() == limit).then(|| rows.last().map(|r| r.seq.to_string()));
    Ok(Json(json!({
        "dead_letters": rows.iter().map(record_json).collect::<Vec<_>>(),
        "next_cursor": next.flatten(),
    })))
}

/// `GET /api/v1/destinations/{id}/dead-letters/{key}` (any record of the outbox, by its
/// idempotency key), with its attempts.
pub async fn dead_letter(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    ensure_destination(&st, &state.workspace, &id)?;
    let db = state.db();
    let (record, attempts) = blocking(move || {
        let r = db.outbox_record(&id, &key)?;
        let a = db.delivery_attempts(&id, Some(&key), None, 100)?;
        Ok((r, a))
    })
    .await?;
    let record = record.ok_or_else(|| ApiError::not_found("record"))?;
    let mut v = record_json(&record);
    v["deliveries"] = attempts.iter().map(attempt_json).collect();
    Ok(Json(v))
}

/// The body of a replay: nothing (every dead letter), `ids`, or a filter.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    ids: Option<Vec<String>>,
    kind: Option<String>,
    status: Option<u16>,
    since: Option<String>,
    until: Option<String>,
}

fn replay_filter(body: &[u8]) -> Result<DeadLetterFilter, ApiError> {
    let b: ReplayBody = match body.iter().all(u8::is_ascii_whitespace) {
        true => ReplayBody::default(),
        false => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("the body is not a valid replay request: {e}"),
            )
        })?,
    };
    let time = |s: Option<String>, name: &str| {
        s.map(|s| {
            parse_iso8601(&s).map_err(|_| {
                ApiError::bad_request(
                    "invalid_field",
                    format!("`{name}` must be an ISO-8601 time"),
                )
            })
        })
        .transpose()
    };
    Ok(DeadLetterFilter {
        keys: b.ids,
        kind: b
            .kind
            .map(|k| {
                RecordKind::parse(&k).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_field",
                        "`kind` must be event, audience_entered, audience_exited or journey",
                    )
                })
            })
            .transpose()?,
        status: b.status,
        since: time(b.since, "since")?,
        until: time(b.until, "until")?,
    })
}

/// `POST /api/v1/destinations/{id}/dead-letters/replay`: sends the chosen dead letters again,
/// with a new retry window; answers how many.
pub async fn replay(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    ensure_destination(&st, &state.workspace, &id)?;
    let filter = replay_filter(&body)?;
    let db = state.db();
    let dest = id.clone();
    let mut records =
        blocking(move || Ok(db.dead_letters_matching(&dest, &filter, MAX_REPLAY)?)).await?;
    for r in &mut records {
        r.first_attempt_at = None;
    }
    let n = records.len();
    state.record_requeued(
        records
            .iter()
            .map(|r| (id.clone(), r.key.clone()))
            .collect(),
    );
    st.appliers.delivery.requeue(&state.workspace, &id, records);
    tracing::info!(destination = %id, records = n, "dead letters replayed");
    Ok(Json(json!({ "replayed": n })))
}
