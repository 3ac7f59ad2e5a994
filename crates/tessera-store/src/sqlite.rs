//! The embedded backend: one SQLite database file in WAL mode inside the data directory.

use crate::checkpointer;
use crate::dedup::{self, DedupWindow};
use crate::definitions;
use crate::governance_db;
use crate::log_writer::{self, Job};
use crate::pool::ReadPool;
use crate::privacy_db::{self, PrivacyRequest};
use crate::{
    admin, events, schema, AppendBatch, AppendCallback, CommitObserver, Definition, EventFilter,
    LogEntry, LogStats, Source, Store, StoreError, StoredEvent, Token, ViolationCount, Workspace,
};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tessera_core::Millis;

/// Tuning of the embedded store.
#[derive(Clone, Default)]
pub struct SqliteOptions {
    /// How many appends may wait for the next commit before `append` answers `Overloaded`.
    /// Zero means the default (1,024).
    pub queue_depth: usize,
    /// Told about every group commit (for metrics).
    pub commit_observer: Option<CommitObserver>,
    /// Most messageIds the dedup window holds; zero means the default (10 million).
    pub dedup_capacity: usize,
}

/// The embedded store: `tessera.db` in the data directory.
pub struct SqliteStore {
    db_path: PathBuf,
    /// Serialises the rare admin writes; the log has its own connection in the writer thread.
    admin_conn: Mutex<Connection>,
    readers: ReadPool,
    log_tx: Mutex<Option<SyncSender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Dropping it stops the checkpointer thread.
    checkpoint_stop: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    dedup: Arc<Mutex<DedupWindow>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir` and starts its log writer.
    pub fn open(data_dir: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let db_path = data_dir.join("tessera.db");
        let mut admin_conn = open_writer(&db_path)?;
        schema::migrate(&mut admin_conn)?;
        let log_conn = open_writer(&db_path)?;
        // Checkpoints happen on their own thread (see `checkpointer`), never at commit.
        log_conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // While a RESTART checkpoint holds the lock, poll finely: SQLite's default busy
        // handler sleeps up to 100 ms at a time, which showed up as multi-second stalls.
        log_conn.busy_handler(Some(|attempt| {
            std::thread::sleep(std::time::Duration::from_micros(200));
            attempt < 50_000
        }))?;
        let (checkpoint_stop, stop_rx) = std::sync::mpsc::channel();
        let checkpoint_conn = open_writer(&db_path)?;
        // The checkpointer gives up after ~50 ms rather than queue behind the writer: a late
        // RESTART would have to copy everything appended meanwhile while holding the writer back.
        checkpoint_conn.busy_handler(Some(|attempt| {
            std::thread::sleep(std::time::Duration::from_micros(200));
            attempt < 250
        }))?;
        std::thread::Builder::new()
            .name("wal-checkpointer".into())
            .spawn(move || {
                checkpointer::run(
                    checkpoint_conn,
                    stop_rx,
                    std::time::Duration::from_millis(100),
                )
            })
            .map_err(|source| StoreError::DataDir {
                path: data_dir.display().to_string(),
                source,
            })?;
        let depth = if options.queue_depth == 0 {
            1024
        } else {
            options.queue_depth
        };
        let capacity = match options.dedup_capacity {
            0 => dedup::DEFAULT_CAPACITY,
            n => n,
        };
        let mut window = DedupWindow::new(dedup::DEFAULT_WINDOW_MS, capacity);
        log_writer::load_window(&log_conn, &mut window, dedup::DEFAULT_WINDOW_MS)?;
        tracing::info!(ids = window.len(), "messageId dedup window loaded");
        let dedup = Arc::new(Mutex::new(window));
        let writer_dedup = dedup.clone();
        let (tx, rx) = sync_channel(depth);
        let observer = options.commit_observer.clone();
        let writer = std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || log_writer::run(log_conn, rx, observer, writer_dedup))
            .map_err(|source| StoreError::DataDir {
                path: data_dir.display().to_string(),
                source,
            })?;
        Ok(SqliteStore {
            readers: ReadPool::new(&db_path),
            db_path,
            admin_conn: Mutex::new(admin_conn),
            log_tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            checkpoint_stop: Mutex::new(Some(checkpoint_stop)),
            dedup,
        })
    }

    /// The database file, for operators who want to look inside with `sqlite3`.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    fn admin<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&self.admin_conn.lock().expect("admin connection poisoned"))
    }
}

fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // WAL + synchronous=FULL: a commit returns only after the WAL is fsync'd.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -64_000)?;
    Ok(conn)
}

impl Store for SqliteStore {
    fn append(&self, batch: AppendBatch, done: AppendCallback) -> Result<(), StoreError> {
        let guard = self.log_tx.lock().expect("log sender poisoned");
        let Some(tx) = guard.as_ref() else {
            return Err(StoreError::ShuttingDown);
        };
        match tx.try_send((batch, done)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoreError::Overloaded),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::ShuttingDown),
        }
    }

    fn append_blocking(&self, batch: AppendBatch, done: AppendCallback) -> Result<(), StoreError> {
        // Clone the sender so waiting for room does not hold the lock that shutdown takes.
        let tx = self.log_tx.lock().expect("log sender poisoned").clone();
        let tx = tx.ok_or(StoreError::ShuttingDown)?;
        tx.send((batch, done)).map_err(|_| StoreError::ShuttingDown)
    }

    fn create_workspace(&self, ws: &Workspace) -> Result<(), StoreError> {
        self.admin(|c| admin::create_workspace(c, ws))
    }
    fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        self.readers.with(admin::list_workspaces)
    }
    fn get_workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        self.readers.with(|c| admin::get_workspace(c, id))
    }
    fn delete_workspace(&self, id: &str) -> Result<bool, StoreError> {
        self.admin(|c| admin::delete_workspace(c, id))
    }
    fn create_source(&self, src: &Source) -> Result<(), StoreError> {
        self.admin(|c| admin::create_source(c, src))
    }
    fn list_sources(&self, workspace_id: &str) -> Result<Vec<Source>, StoreError> {
        self.readers.with(|c| admin::list_sources(c, workspace_id))
    }
    fn get_source(&self, workspace_id: &str, id: &str) -> Result<Option<Source>, StoreError> {
        self.readers
            .with(|c| admin::get_source(c, workspace_id, id))
    }
    fn source_by_write_key(&self, write_key: &str) -> Result<Option<Source>, StoreError> {
        self.readers
            .with(|c| admin::source_by_write_key(c, write_key))
    }
    fn update_source(&self, src: &Source) -> Result<bool, StoreError> {
        self.admin(|c| admin::update_source(c, src))
    }
    fn delete_source(&self, workspace_id: &str, id: &str) -> Result<bool, StoreError> {
        self.admin(|c| admin::delete_source(c, workspace_id, id))
    }
    fn create_token(&self, token: &Token, secret_hash: &str) -> Result<(), StoreError> {
        self.admin(|c| admin::create_token(c, token, secret_hash))
    }
    fn token_by_hash(&self, secret_hash: &str) -> Result<Option<Token>, StoreError> {
        self.readers.with(|c| admin::token_by_hash(c, secret_hash))
    }
    fn list_tokens(&self) -> Result<Vec<Token>, StoreError> {
        self.readers.with(admin::list_tokens)
    }
    fn delete_token(&self, id: &str) -> Result<bool, StoreError> {
        self.admin(|c| admin::delete_token(c, id))
    }
    fn import_progress(&self, source_id: &str, file_sha256: &str) -> Result<u64, StoreError> {
        self.readers
            .with(|c| admin::import_progress(c, source_id, file_sha256))
    }
    fn record_import_progress(
        &self,
        source_id: &str,
        file_sha256: &str,
        lines_done: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.admin(|c| admin::record_import_progress(c, source_id, file_sha256, lines_done, now))
    }
    fn list_events(
        &self,
        workspace_id: &str,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // A messageId seen within the dedup window is found by its position, not by a scan.
        let hint = filter.message_id.as_ref().and_then(|mid| {
            let window = self.dedup.lock().expect("dedup window poisoned");
            window.get(window.key(workspace_id, mid))
        });
        self.readers
            .with(|c| events::list_events(c, workspace_id, filter, hint, limit))
    }
    fn read_log(
        &self,
        workspace_id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        self.readers
            .with(|c| events::read_log(c, workspace_id, after, limit))
    }
    fn events_at(
        &self,
        workspace_id: &str,
        positions: &[i64],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.readers
            .with(|c| events::events_at(c, workspace_id, positions))
    }
    fn identity_rules(&self, workspace_id: &str) -> Result<Option<String>, StoreError> {
        self.readers
            .with(|c| admin::identity_rules(c, workspace_id))
    }
    fn set_identity_rules(
        &self,
        workspace_id: &str,
        rules: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.admin(|c| admin::set_identity_rules(c, workspace_id, rules, now))
    }
    fn save_definition(&self, d: &Definition) -> Result<(), StoreError> {
        self.admin(|c| definitions::save(c, d))
    }
    fn definitions(&self, workspace_id: &str) -> Result<Vec<Definition>, StoreError> {
        self.readers.with(|c| definitions::current(c, workspace_id))
    }
    fn definition_versions(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Vec<Definition>, StoreError> {
        self.readers
            .with(|c| definitions::versions(c, workspace_id, id))
    }
    fn save_privacy_request(&self, r: &PrivacyRequest) -> Result<(), StoreError> {
        self.admin(|c| privacy_db::save_request(c, r))
    }
    fn privacy_request(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Option<PrivacyRequest>, StoreError> {
        self.readers
            .with(|c| privacy_db::get_request(c, workspace_id, id))
    }
    fn unfinished_privacy_requests(&self) -> Result<Vec<PrivacyRequest>, StoreError> {
        self.readers.with(privacy_db::unfinished_requests)
    }
    fn privacy_requests(
        &self,
        workspace_id: &str,
        limit: usize,
    ) -> Result<Vec<PrivacyRequest>, StoreError> {
        self.readers
            .with(|c| privacy_db::list_requests(c, workspace_id, limit))
    }
    fn add_suppressions(
        &self,
        workspace_id: &str,
        request_id: &str,
        hashes: &[String],
        now: Millis,
    ) -> Result<(), StoreError> {
        self.admin(|c| privacy_db::add_suppressions(c, workspace_id, request_id, hashes, now))
    }
    fn remove_suppressions(
        &self,
        workspace_id: &str,
        hashes: &[String],
    ) -> Result<usize, StoreError> {
        self.admin(|c| privacy_db::remove_suppressions(c, workspace_id, hashes))
    }
    fn suppressions(&self, workspace_id: &str) -> Result<Vec<String>, StoreError> {
        self.readers
            .with(|c| privacy_db::suppressions(c, workspace_id))
    }
    fn workspace_salt(&self, workspace_id: &str, fresh: &str) -> Result<String, StoreError> {
        self.admin(|c| privacy_db::salt(c, workspace_id, fresh))
    }
    fn positions_before(&self, workspace_id: &str, cutoff: Millis) -> Result<Vec<i64>, StoreError> {
        self.readers
            .with(|c| events::positions_before(c, workspace_id, cutoff))
    }
    fn delete_events(&self, workspace_id: &str, positions: &[i64]) -> Result<usize, StoreError> {
        self.admin(|c| privacy_db::delete_events(c, workspace_id, positions))
    }
    fn record_violations(&self, counts: &[ViolationCount]) -> Result<(), StoreError> {
        self.admin(|c| governance_db::record(c, counts))
    }
    fn violation_counts(
        &self,
        workspace_id: &str,
        since_day: i64,
        until_day: i64,
    ) -> Result<Vec<ViolationCount>, StoreError> {
        self.readers
            .with(|c| governance_db::counts(c, workspace_id, since_day, until_day))
    }
    fn last_position(&self) -> Result<i64, StoreError> {
        self.readers.with(events::last_position)
    }
    fn log_stats(&self) -> Result<LogStats, StoreError> {
        let last_position = self.last_position()?;
        let bytes_on_disk = ["", "-wal"]
            .iter()
            .filter_map(|suffix| {
                let mut p = self.db_path.clone().into_os_string();
                p.push(suffix);
                std::fs::metadata(p).ok()
            })
            .map(|m| m.len())
            .sum();
        Ok(LogStats {
            last_position,
            bytes_on_disk,
        })
    }

    fn shutdown(&self) {
        // Dropping the sender lets the writer drain its queue, commit, and exit.
        self.log_tx.lock().expect("log sender poisoned").take();
        self.checkpoint_stop
            .lock()
            .expect("checkpointer poisoned")
            .take();
        if let Some(handle) = self.writer.lock().expect("writer handle poisoned").take() {
            let _ = handle.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}
