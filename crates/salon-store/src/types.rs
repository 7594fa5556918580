//! Small value types shared by the record modules.

use std::time::{SystemTime, UNIX_EPOCH};

/// A member's static X25519 public key: the protocol's type, stored as its 32 bytes.
pub use salon_proto::PublicKey;

/// A point in time: milliseconds since the Unix epoch (UTC). Callers pass time in, so
/// tests are deterministic and the store never reads the clock on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// Reads a 32-byte key column, reporting anything else as damage.
pub(crate) fn key_from_sql(bytes: Vec<u8>) -> rusqlite::Result<PublicKey> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(PublicKey)
        .map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Blob,
                "a stored key is not 32 bytes".into(),
            )
        })
}
