//! Reading request bodies the way SDKs send them: any `Content-Type` (browsers send
//! `text/plain`, one Node SDK `application/x-www-form-urlencoded`), optionally gzip-compressed,
//! always within a size limit that also holds after decompression (no gzip bombs).

use crate::error::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use futures_util::StreamExt;
use std::io::Read;

/// Segment's limit on a batch request body.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;

fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the {what} body is larger than the limit of {limit} bytes"),
    )
}

/// How much of an oversized body is read and thrown away before answering 413. Closing a
/// connection with unread data makes the kernel send a reset, which can destroy the 413 before
/// the client reads it; draining a bounded amount lets the client see why it was refused.
const DRAIN_CAP: usize = 8 * 1024 * 1024;

/// Reads the body, refusing more than `limit` bytes on the wire or after decompression.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAIN_CAP) {
        return Err(too_large(limit, "request"));
    }
    let mut stream = body.into_data_stream();
    let mut raw = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "invalid_body",
                format!("the request body could not be read: {e}"),
            )
        })?;
        seen += chunk.len();
        if seen > DRAIN_CAP {
            break;
        }
        if seen <= limit {
            raw.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        return Err(too_large(limit, "request"));
    }
    let raw = Bytes::from(raw);
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let gzip_magic = raw.starts_with(&[0x1f, 0x8b]);
    match encoding.as_deref() {
        Some("gzip") | Some("x-gzip") => gunzip(&raw, limit),
        None | Some("identity") | Some("") if gzip_magic => gunzip(&raw, limit),
        None | Some("identity") | Some("") => Ok(raw),
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("Content-Encoding `{other}` is not supported; send gzip or no encoding"),
        )),
    }
}

fn gunzip(raw: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit + 1));
    flate2::read::MultiGzDecoder::new(raw)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ApiError::bad_request(
                "invalid_gzip",
                format!("the gzip body cannot be decoded: {e}"),
            )
        })?;
    if out.len() > limit {
        return Err(too_large(limit, "decompressed"));
    }
    Ok(Bytes::from(out))
}

/// Describes a JSON parse failure with its line and column.
pub fn json_error(e: &serde_json::Error) -> ApiError {
    if !e.is_data() {
        return ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"));
    }
    let text = e.to_string();
    let code = if text.starts_with("unknown field") {
        "unknown_field"
    } else if text.starts_with("missing field") {
        "missing_field"
    } else {
        "wrong_type"
    };
    ApiError::bad_request(
        code,
        format!("the body does not have the expected shape: {e}"),
    )
}
