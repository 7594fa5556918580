//! Crash safety: a writer killed by SIGKILL at a random moment loses nothing it had
//! been told was written, and the file always opens again.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use salon_store::*;

use crate::common::*;

/// Helper process: writes chat messages forever, printing `ACK <text>` after each write
/// returns. Runs only when the crash test starts it.
#[test]
#[ignore = "helper process for every_acknowledged_message_survives_sigkill"]
fn crash_writer_child() {
    let Ok(db) = std::env::var("SALON_TEST_DB") else {
        return;
    };
    let run = std::env::var("SALON_TEST_RUN").unwrap();
    let db = std::path::Path::new(&db);
    let mut s = Store::open(db, PASS).unwrap();
    let r = s.room_by_protocol_id(b"crash").unwrap().unwrap().id;
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    for i in 0u64.. {
        let text = format!("run {run} message {i}");
        if i % 10 == 9 {
            // Some batched writes too.
            let t2 = format!("{text} (batch)");
            s.add_messages(&[
                NewMessage {
                    room: r,
                    sender_key: &PublicKey([1; 32]),
                    sender_name: "w",
                    sent_at: Timestamp(i as i64),
                    text: &text,
                },
                NewMessage {
                    room: r,
                    sender_key: &PublicKey([1; 32]),
                    sender_name: "w",
                    sent_at: Timestamp(i as i64),
                    text: &t2,
                },
            ])
            .unwrap();
            writeln!(out, "ACK {text}").unwrap();
            writeln!(out, "ACK {t2}").unwrap();
        } else {
            s.add_message(&NewMessage {
                room: r,
                sender_key: &PublicKey([1; 32]),
                sender_name: "w",
                sent_at: Timestamp(i as i64),
                text: &text,
            })
            .unwrap();
            writeln!(out, "ACK {text}").unwrap();
        }
        out.flush().unwrap();
    }
}

#[test]
fn every_acknowledged_message_survives_sigkill() {
    const RUNS: u32 = 12;
    let dir = TempDir::new("crash");
    let mut s = create(&dir.db());
    let r = room(&mut s, b"crash", "crash test");
    drop(s);
    let mut acked_total = HashSet::new();
    for run in 0..RUNS {
        let mut child = child_test("crash::crash_writer_child")
            .env("SALON_TEST_DB", dir.db())
            .env("SALON_TEST_RUN", run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("READY") {
                    let _ = ready_tx.send(());
                } else if let Some(t) = line.strip_prefix("ACK ") {
                    acked.push(t.to_owned());
                }
            }
            acked
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child ready");
        let delay = 5 + OsRng.next_u32() % 250;
        std::thread::sleep(Duration::from_millis(u64::from(delay)));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "run {run}: the child was supposed to be killed"
        );
        let acked = reader.join().unwrap();

        let s = Store::open(&dir.db(), PASS)
            .unwrap_or_else(|e| panic!("run {run}: reopen after SIGKILL failed: {e}"));
        let present: HashSet<String> = all_texts(&s, r).into_iter().collect();
        for t in &acked {
            assert!(
                present.contains(t),
                "run {run}: acknowledged {t:?} is missing"
            );
        }
        acked_total.extend(acked);
        drop(s);
    }
    assert!(!acked_total.is_empty(), "no write ever completed");
    eprintln!(
        "crash test: {} acknowledged messages over {RUNS} kills",
        acked_total.len()
    );
}

fn all_texts(s: &Store, r: RoomId) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = MessageId(0);
    loop {
        let p = s.messages(r, Page::After { after, limit: 500 }).unwrap();
        let Some(last) = p.last() else { break };
        after = last.id;
        out.extend(p.into_iter().map(|m| m.text));
    }
    out
}

/// Helper process: changes the passphrase back and forth forever, printing
/// `ACK <passphrase>` after each change returns.
#[test]
#[ignore = "helper process for a_passphrase_change_killed_midway_leaves_one_working_passphrase"]
fn rekey_child() {
    let Ok(db) = std::env::var("SALON_TEST_DB") else {
        return;
    };
    let start = std::env::var("SALON_TEST_PASS").unwrap();
    let mut s = Store::open(std::path::Path::new(&db), &start).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    let mut current = start;
    loop {
        let next = if current == PASS {
            "second passphrase"
        } else {
            PASS
        };
        s.change_passphrase(next, KdfParams::INSECURE_FAST).unwrap();
        current = next.to_owned();
        writeln!(out, "ACK {current}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn a_passphrase_change_killed_midway_leaves_one_working_passphrase() {
    const RUNS: u32 = 30;
    let dir = TempDir::new("rekey-crash");
    let mut s = create(&dir.db());
    let r = room(&mut s, b"keep", "survives every rekey");
    drop(s);
    let mut current = PASS.to_owned();
    let mut changes = 0usize;
    let mut finished_by_open = 0usize;
    for run in 0..RUNS {
        let mut child = child_test("crash::rekey_child")
            .env("SALON_TEST_DB", dir.db())
            .env("SALON_TEST_PASS", &current)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("READY") {
                    let _ = ready_tx.send(());
                } else if let Some(t) = line.strip_prefix("ACK ") {
                    acked.push(t.to_owned());
                }
            }
            acked
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child ready");
        std::thread::sleep(Duration::from_millis(u64::from(5 + OsRng.next_u32() % 300)));
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        changes += acked.len();
        let last_acked = acked.last().cloned().unwrap_or(current.clone());
        let other = if last_acked == PASS {
            "second passphrase"
        } else {
            PASS
        };
        // The last acknowledged passphrase works, unless the kill hit the next change
        // after its point of no return; then the next passphrase works instead.
        let (s, used) = match Store::open(&dir.db(), &last_acked) {
            Ok(s) => (s, last_acked.clone()),
            Err(StoreError::WrongPassphrase | StoreError::PassphraseChangeInterrupted) => {
                finished_by_open += 1;
                (
                    Store::open(&dir.db(), other)
                        .unwrap_or_else(|e| panic!("run {run}: neither passphrase opens: {e}")),
                    other.to_owned(),
                )
            }
            Err(e) => panic!("run {run}: {e}"),
        };
        assert_eq!(
            s.room(r).unwrap().title,
            "survives every rekey",
            "run {run}"
        );
        assert!(!s.files().rekey_tmp.exists() && !s.files().header_next.exists());
        drop(s);
        current = used;
    }
    assert!(changes > 0, "no passphrase change ever completed");
    eprintln!(
        "rekey crash test: {changes} completed changes over {RUNS} kills, \
         {finished_by_open} changes finished by the next open"
    );
}
