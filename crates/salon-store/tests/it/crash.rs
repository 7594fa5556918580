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
                    sender_key: &[1; 32],
                    sender_name: "w",
                    sent_at: Timestamp(i as i64),
                    text: &text,
                },
                NewMessage {
                    room: r,
                    sender_key: &[1; 32],
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
                sender_key: &[1; 32],
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
    assert!(
        acked_total.len() > RUNS as usize,
        "too few writes to mean anything"
    );
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
