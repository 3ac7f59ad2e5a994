//! Privacy in `tessera.db`: data-subject requests with their status, suppressions (hashes of
//! identifiers whose events are dropped at ingest, never the identifiers themselves), each
//! workspace's secret salt for those hashes, and the deletion of a person's events from the
//! log so that nothing of them is left in the database files.

use crate::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tessera_core::Millis;

/// A data-subject request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyRequest {
    pub id: String,
    pub workspace_id: String,
    /// `delete`, `suppress`, `suppress_with_delete`, `unsuppress` or `export`.
    pub kind: String,
    /// The identifier's type and a masked value, kept for the record.
    pub identifier_hint: String,
    /// The identifier itself, only while the request is not finished (so that a restart can
    /// carry it out); `None` once it is done or failed.
    pub identifier: Option<String>,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// JSON: what was done (counts), the export document, or the error.
    pub result: Option<String>,
}

fn request(r: &Row<'_>) -> rusqlite::Result<PrivacyRequest> {
    Ok(PrivacyRequest {
        id: r.get(0)?,
        workspace_id: r.get(1)?,
        kind: r.get(2)?,
        identifier_hint: r.get(3)?,
        identifier: r.get(4)?,
        status: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        result: r.get(8)?,
    })
}

const COLUMNS: &str =
    "id, workspace_id, kind, identifier_hint, identifier, status, created_at, updated_at, result";

/// Stores a request. A finished one no longer holds its identifier: its old row is
/// overwritten (secure_delete) and the WAL emptied, so the identifier leaves the files.
pub(crate) fn save_request(c: &Connection, r: &PrivacyRequest) -> Result<(), StoreError> {
    let finished = r.identifier.is_none() && matches!(r.status.as_str(), "done" | "failed");
    if finished {
        c.pragma_update(None, "secure_delete", "ON")?;
    }
    c.execute(
        &format!(
            "INSERT OR REPLACE INTO privacy_requests ({COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ),
        params![
            r.id,
            r.workspace_id,
            r.kind,
            r.identifier_hint,
            r.identifier,
            r.status,
            r.created_at,
            r.updated_at,
            r.result
        ],
    )?;
    if finished {
        scrub_wal(c)?;
    }
    Ok(())
}

pub(crate) fn get_request(
    c: &Connection,
    workspace_id: &str,
    id: &str,
) -> Result<Option<PrivacyRequest>, StoreError> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM privacy_requests WHERE workspace_id = ?1 AND id = ?2"),
        params![workspace_id, id],
        request,
    )
    .optional()?)
}

/// A workspace's requests, newest first, before `before` (created_at, id) when given.
pub(crate) fn list_requests(
    c: &Connection,
    workspace_id: &str,
    limit: usize,
) -> Result<Vec<PrivacyRequest>, StoreError> {
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM privacy_requests WHERE workspace_id = ?1
         ORDER BY created_at DESC, id DESC LIMIT ?2"
    ))?;
    let rows = st
        .query_map(params![workspace_id, limit as i64], request)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Requests of every workspace not finished (pending or running), oldest first: a restart
/// carries them out.
pub(crate) fn unfinished_requests(c: &Connection) -> Result<Vec<PrivacyRequest>, StoreError> {
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM privacy_requests WHERE status IN ('pending', 'running')
         ORDER BY created_at, id"
    ))?;
    let rows = st.query_map([], request)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn add_suppressions(
    c: &Connection,
    workspace_id: &str,
    request_id: &str,
    hashes: &[String],
    now: Millis,
) -> Result<(), StoreError> {
    let mut st = c.prepare(
        "INSERT OR IGNORE INTO suppressions (workspace_id, hash, request_id, created_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for h in hashes {
        st.execute(params![workspace_id, h, request_id, now])?;
    }
    Ok(())
}

/// Lifts every suppression made by a request that suppressed one of `hashes`; returns how many
/// identifiers are no longer suppressed.
pub(crate) fn remove_suppressions(
    c: &Connection,
    workspace_id: &str,
    hashes: &[String],
) -> Result<usize, StoreError> {
    let mut n = 0;
    for h in hashes {
        n += c.execute(
            "DELETE FROM suppressions WHERE workspace_id = ?1 AND request_id IN
             (SELECT request_id FROM suppressions WHERE workspace_id = ?1 AND hash = ?2)",
            params![workspace_id, h],
        )?;
    }
    Ok(n)
}

pub(crate) fn suppressions(c: &Connection, workspace_id: &str) -> Result<Vec<String>, StoreError> {
    let mut st = c.prepare("SELECT DISTINCT hash FROM suppressions WHERE workspace_id = ?1")?;
    let rows = st
        .query_map([workspace_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The workspace's salt, made on first use (hex of 32 random bytes from the caller).
pub(crate) fn salt(c: &Connection, workspace_id: &str, fresh: &str) -> Result<String, StoreError> {
    c.execute(
        "INSERT OR IGNORE INTO workspace_salts (workspace_id, salt) VALUES (?1, ?2)",
        params![workspace_id, fresh],
    )?;
    Ok(c.query_row(
        "SELECT salt FROM workspace_salts WHERE workspace_id = ?1",
        [workspace_id],
        |r| r.get(0),
    )?)
}

/// Deletes a workspace's events at these positions, overwriting their pages (secure_delete),
/// then checkpoints the WAL to empty so no old copy of them stays in it. Returns how many
/// were deleted.
pub(crate) fn delete_events(
    c: &Connection,
    workspace_id: &str,
    positions: &[i64],
) -> Result<usize, StoreError> {
    c.pragma_update(None, "secure_delete", "ON")?;
    let tx = c.unchecked_transaction()?;
    let mut n = 0;
    {
        let mut st =
            tx.prepare_cached("DELETE FROM events WHERE position = ?1 AND workspace_id = ?2")?;
        for p in positions {
            n += st.execute(params![p, workspace_id])?;
        }
    }
    tx.commit()?;
    scrub_wal(c)?;
    Ok(n)
}

/// Checkpoints the WAL into the database and truncates it, retrying while readers hold old
/// snapshots (the WAL still holds the pages as they were before a deletion until then).
pub(crate) fn scrub_wal(c: &Connection) -> Result<(), StoreError> {
    for _ in 0..200 {
        let (busy, _, _): (i64, i64, i64) =
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    Err(StoreError::CommitFailed(
        "the WAL could not be emptied after a deletion: readers kept it busy".into(),
    ))
}
