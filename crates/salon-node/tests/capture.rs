//! What crosses the wire between real `salon` processes, recorded with `tcpdump` on
//! loopback: no names, titles, chat, room id or keys in any packet; one size for audio;
//! a muted speaker sends at the same rate; and a flood of garbage and replays at a member
//! gets no byte back and does not disturb the room.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::collections::HashSet;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One captured UDP datagram on loopback.
struct Datagram {
    at: f64,
    src: u16,
    dst: u16,
    payload: Vec<u8>,
}

/// Reads a classic pcap file of IPv4/UDP on the loopback interface (Ethernet or
/// Linux-cooked framing).
fn read_pcap(path: &Path) -> Vec<Datagram> {
    let b = std::fs::read(path).unwrap();
    assert!(b.len() >= 24, "empty capture");
    let le = b[0..4] == [0xd4, 0xc3, 0xb2, 0xa1];
    let u32_at = |i: usize| {
        let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let link = u32_at(20);
    let l2 = match link {
        1 => 14,   // Ethernet (Linux loopback)
        113 => 16, // Linux cooked
        276 => 20, // Linux cooked v2
        other => panic!("unexpected link type {other}"),
    };
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let at = f64::from(u32_at(i)) + f64::from(u32_at(i + 4)) / 1e6;
        let caplen = u32_at(i + 8) as usize;
        let pkt = &b[i + 16..(i + 16 + caplen).min(b.len())];
        i += 16 + caplen;
        let Some(ip) = pkt.get(l2..) else { continue };
        if ip.first().map(|v| v >> 4) != Some(4) || ip.get(9) != Some(&17) {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let Some(udp) = ip.get(ihl..) else { continue };
        if udp.len() < 8 {
            continue;
        }
        out.push(Datagram {
            at,
            src: u16::from_be_bytes([udp[0], udp[1]]),
            dst: u16::from_be_bytes([udp[2], udp[3]]),
            payload: udp[8..].to_vec(),
        });
    }
    out
}

fn tcpdump(path: &Path) -> Option<Child> {
    let spawned = Command::new("tcpdump")
        .args([
            "-i",
            "lo",
            "-U",
            "-n",
            "-s",
            "0",
            "-w",
            path.to_str().unwrap(),
            "udp",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("SALON_CI").is_none(),
                "tcpdump is needed in CI: {e}"
            );
            eprintln!("skipping: tcpdump not available ({e})");
            return None;
        }
    };
    // tcpdump says "listening on lo" once the capture is live.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) if l.contains("listening on") => return Some(child),
            Ok(l) if l.contains("ermission") || l.contains("rror") => {
                assert!(
                    std::env::var_os("SALON_CI").is_none(),
                    "tcpdump cannot capture in CI: {l}"
                );
                eprintln!("skipping: {l}");
                let _ = child.kill();
                return None;
            }
            _ if Instant::now() > end => panic!("tcpdump did not start"),
            _ => {}
        }
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn port_of(p: &mut Peer) -> u16 {
    let v = p.wait("listening", Duration::from_secs(10), |v| {
        v["event"] == "listening"
    });
    v["addr"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn captured_room_shows_no_metadata_one_audio_size_and_shrugs_off_a_garbage_flood() {
    let scratch = tempdir("capture");
    let root = scratch.path();
    let names = ["Canary-Ada-7xq2", "Canary-Bo-k3m9", "Canary-Cy-p0w4"];
    for n in names {
        init(root, n);
    }
    let pcap = root.join("room.pcap");
    let Some(dump) = tcpdump(&pcap) else { return };
    let title = "Canary-Title-velvet-9d1";
    let mut host = spawn(root, names[0], &["host", "--title", title], "tone:440");
    let host_port = port_of(&mut host);
    let invite = host.invite();
    let mut bo = spawn(root, names[1], &["join", &invite], "tone:660");
    let mut cy = spawn(root, names[2], &["join", &invite], "tone:880");
    let bo_port = port_of(&mut bo);
    let cy_port = port_of(&mut cy);
    host.room_has("three members", |r| {
        r["members"].as_array().is_some_and(|m| m.len() == 3)
    });
    // Everyone's static key, while all three are in the room.
    let keys: Vec<String> = host.room.as_ref().unwrap()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 3);
    host.say(&format!("promote {}", names[1]));
    bo.accept_stage_invite();
    bo.room_has("on stage", |r| {
        member(r, names[1]).is_some_and(|m| m["role"] == "speaker")
    });
    let chats = [
        "Canary-Chat-meet-at-the-pier-5u",
        "Canary-Chat-bring-the-map-2z",
    ];
    host.say(&format!("say {}", chats[0]));
    cy.say(&format!("say {}", chats[1]));
    cy.wait("chat", Duration::from_secs(5), |v| {
        v["event"] == "chat" && v["text"] == chats[0]
    });
    step!("room running; speaking unmuted");
    let t_unmuted = std::time::SystemTime::now();
    std::thread::sleep(Duration::from_secs(3));
    bo.say("mute");
    let t_muted = std::time::SystemTime::now();
    std::thread::sleep(Duration::from_secs(3));
    let t_end = std::time::SystemTime::now();
    step!("flooding the listener");

    // Flood Cy (a listener) with noise and with replays of what it already received.
    let so_far = read_pcap(&pcap);
    let replays: Vec<Vec<u8>> = so_far
        .iter()
        .filter(|d| d.dst == cy_port)
        .map(|d| d.payload.clone())
        .collect();
    assert!(
        replays.len() > 100,
        "only {} datagrams to the listener captured",
        replays.len()
    );
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    flood
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..20_000usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let d: Vec<u8> = if n % 2 == 0 {
            replays[n / 2 % replays.len()].clone()
        } else {
            let len = [189usize, 341, 121, 61, 509, 1213, 7][(x % 7) as usize];
            (0..len).map(|k| (x >> (k % 56)) as u8 ^ k as u8).collect()
        };
        flood.send_to(&d, ("127.0.0.1", cy_port)).unwrap();
        if n % 500 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut buf = [0u8; 2048];
    assert!(
        flood.recv_from(&mut buf).is_err(),
        "the listener answered the flood"
    );
    // The room is undisturbed: the listener still hears the host.
    cy.wait(
        "host still heard after the flood",
        Duration::from_secs(5),
        |v| {
            v["event"] == "levels"
                && v["peers"].as_array().is_some_and(|p| {
                    p.iter()
                        .any(|x| x["name"] == names[0] && x["speaking"] == true)
                })
        },
    );
    for p in [&mut host, &mut bo, &mut cy] {
        p.say("leave");
    }
    for p in [&mut host, &mut bo, &mut cy] {
        p.wait("left", Duration::from_secs(10), |v| v["event"] == "left");
        let _ = p.child.wait();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop(dump);

    let ours: HashSet<u16> = [host_port, bo_port, cy_port].into_iter().collect();
    let flood_port = flood.local_addr().unwrap().port();
    let all = read_pcap(&pcap);
    assert_eq!(
        all.iter().filter(|d| d.dst == flood_port).count(),
        0,
        "a node answered the flood"
    );
    let packets: Vec<Datagram> = all
        .into_iter()
        .filter(|d| {
            (ours.contains(&d.src) || ours.contains(&d.dst))
                && d.src != flood_port
                && d.dst != flood_port
        })
        .collect();
    assert!(
        packets.len() > 1000,
        "only {} packets captured",
        packets.len()
    );
    let invite = salon_proto::Invite::parse(&invite).unwrap();
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for n in names.iter().chain([&title]).chain(chats.iter()) {
        needles.push((n.to_string(), n.as_bytes().to_vec()));
    }
    for f in salon_proto::sim::leak_forms(&invite.room_id.0) {
        needles.push(("room id".into(), f));
    }
    for k in &keys {
        for f in salon_proto::sim::leak_forms(&hex::decode(k).unwrap()) {
            needles.push((format!("key {}", &k[..8]), f));
        }
    }
    for d in &packets {
        for (what, n) in &needles {
            assert!(
                !d.payload.windows(n.len()).any(|w| w == n.as_slice()),
                "{what} visible in a packet"
            );
        }
    }
    // Sizes: fixed per type; transport datagrams only in the three buckets.
    let sizes: HashSet<usize> = packets.iter().map(|d| d.payload.len()).collect();
    let allowed: HashSet<usize> = [341, 121, 61, 189, 509, 1213].into_iter().collect();
    assert!(sizes.is_subset(&allowed), "unexpected sizes {sizes:?}");
    // The speaker's datagrams to one peer: the audio-size rate is the same muted or not.
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let rate = |src, dst, from: f64, to: f64| {
        packets
            .iter()
            .filter(|d| {
                d.src == src && d.dst == dst && d.payload.len() == 189 && d.at >= from && d.at < to
            })
            .count() as f64
            / (to - from)
    };
    // Each window is judged against the listener's own flow to the speaker in the same
    // window (a uniform-rate room: both send a slot per frame), not against the wall
    // clock, which a loaded machine stretches for every process alike.
    let (unmuted_from, unmuted_to) = (secs(t_unmuted) + 0.5, secs(t_muted));
    let (muted_from, muted_to) = (secs(t_muted) + 0.5, secs(t_end));
    let unmuted = rate(bo_port, cy_port, unmuted_from, unmuted_to);
    let muted = rate(bo_port, cy_port, muted_from, muted_to);
    let unmuted_back = rate(cy_port, bo_port, unmuted_from, unmuted_to);
    let muted_back = rate(cy_port, bo_port, muted_from, muted_to);
    step!(
        "speaker to listener: {unmuted:.1} datagrams/s unmuted, {muted:.1} muted \
         (listener to speaker: {unmuted_back:.1}, {muted_back:.1})"
    );
    for (what, speaker, listener) in [
        ("unmuted", unmuted, unmuted_back),
        ("muted", muted, muted_back),
    ] {
        assert!(
            (speaker - listener).abs() / listener < 0.1,
            "{what}: the speaker sent {speaker:.1}/s where the listener's slots ran at {listener:.1}/s"
        );
    }
    assert!(
        (unmuted - muted).abs() / unmuted < 0.1,
        "muting changed the rate: {unmuted:.1} vs {muted:.1}"
    );
}
