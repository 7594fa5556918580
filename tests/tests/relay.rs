//! The wire where members' links run through the host, and where they run direct: what a
//! capture on the relaying host shows (fixed sizes, no names, each datagram forwarded
//! once and unchanged), what a spoofed-source replay moves (nothing), and what relaying
//! costs the host in CPU and bandwidth per stream. Needs root and tcpdump; skips
//! otherwise (fails with `SALON_CI=1`). `cargo test -p salon-tests --test relay --
//! --nocapture` prints the figures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use salon_tests::bed::{self, Bed, Counters, Home, Nat, Public};
use salon_tests::capture::{Capture, Datagram, unix_now};
use salon_tests::room::{HEAR_LIMIT, Trio, all_hear_all, describe, gather, pump_all};
use salon_tests::salon::{leave_all, salon_binary};
use salon_tests::{RoomSlot, Salon, step};

/// Long, unlikely names: a three-letter name would turn up in random ciphertext.
const CAST: [(&str, f64); 3] = [
    ("Canary-Host-q7v3", 440.0),
    ("Canary-Ada-7xq2", 660.0),
    ("Canary-Bo-k3m9", 880.0),
];
const TITLE: &str = "Canary-Title-velvet-9d1";
const CHATS: [&str; 3] = [
    "Canary-Chat-meet-at-the-pier-5u",
    "Canary-Chat-bring-the-map-2z",
    "Canary-Chat-the-tide-turns-8k",
];
/// Every size a Salon datagram may have on the wire: handshake initiation, response and
/// cookie reply, and transport datagrams of 160, 480 and 1184 bytes of plaintext.
const SIZES: [usize; 6] = [61, 121, 189, 341, 509, 1213];
/// An audio datagram (and a ping, an ack, a short control message, a relayed one).
const AUDIO: usize = 189;
/// Audio frames a second from each speaker.
const FRAMES: f64 = 50.0;

/// Takes in every node's events for `d`.
fn linger(trio: &mut Trio, d: Duration) {
    pump_all(&mut trio.all(), d, |_| false);
}

/// Waits until Ada and Bo both see their link as `want` ("direct", "relayed via NAME").
fn settle(trio: &mut Trio, want: &str) -> bool {
    let (a, b) = (CAST[1].0, CAST[2].0);
    pump_all(&mut trio.all(), HEAR_LIMIT, |n| {
        describe(n[1], b) == want && describe(n[2], a) == want
    })
}

/// The three nodes' reports, for a failure message.
fn reports(trio: &Trio) -> String {
    [&trio.host, &trio.ada, &trio.bo]
        .map(Salon::report)
        .join("\n")
}

/// A room of the cast in a bed of its own: a public host, Ada and Bo behind their NATs.
/// Fields drop in order: the processes before the bed that holds their namespaces.
struct Room {
    trio: Trio,
    /// tcpdump on the host's interface, when asked for.
    capture: Option<Capture>,
    host: Public,
    a: Home,
    b: Home,
    bed: Bed,
    /// The room's place among those running at once.
    _slot: RoomSlot,
}

/// Opens a [`Room`] with Ada behind `a` and Bo behind `b`, capturing on the host's
/// interface from before it starts if `capture`, and returns once everyone hears everyone
/// and the Ada–Bo link is on the path the NATs allow: relayed via the host between two
/// symmetric NATs, direct otherwise.
fn open(tag: &str, a: Nat, b: Nat, capture: bool) -> Room {
    let slot = RoomSlot::take();
    let mut bed = Bed::new(tag).unwrap();
    let host = bed.public();
    let (a, b) = (bed.home(a, None), bed.home(b, None));
    let capture = capture.then(|| Capture::start(&bed, &host.ns, "eth0", "udp", "host"));
    let mut trio = gather(&bed, [&host.ns, &a.ns, &b.ns], CAST, TITLE, false);
    let want = if a.router.nat == Nat::Symmetric && b.router.nat == Nat::Symmetric {
        format!("relayed via {}", CAST[0].0)
    } else {
        "direct".to_owned()
    };
    assert!(
        trio.everyone && settle(&mut trio, &want),
        "{tag}: the room did not come up with Ada and Bo {want}\n{}",
        reports(&trio)
    );
    Room {
        trio,
        capture,
        host,
        a,
        b,
        bed,
        _slot: slot,
    }
}

// ------------------------------------------------------------- privacy on the relay path

/// Where each distinctive string of the room could show in a payload, and what it is.
fn needles(trio: &Trio) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = Vec::new();
    for s in CAST.iter().map(|c| c.0).chain([TITLE]).chain(CHATS) {
        v.push((s.to_owned(), s.as_bytes().to_vec()));
    }
    let body = trio.invite.trim_start_matches("salon:");
    v.push(("the invite".into(), trio.invite.as_bytes().to_vec()));
    for chunk in body.as_bytes().chunks(16).filter(|c| c.len() == 16) {
        v.push(("a piece of the invite".into(), chunk.to_vec()));
    }
    let invite = salon_proto::Invite::parse(&trio.invite).unwrap();
    for f in salon_proto::sim::leak_forms(&invite.room_id.0) {
        v.push(("the room id".into(), f));
    }
    for f in salon_proto::sim::leak_forms(invite.secret().as_bytes()) {
        v.push(("the room secret".into(), f));
    }
    let members = trio.host.room.as_ref().unwrap()["members"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(members.len(), 3, "three keys to look for");
    for m in members {
        let k = m["key"].as_str().unwrap();
        v.push((format!("the hex key {}", &k[..8]), k.as_bytes().to_vec()));
        for f in salon_proto::sim::leak_forms(&hex::decode(k).unwrap()) {
            v.push((format!("key {}", &k[..8]), f));
        }
    }
    v
}

#[test]
fn relayed_traffic_keeps_its_sizes_names_nothing_and_each_datagram_is_forwarded_once_unchanged() {
    let tag = "relay privacy";
    if !bed::capture_available(tag) {
        return;
    }
    salon_binary();
    // The capture runs from before the host starts to after everyone left: handshakes,
    // Hellos with names, rosters, the relay's set-up, audio, chat.
    let mut room = open(tag, Nat::Symmetric, Nat::Symmetric, true);
    let capture = room.capture.take().unwrap();
    let (public, home_a, home_b) = (room.host.clone(), room.a.clone(), room.b.clone());
    let trio = &mut room.trio;
    let via = format!("relayed via {}", CAST[0].0);
    let needles = needles(trio);
    step!(tag, "relayed; chatting, muting and unmuting for 8 s");
    let t0 = unix_now();
    trio.ada.say(&format!("say {}", CHATS[0]));
    linger(trio, Duration::from_millis(1500));
    trio.bo.say("mute");
    trio.bo.say(&format!("say {}", CHATS[1]));
    linger(trio, Duration::from_millis(2000));
    trio.bo.say("unmute");
    trio.ada.say("hand");
    trio.host.say(&format!("say {}", CHATS[2]));
    linger(trio, Duration::from_millis(2000));
    trio.ada.say("mute");
    linger(trio, Duration::from_millis(1500));
    trio.ada.say("unmute");
    linger(trio, Duration::from_millis(1000));
    let t1 = unix_now();
    // The chat crossed the relayed link both ways.
    let got = |n: &Salon, text: &str| {
        n.log
            .iter()
            .any(|(_, v)| v["event"] == "chat" && v["text"] == text)
    };
    let chats_arrived = got(&trio.bo, CHATS[0]) && got(&trio.ada, CHATS[1]);
    let still_relayed = describe(&trio.ada, CAST[2].0) == via;
    leave_all(&mut trio.all());
    std::thread::sleep(Duration::from_millis(300));
    // The host's own search for a router that maps ports (SSDP to 239.255.255.250:1900,
    // NAT-PMP and PCP to its gateway's port 5351) is not Salon's traffic.
    let all: Vec<Datagram> = capture
        .stop()
        .into_iter()
        .filter(|d| !d.dst.ip().is_multicast() && d.dst.port() != 5351 && d.src.port() != 5351)
        .collect();
    assert!(
        chats_arrived,
        "{tag}: chat did not cross the relay\n{}",
        reports(trio)
    );
    assert!(
        still_relayed,
        "{tag}: the link left the relay\n{}",
        reports(trio)
    );

    let mut problems = Vec::new();
    // Sizes: every datagram one of the six.
    let mut sizes: BTreeMap<usize, usize> = BTreeMap::new();
    for d in &all {
        *sizes.entry(d.payload.len()).or_default() += 1;
    }
    eprintln!(
        "[{tag}] {} datagrams captured on the host; sizes {sizes:?}",
        all.len()
    );
    let odd: Vec<&usize> = sizes.keys().filter(|s| !SIZES.contains(s)).collect();
    if !odd.is_empty() {
        problems.push(format!("sizes outside {SIZES:?}: {odd:?}"));
    }
    // No name, title, chat text, invite, room id, secret or key in any payload.
    for d in &all {
        for (what, n) in &needles {
            if d.payload.windows(n.len()).any(|w| w == n.as_slice()) {
                problems.push(format!(
                    "{what} visible in a datagram {} -> {}",
                    d.src, d.dst
                ));
            }
        }
    }
    // The audio flows: between any two addresses, a steady stream of 189-byte datagrams;
    // anything else on them is rare (control messages, rosters).
    let secs = t1 - t0;
    let mut flows: HashMap<(SocketAddrV4, SocketAddrV4), (usize, usize)> = HashMap::new();
    for d in all.iter().filter(|d| d.at >= t0 && d.at < t1) {
        let f = flows.entry((d.src, d.dst)).or_default();
        f.0 += 1;
        f.1 += usize::from(d.payload.len() == AUDIO);
    }
    let mut lines: Vec<String> = flows
        .iter()
        .map(|((s, d), (n, audio))| {
            format!(
                "  {s} -> {d}: {:.1}/s, {audio} of {n} audio-sized",
                *n as f64 / secs
            )
        })
        .collect();
    lines.sort();
    eprintln!("[{tag}] flows over {secs:.1} s:\n{}", lines.join("\n"));
    let streams: Vec<_> = flows
        .iter()
        .filter(|(_, (n, _))| *n as f64 / secs > 0.8 * FRAMES)
        .collect();
    if streams.len() != 4 {
        problems.push(format!(
            "{} audio streams at the host, not 4 (to and from each member)",
            streams.len()
        ));
    }
    for ((s, d), (n, audio)) in &streams {
        if (*n - *audio) as f64 > 0.03 * *n as f64 {
            problems.push(format!("{s} -> {d}: {audio} of {n} datagrams audio-sized"));
        }
    }
    // Forwarding: what came in from one member's router for the other leaves again to the
    // other's router, once, the same size, unchanged but for the receiver index (bytes
    // 1..5, after the type byte; the counter and ciphertext follow), a moment later.
    let (a, b, h) = (home_a.router.wan, home_b.router.wan, public.addr);
    for (from, to, name) in [(a, b, "Ada to Bo"), (b, a, "Bo to Ada")] {
        let ins: Vec<&Datagram> = all
            .iter()
            .filter(|d| *d.src.ip() == from && *d.dst.ip() == h)
            .collect();
        let mut outs: HashMap<&[u8], Vec<&Datagram>> = HashMap::new();
        for d in all.iter().filter(|d| *d.src.ip() == h && *d.dst.ip() == to) {
            outs.entry(d.payload.get(5..).unwrap_or_default())
                .or_default()
                .push(d);
        }
        let mut delays = Vec::new();
        let mut resized = 0;
        let mut twice = 0;
        for d in &ins {
            let Some(o) = outs.get(d.payload.get(5..).unwrap_or_default()) else {
                continue;
            };
            twice += usize::from(o.len() > 1);
            resized += o
                .iter()
                .filter(|o| o.payload.len() != d.payload.len() || o.payload[0] != d.payload[0])
                .count();
            delays.push((o[0].at - d.at) * 1000.0);
        }
        delays.sort_by(f64::total_cmp);
        let forwarded_in_window = ins
            .iter()
            .filter(|d| {
                d.at >= t0 && d.at < t1 && outs.contains_key(d.payload.get(5..).unwrap_or_default())
            })
            .count() as f64
            / secs;
        let median = delays.get(delays.len() / 2).copied().unwrap_or(f64::NAN);
        let max = delays.last().copied().unwrap_or(f64::NAN);
        eprintln!(
            "[{tag}] {name}: {} datagrams forwarded ({forwarded_in_window:.1}/s while all spoke), \
             {resized} resized, {twice} sent on twice; delay through the host median {median:.2} ms, max {max:.2} ms",
            delays.len()
        );
        if forwarded_in_window < 0.8 * FRAMES {
            problems.push(format!(
                "{name}: {forwarded_in_window:.1} datagrams/s forwarded"
            ));
        }
        if resized > 0 || twice > 0 || delays.iter().any(|d| *d < 0.0) {
            problems.push(format!("{name}: {resized} resized, {twice} sent on twice"));
        }
        if median > 20.0 {
            problems.push(format!(
                "{name}: median delay through the host {median:.1} ms"
            ));
        }
    }
    assert!(problems.is_empty(), "{tag}:\n{}", problems.join("\n"));
}

// ------------------------------------------------------------ a spoofed-source replay

/// Runs `nat-probe spoof` in `ns`: `payloads` to `dest`, claiming to come from `src`.
fn spoof(bed: &Bed, ns: &str, src: SocketAddrV4, dest: SocketAddrV4, payloads: &[&Datagram]) {
    let file = bed
        .dir()
        .join(format!("spoof-{}-{}.hex", src.ip(), src.port()));
    let lines: Vec<String> = payloads.iter().map(|d| hex::encode(&d.payload)).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = bed
        .exec(ns, env!("CARGO_BIN_EXE_nat-probe"))
        .args(["spoof", &src.to_string(), &dest.to_string()])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nat-probe spoof: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_replay_from_a_spoofed_source_moves_no_link_and_draws_at_most_a_challenge() {
    let tag = "spoofed replay";
    if !bed::capture_available(tag) {
        return;
    }
    salon_binary();
    // Bo behind a full cone: whatever claims any source reaches Bo's node, so what happens
    // next is the node's doing, not its router's.
    let mut room = open(tag, Nat::Port, Nat::Full, false);
    let attacker = room.bed.public();
    let (public, home_a, home_b) = (room.host.clone(), room.a.clone(), room.b.clone());
    let (trio, bed) = (&mut room.trio, &room.bed);
    let (ada_wan, bo_wan) = (home_a.router.wan, home_b.router.wan);
    let capture = Capture::start(bed, &home_b.router.ns, "wan", "udp", "bo-router");
    linger(trio, Duration::from_secs(2));
    // Hold back Ada's datagrams to Bo for a moment at Bo's router (tcpdump sees them on
    // the wire before the filter drops them): fresh datagrams Bo never had, as an on-path
    // attacker who stops and re-sends them would have.
    let rule = [
        "FORWARD",
        "-i",
        "wan",
        "-s",
        &ada_wan.to_string(),
        "-p",
        "udp",
        "-j",
        "DROP",
    ];
    let iptables = |op: &str| {
        let st = bed
            .exec(&home_b.router.ns, "iptables")
            .arg(op)
            .args(rule)
            .status()
            .unwrap();
        assert!(st.success(), "iptables {op}");
    };
    let cut0 = unix_now();
    iptables("-I");
    linger(trio, Duration::from_millis(400));
    iptables("-D");
    let cut1 = unix_now();
    linger(trio, Duration::from_millis(300));
    let seen = capture.so_far();
    let from_ada: Vec<&Datagram> = seen
        .iter()
        .filter(|d| *d.src.ip() == ada_wan && *d.dst.ip() == bo_wan)
        .collect();
    let ada = from_ada.last().expect("Ada's datagrams to Bo").src;
    let bo = from_ada.last().unwrap().dst;
    let old: Vec<&Datagram> = from_ada
        .iter()
        .filter(|d| d.at < cut0 - 0.05)
        .rev()
        .take(10)
        .copied()
        .collect();
    let fresh: Vec<&Datagram> = from_ada
        .iter()
        .filter(|d| d.at > cut0 + 0.05 && d.at < cut1 - 0.05)
        .copied()
        .collect();
    assert!(
        fresh.len() >= 9 && old.len() == 10,
        "{tag}: {} held-back and {} old datagrams of Ada's captured",
        fresh.len(),
        old.len()
    );
    // Three claimed sources get a third of the fresh datagrams and the old ones each; a
    // fourth only the old ones.
    let other_port = |p: u16| if p == 40_001 { 40_002 } else { 40_001 };
    let sources = [
        ("the attacker", SocketAddrV4::new(attacker.addr, 40_000)),
        (
            "Ada's router, another port",
            SocketAddrV4::new(ada_wan, other_port(ada.port())),
        ),
        (
            "the host's address, another port",
            SocketAddrV4::new(public.addr, 40_003),
        ),
        (
            "the attacker, old datagrams only",
            SocketAddrV4::new(attacker.addr, 40_004),
        ),
    ];
    let third = fresh.len() / 3;
    let paths_before = trio.bo.path_history(CAST[1].0).len();
    let heard_before = trio.bo.audio_received_from(CAST[1].0).unwrap_or(0);
    let attack0 = unix_now();
    for (i, (_, src)) in sources.iter().enumerate() {
        let mut payloads: Vec<&Datagram> = if i < 3 {
            fresh[i * third..(i + 1) * third].to_vec()
        } else {
            Vec::new()
        };
        payloads.extend(&old);
        spoof(bed, &attacker.ns, *src, bo, &payloads);
    }
    let attack1 = unix_now();
    step!(
        tag,
        "replayed {} held-back and 4 x {} old datagrams from 4 claimed sources in {:.2} s",
        3 * third,
        old.len(),
        attack1 - attack0
    );
    linger(trio, Duration::from_secs(4));
    let end = unix_now();
    let heard_after = trio.bo.audio_received_from(CAST[1].0).unwrap_or(0);
    let paths: Vec<String> = trio.bo.path_history(CAST[1].0)[paths_before..]
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    let path_now = describe(&trio.bo, CAST[1].0);
    leave_all(&mut trio.all());
    let all = capture.stop();

    let mut problems = Vec::new();
    if path_now != "direct" || !paths.is_empty() {
        problems.push(format!(
            "Bo's link to Ada is {path_now}, new paths {paths:?}"
        ));
    }
    // Ada is still heard: about 50 frames a second went on arriving.
    let secs = end - attack0;
    let rate = (heard_after - heard_before) as f64 / secs;
    if rate < 0.8 * FRAMES {
        problems.push(format!(
            "Bo heard {rate:.1} of Ada's frames a second after the replay"
        ));
    }
    // What Bo's side sent where once the replay began: to each claimed source at most a
    // challenge (one a second, audio-sized), and only where a fresh datagram came from.
    let sent = |to: SocketAddrV4| -> Vec<&Datagram> {
        all.iter()
            .filter(|d| d.src.ip() == bo.ip() && d.dst == to && d.at >= attack0)
            .collect()
    };
    for (i, (what, src)) in sources.iter().enumerate() {
        let back = sent(*src);
        let sizes: HashSet<usize> = back.iter().map(|d| d.payload.len()).collect();
        eprintln!(
            "[{tag}] to {what} ({src}): {} datagrams back, sizes {sizes:?}",
            back.len()
        );
        let allowed = if i < 3 { 1..=3 } else { 0..=0 };
        if !allowed.contains(&back.len()) || sizes.iter().any(|s| *s != AUDIO) {
            problems.push(format!(
                "{what}: {} datagrams back (sizes {sizes:?}), expected {allowed:?} challenges",
                back.len()
            ));
        }
    }
    // And Bo's traffic to Ada still goes to Ada's real address, at the audio rate.
    let to_ada =
        sent(ada).iter().filter(|d| d.at >= attack1 + 0.5).count() as f64 / (end - attack1 - 0.5);
    eprintln!(
        "[{tag}] Bo to Ada's real address ({ada}) after the replay: {to_ada:.1} datagrams/s; Bo heard {rate:.1} of Ada's frames/s"
    );
    if to_ada < 0.8 * FRAMES {
        problems.push(format!(
            "Bo sent {to_ada:.1} datagrams/s to Ada's address after the replay"
        ));
    }
    assert!(
        problems.is_empty(),
        "{tag}:\n{}\n{}",
        problems.join("\n"),
        reports(trio)
    );
}

// --------------------------------------------------------------------- relay cost

/// What the host spent over a measured window with everyone speaking.
struct Cost {
    cell: String,
    path: String,
    secs: f64,
    cpu: f64,
    wire: Counters,
}

/// A public host, Ada and Bo behind `nat` each; once their link is `want`, the host's CPU
/// time and its interface's counters over `window`.
fn cost(nat: Nat, window: Duration) -> Cost {
    let cell = format!("cost {} x {}", nat.label(), nat.label());
    let mut room = open(&cell, nat, nat, false);
    let (trio, bed, public) = (&mut room.trio, &room.bed, &room.host);
    let want = describe(&trio.ada, CAST[2].0);
    // Past the birthday attempts and the relay's set-up.
    linger(trio, Duration::from_secs(3));
    let (cpu0, wire0, t0) = (
        trio.host.cpu_seconds(),
        bed.counters(&public.ns, "eth0"),
        Instant::now(),
    );
    linger(trio, window);
    let (cpu1, wire1, secs) = (
        trio.host.cpu_seconds(),
        bed.counters(&public.ns, "eth0"),
        t0.elapsed().as_secs_f64(),
    );
    let path = describe(&trio.ada, CAST[2].0);
    let heard = all_hear_all(&trio.all());
    leave_all(&mut trio.all());
    assert!(heard && path == want, "{cell}: {path}\n{}", reports(trio));
    Cost {
        cell,
        path,
        secs,
        cpu: cpu1 - cpu0,
        wire: wire1 - wire0,
    }
}

#[test]
fn relaying_costs_the_host_one_stream_in_one_out_and_little_cpu_per_relayed_stream() {
    let tag = "relay cost";
    if !bed::available(tag) {
        return;
    }
    salon_binary();
    let window = Duration::from_secs(20);
    let [direct, relayed] = std::thread::scope(|s| {
        let d = s.spawn(|| cost(Nat::Port, window));
        let r = s.spawn(|| cost(Nat::Symmetric, window));
        [d.join().unwrap(), r.join().unwrap()]
    });
    eprintln!(
        "\nRelay cost: the host's salon process and interface over {window:?}, all three speaking ({})",
        salon_binary().display()
    );
    for c in [&direct, &relayed] {
        eprintln!(
            "  {:<22} Ada-Bo {:<28} CPU {:5.1} % of a core; in {:6.0} B/s ({:5.1} frames/s), out {:6.0} B/s ({:5.1} frames/s)",
            c.cell,
            c.path,
            100.0 * c.cpu / c.secs,
            c.wire.rx_bytes as f64 / c.secs,
            c.wire.rx_packets as f64 / c.secs,
            c.wire.tx_bytes as f64 / c.secs,
            c.wire.tx_packets as f64 / c.secs,
        );
    }
    // Two relayed streams (Ada's to Bo, Bo's to Ada) against two direct ones reaching the
    // host in the direct cell (Ada's and Bo's own audio).
    let rate = |c: &Cost, f: fn(&Counters) -> u64| f(&c.wire) as f64 / c.secs;
    let per_stream = rate(&direct, |w| w.rx_bytes) / 2.0;
    let relay_in = (rate(&relayed, |w| w.rx_bytes) - rate(&direct, |w| w.rx_bytes)) / 2.0;
    let relay_out = (rate(&relayed, |w| w.tx_bytes) - rate(&direct, |w| w.tx_bytes)) / 2.0;
    let cpu = (relayed.cpu / relayed.secs - direct.cpu / direct.secs) / 2.0;
    eprintln!(
        "  per relayed stream: {relay_in:.0} B/s in, {relay_out:.0} B/s out (a direct stream: {per_stream:.0} B/s); \
         CPU {:.2} % of a core\n",
        100.0 * cpu
    );
    for (what, v) in [("in", relay_in), ("out", relay_out)] {
        assert!(
            (0.8..1.25).contains(&(v / per_stream)),
            "{tag}: a relayed stream costs the host {v:.0} B/s {what}, a stream is {per_stream:.0} B/s"
        );
    }
    // Forwarding is a table look-up and a send; a loose bound that a busy loop would break
    // (a whole room's host takes about 10 % in a debug build).
    assert!(
        cpu < 0.05,
        "{tag}: a relayed stream costs the host {:.1} % of a core",
        100.0 * cpu
    );
}
