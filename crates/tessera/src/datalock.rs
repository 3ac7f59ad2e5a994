//! An exclusive lock on a data directory, so that `tessera replay` never rebuilds profiles
//! under a running server (and two servers never share one directory).

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Held for as long as the value lives; the OS releases it if the process dies.
pub struct DataLock {
    _file: File,
}

impl DataLock {
    pub fn acquire(data_dir: &Path) -> Result<DataLock, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let path = data_dir.join("tessera.lock");
        let file =
            File::create(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(format!(
                "{} is in use by another Tessera process (stop the server first)",
                data_dir.display()
            ));
        }
        Ok(DataLock { _file: file })
    }
}
