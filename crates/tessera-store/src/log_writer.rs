//! The group-commit writer of the event log.
//!
//! One thread owns the log's write connection. It takes every append queued while the previous
//! commit was running, writes them all in one transaction, commits (SQLite in WAL mode with
//! `synchronous=FULL` fsyncs the WAL at commit), and only then calls each caller back. Under
//! load one fsync covers hundreds of requests; with no load a lone request commits at once.
//! The queue is bounded so that overload becomes a quick `Overloaded` answer, not unbounded
//! memory.

use crate::dedup::DedupWindow;
use crate::StoreError;
use rusqlite::{params, Connection};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_core::NormalizedEvent;

/// Events of one request, all for one workspace and source.
#[derive(Debug)]
pub struct AppendBatch {
    pub workspace_id: String,
    pub source_id: String,
    pub events: Vec<NormalizedEvent>,
}

/// Per event of an [`AppendBatch`], in order: its log position, or `None` when an event with the
/// same `messageId` was already in the workspace's log (a retry), so nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    pub positions: Vec<Option<i64>>,
}

/// Called once per batch after its commit is durable (or failed).
pub type AppendCallback = Box<dyn FnOnce(Result<AppendOutcome, StoreError>) + Send>;

/// Told about every commit: how long it took (write + fsync) and how many events it wrote.
pub type CommitObserver = std::sync::Arc<dyn Fn(Duration, usize) + Send + Sync>;

pub(crate) type Job = (AppendBatch, AppendCallback);

/// The most events one transaction takes, to bound the latency a single commit adds.
const MAX_EVENTS_PER_COMMIT: usize = 20_000;

pub(crate) fn run(
    mut conn: Connection,
    rx: Receiver<Job>,
    observer: Option<CommitObserver>,
    dedup: Arc<Mutex<DedupWindow>>,
) {
    let mut jobs: Vec<Job> = Vec::new();
    loop {
        match rx.recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
        let mut count = jobs[0].0.events.len();
        while count < MAX_EVENTS_PER_COMMIT {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.0.events.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let result = write_all(&mut conn, &jobs, &dedup);
        if let Some(obs) = &observer {
            obs(started.elapsed(), count);
        }
        match result {
            Ok(outcomes) => {
                for ((_, done), outcome) in jobs.drain(..).zip(outcomes) {
                    done(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = count, "event log commit failed");
                let msg = e.to_string();
                for (_, done) in jobs.drain(..) {
                    done(Err(StoreError::CommitFailed(msg.clone())));
                }
            }
        }
    }
    // A clean stop leaves an empty WAL, so the database file alone holds everything.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "final WAL checkpoint failed");
    }
    tracing::info!("event log writer stopped");
}

fn write_all(
    conn: &mut Connection,
    jobs: &[Job],
    dedup: &Mutex<DedupWindow>,
) -> Result<Vec<AppendOutcome>, StoreError> {
    let mut window = dedup.lock().expect("dedup window poisoned");
    let mut added: Vec<(u64, i64)> = Vec::new();
    let result = insert_all(conn, jobs, &mut window, &mut added);
    if result.is_err() {
        // Nothing of the transaction was stored: its ids must not count as seen.
        for (key, position) in added {
            window.remove(key, position);
        }
    }
    if let Some(newest) = jobs
        .iter()
        .flat_map(|(b, _)| b.events.iter().map(|e| e.received_at))
        .max()
    {
        window.expire(newest);
    }
    result
}

fn insert_all(
    conn: &mut Connection,
    jobs: &[Job],
    window: &mut DedupWindow,
    added: &mut Vec<(u64, i64)>,
) -> Result<Vec<AppendOutcome>, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (workspace_id, source_id, message_id, type, event, user_id,
                                 anonymous_id, timestamp, received_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        let mut same_message = tx.prepare_cached(
            "SELECT 1 FROM events WHERE position = ?1 AND workspace_id = ?2 AND message_id = ?3",
        )?;
        for (batch, _) in jobs {
            let mut positions = Vec::with_capacity(batch.events.len());
            for e in &batch.events {
                let key = window.key(&batch.workspace_id, &e.message_id);
                if let Some(seen) = window.get(key) {
                    // Confirm against the stored row: a hash collision must not drop an event.
                    if same_message.exists(params![seen, batch.workspace_id, e.message_id])? {
                        positions.push(None);
                        continue;
                    }
                }
                insert.execute(params![
                    batch.workspace_id,
                    batch.source_id,
                    e.message_id,
                    e.kind.as_str(),
                    e.event,
                    e.user_id,
                    e.anonymous_id,
                    e.timestamp,
                    e.received_at,
                    e.body,
                ])?;
                let position = tx.last_insert_rowid();
                window.insert(key, position, e.received_at);
                added.push((key, position));
                positions.push(Some(position));
            }
            outcomes.push(AppendOutcome { positions });
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

/// Fills the window from the newest end of the log: every message received within the window
/// before the newest one, up to the window's capacity.
pub(crate) fn load_window(
    conn: &Connection,
    window: &mut DedupWindow,
    window_ms: i64,
) -> Result<(), StoreError> {
    let mut st = conn.prepare(
        "SELECT position, workspace_id, message_id, received_at FROM events ORDER BY position DESC",
    )?;
    let mut rows = st.query([])?;
    let mut newest: Option<i64> = None;
    let mut loaded: Vec<(u64, i64, i64)> = Vec::new();
    while let Some(r) = rows.next()? {
        let (position, ws, mid, at): (i64, String, String, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let newest = *newest.get_or_insert(at);
        if at < newest - window_ms || loaded.len() >= window.capacity() {
            break;
        }
        loaded.push((window.key(&ws, &mid), position, at));
    }
    for (key, position, at) in loaded.into_iter().rev() {
        window.insert(key, position, at);
    }
    Ok(())
}
