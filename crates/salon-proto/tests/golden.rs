//! Golden vectors: the exact bytes of every wire message type, built from fixed keys,
//! seeds and inputs. A change to the format fails here instead of drifting silently.
//! After an intended format change, regenerate with `SALON_UPDATE_GOLDEN=1 cargo test -p
//! salon-proto --test golden` and bump the protocol version.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use salon_proto::cookie::{CookieJar, mac, open_reply};
use salon_proto::frame;
use salon_proto::handshake::{
    self, InitPayload, Keys, Kind, ResponsePayload, Status, cookie_key, join_mac1_key,
    join_prologue, link_hint, link_mac1_key, link_prologue,
};
use salon_proto::invite::{Candidate, CandidateKind, Invite, RoomId, RoomSecret};
use salon_proto::message::{Action, Message, RoomState};
use salon_proto::session::Session;
use salon_proto::wire::{self, INIT_MAC1_OFFSET, INIT_MAC2_OFFSET, Packet};
use salon_proto::{Identity, Member, Role};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/vectors.txt");
const ROOM_ID: [u8; 16] = [0x11; 16];
const ROOM_SECRET: [u8; 32] = [0x22; 32];
const EPOCH_SECRET: [u8; 32] = [0x33; 32];

/// Builds every vector, checking on the way that each one is also *valid* (the other side
/// accepts it), not merely stable.
fn vectors() -> BTreeMap<&'static str, String> {
    let mut v = BTreeMap::new();
    let joiner = Identity::from_secret_bytes([1; 32]);
    let host = Identity::from_secret_bytes([2; 32]);

    let invite = Invite::new(
        host.public_key(),
        RoomId(ROOM_ID),
        RoomSecret::from_bytes(ROOM_SECRET),
        vec![
            Candidate {
                kind: CandidateKind::Lan,
                addr: "192.0.2.1:4433".parse().unwrap(),
            },
            Candidate {
                kind: CandidateKind::Reflexive,
                addr: "[2001:db8::1]:5000".parse().unwrap(),
            },
        ],
    );
    let text = invite.encode();
    assert_eq!(Invite::parse(&text).unwrap(), invite);
    v.insert("invite", text);

    // Join initiation (IKpsk1) and response.
    let prologue = join_prologue(&ROOM_ID);
    let payload = InitPayload {
        timestamp: 1_700_000_000_000_000,
        incarnation: 7,
    };
    let jk = Keys {
        local: &joiner,
        psk: &ROOM_SECRET,
        prologue: &prologue,
    };
    let (ihs, noise) =
        handshake::initiate(Kind::Join, &jk, &host.public_key(), &payload, [3; 32]).unwrap();
    let mut init = wire::encode_init(0x0102_0304, &[0xaa; 16], &noise).unwrap();
    let k1 = join_mac1_key(&host.public_key(), &ROOM_SECRET);
    let m1 = mac(&k1, &init[..INIT_MAC1_OFFSET]);
    init[INIT_MAC1_OFFSET..INIT_MAC2_OFFSET].copy_from_slice(&m1);
    assert!(matches!(Packet::parse(&init), Ok(Packet::Init(i)) if i.sender == 0x0102_0304));
    v.insert("datagram.init.join", hex::encode(&init));

    let hk = Keys {
        local: &host,
        psk: &ROOM_SECRET,
        prologue: &prologue,
    };
    let (rhs, who, got) = handshake::accept(Kind::Join, &hk, None, &noise, [4; 32]).unwrap();
    assert_eq!((who, got), (joiner.public_key(), payload));
    let reply = ResponsePayload {
        status: Status::Accepted,
        incarnation: 8,
        // Zero encodes as the padding older encoders wrote: the vector predates the
        // field and stays valid both ways.
        timestamp: 0,
    };
    let (rt, rnoise) = handshake::respond(rhs, &reply).unwrap();
    let resp = wire::encode_response(0x0506_0708, 0x0102_0304, &rnoise).unwrap();
    v.insert("datagram.response.join", hex::encode(&resp));
    let (it, back) = handshake::complete(ihs, &rnoise).unwrap();
    assert_eq!(back, reply);

    // Transport: an audio datagram from the joiner, a control datagram from the host.
    let now = Instant::now();
    let mut tx = Session::new(it, 0x0102_0304, 0x0506_0708, true, now);
    let mut rx = Session::new(rt, 0x0506_0708, 0x0102_0304, false, now);
    let mut audio = Vec::new();
    frame::push_audio(&mut audio, 1, &[0x5a; 120]);
    assert!(frame::pad(&mut audio));
    v.insert("plaintext.audio", hex::encode(&audio));
    let d = tx.seal(&audio).unwrap();
    assert_eq!(d.len(), 189);
    let Ok(Packet::Transport(t)) = Packet::parse(&d) else {
        panic!("transport")
    };
    assert_eq!(rx.open(t.counter, t.ciphertext).unwrap(), audio);
    v.insert("datagram.transport.audio", hex::encode(&d));

    let mut control = Vec::new();
    frame::ChannelFrame::Ack {
        next: 3,
        bits: 0b101,
    }
    .encode(&mut control);
    frame::ChannelFrame::Segment {
        seq: 4,
        last: true,
        data: &Message::SetHand(true).encode(),
    }
    .encode(&mut control);
    frame::push_ping(&mut control, 9);
    frame::push_pong(&mut control, 8, 12);
    frame::push_skipped(&mut control, 77);
    assert!(frame::pad(&mut control));
    v.insert("plaintext.control", hex::encode(&control));
    v.insert(
        "datagram.transport.control",
        hex::encode(rx.seal(&control).unwrap()),
    );

    // A reception report riding with a ping, from the listener to the speaker: audio-sized.
    let mut report = Vec::new();
    frame::push_report(&mut report, 200);
    frame::push_ping(&mut report, 10);
    assert!(frame::pad(&mut report));
    assert_eq!(
        frame::parse(&report).unwrap(),
        vec![
            frame::Frame::Report { loss_permille: 200 },
            frame::Frame::Ping(10)
        ]
    );
    v.insert("plaintext.report", hex::encode(&report));
    let d = tx.seal(&report).unwrap();
    assert_eq!(d.len(), 189, "a report looks like audio");
    let Ok(Packet::Transport(t)) = Packet::parse(&d) else {
        panic!("transport")
    };
    assert_eq!(rx.open(t.counter, t.ciphertext).unwrap(), report);
    v.insert("datagram.transport.report", hex::encode(&d));

    // A keepalive carrying a path challenge and the answer to the peer's: audio-sized.
    let mut path = Vec::new();
    frame::push_ping(&mut path, 11);
    frame::push_path(&mut path, false, 0x0102_0304_0506_0708);
    frame::push_path(&mut path, true, 0x1112_1314_1516_1718);
    assert!(frame::pad(&mut path));
    assert_eq!(
        frame::parse(&path).unwrap(),
        vec![
            frame::Frame::Ping(11),
            frame::Frame::PathChallenge(0x0102_0304_0506_0708),
            frame::Frame::PathResponse(0x1112_1314_1516_1718),
        ]
    );
    v.insert("plaintext.path", hex::encode(&path));
    let mut d = tx.seal(&path).unwrap();
    assert_eq!(d.len(), 189, "path checks look like audio");
    v.insert("datagram.transport.path", hex::encode(&d));
    // The same datagram as a relay passes it on: only the receiver index differs, and the
    // receiver still opens it.
    wire::set_receiver(&mut d, 0x0a0b_0c0d);
    v.insert("datagram.transport.path.relayed", hex::encode(&d));
    let Ok(Packet::Transport(t)) = Packet::parse(&d) else {
        panic!("transport")
    };
    assert_eq!(t.receiver, 0x0a0b_0c0d);
    assert_eq!(rx.open(t.counter, t.ciphertext).unwrap(), path);

    // Member link initiation (KKpsk0) with its key hint, and the response.
    let lp = link_prologue(&ROOM_ID, 5);
    let payload = InitPayload {
        timestamp: 1_700_000_000_000_001,
        incarnation: 7,
    };
    let ak = Keys {
        local: &joiner,
        psk: &EPOCH_SECRET,
        prologue: &lp,
    };
    let (lhs, lnoise) =
        handshake::initiate(Kind::Link, &ak, &host.public_key(), &payload, [5; 32]).unwrap();
    let hint = link_hint(&EPOCH_SECRET, &joiner.public_key(), &lnoise[..32]);
    let mut linit = wire::encode_init(0x0a0b_0c0d, &hint, &lnoise).unwrap();
    let lk1 = link_mac1_key(&host.public_key(), &EPOCH_SECRET);
    let lm1 = mac(&lk1, &linit[..INIT_MAC1_OFFSET]);
    linit[INIT_MAC1_OFFSET..INIT_MAC2_OFFSET].copy_from_slice(&lm1);
    assert_eq!(linit.len(), init.len(), "joins and links look alike");
    v.insert("datagram.init.link", hex::encode(&linit));
    let bk = Keys {
        local: &host,
        psk: &EPOCH_SECRET,
        prologue: &lp,
    };
    let (lrhs, _, _) = handshake::accept(
        Kind::Link,
        &bk,
        Some(&joiner.public_key()),
        &lnoise,
        [6; 32],
    )
    .unwrap();
    let (_, lrnoise) = handshake::respond(lrhs, &reply).unwrap();
    let lresp = wire::encode_response(0x0e0f_1011, 0x0a0b_0c0d, &lrnoise).unwrap();
    assert_eq!(lresp.len(), resp.len());
    v.insert("datagram.response.link", hex::encode(&lresp));
    handshake::complete(lhs, &lrnoise).unwrap();

    // Cookie reply to the join initiation, opened by the joiner.
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let mut jar = CookieJar::new(&mut rng, now);
    let src = "192.0.2.9:6000".parse().unwrap();
    let cookie = jar.cookie(now, &mut rng, src);
    let (nonce, sealed) = jar.seal_reply(&cookie_key(&k1), &cookie, &m1, &mut rng);
    let c = wire::encode_cookie(0x0102_0304, &nonce, &sealed);
    assert_eq!(
        open_reply(&cookie_key(&k1), &nonce, &sealed, &m1),
        Some(cookie)
    );
    v.insert("datagram.cookie", hex::encode(&c));
    let _ = INIT_MAC2_OFFSET;

    // Control messages.
    let member = Member {
        key: joiner.public_key(),
        name: "Ada".into(),
        role: Role::Speaker,
        hand_raised: false,
        muted: true,
        candidates: vec!["192.0.2.1:4433".parse().unwrap()],
        joined: 2,
    };
    let messages: [(&str, Message); 19] = [
        (
            "message.hello",
            Message::Hello {
                name: "Ada".into(),
                candidates: vec!["10.0.0.2:4000".parse().unwrap()],
            },
        ),
        (
            "message.state",
            Message::State(
                RoomState::new(
                    "Jazz".into(),
                    5,
                    salon_proto::secret::Secret32::from_bytes(EPOCH_SECRET),
                    2,
                    vec![member.clone()],
                    vec![host.public_key()],
                )
                .with_uniform(true),
            ),
        ),
        ("message.set_hand", Message::SetHand(true)),
        ("message.set_muted", Message::SetMuted(false)),
        (
            "message.moderate",
            Message::Moderate {
                target: host.public_key(),
                action: Action::InviteToStage,
            },
        ),
        (
            "message.chat",
            Message::Chat {
                seq: 3,
                text: "hi all".into(),
            },
        ),
        ("message.leave", Message::Leave),
        ("message.removed", Message::Removed),
        ("message.ended", Message::Ended),
        (
            "message.observed",
            Message::Observed("203.0.113.7:40000".parse().unwrap()),
        ),
        (
            "message.relay_open",
            Message::RelayOpen {
                peer: host.public_key(),
                index: 0x0102_0304,
            },
        ),
        (
            "message.relay_ready",
            Message::RelayReady {
                peer: joiner.public_key(),
                index: 0x0506_0708,
            },
        ),
        (
            "message.relay_ask",
            Message::RelayAsk {
                peer: host.public_key(),
            },
        ),
        (
            "message.relay_to",
            Message::RelayTo {
                peer: host.public_key(),
                datagram: resp.clone(),
            },
        ),
        (
            "message.update",
            Message::Update {
                epoch: 5,
                version: 3,
                member: member.clone(),
            },
        ),
        (
            "message.relay_from",
            Message::RelayFrom {
                peer: joiner.public_key(),
                datagram: resp.clone(),
            },
        ),
        (
            "message.stage_invite",
            Message::StageInvite {
                by: host.public_key(),
            },
        ),
        (
            "message.stage_answer.accept",
            Message::StageAnswer { accept: true },
        ),
        (
            "message.stage_answer.decline",
            Message::StageAnswer { accept: false },
        ),
    ];
    for (name, m) in messages {
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes).unwrap(), m);
        v.insert(name, hex::encode(&bytes));
    }
    v
}

#[test]
fn wire_format_matches_golden_vectors() {
    let now: BTreeMap<&str, String> = vectors();
    let rendered: String = now.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    if std::env::var_os("SALON_UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &rendered).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(GOLDEN)
        .expect("golden file missing: run with SALON_UPDATE_GOLDEN=1 once");
    let stored: BTreeMap<&str, &str> = stored.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        now.keys().collect::<Vec<_>>(),
        "set of vectors changed"
    );
    for (k, v) in &now {
        assert_eq!(stored[k], v.as_str(), "wire format of {k} changed");
    }
}
