//! Tessera's storage layer: the durable, ordered event log, the workspace/source/token
//! registry and each workspace's derived profile state, behind the [`Store`] trait so that the embedded SQLite backend and (later) the
//! PostgreSQL backend are interchangeable.
//!
//! Writes to the log go through a group-commit writer: many concurrent appends share one
//! transaction and one fsync, and each caller is told the outcome only after that fsync.

mod admin;
pub mod audience_db;
mod checkpointer;
#[cfg(test)]
mod conformance;
#[cfg(test)]
mod conformance_governance;
pub mod dedup;
mod definitions;
mod error;
mod events;
mod governance_db;
mod log_writer;
pub mod outbox_db;
mod pool;
mod privacy_db;
pub mod profile_db;
mod schema;
mod sqlite;
#[cfg(test)]
mod tests;

pub use audience_db::AudienceEvent;
pub use error::StoreError;
pub use log_writer::{AppendBatch, AppendCallback, AppendOutcome, CommitObserver};
pub use outbox_db::{DeadLetterFilter, OutboxCounts, StoredAttempt, StoredRecord};
pub use privacy_db::PrivacyRequest;
pub use profile_db::{AbsorbedInfo, ProfileDb, StoredRow, StoredState};
pub use schema::SCHEMA_VERSION;
pub use sqlite::{SqliteOptions, SqliteStore};

use tessera_core::privacy::plan::Mode;
use tessera_core::Millis;

/// A workspace: the unit of data isolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
}

/// A source: one place events come from, authenticated by its write key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub write_key: String,
    pub enabled: bool,
    /// What ingest does with this source's messages that violate the workspace's tracking
    /// plan (`allow` for sources created before plans existed).
    pub tracking_plan_mode: Mode,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// An API token as stored: only a hash of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    /// `None`: valid for every workspace (the bootstrap admin token).
    pub workspace_id: Option<String>,
    pub scopes: Vec<String>,
    pub name: String,
    pub created_at: Millis,
}

/// One event as read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: i64,
    pub source_id: String,
    pub body: String,
}

/// Filters of the event debugger; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub kind: Option<String>,
    pub event: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub message_id: Option<String>,
    pub source_id: Option<String>,
    /// Inclusive lower bound on `receivedAt`.
    pub since: Option<Millis>,
    /// Exclusive upper bound on `receivedAt`.
    pub until: Option<Millis>,
    /// Only positions strictly below this one (the paging cursor).
    pub before: Option<i64>,
    /// Only positions strictly above this one (live tail).
    pub after: Option<i64>,
}

/// One event as the applier reads it from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub position: i64,
    pub source_id: String,
    /// Event time (skew-corrected), in milliseconds.
    pub timestamp: Millis,
    /// When the server received it: the clock that moves segmentation windows.
    pub received_at: Millis,
    pub body: String,
}

/// One version of a saved definition (computed trait, audience, destination, journey,
/// tracking plan, PII policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub workspace_id: String,
    pub id: String,
    /// `computed_trait`, `audience`, `destination`, `journey`, `tracking_plan` or
    /// `pii_policy`.
    pub kind: String,
    pub name: String,
    /// 1 for the first version; each update and the deletion add one.
    pub version: u32,
    /// The definition in its canonical text form.
    pub definition: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Whether this version is the deletion.
    pub deleted: bool,
}

/// Violations of a tracking plan counted for one day: how many messages of `source_id`
/// broke `rule` at `path` of `event` on unix day `day` (days since 1970-01-01, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationCount {
    pub workspace_id: String,
    pub source_id: String,
    pub event: String,
    pub path: String,
    pub rule: String,
    pub day: i64,
    pub count: u64,
}

/// Size figures of the log, for metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogStats {
    pub last_position: i64,
    pub bytes_on_disk: u64,
}

/// Everything the server needs from storage. Implemented by [`SqliteStore`].
pub trait Store: Send + Sync + 'static {
    /// Queues a batch for the next group commit. `Err(Overloaded)` when the queue is full;
    /// otherwise `done` is called exactly once, after the commit's fsync (or its failure).
    fn append(&self, batch: AppendBatch, done: AppendCallback) -> Result<(), StoreError>;
    /// Like [`Store::append`], but waits for room in the queue instead of answering
    /// `Overloaded` (for bulk imports, which have no client to push back on).
    fn append_blocking(&self, batch: AppendBatch, done: AppendCallback) -> Result<(), StoreError>;

    fn create_workspace(&self, ws: &Workspace) -> Result<(), StoreError>;
    fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError>;
    fn get_workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError>;
    fn delete_workspace(&self, id: &str) -> Result<bool, StoreError>;

    fn create_source(&self, src: &Source) -> Result<(), StoreError>;
    fn list_sources(&self, workspace_id: &str) -> Result<Vec<Source>, StoreError>;
    fn get_source(&self, workspace_id: &str, id: &str) -> Result<Option<Source>, StoreError>;
    fn source_by_write_key(&self, write_key: &str) -> Result<Option<Source>, StoreError>;
    /// Replaces name, write key, enabled flag and tracking-plan mode; `false` when no such
    /// source.
    fn update_source(&self, src: &Source) -> Result<bool, StoreError>;
    fn delete_source(&self, workspace_id: &str, id: &str) -> Result<bool, StoreError>;

    fn create_token(&self, token: &Token, secret_hash: &str) -> Result<(), StoreError>;
    fn token_by_hash(&self, secret_hash: &str) -> Result<Option<Token>, StoreError>;
    fn list_tokens(&self) -> Result<Vec<Token>, StoreError>;
    fn delete_token(&self, id: &str) -> Result<bool, StoreError>;

    /// How many lines of a file (by SHA-256) an earlier import into `source_id` committed.
    fn import_progress(&self, source_id: &str, file_sha256: &str) -> Result<u64, StoreError>;
    /// Records that the first `lines_done` lines of a file are committed.
    fn record_import_progress(
        &self,
        source_id: &str,
        file_sha256: &str,
        lines_done: u64,
        now: Millis,
    ) -> Result<(), StoreError>;

    /// Events of a workspace, newest first.
    fn list_events(
        &self,
        workspace_id: &str,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    fn log_stats(&self) -> Result<LogStats, StoreError>;
    /// The highest position in the log (0 when empty): [`Store::log_stats`] without the
    /// file sizes, for the appliers' loop.
    fn last_position(&self) -> Result<i64, StoreError>;
    /// Events of a workspace after `after`, oldest first: the applier's view of the log.
    fn read_log(
        &self,
        workspace_id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError>;
    /// The events of a workspace at these positions, in the order given; missing ones skipped.
    fn events_at(
        &self,
        workspace_id: &str,
        positions: &[i64],
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// A workspace's identity rules as JSON, if any were set.
    fn identity_rules(&self, workspace_id: &str) -> Result<Option<String>, StoreError>;
    fn set_identity_rules(
        &self,
        workspace_id: &str,
        rules: &str,
        now: Millis,
    ) -> Result<(), StoreError>;

    /// Stores a new version of a definition; `Conflict` when that version already exists.
    fn save_definition(&self, d: &Definition) -> Result<(), StoreError>;
    /// The current (newest, not deleted) version of every definition of a workspace.
    fn definitions(&self, workspace_id: &str) -> Result<Vec<Definition>, StoreError>;
    /// Every version of one definition, oldest first (empty when unknown).
    fn definition_versions(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Vec<Definition>, StoreError>;

    /// Stores a data-subject request (new, or its new status).
    fn save_privacy_request(&self, r: &PrivacyRequest) -> Result<(), StoreError>;
    fn privacy_request(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Option<PrivacyRequest>, StoreError>;
    /// Requests of every workspace still pending or running, oldest first.
    fn unfinished_privacy_requests(&self) -> Result<Vec<PrivacyRequest>, StoreError>;
    /// A workspace's requests, newest first.
    fn privacy_requests(
        &self,
        workspace_id: &str,
        limit: usize,
    ) -> Result<Vec<PrivacyRequest>, StoreError>;
    /// Suppresses identifiers (by their salted hashes) on behalf of a request.
    fn add_suppressions(
        &self,
        workspace_id: &str,
        request_id: &str,
        hashes: &[String],
        now: Millis,
    ) -> Result<(), StoreError>;
    /// Lifts the suppressions of every request that suppressed one of these hashes.
    fn remove_suppressions(
        &self,
        workspace_id: &str,
        hashes: &[String],
    ) -> Result<usize, StoreError>;
    /// Every suppressed hash of a workspace.
    fn suppressions(&self, workspace_id: &str) -> Result<Vec<String>, StoreError>;
    /// The workspace's secret salt for hashing identifiers, `fresh` when it has none yet.
    fn workspace_salt(&self, workspace_id: &str, fresh: &str) -> Result<String, StoreError>;
    /// Positions of a workspace's events with an event time before `cutoff` (retention).
    fn positions_before(&self, workspace_id: &str, cutoff: Millis) -> Result<Vec<i64>, StoreError>;
    /// Deletes events from the log for good: their pages are overwritten and the WAL emptied.
    fn delete_events(&self, workspace_id: &str, positions: &[i64]) -> Result<usize, StoreError>;

    /// Adds these counts to the stored ones (same workspace, source, event, path, rule and
    /// day), all in one transaction.
    fn record_violations(&self, counts: &[ViolationCount]) -> Result<(), StoreError>;
    /// A workspace's violation counts of days `since_day..until_day` (end excluded), ordered
    /// by event, path, rule, day and source.
    fn violation_counts(
        &self,
        workspace_id: &str,
        since_day: i64,
        until_day: i64,
    ) -> Result<Vec<ViolationCount>, StoreError>;

    /// Stops accepting appends, commits everything queued and waits for the writer to finish.
    fn shutdown(&self);
}
