//! Saved computed-trait and audience definitions: every version is kept, the newest one of
//! each id is the current definition, and a deletion is a version too (so history survives).

use crate::{Definition, StoreError};
use rusqlite::{params, Connection, Row};

fn row(r: &Row<'_>) -> rusqlite::Result<Definition> {
    Ok(Definition {
        workspace_id: r.get(0)?,
        id: r.get(1)?,
        kind: r.get(2)?,
        name: r.get(3)?,
        version: r.get::<_, i64>(4)? as u32,
        definition: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        deleted: r.get::<_, i64>(8)? != 0,
    })
}

const COLUMNS: &str =
    "workspace_id, id, kind, name, version, definition, created_at, updated_at, deleted";

/// Stores a new version. Fails with `Conflict` when that version exists (two writers raced).
pub(crate) fn save(c: &Connection, d: &Definition) -> Result<(), StoreError> {
    let inserted = c.execute(
        &format!("INSERT OR IGNORE INTO definitions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            d.workspace_id,
            d.id,
            d.kind,
            d.name,
            d.version as i64,
            d.definition,
            d.created_at,
            d.updated_at,
            d.deleted as i64
        ],
    )?;
    match inserted {
        1 => Ok(()),
        _ => Err(StoreError::Conflict(format!(
            "version {} of {}",
            d.version, d.id
        ))),
    }
}

/// The newest version of every definition of a workspace that is not deleted, by name.
pub(crate) fn current(c: &Connection, workspace_id: &str) -> Result<Vec<Definition>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM definitions d WHERE workspace_id = ?1
         AND version = (SELECT max(version) FROM definitions x
                        WHERE x.workspace_id = d.workspace_id AND x.id = d.id)
         AND deleted = 0 ORDER BY name"
    ))?;
    let rows = st
        .query_map([workspace_id], row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Every version of one definition, oldest first.
pub(crate) fn versions(
    c: &Connection,
    workspace_id: &str,
    id: &str,
) -> Result<Vec<Definition>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM definitions WHERE workspace_id = ?1 AND id = ?2 ORDER BY version"
    ))?;
    let rows = st
        .query_map(params![workspace_id, id], row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
