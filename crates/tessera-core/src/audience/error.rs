//! Errors of the audience language: a definition that cannot be read (text syntax or JSON
//! shape), or one that reads but makes no sense (the type check). Each points at where the
//! problem is: a line and column in the text, or a JSON Pointer into the JSON form.

use super::ast::Pos;
use std::fmt;
use thiserror::Error;

/// Where an error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// 1-based line and column (in characters) in the text.
    Text { line: u32, column: u32 },
    /// A JSON Pointer (RFC 6901) to the offending value of the JSON form; `""` is the whole
    /// document.
    Json(String),
}

impl Location {
    pub fn at(pos: Pos) -> Location {
        Location::Text {
            line: pos.line,
            column: pos.column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Text { line, column } => write!(f, "line {line}, column {column}"),
            Location::Json(p) if p.is_empty() => f.write_str("at the top level"),
            Location::Json(p) => write!(f, "at {p}"),
        }
    }
}

/// Why a definition was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LangError {
    /// The definition cannot be read: a syntax error in the text, or a JSON form of the wrong
    /// shape.
    #[error("{at}: {message}")]
    Syntax { at: Location, message: String },
    /// The definition reads but is wrong: a type mismatch, an unknown audience, an empty
    /// duration.
    #[error("{at}: {message}")]
    Type { at: Location, message: String },
}

impl LangError {
    pub(crate) fn syntax(pos: Pos, message: impl Into<String>) -> LangError {
        LangError::Syntax {
            at: Location::at(pos),
            message: message.into(),
        }
    }

    pub(crate) fn json(pointer: &str, message: impl Into<String>) -> LangError {
        LangError::Syntax {
            at: Location::Json(pointer.to_owned()),
            message: message.into(),
        }
    }

    /// The stable machine-readable code of this error, for `{"code": ..., "message": ...}`.
    pub fn code(&self) -> &'static str {
        match self {
            LangError::Syntax { .. } => "invalid_definition",
            LangError::Type { .. } => "definition_type_error",
        }
    }

    pub fn location(&self) -> &Location {
        match self {
            LangError::Syntax { at, .. } | LangError::Type { at, .. } => at,
        }
    }

    /// The message without its location.
    pub fn message(&self) -> &str {
        match self {
            LangError::Syntax { message, .. } | LangError::Type { message, .. } => message,
        }
    }
}
