//! Workspaces, sources and API tokens: the small, rarely written registry beside the log.

use crate::{Source, StoreError, Token, Workspace};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row};
use tessera_core::privacy::plan::Mode;

pub(crate) fn create_workspace(c: &Connection, ws: &Workspace) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![ws.id, ws.name, ws.created_at],
    )
    .map_err(|e| StoreError::conflict_on_unique(e, &format!("workspace {}", ws.id)))?;
    Ok(())
}

fn workspace_row(r: &Row<'_>) -> rusqlite::Result<Workspace> {
    Ok(Workspace {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
    })
}

pub(crate) fn list_workspaces(c: &Connection) -> Result<Vec<Workspace>, StoreError> {
    let mut st =
        c.prepare_cached("SELECT id, name, created_at FROM workspaces ORDER BY created_at, id")?;
    let rows = st.query_map([], workspace_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn get_workspace(c: &Connection, id: &str) -> Result<Option<Workspace>, StoreError> {
    Ok(
        c.prepare_cached("SELECT id, name, created_at FROM workspaces WHERE id = ?1")?
            .query_row([id], workspace_row)
            .optional()?,
    )
}

/// Deletes a workspace with its sources, tokens, rules and events: a workspace later created
/// with the same id must not inherit them (its applier would re-derive the old profiles).
pub(crate) fn delete_workspace(c: &Connection, id: &str) -> Result<bool, StoreError> {
    let tx = c.unchecked_transaction()?;
    let deleted = tx.execute("DELETE FROM workspaces WHERE id = ?1", [id])? > 0;
    if deleted {
        tx.execute("DELETE FROM events WHERE workspace_id = ?1", [id])?;
    }
    tx.commit()?;
    Ok(deleted)
}

const SOURCE_COLUMNS: &str =
    "id, workspace_id, name, write_key, enabled, created_at, updated_at, tracking_plan_mode";

/// A source's tracking-plan mode as its column holds it (`allow`, `flag`, `block`).
struct ModeColumn(Mode);

impl ToSql for ModeColumn {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.as_str()))
    }
}

impl FromSql for ModeColumn {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        // Only this module writes the column; anything else is a damaged row, and reading it
        // as `allow` would silently stop blocking.
        let text = v.as_str()?;
        Mode::parse(text).map(ModeColumn).ok_or_else(|| {
            FromSqlError::Other(format!("unknown tracking plan mode {text:?}").into())
        })
    }
}

fn source_row(r: &Row<'_>) -> rusqlite::Result<Source> {
    Ok(Source {
        id: r.get(0)?,
        workspace_id: r.get(1)?,
        name: r.get(2)?,
        write_key: r.get(3)?,
        enabled: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        tracking_plan_mode: r.get::<_, ModeColumn>(7)?.0,
    })
}

pub(crate) fn create_source(c: &Connection, s: &Source) -> Result<(), StoreError> {
    c.execute(
        &format!("INSERT INTO sources ({SOURCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            s.id,
            s.workspace_id,
            s.name,
            s.write_key,
            s.enabled,
            s.created_at,
            s.updated_at,
            ModeColumn(s.tracking_plan_mode)
        ],
    )
    .map_err(|e| StoreError::conflict_on_unique(e, "a source with this id or write key"))?;
    Ok(())
}

pub(crate) fn list_sources(c: &Connection, workspace_id: &str) -> Result<Vec<Source>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {SOURCE_COLUMNS} FROM sources WHERE workspace_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = st
        .query_map([workspace_id], source_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn get_source(
    c: &Connection,
    workspace_id: &str,
    id: &str,
) -> Result<Option<Source>, StoreError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {SOURCE_COLUMNS} FROM sources WHERE workspace_id = ?1 AND id = ?2"
    ))?
    .query_row([workspace_id, id], source_row)
    .optional()?)
}

pub(crate) fn source_by_write_key(c: &Connection, key: &str) -> Result<Option<Source>, StoreError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {SOURCE_COLUMNS} FROM sources WHERE write_key = ?1"
    ))?
    .query_row([key], source_row)
    .optional()?)
}

pub(crate) fn update_source(c: &Connection, s: &Source) -> Result<bool, StoreError> {
    let n = c
        .execute(
            "UPDATE sources SET name = ?3, write_key = ?4, enabled = ?5, updated_at = ?6,
             tracking_plan_mode = ?7 WHERE workspace_id = ?1 AND id = ?2",
            params![
                s.workspace_id,
                s.id,
                s.name,
                s.write_key,
                s.enabled,
                s.updated_at,
                ModeColumn(s.tracking_plan_mode)
            ],
        )
        .map_err(|e| StoreError::conflict_on_unique(e, "a source with this write key"))?;
    Ok(n > 0)
}

pub(crate) fn delete_source(
    c: &Connection,
    workspace_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    Ok(c.execute(
        "DELETE FROM sources WHERE workspace_id = ?1 AND id = ?2",
        [workspace_id, id],
    )? > 0)
}

fn token_row(r: &Row<'_>) -> rusqlite::Result<Token> {
    let scopes: String = r.get(2)?;
    Ok(Token {
        id: r.get(0)?,
        workspace_id: r.get(1)?,
        scopes: scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        name: r.get(3)?,
        created_at: r.get(4)?,
    })
}

pub(crate) fn create_token(c: &Connection, t: &Token, secret_hash: &str) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO tokens (id, secret_hash, workspace_id, scopes, name, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            t.id,
            secret_hash,
            t.workspace_id,
            t.scopes.join(","),
            t.name,
            t.created_at
        ],
    )
    .map_err(|e| StoreError::conflict_on_unique(e, "a token with this id or secret"))?;
    Ok(())
}

pub(crate) fn token_by_hash(
    c: &Connection,
    secret_hash: &str,
) -> Result<Option<Token>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT id, workspace_id, scopes, name, created_at FROM tokens WHERE secret_hash = ?1",
    )?
    .query_row([secret_hash], token_row)
    .optional()?)
}

pub(crate) fn list_tokens(c: &Connection) -> Result<Vec<Token>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id, workspace_id, scopes, name, created_at FROM tokens ORDER BY created_at, id",
    )?;
    let rows = st.query_map([], token_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn delete_token(c: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM tokens WHERE id = ?1", [id])? > 0)
}

pub(crate) fn import_progress(
    c: &Connection,
    source_id: &str,
    sha: &str,
) -> Result<u64, StoreError> {
    Ok(
        c.prepare_cached(
            "SELECT lines_done FROM imports WHERE source_id = ?1 AND file_sha256 = ?2",
        )?
        .query_row([source_id, sha], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0) as u64,
    )
}

pub(crate) fn record_import_progress(
    c: &Connection,
    source_id: &str,
    sha: &str,
    lines_done: u64,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO imports (source_id, file_sha256, lines_done, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (source_id, file_sha256) DO UPDATE SET lines_done = max(lines_done, ?3), updated_at = ?4",
        params![source_id, sha, lines_done as i64, now],
    )?;
    Ok(())
}

pub(crate) fn identity_rules(
    c: &Connection,
    workspace_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(c.query_row(
        "SELECT rules FROM identity_rules WHERE workspace_id = ?1",
        [workspace_id],
        |r| r.get(0),
    )
    .optional()?)
}

pub(crate) fn set_identity_rules(
    c: &Connection,
    workspace_id: &str,
    rules: &str,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO identity_rules (workspace_id, rules, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (workspace_id) DO UPDATE SET rules = ?2, updated_at = ?3",
        params![workspace_id, rules, now],
    )?;
    Ok(())
}
