//! Background WAL checkpoints.
//!
//! SQLite would otherwise checkpoint inside the committing connection, stalling the log writer
//! (measured: 11% of the server's CPU, all on the writer's critical path). Here a PASSIVE
//! checkpoint runs often on its own connection and never blocks the writer. Under sustained
//! load PASSIVE alone never lets the WAL start over, so the file grew without bound (1 GB in a
//! 10 s benchmark) and every frame landed in a newly allocated block that the kernel had to
//! zero first (28% of the writer's time). So once the WAL passes [`RESTART_FRAMES`], a RESTART
//! checkpoint makes the next commit write from the WAL's start again, over blocks already on
//! disk. It holds the writer back only while it copies the few frames PASSIVE had not.

use rusqlite::Connection;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// WAL frames past which the checkpointer restarts the WAL (about 64 MiB of 4 KiB pages).
const RESTART_FRAMES: i64 = 16_384;
/// A restart waits until PASSIVE checkpoints have copied all but this many frames, so the
/// writer is held back only for a short copy.
const RESTART_LAG_FRAMES: i64 = 2_048;

/// Checkpoints every `every` until `stop` is dropped or signalled.
pub(crate) fn run(conn: Connection, stop: Receiver<()>, every: Duration) {
    loop {
        match stop.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = checkpoint(&conn) {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
            _ => return,
        }
    }
}

fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    let (log, done): (i64, i64) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })?;
    if log > RESTART_FRAMES && log - done < RESTART_LAG_FRAMES {
        // Busy (the writer held on) is fine: the next round tries again.
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}
