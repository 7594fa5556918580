//! Test helpers: private temporary directories, fast stores, byte search.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use salon_store::{KdfParams, NewRoom, RoomId, Store, Timestamp};

pub const PASS: &str = "correct horse battery staple";

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "salon-store-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("salon.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a store with cheap Argon2 parameters.
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
