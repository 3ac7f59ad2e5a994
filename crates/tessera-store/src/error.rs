//! Errors of the storage layer.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the event log cannot keep up; retry later")]
    Overloaded,
    #[error("the store is shutting down")]
    ShuttingDown,
    #[error("the event log commit failed: {0}")]
    CommitFailed(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("the data directory has schema version {found}; this build reads up to {supported}")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("stored profile state is unreadable at {0}")]
    InvalidState(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// Maps a uniqueness violation to [`StoreError::Conflict`] naming `what`.
    pub(crate) fn conflict_on_unique(e: rusqlite::Error, what: &str) -> StoreError {
        match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::Conflict(what.to_string())
            }
            e => StoreError::Sqlite(e),
        }
    }
}
