//! A profile's consent per category: `GET /v1/profiles/{ident}/consent` (current answers and
//! their history) and `PUT /v1/profiles/{ident}/consent` (`{"categoryPreferences": {...}}`, as
//! a consent tool or a support agent records it). Consent also comes with events, in
//! `context.consent.categoryPreferences`; either way it is kept as the profile's
//! `consent.<category>` traits, last answer by time winning, and destinations requiring a
//! category get nothing without it (a revocation holds back records not yet sent).

use crate::activation::{consent_event, TICK_SOURCE};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::profiles_api::{blocking, caught_up, readable_state, resolve};
use crate::state::{now_millis, SharedState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Map, Value};
use tessera_core::identity::{profile_id, CONSENT_PREFIX};
use tessera_core::time::format_iso8601;
use tessera_store::AppendBatch;

/// `GET /v1/profiles/{ident}/consent`.
pub async fn get(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(ident): ApiPath<String>,
    ApiQuery(q): ApiQuery<crate::destinations_api::WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), false)?;
    let key = resolve(&state, &ident)?;
    let current: Map<String, Value> = {
        let engine = state.engine.read().expect("engine poisoned");
        engine
            .profile(key)
            .map(|p| p.traits)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| {
                let category = t.key.strip_prefix(CONSENT_PREFIX)?.to_string();
                let v: Value = serde_json::from_str(&t.value).ok()?;
                Some((
                    category,
                    json!({"granted": v, "source": t.source, "at": format_iso8601(t.updated_at)}),
                ))
            })
            .collect()
    };
    // The history is read from the state file: first wait until it holds what was applied.
    caught_up(&state).await?;
    let db = state.db();
    let history: Vec<Value> = blocking(move || {
        Ok(db
            .history(key, None, usize::MAX)?
            .into_iter()
            .filter_map(|h| {
                let category = h.key.strip_prefix(CONSENT_PREFIX)?.to_string();
                Some(json!({"category": category,
                            "granted": serde_json::from_str::<Value>(&h.value).ok()?,
                            "source": h.source, "at": format_iso8601(h.ts)}))
            })
            .collect())
    })
    .await?;
    Ok(Json(
        json!({"id": profile_id(key), "consent": current, "history": history}),
    ))
}

/// `PUT /v1/profiles/{ident}/consent` with `{"categoryPreferences": {"marketing": false}}`:
/// answers once the answers are in the log (applied to the profile a moment later).
pub async fn put(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiPath(ident): ApiPath<String>,
    ApiQuery(q): ApiQuery<crate::destinations_api::WsQuery>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let state = readable_state(&st, &headers, q.workspace.as_deref(), true)?;
    let key = resolve(&state, &ident)?;
    let body = crate::destinations_api::read_json(&body)?;
    let prefs = body
        .get("categoryPreferences")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty() && body.as_object().is_some_and(|b| b.len() == 1))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_field",
                "the body must be {\"categoryPreferences\": {\"<category>\": true | false, ...}}",
            )
        })?;
    let now = now_millis();
    let request = crate::ids::random_id("", 12);
    let mut events = Vec::new();
    for (category, granted) in prefs {
        let Some(granted) = granted.as_bool().filter(|_| !category.trim().is_empty()) else {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("consent for `{category}` must be true or false"),
            ));
        };
        events.push(consent_event(key, category, granted, now, &request));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let batch = AppendBatch {
        workspace_id: state.workspace.clone(),
        source_id: TICK_SOURCE.to_string(),
        events,
    };
    st.store.append(
        batch,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )?;
    rx.await
        .map_err(|_| ApiError::from(tessera_store::StoreError::ShuttingDown))?
        .map_err(ApiError::from)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": profile_id(key), "categoryPreferences": prefs})),
    ))
}
