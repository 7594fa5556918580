//! Opening, creating, re-keying, backing up and wiping the encrypted database.

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::key::{Header, KdfParams, RawKey, sync_parent_dir};
use crate::lock::InstanceLock;
use crate::migrations::{self, CURRENT_VERSION};

/// SQLCipher settings applied to every database this crate opens, after the key.
///
/// HMAC-SHA1 page authentication with 4 KiB pages is the setting that SQLCipher 3 and
/// 4 both read: the stock `sqlcipher` shell of Debian 12 is SQLCipher 3.4.1, which
/// cannot read SQLCipher 4's default HMAC-SHA512 pages. HMAC-SHA1 remains a sound MAC;
/// page encryption is AES-256-CBC with the raw 256-bit key either way.
pub const CIPHER_SETTINGS: &str = "
    PRAGMA cipher_page_size = 4096;
    PRAGMA cipher_hmac_algorithm = HMAC_SHA1;
    PRAGMA cipher_kdf_algorithm = PBKDF2_HMAC_SHA1;
";

/// The files that make up one Salon history, all derived from the database path.
#[derive(Debug, Clone)]
pub struct StoreFiles {
    /// The SQLCipher database.
    pub db: PathBuf,
    /// The key header (Argon2 parameters, salt, key check).
    pub header: PathBuf,
    /// The single-instance lock file.
    pub lock: PathBuf,
    /// SQLite's write-ahead log (encrypted by SQLCipher).
    pub wal: PathBuf,
    /// SQLite's WAL index (page numbers and checksums, no content).
    pub shm: PathBuf,
    /// The next header during a passphrase change.
    pub header_next: PathBuf,
    /// The re-encrypted copy during a passphrase change.
    pub rekey_tmp: PathBuf,
}

impl StoreFiles {
    /// The files belonging to the database at `db`.
    pub fn for_db(db: &Path) -> Self {
        let with = |suffix: &str| {
            let mut s = db.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        StoreFiles {
            db: db.to_path_buf(),
            header: with(".header"),
            lock: with(".lock"),
            wal: with("-wal"),
            shm: with("-shm"),
            header_next: with(".header-next"),
            rekey_tmp: with(".rekey-tmp"),
        }
    }
}

/// How to unlock a database.
#[derive(Debug, Clone, Copy)]
pub enum Unlock<'a> {
    /// The user's passphrase (Argon2id runs with the parameters in the header).
    Passphrase(&'a str),
    /// A raw key, e.g. one remembered in the OS keychain.
    Key(&'a RawKey),
}

/// Options for opening a database.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Check every page's authentication code on open, so damage anywhere in the file is
    /// reported at once instead of at the first query that touches it. Costs one read of
    /// the whole file.
    pub verify_on_open: bool,
    /// Ask SQLCipher to wipe (and lock in RAM) the memory SQLite frees. Process-wide and
    /// slower; off by default since the key itself is zeroized by this crate.
    pub memory_security: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            verify_on_open: true,
            memory_security: false,
        }
    }
}

/// An open, unlocked Salon history. One per process and database; all calls are
/// synchronous and meant for a dedicated thread (never the audio callback).
pub struct Store {
    // Field order is drop order: the connection closes before the lock is released.
    pub(crate) conn: Connection,
    files: StoreFiles,
    header: Header,
    key: RawKey,
    options: OpenOptions,
    _lock: InstanceLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.files.db)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Creates a new history at `db`, locked with `passphrase`. Refuses if the database or
    /// its header already exists.
    pub fn create(db: &Path, passphrase: &str, kdf: KdfParams) -> Result<Store> {
        Self::create_at_version(db, passphrase, kdf, CURRENT_VERSION)
    }

    /// Like [`Store::create`] but stops at an older schema version. For migration tests.
    #[doc(hidden)]
    pub fn create_at_version(
        db: &Path,
        passphrase: &str,
        kdf: KdfParams,
        version: u32,
    ) -> Result<Store> {
        if passphrase.is_empty() {
            return Err(StoreError::InvalidInput("the passphrase is empty".into()));
        }
        let files = StoreFiles::for_db(db);
        for existing in [&files.db, &files.header] {
            if existing.exists() {
                return Err(StoreError::AlreadyExists(existing.clone()));
            }
        }
        let lock = InstanceLock::acquire(&files.lock)?;
        let (header, key) = Header::new_for_passphrase(passphrase, kdf)?;
        // Header first: a database without its header could never be opened.
        header.write_new(&files.header)?;
        let options = OpenOptions::default();
        // Created empty here, owner-only: SQLite keeps the mode and copies it to the
        // `-wal` and `-shm` files.
        crate::key::private(fs::OpenOptions::new().write(true).create_new(true))
            .open(&files.db)
            .map_err(|e| StoreError::io(format!("creating {}", files.db.display()), e))?;
        let mut conn = connect(&files.db, &key, true, &options)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        migrations::migrate_to(&mut conn, version)?;
        sync_parent_dir(&files.db)?;
        Ok(Store {
            conn,
            files,
            header,
            key,
            options,
            _lock: lock,
        })
    }

    /// Opens an existing history with the user's passphrase.
    pub fn open(db: &Path, passphrase: &str) -> Result<Store> {
        Self::open_with(db, Unlock::Passphrase(passphrase), &OpenOptions::default())
    }

    /// Opens an existing history with a raw key (e.g. from the OS keychain).
    pub fn open_with_key(db: &Path, key: &RawKey) -> Result<Store> {
        Self::open_with(db, Unlock::Key(key), &OpenOptions::default())
    }

    /// Opens an existing history. Nothing is written to a file that fails to open, and no
    /// file that fails to open is ever removed.
    pub fn open_with(db: &Path, unlock: Unlock<'_>, options: &OpenOptions) -> Result<Store> {
        let files = StoreFiles::for_db(db);
        if !files.db.exists() {
            return Err(StoreError::NotFound(files.db.clone()));
        }
        let lock = InstanceLock::acquire(&files.lock)?;
        let header = Header::read(&files.header)?
            .ok_or_else(|| StoreError::HeaderMissing(files.header.clone()))?;
        // A damaged next-header is our own temporary: treat it as absent.
        let next = Header::read(&files.header_next).ok().flatten();

        let (header, key, conn) = match try_unlock(&header, unlock)? {
            Some(key) => match connect(&files.db, &key, false, options) {
                Ok(conn) => {
                    // Any passphrase change in flight never completed: drop its leftovers.
                    remove_if_exists(&files.header_next)?;
                    remove_if_exists(&files.rekey_tmp)?;
                    (header, key, conn)
                }
                Err(StoreError::Corrupt { .. }) if next.is_some() => {
                    return Err(StoreError::PassphraseChangeInterrupted);
                }
                Err(e) => return Err(e),
            },
            None => {
                let wrong = match unlock {
                    Unlock::Passphrase(_) => StoreError::WrongPassphrase,
                    Unlock::Key(_) => StoreError::WrongKey,
                };
                let Some(next) = next else { return Err(wrong) };
                let Some(key) = try_unlock(&next, unlock)? else {
                    return Err(wrong);
                };
                // The new passphrase of an interrupted change: finish the change.
                finish_rekey(&files, &key, options)?;
                let conn = connect(&files.db, &key, false, options)?;
                fs::rename(&files.header_next, &files.header)
                    .map_err(|e| StoreError::io("finishing a passphrase change", e))?;
                sync_parent_dir(&files.header)?;
                (next, key, conn)
            }
        };
        let mut store = Store {
            conn,
            files,
            header,
            key,
            options: options.clone(),
            _lock: lock,
        };
        store.prepare_after_open()?;
        Ok(store)
    }

    /// Version checks, optional full verification, WAL mode and migrations, in the order
    /// that never writes to a file from a newer Salon or to a damaged one.
    fn prepare_after_open(&mut self) -> Result<()> {
        let found = migrations::schema_version(&self.conn)?;
        if found > CURRENT_VERSION {
            return Err(StoreError::NewerVersion {
                found,
                supported: CURRENT_VERSION,
            });
        }
        if self.options.verify_on_open {
            self.verify()?;
        }
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        migrations::migrate_to(&mut self.conn, CURRENT_VERSION)
    }

    /// Checks the authentication code of every page and SQLite's own structure; damage is
    /// [`StoreError::Corrupt`].
    pub fn verify(&self) -> Result<()> {
        let mut problems = Vec::new();
        {
            let mut stmt = self.conn.prepare("PRAGMA cipher_integrity_check")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                problems.push(row.get::<_, String>(0)?);
            }
        }
        if !problems.is_empty() {
            return Err(StoreError::corrupt(problems.join("; ")));
        }
        let quick: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if quick != "ok" {
            return Err(StoreError::corrupt(quick));
        }
        Ok(())
    }

    /// The files of this history.
    pub fn files(&self) -> &StoreFiles {
        &self.files
    }

    /// The raw database key, e.g. to remember it in the OS keychain or to open the file
    /// in the stock `sqlcipher` shell (`PRAGMA key = "x'…'"`, see [`CIPHER_SETTINGS`]).
    pub fn raw_key(&self) -> &RawKey {
        &self.key
    }

    /// The Argon2id parameters the current passphrase is stretched with.
    pub fn kdf_params(&self) -> KdfParams {
        self.header.params
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32> {
        migrations::schema_version(&self.conn)
    }

    /// Moves the write-ahead log into the database file and empties the log.
    pub fn checkpoint(&self) -> Result<()> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            return Err(StoreError::Locked);
        }
        Ok(())
    }

    /// Rewrites the database without free pages (SQLite `VACUUM`), e.g. after deleting
    /// rooms. The rebuilt copy lives in memory (`temp_store = MEMORY`), never in a
    /// temporary file; it needs free RAM about the size of the database.
    pub fn compact(&mut self) -> Result<()> {
        self.conn.execute_batch("VACUUM;")?;
        self.checkpoint()
    }

    /// Checks a passphrase against this history's key header without touching the
    /// database, e.g. to confirm the old passphrase before changing it.
    pub fn check_passphrase(&self, passphrase: &str) -> Result<()> {
        self.header.unlock(passphrase).map(drop)
    }

    /// Changes the passphrase: the database is re-encrypted under a new key (fresh salt).
    ///
    /// Crash-safe: the re-encrypted copy and its header are written beside the database
    /// and moved into place by renames; an interrupted change is either rolled back (the
    /// old passphrase still works) or finished by the next open with the new passphrase.
    pub fn change_passphrase(&mut self, new_passphrase: &str, kdf: KdfParams) -> Result<()> {
        if new_passphrase.is_empty() {
            return Err(StoreError::InvalidInput("the passphrase is empty".into()));
        }
        let (new_header, new_key) = Header::new_for_passphrase(new_passphrase, kdf)?;
        remove_if_exists(&self.files.header_next)?;
        remove_if_exists(&self.files.rekey_tmp)?;
        // An empty log means a crash from here on loses nothing if the log is discarded.
        self.checkpoint()?;
        let tmp = self.files.rekey_tmp.clone();
        export_into(&self.conn, &tmp, &new_key)?;
        new_header.write_new(&self.files.header_next)?;

        let old = std::mem::replace(&mut self.conn, Connection::open_in_memory()?);
        old.close().map_err(|(_, e)| StoreError::from(e))?;
        let installed = (|| -> Result<Connection> {
            finish_rekey(&self.files, &new_key, &self.options)?;
            fs::rename(&self.files.header_next, &self.files.header)
                .map_err(|e| StoreError::io("installing the new key header", e))?;
            sync_parent_dir(&self.files.header)?;
            let conn = connect(&self.files.db, &new_key, false, &self.options)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            Ok(conn)
        })();
        match installed {
            Ok(conn) => {
                self.conn = conn;
                self.header = new_header;
                self.key = new_key;
                Ok(())
            }
            Err(e) => {
                // Keep the store usable with whichever key the database now has; the next
                // open sorts out the files as after a crash.
                if let Ok(conn) = connect(&self.files.db, &self.key, false, &self.options) {
                    self.conn = conn;
                } else if let Ok(conn) = connect(&self.files.db, &new_key, false, &self.options) {
                    self.conn = conn;
                    self.header = new_header;
                    self.key = new_key;
                }
                Err(e)
            }
        }
    }

    /// Writes an encrypted backup to `dest` (plus `dest.header`), unlocked by the same
    /// passphrase as this history and openable with [`Store::open`]. Refuses to overwrite.
    pub fn export_backup(&self, dest: &Path) -> Result<()> {
        let dest_files = StoreFiles::for_db(dest);
        for existing in [&dest_files.db, &dest_files.header] {
            if existing.exists() {
                return Err(StoreError::AlreadyExists(existing.clone()));
            }
        }
        export_into(&self.conn, dest, &self.key)?;
        self.header.write_new(&dest_files.header)
    }

    /// Deletes this history: the key header first (without its salt the passphrase no
    /// longer yields the key), then the database and its log files.
    pub fn wipe(self) -> Result<()> {
        let Store {
            conn, files, _lock, ..
        } = self;
        conn.close().map_err(|(_, e)| StoreError::from(e))?;
        for f in [
            &files.header,
            &files.header_next,
            &files.db,
            &files.wal,
            &files.shm,
            &files.rekey_tmp,
        ] {
            remove_if_exists(f)?;
        }
        sync_parent_dir(&files.db)?;
        drop(_lock);
        remove_if_exists(&files.lock)
    }
}

/// Returns the key if `unlock` passes `header`'s key check.
fn try_unlock(header: &Header, unlock: Unlock<'_>) -> Result<Option<RawKey>> {
    match unlock {
        Unlock::Passphrase(p) => match header.unlock(p) {
            Ok(k) => Ok(Some(k)),
            Err(StoreError::WrongPassphrase) => Ok(None),
            Err(e) => Err(e),
        },
        Unlock::Key(k) => Ok(header.matches(k).then(|| k.clone())),
    }
}

/// Runs SQLite's process-wide initialisation to the end, once, before any connection of
/// ours opens. SQLite marks itself initialised *before* it runs SQLCipher's extra init
/// (`sqlite3_initialize`, `SQLITE_EXTRA_INIT`), which is what registers
/// `sqlcipher_export` for new connections; a second thread opening its first connection
/// in that gap got one without it ("no such function: sqlcipher_export", seen once in
/// CI when tests opened stores side by side). `Once` makes every other caller wait.
fn sqlite_ready() {
    static READY: std::sync::Once = std::sync::Once::new();
    // An in-memory open fails only without memory; the real open then says why.
    READY.call_once(|| drop(Connection::open_in_memory()));
}

/// Opens a connection, keys it and proves the key reads the file.
fn connect(db: &Path, key: &RawKey, create: bool, options: &OpenOptions) -> Result<Connection> {
    sqlite_ready();
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(db, flags)?;
    // Failures come back as typed errors; SQLCipher's own stderr log would only add noise.
    conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
    let mut sql = Zeroizing::new(String::from("PRAGMA key = \""));
    sql.push_str(&key.to_sqlcipher_literal());
    sql.push_str("\";");
    conn.execute_batch(&sql)?;
    conn.execute_batch(CIPHER_SETTINGS)?;
    if options.memory_security {
        conn.execute_batch("PRAGMA cipher_memory_security = ON;")?;
    }
    // SQLCipher only fails at the first read: do it now, while the key is known good.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    // Temporary tables and sort spills stay in RAM, never in plaintext temp files.
    conn.execute_batch(
        "PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;",
    )?;
    Ok(conn)
}

/// Copies the whole database into a new encrypted file at `dest` under `key`.
fn export_into(conn: &Connection, dest: &Path, key: &RawKey) -> Result<()> {
    let dest_str = dest
        .to_str()
        .ok_or_else(|| StoreError::InvalidInput("the path is not valid UTF-8".into()))?;
    // The connection may not create files (opens must never create a database), so make
    // the empty target here; `create_new` also refuses to clobber an existing file.
    crate::key::private(fs::OpenOptions::new().write(true).create_new(true))
        .open(dest)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                StoreError::AlreadyExists(dest.to_path_buf())
            } else {
                StoreError::io(format!("creating {}", dest.display()), e)
            }
        })?;
    let literal = key.to_sqlcipher_literal();
    conn.execute(
        "ATTACH DATABASE ?1 AS salon_export KEY ?2",
        rusqlite::params![dest_str, literal.as_str()],
    )?;
    let result = (|| -> Result<()> {
        conn.execute_batch(
            "PRAGMA salon_export.cipher_page_size = 4096;
             PRAGMA salon_export.cipher_hmac_algorithm = HMAC_SHA1;
             PRAGMA salon_export.cipher_kdf_algorithm = PBKDF2_HMAC_SHA1;",
        )?;
        conn.query_row("SELECT sqlcipher_export('salon_export')", [], |_| Ok(()))?;
        let version = migrations::schema_version(conn)?;
        conn.execute_batch(&format!("PRAGMA salon_export.user_version = {version};"))?;
        Ok(())
    })();
    let detached = conn.execute_batch("DETACH DATABASE salon_export");
    let outcome = result.and(detached.map_err(StoreError::from));
    if outcome.is_err() {
        // Only the half-written copy this call created is removed.
        let _ = fs::remove_file(dest);
    }
    outcome
}

/// Moves a completed re-encrypted copy into place, if one is waiting.
fn finish_rekey(files: &StoreFiles, new_key: &RawKey, options: &OpenOptions) -> Result<()> {
    if !files.rekey_tmp.exists() {
        return Ok(());
    }
    // Prove the copy is complete and readable under the new key before it replaces anything.
    drop(connect(&files.rekey_tmp, new_key, false, options)?);
    // The old log was emptied before the copy was made; a leftover would belong to the
    // old file and must not be replayed onto the new one.
    remove_if_exists(&files.wal)?;
    remove_if_exists(&files.shm)?;
    fs::rename(&files.rekey_tmp, &files.db)
        .map_err(|e| StoreError::io("installing the re-encrypted database", e))?;
    sync_parent_dir(&files.db)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(format!("removing {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scratch(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("salon-store-unit-{tag}-"))
            .tempdir()
            .unwrap()
    }

    #[test]
    fn connections_keep_temp_storage_in_memory_and_use_wal() {
        let scratch_dir = scratch("pragmas");
        let d = scratch_dir.path();
        let s = Store::create(&d.join("x.db"), "pw", KdfParams::INSECURE_FAST).unwrap();
        let temp: i64 = s
            .conn
            .query_row("PRAGMA temp_store", [], |r| r.get(0))
            .unwrap();
        assert_eq!(temp, 2, "2 = MEMORY");
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = s
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        drop(s);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn sqlite_full_maps_to_disk_full() {
        let scratch_dir = scratch("full");
        let d = scratch_dir.path();
        let mut s = Store::create(&d.join("x.db"), "pw", KdfParams::INSECURE_FAST).unwrap();
        let pages: i64 = s
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        s.conn
            .execute_batch(&format!("PRAGMA max_page_count = {}", pages + 2))
            .unwrap();
        let big = "x".repeat(10_000);
        let err = (0..100)
            .find_map(|i| s.set_value(&format!("k{i}"), &big).err())
            .unwrap();
        assert!(matches!(err, StoreError::DiskFull), "{err:?}");
        drop(s);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn the_memory_security_option_turns_sqlcipher_wiping_on() {
        let scratch_dir = scratch("memsec");
        let d = scratch_dir.path();
        drop(Store::create(&d.join("x.db"), "pw", KdfParams::INSECURE_FAST).unwrap());
        let options = OpenOptions {
            verify_on_open: true,
            memory_security: true,
        };
        let s = Store::open_with(&d.join("x.db"), Unlock::Passphrase("pw"), &options).unwrap();
        let on: String = s
            .conn
            .query_row("PRAGMA cipher_memory_security", [], |r| r.get(0))
            .unwrap();
        assert_eq!(on, "1");
        drop(s);
        fs::remove_dir_all(d).unwrap();
    }
}
