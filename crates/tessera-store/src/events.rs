//! Reading the event log: the debugger's filtered, newest-first listing.

use crate::{EventFilter, LogEntry, StoreError, StoredEvent};
use rusqlite::types::Value;
use rusqlite::Connection;

pub(crate) fn list_events(
    c: &Connection,
    workspace_id: &str,
    f: &EventFilter,
    position_hint: Option<i64>,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut sql =
        String::from("SELECT position, source_id, body FROM events WHERE workspace_id = ?");
    let mut args: Vec<Value> = vec![Value::Text(workspace_id.to_string())];
    let mut eq = |column: &str, v: &Option<String>| {
        if let Some(v) = v {
            sql.push_str(&format!(" AND {column} = ?"));
            args.push(Value::Text(v.clone()));
        }
    };
    eq("type", &f.kind);
    eq("event", &f.event);
    eq("user_id", &f.user_id);
    eq("anonymous_id", &f.anonymous_id);
    eq("message_id", &f.message_id);
    eq("source_id", &f.source_id);
    if f.source_id.is_none() {
        // Timer ticks and journeys' trait writes are the applier's own entries, not anything
        // a source sent.
        sql.push_str(" AND source_id != '_tessera'");
    }
    let mut bound = |cond: &str, v: Option<i64>| {
        if let Some(v) = v {
            sql.push_str(cond);
            args.push(Value::Integer(v));
        }
    };
    bound(" AND received_at >= ?", f.since);
    bound(" AND received_at < ?", f.until);
    bound(" AND position < ?", f.before);
    bound(" AND position > ?", f.after);
    // Only a hint: the messageId condition above still decides.
    bound(" AND position = ?", position_hint);
    sql.push_str(" ORDER BY position DESC LIMIT ?");
    args.push(Value::Integer(limit as i64));
    let mut st = c.prepare_cached(&sql)?;
    let rows = st
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok(StoredEvent {
                position: r.get(0)?,
                source_id: r.get(1)?,
                body: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn last_position(c: &Connection) -> Result<i64, StoreError> {
    Ok(
        c.query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
            r.get(0)
        })?,
    )
}

pub(crate) fn read_log(
    c: &Connection,
    workspace_id: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<LogEntry>, StoreError> {
    // Scans by position (the rowid), so no extra index slows the log writer down.
    let mut st = c.prepare_cached(
        "SELECT position, source_id, timestamp, received_at, body FROM events
         WHERE position > ?1 AND workspace_id = ?2 ORDER BY position LIMIT ?3",
    )?;
    let rows = st
        .query_map(rusqlite::params![after, workspace_id, limit as i64], |r| {
            Ok(LogEntry {
                position: r.get(0)?,
                source_id: r.get(1)?,
                timestamp: r.get(2)?,
                received_at: r.get(3)?,
                body: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(crate) fn events_at(
    c: &Connection,
    workspace_id: &str,
    positions: &[i64],
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT position, source_id, body FROM events WHERE position = ?1 AND workspace_id = ?2",
    )?;
    let mut out = Vec::with_capacity(positions.len());
    for &p in positions {
        let mut rows = st.query(rusqlite::params![p, workspace_id])?;
        if let Some(r) = rows.next()? {
            out.push(StoredEvent {
                position: r.get(0)?,
                source_id: r.get(1)?,
                body: r.get(2)?,
            });
        }
    }
    Ok(out)
}

/// Positions of a workspace's events whose event time is before `cutoff` (retention).
pub(crate) fn positions_before(
    c: &Connection,
    workspace_id: &str,
    cutoff: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT position FROM events WHERE workspace_id = ?1 AND timestamp < ?2 ORDER BY position",
    )?;
    let rows = st
        .query_map(rusqlite::params![workspace_id, cutoff], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
