//! Why an incoming message was refused. Each variant has a stable code string that the HTTP
//! layer returns as `{"code": ..., "message": ...}` and that metrics count rejections by.

use thiserror::Error;

/// A message that cannot be accepted, with the field it is about.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MessageError {
    #[error("the message is not a JSON object")]
    NotAnObject,
    #[error("the message is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("field `{0}` is required")]
    MissingField(&'static str),
    #[error("a userId or an anonymousId is required")]
    MissingIdentity,
    #[error("field `{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("field `{field}`: {reason}")]
    InvalidValue { field: &'static str, reason: String },
    #[error("unknown message type `{0}`; expected identify, track, page, screen, group or alias")]
    UnknownType(String),
    #[error("field `type` is `{found}` but this endpoint takes `{expected}` messages")]
    TypeMismatch {
        expected: &'static str,
        found: String,
    },
    #[error("the message is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
}

impl MessageError {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            MessageError::NotAnObject => "not_an_object",
            MessageError::InvalidJson(_) => "invalid_json",
            MessageError::MissingField(_) => "missing_field",
            MessageError::MissingIdentity => "missing_identity",
            MessageError::WrongType { .. } => "wrong_type",
            MessageError::InvalidValue { .. } => "invalid_value",
            MessageError::UnknownType(_) => "unknown_type",
            MessageError::TypeMismatch { .. } => "type_mismatch",
            MessageError::TooLarge { .. } => "event_too_large",
        }
    }
}
