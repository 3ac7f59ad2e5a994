//! Admin API for data governance: the workspace's tracking plan (`/api/v1/tracking-plan`), the
//! violations ingest found (counts per day, and the newest samples for the debugger), and the
//! PII policy (`/api/v1/privacy/pii-policy`).
//!
//! A plan and a policy are one document each per workspace, stored with every version in the
//! `definitions` table under a fixed id (a deletion is a version too). A change is checked
//! whole, stored, and then ingest's cached copy is dropped, so the next message uses it.
//! Answers are the document in its canonical form plus `version`, `created_at` and
//! `updated_at`; a PUT ignores those fields, so an answer can be edited and sent back.

use crate::auth::{authenticate, resolve_workspace, SCOPE_READ};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::governance::{
    check_declared, day_of, KIND_PLAN, KIND_POLICY, PLAN_ID, POLICY_ID, RECENT,
};
use crate::state::{now_millis, SharedState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use tessera_core::privacy::pii::PiiPolicy;
use tessera_core::privacy::plan::TrackingPlan;
use tessera_core::time::{format_iso8601, parse_iso8601};
use tessera_store::{Definition, Workspace};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    workspace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    workspace: Option<String>,
    since: Option<String>,
    until: Option<String>,
    source: Option<String>,
}

/// The longest range a report covers, in days.
const MAX_REPORT_DAYS: i64 = 400;
/// The range a report covers when `since` is not given, in days.
const DEFAULT_REPORT_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

/// Answer fields that are not part of the document; a PUT drops them.
const READ_ONLY: [&str; 5] = [
    "version",
    "created_at",
    "updated_at",
    "is_default",
    "workspace",
];

/// A versioned per-workspace document (the tracking plan, the PII policy, and retention
/// settings, served elsewhere), stored in `definitions` under a fixed id.
pub(crate) struct Doc {
    pub kind: &'static str,
    pub id: &'static str,
    pub noun: &'static str,
    /// Its field in a version listing.
    pub key: &'static str,
    /// Reads a request body into the canonical form, or says what is wrong with it.
    pub canonical: fn(&Value) -> Result<Value, ApiError>,
}

const PLAN: Doc = Doc {
    kind: KIND_PLAN,
    id: PLAN_ID,
    noun: "tracking plan",
    key: "plan",
    canonical: plan_canonical,
};

const POLICY: Doc = Doc {
    kind: KIND_POLICY,
    id: POLICY_ID,
    noun: "PII policy",
    key: "policy",
    canonical: policy_canonical,
};

fn plan_canonical(v: &Value) -> Result<Value, ApiError> {
    let plan = TrackingPlan::from_json(v)?;
    check_declared(&plan)?;
    Ok(plan.to_json())
}

fn policy_canonical(v: &Value) -> Result<Value, ApiError> {
    Ok(PiiPolicy::from_json(v)?.to_json())
}

/// The workspace of a request, if its token may read (or, for `admin`, change) it.
fn workspace(
    st: &SharedState,
    headers: &HeaderMap,
    asked: Option<&str>,
    admin: bool,
) -> Result<Workspace, ApiError> {
    let caller = authenticate(st, headers)?;
    if admin {
        caller.require_admin()?;
    } else if !caller.has_scope(SCOPE_READ) {
        return Err(ApiError::forbidden(
            "this token may not read this workspace",
        ));
    }
    resolve_workspace(st, &caller, headers, asked)
}

/// A request body: a JSON object, without the answer's read-only fields.
pub(crate) fn read_body(body: &[u8]) -> Result<Value, ApiError> {
    crate::extract::json_object(body, &READ_ONLY)
}

/// A stored version as answered: the document with its version and times.
fn doc_json(d: &Definition) -> Value {
    let mut v = match serde_json::from_str::<Value>(&d.definition) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    v.insert("version".into(), json!(d.version));
    v.insert("created_at".into(), json!(format_iso8601(d.created_at)));
    v.insert("updated_at".into(), json!(format_iso8601(d.updated_at)));
    Value::Object(v)
}

/// The current (not deleted) version of a document.
pub(crate) fn current(
    st: &SharedState,
    ws: &str,
    doc: &Doc,
) -> Result<Option<Definition>, ApiError> {
    Ok(st
        .store
        .definitions(ws)?
        .into_iter()
        .find(|d| d.kind == doc.kind && d.id == doc.id))
}

/// Stores the next version of a document (`text` none for a deletion) and drops ingest's
/// cached rules. `None` when deleting a document that does not exist.
pub(crate) async fn save(
    st: &SharedState,
    ws: &str,
    doc: &Doc,
    text: Option<String>,
) -> Result<Option<Definition>, ApiError> {
    let _serial = st.governance.update.lock().await;
    let versions = st.store.definition_versions(ws, doc.id)?;
    let last = versions.iter().rev().find(|d| d.kind == doc.kind);
    let live = last.filter(|d| !d.deleted);
    if text.is_none() && live.is_none() {
        return Ok(None);
    }
    let now = now_millis();
    let d = Definition {
        workspace_id: ws.to_string(),
        id: doc.id.to_string(),
        kind: doc.kind.to_string(),
        name: doc.noun.to_string(),
        version: last.map_or(1, |d| d.version + 1),
        deleted: text.is_none(),
        // A deletion keeps the text it deletes, as other definitions' deletions do.
        definition: text.unwrap_or_else(|| live.map(|d| d.definition.clone()).unwrap_or_default()),
        created_at: live.map_or(now, |d| d.created_at),
        updated_at: now,
    };
    st.store.save_definition(&d)?;
    st.governance.forget(ws);
    tracing::info!(
        workspace = ws,
        kind = doc.kind,
        version = d.version,
        deleted = d.deleted,
        "governance document changed"
    );
    Ok(Some(d))
}

async fn put(
    st: SharedState,
    headers: HeaderMap,
    q: WsQuery,
    body: &[u8],
    doc: &Doc,
) -> Result<Json<Value>, ApiError> {
    let ws = workspace(&st, &headers, q.workspace.as_deref(), true)?;
    let canonical = (doc.canonical)(&read_body(body)?)?;
    let d = save(&st, &ws.id, doc, Some(canonical.to_string())).await?;
    Ok(Json(d.as_ref().map(doc_json).unwrap_or(Value::Null)))
}

async fn delete(
    st: SharedState,
    headers: HeaderMap,
    q: WsQuery,
    doc: &Doc,
) -> Result<StatusCode, ApiError> {
    let ws = workspace(&st, &headers, q.workspace.as_deref(), true)?;
    match save(&st, &ws.id, doc, None).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found(doc.noun)),
    }
}

fn versions(
    st: SharedState,
    headers: HeaderMap,
    q: WsQuery,
    doc: &Doc,
) -> Result<Json<Value>, ApiError> {
    let ws = workspace(&st, &headers, q.workspace.as_deref(), false)?;
    let items: Vec<Value> = st
        .store
        .definition_versions(&ws.id, doc.id)?
        .iter()
        .filter(|d| d.kind == doc.kind)
        .map(|d| {
            let document = (!d.deleted)
                .then(|| serde_json::from_str::<Value>(&d.definition).ok())
                .flatten();
            json!({"version": d.version, "deleted": d.deleted,
                   "updated_at": format_iso8601(d.updated_at), doc.key: document})
        })
        .collect();
    Ok(Json(json!({ "versions": items })))
}

/// `GET /api/v1/tracking-plan`.
pub async fn get_plan(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let ws = workspace(&st, &headers, q.workspace.as_deref(), false)?;
    let d = current(&st, &ws.id, &PLAN)?.ok_or_else(|| ApiError::not_found(PLAN.noun))?;
    Ok(Json(doc_json(&d)))
}

/// `PUT /api/v1/tracking-plan`: a new version.
pub async fn put_plan(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    put(st, headers, q, &body, &PLAN).await
}

/// `DELETE /api/v1/tracking-plan`: no plan from now on (a version marked deleted).
pub async fn delete_plan(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<StatusCode, ApiError> {
    delete(st, headers, q, &PLAN).await
}

/// `GET /api/v1/tracking-plan/versions`: every version, oldest first.
pub async fn plan_versions(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    versions(st, headers, q, &PLAN)
}

/// `GET /api/v1/privacy/pii-policy`: the stored policy, or the defaults (`is_default`).
pub async fn get_policy(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let ws = workspace(&st, &headers, q.workspace.as_deref(), false)?;
    let mut v = match current(&st, &ws.id, &POLICY)? {
        Some(d) => doc_json(&d),
        None => {
            let mut v = PiiPolicy::default().to_json();
            v["version"] = Value::Null;
            v
        }
    };
    v["is_default"] = json!(v["version"].is_null());
    Ok(Json(v))
}

/// `PUT /api/v1/privacy/pii-policy`: a new version.
pub async fn put_policy(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut answer = put(st, headers, q, &body, &POLICY).await?;
    answer.0["is_default"] = json!(false);
    Ok(answer)
}

/// `DELETE /api/v1/privacy/pii-policy`: back to the defaults.
pub async fn delete_policy(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<StatusCode, ApiError> {
    delete(st, headers, q, &POLICY).await
}

/// `GET /api/v1/privacy/pii-policy/versions`.
pub async fn policy_versions(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    versions(st, headers, q, &POLICY)
}

fn time_param(v: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    v.map(|s| {
        parse_iso8601(s)
            .map_err(|e| ApiError::bad_request("invalid_value", format!("`{name}`: {e}")))
    })
    .transpose()
}

/// One (event, path, rule) of the report, added up over its days and sources.
#[derive(Default)]
struct Line {
    count: u64,
    days: BTreeMap<i64, u64>,
    sources: BTreeMap<String, u64>,
}

/// `GET /api/v1/tracking-plan/violations?since=&until=&source=`: violations counted per event,
/// field path and rule over the days the range touches (by `receivedAt`, UTC), most frequent
/// first, each with its per-day series and its sources. The range defaults to the last 30
/// days.
pub async fn violations(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<Value>, ApiError> {
    let ws = workspace(&st, &headers, q.workspace.as_deref(), false)?;
    let until = time_param(q.until.as_deref(), "until")?.unwrap_or_else(now_millis);
    let since =
        time_param(q.since.as_deref(), "since")?.unwrap_or(until - DEFAULT_REPORT_DAYS * DAY_MS);
    if since >= until {
        return Err(ApiError::bad_request(
            "invalid_value",
            "`since` must be before `until`",
        ));
    }
    // Counts are per day: every day the range touches is in, the one `until` starts excluded.
    let (first, end) = (day_of(since), day_of(until - 1) + 1);
    if end - first > MAX_REPORT_DAYS {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("a report covers at most {MAX_REPORT_DAYS} days"),
        ));
    }
    let mut lines: BTreeMap<(String, String, String), Line> = BTreeMap::new();
    let mut total = 0u64;
    for c in st.store.violation_counts(&ws.id, first, end)? {
        if q.source.as_ref().is_some_and(|s| *s != c.source_id) {
            continue;
        }
        let line = lines.entry((c.event, c.path, c.rule)).or_default();
        line.count += c.count;
        *line.days.entry(c.day).or_default() += c.count;
        *line.sources.entry(c.source_id).or_default() += c.count;
        total += c.count;
    }
    let mut lines: Vec<_> = lines.into_iter().collect();
    // Most frequent first; the key breaks ties so the order is stable.
    lines.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    let items: Vec<Value> = lines
        .into_iter()
        .map(|((event, path, rule), l)| {
            let days: Vec<Value> = l
                .days
                .iter()
                .map(|(d, n)| json!({"day": &format_iso8601(d * DAY_MS)[..10], "count": n}))
                .collect();
            json!({"event": event, "path": path, "rule": rule, "count": l.count,
                   "sources": l.sources, "days": days})
        })
        .collect();
    Ok(Json(json!({
        "since": format_iso8601(since),
        "until": format_iso8601(until),
        "total": total,
        "violations": items,
    })))
}

/// `GET /api/v1/tracking-plan/violations/recent`: the newest violations this node recorded
/// (at most 100 per workspace, newest first), for the debugger. Values are never kept.
pub async fn recent(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let ws = workspace(&st, &headers, q.workspace.as_deref(), false)?;
    let items: Vec<Value> = st
        .governance
        .recent(&ws.id)
        .into_iter()
        .map(|s| {
            json!({"event": s.event, "path": s.path, "rule": s.rule, "message": s.message,
                   "source": s.source_id, "messageId": s.message_id,
                   "received_at": format_iso8601(s.received_at), "blocked": s.blocked})
        })
        .collect();
    Ok(Json(json!({ "limit": RECENT, "violations": items })))
}
