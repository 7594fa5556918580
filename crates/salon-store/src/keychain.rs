//! Remembering the database key in the OS keychain.
//!
//! Built without the `keyring` feature (the default), every call reports
//! [`StoreError::KeychainUnavailable`]: the app then simply asks for the passphrase.

use crate::error::{Result, StoreError};
use crate::key::RawKey;

/// Service name under which keys are filed in the keychain.
pub const SERVICE: &str = "salon-store";

/// Stores `key` in the OS keychain under `account` (e.g. the database path).
pub fn remember_key(account: &str, key: &RawKey) -> Result<()> {
    imp::remember(account, key)
}

/// Reads the key stored under `account`; `Ok(None)` if none is stored.
pub fn recall_key(account: &str) -> Result<Option<RawKey>> {
    imp::recall(account)
}

/// Removes the key stored under `account`, if any.
pub fn forget_key(account: &str) -> Result<()> {
    imp::forget(account)
}

#[cfg(not(feature = "keyring"))]
mod imp {
    use super::*;

    fn unavailable() -> StoreError {
        StoreError::KeychainUnavailable("this build has no keychain support".into())
    }

    pub(super) fn remember(_: &str, _: &RawKey) -> Result<()> {
        Err(unavailable())
    }

    pub(super) fn recall(_: &str) -> Result<Option<RawKey>> {
        Err(unavailable())
    }

    pub(super) fn forget(_: &str) -> Result<()> {
        Err(unavailable())
    }
}

#[cfg(feature = "keyring")]
mod imp {
    use super::*;
    use crate::key::KEY_LEN;

    fn entry(account: &str) -> Result<keyring::Entry> {
        keyring::Entry::new(SERVICE, account).map_err(map)
    }

    fn map(e: keyring::Error) -> StoreError {
        StoreError::KeychainUnavailable(e.to_string())
    }

    pub(super) fn remember(account: &str, key: &RawKey) -> Result<()> {
        entry(account)?.set_secret(key.as_bytes()).map_err(map)
    }

    pub(super) fn recall(account: &str) -> Result<Option<RawKey>> {
        match entry(account)?.get_secret() {
            Ok(mut bytes) => {
                let key = <[u8; KEY_LEN]>::try_from(bytes.as_slice())
                    .map(RawKey::from_bytes)
                    .map_err(|_| {
                        StoreError::KeychainUnavailable("stored key has the wrong length".into())
                    });
                zeroize::Zeroize::zeroize(&mut bytes);
                key.map(Some)
            }
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map(e)),
        }
    }

    pub(super) fn forget(account: &str) -> Result<()> {
        match entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map(e)),
        }
    }
}
