//! Rooms across simulated home routers: simultaneous open through every pair of NAT
//! types, member relays where no direct path exists, path validation against spoofed
//! sources, roaming to a new network.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use salon_proto::sim::{NatKind, Net};
use salon_proto::{Event, Path};

const SECS: fn(u64) -> Duration = Duration::from_secs;

const KINDS: [NatKind; 4] = [
    NatKind::FullCone,
    NatKind::AddressRestricted,
    NatKind::PortRestricted,
    NatKind::Symmetric,
];

/// A public host and two members behind routers of kinds `a` and `b`, everyone on stage
/// and speaking. Returns once the room agrees (links need not be up yet).
fn cell(seed: u64, a: NatKind, b: NatKind) -> (Net, [usize; 3]) {
    let mut net = Net::new(seed);
    let h = net.add("Host");
    let m1 = net.add("Mia");
    let m2 = net.add("Noor");
    net.put_behind_nat(m1, a);
    net.put_behind_nat(m2, b);
    let invite = net.host(h, "Across town").unwrap();
    net.join(m1, &invite).unwrap();
    net.join(m2, &invite).unwrap();
    let ids = [h, m1, m2];
    assert!(
        net.run_until(SECS(10), |n| n.rosters_agree(&ids)
            && n.nodes[h].ep.room().is_some_and(|r| r.members.len() == 3)),
        "{a:?}/{b:?}: room did not form"
    );
    for m in [m1, m2] {
        net.bring_on_stage(h, m).unwrap();
    }
    for i in ids {
        net.nodes[i].speaking = true;
    }
    (net, ids)
}

/// The first address node `at`'s roster gives for member `who` (where others punch).
fn first_candidate(net: &Net, at: usize, who: usize) -> Option<std::net::SocketAddr> {
    let room = net.nodes[at].ep.room()?;
    let m = room.members.iter().find(|m| m.key == net.key(who))?;
    m.candidates.first().copied()
}

fn path(net: &Net, at: usize, to: usize) -> Option<Path> {
    net.nodes[at]
        .ep
        .link_stats(&net.key(to))
        .and_then(|s| s.path)
}

/// Audio frames node `at` received from `from` after event index `since`.
fn audio_since(net: &Net, at: usize, from: usize, since: usize) -> usize {
    let k = net.key(from);
    net.events(at)[since..]
        .iter()
        .filter(|e| matches!(e, Event::Audio { from, .. } if *from == k))
        .count()
}

/// Whether both members end up routing to each other straight (no relay) for NAT kinds
/// `a`, `b`. A symmetric NAT gives each destination its own random port: a peer that
/// accepts datagrams from any port of the symmetric side's IP (full cone, address
/// restricted) is reached by simultaneous open; a port-restricted one by the birthday
/// technique after a spell on the relay; two symmetric NATs stay relayed.
fn direct_expected(a: NatKind, b: NatKind) -> bool {
    !(a == NatKind::Symmetric && b == NatKind::Symmetric)
}

#[test]
fn every_pair_of_nat_kinds_hears_everyone_direct_where_the_nats_allow_and_relayed_elsewhere() {
    let mut table = Vec::new();
    for (x, &a) in KINDS.iter().enumerate() {
        for &b in &KINDS[x..] {
            let (mut net, [h, m1, m2]) = cell(7 + x as u64, a, b);
            let mark = [h, m1, m2].map(|i| net.events(i).len());
            let heard = net.run_until(SECS(8), |n| {
                [(h, m1), (h, m2), (m1, h), (m1, m2), (m2, h), (m2, m1)]
                    .iter()
                    .all(|&(at, from)| audio_since(n, at, from, mark[at]) > 50)
            });
            // A birthday attempt takes a relay spell and ~4 s of probes.
            net.run_until(SECS(12), |n| {
                !direct_expected(a, b)
                    || (matches!(path(n, m1, m2), Some(Path::Direct(_)))
                        && matches!(path(n, m2, m1), Some(Path::Direct(_))))
            });
            let p12 = path(&net, m1, m2);
            let p21 = path(&net, m2, m1);
            table.push(format!("{a:?}/{b:?}: {p12:?} / {p21:?}"));
            assert!(heard, "{a:?}/{b:?}: not everyone heard everyone ({p12:?})");
            let relayed_via_host = Some(Path::Relayed { via: net.key(h) });
            if direct_expected(a, b) {
                assert!(
                    matches!(p12, Some(Path::Direct(_))) && matches!(p21, Some(Path::Direct(_))),
                    "{a:?}/{b:?}: expected a direct path, got {p12:?} / {p21:?}"
                );
            } else {
                assert_eq!(p12, relayed_via_host, "{a:?}/{b:?}");
                assert_eq!(p21, relayed_via_host, "{a:?}/{b:?}");
            }
            // The host link is always direct: the members reached it with the invite.
            assert!(matches!(path(&net, m1, h), Some(Path::Direct(_))));
        }
    }
    eprintln!("{}", table.join("\n"));
}

#[test]
fn relayed_datagrams_keep_the_fixed_sizes_and_audio_stays_one_size() {
    let (mut net, [h, m1, m2]) = cell(3, NatKind::Symmetric, NatKind::Symmetric);
    let relayed = net.run_until(SECS(8), |n| {
        path(n, m1, m2) == Some(Path::Relayed { via: n.key(h) }) && audio_since(n, m2, m1, 0) > 100
    });
    assert!(relayed);
    let start = net.captured.len();
    let (d0, b0) = net.nodes[h].ep.relayed();
    net.run_for(SECS(3));
    for c in &net.captured[start..] {
        assert!(
            [341, 121, 61, 189, 509, 1213].contains(&c.bytes.len()),
            "odd size {}",
            c.bytes.len()
        );
        if c.audio {
            assert_eq!(c.bytes.len(), 189);
        }
    }
    // Both members speak at 50 frames a second through the host: about 300 datagrams in
    // 3 s, each forwarded at the size it arrived with (audio-sized, like keepalives).
    let (d1, b1) = net.nodes[h].ep.relayed();
    let (datagrams, bytes) = (d1 - d0, b1 - b0);
    assert!((280..=340).contains(&datagrams), "{datagrams} forwarded");
    assert_eq!(bytes, 189 * datagrams);
}

#[test]
fn a_spoofed_source_replaying_a_datagram_moves_no_link() {
    let (mut net, [h, m1, _m2]) = cell(5, NatKind::FullCone, NatKind::PortRestricted);
    assert!(net.run_until(SECS(6), |n| audio_since(n, h, m1, 0) > 50));
    let real = match path(&net, h, m1) {
        Some(Path::Direct(a)) => a,
        other => panic!("host to Mia not direct: {other:?}"),
    };
    // An on-path attacker replays datagrams from Mia to the host from its own address:
    // ones already delivered (the replay window drops them), and fresh ones it took off
    // the wire before they arrived (they decrypt fine: only the path check stops them).
    let attacker = "192.0.2.66:5555".parse().unwrap();
    let host_addr = net.nodes[h].addr;
    let delivered: Vec<Vec<u8>> = net
        .captured
        .iter()
        .rev()
        .filter(|c| c.to == host_addr && c.from == real)
        .take(20)
        .map(|c| c.bytes.clone())
        .collect();
    net.hijack = Some((real, host_addr));
    net.run_for(Duration::from_millis(200));
    net.hijack = None;
    let fresh = std::mem::take(&mut net.hijacked);
    assert!(fresh.len() >= 5, "took {} datagrams", fresh.len());
    for b in delivered.into_iter().chain(fresh) {
        net.inject(attacker, host_addr, b);
    }
    let before = net.captured.len();
    net.run_for(SECS(3));
    assert_eq!(path(&net, h, m1), Some(Path::Direct(real)));
    // The host answered the fresh ones with one path challenge, nothing more: no audio,
    // no roster, and the path never moved (not even for a moment).
    let to_attacker = net.captured[before..]
        .iter()
        .filter(|c| c.to == attacker)
        .count();
    assert!(
        to_attacker <= 2,
        "{to_attacker} datagrams went to the attacker"
    );
    assert!(
        !net.events(h)
            .iter()
            .any(|e| matches!(e, Event::LinkPath { path: Path::Direct(a), .. } if *a == attacker))
    );
    // Nothing the host sent to the attacker could be answered, and audio still flows.
    let mark = net.events(h).len();
    net.run_for(SECS(2));
    assert!(audio_since(&net, h, m1, mark) > 50);
    assert_eq!(
        first_candidate(&net, h, m1).as_ref(),
        Some(&real),
        "roster kept Mia's address"
    );
}

#[test]
fn a_member_that_moves_to_another_network_is_heard_again_by_everyone() {
    let (mut net, [h, m1, m2]) = cell(11, NatKind::PortRestricted, NatKind::PortRestricted);
    assert!(net.run_until(SECS(6), |n| {
        matches!(path(n, m1, m2), Some(Path::Direct(_))) && audio_since(n, m2, m1, 0) > 50
    }));
    let old = path(&net, h, m1);
    // Wi-Fi to tethering: a new router, a new public address, same process.
    net.put_behind_nat(m1, NatKind::PortRestricted);
    let mark = [h, m1, m2].map(|i| net.events(i).len());
    let back = net.run_until(SECS(10), |n| {
        audio_since(n, h, m1, mark[h]) > 50
            && audio_since(n, m2, m1, mark[m2]) > 50
            && audio_since(n, m1, m2, mark[m1]) > 50
    });
    assert!(back, "audio did not resume after the move");
    let new = path(&net, h, m1);
    assert!(
        matches!(new, Some(Path::Direct(_))) && new != old,
        "{old:?} -> {new:?}"
    );
    // The member stayed in the room the whole time.
    assert!(
        !net.events(m1)[mark[m1]..]
            .iter()
            .any(|e| matches!(e, Event::Left(_)))
    );
    assert_eq!(
        first_candidate(&net, m2, m1),
        match new {
            Some(Path::Direct(a)) => Some(a),
            _ => None,
        },
        "the roster carries the new address"
    );
}

#[test]
fn symmetric_pair_with_only_the_host_to_relay_reports_the_path_and_never_reports_unreachable() {
    let (mut net, [h, m1, m2]) = cell(13, NatKind::Symmetric, NatKind::Symmetric);
    net.run_for(SECS(12));
    let via_host = Event::LinkPath {
        peer: net.key(m2),
        path: Path::Relayed { via: net.key(h) },
    };
    assert!(net.events(m1).contains(&via_host));
    assert!(
        !net.events(m1)
            .iter()
            .any(|e| matches!(e, Event::Unreachable { .. }))
    );
}

#[test]
fn symmetric_to_port_restricted_goes_direct_by_the_birthday_technique_in_nine_of_ten_rooms() {
    let tries = 20;
    let mut direct = 0;
    let mut waits = Vec::new();
    for seed in 0..tries {
        let (mut net, [_h, m1, m2]) = cell(100 + seed, NatKind::Symmetric, NatKind::PortRestricted);
        let t0 = net.now;
        if net.run_until(SECS(15), |n| {
            matches!(path(n, m1, m2), Some(Path::Direct(_)))
                && matches!(path(n, m2, m1), Some(Path::Direct(_)))
        }) {
            direct += 1;
            waits.push(net.now.duration_since(t0).as_secs_f64());
        }
    }
    waits.sort_by(f64::total_cmp);
    eprintln!(
        "birthday: {direct}/{tries} direct; seconds from join to direct: median {:.1}, max {:.1}",
        waits.get(waits.len() / 2).copied().unwrap_or(f64::NAN),
        waits.last().copied().unwrap_or(f64::NAN)
    );
    assert!(
        direct * 10 >= tries * 9,
        "only {direct}/{tries} went direct"
    );
}

#[test]
fn a_link_that_stays_relayed_probes_its_direct_path_less_often_after_thirty_seconds() {
    let (mut net, [h, m1, m2]) = cell(17, NatKind::Symmetric, NatKind::Symmetric);
    let host = net.nodes[h].addr;
    let m1_ip = net.nodes[m1].addr; // inside address: its datagrams leave from its router
    let probes_from_m1 = |net: &Net, from: usize| {
        net.captured[from..]
            .iter()
            .filter(|c| c.to != host && c.from.ip() != m1_ip.ip() && c.bytes.len() == 189)
            .filter(|c| c.from.ip() == router_ip(net, m1))
            .count()
    };
    net.run_for(SECS(5));
    assert_eq!(path(&net, m1, m2), Some(Path::Relayed { via: net.key(h) }));
    let early = net.captured.len();
    net.run_for(SECS(10));
    let early_probes = probes_from_m1(&net, early);
    net.run_for(SECS(30));
    let late = net.captured.len();
    net.run_for(SECS(40));
    let late_probes = probes_from_m1(&net, late);
    eprintln!("probes from Mia: {early_probes} in 10 s early, {late_probes} in 40 s late");
    assert!(early_probes >= 10, "early: {early_probes}");
    assert!(
        late_probes * 10 <= early_probes * 40 / 4,
        "late probing is not slower: {late_probes} in 40 s vs {early_probes} in 10 s"
    );
    assert_eq!(path(&net, m1, m2), Some(Path::Relayed { via: net.key(h) }));
}

/// The public IP of the router node `i` sits behind (what its datagrams show).
fn router_ip(net: &Net, i: usize) -> std::net::IpAddr {
    let host = net.nodes[0].addr;
    net.captured
        .iter()
        .rev()
        .find(|c| {
            c.to == host && c.from.ip() != net.nodes[i].addr.ip() && {
                // A datagram to the host from node i's router: the host's link to i says so.
                net.nodes[0].ep.link_stats(&net.key(i)).and_then(|s| s.path)
                    == Some(Path::Direct(c.from))
            }
        })
        .map(|c| c.from.ip())
        .expect("node talks to the host")
}

#[test]
fn a_direct_path_that_breaks_one_way_moves_both_sides_to_the_relay_and_audio_flows_again() {
    // Either member may hold the lower key, which decides who follows whom: break each
    // direction in turn.
    for (seed, flip) in [(19, false), (19, true), (23, false), (23, true)] {
        one_way_break(seed, flip);
    }
}

/// Breaks the direct path from one member to the other (Mia to Noor, or the reverse with
/// `flip`) and checks the receiver hears the sender again through the relay.
fn one_way_break(seed: u64, flip: bool) {
    let (mut net, [h, a, b]) = cell(seed, NatKind::FullCone, NatKind::FullCone);
    let (m1, m2) = if flip { (b, a) } else { (a, b) };
    assert!(net.run_until(SECS(6), |n| {
        matches!(path(n, m1, m2), Some(Path::Direct(_))) && audio_since(n, m2, m1, 0) > 50
    }));
    let Some(Path::Direct(m2_seen_by_m1)) = path(&net, m1, m2) else {
        unreachable!()
    };
    let Some(Path::Direct(m1_seen_by_m2)) = path(&net, m2, m1) else {
        unreachable!()
    };
    // From now on nothing m1 sends straight to m2 arrives; the other way still works.
    net.hijack = Some((m1_seen_by_m2, m2_seen_by_m1));
    let mark = net.events(m2).len();
    let mark1 = net.events(m1).len();
    let t0 = net.now;
    let back = net.run_until(SECS(20), |n| {
        n.events(m2)[mark..]
            .iter()
            .rev()
            .take(100)
            .filter(|e| matches!(e, Event::Audio { from, .. } if *from == n.key(m1)))
            .count()
            > 40
            && path(n, m1, m2) == Some(Path::Relayed { via: n.key(h) })
    });
    let took = net.now.duration_since(t0);
    assert!(
        back,
        "seed {seed} flip {flip}: never heard again: {:?}",
        path(&net, m1, m2)
    );
    eprintln!("one-way break (seed {seed}, flip {flip}): on the relay, heard again after {took:?}");
    assert!(took <= SECS(8), "seed {seed} flip {flip}: took {took:?}");
    // The sessions survived the switch (no peer timeout on either side).
    assert!(!net.events(m2)[mark..].contains(&Event::LinkDown(net.key(m1))));
    assert!(!net.events(m1)[mark1..].contains(&Event::LinkDown(net.key(m2))));
    // Heard steadily from here on, and nobody timed out or left.
    let mark = net.events(m2).len();
    net.run_for(SECS(4));
    assert!(audio_since(&net, m2, m1, mark) >= 180);
    for i in [m1, m2] {
        assert!(!net.events(i).iter().any(|e| matches!(e, Event::Left(_))));
    }
}

#[test]
fn two_members_behind_one_router_talk_over_their_lan_addresses_without_hairpinning() {
    let mut net = Net::new(29);
    let h = net.add("Host");
    let m1 = net.add("Mia");
    let m2 = net.add("Noor");
    // A symmetric router that does not hairpin: only the LAN addresses can work.
    net.put_behind_nat(m1, NatKind::Symmetric);
    net.share_nat(m2, m1);
    let invite = net.host(h, "Same flat").unwrap();
    net.join(m1, &invite).unwrap();
    net.join(m2, &invite).unwrap();
    let ids = [h, m1, m2];
    assert!(net.run_until(SECS(10), |n| n.rosters_agree(&ids) && n.mesh_up(&ids)));
    let lan = |i: usize| net.nodes[i].addr;
    assert_eq!(path(&net, m1, m2), Some(Path::Direct(lan(m2))));
    assert_eq!(path(&net, m2, m1), Some(Path::Direct(lan(m1))));
}
