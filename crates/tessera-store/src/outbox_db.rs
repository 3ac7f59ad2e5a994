//! The activation side of a workspace's state file: the outbox (every record that must reach a
//! destination, with its delivery status), the delivery log (every attempt) and journey
//! state. Written in the same transaction as the profile state and the log position they
//! reflect, so a crash neither loses a decided record nor invents one: after a restart the
//! applier re-derives the records of events after that position, with the same keys, and a
//! record already stored is stored once.

use crate::profile_db::ProfileDb;
use crate::StoreError;
use rusqlite::{params, Connection, Row, Transaction};
use tessera_core::activation::{AttemptOutcome, RecordKind};
use tessera_core::identity::CommitBatch;
use tessera_core::Millis;

/// Created when missing, so state files written before activation existed are kept.
pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    destination TEXT NOT NULL,
    position INTEGER NOT NULL,
    profile INTEGER,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    at INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    first_attempt_at INTEGER,
    last_attempt_at INTEGER,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_by_status ON outbox(destination, status, seq);
CREATE TABLE IF NOT EXISTS delivery_attempts (
    seq INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL,
    status INTEGER,
    outcome TEXT NOT NULL,
    latency_ms INTEGER NOT NULL,
    response TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS delivery_attempts_by_time ON delivery_attempts(destination, at, seq);
CREATE INDEX IF NOT EXISTS delivery_attempts_by_key ON delivery_attempts(key);
CREATE TABLE IF NOT EXISTS journey_state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"#;

/// A stored outbox record with its delivery status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq: i64,
    pub key: String,
    pub destination: String,
    pub position: i64,
    pub profile: Option<i64>,
    pub kind: RecordKind,
    pub payload: String,
    pub at: Millis,
    /// `pending`, `delivered`, `dead` or `skipped` (consent revoked before it was sent).
    pub status: String,
    pub attempts: u32,
    pub first_attempt_at: Option<Millis>,
    pub last_attempt_at: Option<Millis>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// One row of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttempt {
    pub seq: i64,
    pub key: String,
    pub attempt: u32,
    pub at: Millis,
    pub status: Option<u16>,
    pub outcome: String,
    pub latency_ms: u32,
    pub response: String,
    pub error: Option<String>,
}

/// Counts of a destination's records by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
    /// Not sent because their consent was revoked first.
    pub skipped: u64,
}

/// Which dead letters a replay takes.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    pub keys: Option<Vec<String>>,
    pub kind: Option<RecordKind>,
    pub status: Option<u16>,
    /// Inclusive lower and exclusive upper bound on the record's time.
    pub since: Option<Millis>,
    pub until: Option<Millis>,
}

const RECORD_COLUMNS: &str = "seq, key, destination, position, profile, kind, payload, at, status,
    attempts, first_attempt_at, last_attempt_at, last_status, last_error";

fn record(r: &Row<'_>) -> rusqlite::Result<StoredRecord> {
    let kind: String = r.get(5)?;
    Ok(StoredRecord {
        seq: r.get(0)?,
        key: r.get(1)?,
        destination: r.get(2)?,
        position: r.get(3)?,
        profile: r.get(4)?,
        kind: RecordKind::parse(&kind).unwrap_or(RecordKind::Event),
        payload: r.get(6)?,
        at: r.get(7)?,
        status: r.get(8)?,
        attempts: r.get(9)?,
        first_attempt_at: r.get(10)?,
        last_attempt_at: r.get(11)?,
        last_status: r.get(12)?,
        last_error: r.get(13)?,
    })
}

pub(crate) fn create(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA)?;
    Ok(())
}

/// Writes a batch's activation rows: records first, then replays, then attempts (an attempt
/// may be for a record of this very batch, or for a replayed one), then journey state.
pub(crate) fn commit(tx: &Transaction<'_>, b: &CommitBatch) -> Result<(), StoreError> {
    let a = &b.activation;
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (key, destination, position, profile, kind, payload, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for r in &a.records {
        st.execute(params![
            r.key,
            r.destination,
            r.position,
            r.profile,
            r.kind.as_str(),
            r.payload,
            r.at
        ])?;
    }
    let mut requeue = tx.prepare_cached(
        "UPDATE outbox SET status = 'pending', first_attempt_at = NULL
         WHERE key = ?1 AND destination = ?2 AND status = 'dead'",
    )?;
    for (dest, key) in &a.requeued {
        requeue.execute(params![key, dest])?;
    }
    let mut log = tx.prepare_cached(
        "INSERT INTO delivery_attempts
         (destination, key, attempt, at, status, outcome, latency_ms, response, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut status = tx.prepare_cached(
        "UPDATE outbox SET attempts = max(attempts, ?2), last_attempt_at = ?3,
             first_attempt_at = coalesce(first_attempt_at, ?3), last_status = ?4,
             last_error = ?5,
             status = CASE
                 WHEN status IN ('delivered', 'skipped') THEN status
                 WHEN status = 'dead' AND ?6 = 'pending' THEN status
                 ELSE ?6 END
         WHERE key = ?1",
    )?;
    for t in &a.attempts {
        log.execute(params![
            t.destination,
            t.key,
            t.attempt,
            t.at,
            t.status,
            t.outcome.as_str(),
            t.latency_ms,
            t.response,
            t.error
        ])?;
        let next = match t.outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry => "pending",
            AttemptOutcome::Dead => "dead",
            AttemptOutcome::Skipped => "skipped",
        };
        status.execute(params![t.key, t.attempt, t.at, t.status, t.error, next])?;
    }
    let mut put =
        tx.prepare_cached("INSERT OR REPLACE INTO journey_state (key, value) VALUES (?1, ?2)")?;
    let mut del = tx.prepare_cached("DELETE FROM journey_state WHERE key = ?1")?;
    for (key, value) in &a.journey_rows {
        match value {
            Some(v) => put.execute(params![key, v])?,
            None => del.execute([key])?,
        };
    }
    Ok(())
}

/// Whether a journey state row belongs to one of these profiles (rows are keyed
/// `i/<journey>/<profile>`, `s/<journey>/<profile>` and `f/<profile>`; `m/<journey>` holds a
/// journey's counters).
pub fn journey_row_of(key: &str, profiles: &[i64]) -> bool {
    let profile = match key.split('/').collect::<Vec<_>>().as_slice() {
        ["i" | "s", _, p] | ["f", p] => p.parse::<i64>().ok(),
        _ => None,
    };
    profile.is_some_and(|p| profiles.contains(&p))
}

impl ProfileDb {
    /// Every outbox record about a profile, oldest first (for an export).
    pub fn records_of_profile(&self, profile: i64) -> Result<Vec<StoredRecord>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM outbox WHERE profile = ?1 ORDER BY seq"
            ))?;
            let rows = st.query_map([profile], record)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// A destination's records still to deliver, oldest first, after `after_seq`.
    pub fn pending_records(
        &self,
        destination: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.records_with_status(destination, "pending", after_seq, limit)
    }

    /// A destination's dead letters, oldest first, after `after_seq`.
    pub fn dead_letters(
        &self,
        destination: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.records_with_status(destination, "dead", after_seq, limit)
    }

    fn records_with_status(
        &self,
        destination: &str,
        status: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM outbox
                 WHERE destination = ?1 AND status = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4"
            ))?;
            let rows = st
                .query_map(
                    params![destination, status, after_seq, limit as i64],
                    record,
                )?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// One record of a destination, by key.
    pub fn outbox_record(
        &self,
        destination: &str,
        key: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM outbox WHERE destination = ?1 AND key = ?2"
            ))?;
            let mut rows = st.query_map(params![destination, key], record)?;
            Ok(rows.next().transpose()?)
        })
    }

    /// The dead letters a replay takes, oldest first.
    pub fn dead_letters_matching(
        &self,
        destination: &str,
        f: &DeadLetterFilter,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.dead_letters(destination, after, 1000)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            out.extend(page.into_iter().filter(|r| {
                f.keys.as_ref().is_none_or(|k| k.contains(&r.key))
                    && f.kind.is_none_or(|k| k == r.kind)
                    && f.status.is_none_or(|s| r.last_status == Some(s))
                    && f.since.is_none_or(|s| r.at >= s)
                    && f.until.is_none_or(|u| r.at < u)
            }));
            if out.len() >= limit {
                out.truncate(limit);
                break;
            }
        }
        Ok(out)
    }

    /// A destination's delivery attempts, newest first by the time they were made (lanes
    /// finish out of order), strictly after the `(at, seq)` cursor `before` in that order.
    pub fn delivery_attempts(
        &self,
        destination: &str,
        key: Option<&str>,
        before: Option<(Millis, i64)>,
        limit: usize,
    ) -> Result<Vec<StoredAttempt>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, key, attempt, at, status, outcome, latency_ms, response, error
                 FROM delivery_attempts
                 WHERE destination = ?1 AND (at < ?2 OR (at = ?2 AND seq < ?3))
                   AND (?4 IS NULL OR key = ?4)
                 ORDER BY at DESC, seq DESC LIMIT ?5",
            )?;
            let rows = st
                .query_map(
                    params![
                        destination,
                        before.map_or(i64::MAX, |b| b.0),
                        before.map_or(i64::MAX, |b| b.1),
                        key,
                        limit as i64
                    ],
                    |r| {
                        Ok(StoredAttempt {
                            seq: r.get(0)?,
                            key: r.get(1)?,
                            attempt: r.get(2)?,
                            at: r.get(3)?,
                            status: r.get(4)?,
                            outcome: r.get(5)?,
                            latency_ms: r.get(6)?,
                            response: r.get(7)?,
                            error: r.get(8)?,
                        })
                    },
                )?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// How many records of a destination are pending, delivered and dead.
    pub fn outbox_counts(&self, destination: &str) -> Result<OutboxCounts, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT status, count(*) FROM outbox WHERE destination = ?1 GROUP BY status",
            )?;
            let mut out = OutboxCounts::default();
            for row in st.query_map([destination], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })? {
                let (s, n) = row?;
                match s.as_str() {
                    "pending" => out.pending = n as u64,
                    "delivered" => out.delivered = n as u64,
                    "skipped" => out.skipped = n as u64,
                    _ => out.dead = n as u64,
                }
            }
            Ok(out)
        })
    }

    /// Every stored journey state row.
    pub fn journey_state(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare("SELECT key, value FROM journey_state")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Removes delivered records and their delivery attempts older than `before` (the outbox
    /// would otherwise grow with every event forwarded). Dead and pending records stay, with
    /// their attempts.
    pub fn purge_delivered(&self, before: Millis) -> Result<usize, StoreError> {
        let c = self.writer.lock().expect("profile writer poisoned");
        let n = c.execute(
            "DELETE FROM outbox WHERE status = 'delivered' AND at < ?1",
            [before],
        )?;
        // Attempts of records still pending or dead stay: they explain them.
        c.execute(
            "DELETE FROM delivery_attempts WHERE at < ?1
             AND key NOT IN (SELECT key FROM outbox WHERE status != 'delivered')",
            [before],
        )?;
        Ok(n)
    }
}

#[cfg(test)]
#[path = "outbox_db_tests.rs"]
mod tests;
