//! The group-commit writer of the event log.
//!
//! One thread owns the log's write connection. It takes every append queued while the previous
//! commit was running, writes them all in one transaction, commits (SQLite in WAL mode with
//! `synchronous=FULL` fsyncs the WAL at commit), and only then calls each caller back. Under
//! load one fsync covers hundreds of requests; with no load a lone request commits at once.
//! The queue is bounded so that overload becomes a quick `Overloaded` answer, not unbounded
//! memory.

use crate::StoreError;
use rusqlite::{params, Connection};
use std::sync::mpsc::Receiver;
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

pub(crate) fn run(mut conn: Connection, rx: Receiver<Job>, observer: Option<CommitObserver>) {
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
        let result = write_all(&mut conn, &jobs);
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

fn write_all(conn: &mut Connection, jobs: &[Job]) -> Result<Vec<AppendOutcome>, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (workspace_id, source_id, message_id, type, event, user_id,
                                 anonymous_id, timestamp, received_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (workspace_id, message_id) DO NOTHING",
        )?;
        for (batch, _) in jobs {
            let mut positions = Vec::with_capacity(batch.events.len());
            for e in &batch.events {
                let changed = insert.execute(params![
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
                positions.push((changed == 1).then(|| tx.last_insert_rowid()));
            }
            outcomes.push(AppendOutcome { positions });
        }
    }
    tx.commit()?;
    Ok(outcomes)
}
