//! The derived state of one workspace (profiles, accounts, timelines, trait history, merge
//! records) in its own SQLite file, written by the workspace's applier together with the log
//! position it reflects, in one transaction.
//!
//! Files are `profiles/<workspace>.<generation>.db`. A rebuild (replay, split, rule change)
//! writes the next generation beside the live one and marks it complete when it has caught
//! up; opening picks the newest complete generation and removes the rest. Because all of it
//! can be re-derived from the log, commits use `synchronous=NORMAL`: a power cut may roll
//! back the newest commits, but state and position always roll back together.

use crate::pool::ReadPool;
use crate::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tessera_core::identity::{CommitBatch, HistoryRow, MergeRow};

/// Version of this file's layout. A file of another version is not read: the state is
/// derived, so it is rebuilt from the log instead.
const FORMAT: i64 = 3;

const SCHEMA: &str = r#"
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL,
    docs_position INTEGER NOT NULL,
    rules TEXT,
    complete INTEGER NOT NULL
);
CREATE TABLE profiles (key INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE accounts (key INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE absorbed (
    profile INTEGER PRIMARY KEY,
    survivor INTEGER NOT NULL,
    live INTEGER NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX absorbed_live ON absorbed(live);
CREATE TABLE timeline (
    profile INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (profile, position)
) WITHOUT ROWID;
CREATE TABLE trait_history (
    profile INTEGER NOT NULL,
    position INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    source TEXT NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (profile, position, key)
) WITHOUT ROWID;
CREATE TABLE merges (
    position INTEGER NOT NULL,
    survivor INTEGER NOT NULL,
    absorbed TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (position, survivor)
);
"#;

/// What a restart needs to rebuild the hot state.
#[derive(Debug, Default)]
pub struct StoredState {
    pub position: i64,
    pub profiles: Vec<(i64, String)>,
    /// (absorbed profile, survivor at merge time).
    pub absorbed: Vec<(i64, i64)>,
    pub accounts: Vec<(i64, String)>,
}

/// One row of stored state, as [`ProfileDb::read_state`] streams it.
#[derive(Debug)]
pub enum StoredRow<'a> {
    /// (key, document)
    Account(i64, &'a str),
    /// (key, document)
    Profile(i64, &'a str),
    /// (merged-away profile, its survivor)
    Absorbed(i64, i64),
}

/// Where an absorbed profile went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsorbedInfo {
    pub survivor: i64,
    pub live: i64,
    pub position: i64,
}

pub struct ProfileDb {
    path: PathBuf,
    pub(crate) writer: Mutex<Connection>,
    pub(crate) readers: ReadPool,
    /// Set when a newer generation replaced this one: its files go when it is dropped.
    retired: AtomicBool,
}

fn file_name(workspace: &str, generation: u64) -> String {
    format!("{workspace}.{generation}.db")
}

/// Generations present for a workspace, ascending.
fn generations(dir: &Path, workspace: &str) -> Vec<u64> {
    let prefix = format!("{workspace}.");
    let mut out: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix(&prefix)?
                .strip_suffix(".db")?
                .parse()
                .ok()
        })
        .collect();
    out.sort_unstable();
    out
}

fn remove_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -64_000)?;
    // Checkpoint in large steps: the applier's commits are big and frequent.
    conn.pragma_update(None, "wal_autocheckpoint", 20_000)?;
    Ok(conn)
}

impl ProfileDb {
    /// Opens the newest complete generation of a workspace's state, creating an empty one
    /// (complete at position 0) when there is none, and removes every other generation.
    pub fn open_latest(dir: &Path, workspace: &str) -> Result<ProfileDb, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let gens = generations(dir, workspace);
        let mut chosen = None;
        for &g in gens.iter().rev() {
            let path = dir.join(file_name(workspace, g));
            match ProfileDb::open_path(&path) {
                Ok(db) if db.is_complete()? => {
                    chosen = Some((g, db));
                    break;
                }
                _ => {}
            }
        }
        for &g in &gens {
            if chosen.as_ref().map(|c| c.0) != Some(g) {
                remove_files(&dir.join(file_name(workspace, g)));
            }
        }
        match chosen {
            Some((_, db)) => Ok(db),
            None => {
                let db = ProfileDb::create(&dir.join(file_name(workspace, 1)))?;
                db.mark_complete()?;
                Ok(db)
            }
        }
    }

    /// Deletes every generation of a workspace's state (the workspace was deleted). Handles
    /// still open keep reading their (unlinked) file until dropped.
    pub fn delete_all(dir: &Path, workspace: &str) {
        for g in generations(dir, workspace) {
            remove_files(&dir.join(file_name(workspace, g)));
        }
    }

    /// Creates the next generation, empty and incomplete, for a rebuild.
    pub fn create_next(dir: &Path, workspace: &str) -> Result<ProfileDb, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let next = generations(dir, workspace).last().copied().unwrap_or(0) + 1;
        ProfileDb::create(&dir.join(file_name(workspace, next)))
    }

    /// Creates an empty, incomplete state file at `path`, replacing any file there.
    pub fn create(path: &Path) -> Result<ProfileDb, StoreError> {
        remove_files(path);
        let db = ProfileDb::open_path(path)?;
        {
            let mut c = db.writer.lock().expect("profile writer poisoned");
            let tx = c.transaction()?;
            tx.execute_batch(SCHEMA)?;
            tx.execute_batch(crate::audience_db::SCHEMA)?;
            tx.execute(
                "INSERT INTO meta (id, position, docs_position, complete) VALUES (1, 0, 0, 0)",
                [],
            )?;
            tx.pragma_update(None, "user_version", FORMAT)?;
            tx.commit()?;
        }
        Ok(db)
    }

    fn open_path(path: &Path) -> Result<ProfileDb, StoreError> {
        let writer = open_conn(path)?;
        // Activation's tables came after format 3; files without them gain them here.
        crate::outbox_db::create(&writer)?;
        Ok(ProfileDb {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: ReadPool::new(path),
            retired: AtomicBool::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn is_complete(&self) -> Result<bool, StoreError> {
        let c = self.writer.lock().expect("profile writer poisoned");
        let format: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if format != FORMAT {
            return Ok(false);
        }
        let v: Option<i64> = c
            .query_row("SELECT complete FROM meta WHERE id = 1", [], |r| r.get(0))
            .optional()
            .unwrap_or(None);
        Ok(v == Some(1))
    }

    /// Marks a rebuilt generation as the one to open from now on.
    pub fn mark_complete(&self) -> Result<(), StoreError> {
        let c = self.writer.lock().expect("profile writer poisoned");
        c.execute("UPDATE meta SET complete = 1 WHERE id = 1", [])?;
        Ok(())
    }

    /// Deletes this generation's files once the last user drops it.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    /// The log position the stored state reflects.
    pub fn position(&self) -> Result<i64, StoreError> {
        let c = self.writer.lock().expect("profile writer poisoned");
        Ok(c.query_row("SELECT position FROM meta WHERE id = 1", [], |r| r.get(0))?)
    }

    /// Everything needed to rebuild the engine: the documents and merges as of the last
    /// batch that carried documents. The applier re-derives everything after it from the
    /// log; the rows it writes again are the same rows, so writing them twice is harmless.
    pub fn load(&self) -> Result<StoredState, StoreError> {
        let mut state = StoredState::default();
        state.position = self.read_state(|row| {
            match row {
                StoredRow::Account(key, doc) => state.accounts.push((key, doc.to_string())),
                StoredRow::Profile(key, doc) => state.profiles.push((key, doc.to_string())),
                StoredRow::Absorbed(key, survivor) => state.absorbed.push((key, survivor)),
            }
            Ok(())
        })?;
        Ok(state)
    }

    /// The identity rules (JSON) the stored documents were derived under and events after them
    /// are to be applied under; `None` before the first documents were written.
    pub fn rules(&self) -> Result<Option<String>, StoreError> {
        let c = self.writer.lock().expect("profile writer poisoned");
        Ok(c.query_row("SELECT rules FROM meta WHERE id = 1", [], |r| r.get(0))?)
    }

    /// Records the rules a fresh state file is to be derived under.
    pub fn set_rules(&self, rules: &str) -> Result<(), StoreError> {
        let c = self.writer.lock().expect("profile writer poisoned");
        c.execute("UPDATE meta SET rules = ?1 WHERE id = 1", [rules])?;
        Ok(())
    }

    /// How many profile documents are stored (to size the hot state before reading them).
    pub fn profile_count(&self) -> Result<usize, StoreError> {
        let c = self.writer.lock().expect("profile writer poisoned");
        let n: i64 = c.query_row("SELECT count(*) FROM profiles", [], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Streams what [`ProfileDb::load`] returns, one row at a time (accounts first, then
    /// profiles by key, then merged-away profiles), so a start-up never holds every document
    /// in memory. Returns the position the documents reflect.
    pub fn read_state(
        &self,
        mut row: impl FnMut(StoredRow<'_>) -> Result<(), String>,
    ) -> Result<i64, StoreError> {
        let c = self.writer.lock().expect("profile writer poisoned");
        let position: i64 =
            c.query_row("SELECT docs_position FROM meta WHERE id = 1", [], |r| {
                r.get(0)
            })?;
        let bad = |key: i64, reason: String| StoreError::InvalidState(format!("{key}: {reason}"));
        let mut st = c.prepare("SELECT key, doc FROM accounts ORDER BY key")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let key: i64 = r.get(0)?;
            let doc = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            row(StoredRow::Account(key, doc)).map_err(|e| bad(key, e))?;
        }
        let mut st = c.prepare(
            "SELECT key, doc FROM profiles WHERE key NOT IN
             (SELECT profile FROM absorbed WHERE position <= ?1) ORDER BY key",
        )?;
        let mut rows = st.query([position])?;
        while let Some(r) = rows.next()? {
            let key: i64 = r.get(0)?;
            let doc = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            row(StoredRow::Profile(key, doc)).map_err(|e| bad(key, e))?;
        }
        let mut st = c.prepare(
            "SELECT profile, survivor FROM absorbed WHERE position <= ?1 ORDER BY profile",
        )?;
        let mut rows = st.query([position])?;
        while let Some(r) = rows.next()? {
            let key: i64 = r.get(0)?;
            row(StoredRow::Absorbed(key, r.get(1)?)).map_err(|e| bad(key, e))?;
        }
        Ok(position)
    }

    /// Writes one batch and its position in one transaction.
    pub fn commit(&self, b: &CommitBatch) -> Result<(), StoreError> {
        let mut c = self.writer.lock().expect("profile writer poisoned");
        let tx = c.transaction()?;
        {
            for a in &b.absorbed {
                // OR IGNORE then DELETE: after a restart, re-derived rows may already exist
                // under the survivor.
                for table in ["timeline", "trait_history"] {
                    tx.prepare_cached(&format!(
                        "UPDATE OR IGNORE {table} SET profile = ?2 WHERE profile = ?1"
                    ))?
                    .execute(params![a.profile, a.live])?;
                    tx.prepare_cached(&format!("DELETE FROM {table} WHERE profile = ?1"))?
                        .execute([a.profile])?;
                }
                tx.prepare_cached("UPDATE absorbed SET live = ?2 WHERE live = ?1")?
                    .execute(params![a.profile, a.live])?;
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO absorbed (profile, survivor, live, position)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![a.profile, a.survivor, a.live, a.position])?;
            }
            if b.documents {
                let docs_position = match b.docs_position {
                    0 => b.position,
                    p => p,
                };
                let mut st = tx
                    .prepare_cached("INSERT OR REPLACE INTO profiles (key, doc) VALUES (?1, ?2)")?;
                for (key, doc) in &b.profiles {
                    st.execute(params![key, doc])?;
                }
                let mut st = tx
                    .prepare_cached("INSERT OR REPLACE INTO accounts (key, doc) VALUES (?1, ?2)")?;
                for (key, doc) in &b.accounts {
                    st.execute(params![key, doc])?;
                }
                tx.prepare_cached(
                    "DELETE FROM profiles WHERE key IN
                     (SELECT profile FROM absorbed WHERE position <= ?1)",
                )?
                .execute([docs_position])?;
                tx.prepare_cached(
                    "UPDATE meta SET docs_position = max(docs_position, ?1),
                     rules = coalesce(?2, rules) WHERE id = 1",
                )?
                .execute(params![docs_position, b.rules])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO timeline (profile, position) VALUES (?1, ?2)",
            )?;
            // In key order: each insert lands next to the one before, on a page already in hand.
            let mut rows: Vec<&(i64, i64)> = b.assignments.iter().collect();
            rows.sort_unstable();
            for (profile, position) in rows {
                st.execute(params![profile, position])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO trait_history (profile, position, key, value, source, ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for h in &b.history {
                st.execute(params![
                    h.profile, h.position, h.key, h.value, h.source, h.ts
                ])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO merges (position, survivor, absorbed, identifiers, ts)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for m in &b.merges {
                let ids: Vec<[&str; 2]> = m
                    .identifiers
                    .iter()
                    .map(|(t, v)| [t.as_str(), v.as_str()])
                    .collect();
                st.execute(params![
                    m.position,
                    m.survivor,
                    serde_json::to_string(&m.absorbed).expect("keys serialise"),
                    serde_json::to_string(&ids).expect("strings serialise"),
                    m.ts
                ])?;
            }
            crate::audience_db::commit(&tx, b)?;
            crate::outbox_db::commit(&tx, b)?;
            tx.prepare_cached("UPDATE meta SET position = max(position, ?1) WHERE id = 1")?
                .execute([b.position])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Positions of a profile's events, newest first, strictly below `before`.
    pub fn timeline(
        &self,
        profile: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<i64>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT position FROM timeline WHERE profile = ?1 AND position < ?2
                 ORDER BY position DESC LIMIT ?3",
            )?;
            let rows = st
                .query_map(
                    params![profile, before.unwrap_or(i64::MAX), limit as i64],
                    |r| r.get(0),
                )?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Trait changes of a profile, newest (by log position) first, then by key; `after` is
    /// the (position, key) of the last row of the previous page.
    pub fn history(
        &self,
        profile: i64,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let (position, key) = after.unwrap_or((i64::MAX, String::new()));
        self.readers.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT profile, position, key, value, source, ts FROM trait_history
                 WHERE profile = ?1 AND (position < ?2 OR (position = ?2 AND key > ?3))
                 ORDER BY position DESC, key LIMIT ?4",
            )?;
            let rows = st
                .query_map(params![profile, position, key, limit as i64], history_row)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Each trait's value as of `ts`: the latest change at or before it (by event time, then
    /// log position).
    pub fn traits_as_of(&self, profile: i64, ts: i64) -> Result<Vec<HistoryRow>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT profile, position, key, value, source, ts FROM trait_history
                 WHERE profile = ?1 AND ts <= ?2 ORDER BY key, ts DESC, position DESC",
            )?;
            let mut out: Vec<HistoryRow> = Vec::new();
            for row in st.query_map(params![profile, ts], history_row)? {
                let row = row?;
                if out.last().is_none_or(|l| l.key != row.key) {
                    out.push(row);
                }
            }
            Ok(out)
        })
    }

    /// Merges that built a profile: those whose survivor is the profile or one it absorbed,
    /// oldest first.
    pub fn merges(&self, profile: i64) -> Result<Vec<MergeRow>, StoreError> {
        self.readers.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT position, survivor, absorbed, identifiers, ts FROM merges
                 WHERE survivor = ?1 OR survivor IN (SELECT profile FROM absorbed WHERE live = ?1)
                 ORDER BY position, survivor",
            )?;
            let rows = st
                .query_map([profile], merge_row)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// The merge made by the event at `position` into `survivor`.
    pub fn merge_at(&self, position: i64, survivor: i64) -> Result<Option<MergeRow>, StoreError> {
        self.readers.with(|c| {
            Ok(c.query_row(
                "SELECT position, survivor, absorbed, identifiers, ts FROM merges
                     WHERE position = ?1 AND survivor = ?2",
                params![position, survivor],
                merge_row,
            )
            .optional()?)
        })
    }

    /// Every profile merged (directly or not) into this live one.
    pub fn absorbed_into(&self, live: i64) -> Result<Vec<i64>, StoreError> {
        self.readers.with(|c| {
            let mut st =
                c.prepare("SELECT profile FROM absorbed WHERE live = ?1 ORDER BY profile")?;
            let rows = st
                .query_map([live], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Where an absorbed profile went, if it was absorbed.
    pub fn absorbed(&self, profile: i64) -> Result<Option<AbsorbedInfo>, StoreError> {
        self.readers.with(|c| {
            Ok(c.query_row(
                "SELECT survivor, live, position FROM absorbed WHERE profile = ?1",
                [profile],
                |r| {
                    Ok(AbsorbedInfo {
                        survivor: r.get(0)?,
                        live: r.get(1)?,
                        position: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
    }

    /// Every stored profile document, by key (for replay comparisons and exports).
    pub fn profile_docs(&self) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(self.load()?.profiles)
    }
}

impl Drop for ProfileDb {
    fn drop(&mut self) {
        if self.retired.load(Ordering::SeqCst) {
            remove_files(&self.path);
        }
    }
}

fn history_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryRow> {
    Ok(HistoryRow {
        profile: r.get(0)?,
        position: r.get(1)?,
        key: r.get(2)?,
        value: r.get(3)?,
        source: r.get(4)?,
        ts: r.get(5)?,
    })
}

fn merge_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MergeRow> {
    let absorbed: String = r.get(2)?;
    let ids: String = r.get(3)?;
    let ids: Vec<(String, String)> = serde_json::from_str(&ids).unwrap_or_default();
    Ok(MergeRow {
        position: r.get(0)?,
        survivor: r.get(1)?,
        absorbed: serde_json::from_str(&absorbed).unwrap_or_default(),
        identifiers: ids,
        ts: r.get(4)?,
    })
}

#[cfg(test)]
#[path = "profile_db_tests.rs"]
mod tests;
