//! The one table that maps every error Tessera reports over HTTP to a status and a stable
//! `code`. Every error body is `{"code": "...", "message": "..."}` (a body without `code`
//! makes one SDK retry forever), plus optional detail fields.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tessera_core::activation::destination::ConfigError;
use tessera_core::activation::journey::JourneyError;
use tessera_core::audience::{LangError, Location};
use tessera_core::privacy::pii::PolicyError;
use tessera_core::privacy::plan::PlanError;
use tessera_core::segment::RegistryError;
use tessera_core::MessageError;
use tessera_store::StoreError;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra fields merged into the body (e.g. the rejected items of a batch).
    pub details: Option<serde_json::Map<String, Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn with_details(mut self, details: serde_json::Map<String, Value>) -> ApiError {
        self.details = Some(details);
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Overloaded => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "overloaded",
                "the event log cannot keep up; retry after the delay in Retry-After",
            ),
            StoreError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down; retry shortly",
            ),
            StoreError::Conflict(what) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} already exists"),
            ),
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "a storage error occurred; nothing was acknowledged",
                )
            }
        }
    }
}

impl From<LangError> for ApiError {
    fn from(e: LangError) -> ApiError {
        ApiError::from(vec![e])
    }
}

/// Definition errors: 400 with the first error in `message` and every error, with its line
/// and column (text) or JSON Pointer (JSON form), in `errors`.
impl From<Vec<LangError>> for ApiError {
    fn from(errors: Vec<LangError>) -> ApiError {
        let first = errors.first().cloned();
        let list: Vec<Value> = errors
            .iter()
            .map(|e| {
                let mut v = json!({"code": e.code(), "message": e.message()});
                match e.location() {
                    Location::Text { line, column } => {
                        v["line"] = json!(line);
                        v["column"] = json!(column);
                    }
                    Location::Json(pointer) => v["pointer"] = json!(pointer),
                }
                v
            })
            .collect();
        let (code, message) = match &first {
            Some(e) => (e.code(), e.to_string()),
            None => (
                "invalid_definition",
                "the definition is invalid".to_string(),
            ),
        };
        let mut details = serde_json::Map::new();
        if let Some(Value::Object(f)) = list.first() {
            for k in ["line", "column", "pointer"] {
                if let Some(v) = f.get(k) {
                    details.insert(k.to_string(), v.clone());
                }
            }
        }
        details.insert("errors".into(), Value::Array(list));
        ApiError::bad_request(code, message).with_details(details)
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        let status = match e {
            RegistryError::Invalid(_) => StatusCode::BAD_REQUEST,
            RegistryError::Cycle(_) | RegistryError::DuplicateName(_) => StatusCode::CONFLICT,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// A destination, journey, tracking plan or PII policy that cannot be used: 400 naming the
/// JSON Pointer of the field.
fn invalid_config(code: &'static str, pointer: &str, message: &str) -> ApiError {
    let mut details = serde_json::Map::new();
    details.insert("pointer".into(), json!(pointer));
    let at = match pointer {
        "" => String::new(),
        p => format!(" (at {p})"),
    };
    ApiError::bad_request(code, format!("{message}{at}")).with_details(details)
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> ApiError {
        invalid_config("invalid_destination", &e.pointer, &e.message)
    }
}

impl From<JourneyError> for ApiError {
    fn from(e: JourneyError) -> ApiError {
        invalid_config("invalid_journey", &e.pointer, &e.message)
    }
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> ApiError {
        invalid_config("invalid_tracking_plan", &e.pointer, &e.message)
    }
}

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> ApiError {
        invalid_config("invalid_pii_policy", &e.pointer, &e.message)
    }
}

impl From<MessageError> for ApiError {
    fn from(e: MessageError) -> ApiError {
        let status = match e {
            MessageError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if let (Some(details), Value::Object(b)) = (self.details, &mut body) {
            b.extend(details);
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
