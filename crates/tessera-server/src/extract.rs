//! Request extractors whose rejections use Tessera's error body, so that a bad query string or
//! path gets `{"code","message"}` like every other error instead of axum's plain text.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// `Query<T>` with a 400 `invalid_query` JSON error.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError::bad_request("invalid_query", e.body_text())),
        }
    }
}

/// `Path<T>` with a 400 `invalid_path` JSON error (e.g. a bad percent-encoding).
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(ApiError::bad_request("invalid_path", e.body_text())),
        }
    }
}

/// A JSON object request body, without the `ignored` fields (the workspace, or read-only
/// fields of an earlier answer sent back); 400 `invalid_json` for anything else.
pub fn json_object(body: &[u8], ignored: &[&str]) -> Result<serde_json::Value, ApiError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    match v {
        serde_json::Value::Object(mut m) => {
            for k in ignored {
                m.remove(*k);
            }
            Ok(serde_json::Value::Object(m))
        }
        _ => Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        )),
    }
}

/// 400 `invalid_field` naming the first field of `v` that is not `allowed`: a typo must not
/// silently do nothing.
pub fn only_fields(v: &serde_json::Value, allowed: &[&str]) -> Result<(), ApiError> {
    match v
        .as_object()
        .and_then(|m| m.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        Some(k) => Err(ApiError::bad_request(
            "invalid_field",
            format!(
                "unknown field `{k}`; expected {}",
                allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        None => Ok(()),
    }
}
