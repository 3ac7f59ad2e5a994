//! The SQLite schema and its versioned migrations, applied in order at open.
//!
//! Each migration runs once, in its own transaction, and bumps `PRAGMA user_version`, so an
//! older data directory is upgraded in place and a newer one is refused rather than misread.

use crate::StoreError;
use rusqlite::Connection;

/// Migrations in order; the index + 1 is the schema version they produce.
const MIGRATIONS: &[&str] = &[
    // 1: workspaces, sources, API tokens and the event log.
    r#"
    CREATE TABLE workspaces (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE sources (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        write_key TEXT NOT NULL UNIQUE,
        enabled INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX sources_workspace ON sources(workspace_id);
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL UNIQUE,
        workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE,
        scopes TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE events (
        position INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        source_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        type TEXT NOT NULL,
        event TEXT,
        user_id TEXT,
        anonymous_id TEXT,
        timestamp INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE UNIQUE INDEX events_message_id ON events(workspace_id, message_id);
    "#,
    // 2: messageId dedup moves to an in-memory window (see dedup.rs); the unique index cost one
    // random page write per event. Import runs are recorded so a re-run skips what is done.
    r#"
    DROP INDEX events_message_id;
    CREATE TABLE imports (
        source_id TEXT NOT NULL,
        file_sha256 TEXT NOT NULL,
        lines_done INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (source_id, file_sha256)
    );
    "#,
    // 3: identity rules per workspace (JSON, see tessera_core::identity::rules).
    r#"
    CREATE TABLE identity_rules (
        workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
        rules TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    "#,
    // 4: computed-trait and audience definitions, every version kept (see definitions.rs).
    r#"
    CREATE TABLE definitions (
        workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        definition TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, id, version)
    );
    "#,
    // 5: data-subject requests, suppressed identifiers (hashed) and each workspace's salt for
    // those hashes (see privacy_db.rs).
    r#"
    CREATE TABLE privacy_requests (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        identifier_hint TEXT NOT NULL,
        identifier TEXT,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        result TEXT
    );
    CREATE INDEX privacy_requests_workspace ON privacy_requests(workspace_id, created_at);
    CREATE TABLE suppressions (
        workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        hash TEXT NOT NULL,
        request_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, hash, request_id)
    );
    CREATE TABLE workspace_salts (
        workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
        salt TEXT NOT NULL
    );
    "#,
    // 6: governance. Each source's tracking-plan mode (`allow`, `flag`, `block`), and
    // tracking-plan violations counted per day (unix day of `receivedAt`), never one row per
    // event: the key leads with workspace and day because reports read a range of days.
    r#"
    ALTER TABLE sources ADD COLUMN tracking_plan_mode TEXT NOT NULL DEFAULT 'allow';
    CREATE TABLE plan_violations (
        workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        source_id TEXT NOT NULL,
        event TEXT NOT NULL,
        path TEXT NOT NULL,
        rule TEXT NOT NULL,
        day INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, day, event, path, rule, source_id)
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`].
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}
