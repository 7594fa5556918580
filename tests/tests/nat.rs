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
use salon_tests::salon::{leave_all, salon_binary};
use salon_tests::{Recording, RoomSlot, Salon};

/// Speakers and their tones.
const HOST: (&str, f64) = ("Host", 440.0);
const ADA: (&str, f64) = ("Ada", 660.0);
const BO: (&str, f64) = ("Bo", 880.0);
/// From a member's join (or promotion) to hearing every speaker; the targets are
/// 2 s direct and 4 s relayed, this only bounds a hang (a loaded 2-core machine).
const HEAR_LIMIT: Duration = Duration::from_secs(20);
/// How long everyone listens once everyone hears everyone.
const LISTEN: Duration = Duration::from_secs(4);
/// Seconds of a speaker's tone a recording must hold to count as heard.
const HEARD: f64 = 2.0;
/// The longest a member who moves may go unheard. Its first datagram from the new address
/// moves the link after a path check (a round trip), so this is generous.
const ROAM_GAP: f64 = 5.0;

/// Progress lines, so a hang shows where it is.
macro_rules! step {
    ($tag:expr, $($t:tt)*) => { eprintln!("[{}] {}", $tag, format!($($t)*)) };
}

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
    // 30 ms up and 20 ms down (and what a busy machine adds to a python process); 10 %
    // of 300 lost one way: 30 on average, 5 the standard deviation.
    assert!((45.0..90.0).contains(&median), "round trip {median} ms");
    assert!((240..=295).contains(&received), "{received} of 300 back");
    bed.reshape(&home, Shape::default());
    let (received, median) = ping(&bed, &home.ns, &to, 100);
    eprintln!("[shuttle] reshaped to nothing: {received} of 100 back, median {median:.1} ms");
    assert!(
        median < 20.0 && received == 100,
        "{received} back, {median} ms"
    );
}

// ------------------------------------------------------------------------ rooms

/// One room of the host and two members, and what came of it.
struct Outcome {
    cell: String,
    /// Ada's and Bo's view of their link ("direct", "relayed via Host", "?").
    path: [String; 2],
    /// Every path Ada's link to Bo had.
    history: Vec<String>,
    direct: bool,
    /// Bo's join to Bo hearing the host and Ada.
    join_to_hear: Option<Duration>,
    /// Bo's promotion to the host and Ada hearing Bo.
    stage_to_heard: Option<Duration>,
    /// What fell short ("Ada hears Bo 0.0 s", …).
    problems: Vec<String>,
    /// Each recording's seconds of each tone.
    heard: Vec<String>,
    /// The host's and Bo's last reports of their links to Ada (rtt, audio received and
    /// lost, path).
    links_to_ada: [serde_json::Value; 2],
    /// What failed outside hearing (a panic in the room's set-up).
    error: Option<String>,
}

impl Outcome {
    fn failed(cell: &str, error: String) -> Outcome {
        Outcome {
            cell: cell.to_owned(),
            path: ["-".into(), "-".into()],
            history: Vec::new(),
            direct: false,
            join_to_hear: None,
            stage_to_heard: None,
            problems: Vec::new(),
            heard: Vec::new(),
            links_to_ada: Default::default(),
            error: Some(error),
        }
    }

    fn hears_everyone(&self) -> bool {
        self.error.is_none() && self.problems.is_empty()
    }
}

/// Takes in every node's events until `done` holds or `limit` passes.
fn pump_all(
    nodes: &mut [&mut Salon],
    limit: Duration,
    done: impl Fn(&[&mut Salon]) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    loop {
        for n in nodes.iter_mut() {
            n.drain();
        }
        if done(nodes) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether every node has had first audio from every other speaker.
fn all_hear_all(nodes: &[&mut Salon]) -> bool {
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    nodes.iter().all(|n| {
        names
            .iter()
            .filter(|o| **o != n.name)
            .all(|o| n.first_audio_from(o).is_some())
    })
}

fn describe(node: &Salon, peer: &str) -> String {
    match node.path_to(peer) {
        None => "?".into(),
        Some(p) => match &p.via {
            Some(via) => format!(
                "{} via {}",
                p.path,
                node.name_of(via)
                    .unwrap_or_else(|| via[..8.min(via.len())].to_owned())
            ),
            None => p.path.clone(),
        },
    }
}

/// The host on the public side, Ada behind `a` (its link shaped by `shape`) and Bo behind
/// `b`; all three on stage, each sending its tone. `roam` moves Ada behind a third router
/// of that kind once everyone hears everyone, and the room goes on.
fn room(cell: &str, a: Nat, b: Nat, shape: Option<Shape>, roam: Option<Nat>) -> Outcome {
    let _slot = RoomSlot::take();
    let t0 = Instant::now();
    let mut bed = Bed::new(cell).expect("bed availability was checked");
    let public = bed.public();
    let mut home_a = bed.home(a, shape);
    let home_b = bed.home(b, None);
    let spare = roam.map(|n| bed.router(n));
    let root = bed.dir().to_path_buf();
    let tone = |(_, hz): (&str, f64)| format!("tone:{hz}");
    let mut host = Salon::host(&bed, &public.ns, &root, HOST.0, "NAT bed", &tone(HOST));
    let invite = host.invite();
    let mut ada = Salon::join(&bed, &home_a.ns, &root, ADA.0, &invite, &tone(ADA));
    ada.wait("joined", HEAR_LIMIT, |v| v["event"] == "joined");
    host.say(&format!("promote {}", ADA.0));
    ada.wait_until("on stage", HEAR_LIMIT, |s| s.on_stage(ADA.0));
    step!(cell, "Ada in and on stage after {:.1?}", t0.elapsed());
    let mut bo = Salon::join(&bed, &home_b.ns, &root, BO.0, &invite, &tone(BO));
    bo.wait("joined", HEAR_LIMIT, |v| v["event"] == "joined");
    host.say(&format!("promote {}", BO.0));
    let promoted = Instant::now();
    let everyone = pump_all(
        &mut [&mut host, &mut ada, &mut bo],
        HEAR_LIMIT,
        all_hear_all,
    );
    step!(
        cell,
        "{} after {:.1?}",
        if everyone {
            "everyone hears everyone"
        } else {
            "NOT everyone hears everyone"
        },
        t0.elapsed()
    );
    let joined = bo.joined_at().unwrap();
    let join_to_hear = [HOST.0, ADA.0]
        .iter()
        .map(|n| bo.first_audio_from(n))
        .collect::<Option<Vec<_>>>()
        .and_then(|ts| ts.into_iter().max())
        .map(|t| t.duration_since(joined));
    let stage_to_heard = [host.first_audio_from(BO.0), ada.first_audio_from(BO.0)]
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .and_then(|ts| ts.into_iter().max())
        .map(|t| t.duration_since(promoted));
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    if everyone {
        pump_all(&mut [&mut host, &mut ada, &mut bo], LISTEN, |_| false);
        if let Some(to) = &spare {
            let before = [
                host.audio_received_from(ADA.0),
                bo.audio_received_from(ADA.0),
            ];
            bed.move_home(&mut home_a, to, None);
            let moved = Instant::now();
            step!(
                cell,
                "Ada moved behind a {} NAT ({})",
                to.nat.label(),
                to.wan
            );
            // Back when both have had two more seconds (100 frames) of Ada's audio.
            let more = |n: &Salon, b: Option<u64>| {
                n.audio_received_from(ADA.0).unwrap_or(0) >= b.unwrap_or(0) + 100
            };
            let back = pump_all(&mut [&mut host, &mut ada, &mut bo], HEAR_LIMIT, |ns| {
                more(ns[0], before[0]) && more(ns[2], before[1])
            });
            notes.push(format!(
                "2 s of Ada's audio after the move {} {:.1?}",
                if back { "within" } else { "NOT within" },
                moved.elapsed()
            ));
            pump_all(&mut [&mut host, &mut ada, &mut bo], LISTEN, |_| false);
            let via = format!("src={} dst={}", to.member_addr(), public.addr);
            if !bed.conntrack(to).contains(&via) {
                problems.push(format!(
                    "Ada's traffic to the host does not cross {}",
                    to.ns
                ));
            }
        }
    }
    let path = [describe(&ada, BO.0), describe(&bo, ADA.0)];
    let history = ada
        .path_history(BO.0)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let direct = path.iter().all(|p| p == "direct");
    let links_to_ada = [&host, &bo].map(|n| {
        n.links
            .iter()
            .find(|l| l["name"] == ADA.0)
            .cloned()
            .unwrap_or_default()
    });
    leave_all(&mut [&mut host, &mut ada, &mut bo]);
    // Each hears the two others for seconds; after a move, Ada again at the end.
    let mut heard = Vec::new();
    for n in [&host, &ada, &bo] {
        let r = Recording::read(&n.out);
        let mut parts = Vec::new();
        for (who, hz) in [HOST, ADA, BO] {
            if who == n.name {
                continue;
            }
            let secs = r.tone_seconds(hz);
            parts.push(format!("{who} {secs:.1}"));
            if secs < HEARD {
                problems.push(format!("{} hears {who} {secs:.1} s", n.name));
            }
            if spare.is_some() && who == ADA.0 {
                // Heard again after the move: up to the end, as the third speaker is,
                // and never problems for long.
                let third = if n.name == HOST.0 { BO } else { HOST };
                let end = r.last_heard(hz).unwrap_or(0.0);
                let third_end = r.last_heard(third.1).unwrap_or(0.0);
                let gap = r.longest_gap(hz);
                parts.push(format!(
                    "(Ada last at {end:.1} s, {} at {third_end:.1} s; longest gap {gap:.1} s)",
                    third.0
                ));
                if end + 1.0 < third_end {
                    problems.push(format!(
                        "{} stops hearing Ada at {end:.1} s, {} at {third_end:.1} s",
                        n.name, third.0
                    ));
                }
                if gap > ROAM_GAP {
                    problems.push(format!("{} did not hear Ada for {gap:.1} s", n.name));
                }
            }
        }
        heard.push(format!(
            "{}: {} of {:.1} s",
            n.name,
            parts.join(", "),
            r.seconds()
        ));
    }
    if !problems.is_empty() {
        eprintln!(
            "[{cell}] problems: {problems:?}\n{}\n{}\n{}\nconntrack {}:\n{}conntrack {}:\n{}",
            host.report(),
            ada.report(),
            bo.report(),
            home_a.router.ns,
            bed.conntrack(&home_a.router),
            home_b.router.ns,
            bed.conntrack(&home_b.router),
        );
    }
    step!(
        cell,
        "done after {:.1?}; {}",
        t0.elapsed(),
        heard.join("; ")
    );
    heard.extend(notes);
    Outcome {
        cell: cell.to_owned(),
        path,
        history,
        direct,
        join_to_hear,
        stage_to_heard,
        problems,
        heard,
        links_to_ada,
        error: None,
    }
}

/// Runs `room` on a thread of its own and turns a panic into a failed outcome.
fn run_room(cell: String, a: Nat, b: Nat, shape: Option<Shape>, roam: Option<Nat>) -> Outcome {
    let name = cell.clone();
    std::thread::Builder::new()
        .name(cell.clone())
        .spawn(move || room(&cell, a, b, shape, roam))
        .unwrap()
        .join()
        .unwrap_or_else(|e| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panicked".into());
            Outcome::failed(&name, msg)
        })
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn table(title: &str, outcomes: &[Outcome]) {
    eprintln!("\n{title}");
    eprintln!(
        "{:<24} {:<6} {:<36} {:<22} {:<10} {:<10}",
        "cell (Ada x Bo)",
        "hears",
        "Ada-Bo path (Ada / Bo)",
        "history (Ada's view)",
        "join->all",
        "stage->all"
    );
    for o in outcomes {
        eprintln!(
            "{:<24} {:<6} {:<36} {:<22} {:<10} {:<10}",
            o.cell,
            if o.hears_everyone() { "all" } else { "NO" },
            format!("{} / {}", o.path[0], o.path[1]),
            if o.history.is_empty() {
                "-".into()
            } else {
                o.history.join(">")
            },
            secs(o.join_to_hear),
            secs(o.stage_to_heard),
        );
    }
    eprintln!(
        "join->all: from Bo's join to Bo hearing the host and Ada; stage->all: from Bo's \
         promotion to the host and Ada hearing Bo"
    );
    for o in outcomes {
        if let Some(e) = &o.error {
            eprintln!("  {}: failed: {e}", o.cell);
        }
        if !o.problems.is_empty() {
            eprintln!("  {}: {}", o.cell, o.problems.join("; "));
        }
        eprintln!("  {}: heard {}", o.cell, o.heard.join("; "));
    }
    eprintln!();
}

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
    // Every cell on a thread of its own; RoomSlot lets a few run at a time.
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = pairs
            .iter()
            .map(|(a, b)| {
                let cell = format!("{} x {}", a.label(), b.label());
                s.spawn(move || run_room(cell, *a, *b, None, None))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let direct = outcomes.iter().filter(|o| o.direct).count();
    table(
        &format!(
            "NAT matrix: host public, Ada and Bo behind the NATs named; {direct} of {} cells direct; {:.0?} in all",
            outcomes.len(),
            t0.elapsed()
        ),
        &outcomes,
    );
    let deaf: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.hears_everyone())
        .map(|o| o.cell.as_str())
        .collect();
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
fn a_member_who_moves_behind_another_router_is_heard_again() {
    if !bed::available("roaming") {
        return;
    }
    salon_binary();
    // Ada starts behind an address-restricted NAT and moves behind a port-restricted one;
    // Bo's full cone takes Ada's new address whatever the protocol does about punching.
    let o = run_room(
        "roaming".into(),
        Nat::Restricted,
        Nat::Full,
        None,
        Some(Nat::Port),
    );
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
    let o = run_room(
        "port x full, Ada 40ms 3%".into(),
        Nat::Port,
        Nat::Full,
        Some(Shape::both(bad)),
        None,
    );
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
