//! Reception reports on the simulated network: members tell each speaker how much of its
//! audio they lost, measured over each report interval.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use salon_proto::sim::Net;
use salon_proto::{Event, PublicKey};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Host plus `n - 1` joiners, all joined, on a network with this loss and jitter.
fn room(seed: u64, n: usize, loss: f64, jitter_ms: u64) -> (Net, Vec<usize>) {
    let mut net = Net::new(seed).lossy(loss, 0.0, jitter_ms);
    let ids: Vec<usize> = (0..n).map(|i| net.add(&format!("m{i}"))).collect();
    let invite = net.host(ids[0], "Reports").unwrap();
    for &i in &ids[1..] {
        net.join(i, &invite).unwrap();
    }
    assert!(
        net.run_until(SECS(60), |n| n.rosters_agree(&ids) && n.mesh_up(&ids)),
        "room did not converge"
    );
    (net, ids)
}

/// Reports node `i` received, as (from, loss per thousand), from event index `since`.
fn reports(net: &Net, i: usize, since: usize) -> Vec<(PublicKey, u16)> {
    net.events(i)[since..]
        .iter()
        .filter_map(|e| match e {
            Event::ReceptionReport {
                from,
                loss_permille,
            } => Some((*from, *loss_permille)),
            _ => None,
        })
        .collect()
}

/// The host speaks for `secs` seconds; returns the reports it got from node `listener`.
fn speak_and_collect(net: &mut Net, host: usize, listener: usize, secs: u64) -> Vec<u16> {
    let since = net.events(host).len();
    net.nodes[host].speaking = true;
    net.run_for(SECS(secs));
    let from = net.key(listener);
    reports(net, host, since)
        .into_iter()
        .filter(|(k, _)| *k == from)
        .map(|(_, l)| l)
        .collect()
}

#[test]
fn speaker_on_a_20_percent_loss_network_hears_about_20_percent_from_its_listener() {
    for seed in [31, 32, 33] {
        let (mut net, ids) = room(seed, 2, 0.20, 0);
        let got = speak_and_collect(&mut net, ids[0], ids[1], 30);
        // 30 s at one report per 2 s, a fifth of them lost on the way back.
        assert!(got.len() >= 8, "seed {seed}: only {} reports", got.len());
        // One report covers ~100 frames: at 20 % loss its standard deviation is 40‰,
        // so single reports stay within ±4σ (the mean below is the tight check).
        for l in &got {
            assert!(
                (40..=360).contains(l),
                "seed {seed}: report of {l}‰ in {got:?}"
            );
        }
        let mean = got.iter().map(|l| u32::from(*l)).sum::<u32>() / got.len() as u32;
        assert!(
            (150..=250).contains(&mean),
            "seed {seed}: mean {mean}‰ of {got:?}"
        );
    }
}

#[test]
fn speaker_on_a_loss_free_network_hears_zero_loss() {
    // Jitter below the frame period: no reordering, so nothing even looks lost.
    let (mut net, ids) = room(34, 3, 0.0, 5);
    let since = net.events(ids[0]).len();
    net.nodes[ids[0]].speaking = true;
    net.run_for(SECS(10));
    let got = reports(&net, ids[0], since);
    for listener in &ids[1..] {
        let k = net.key(*listener);
        let from_it: Vec<u16> = got.iter().filter(|(f, _)| *f == k).map(|r| r.1).collect();
        // One report per 2 s interval: the first interval starts with the first frame.
        assert!(from_it.len() >= 4, "listener {listener}: {from_it:?}");
        assert!(
            from_it.iter().all(|l| *l == 0),
            "listener {listener}: {from_it:?}"
        );
    }
}

#[test]
fn reports_go_only_to_members_whose_audio_was_expected() {
    let (mut net, ids) = room(35, 3, 0.05, 10);
    let (host, a, b) = (ids[0], ids[1], ids[2]);
    let since: Vec<usize> = ids.iter().map(|i| net.events(*i).len()).collect();
    net.nodes[host].speaking = true;
    net.run_for(SECS(10));
    // The host spoke: both listeners report to it.
    let to_host = reports(&net, host, since[0]);
    for l in [a, b] {
        let k = net.key(l);
        assert!(to_host.iter().any(|(f, _)| *f == k), "no report from {l}");
    }
    // The listeners sent no audio: nobody reports to them.
    for l in [a, b] {
        assert_eq!(reports(&net, l, since[l]), vec![], "node {l} got reports");
    }
    // After the host falls silent the reports stop (one may still cover the last frames).
    net.nodes[host].speaking = false;
    net.run_for(SECS(3));
    let quiet_since = net.events(host).len();
    net.run_for(SECS(10));
    assert_eq!(reports(&net, host, quiet_since), vec![]);
}

#[test]
fn two_speakers_report_to_each_other_though_neither_ever_idles() {
    // Stage members send audio every frame, so no keepalive timer ever fires on their
    // link: the report clock must run on its own deadline.
    let (mut net, ids) = room(36, 2, 0.10, 0);
    let (host, a) = (ids[0], ids[1]);
    let ka = net.key(a);
    net.bring_on_stage(host, a).unwrap();
    assert!(net.run_until(SECS(10), |n| {
        n.nodes[a]
            .ep
            .room()
            .is_some_and(|r| r.members.iter().any(|m| m.key == ka && m.role.on_stage()))
    }));
    let since: Vec<usize> = ids.iter().map(|i| net.events(*i).len()).collect();
    net.nodes[host].speaking = true;
    net.nodes[a].speaking = true;
    net.run_for(SECS(20));
    for (me, other) in [(host, a), (a, host)] {
        let k = net.key(other);
        let got: Vec<u16> = reports(&net, me, since[me])
            .into_iter()
            .filter(|(f, _)| *f == k)
            .map(|r| r.1)
            .collect();
        assert!(got.len() >= 5, "node {me} got {got:?}");
        assert!(
            got.iter().all(|l| (20..=200).contains(l)),
            "node {me} got {got:?}"
        );
    }
}

/// Datagrams `from` sent `to` in the capture from index `before`, each asserted 189 bytes.
fn datagrams(net: &Net, before: usize, from: usize, to: usize) -> usize {
    let (from, to) = (net.nodes[from].addr, net.nodes[to].addr);
    net.captured[before..]
        .iter()
        .filter(|c| c.from == from && c.to == to)
        .inspect(|c| assert_eq!(c.bytes.len(), 189, "every slot is audio-sized"))
        .count()
}

#[test]
fn reports_ride_in_a_listeners_slots_so_its_rate_stays_constant() {
    // Without uniform rates a listener sends one datagram per listener slot (250 ms);
    // its reports take no datagram of their own.
    let mut net = Net::new(37);
    let cfg = salon_proto::Config {
        uniform_rate: false,
        ..salon_proto::Config::default()
    };
    let host = net.add_with("host", cfg.clone());
    let listener = net.add_with("listener", cfg);
    let invite = net.host(host, "Reports").unwrap();
    net.join(listener, &invite).unwrap();
    net.nodes[host].speaking = true;
    net.run_for(SECS(5));
    let before = net.captured.len();
    let since = net.events(host).len();
    net.run_for(SECS(30));
    let sent = datagrams(&net, before, listener, host);
    assert!((119..=121).contains(&sent), "{sent} datagrams in 30 s");
    assert!(reports(&net, host, since).len() >= 14);
}

#[test]
fn in_a_uniform_rate_room_a_listener_sends_exactly_as_often_as_a_speaker() {
    let (mut net, ids) = room(38, 3, 0.0, 0);
    let (host, listener, other) = (ids[0], ids[1], ids[2]);
    net.nodes[host].speaking = true;
    net.run_for(SECS(5));
    let before = net.captured.len();
    net.run_for(SECS(30));
    // 30 s of 20 ms slots.
    let speaker = datagrams(&net, before, host, listener);
    let heard = datagrams(&net, before, listener, host);
    let idle = datagrams(&net, before, listener, other);
    for n in [speaker, heard, idle] {
        assert!(
            (1499..=1501).contains(&n),
            "{speaker} {heard} {idle} datagrams in 30 s"
        );
    }
}
