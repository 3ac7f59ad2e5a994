//! The state writer: one thread per workspace commits the applier's batches to the state
//! file, so the applier never waits for SQLite, and answers whoever waits for a batch.

use crate::applier::{WorkspaceState, WriterJob};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Delivered records and delivery attempts are kept this long (dead and pending ones stay).
const KEEP_DELIVERED: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often the writer removes what is older.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The writer thread: commits batches in order. A batch that cannot be written after a few
/// tries stops all later writes, so the state file stays consistent at its last good position
/// (a restart resumes from there and re-derives the rest from the log).
pub(crate) fn write_batches(state: &WorkspaceState, batches: Receiver<WriterJob>) {
    lower_priority();
    let mut broken = false;
    let mut purged = Instant::now();
    for (db, batch, reply) in batches {
        if broken {
            state.writer_queue.fetch_sub(1, Ordering::SeqCst);
            if let Some(r) = reply {
                let _ = r.send(Err("state writes stopped after an error".into()));
            }
            continue;
        }
        let mut tries = 0;
        let started = Instant::now();
        loop {
            match db.commit(&batch) {
                Ok(()) => {
                    let ms = started.elapsed().as_millis() as i64;
                    match batch.documents {
                        true => state.docs_took_ms.store(ms, Ordering::SeqCst),
                        false => state.commit_took_ms.store(ms, Ordering::SeqCst),
                    }
                    break;
                }
                Err(e) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(workspace = %state.workspace, error = %e, "committing profile state failed; retrying");
                    std::thread::sleep(Duration::from_millis(200 * tries));
                }
                Err(e) => {
                    tracing::error!(workspace = %state.workspace, error = %e, "committing profile state failed; state writes stop until restart");
                    broken = true;
                    break;
                }
            }
        }
        // A rebuild may have swapped in a new state file meanwhile; only its position counts.
        // Checked and stored under the lock the swap takes, so the two cannot interleave.
        let current = state.db.read().expect("state lock poisoned");
        if !broken && Arc::ptr_eq(&db, &current) {
            state.committed.store(batch.position, Ordering::SeqCst);
            state.commits.fetch_add(1, Ordering::SeqCst);
        }
        if !broken && purged.elapsed() > PURGE_EVERY {
            purged = Instant::now();
            let before = crate::state::now_millis() - KEEP_DELIVERED.as_millis() as i64;
            if let Err(e) = db.purge_delivered(before) {
                tracing::warn!(workspace = %state.workspace, error = %e, "purging delivered records failed");
            }
        }
        state.writer_queue.fetch_sub(1, Ordering::SeqCst);
        if let Some(r) = reply {
            let _ = r.send(match broken {
                false => Ok(()),
                true => Err("writing the state file failed".into()),
            });
        }
    }
}

/// Runs the calling thread at a lower CPU priority (nice 10). On a busy machine the threads
/// that acknowledge events come first: an event is safe once it is in the log, and the
/// applier catches up when the burst is over.
pub(crate) fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on this thread's own id; no memory is shared.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}
