//! What an observer on the wire sees, and what garbage does to a live node.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use rand_core::RngCore;
use salon_proto::sim::Net;
use salon_proto::{Action, Config, Event};

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn captured_session_shows_no_names_titles_chat_room_id_or_keys_and_one_audio_size() {
    let mut net = Net::new(21).lossy(0.02, 0.01, 10);
    let names = [
        "Canary-Name-Ada-83jd",
        "Canary-Name-Grace-1kq",
        "Canary-Name-Alan-p0z",
        "Canary-Name-Edsger-x",
    ];
    let ids: Vec<usize> = names.iter().map(|n| net.add(n)).collect();
    let title = "Canary-Title-Secret-Salon-9w2";
    let invite = net.host(ids[0], title).unwrap();
    for &i in &ids[1..] {
        net.join(i, &invite).unwrap();
    }
    assert!(net.run_until(SECS(20), |n| n.rosters_agree(&ids) && n.mesh_up(&ids)));
    net.bring_on_stage(ids[0], ids[1]).unwrap();
    net.run_for(SECS(1));
    net.nodes[ids[0]].speaking = true;
    net.nodes[ids[1]].speaking = true;
    let t0 = net.now;
    let chats = ["Canary-Chat-meet-at-dawn-4k", "Canary-Chat-the-code-is-77q"];
    for (i, c) in chats.iter().enumerate() {
        net.with(ids[i + 2], |ep, now| ep.send_chat(now, c))
            .unwrap();
    }
    net.run_for(SECS(1));
    // Mute while speaking: the datagrams must not change.
    net.with(ids[1], |ep, now| ep.set_muted(now, true)).unwrap();
    net.run_for(SECS(2));
    let k3 = net.key(ids[3]);
    net.with(ids[0], |ep, now| ep.moderate(now, k3, Action::Remove))
        .unwrap();
    net.run_for(SECS(3));

    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for n in names.iter().chain([&title]).chain(chats.iter()) {
        needles.push((n.to_string(), n.as_bytes().to_vec()));
    }
    for f in salon_proto::sim::leak_forms(&invite.room_id.0) {
        needles.push(("room id".into(), f));
    }
    for &i in &ids {
        for f in salon_proto::sim::leak_forms(net.key(i).as_bytes()) {
            needles.push((format!("key of node {i}"), f));
        }
    }
    assert!(net.captured.len() > 1000);
    for c in &net.captured {
        for (what, n) in &needles {
            assert!(!contains(&c.bytes, n), "{what} visible in a datagram");
        }
    }
    let audio: Vec<usize> = net
        .captured
        .iter()
        .filter(|c| c.audio)
        .map(|c| c.bytes.len())
        .collect();
    assert!(audio.len() > 200);
    assert!(
        audio.iter().all(|l| *l == audio[0]),
        "audio sizes differ: {:?}",
        {
            let mut s = audio.clone();
            s.dedup();
            s
        }
    );
    // Keepalives and small control datagrams share the audio size; the only other sizes
    // are the fixed handshake sizes and the two larger control buckets.
    let mut sizes: Vec<usize> = net.captured.iter().map(|c| c.bytes.len()).collect();
    sizes.sort_unstable();
    sizes.dedup();
    assert!(sizes.len() <= 6, "sizes on the wire: {sizes:?}");
    // A muted speaker sends as many datagrams as an unmuted one (to the same listener:
    // the host also tells the removed member, which the speaker does not).
    let from1 = net.nodes[ids[1]].addr;
    let from0 = net.nodes[ids[0]].addr;
    let to2 = net.nodes[ids[2]].addr;
    let count = |a| {
        net.captured
            .iter()
            .filter(|c| c.from == a && c.to == to2 && c.at >= t0)
            .count() as i64
    };
    assert!((count(from1) - count(from0)).abs() < 10);
}

#[test]
fn random_mutated_and_replayed_datagrams_get_no_reply_and_change_nothing() {
    let mut net = Net::new(22);
    let ids: Vec<usize> = ["A", "B", "C"].iter().map(|n| net.add(n)).collect();
    let invite = net.host(ids[0], "Garbage test").unwrap();
    for &i in &ids[1..] {
        net.join(i, &invite).unwrap();
    }
    assert!(net.run_until(SECS(10), |n| n.rosters_agree(&ids) && n.mesh_up(&ids)));
    net.bring_on_stage(ids[0], ids[1]).unwrap();
    net.run_for(SECS(1));
    net.nodes[ids[0]].speaking = true;
    net.nodes[ids[1]].speaking = true;
    net.with(ids[1], |ep, now| ep.send_chat(now, "hello"))
        .unwrap();
    net.run_for(SECS(1));
    // Let everything in flight land, so every captured datagram to the host was delivered.
    net.nodes[ids[0]].speaking = false;
    net.nodes[ids[1]].speaking = false;
    net.run_for(Duration::from_millis(300));
    let host = ids[0];
    let host_addr = net.nodes[host].addr;
    // Slots never stop: the newest datagrams are still in flight.
    let landed = net.now - Duration::from_millis(200);
    let seen: Vec<_> = net
        .captured
        .iter()
        .filter(|c| c.to == host_addr && c.at <= landed)
        .cloned()
        .collect();
    assert!(seen.len() > 50);
    let now = net.now;
    let ep = &mut net.nodes[host].ep;
    let room_before = ep.room();
    let timeout_before = ep.poll_timeout();
    let mut rng = rand_chacha::ChaCha20Rng::from_seed_u64(99);
    let lens = [0usize, 1, 13, 61, 121, 189, 341, 509, 1213, 1500];
    for n in 0..100_000u32 {
        let mut d: Vec<u8> = match n % 4 {
            // Pure noise of assorted lengths.
            0 => {
                let len = lens[(rng.next_u32() as usize) % lens.len()];
                let mut v = vec![0u8; len];
                rng.fill_bytes(&mut v);
                v
            }
            // Noise with a valid type byte and exact length, to reach the deeper checks.
            1 => {
                let len = [341usize, 121, 61, 189, 509, 1213][(rng.next_u32() % 6) as usize];
                let mut v = vec![0u8; len];
                rng.fill_bytes(&mut v);
                v[0] = match len {
                    341 => 1,
                    121 => 2,
                    61 => 3,
                    _ => 4,
                };
                v
            }
            // A real datagram with a few bytes flipped, cut or extended.
            2 => {
                let mut v = seen[(rng.next_u32() as usize) % seen.len()].bytes.clone();
                match rng.next_u32() % 3 {
                    0 => {
                        for _ in 0..1 + rng.next_u32() % 3 {
                            let i = (rng.next_u32() as usize) % v.len();
                            v[i] ^= 1 << (rng.next_u32() % 8);
                        }
                    }
                    1 => v.truncate((rng.next_u32() as usize) % v.len()),
                    _ => v.push(rng.next_u32() as u8),
                }
                v
            }
            // An exact replay of something the host already received.
            _ => seen[(rng.next_u32() as usize) % seen.len()].bytes.clone(),
        };
        let from = if n % 2 == 0 { host_addr } else { net_addr(n) };
        if d.len() > 1500 {
            d.truncate(1500);
        }
        ep.handle_datagram(now, from, &d);
        assert!(ep.poll_transmit().is_none(), "reply to garbage #{n}");
        assert!(ep.poll_event().is_none(), "event from garbage #{n}");
    }
    assert_eq!(ep.room(), room_before);
    assert_eq!(ep.poll_timeout(), timeout_before);
    // The room still works afterwards.
    let before = net.audio_from(ids[1], host);
    net.nodes[host].speaking = true;
    net.run_for(SECS(2));
    assert!(net.audio_from(ids[1], host) - before > 95);
    assert!(net.rosters_agree(&ids));
}

fn net_addr(n: u32) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 9, (n >> 8) as u8, n as u8], 5000))
}

trait SeedU64 {
    fn from_seed_u64(s: u64) -> Self;
}
impl SeedU64 for rand_chacha::ChaCha20Rng {
    fn from_seed_u64(s: u64) -> Self {
        rand_core::SeedableRng::seed_from_u64(s)
    }
}

#[test]
fn under_handshake_load_the_host_answers_with_cookies_and_joiners_still_get_in() {
    let cfg = Config {
        handshake_load_threshold: 3,
        max_members: 32,
        ..Config::default()
    };
    let mut net = Net::new(23);
    let host = net.add_with("Host", cfg);
    let invite = net.host(host, "Busy room").unwrap();
    let joiners: Vec<usize> = (0..10).map(|i| net.add(&format!("J{i}"))).collect();
    for &j in &joiners {
        net.join(j, &invite).unwrap();
    }
    let all: Vec<usize> = std::iter::once(host)
        .chain(joiners.iter().copied())
        .collect();
    assert!(net.run_until(SECS(30), |n| n.rosters_agree(&all)
        && n.nodes[host].ep.room().unwrap().members.len() == 11));
    let cookies = net
        .captured
        .iter()
        .filter(|c| c.bytes.len() == 61 && c.bytes[0] == 3)
        .count();
    assert!(cookies > 0, "no cookie reply was sent under load");
    for &j in &joiners {
        assert!(net.events(j).iter().any(|e| matches!(e, Event::Joined(_))));
    }
}

#[test]
fn a_forged_response_with_a_sniffed_index_does_not_kill_the_join() {
    let mut net = Net::new(24);
    let h = net.add("Host");
    let j = net.add("Joiner");
    let invite = net.host(h, "Room").unwrap();
    net.join(j, &invite).unwrap();
    let init = net
        .captured
        .iter()
        .rev()
        .find(|c| c.bytes[0] == 1)
        .unwrap()
        .bytes
        .clone();
    let mut forged = vec![2u8, 9, 9, 9, 9];
    forged.extend_from_slice(&init[1..5]);
    forged.resize(121, 0x42);
    let (now, from) = (net.now, net.nodes[h].addr);
    net.nodes[j].ep.handle_datagram(now, from, &forged);
    // The genuine response still completes the handshake: joined well before any retry.
    net.run_for(Duration::from_millis(150));
    assert!(
        net.events(j).iter().any(|e| matches!(e, Event::Joined(_))),
        "join needed a retry"
    );
}

/// A link initiation that never reached its peer (lost, or dropped because it arrived
/// before the peer could read it) must not be answerable later: when the other side's
/// own initiation wins instead, the answer carries the responder's handshake clock, so
/// the lost initiation is stale from then on. Before, a replay of it from any address
/// drew a response, telling a prober that the address is in that room.
#[test]
fn a_lost_link_initiation_replayed_later_draws_no_reply() {
    let mut net = Net::new(31);
    let ids: Vec<usize> = ["A", "B", "C"].iter().map(|n| net.add(n)).collect();
    let invite = net.host(ids[0], "Replay test").unwrap();
    net.join(ids[1], &invite).unwrap();
    assert!(net.run_until(SECS(10), |n| n.rosters_agree(&ids[..2])));
    // The higher key's initiation is the one a simultaneous open discards: lose it.
    let (hi, lo) = if net.key(ids[1]) > net.key(ids[2]) {
        (ids[1], ids[2])
    } else {
        (ids[2], ids[1])
    };
    net.hijack = Some((net.nodes[hi].addr, net.nodes[lo].addr));
    net.join(ids[2], &invite).unwrap();
    assert!(net.run_until(SECS(10), |n| n.hijacked.iter().any(|d| d[0] == 1)));
    net.hijack = None;
    let lost: Vec<Vec<u8>> = net.hijacked.iter().filter(|d| d[0] == 1).cloned().collect();
    assert!(net.run_until(SECS(20), |n| n.rosters_agree(&ids) && n.mesh_up(&ids)));
    net.run_for(SECS(1));
    let now = net.now;
    let ep = &mut net.nodes[lo].ep;
    while ep.poll_transmit().is_some() {}
    for (n, d) in lost.iter().enumerate() {
        ep.handle_datagram(now, net_addr(n as u32), d);
        assert!(
            ep.poll_transmit().is_none(),
            "the lost initiation #{n} was answered"
        );
    }
}
