//! Hosts behind home routers: with a router that maps the host's port (miniupnpd in the
//! router's namespace answering UPnP-IGD, NAT-PMP and PCP), members behind other NATs join
//! with the invite the host prints after the mapping and hear everyone, and the mapping
//! goes when the host leaves; without one, a join fails after its timeout and says why.
//! Needs root, miniupnpd (nftables build) and nft; skips otherwise (fails with
//! `SALON_CI=1`). `cargo test -p salon-tests --test hosts -- --nocapture` prints the tables.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::{Duration, Instant};

use salon_tests::bed::{self, Bed, Nat, Protocols};
use salon_tests::room::{
    Cell, HEAR_LIMIT, Site, listening_port, panic_text, run_room, run_rooms, table,
};
use salon_tests::salon::salon_binary;
use salon_tests::{RoomSlot, Salon, step};

/// The join timeout the failing joins run with (`--join-timeout-secs`).
const JOIN_TIMEOUT: u64 = 5;
/// What a failed join says, before and after the addresses it tried: the invite names only
/// the host's addresses behind its router, so the message says the router opened no port.
const FAILED_START: &str = "the host did not answer at ";
const FAILED_END: &str = "or to forward a UDP port to Salon";

#[test]
fn a_host_behind_any_nat_that_maps_its_port_is_joined_from_behind_nats_and_the_mapping_goes_with_it()
 {
    if !bed::mapping_available("hosts with port mapping") {
        return;
    }
    salon_binary();
    let t0 = Instant::now();
    // Two member pairs per host NAT: a cone pair, and one where the birthday technique
    // (or the host as relay) has to carry the members' link.
    let pairs = [(Nat::Port, Nat::Port), (Nat::Port, Nat::Symmetric)];
    let mut cells = Vec::new();
    for host in Nat::ALL {
        for (a, b) in pairs {
            cells.push(Cell {
                host: Site::Mapped(host, Protocols::All),
                ..Cell::new(
                    format!("host {}: {} x {}", host.label(), a.label(), b.label()),
                    a,
                    b,
                )
            });
        }
    }
    let outcomes = run_rooms(cells.clone());
    let direct = outcomes.iter().filter(|o| o.direct).count();
    table(
        &format!(
            "Hosts behind NATs that map their port; Ada and Bo behind the NATs named; \
             {direct} of {} Ada-Bo links direct; {:.0?} in all",
            outcomes.len(),
            t0.elapsed()
        ),
        &outcomes,
    );
    let mut failures = Vec::new();
    for (c, o) in cells.iter().zip(&outcomes) {
        if !o.hears_everyone() {
            failures.push(format!("{}: {:?} {:?}", o.cell, o.error, o.problems));
        }
        // Both members reach the host at its mapped address, straight.
        if o.error.is_none() && o.host_path != ["direct", "direct"] {
            failures.push(format!(
                "{}: members' links to the host {:?}",
                o.cell, o.host_path
            ));
        }
        // Cone pairs punch through whatever the host sits behind.
        if o.error.is_none() && c.a != Nat::Symmetric && c.b != Nat::Symmetric && !o.direct {
            failures.push(format!("{}: cone pair not direct: {:?}", o.cell, o.path));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_host_behind_a_router_that_speaks_only_nat_pmp_and_pcp_gets_a_mapping_and_is_joined() {
    if !bed::mapping_available("NAT-PMP and PCP only") {
        return;
    }
    salon_binary();
    let o = run_room(Cell {
        host: Site::Mapped(Nat::Port, Protocols::NatPmpAndPcp),
        ..Cell::new("host port, no UPnP: port x port", Nat::Port, Nat::Port)
    });
    table(
        "A host behind a router with UPnP off (NAT-PMP and PCP on)",
        std::slice::from_ref(&o),
    );
    assert!(o.hears_everyone(), "{:?} {:?}", o.error, o.problems);
}

/// What one failed join showed.
struct Refusal {
    cell: String,
    /// The join's `join_failed` message.
    message: Option<String>,
    /// From the joiner's start to that message.
    after: Option<Duration>,
    /// What fell short.
    problems: Vec<String>,
}

/// A host behind a router of kind `nat` that maps nothing for it (no miniupnpd, or, with
/// `opt_out`, a mapping router and a host started with `--no-port-mapping`); a joiner on
/// the public side tries its invite.
fn refused(nat: Nat, opt_out: bool) -> Refusal {
    let cell = format!(
        "host {}{}",
        nat.label(),
        if opt_out { ", --no-port-mapping" } else { "" }
    );
    let _slot = RoomSlot::take();
    let mut bed = Bed::new(&cell).expect("bed availability was checked");
    let home = if opt_out {
        bed.mapping_home(nat, Protocols::All)
    } else {
        bed.home(nat, None)
    };
    let joiner = bed.public();
    let root = bed.dir().to_path_buf();
    let mut host_args = vec!["host", "--title", "Unreachable"];
    if opt_out {
        host_args.push("--no-port-mapping");
    }
    let mut host = Salon::start(&bed, &home.ns, &root, "Host", &host_args, "tone:440");
    let invite = host.invite();
    let port = listening_port(&mut host);
    let timeout = JOIN_TIMEOUT.to_string();
    let args = ["join", &invite, "--join-timeout-secs", &timeout];
    let mut ada = Salon::start(&bed, &joiner.ns, &root, "Ada", &args, "tone:660");
    let failed = ada.pump(Instant::now() + HEAR_LIMIT, |s| {
        s.log.iter().any(|(_, v)| v["event"] == "join_failed")
    });
    let mut problems = Vec::new();
    let (message, after) = if failed {
        let (at, v) = ada.wait("join_failed", HEAR_LIMIT, |v| v["event"] == "join_failed");
        (
            v["message"].as_str().map(str::to_owned),
            Some(at.duration_since(ada.started)),
        )
    } else {
        problems.push(format!("no join_failed within {HEAR_LIMIT:?}"));
        (None, None)
    };
    if let Some(m) = &message {
        // It names the address the invite carried: the host's own, behind its NAT.
        let tried = format!("{}:{port}", home.addr());
        if !(m.starts_with(FAILED_START) && m.ends_with(FAILED_END) && m.contains(&tried)) {
            problems.push(format!(
                "message {m:?} is not \"{FAILED_START}…{tried}…{FAILED_END}\""
            ));
        }
    }
    if let Some(a) = after {
        // It waited out the timeout, and not much longer (a busy machine adds some).
        let t = Duration::from_secs(JOIN_TIMEOUT);
        if a < t || a > t + Duration::from_secs(4) {
            problems.push(format!("join_failed after {a:.1?}, the timeout is {t:?}"));
        }
    }
    match ada.exit_status(Duration::from_secs(5)) {
        Some(st) if !st.success() => {}
        other => problems.push(format!("the joiner's process after join_failed: {other:?}")),
    }
    if opt_out {
        let maps = bed.port_mappings(&home.router);
        if !maps.is_empty() {
            problems.push(format!("--no-port-mapping, yet the router maps {maps:?}"));
        }
    }
    host.drain();
    let alone = host
        .room
        .as_ref()
        .and_then(|r| r["members"].as_array().map(Vec::len));
    if alone != Some(1) {
        problems.push(format!("the host's room has {alone:?} members"));
    }
    if !problems.is_empty() {
        eprintln!("[{cell}] {problems:?}\n{}\n{}", host.report(), ada.report());
    }
    step!(cell, "join_failed after {after:.1?}: {message:?}");
    Refusal {
        cell,
        message,
        after,
        problems,
    }
}

#[test]
fn a_host_behind_a_nat_that_maps_nothing_cannot_be_joined_and_the_joiner_is_told_why() {
    if !bed::mapping_available("hosts without port mapping") {
        return;
    }
    salon_binary();
    let mut runs: Vec<(Nat, bool)> = Nat::ALL.iter().map(|n| (*n, false)).collect();
    runs.push((Nat::Port, true));
    let found: Vec<Refusal> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(nat, opt_out)| {
                s.spawn(move || {
                    std::panic::catch_unwind(|| refused(*nat, *opt_out)).unwrap_or_else(|e| {
                        Refusal {
                            cell: nat.label().into(),
                            message: None,
                            after: None,
                            problems: vec![panic_text(&*e)],
                        }
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!(
        "\nHosts behind NATs with no port mapping; a public joiner with --join-timeout-secs {JOIN_TIMEOUT}"
    );
    for r in &found {
        eprintln!(
            "{:<34} join_failed after {:<8} {}",
            r.cell,
            r.after
                .map_or("never".into(), |a| format!("{:.2} s", a.as_secs_f64())),
            r.message.as_deref().unwrap_or("-")
        );
    }
    let failures: Vec<String> = found
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| format!("{}: {}", r.cell, r.problems.join("; ")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
