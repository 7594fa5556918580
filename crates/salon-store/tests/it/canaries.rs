//! Nothing written through the API appears in plaintext in any file: the database, its
//! WAL and shared-memory files, the header, backups, or temporary files.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use salon_store::*;

use crate::common::*;

const CANARIES: &[&str] = &[
    "CanaryDisplayName-7f3a",
    "CanaryContactName-91bc",
    "CanaryRoomTitle-55e0",
    "CanaryInvite-2d4f",
    "CanaryChatText-c0de",
    "CanarySettingValue-beef",
];

fn write_canaries(s: &mut Store) -> RoomId {
    s.set_display_name(CANARIES[0]).unwrap();
    s.observe_peer(&PublicKey([3; 32]), CANARIES[1], Timestamp(1))
        .unwrap();
    let r = s
        .add_room(&NewRoom {
            protocol_id: b"canary-room",
            hosted: true,
            title: CANARIES[2],
            invite: Some(CANARIES[3]),
            started_at: Timestamp(1),
        })
        .unwrap();
    for i in 0..300 {
        s.add_message(&NewMessage {
            room: r,
            sender_key: &PublicKey([3; 32]),
            sender_name: CANARIES[1],
            sent_at: Timestamp(i),
            text: &format!("{} #{i}", CANARIES[4]),
        })
        .unwrap();
    }
    s.set_value("cli.canary", CANARIES[5]).unwrap();
    r
}

fn leaks(bytes: &[u8]) -> Vec<&'static str> {
    CANARIES
        .iter()
        .copied()
        .filter(|c| contains(bytes, c.as_bytes()))
        .collect()
}

fn assert_no_canary_in_dir(dir: &Path, when: &str) -> Vec<PathBuf> {
    let files = files_in(dir);
    for f in &files {
        let bytes = fs::read(f).unwrap();
        let found = leaks(&bytes);
        assert!(
            found.is_empty(),
            "{when}: {} contains {found:?}",
            f.display()
        );
    }
    files
}

#[test]
fn canaries_are_absent_from_db_wal_and_shm_before_and_after_checkpoint() {
    let dir = TempDir::new("canary");
    let mut s = create(&dir.db());
    write_canaries(&mut s);
    // Before checkpoint the rows sit in the WAL: prove the scan covers a non-empty log.
    let wal_len = fs::metadata(&s.files().wal).unwrap().len();
    assert!(wal_len > 100_000, "WAL unexpectedly small: {wal_len}");
    let files = assert_no_canary_in_dir(dir.path(), "before checkpoint");
    for f in [
        &s.files().db,
        &s.files().wal,
        &s.files().shm,
        &s.files().header,
    ] {
        assert!(files.contains(f), "{} not scanned", f.display());
    }
    s.checkpoint().unwrap();
    assert_eq!(fs::metadata(&s.files().wal).unwrap().len(), 0);
    assert_no_canary_in_dir(dir.path(), "after checkpoint");
    s.change_passphrase("another passphrase", KdfParams::INSECURE_FAST)
        .unwrap();
    s.export_backup(&dir.path().join("backup.db")).unwrap();
    assert_no_canary_in_dir(dir.path(), "after rekey and backup");
    drop(s);
    let files = assert_no_canary_in_dir(dir.path(), "after close");
    assert!(files.contains(&dir.path().join("backup.db")));
    // Control: the same scan does find a canary that is really there.
    fs::write(dir.path().join("plain.txt"), CANARIES[2]).unwrap();
    assert!(!leaks(&fs::read(dir.path().join("plain.txt")).unwrap()).is_empty());
}

/// Watches this process's open files (including unlinked temporary files, which
/// `/proc/self/fd` still reaches) and records every one under `tmp` and every one whose
/// content holds a canary.
struct FdWatcher {
    stop: Arc<AtomicBool>,
    seen_tmp: Arc<Mutex<BTreeSet<String>>>,
    leaks: Arc<Mutex<BTreeSet<String>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl FdWatcher {
    fn start(tmp: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen_tmp = Arc::new(Mutex::new(BTreeSet::new()));
        let leaks_found = Arc::new(Mutex::new(BTreeSet::new()));
        let (st, se, lk) = (stop.clone(), seen_tmp.clone(), leaks_found.clone());
        let handle = std::thread::spawn(move || {
            let tmp = tmp.to_string_lossy().into_owned();
            let mut seen_all = BTreeSet::new();
            while !st.load(Ordering::Relaxed) {
                let Ok(entries) = fs::read_dir("/proc/self/fd") else {
                    continue;
                };
                for e in entries.flatten() {
                    let Ok(target) = fs::read_link(e.path()) else {
                        continue;
                    };
                    let target = target.to_string_lossy().into_owned();
                    if !target.starts_with('/')
                        || target.starts_with("/proc")
                        || target.starts_with("/dev")
                    {
                        continue;
                    }
                    let in_tmp = target.starts_with(&tmp);
                    let first_time = seen_all.insert(target.clone());
                    if in_tmp {
                        se.lock().unwrap().insert(target.clone());
                    }
                    // Re-read only short-lived candidates each round; other files once.
                    if !(in_tmp || target.ends_with("(deleted)") || first_time) {
                        continue;
                    }
                    if let Ok(bytes) = fs::read(e.path())
                        && !leaks(&bytes).is_empty()
                    {
                        lk.lock().unwrap().insert(target);
                    }
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
        FdWatcher {
            stop,
            seen_tmp,
            leaks: leaks_found,
            handle: Some(handle),
        }
    }

    /// Waits until the watcher has seen a temporary file and found plaintext in one (or
    /// `limit` passes): the condition the control run holds its temp file open for.
    fn wait_for_temp_file_with_canary(&self, limit: std::time::Duration) -> bool {
        let end = std::time::Instant::now() + limit;
        loop {
            let seen = !self.seen_tmp.lock().unwrap().is_empty();
            let leaked = !self.leaks.lock().unwrap().is_empty();
            if seen && leaked {
                return true;
            }
            if std::time::Instant::now() >= end {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn finish(mut self) -> (BTreeSet<String>, BTreeSet<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        let seen = self.seen_tmp.lock().unwrap().clone();
        let leaks = self.leaks.lock().unwrap().clone();
        (seen, leaks)
    }
}

/// Helper process, run with SQLITE_TMPDIR pointing at a private directory.
#[test]
#[ignore = "helper process for no_temporary_file_holds_plaintext"]
fn temp_file_child() {
    let Ok(dir) = std::env::var("SALON_TEST_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let tmp = PathBuf::from(std::env::var("SQLITE_TMPDIR").unwrap());

    // Phase 1: the store, doing everything it can do, under the watcher.
    let w = FdWatcher::start(tmp.clone());
    let mut s = create(&dir.join("salon.db"));
    let r = write_canaries(&mut s);
    let batch: Vec<String> = (0..20_000)
        .map(|i| format!("{} batch {i}", CANARIES[4]))
        .collect();
    let msgs: Vec<NewMessage<'_>> = batch
        .iter()
        .map(|t| NewMessage {
            room: r,
            sender_key: &PublicKey([3; 32]),
            sender_name: CANARIES[1],
            sent_at: Timestamp(5),
            text: t,
        })
        .collect();
    s.add_messages(&msgs).unwrap();
    let mut after = MessageId(0);
    while let Some(last) = s
        .messages(r, Page::After { after, limit: 1000 })
        .unwrap()
        .last()
    {
        after = last.id;
    }
    s.contacts().unwrap();
    s.participants(r).unwrap();
    // VACUUM rebuilds the whole database in temporary storage: the op most likely to
    // spill plaintext into a temporary file.
    let r2 = s
        .add_room(&NewRoom {
            protocol_id: b"gone",
            hosted: false,
            title: CANARIES[2],
            invite: None,
            started_at: Timestamp(9),
        })
        .unwrap();
    s.add_messages(
        &msgs
            .iter()
            .map(|m| NewMessage { room: r2, ..*m })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    s.delete_room(r2).unwrap();
    s.compact().unwrap();
    s.verify().unwrap();
    s.change_passphrase("another", KdfParams::INSECURE_FAST)
        .unwrap();
    s.export_backup(&dir.join("backup.db")).unwrap();
    s.checkpoint().unwrap();
    drop(s);
    let (seen, found) = w.finish();
    println!("STORE seen={} leaks={}", seen.len(), found.len());
    for f in seen.iter().chain(found.iter()) {
        println!("STORE-FILE {f}");
    }

    // Phase 2 (control): a plain SQLite connection with temp_store = FILE and a small
    // cache must spill a sort to a temporary file, and the watcher must see it.
    let w = FdWatcher::start(tmp.clone());
    let c = rusqlite::Connection::open(dir.join("control.db")).unwrap();
    c.execute_batch(
        "PRAGMA temp_store = FILE; PRAGMA cache_size = 10;
         CREATE TABLE t (v TEXT);",
    )
    .unwrap();
    {
        let mut ins = c.prepare("INSERT INTO t VALUES (?1)").unwrap();
        c.execute_batch("BEGIN").unwrap();
        for i in 0..50_000 {
            ins.execute([format!("{} {i} {}", CANARIES[4], "p".repeat(100))])
                .unwrap();
        }
        c.execute_batch("COMMIT").unwrap();
    }
    {
        // The sort spills to temporary files before the first row comes back, and merges
        // from them while rows are read: hold the statement there until the watcher has
        // seen the file (a condition, not a number of sorts, so a slow or busy machine
        // cannot make the watcher miss it).
        let mut stmt = c.prepare("SELECT v FROM t ORDER BY random()").unwrap();
        let mut rows = stmt.query([]).unwrap();
        let first: String = rows.next().unwrap().unwrap().get(0).unwrap();
        assert!(first.contains(CANARIES[4]));
        let ok = w.wait_for_temp_file_with_canary(std::time::Duration::from_secs(60));
        println!("CONTROL waited ok={ok}");
        let mut n = 1;
        while rows.next().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 50_000);
    }
    drop(c);
    let (seen, found) = w.finish();
    println!("CONTROL seen={} leaks={}", seen.len(), found.len());
}

#[test]
fn no_temporary_file_holds_plaintext() {
    let dir = TempDir::new("tempfiles");
    let tmp = dir.path().join("sqlite-tmp");
    let data = dir.path().join("data");
    fs::create_dir_all(&tmp).unwrap();
    fs::create_dir_all(&data).unwrap();
    let child = child_test("canaries::temp_file_child")
        .env("SALON_TEST_DIR", &data)
        .env("SQLITE_TMPDIR", &tmp)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    let line = |prefix: &str| {
        BufReader::new(text.as_bytes())
            .lines()
            .map(|l| l.unwrap())
            .find_map(|l| l.find(prefix).map(|i| l[i..].to_owned()))
            .unwrap_or_else(|| panic!("no {prefix} line in {text}"))
    };
    assert_eq!(line("STORE "), "STORE seen=0 leaks=0", "{text}");
    // The detector works: the control run's temp file was seen (and its plaintext found).
    let control = line("CONTROL ");
    assert!(
        !control.contains("seen=0"),
        "watcher saw no temp file in the control: {control}"
    );
    assert!(
        !control.contains("leaks=0"),
        "watcher found no plaintext in the control: {control}"
    );
    // Nothing left behind in the temp directory either.
    assert_eq!(files_in(&tmp), Vec::<PathBuf>::new());
}
