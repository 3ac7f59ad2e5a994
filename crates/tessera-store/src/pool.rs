//! A small pool of read-only SQLite connections. WAL mode lets readers run beside the
//! writer, so reads never wait for a commit.

use crate::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Mutex;

pub(crate) struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
}

impl ReadPool {
    pub(crate) fn new(path: &Path) -> ReadPool {
        ReadPool {
            idle: Mutex::new(Vec::new()),
            path: path.to_path_buf(),
        }
    }

    /// Runs `f` on an idle connection, opening one when none is idle.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.idle.lock().expect("read pool poisoned").pop();
        let conn = match conn {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().expect("read pool poisoned");
        if idle.len() < 16 {
            idle.push(conn);
        }
        result
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "cache_size", -16_000)?;
    Ok(conn)
}
