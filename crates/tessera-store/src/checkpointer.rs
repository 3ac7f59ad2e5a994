//! Background WAL checkpoints. SQLite would otherwise checkpoint inside the committing
//! connection, stalling the log writer (measured: 11% of the server's CPU, all of it on the
//! writer's critical path). A PASSIVE checkpoint on its own connection never blocks the writer.

use rusqlite::Connection;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// Checkpoints every `every` until `stop` is dropped or signalled.
pub(crate) fn run(conn: Connection, stop: Receiver<()>, every: Duration) {
    loop {
        match stop.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
            _ => return,
        }
    }
}
