//! Tracking-plan violations in `tessera.db`, counted per workspace, source, event, field path,
//! rule and day. Ingest adds to the counts (one upsert per distinct key, all in one
//! transaction) rather than writing a row per violating event, so a source that breaks the plan
//! on every message costs a handful of rows a day, not one per message.

use crate::{StoreError, ViolationCount};
use rusqlite::{params, Connection};

/// Adds `counts` to the stored ones in one transaction.
pub(crate) fn record(c: &Connection, counts: &[ViolationCount]) -> Result<(), StoreError> {
    if counts.is_empty() {
        return Ok(());
    }
    let tx = c.unchecked_transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO plan_violations (workspace_id, source_id, event, path, rule, day, count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (workspace_id, day, event, path, rule, source_id)
             DO UPDATE SET count = count + excluded.count",
        )?;
        for v in counts {
            st.execute(params![
                v.workspace_id,
                v.source_id,
                v.event,
                v.path,
                v.rule,
                v.day,
                v.count as i64
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A workspace's counts of days `since_day..until_day`.
pub(crate) fn counts(
    c: &Connection,
    workspace_id: &str,
    since_day: i64,
    until_day: i64,
) -> Result<Vec<ViolationCount>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT workspace_id, source_id, event, path, rule, day, count FROM plan_violations
         WHERE workspace_id = ?1 AND day >= ?2 AND day < ?3
         ORDER BY event, path, rule, day, source_id",
    )?;
    let rows = st
        .query_map(params![workspace_id, since_day, until_day], |r| {
            Ok(ViolationCount {
                workspace_id: r.get(0)?,
                source_id: r.get(1)?,
                event: r.get(2)?,
                path: r.get(3)?,
                rule: r.get(4)?,
                day: r.get(5)?,
                count: r.get::<_, i64>(6)?.max(0) as u64,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
