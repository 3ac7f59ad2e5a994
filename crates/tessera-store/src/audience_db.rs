//! The audience side of a workspace's state file: current memberships, every entry and exit
//! (the `Audience Entered` / `Audience Exited` records that destinations consume, in order),
//! and audience sizes over time. Written in the same transaction as the profile state and the
//! log position they reflect.

use crate::profile_db::ProfileDb;
use crate::StoreError;
use rusqlite::{params, Transaction};
use tessera_core::identity::{AudienceChangeRow, CommitBatch};
use tessera_core::Millis;

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE memberships (
    audience TEXT NOT NULL,
    profile INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    PRIMARY KEY (audience, profile)
) WITHOUT ROWID;
CREATE INDEX memberships_profile ON memberships(profile);
CREATE TABLE audience_events (
    seq INTEGER PRIMARY KEY,
    audience TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    profile INTEGER NOT NULL,
    entered INTEGER NOT NULL,
    at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    position INTEGER,
    recorded_at_us INTEGER NOT NULL
);
CREATE UNIQUE INDEX audience_events_once
    ON audience_events(audience, profile, entered, reason, coalesce(position, at));
CREATE INDEX audience_events_by_audience ON audience_events(audience, seq);
CREATE INDEX audience_events_by_profile ON audience_events(profile, seq);
CREATE TABLE audience_sizes (
    audience TEXT NOT NULL,
    at INTEGER NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (audience, at)
) WITHOUT ROWID;
"#;

/// Writes a batch's audience rows. A change re-derived after a restart is stored once: the
/// same audience, profile, direction and reason, and the same causing event (its log
/// position) or, for changes without one (window edges), the same instant.
pub(crate) fn commit(tx: &Transaction<'_>, b: &CommitBatch) -> Result<(), StoreError> {
    for audience in &b.dropped_audiences {
        tx.prepare_cached("DELETE FROM memberships WHERE audience = ?1")?
            .execute([audience])?;
    }
    let mut event = tx.prepare_cached(
        "INSERT OR IGNORE INTO audience_events
         (audience, name, version, profile, entered, at, reason, position, recorded_at_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut enter = tx.prepare_cached(
        "INSERT OR IGNORE INTO memberships (audience, profile, entered_at) VALUES (?1, ?2, ?3)",
    )?;
    let mut exit =
        tx.prepare_cached("DELETE FROM memberships WHERE audience = ?1 AND profile = ?2")?;
    for c in &b.audience_changes {
        event.execute(params![
            c.audience,
            c.name,
            c.version,
            c.profile,
            c.entered,
            c.at,
            c.reason,
            c.position,
            c.recorded_at_us
        ])?;
        match c.entered {
            true => enter.execute(params![c.audience, c.profile, c.at])?,
            false => exit.execute(params![c.audience, c.profile])?,
        };
    }
    let mut size = tx.prepare_cached(
        "INSERT OR REPLACE INTO audience_sizes (audience, at, size) VALUES (?1, ?2, ?3)",
    )?;
    for (audience, at, n) in &b.audience_sizes {
        size.execute(params![audience, at, n])?;
    }
    Ok(())
}

/// One stored entry or exit, with its place in the order of all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceEvent {
    pub seq: i64,
    pub change: AudienceChangeRow,
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AudienceEvent> {
    Ok(AudienceEvent {
        seq: r.get(0)?,
        change: AudienceChangeRow {
            audience: r.get(1)?,
            name: r.get(2)?,
            version: r.get::<_, i64>(3)? as u32,
            profile: r.get(4)?,
            entered: r.get(5)?,
            at: r.get(6)?,
            reason: r.get(7)?,
            position: r.get(8)?,
            recorded_at_us: r.get(9)?,
        },
    })
}

const EVENT_COLUMNS: &str =
    "seq, audience, name, version, profile, entered, at, reason, position, recorded_at_us";

impl ProfileDb {
    /// Members of an audience by profile key, after `after`: (profile, entered_at).
    pub fn members(
        &self,
        audience: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, Millis)>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT profile, entered_at FROM memberships WHERE audience = ?1 AND profile > ?2
                 ORDER BY profile LIMIT ?3",
            )?;
            let rows = st
                .query_map(
                    params![audience, after.unwrap_or(i64::MIN), limit as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// The audiences a profile is in: (audience id, entered_at).
    pub fn memberships_of(&self, profile: i64) -> Result<Vec<(String, Millis)>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT audience, entered_at FROM memberships WHERE profile = ?1 ORDER BY audience",
            )?;
            let rows = st
                .query_map([profile], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Entries and exits in the order they were recorded, after sequence number `after`; of
    /// one audience, one profile, or all.
    pub fn audience_events(
        &self,
        audience: Option<&str>,
        profile: Option<i64>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<AudienceEvent>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM audience_events
                 WHERE seq > ?1 AND (?2 IS NULL OR audience = ?2) AND (?3 IS NULL OR profile = ?3)
                 ORDER BY seq LIMIT ?4"
            ))?;
            let rows = st
                .query_map(params![after, audience, profile, limit as i64], event_row)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// An audience's size over time: (time, size) samples in `[from, to)`, oldest first, at
    /// most `limit`.
    pub fn audience_sizes(
        &self,
        audience: &str,
        from: Millis,
        to: Millis,
        limit: usize,
    ) -> Result<Vec<(Millis, i64)>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT at, size FROM audience_sizes WHERE audience = ?1 AND at >= ?2 AND at < ?3
                 ORDER BY at LIMIT ?4",
            )?;
            let rows = st
                .query_map(params![audience, from, to, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Copies the audience history (entries and exits, sizes, memberships) and activation's
    /// state (outbox, delivery log, journey state) of an older generation into this one, so a
    /// rebuild keeps what destinations were told and what is still to tell them; except
    /// everything of the profiles in `forget` (a deletion).
    pub fn copy_audience_history(
        &self,
        from: &ProfileDb,
        forget: &[i64],
    ) -> Result<(), StoreError> {
        let journey_rows: Vec<(String, String)> = from
            .journey_state()?
            .into_iter()
            .filter(|(k, _)| !crate::outbox_db::journey_row_of(k, forget))
            .collect();
        let mut c = self.writer.lock().expect("profile writer poisoned");
        c.execute(
            "ATTACH DATABASE ?1 AS old",
            [from.path().to_string_lossy().as_ref()],
        )?;
        let copied = (|| -> Result<(), StoreError> {
            let tx = c.transaction()?;
            tx.execute_batch("CREATE TEMP TABLE forget (key INTEGER PRIMARY KEY)")?;
            for k in forget {
                tx.execute("INSERT OR IGNORE INTO forget (key) VALUES (?1)", [k])?;
            }
            tx.execute_batch(
                "INSERT OR IGNORE INTO audience_events SELECT * FROM old.audience_events
                     WHERE profile NOT IN (SELECT key FROM forget);
                 INSERT OR IGNORE INTO audience_sizes SELECT * FROM old.audience_sizes;
                 INSERT OR IGNORE INTO memberships SELECT * FROM old.memberships
                     WHERE profile NOT IN (SELECT key FROM forget);
                 INSERT OR IGNORE INTO outbox SELECT * FROM old.outbox
                     WHERE profile IS NULL OR profile NOT IN (SELECT key FROM forget);
                 INSERT OR IGNORE INTO delivery_attempts SELECT * FROM old.delivery_attempts
                     WHERE key IN (SELECT key FROM outbox);
                 DELETE FROM journey_state;
                 DROP TABLE forget;",
            )?;
            {
                let mut st = tx
                    .prepare("INSERT OR REPLACE INTO journey_state (key, value) VALUES (?1, ?2)")?;
                for (k, v) in &journey_rows {
                    st.execute([k, v])?;
                }
            }
            tx.commit()?;
            Ok(())
        })();
        c.execute("DETACH DATABASE old", [])?;
        copied
    }

    /// Removes audience entries and exits, and size samples, from before `cutoff` (retention:
    /// the events behind them are gone).
    pub fn purge_audience_history(&self, cutoff: Millis) -> Result<usize, StoreError> {
        let c = self.writer.lock().expect("profile writer poisoned");
        let n = c.execute("DELETE FROM audience_events WHERE at < ?1", [cutoff])?;
        c.execute("DELETE FROM audience_sizes WHERE at < ?1", [cutoff])?;
        Ok(n)
    }

    /// Every audience's members by profile key, by audience id.
    pub fn all_memberships(
        &self,
    ) -> Result<std::collections::BTreeMap<String, std::collections::BTreeSet<i64>>, StoreError>
    {
        self.readers.with(|c| {
            let mut st = c.prepare("SELECT audience, profile FROM memberships")?;
            let mut out: std::collections::BTreeMap<_, std::collections::BTreeSet<i64>> =
                Default::default();
            for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
                let (a, p) = row?;
                out.entry(a).or_default().insert(p);
            }
            Ok(out)
        })
    }

    /// Every (position, profile) of the timeline up to `position`, in log order: which
    /// profile each event was applied to, for loading the segmentation store at start-up.
    pub fn assignments_upto(&self, position: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        self.readers.with(|c| {
            let mut st =
                c.prepare("SELECT position, profile FROM timeline WHERE position <= ?1")?;
            let mut rows: Vec<(i64, i64)> = st
                .query_map([position], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            rows.sort_unstable();
            Ok(rows)
        })
    }
}
