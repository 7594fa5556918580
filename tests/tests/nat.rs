//! Rooms across NATs: real `salon` processes behind iptables home routers in network
//! namespaces (see `salon_tests::bed`). Needs root; skips otherwise (fails with
//! `SALON_CI=1`). `cargo test -p salon-tests --test nat -- --nocapture` prints the tables.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use salon_tests::bed::{self, Bed, Home, Impairment, Nat, Shape};
use salon_tests::room::{Cell, deaf, run_room, run_rooms, table};
use salon_tests::salon::salon_binary;

// ------------------------------------------------------------------- the bed itself

/// `nat-probe listen` inside a namespace, its lines as they come.
struct Listener {
    child: Child,
    lines: Receiver<String>,
    got: Vec<String>,
}

impl Listener {
    fn start(bed: &Bed, ns: &str, port: u16, secs: f64, dests: &[SocketAddr]) -> Listener {
        let mut child = bed
            .exec(ns, env!("CARGO_BIN_EXE_nat-probe"))
            .args(["listen", &port.to_string(), &secs.to_string()])
            .args(dests.iter().map(ToString::to_string))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut l = Listener {
            child,
            lines,
            got: Vec::new(),
        };
        l.until(|line| line == "ready");
        l
    }

    /// Reads lines until one satisfies `pred` (returned) or the probe ends (None).
    fn until(&mut self, pred: impl Fn(&str) -> bool) -> Option<String> {
        if let Some(l) = self.got.iter().find(|l| pred(l)) {
            return Some(l.clone());
        }
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.got.push(l.clone());
            if pred(&l) {
                return Some(l);
            }
        }
        None
    }

    /// Everything received, once the probe has ended: "FROM TEXT" lines.
    fn finish(mut self) -> Vec<String> {
        self.until(|_| false);
        let _ = self.child.wait();
        self.got
    }
}

fn send(bed: &Bed, ns: &str, to: &str, text: &str) {
    let st = bed
        .exec(ns, env!("CARGO_BIN_EXE_nat-probe"))
        .args(["send", "0", to, text])
        .status()
        .unwrap();
    assert!(st.success());
}

/// `nat-probe reflect` inside a namespace, until dropped.
struct Reflector(Child);

impl Reflector {
    fn start(bed: &Bed, ns: &str, ports: &[&str]) -> Reflector {
        let mut child = bed
            .exec(ns, env!("CARGO_BIN_EXE_nat-probe"))
            .arg("reflect")
            .args(ports)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        Reflector(child)
    }
}

impl Drop for Reflector {
    fn drop(&mut self) {
        drop(self.0.stdin.take()); // it serves until its stdin closes
        let _ = self.0.wait();
    }
}

/// What one NAT did to the probes.
#[derive(Debug, PartialEq, Eq)]
struct Behaviour {
    /// The same outside address towards two destinations.
    same_mapping: bool,
    /// The inside port kept as the outside port.
    port_kept: bool,
    /// Let in a reply from the contacted address but another port.
    other_port_let_in: bool,
    /// Let in a packet from an address never contacted, to a mapped port.
    stranger_let_in: bool,
    /// Let in a packet to a port nothing inside had sent from.
    cold_let_in: bool,
}

fn probe_nat(bed: &Bed, home: &Home, stun: &str, stranger: &str) -> Behaviour {
    let s1: SocketAddr = format!("{stun}:3478").parse().unwrap();
    let s2: SocketAddr = format!("{stun}:3479").parse().unwrap();
    let seen = |lines: &[String], from: SocketAddr| -> Option<SocketAddr> {
        lines.iter().find_map(|l| {
            let rest = l.strip_prefix(&format!("{from} seen "))?;
            rest.parse().ok()
        })
    };
    // Mapping: one inside port towards two destinations.
    let got = Listener::start(bed, &home.ns, 4000, 1.0, &[s1, s2]).finish();
    let (m1, m2) = (seen(&got, s1), seen(&got, s2));
    let (m1, m2) = (
        m1.unwrap_or_else(|| panic!("{:?}: no answer from {s1}: {got:?}", home.router.nat)),
        m2.unwrap_or_else(|| panic!("{:?}: no answer from {s2}: {got:?}", home.router.nat)),
    );
    assert_eq!(m1.ip(), std::net::IpAddr::V4(home.router.wan));
    // Filtering: contact s1 only; s2 (same address, other port) and a stranger answer.
    let mut l = Listener::start(bed, &home.ns, 4001, 2.0, &[s1]);
    let line = l
        .until(|x| x.starts_with(&format!("{s1} seen ")))
        .unwrap_or_else(|| panic!("{:?}: no answer from {s1}", home.router.nat));
    let mapped = line.rsplit(' ').next().unwrap().to_owned();
    send(bed, stranger, &mapped, "stranger");
    let got = l.finish();
    // Unsolicited: to a port the member listens on but never sent from.
    let cold = Listener::start(bed, &home.ns, 4002, 2.0, &[]);
    send(bed, stranger, &format!("{}:4002", home.router.wan), "cold");
    let cold = cold.finish();
    Behaviour {
        same_mapping: m1 == m2,
        port_kept: m1.port() == 4000,
        other_port_let_in: got.iter().any(|x| x.starts_with(&format!("{s2} also"))),
        stranger_let_in: got.iter().any(|x| x.ends_with(" stranger")),
        cold_let_in: cold.iter().any(|x| x.ends_with(" cold")),
    }
}

#[test]
fn bed_nats_map_and_filter_as_their_names_say() {
    let Some(mut bed) = Bed::new("bed") else {
        return;
    };
    let stun = bed.public();
    let stranger = bed.public();
    let homes: Vec<Home> = Nat::ALL.iter().map(|n| bed.home(*n, None)).collect();
    let reflector = Reflector::start(&bed, &stun.ns, &["3478", "3479"]);
    let found: Vec<Behaviour> = std::thread::scope(|s| {
        let bed = &bed;
        let handles: Vec<_> = homes
            .iter()
            .map(|h| {
                let (stun, stranger) = (stun.addr.to_string(), &stranger.ns);
                s.spawn(move || probe_nat(bed, h, &stun, stranger))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    drop(reflector);
    let b = |same_mapping, port_kept, other_port_let_in, stranger_let_in, cold_let_in| Behaviour {
        same_mapping,
        port_kept,
        other_port_let_in,
        stranger_let_in,
        cold_let_in,
    };
    let expected = [
        b(true, true, true, true, true),      // full cone: anyone, any time
        b(true, true, true, false, false),    // address-restricted: contacted addresses
        b(true, true, false, false, false),   // port-restricted: contacted address and port
        b(false, false, false, false, false), // symmetric: a port per destination
    ];
    for ((nat, got), want) in Nat::ALL.iter().zip(&found).zip(&expected) {
        eprintln!("[bed] {:<10} {got:?}", nat.label());
        assert_eq!(got, want, "{nat:?} NAT");
    }
}

/// Pings a reflector from `ns`: (replies received, median round trip in ms).
fn ping(bed: &Bed, ns: &str, to: &str, count: usize) -> (usize, f64) {
    let out = bed
        .exec(ns, env!("CARGO_BIN_EXE_nat-probe"))
        .args(["ping", to, &count.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "sent N received M rtt_ms MIN MEDIAN MAX"
    let f: Vec<&str> = text.split_whitespace().collect();
    assert!(f.len() == 8 && out.status.success(), "ping: {text}");
    (f[3].parse().unwrap(), f[6].parse().unwrap_or(f64::NAN))
}

#[test]
fn bed_shuttle_delays_and_drops_each_direction_as_shaped() {
    let Some(mut bed) = Bed::new("shuttle") else {
        return;
    };
    let echo = bed.public();
    let shape = Shape {
        up: Impairment {
            delay_ms: 30.0,
            jitter_ms: 5.0,
            loss_percent: 10.0,
            reorder_percent: 0.0,
        },
        down: Impairment {
            delay_ms: 20.0,
            ..Impairment::default()
        },
    };
    let home = bed.home(Nat::Port, Some(shape));
    let _reflector = Reflector::start(&bed, &echo.ns, &["3478"]);
    let to = format!("{}:3478", echo.addr);
    let (received, median) = ping(&bed, &home.ns, &to, 300);
    eprintln!("[shuttle] shaped: {received} of 300 back, median round trip {median:.1} ms");
    // 30 ms up and 20 ms down, less at most the 5 ms of jitter: the shaping is there.
    // No upper bound: what a busy machine adds to a python process is not the shuttle's
    // shaping (a CI run saw a 372 ms median while other rooms ran beside it). 10 % of
    // 300 lost one way: 30 on average, 5 the standard deviation.
    assert!(median >= 45.0, "round trip {median} ms");
    assert!((240..=295).contains(&received), "{received} of 300 back");
    let shaped = median;
    bed.reshape(&home, Shape::default());
    let (received, median) = ping(&bed, &home.ns, &to, 100);
    eprintln!("[shuttle] reshaped to nothing: {received} of 100 back, median {median:.1} ms");
    // The 50 ms are gone: measured against the shaped run, which ran under the same load.
    assert!(
        median < 20.0_f64.max(shaped - 40.0) && received == 100,
        "{received} back, {median} ms after {shaped} ms shaped"
    );
}

// ------------------------------------------------------------------------ rooms

#[test]
fn members_behind_any_two_nats_hear_every_speaker_and_cone_pairs_link_directly() {
    if !bed::available("NAT matrix") {
        return;
    }
    salon_binary();
    let t0 = Instant::now();
    let mut pairs = Vec::new();
    for (i, a) in Nat::ALL.iter().enumerate() {
        for b in &Nat::ALL[i..] {
            pairs.push((*a, *b));
        }
    }
    let outcomes = run_rooms(
        pairs
            .iter()
            .map(|(a, b)| Cell::new(format!("{} x {}", a.label(), b.label()), *a, *b))
            .collect(),
    );
    let direct = outcomes.iter().filter(|o| o.direct).count();
    table(
        &format!(
            "NAT matrix: host public, Ada and Bo behind the NATs named; {direct} of {} cells direct; {:.0?} in all",
            outcomes.len(),
            t0.elapsed()
        ),
        &outcomes,
    );
    let deaf = deaf(&outcomes);
    // Cone-involving pairs (neither side symmetric) must link directly.
    let relayed: Vec<&str> = pairs
        .iter()
        .zip(&outcomes)
        .filter(|((a, b), o)| *a != Nat::Symmetric && *b != Nat::Symmetric && !o.direct)
        .map(|(_, o)| o.cell.as_str())
        .collect();
    assert!(
        deaf.is_empty() && relayed.is_empty(),
        "cells where not everyone hears everyone: {deaf:?}; cone pairs not direct: {relayed:?}"
    );
}

#[test]
#[ignore = "a benchmark for the issue's target (symmetric and cone members direct in at least \
            90 % of tries): ten rooms, about a minute; scripts/test.sh runs it after the tests"]
fn a_symmetric_and_a_port_restricted_member_link_directly_in_nine_of_ten_tries() {
    if !bed::available("birthday") {
        return;
    }
    salon_binary();
    // Time for the birthday technique once the link is relayed (the simulator's median is
    // 5 s from the join).
    let cells = (1..=10)
        .map(|i| Cell {
            listen: Duration::from_secs(12),
            ..Cell::new(
                format!("try {i}: port x symmetric"),
                Nat::Port,
                Nat::Symmetric,
            )
        })
        .collect();
    let outcomes = run_rooms(cells);
    let direct = outcomes.iter().filter(|o| o.direct).count();
    let one_side = outcomes
        .iter()
        .filter(|o| !o.direct && o.path.iter().any(|p| p == "direct"))
        .count();
    table(
        &format!(
            "Birthday technique: Ada behind a port-restricted NAT, Bo behind a symmetric one; \
             {direct} of {} direct on both ends, {one_side} on one end only, 12 s after everyone heard everyone",
            outcomes.len()
        ),
        &outcomes,
    );
    let deaf = deaf(&outcomes);
    assert!(deaf.is_empty(), "not everyone heard everyone: {deaf:?}");
    assert!(direct >= 9, "{direct} of 10 direct");
}

#[test]
fn a_member_who_moves_behind_another_router_is_heard_again() {
    if !bed::available("roaming") {
        return;
    }
    salon_binary();
    // Ada starts behind an address-restricted NAT and moves behind a port-restricted one;
    // Bo's full cone takes Ada's new address whatever the protocol does about punching.
    let o = run_room(Cell {
        roam: Some(Nat::Port),
        ..Cell::new("roaming", Nat::Restricted, Nat::Full)
    });
    table(
        "Roaming: Ada moves from a restricted to a port-restricted NAT mid-room",
        std::slice::from_ref(&o),
    );
    assert!(o.hears_everyone(), "{:?} {:?}", o.error, o.problems);
}

#[test]
fn a_member_on_a_slow_lossy_link_still_hears_everyone_and_is_heard() {
    if !bed::available("impaired") {
        return;
    }
    salon_binary();
    let bad = Impairment {
        delay_ms: 40.0,
        jitter_ms: 5.0,
        loss_percent: 3.0,
        reorder_percent: 0.0,
    };
    let o = run_room(Cell {
        shape: Some(Shape::both(bad)),
        ..Cell::new("port x full, Ada 40ms 3%", Nat::Port, Nat::Full)
    });
    table(
        "Impaired: Ada's link 40 ms +-5 ms and 3 % loss each way",
        std::slice::from_ref(&o),
    );
    let [at_host, at_bo] = &o.links_to_ada;
    eprintln!("links to Ada: the host's {at_host}; Bo's {at_bo}");
    assert!(o.hears_everyone(), "{:?} {:?}", o.error, o.problems);
    // The shuttle is on the path: some of Ada's audio is lost on the way (the bed's own
    // test pins its delays).
    let lost: u64 = o
        .links_to_ada
        .iter()
        .map(|l| l["audio_lost"].as_u64().unwrap_or(0))
        .sum();
    assert!(lost > 0, "no loss on the links to Ada: {at_host}; {at_bo}");
}
