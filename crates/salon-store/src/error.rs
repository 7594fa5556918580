//! The one error type of this crate.
//!
//! Every variant a user can hit carries a message that says what to do about it, so the
//! desktop app can show `to_string()` as is.

use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The passphrase does not unlock this database (detected on open, before the
    /// database file is read).
    #[error(
        "wrong passphrase: this Salon history is locked with a different passphrase; try again"
    )]
    WrongPassphrase,

    /// A raw key (e.g. one remembered in the OS keychain) does not unlock this database.
    #[error(
        "the remembered key no longer unlocks this Salon history; unlock it with your passphrase"
    )]
    WrongKey,

    /// The database or its header was written by a newer version of Salon.
    #[error(
        "this Salon history was written by a newer version of Salon (format {found}, this version knows up to {supported}); update Salon to open it"
    )]
    NewerVersion {
        /// The version found in the file.
        found: u32,
        /// The newest version this build understands.
        supported: u32,
    },

    /// The key is right but the file cannot be read: it is damaged.
    #[error(
        "the Salon history file is damaged ({detail}); it was left untouched: restore it from a backup or start a new history"
    )]
    Corrupt {
        /// What was found to be wrong, for logs and bug reports.
        detail: String,
    },

    /// The disk (or the database's size limit) is full.
    #[error("the disk is full: free some space and try again (nothing was lost)")]
    DiskFull,

    /// Another running Salon holds this database.
    #[error("this Salon history is in use by another running Salon; close it and try again")]
    Locked,

    /// No database exists at the given path.
    #[error("no Salon history at {0}")]
    NotFound(PathBuf),

    /// `create` was asked to create a database where one (or its header) already exists.
    #[error("a Salon history already exists at {0}; it was left untouched")]
    AlreadyExists(PathBuf),

    /// The database exists but the small key header file next to it is missing.
    #[error(
        "the key header file {0} next to the Salon history is missing; restore it (from the same backup as the database) to unlock"
    )]
    HeaderMissing(PathBuf),

    /// A passphrase change was interrupted after the database was re-encrypted: only the
    /// new passphrase opens it now.
    #[error("a passphrase change was interrupted; unlock with the new passphrase to finish it")]
    PassphraseChangeInterrupted,

    /// The OS keychain cannot be used on this machine (none present, or support not built).
    #[error("the system keychain is unavailable ({0}); the passphrase is needed at each start")]
    KeychainUnavailable(String),

    /// Argon2 parameters below [`crate::KdfParams::MINIMUM`] for a new history or passphrase.
    #[error(
        "Argon2 settings of {m_cost_kib} KiB and {t_cost} passes are below the minimum of 19456 KiB and 2 passes"
    )]
    WeakKdf {
        /// The memory asked for, in KiB.
        m_cost_kib: u32,
        /// The passes asked for.
        t_cost: u32,
    },

    /// A value passed to the API is not acceptable.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The identity already exists and would be overwritten.
    #[error("an identity already exists in this Salon history; it was not replaced")]
    IdentityExists,

    /// A referenced row (contact, room, ...) does not exist.
    #[error("not found: {0}")]
    NoSuchRecord(String),

    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Any other SQLite error (a bug or an unusual environment, not a user mistake).
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                StoreError::Corrupt {
                    detail: e.to_string(),
                }
            }
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Locked,
            // Foreign keys and CHECKs: the caller referred to a missing room, etc.
            Some(ErrorCode::ConstraintViolation) => StoreError::InvalidInput(e.to_string()),
            _ => StoreError::Sqlite(e),
        }
    }
}

impl StoreError {
    /// Wraps an I/O error with what the store was doing; ENOSPC becomes [`StoreError::DiskFull`].
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::StorageFull {
            return StoreError::DiskFull;
        }
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    /// A corruption error with a detail.
    pub(crate) fn corrupt(detail: impl Into<String>) -> Self {
        StoreError::Corrupt {
            detail: detail.into(),
        }
    }
}
