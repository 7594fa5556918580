//! The single-instance lock: one running Salon per history.
//!
//! An OS advisory lock (flock) on a `.lock` file next to the database. The OS drops it
//! when the process dies, even by SIGKILL, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::{Result, StoreError};

/// Held for as long as a `Store` is open.
#[derive(Debug)]
pub(crate) struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    /// Takes the lock or fails with [`StoreError::Locked`] at once (never waits).
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StoreError::io(format!("opening lock file {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(InstanceLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StoreError::Locked),
            Err(TryLockError::Error(e)) => {
                Err(StoreError::io(format!("locking {}", path.display()), e))
            }
        }
    }
}
