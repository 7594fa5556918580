//! Fuzz harnesses, shared by the cargo-fuzz targets in `fuzz/` (nightly, libFuzzer) and
//! by a stable test that replays the committed seeds and past crashes, so a crash found
//! once is checked on every CI run. Only with the `test-support` feature.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::roster::Role;
use crate::sim::Net;
use crate::{Candidate, CandidateKind, Config, Endpoint, Identity, Invite, RoomView};

/// Most operations one `room` input may run: bounds the simulated time per input.
pub const ROOM_MAX_OPS: usize = 48;

/// `invite` target: `Invite::parse` never panics, and whatever it accepts survives
/// `encode` and parses back to the same invite.
pub fn invite(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(invite) = Invite::parse(text) {
        let again = Invite::parse(&invite.encode());
        assert_eq!(again.as_ref(), Ok(&invite), "invite does not round-trip");
    }
}

thread_local! {
    static HOST: RefCell<(Endpoint, Instant)> = RefCell::new(datagram_host());
}

fn datagram_host() -> (Endpoint, Instant) {
    let now = Instant::now();
    let id = Identity::generate(&mut ChaCha20Rng::from_seed([1; 32]));
    let mut ep = Endpoint::new(Config::default(), id, [2; 32], now, 0);
    let cand = vec![Candidate {
        kind: CandidateKind::Lan,
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 4000)),
    }];
    if ep.host(now, "fuzz", "host", cand).is_err() {
        panic!("a fresh endpoint could not host");
    }
    while ep.poll_event().is_some() {}
    (ep, now)
}

/// `datagram` target: the parsers never panic on any bytes, and a live hosting endpoint
/// sends nothing back to garbage.
pub fn datagram(data: &[u8]) {
    let _ = crate::wire::Packet::parse(data);
    let _ = crate::frame::parse(data);
    let _ = crate::message::Message::decode(data);
    let _ = crate::frame::ChannelFrame::decode(data);
    HOST.with(|h| {
        let (ep, now) = &mut *h.borrow_mut();
        ep.handle_datagram(
            *now,
            std::net::SocketAddr::from(([127, 0, 0, 2], 5000)),
            data,
        );
        assert!(ep.poll_transmit().is_none(), "answered garbage");
    });
}

/// A host and one member with their sessions up, on a fresh simulated network.
fn live_room() -> (Net, usize, usize) {
    let mut net = Net::new(5);
    let (host, member) = (net.add("host"), net.add("member"));
    let Ok(invite) = net.host(host, "Fuzz") else {
        panic!("could not host");
    };
    if net.join(member, &invite).is_err() {
        panic!("could not join");
    }
    if !net.run_until(Duration::from_secs(10), |n| {
        n.rosters_agree(&[host, member]) && n.mesh_up(&[host, member])
    }) {
        panic!("the room did not come up");
    }
    (net, host, member)
}

/// What must hold in any roster a node shows, whatever it was sent.
fn check_roster(view: &RoomView, own_limit: Option<usize>) {
    let hosts = view.members.iter().filter(|m| m.role == Role::Host).count();
    assert_eq!(hosts, 1, "a roster with {hosts} hosts");
    assert!(
        view.members
            .iter()
            .any(|m| m.key == view.host && m.role == Role::Host),
        "the room's host is not the roster's host"
    );
    let mut keys: Vec<_> = view.members.iter().map(|m| m.key).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), view.members.len(), "a key twice in the roster");
    if let Some(limit) = own_limit {
        assert!(
            view.members.len() <= limit,
            "more members than the host admits"
        );
    }
}

/// `room` target: a live room (host and member, sessions up), then fuzzer-chosen
/// plaintexts sealed under the real sessions (so they pass decryption) and raw control
/// messages on the reliable channel, to the host and to the member, between time steps.
/// Nothing panics, and every roster keeps exactly one host, no key twice, and (at the
/// host) no more members than its limit.
///
/// Input: a list of operations, each an opcode byte then its operands:
/// `0 len bytes` plaintext member → host, `1 len bytes` plaintext host → member,
/// `2 len bytes` control message member → host, `3 len bytes` control message host →
/// member, `4 t` let `t × 20` ms pass; other opcodes are read modulo 5.
pub fn room(data: &[u8]) {
    let (mut net, host, member) = live_room();
    let limit = Config::default().max_members;
    let (kh, km) = (net.key(host), net.key(member));
    let mut rest = data;
    for _ in 0..ROOM_MAX_OPS {
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        let (from, to, key_to) = match op % 5 {
            0 | 2 => (member, host, kh),
            1 | 3 => (host, member, km),
            _ => {
                let t = rest.first().copied().unwrap_or(0);
                rest = rest.get(1..).unwrap_or(&[]);
                net.run_for(Duration::from_millis(u64::from(t) * 20));
                check(&net, host, member, limit);
                continue;
            }
        };
        let len = usize::from(rest.first().copied().unwrap_or(0));
        let body = rest.get(1..).unwrap_or(&[]);
        let take = len.min(body.len());
        let (bytes, tail) = body.split_at(take);
        rest = tail;
        if op % 5 < 2 {
            let addr = net.nodes[from].addr;
            let now = net.now;
            if let Some(d) = net.nodes[from].ep.seal_for_test(&key_to, bytes) {
                net.nodes[to].ep.handle_datagram(now, addr, &d);
                net.pump(to);
            }
        } else {
            let _ = net.nodes[from].ep.send_raw_message_for_test(&key_to, bytes);
            net.pump(from);
            net.run_for(Duration::from_millis(100));
        }
        check(&net, host, member, limit);
    }
}

fn check(net: &Net, host: usize, member: usize, limit: usize) {
    if let Some(v) = net.nodes[host].ep.room() {
        // Only the original host's own roster is bounded by its own limit (a member
        // taking over after a forged hand-over keeps the roster it was given).
        let own = (v.host == net.key(host)).then_some(limit);
        check_roster(&v, own);
    }
    if let Some(v) = net.nodes[member].ep.room() {
        check_roster(&v, None);
    }
}
