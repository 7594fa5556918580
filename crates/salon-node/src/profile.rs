//! The user's data directory: the encrypted store with their identity and history.

use std::path::{Path, PathBuf};

use salon_proto::Identity;
use salon_store::{KdfParams, Store, Timestamp};

use crate::error::NodeError;

/// File name of the encrypted database inside the data directory.
pub const DB_FILE: &str = "salon.db";

/// `$SALON_DATA_DIR`, else the user's data folder (`$XDG_DATA_HOME`, else
/// `~/.local/share`) `/salon`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SALON_DATA_DIR") {
        return PathBuf::from(d);
    }
    dirs::data_dir()
        .unwrap_or_else(|| home().join(".local/share"))
        .join("salon")
}

/// The home folder, or the working directory when there is none.
fn home() -> PathBuf {
    dirs::home_dir().unwrap_or_else(|| PathBuf::from("."))
}

/// Shortest passphrase accepted for a new profile or a passphrase change.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// Where a backup goes when the user names no file: a dated file in the user's Documents
/// folder (as `~/.config/user-dirs.dirs` names it, localized or not), else the home folder.
pub fn default_backup_path(now: std::time::SystemTime) -> PathBuf {
    let dir = dirs::document_dir()
        .filter(|d| d.is_dir())
        .unwrap_or_else(home);
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    dir.join(format!("salon-backup-{}.db", utc_stamp(secs)))
}

/// `YYYY-MM-DD-HHMMSS` (UTC) of Unix seconds.
fn utc_stamp(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}-{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// An unlocked profile: the store and the identity it holds.
pub struct Profile {
    /// The open store (moved to the history thread when a node starts).
    pub store: Store,
    /// The user's static key pair.
    pub identity: Identity,
    /// The user's display name.
    pub name: String,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn db(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

/// Creates a new profile: the data directory (0700 on Unix), an encrypted store (its files
/// 0600), a fresh identity. Refuses Argon2 settings below [`KdfParams::MINIMUM`] unless
/// the environment says this is a test ([`KdfParams::INSECURE_TEST_ENV`]).
pub fn create(
    dir: &Path,
    passphrase: &str,
    name: &str,
    kdf: KdfParams,
) -> Result<Profile, NodeError> {
    kdf.check_minimum()?;
    create_unchecked_kdf(dir, passphrase, name, kdf)
}

/// Like [`create`] but takes any valid Argon2 settings, however cheap: for in-process
/// tests, which must not weaken real profiles through the environment.
#[doc(hidden)]
pub fn create_unchecked_kdf(
    dir: &Path,
    passphrase: &str,
    name: &str,
    kdf: KdfParams,
) -> Result<Profile, NodeError> {
    if !salon_proto::roster::valid_name(name) {
        return Err(NodeError::InvalidName);
    }
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(NodeError::WeakPassphrase);
    }
    std::fs::create_dir_all(dir)
        .and_then(|()| make_private_dir(dir))
        .map_err(|source| NodeError::Io {
            what: format!("cannot create the data directory {}", dir.display()),
            source,
        })?;
    let mut store = Store::create(&db(dir), passphrase, kdf)?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| NodeError::Io {
        what: "no randomness from the operating system".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let identity = Identity::from_secret_bytes(seed);
    store.set_identity(&identity, Timestamp::now())?;
    store.set_display_name(name.trim())?;
    Ok(Profile {
        store,
        identity,
        name: name.trim().to_owned(),
    })
}

/// Lets only the owner into `dir` (0700 on Unix).
fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let _ = dir;
    Ok(())
}

/// Opens an existing profile with the passphrase. A data directory that others can
/// enter (made by an older version) is closed to them first, best effort.
pub fn unlock(dir: &Path, passphrase: &str) -> Result<Profile, NodeError> {
    let _ = make_private_dir(dir);
    let store = Store::open(&db(dir), passphrase)?;
    let Some(identity) = store.identity()? else {
        return Err(NodeError::NoIdentity(dir.to_owned()));
    };
    let name = store.display_name()?.unwrap_or_else(|| "Anonymous".into());
    Ok(Profile {
        store,
        identity,
        name,
    })
}

/// Whether `dir` already holds a profile.
pub fn exists(dir: &Path) -> bool {
    db(dir).exists()
}

/// The folder to use when the default is `shared` and an older app kept its history in
/// `legacy` (its own app-data folder): that history moves to `shared` once, so the app
/// and the command line share one identity (a second process opening it is refused as
/// "in use"). Nothing moves when `shared` holds a history already or `legacy` none; if
/// the move fails (another file system, permissions), `legacy` stays in use.
pub fn adopt_legacy_dir(shared: &Path, legacy: &Path) -> PathBuf {
    if shared == legacy || exists(shared) || !exists(legacy) {
        return shared.to_path_buf();
    }
    // `rename` onto an empty folder works on Linux; onto a non-empty one it fails and
    // the history stays where it was.
    if let Some(parent) = shared.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match std::fs::rename(legacy, shared) {
        Ok(()) => shared.to_path_buf(),
        Err(_) => legacy.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("salon-adopt-{tag}-"))
            .tempdir()
            .unwrap()
    }

    #[test]
    fn an_older_apps_history_moves_to_the_shared_folder_once_and_never_over_another() {
        let scratch_dir = scratch("move");
        let root = scratch_dir.path();
        let (shared, legacy) = (root.join("salon"), root.join("app.salon.desktop"));
        let _ = create_unchecked_kdf(
            &legacy,
            "correct horse battery",
            "Ada",
            KdfParams::INSECURE_FAST,
        )
        .unwrap();
        assert_eq!(adopt_legacy_dir(&shared, &legacy), shared);
        assert!(exists(&shared) && !legacy.exists(), "moved");
        let p = unlock(&shared, "correct horse battery").unwrap();
        assert_eq!(p.name, "Ada");
        drop(p);
        // Both hold a history: the shared one is used and the other is left alone.
        let _ = create_unchecked_kdf(
            &legacy,
            "correct horse battery",
            "Bo",
            KdfParams::INSECURE_FAST,
        )
        .unwrap();
        assert_eq!(adopt_legacy_dir(&shared, &legacy), shared);
        assert!(exists(&legacy), "a second history was moved over the first");
        // No legacy history: nothing to do.
        let other = root.join("none");
        assert_eq!(adopt_legacy_dir(&other, &root.join("missing")), other);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn backup_file_names_carry_the_utc_date_and_time() {
        assert_eq!(utc_stamp(0), "1970-01-01-000000");
        // 2026-11-27 07:01:07 UTC, and a leap day.
        assert_eq!(utc_stamp(1_795_762_867), "2026-11-27-070107");
        assert_eq!(utc_stamp(951_782_400), "2000-02-29-000000");
    }

    #[test]
    fn a_new_profile_needs_a_passphrase_of_eight_characters_and_writes_nothing_otherwise() {
        let scratch_dir = scratch("weak");
        let dir = scratch_dir.path().join("profile");
        let short = "x".repeat(MIN_PASSPHRASE_CHARS - 1);
        assert!(matches!(
            create_unchecked_kdf(&dir, &short, "Ada", KdfParams::INSECURE_FAST),
            Err(NodeError::WeakPassphrase)
        ));
        assert!(!dir.exists(), "nothing written for a refused passphrase");
        let enough = "x".repeat(MIN_PASSPHRASE_CHARS);
        assert!(create_unchecked_kdf(&dir, &enough, "Ada", KdfParams::INSECURE_FAST).is_ok());
    }

    #[test]
    fn a_new_profile_refuses_argon2_settings_below_the_minimum_and_writes_nothing() {
        let scratch_dir = scratch("weak-kdf");
        let dir = scratch_dir.path().join("profile");
        let weak = KdfParams {
            m_cost_kib: KdfParams::MINIMUM.m_cost_kib - 1,
            ..KdfParams::MINIMUM
        };
        assert!(matches!(
            create(&dir, "long enough", "Ada", weak),
            Err(NodeError::Store(salon_store::StoreError::WeakKdf { .. }))
        ));
        assert!(!dir.exists(), "nothing written for refused settings");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_profile_is_a_0700_folder_of_0600_files() {
        use std::os::unix::fs::PermissionsExt;
        let scratch_dir = scratch("perm");
        let dir = scratch_dir.path().join("profile");
        let p = create_unchecked_kdf(&dir, "long enough", "Ada", KdfParams::INSECURE_FAST).unwrap();
        p.store.export_backup(&dir.join("backup.db")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700, "data folder");
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        for needed in ["salon.db", "salon.db-wal", "salon.db-shm", "backup.db"] {
            assert!(files.contains(&dir.join(needed)), "{needed} in {files:?}");
        }
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        drop(p);
    }
}
