//! What the read APIs share: page sizes, position cursors, and stored events as JSON (the
//! event debugger and the Profile API's timelines page the same log the same way).

use crate::error::ApiError;
use axum::http::StatusCode;
use serde_json::{json, Value};
use tessera_store::StoredEvent;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1_000;

/// The page size asked for, within 1..=1,000 (50 when not given).
pub fn page_size(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

pub fn bad_cursor() -> ApiError {
    ApiError::bad_request(
        "invalid_value",
        "`cursor` is not a cursor this API returned",
    )
}

/// A cursor that is a log position (the `next_cursor` of a previous page).
pub fn position_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| c.parse::<i64>().map_err(|_| bad_cursor()))
        .transpose()
}

/// A stored event as the read APIs answer it: its message plus `position` and `sourceId`.
pub fn event_json(e: &StoredEvent) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_str(&e.body).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "a stored event is not JSON",
        )
    })?;
    if let Value::Object(m) = &mut v {
        m.insert("position".into(), json!(e.position));
        m.insert("sourceId".into(), json!(e.source_id));
    }
    Ok(v)
}
