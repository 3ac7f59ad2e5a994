//! Admin API for data-subject requests: `POST /api/v1/privacy/requests` (`delete`,
//! `suppress`, `suppress_with_delete`, `unsuppress`, `export` by any identifier) answers at
//! once with the request's id; it is carried out in the background and its status (`pending`,
//! `running`, `done`, `failed`) and outcome, an export's document included, are read with
//! `GET /api/v1/privacy/requests/{id}`.

use crate::destinations_api::{read_json, WsQuery};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::profiles_api::readable_state;
use crate::state::{now_millis, SharedState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use tessera_core::privacy::pii::{detect, mask, PiiClass};
use tessera_core::time::format_iso8601;
use tessera_store::PrivacyRequest;

const KINDS: [&str; 5] = [
    "delete",
    "suppress",
    "suppress_with_delete",
    "unsuppress",
    "export",
];

/// Shows an identifier's type and a masked value (as the PII policy masks its class; all but
/// the last four characters otherwise): enough to recognise the request, not the person.
fn hint(kind: &str, value: &str) -> String {
    // National ids mask as "all but the last four", the right default for any other value.
    let class = detect(value).unwrap_or(PiiClass::NationalId);
    format!("{kind}:{}", mask(value, class))
}

fn request_json(r: &PrivacyRequest) -> Value {
    let mut v = json!({
        "id": r.id,
        "type": r.kind,
        "identifier": r.identifier_hint,
        "status": r.status,
        "created_at": format_iso8601(r.created_at),
        "updated_at": format_iso8601(r.updated_at),
    });
    if let Some(result) = r.result.as_deref() {
        let result: Value = serde_json::from_str(result).unwrap_or(Value::Null);
        match (r.kind.as_str(), r.status.as_str()) {
            ("export", "done") => v["document"] = result,
            (_, "failed") => v["error"] = result["error"].clone(),
            _ => v["result"] = result,
        }
    }
    v
}

/// `POST /api/v1/privacy/requests`.
pub async fn create(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let body = read_json(&body)?;
    crate::extract::only_fields(&body, &["type", "identifier"])?;
    let kind = body["type"]
        .as_str()
        .filter(|k| KINDS.contains(k))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_field",
                format!("`type` must be one of {}", KINDS.join(", ")),
            )
        })?;
    let identifier = body["identifier"].as_str().ok_or_else(|| {
        ApiError::bad_request(
            "invalid_field",
            "`identifier` must be a string `type:value`, e.g. `email:ann@example.com`",
        )
    })?;
    let (id_kind, value) = identifier
        .split_once(':')
        .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_identifier",
                "`identifier` must be `type:value`, e.g. `email:ann@example.com`",
            )
        })?;
    let id_kind = id_kind.trim();
    {
        let engine = state.engine.read().expect("engine poisoned");
        if !engine.knows_type(id_kind) {
            return Err(ApiError::bad_request(
                "unknown_identifier_type",
                format!("`{id_kind}` is not an identifier type of this workspace"),
            ));
        }
    }
    let now = now_millis();
    let req = PrivacyRequest {
        id: crate::ids::random_id("dsr_", 16),
        workspace_id: state.workspace.clone(),
        kind: kind.to_string(),
        identifier_hint: hint(id_kind, value),
        identifier: Some(format!("{id_kind}:{value}")),
        status: "pending".into(),
        created_at: now,
        updated_at: now,
        result: None,
    };
    st.store.save_privacy_request(&req)?;
    tracing::info!(request = %req.id, kind, "privacy request received");
    let answer = request_json(&req);
    let runner = st.clone();
    tokio::task::spawn_blocking(move || crate::privacy_requests::run(&runner, req));
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// `GET /api/v1/privacy/requests/{id}`.
pub async fn get(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let r = st
        .store
        .privacy_request(&state.workspace, &id)?
        .ok_or_else(|| ApiError::not_found(&format!("privacy request {id}")))?;
    Ok(Json(request_json(&r)))
}

/// `GET /api/v1/privacy/requests`: the newest first (without export documents).
pub async fn list(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let items: Vec<Value> = st
        .store
        .privacy_requests(&state.workspace, 1000)?
        .iter()
        .map(|r| {
            let mut v = request_json(r);
            if let Value::Object(m) = &mut v {
                m.remove("document");
            }
            v
        })
        .collect();
    Ok(Json(json!({ "requests": items })))
}

/// Carries out the requests a stopped process left pending or running.
pub fn resume_unfinished(st: &SharedState) {
    match st.store.unfinished_privacy_requests() {
        Ok(reqs) => {
            for req in reqs {
                let runner = st.clone();
                std::thread::spawn(move || crate::privacy_requests::run(&runner, req));
            }
        }
        Err(e) => tracing::error!(error = %e, "unfinished privacy requests could not be read"),
    }
}
