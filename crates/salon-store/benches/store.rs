//! Figures for the store: 100,000 chat messages written and paged through, and the
//! open/unlock time with the default Argon2id parameters.
//!
//! Run with `cargo bench -p salon-store --bench store`. Prints figures; no harness.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use salon_store::*;

const MESSAGES: usize = 100_000;
const BATCH: usize = 1_000;
const SINGLE: usize = 2_000;
const PAGE: u32 = 50;
const PASS: &str = "benchmark passphrase";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) only
    // checks that this builds and runs, on a small scale.
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { MESSAGES } else { 2_000 };
    let singles = if full { SINGLE } else { 50 };
    let opens = if full { 5 } else { 1 };
    let dir = std::env::temp_dir().join(format!("salon-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("salon.db");

    let t = Instant::now();
    let mut s = Store::create(&db, PASS, KdfParams::default()).unwrap();
    println!(
        "create (default Argon2id 64 MiB, t=3, p=1): {:.1} ms",
        ms(t.elapsed())
    );
    let r = s
        .add_room(&NewRoom {
            protocol_id: b"bench",
            hosted: true,
            title: "bench",
            invite: None,
            started_at: Timestamp(0),
        })
        .unwrap();
    let texts: Vec<String> = (0..n)
        .map(|i| format!("message {i}: a typical chat line of some sixty characters or so."))
        .collect();

    // Bulk: batches of BATCH messages per transaction.
    let t = Instant::now();
    for chunk in texts.chunks(BATCH) {
        let ms_: Vec<NewMessage<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(i, text)| NewMessage {
                room: r,
                sender_key: &PublicKey([7; 32]),
                sender_name: "bench",
                sent_at: Timestamp(i as i64),
                text,
            })
            .collect();
        s.add_messages(&ms_).unwrap();
    }
    let bulk = t.elapsed();
    println!(
        "insert {n} messages in batches of {BATCH}: {:.0} ms total, {:.1} µs/message",
        ms(bulk),
        bulk.as_secs_f64() * 1e6 / n as f64
    );

    // One message per call: each is its own durable transaction (synchronous = FULL).
    let t = Instant::now();
    for i in 0..singles {
        s.add_message(&NewMessage {
            room: r,
            sender_key: &PublicKey([7; 32]),
            sender_name: "bench",
            sent_at: Timestamp(i as i64),
            text: "one durable message per call",
        })
        .unwrap();
    }
    let single = t.elapsed();
    println!(
        "insert {singles} messages one per call (durable each): {:.2} ms/message",
        ms(single) / singles as f64
    );

    // Page backwards through the whole room.
    let t = Instant::now();
    let mut pages = 0u32;
    let mut seen = 0usize;
    let mut page = s.messages(r, Page::Latest { limit: PAGE }).unwrap();
    while let Some(first) = page.first() {
        pages += 1;
        seen += page.len();
        let before = first.id;
        page = s
            .messages(
                r,
                Page::Before {
                    before,
                    limit: PAGE,
                },
            )
            .unwrap();
    }
    let walk = t.elapsed();
    assert_eq!(seen, n + singles);
    println!(
        "page back through {seen} messages, {PAGE} per page: {:.0} ms total, {:.1} µs/page ({pages} pages)",
        ms(walk),
        walk.as_secs_f64() * 1e6 / f64::from(pages)
    );
    s.checkpoint().unwrap();
    drop(s);
    let size = std::fs::metadata(&db).unwrap().len();
    println!("database size: {:.1} MiB", size as f64 / (1024.0 * 1024.0));

    // Unlocking: Argon2id alone, open with verification (default), open without.
    let header =
        Header::parse(&std::fs::read_to_string(dir.join("salon.db.header")).unwrap()).unwrap();
    let mut kdf = Duration::ZERO;
    let mut open_verified = Duration::ZERO;
    let mut open_plain = Duration::ZERO;
    for _ in 0..opens {
        let t = Instant::now();
        header.unlock(PASS).unwrap();
        kdf += t.elapsed();
        let t = Instant::now();
        let s = Store::open(&db, PASS).unwrap();
        open_verified += t.elapsed();
        drop(s);
        let t = Instant::now();
        let s = Store::open_with(
            &db,
            Unlock::Passphrase(PASS),
            &OpenOptions {
                verify_on_open: false,
                ..OpenOptions::default()
            },
        )
        .unwrap();
        open_plain += t.elapsed();
        drop(s);
    }
    let avg = |d: Duration| ms(d) / f64::from(opens);
    println!(
        "Argon2id key derivation (default params): {:.1} ms",
        avg(kdf)
    );
    println!(
        "open + unlock, verifying every page (default): {:.1} ms",
        avg(open_verified)
    );
    println!(
        "open + unlock, verify_on_open = false: {:.1} ms",
        avg(open_plain)
    );

    // The same bulk insert and walk with SQLCipher's memory wiping on (process-wide, so last).
    let t = Instant::now();
    let mut s = Store::open_with(
        &db,
        Unlock::Passphrase(PASS),
        &OpenOptions {
            memory_security: true,
            ..OpenOptions::default()
        },
    )
    .unwrap();
    let opened = t.elapsed();
    let t = Instant::now();
    for chunk in texts.chunks(BATCH) {
        let ms_: Vec<NewMessage<'_>> = chunk
            .iter()
            .map(|text| NewMessage {
                room: r,
                sender_key: &PublicKey([7; 32]),
                sender_name: "bench",
                sent_at: Timestamp(0),
                text,
            })
            .collect();
        s.add_messages(&ms_).unwrap();
    }
    let bulk = t.elapsed();
    let t = Instant::now();
    let mut pages = 0u32;
    let mut page = s.messages(r, Page::Latest { limit: PAGE }).unwrap();
    while let Some(first) = page.first() {
        pages += 1;
        let before = first.id;
        page = s
            .messages(
                r,
                Page::Before {
                    before,
                    limit: PAGE,
                },
            )
            .unwrap();
    }
    let walk = t.elapsed();
    println!(
        "with memory_security: open {:.1} ms; insert {n} batched {:.1} µs/message; page {:.1} µs/page ({pages} pages)",
        ms(opened),
        bulk.as_secs_f64() * 1e6 / n as f64,
        walk.as_secs_f64() * 1e6 / f64::from(pages)
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
