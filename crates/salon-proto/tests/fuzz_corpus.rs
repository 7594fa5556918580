//! Replays the committed fuzz inputs on the stable toolchain: the seeds each target
//! starts from (`fuzz/seeds/<target>/`) and every crash found so far
//! (`fuzz/regressions/<target>/`), through the same harnesses the cargo-fuzz targets
//! run (`salon_proto::fuzz`). A crash, once fixed and committed here, stays fixed.
//!
//! `SALON_WRITE_FUZZ_SEEDS=1 cargo test -p salon-proto --test fuzz_corpus` rewrites the
//! generated seeds (valid messages and frames, so the fuzzer starts past the decoders).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use salon_proto::fuzz::{self, ROOM_MAX_OPS};
use salon_proto::identity::PublicKey;
use salon_proto::message::{Action, Message};
use salon_proto::{frame, sim::Net};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The committed inputs of `target`, seeds and regressions, with their paths.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["seeds", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_file() && path.extension().is_none() {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

fn op(out: &mut Vec<u8>, code: u8, body: &[u8]) {
    out.push(code);
    out.push(u8::try_from(body.len()).unwrap());
    out.extend_from_slice(body);
}

/// Seeds for `room`: each control message a member or host sends, each frame type, and
/// time steps between them.
fn room_seeds() -> Vec<(&'static str, Vec<u8>)> {
    // Keys of the room `fuzz::room` builds, so moderation and relay messages name real
    // members.
    let mut net = Net::new(5);
    let (h, m) = (net.add("host"), net.add("member"));
    let (kh, km) = (net.key(h), net.key(m));
    let member_msgs: Vec<(&str, Message)> = vec![
        (
            "hello",
            Message::Hello {
                name: "Mallory".into(),
                candidates: vec!["10.0.0.9:4000".parse().unwrap()],
            },
        ),
        ("hand", Message::SetHand(true)),
        ("muted", Message::SetMuted(true)),
        (
            "chat",
            Message::Chat {
                seq: 1,
                text: "hi".into(),
            },
        ),
        (
            "moderate",
            Message::Moderate {
                target: kh,
                action: Action::Remove,
            },
        ),
        ("relay_ask", Message::RelayAsk { peer: kh }),
        (
            "relay_open",
            Message::RelayOpen {
                peer: PublicKey([7; 32]),
                index: 5,
            },
        ),
        ("leave", Message::Leave),
    ];
    let host_msgs: Vec<(&str, Message)> = vec![
        (
            "moderate_stage",
            Message::Moderate {
                target: km,
                action: Action::InviteToStage,
            },
        ),
        ("removed", Message::Removed),
        ("ended", Message::Ended),
        (
            "observed",
            Message::Observed("198.51.100.1:7".parse().unwrap()),
        ),
        (
            "relay_to",
            Message::RelayTo {
                peer: km,
                datagram: vec![1; 32],
            },
        ),
    ];
    let mut seeds = Vec::new();
    for (name, msg) in member_msgs {
        let mut s = Vec::new();
        op(&mut s, 2, &msg.encode());
        s.extend_from_slice(&[4, 50]);
        seeds.push((name, s));
    }
    for (name, msg) in host_msgs {
        let mut s = Vec::new();
        op(&mut s, 3, &msg.encode());
        s.extend_from_slice(&[4, 50]);
        seeds.push((name, s));
    }
    let mut frames = Vec::new();
    let mut p = Vec::new();
    frame::push_ping(&mut p, 9);
    frames.push(("ping", p));
    let mut p = Vec::new();
    frame::push_audio(&mut p, 3, &[1; 20]);
    frames.push(("audio", p));
    let mut p = Vec::new();
    frame::push_report(&mut p, 250);
    frames.push(("report", p));
    let mut p = Vec::new();
    frame::push_path(&mut p, false, 77);
    frames.push(("challenge", p));
    for (name, plain) in frames {
        let mut s = Vec::new();
        op(&mut s, 0, &plain);
        op(&mut s, 1, &plain);
        s.extend_from_slice(&[4, 10]);
        seeds.push((name, s));
    }
    // Long silences: peer timeouts, rekeys and session expiry.
    seeds.push(("time", [4u8, 255].repeat(ROOM_MAX_OPS / 4)));
    seeds
}

/// Seeds for `invite` and `datagram`: a valid invite, and a datagram of each type.
fn other_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let invite = salon_proto::Invite::new(
        PublicKey([0x3f; 32]),
        salon_proto::RoomId([1; 16]),
        salon_proto::invite::RoomSecret::from_bytes([2; 32]),
        vec![salon_proto::Candidate {
            kind: salon_proto::CandidateKind::Lan,
            addr: "192.0.2.1:4433".parse().unwrap(),
        }],
    );
    let mut seeds = vec![("invite", "valid", invite.encode().into_bytes())];
    for t in 1u8..=4 {
        let mut d = vec![t, 0, 0, 0];
        d.extend_from_slice(&[0x11; 60]);
        seeds.push((
            "datagram",
            ["init", "response", "cookie", "transport"][usize::from(t - 1)],
            d,
        ));
    }
    seeds
}

#[test]
fn generated_seeds_are_the_committed_ones() {
    let mut all: Vec<(&str, &str, Vec<u8>)> = room_seeds()
        .into_iter()
        .map(|(n, b)| ("room", n, b))
        .collect();
    all.extend(other_seeds());
    let write = std::env::var_os("SALON_WRITE_FUZZ_SEEDS").is_some();
    for (target, name, bytes) in &all {
        let dir = fuzz_dir().join("seeds").join(target);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let committed = std::fs::read(dir.join(name)).unwrap_or_else(|e| {
            panic!("seed {target}/{name}: {e}; run with SALON_WRITE_FUZZ_SEEDS=1")
        });
        assert_eq!(&committed, bytes, "seed {target}/{name} is stale");
    }
}

#[test]
fn committed_room_inputs_replay_without_a_crash() {
    let all = inputs("room");
    assert!(all.len() >= room_seeds().len(), "seeds missing");
    for (path, bytes) in all {
        eprintln!("room: {}", path.display());
        fuzz::room(&bytes);
    }
}

#[test]
fn committed_datagram_and_invite_inputs_replay_without_a_crash() {
    for (path, bytes) in inputs("datagram") {
        eprintln!("datagram: {}", path.display());
        fuzz::datagram(&bytes);
    }
    for (path, bytes) in inputs("invite") {
        eprintln!("invite: {}", path.display());
        fuzz::invite(&bytes);
    }
}
