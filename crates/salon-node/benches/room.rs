//! Whole-room figures with real `salon` processes on loopback. Prints its results.
//!
//! `cargo bench -p salon-node --bench room`
//!
//! * invite → first audio frame heard (process start, unlock, handshake, roster, first
//!   frame), five times;
//! * 8 processes in one room, 3 speaking: CPU share and resident memory per process, and
//!   the delivered-frame ratio;
//! * 16 members: time until every member has all 15 links up.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot run should stop loudly

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

fn proc_cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the whole line (utime, stime) are 12 and 13 after the ")".
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn proc_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn join_latency() {
    let scratch = tempdir("bench-join");
    let root = scratch.path();
    init(root, "Host");
    let mut host = spawn(root, "Host", &["host", "--title", "Bench"], "tone:440");
    let invite = host.invite();
    let mut total = Vec::new();
    let mut after_join = Vec::new();
    for i in 0..5 {
        let name = format!("J{i}");
        init(root, &name);
        let t0 = Instant::now();
        let mut j = spawn(root, &name, &["join", &invite], "none");
        j.wait("joined", Duration::from_secs(10), |v| {
            v["event"] == "joined"
        });
        let t_joined = t0.elapsed();
        j.wait("first audio", Duration::from_secs(10), |v| {
            v["event"] == "first_audio"
        });
        let t = t0.elapsed();
        total.push(t.as_secs_f64() * 1000.0);
        after_join.push((t - t_joined).as_secs_f64() * 1000.0);
        j.say("leave");
        j.wait("left", Duration::from_secs(5), |v| v["event"] == "left");
        let _ = j.child.wait();
    }
    host.say("end");
    let _ = host.child.wait();
    println!(
        "invite -> first audio frame (process start included): median {:.0} ms, max {:.0} ms; of which joined -> first frame median {:.0} ms",
        percentile(&mut total.clone(), 0.5),
        percentile(&mut total, 1.0),
        percentile(&mut after_join, 0.5)
    );
}

fn eight_in_a_room() {
    let scratch = tempdir("bench-eight");
    let root = scratch.path();
    let names: Vec<String> = (0..8).map(|i| format!("P{i}")).collect();
    for n in &names {
        init(root, n);
    }
    // Noise suppression and echo cancellation on, as people run it.
    let mut host = spawn_opts(
        root,
        &names[0],
        &["host", "--title", "Eight"],
        "tone:300",
        true,
    );
    let invite = host.invite();
    let mut peers = vec![];
    for (i, n) in names.iter().enumerate().skip(1) {
        let input = if i < 3 {
            format!("tone:{}", 300 + 200 * i)
        } else {
            "none".to_owned()
        };
        peers.push(spawn_opts(root, n, &["join", &invite], &input, true));
    }
    host.room_has("eight", |r| {
        r["members"].as_array().is_some_and(|m| m.len() == 8)
    });
    host.say(&format!("promote {}", names[1]));
    host.say(&format!("promote {}", names[2]));
    for p in peers.iter_mut().take(2) {
        p.accept_stage_invite();
    }
    std::thread::sleep(Duration::from_secs(3));
    let all_pids: Vec<u32> = std::iter::once(host.child.id())
        .chain(peers.iter().map(|p| p.child.id()))
        .collect();
    let before: Vec<u64> = all_pids.iter().map(|p| proc_cpu_ticks(*p)).collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(20));
    let wall = t0.elapsed().as_secs_f64();
    let after: Vec<u64> = all_pids.iter().map(|p| proc_cpu_ticks(*p)).collect();
    let rss: Vec<u64> = all_pids.iter().map(|p| proc_rss_kib(*p)).collect();
    let cpu: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a - b) as f64 / 100.0 / wall * 100.0)
        .collect();
    // Delivered frames: the latest link report of every listener.
    let (mut got, mut lost) = (0u64, 0u64);
    for p in peers.iter_mut().skip(2) {
        let v = p.wait("links", Duration::from_secs(2), |v| {
            v["event"] == "links" && v["links"].as_array().is_some_and(|l| l.len() == 7)
        });
        let _ = v;
        while let Ok(v) = p.events.try_recv() {
            p.seen.push(v);
        }
        if let Some(last) = p.seen.iter().rev().find(|v| v["event"] == "links") {
            for l in last["links"].as_array().unwrap() {
                got += l["audio_received"].as_u64().unwrap_or(0);
                lost += l["audio_lost"].as_u64().unwrap_or(0);
            }
        }
    }
    for (i, n) in names.iter().enumerate() {
        println!(
            "8-room {n} ({}): CPU {:.1}% of one core, RSS {:.1} MiB",
            if i < 3 { "speaking" } else { "listening" },
            cpu[i],
            rss[i] as f64 / 1024.0
        );
    }
    let max_rss = rss.iter().max().copied().unwrap_or(0) as f64 / 1024.0;
    println!(
        "8-room: mean CPU {:.1}%, max RSS {max_rss:.1} MiB, delivered frames {:.4} ({got} received, {lost} lost)",
        cpu.iter().sum::<f64>() / cpu.len() as f64,
        got as f64 / (got + lost).max(1) as f64
    );
    host.say("end");
    let _ = host.child.wait();
    for mut p in peers {
        let _ = p.child.wait();
    }
}

fn sixteen_mesh() {
    let scratch = tempdir("bench-mesh");
    let root = scratch.path();
    let names: Vec<String> = (0..16).map(|i| format!("M{i:02}")).collect();
    for n in &names {
        init(root, n);
    }
    let mut host = spawn(root, &names[0], &["host", "--title", "Mesh"], "none");
    let invite = host.invite();
    let t0 = Instant::now();
    let mut peers: Vec<Peer> = names[1..]
        .iter()
        .map(|n| spawn(root, n, &["join", &invite], "none"))
        .collect();
    peers.push(host);
    let mut done = vec![None; peers.len()];
    let end = Instant::now() + Duration::from_secs(60);
    while done.iter().any(Option::is_none) && Instant::now() < end {
        for (i, p) in peers.iter_mut().enumerate() {
            while let Ok(v) = p.events.try_recv() {
                p.seen.push(v);
            }
            if done[i].is_none() {
                let ups: HashSet<&str> = p
                    .seen
                    .iter()
                    .filter(|v| v["event"] == "link_up")
                    .filter_map(|v| v["key"].as_str())
                    .collect();
                if ups.len() >= 15 {
                    done[i] = Some(t0.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let times: Vec<f64> = done
        .iter()
        .map(|d| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0))
        .collect();
    let worst = times.iter().copied().fold(0.0, f64::max);
    println!(
        "16-member mesh: all 120 links up {worst:.0} ms after 15 joiners were started at once ({} of 16 complete)",
        done.iter().filter(|d| d.is_some()).count()
    );
    for p in peers.iter_mut() {
        p.say("leave");
    }
    for mut p in peers {
        let _ = p.child.wait();
    }
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; do real work only
    // when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    join_latency();
    eight_in_a_room();
    sixteen_mesh();
}
