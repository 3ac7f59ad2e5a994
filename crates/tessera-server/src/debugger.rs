//! The event debugger: `GET /api/v1/events` lists stored events newest first with filters and
//! cursor paging; `GET /api/v1/events/stream` tails new events live as Server-Sent Events.

use crate::auth::{authenticate, resolve_workspace, SCOPE_READ};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::paging::{event_json, page_size, position_cursor};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use tessera_core::time::parse_iso8601;
use tessera_store::EventFilter;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    workspace: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    event: Option<String>,
    user_id: Option<String>,
    anonymous_id: Option<String>,
    message_id: Option<String>,
    source: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

fn time_param(v: &Option<String>, name: &str) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            parse_iso8601(s)
                .map_err(|e| ApiError::bad_request("invalid_value", format!("`{name}`: {e}")))
        })
        .transpose()
}

impl EventsQuery {
    fn filter(&self) -> Result<EventFilter, ApiError> {
        let before = position_cursor(self.cursor.as_deref())?;
        Ok(EventFilter {
            kind: self.kind.clone(),
            event: self.event.clone(),
            user_id: self.user_id.clone(),
            anonymous_id: self.anonymous_id.clone(),
            message_id: self.message_id.clone(),
            source_id: self.source.clone(),
            since: time_param(&self.since, "since")?,
            until: time_param(&self.until, "until")?,
            before,
            after: None,
        })
    }
}

/// The workspace whose events the caller asked for, if its token may read them.
fn readable_workspace(
    st: &SharedState,
    headers: &HeaderMap,
    q: &EventsQuery,
) -> Result<tessera_store::Workspace, ApiError> {
    let caller = authenticate(st, headers)?;
    if !caller.has_scope(SCOPE_READ) {
        return Err(ApiError::forbidden("this token may not read events"));
    }
    resolve_workspace(st, &caller, headers, q.workspace.as_deref())
}

/// `GET /api/v1/events`.
pub async fn list(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let ws = readable_workspace(&st, &headers, &q)?;
    let limit = page_size(q.limit);
    let filter = q.filter()?;
    let store = st.store.clone();
    let rows = tokio::task::spawn_blocking(move || store.list_events(&ws.id, &filter, limit))
        .await
        .map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "query task failed",
            )
        })??;
    let next_cursor = (rows.len() == limit)
        .then(|| rows.last().map(|e| e.position.to_string()))
        .flatten();
    let events = rows.iter().map(event_json).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"events": events, "next_cursor": next_cursor})).into_response())
}

/// `GET /api/v1/events/stream`: the same filters, new events as they are stored.
pub async fn stream(
    State(st): State<SharedState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let ws = readable_workspace(&st, &headers, &q)?;
    let mut filter = q.filter()?;
    filter.before = None;
    filter.after = Some(st.store.last_position()?);
    let store = st.store.clone();
    let events = futures_util::stream::unfold(
        (store, ws.id, filter),
        |(store, ws, mut filter)| async move {
            loop {
                let (s, w, f) = (store.clone(), ws.clone(), filter.clone());
                let rows = tokio::task::spawn_blocking(move || s.list_events(&w, &f, 200))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                if rows.is_empty() {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                filter.after = rows.first().map(|e| e.position);
                // Rows come newest first; send them in log order.
                let batch: Vec<Result<Event, std::convert::Infallible>> = rows
                    .iter()
                    .rev()
                    .filter_map(|e| event_json(e).ok().map(|v| (e.position, v)))
                    .map(|(pos, v)| Ok(Event::default().id(pos.to_string()).data(v.to_string())))
                    .collect();
                return Some((futures_util::stream::iter(batch), (store, ws, filter)));
            }
        },
    );
    use futures_util::StreamExt;
    Ok(Sse::new(events.flatten())
        .keep_alive(KeepAlive::default())
        .into_response())
}
