//! The single-instance lock: one running Salon per history.
//!
//! An OS advisory lock (flock) on a `.lock` file next to the database. The OS drops it
//! when the process dies, even by SIGKILL, so a crash never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Result, StoreError};

/// How long a lock that looks held is retried before reporting [`StoreError::Locked`].
const GRACE: Duration = Duration::from_millis(500);
const RETRY_EVERY: Duration = Duration::from_millis(10);

/// Held for as long as a `Store` is open.
#[derive(Debug)]
pub(crate) struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    /// Takes the lock or fails with [`StoreError::Locked`].
    ///
    /// Retries briefly first: a child process forked by this one (e.g. any
    /// `std::process::Command`) shares the lock's open file until it execs, so a lock just
    /// released can look held for a moment. Another running Salon holds it for good and
    /// still gets `Locked` after the grace period.
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        let deadline = Instant::now() + GRACE;
        loop {
            match Self::try_acquire(path) {
                Err(StoreError::Locked) if Instant::now() < deadline => {
                    std::thread::sleep(RETRY_EVERY);
                }
                other => return other,
            }
        }
    }

    fn try_acquire(path: &Path) -> Result<Self> {
        let file = crate::key::private(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
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
