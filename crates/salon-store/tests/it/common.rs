//! Test helpers: private temporary directories, fast stores, byte search.

use std::path::{Path, PathBuf};

use salon_store::{CIPHER_SETTINGS, KdfParams, NewRoom, RawKey, RoomId, Store, Timestamp};

pub const PASS: &str = "correct horse battery staple";

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        TempDir(
            tempfile::Builder::new()
                .prefix(&format!("salon-store-{tag}-"))
                .tempdir()
                .unwrap(),
        )
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn db(&self) -> PathBuf {
        self.0.path().join("salon.db")
    }
}

/// Creates a store with cheap Argon2 parameters.
/// A plain rusqlite connection to `db`, unlocked with `key` and the store's cipher
/// settings: what the stock `sqlcipher` shell would see, for writing rows the store
/// would never write.
pub fn raw_connection(db: &Path, key: &RawKey) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(&format!(
        "PRAGMA key = \"{}\";",
        &*key.to_sqlcipher_literal()
    ))
    .unwrap();
    c.execute_batch(CIPHER_SETTINGS).unwrap();
    c
}

pub fn create(db: &Path) -> Store {
    Store::create(db, PASS, KdfParams::INSECURE_FAST).unwrap()
}

pub fn room(store: &mut Store, protocol_id: &[u8], title: &str) -> RoomId {
    store
        .add_room(&NewRoom {
            protocol_id,
            hosted: true,
            title,
            invite: Some("salon1:invite"),
            started_at: Timestamp(1_000),
        })
        .unwrap()
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// All regular files in `dir` (not recursive).
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Re-runs this test binary as a child process running only the (ignored) test `name`.
pub fn child_test(name: &str) -> std::process::Command {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args([
        "--ignored",
        "--exact",
        name,
        "--nocapture",
        "--test-threads=1",
    ]);
    c
}
