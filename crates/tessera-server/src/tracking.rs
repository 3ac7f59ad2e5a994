//! The Tracking API, compatible with Segment's: `POST /v1/{identify,track,page,screen,group,
//! alias,batch}`, the browser short forms `/v1/{i,t,p,s,g,a,b}`, `/v1/import`, and the
//! `GET /v1/pixel/{type}?data=<base64 JSON>` form for e-mail opens.
//!
//! A request is answered only after its events are fsync'd in the log. In a batch, valid items
//! are stored and invalid ones are listed in the response with their index: rejecting the whole
//! batch would make SDKs (which drop a batch on any 4xx) lose the valid events with it. For the
//! same reason messages a tracking plan blocks are only counted in the answer (`blocked`).

use crate::body::{json_error, read_body, MAX_BATCH_BYTES};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::ids::MessageIds;
use crate::state::{now_millis, AppState, SharedState};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering::Relaxed;
use tessera_core::message::parse_sent_at;
use tessera_core::{normalize_value, IngestContext, MessageError, MessageType, NormalizedEvent};
use tessera_store::{AppendBatch, AppendOutcome, Source, StoreError};

/// Segment's limit on the number of messages in one batch.
pub const MAX_BATCH_EVENTS: usize = 2_500;

/// `POST /v1/{endpoint}`: one message, or a batch for `batch`, `b` and `import`.
pub async fn post(
    State(state): State<SharedState>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if matches!(endpoint.as_str(), "batch" | "b" | "import") {
        let bytes = read_body(&headers, body, MAX_BATCH_BYTES).await;
        let bytes = state.count_rejection(bytes)?;
        return ingest_batch(&state, &headers, &bytes).await;
    }
    let kind = MessageType::from_endpoint(&endpoint)
        .ok_or_else(|| ApiError::not_found(&format!("endpoint /v1/{endpoint}")))?;
    let bytes = read_body(&headers, body, MAX_BATCH_BYTES).await;
    let bytes = state.count_rejection(bytes)?;
    ingest_single(&state, &headers, &bytes, kind).await
}

#[derive(Deserialize)]
pub struct PixelQuery {
    data: Option<String>,
}

/// A transparent 1×1 GIF, the answer of the pixel form.
const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `GET /v1/pixel/{type}?data=<base64 JSON message with writeKey>`: for e-mail opens, where
/// only an image URL can be embedded.
pub async fn pixel(
    State(state): State<SharedState>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PixelQuery>,
) -> Result<Response, ApiError> {
    let kind = MessageType::from_endpoint(&endpoint)
        .ok_or_else(|| ApiError::not_found(&format!("endpoint /v1/pixel/{endpoint}")))?;
    let data = q.data.ok_or_else(|| {
        ApiError::bad_request("missing_field", "query parameter `data` is required")
    })?;
    let engine = base64::engine::general_purpose::STANDARD;
    let url_engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let json = engine
        .decode(data.trim())
        .or_else(|_| url_engine.decode(data.trim().trim_end_matches('=')))
        .map_err(|_| ApiError::bad_request("invalid_value", "`data` is not base64"))?;
    ingest_single(&state, &headers, &json, kind).await?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"))],
        PIXEL_GIF,
    )
        .into_response())
}

impl AppState {
    /// Counts a request-level refusal in the rejection metrics and passes the result on.
    fn count_rejection<T>(&self, r: Result<T, ApiError>) -> Result<T, ApiError> {
        if let Err(e) = &r {
            self.metrics.reject(e.code, 1);
        }
        r
    }

    /// The source of a write key, or 401.
    fn authenticate_source(&self, key: Option<String>) -> Result<Source, ApiError> {
        let key = key.ok_or_else(|| {
            ApiError::unauthorized(
                "missing_write_key",
                "send the write key as the Basic auth user name or as `writeKey` in the body",
            )
        })?;
        let source = self
            .source_for_write_key(&key)?
            .ok_or_else(|| ApiError::unauthorized("unknown_write_key", "unknown write key"))?;
        if !source.enabled {
            return Err(ApiError::unauthorized(
                "source_disabled",
                format!("source {} is disabled", source.id),
            ));
        }
        Ok(source)
    }
}

async fn ingest_single(
    state: &AppState,
    headers: &HeaderMap,
    bytes: &[u8],
    kind: MessageType,
) -> Result<Response, ApiError> {
    let parsed = serde_json::from_slice::<Value>(bytes).map_err(|e| json_error(&e));
    let value = state.count_rejection(parsed)?;
    let key = crate::auth::basic_auth_user(headers).or_else(|| body_write_key(&value));
    let source = state.count_rejection(state.authenticate_source(key))?;
    let ctx = IngestContext {
        received_at: now_millis(),
        endpoint_type: Some(kind),
        ..Default::default()
    };
    let mut ids = MessageIds::new();
    let event = normalize_value(value, bytes.len(), &ctx, || ids.next_id()).map_err(|e| {
        state.metrics.reject(e.code(), 1);
        ApiError::from(e)
    })?;
    let appended = append(state, &source, vec![event]).await?;
    if appended.blocked > 0 {
        // Still a success: an SDK would retry an error, and the message would be blocked again.
        return Ok(Json(json!({"success": true, "blocked": appended.blocked})).into_response());
    }
    Ok(Json(json!({"success": true})).into_response())
}

/// The outer object of a batch request; unknown fields are ignored.
#[derive(Deserialize)]
struct BatchEnvelope<'a> {
    #[serde(borrow)]
    batch: Option<Vec<&'a RawValue>>,
    context: Option<Value>,
    integrations: Option<Value>,
    #[serde(rename = "sentAt")]
    sent_at: Option<Value>,
    #[serde(rename = "writeKey")]
    write_key: Option<Value>,
}

async fn ingest_batch(
    state: &AppState,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let envelope = state.count_rejection(parse_envelope(bytes))?;
    let items = envelope.batch.unwrap_or_default();
    if items.len() > MAX_BATCH_EVENTS {
        return state.count_rejection(Err(ApiError::bad_request(
            "too_many_events",
            format!(
                "the batch has {} messages; the limit is {MAX_BATCH_EVENTS}",
                items.len()
            ),
        )));
    }
    let key = crate::auth::basic_auth_user(headers)
        .or_else(|| envelope.write_key.as_ref().and_then(as_key))
        .or_else(|| {
            items.first().and_then(|raw| {
                serde_json::from_str::<Value>(raw.get())
                    .ok()
                    .as_ref()
                    .and_then(body_write_key)
            })
        });
    let source = state.count_rejection(state.authenticate_source(key))?;
    let batch_level = |v: &Option<Value>, field: &'static str| match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(ApiError::from(MessageError::WrongType {
            field,
            expected: "an object",
        })),
    };
    let context = state.count_rejection(batch_level(&envelope.context, "context"))?;
    let integrations =
        state.count_rejection(batch_level(&envelope.integrations, "integrations"))?;
    let sent_at =
        state.count_rejection(parse_sent_at(envelope.sent_at.as_ref()).map_err(ApiError::from))?;
    let ctx = IngestContext {
        received_at: now_millis(),
        batch_sent_at: sent_at,
        batch_context: context.as_ref(),
        batch_integrations: integrations.as_ref(),
        endpoint_type: None,
    };

    let mut ids = MessageIds::new();
    let mut events = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, raw) in items.iter().enumerate() {
        let result = serde_json::from_str::<Value>(raw.get())
            .map_err(|e| MessageError::InvalidJson(e.to_string()))
            .and_then(|v| normalize_value(v, raw.get().len(), &ctx, || ids.next_id()));
        match result {
            Ok(e) => events.push(e),
            Err(e) => {
                state.metrics.reject(e.code(), 1);
                rejected.push((index, e));
            }
        }
    }
    let rejected_json: Vec<Value> = rejected
        .iter()
        .map(|(i, e)| json!({"index": i, "code": e.code(), "message": e.to_string()}))
        .collect();
    if events.is_empty() && !rejected.is_empty() {
        let (index, first) = &rejected[0];
        let mut details = Map::new();
        details.insert("rejected".into(), Value::Array(rejected_json));
        return Err(ApiError::bad_request(
            first.code(),
            format!("batch item {index}: {first}; no item of the batch was valid"),
        )
        .with_details(details));
    }
    let accepted = events.len();
    let appended = append(state, &source, events).await?;
    let duplicates = appended
        .outcome
        .positions
        .iter()
        .filter(|p| p.is_none())
        .count();
    Ok(Json(json!({
        "success": true,
        "accepted": accepted - appended.blocked - duplicates,
        "duplicates": duplicates,
        "blocked": appended.blocked,
        "rejected": rejected_json,
    }))
    .into_response())
}

fn parse_envelope(bytes: &[u8]) -> Result<BatchEnvelope<'_>, ApiError> {
    let trimmed = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not UTF-8: {e}"))
    })?;
    if !trimmed.trim_start().starts_with('{') {
        return Err(ApiError::bad_request(
            "invalid_json",
            "a batch body must be a JSON object with a `batch` array",
        ));
    }
    serde_json::from_str(trimmed).map_err(|e| json_error(&e))
}

fn as_key(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn body_write_key(v: &Value) -> Option<String> {
    v.get("writeKey").and_then(as_key)
}

/// What became of a request's valid messages.
struct Appended {
    outcome: AppendOutcome,
    /// How many the tracking plan blocked (not in `outcome`).
    blocked: usize,
}

/// Screens normalised messages (suppressions, tracking plan, PII policy), appends the rest to
/// the log and waits for the group commit that makes them durable.
async fn append(
    state: &AppState,
    source: &Source,
    mut messages: Vec<(NormalizedEvent, Value)>,
) -> Result<Appended, ApiError> {
    // Events of suppressed people are dropped here, before the log, and counted.
    let suppressed = state.suppressions.filter(
        state.store.as_ref(),
        &state.appliers,
        &source.workspace_id,
        &source.id,
        &mut messages,
    )?;
    if suppressed > 0 {
        state.metrics.reject("suppressed", suppressed as u64);
    }
    // The tracking plan and the PII policy work on the messages' JSON values and write their
    // bodies, so that what reaches the log is what the workspace's governance lets through.
    let rules = state.governance.rules(state, &source.workspace_id)?;
    let (events, screened) = state
        .governance
        .screen(&rules, &state.metrics, source, messages);
    let blocked = screened.blocked;
    let n = events.len() as u64;
    if n == 0 {
        state
            .governance
            .record(&state.store, source, screened, &[])
            .await;
        return Ok(Appended {
            outcome: AppendOutcome { positions: vec![] },
            blocked,
        });
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let batch = AppendBatch {
        workspace_id: source.workspace_id.clone(),
        source_id: source.id.clone(),
        events,
    };
    let queued = state.store.append(
        batch,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    if let Err(e) = queued {
        state.metrics.reject(
            if matches!(e, StoreError::Overloaded) {
                "overloaded"
            } else {
                "unavailable"
            },
            n,
        );
        return Err(e.into());
    }
    let outcome = rx
        .await
        .map_err(|_| ApiError::from(StoreError::ShuttingDown))?
        .map_err(ApiError::from)?;
    let dup = outcome.positions.iter().filter(|p| p.is_none()).count() as u64;
    state.metrics.events_accepted.fetch_add(n - dup, Relaxed);
    state.metrics.events_duplicate.fetch_add(dup, Relaxed);
    // Violations are recorded only now: a failed append is retried by the client, and its
    // messages would be counted twice.
    state
        .governance
        .record(&state.store, source, screened, &outcome.positions)
        .await;
    Ok(Appended { outcome, blocked })
}

/// Answers CORS preflights and decorates responses for browsers: analytics.js sends
/// `Authorization`, which makes every cross-origin call preflighted.
pub async fn cors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let requested = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let mut resp = if req.method() == axum::http::Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        origin.unwrap_or(HeaderValue::from_static("*")),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        requested.unwrap_or(HeaderValue::from_static(
            "Authorization, Content-Type, Content-Encoding",
        )),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    resp
}
