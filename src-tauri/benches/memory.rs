//! How much memory the desktop app holds with a four-person room open: the app hosting,
//! three `salon` command-line peers, everyone on stage playing a tone. Prints the figure
//! for the app process plus its WebKit children (WebKitWebProcess, WebKitNetworkProcess):
//! their footprint with shared pages counted once, and summed RSS and PSS; asserts
//! nothing about it, as a figure depends on the build and the machine. The target is
//! 200 MB.
//!
//! A bench binary that prints its figures (CI runs it after the tests, on the debug
//! build). Run it (a display, tauri-driver, the UI and the `salon` binary as for the
//! WebDriver tests) with `cargo bench -p salon-desktop --bench memory`; to measure another
//! build of the app (e.g. release), set `SALON_APP` to its path. `SALON_MEMORY_DETAIL=1`
//! also prints where the footprint goes, mapping by mapping.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed run

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{App, CliPeer, create_identity, host_room, one_test, person, tempdir};

/// Memory of one process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss_kib: u64,
    pss_kib: u64,
}

fn field_kib(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn mem_of(pid: u32) -> Mem {
    let proc = Path::new("/proc").join(pid.to_string());
    let status = std::fs::read_to_string(proc.join("status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(proc.join("smaps_rollup")).unwrap_or_default();
    Mem {
        rss_kib: field_kib(&status, "VmRSS:"),
        pss_kib: field_kib(&rollup, "Pss:"),
    }
}

/// The family's footprint with shared pages counted once: every private page, plus each
/// shared mapping (a library, a shared-memory buffer between the app and WebKit) once at
/// its largest resident size in any member. Unlike summed RSS it does not count
/// libwebkit2gtk three times; unlike summed PSS it does not depend on what else runs.
fn family_footprint_kib(pids: &[u32]) -> u64 {
    let mut private = 0u64;
    let mut shared: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for pid in pids {
        let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
            continue;
        };
        let mut key = String::new();
        let mut here = 0u64;
        let flush = |key: &str, here: u64, shared: &mut std::collections::HashMap<String, u64>| {
            if here > 0 {
                let e = shared.entry(key.to_owned()).or_default();
                *e = (*e).max(here);
            }
        };
        for line in smaps.lines() {
            let mut words = line.split_whitespace();
            let first = words.next().unwrap_or("");
            if first.contains('-') && !first.ends_with(':') {
                // A mapping header: range perms offset dev inode [path].
                flush(&key, here, &mut shared);
                here = 0;
                let rest: Vec<&str> = words.collect();
                // offset, device, inode and path identify the same pages in another process.
                key = rest.get(1..).map(|r| r.join(" ")).unwrap_or_default();
            } else if let Some(v) = words.next().and_then(|v| v.parse::<u64>().ok()) {
                match first {
                    "Private_Clean:" | "Private_Dirty:" => private += v,
                    "Shared_Clean:" | "Shared_Dirty:" => here += v,
                    _ => {}
                }
            }
        }
        flush(&key, here, &mut shared);
    }
    private + shared.values().sum::<u64>()
}

/// The process and its direct children (WebKitWebProcess, WebKitNetworkProcess), each
/// with its name.
fn family(pid: u32) -> Vec<(u32, String)> {
    let mut out = vec![(pid, comm(pid))];
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(p.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push((child, comm(child)));
        }
    }
    out
}

/// What one process holds, by mapping name (a library, `[heap]`, `[anon]`, a
/// shared-memory buffer): private and shared resident KiB.
fn mappings_kib(pid: u32) -> std::collections::HashMap<String, (u64, u64)> {
    let mut by = std::collections::HashMap::new();
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return by;
    };
    let mut name = String::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // range perms offset dev inode [path]: anonymous mappings have no path.
            let path = words.nth(4).unwrap_or("[anon]");
            name = path.rsplit('/').next().unwrap_or(path).to_owned();
        } else if let Some(v) = words.next().and_then(|v| v.parse::<u64>().ok()) {
            let e: &mut (u64, u64) = by.entry(name.clone()).or_default();
            match first {
                "Private_Clean:" | "Private_Dirty:" => e.0 += v,
                "Shared_Clean:" | "Shared_Dirty:" => e.1 += v,
                _ => {}
            }
        }
    }
    by
}

/// Where the family's footprint goes, for `SALON_MEMORY_DETAIL=1`: per mapping name, its
/// share of the footprint (private pages of every member, shared ones once) and each
/// member's private KiB, largest first.
fn footprint_by_mapping(pids: &[u32]) -> Vec<(String, u64, Vec<u64>)> {
    let per: Vec<_> = pids.iter().map(|p| mappings_kib(*p)).collect();
    let mut names: Vec<&String> = per.iter().flat_map(|m| m.keys()).collect();
    names.sort();
    names.dedup();
    let mut rows: Vec<(String, u64, Vec<u64>)> = names
        .into_iter()
        .map(|n| {
            let private: Vec<u64> = per.iter().map(|m| m.get(n).map_or(0, |e| e.0)).collect();
            let shared = per.iter().map(|m| m.get(n).map_or(0, |e| e.1)).max();
            let total = private.iter().sum::<u64>() + shared.unwrap_or(0);
            (n.clone(), total, private)
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    rows
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn main() {
    let _one = one_test();
    let root = tempdir("memory");
    let dir = root.join("app");
    let Some(app) = App::launch(&dir, "tone:220") else {
        return;
    };
    let d = app.open("app");
    create_identity(&d, "Meter", "memory test passphrase");
    let invite = host_room(&d, "Four of us");
    let names = ["Peer-1", "Peer-2", "Peer-3"];
    let mut peers: Vec<CliPeer> = names
        .iter()
        .zip(["tone:330", "tone:440", "tone:550"])
        .map(|(n, tone)| CliPeer::join(&root, n, &invite, tone))
        .collect();
    for p in &mut peers {
        p.wait("joined", |v| v["event"] == "joined");
    }
    for (n, p) in names.iter().copied().zip(peers.iter_mut()) {
        d.wait_for(&person("audience", n));
        d.click(&format!(
            "{} button[data-op=invite_to_stage]",
            person("audience", n)
        ));
        // Nobody goes on stage without saying yes.
        p.wait("the stage invitation", |v| v["event"] == "stage_invited");
        p.say("accept");
        d.wait_for(&format!(
            "[data-testid=stage] .person.speaking[aria-label={n}]"
        ));
    }
    let pid = *common::app_pids(&dir).first().expect("the app runs");

    // Let the room run (audio from three peers, levels and links redrawing the view)
    // and sample once a second; report the peak.
    let mut peak = (Mem::default(), Vec::new());
    let mut peak_footprint = 0u64;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_secs(1));
        let procs: Vec<(u32, String, Mem)> = family(pid)
            .into_iter()
            .map(|(p, name)| (p, name, mem_of(p)))
            .collect();
        let pids: Vec<u32> = procs.iter().map(|(p, ..)| *p).collect();
        peak_footprint = peak_footprint.max(family_footprint_kib(&pids));
        let total = procs.iter().fold(Mem::default(), |t, (_, _, m)| Mem {
            rss_kib: t.rss_kib + m.rss_kib,
            pss_kib: t.pss_kib + m.pss_kib,
        });
        if total.rss_kib > peak.0.rss_kib {
            peak = (total, procs);
        }
    }
    // Everyone is still in the room and speaking.
    assert_eq!(
        d.script(
            "return document.querySelectorAll('[data-testid=stage] .person').length",
            serde_json::json!([])
        ),
        serde_json::json!(4)
    );
    let mb = |kib: u64| kib as f64 / 1024.0;
    for (p, name, m) in &peak.1 {
        eprintln!(
            "[memory] {name:<22} pid {p:>7}  RSS {:>7.1} MiB  PSS {:>7.1} MiB",
            mb(m.rss_kib),
            mb(m.pss_kib)
        );
    }
    if std::env::var_os("SALON_MEMORY_DETAIL").is_some_and(|v| v == "1") {
        let pids: Vec<u32> = peak.1.iter().map(|(p, ..)| *p).collect();
        let names: Vec<&str> = peak.1.iter().map(|(_, n, _)| n.as_str()).collect();
        eprintln!(
            "[memory]   {:<36} {:>9}   private in {}",
            "mapping",
            "footprint",
            names.join(" / ")
        );
        for (map, total, private) in footprint_by_mapping(&pids).into_iter().take(30) {
            let each: Vec<String> = private.iter().map(|k| format!("{:.1}", mb(*k))).collect();
            eprintln!(
                "[memory]   {map:<36} {:>5.1} MiB   {}",
                mb(total),
                each.join(" / ")
            );
        }
    }
    eprintln!(
        "[memory] app with a four-person room open, peak of 20 s: footprint (shared pages once) {:.1} MiB; summed RSS {:.1} MiB; summed PSS {:.1} MiB (target: 200 MB)",
        mb(peak_footprint),
        mb(peak.0.rss_kib),
        mb(peak.0.pss_kib)
    );
    drop(peers);
    drop(d);
    drop(app);
    let _ = std::fs::remove_dir_all(&root);
}
