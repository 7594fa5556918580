//! The constant-rate schedule on the simulated network (PROTOCOL §5.1): what people do in
//! a room (mute, push-to-talk, hands, chat, moderation) changes neither the size nor the
//! number of datagrams on any flow, and no member can make the host send more.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use salon_proto::sim::Net;
use salon_proto::{Action, CommandError, Event, Role};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Host (on stage, speaking) plus `n - 1` members, all joined; member 1 is brought on
/// stage and speaks (push-to-talk keeps the codec running: muted frames are silence).
fn room(seed: u64, n: usize) -> (Net, Vec<usize>) {
    let mut net = Net::new(seed);
    let ids: Vec<usize> = (0..n).map(|i| net.add(&format!("m{i}"))).collect();
    let invite = net.host(ids[0], "Schedule").unwrap();
    for &i in &ids[1..] {
        net.join(i, &invite).unwrap();
    }
    assert!(net.run_until(SECS(30), |n| n.rosters_agree(&ids) && n.mesh_up(&ids)));
    net.bring_on_stage(ids[0], ids[1]).unwrap();
    let k1 = net.key(ids[1]);
    assert!(net.run_until(SECS(10), |n| {
        ids.iter().all(|&i| {
            n.nodes[i]
                .ep
                .room()
                .is_some_and(|r| r.members.iter().any(|m| m.key == k1 && m.role.on_stage()))
        })
    }));
    net.nodes[ids[0]].speaking = true;
    net.nodes[ids[1]].speaking = true;
    net.run_for(SECS(2));
    (net, ids)
}

/// Datagrams per flow and per `window` in the capture from index `before`, asserting
/// every one is 189 bytes; the first and last window are cut off.
fn counts(
    net: &Net,
    before: usize,
    window: Duration,
) -> BTreeMap<(SocketAddr, SocketAddr), Vec<u32>> {
    let caps = &net.captured[before..];
    let start = caps.first().unwrap().at;
    let mut out: BTreeMap<(SocketAddr, SocketAddr), Vec<u32>> = BTreeMap::new();
    for c in caps {
        assert_eq!(c.bytes.len(), 189, "every transport datagram is one size");
        let w = (c.at.duration_since(start).as_nanos() / window.as_nanos()) as usize;
        let v = out.entry((c.from, c.to)).or_default();
        if v.len() <= w {
            v.resize(w + 1, 0);
        }
        v[w] += 1;
    }
    for v in out.values_mut() {
        v.remove(0);
        v.pop();
    }
    out
}

#[test]
fn mute_push_to_talk_hands_chat_and_moderation_change_neither_size_nor_count_on_any_flow() {
    let (mut net, ids) = room(51, 4);
    let (host, ptt, a, b) = (ids[0], ids[1], ids[2], ids[3]);
    let (ka, kb) = (net.key(a), net.key(b));
    // A busy minute: push-to-talk every 0.7 s, a hand up and down, chat from everyone,
    // a mute by the host, a listener invited and moved back.
    let before = net.captured.len();
    for step in 0..60u64 {
        let talk = step % 2 == 0;
        net.with(ptt, |ep, now| ep.set_muted(now, !talk)).unwrap();
        if step % 5 == 0 {
            net.with(a, |ep, now| ep.set_hand(now, step % 10 == 0))
                .unwrap();
        }
        if step % 3 == 0 {
            for i in [host, ptt, a, b] {
                let text = format!("line {step} from {i}: {}", "x".repeat(300));
                let r = net.with(i, |ep, now| ep.send_chat(now, &text));
                assert!(
                    matches!(r, Ok(()) | Err(CommandError::ChatTooFast)),
                    "{r:?}"
                );
            }
        }
        if step == 20 {
            net.with(host, |ep, now| ep.moderate(now, kb, Action::InviteToStage))
                .unwrap();
        }
        if step == 30 {
            net.with(host, |ep, now| ep.moderate(now, ka, Action::Mute))
                .unwrap();
        }
        net.run_for(Duration::from_millis(700));
    }
    let busy = counts(&net, before, Duration::from_millis(200));
    // Everything asked for arrived.
    let chats = net.chats(b).len();
    assert!(chats >= 60, "only {chats} chat lines reached b");
    assert!(
        net.events(b)
            .iter()
            .any(|e| matches!(e, Event::StageInvited { .. }))
    );
    // Quiet: the same room with nobody doing anything.
    let before = net.captured.len();
    net.run_for(SECS(42));
    let quiet = counts(&net, before, Duration::from_millis(200));
    assert_eq!(busy.len(), 12, "a flow each way between 4 members");
    for (flow, n) in &busy {
        // 200 ms windows of 20 ms slots: 10 each, ±1 where a slot sits on the border
        // (a stage member's slot follows its codec clock).
        assert!(
            n.iter().all(|c| (9..=11).contains(c)),
            "busy flow {flow:?}: {n:?}"
        );
        let total: u32 = n.iter().sum();
        let quiet_total: u32 = quiet[flow].iter().sum();
        let (bw, qw) = (n.len() as u32, quiet[flow].len() as u32);
        assert!(
            total.abs_diff(10 * bw) <= 2 && quiet_total.abs_diff(10 * qw) <= 2,
            "flow {flow:?}: {total} in {bw} windows busy, {quiet_total} in {qw} quiet"
        );
    }
}

#[test]
fn a_member_flooding_requests_and_chat_makes_the_host_send_not_one_byte_more() {
    let (mut net, ids) = room(52, 4);
    let (host, flooder) = (ids[0], ids[2]);
    let host_addr = net.nodes[host].addr;
    let flooder_addr = net.nodes[flooder].addr;
    let quiet_start = net.captured.len();
    net.run_for(SECS(10));
    let bytes = |net: &Net, from: usize, pred: &dyn Fn(SocketAddr, SocketAddr) -> bool| -> u64 {
        net.captured[from..]
            .iter()
            .filter(|c| pred(c.from, c.to))
            .map(|c| c.bytes.len() as u64)
            .sum()
    };
    let host_quiet = bytes(&net, quiet_start, &|f, _| f == host_addr);
    let flood_start = net.captured.len();
    let t0 = net.now;
    let mut refused = 0u32;
    while net.now < t0 + SECS(10) {
        // Hundreds of hand toggles and chat lines a second (as many as the API takes).
        for k in 0..20 {
            // A full channel (Backlog) is the flooder's own problem.
            let _ = net.with(flooder, |ep, now| ep.set_hand(now, k % 2 == 0));
            if net
                .with(flooder, |ep, now| ep.send_chat(now, &"spam ".repeat(400)))
                .is_err()
            {
                refused += 1;
            }
        }
        net.run_for(Duration::from_millis(20));
    }
    let host_flood = bytes(&net, flood_start, &|f, _| f == host_addr);
    let flooder_sent = bytes(&net, flood_start, &|f, _| f == flooder_addr);
    let to_host = bytes(&net, flood_start, &|f, t| {
        f == flooder_addr && t == host_addr
    });
    let from_host = bytes(&net, flood_start, &|f, t| {
        f == host_addr && t == flooder_addr
    });
    eprintln!(
        "flood: host sent {host_flood} B in 10 s (quiet: {host_quiet} B); flooder sent {flooder_sent} B; \
         host bytes per flooder byte on their link {:.3}, host total per flooder total {:.3}; {refused} chats refused",
        from_host as f64 / to_host as f64,
        host_flood as f64 / flooder_sent as f64
    );
    assert!(
        refused > 1000,
        "the flooder's own chat allowance refuses the flood"
    );
    // The host sends exactly what it sends in a quiet room: one slot per flow.
    assert!(
        host_flood.abs_diff(host_quiet) <= 189 * 6,
        "{host_flood} vs {host_quiet}"
    );
    assert!(from_host.abs_diff(to_host) <= 189 * 3);
    // The host is still the host and the room still agrees.
    assert!(net.run_until(SECS(30), |n| n.rosters_agree(&ids)));
    let r = net.nodes[host].ep.room().unwrap();
    assert_eq!(
        r.members
            .iter()
            .find(|m| m.key == net.key(host))
            .unwrap()
            .role,
        Role::Host
    );
}

#[test]
fn a_stage_member_gives_at_most_one_frame_in_three_to_control_and_announces_each() {
    let (mut net, ids) = room(53, 3);
    let (host, listener) = (ids[0], ids[2]);
    let kh = net.key(host);
    let before = net.nodes[listener].ep.link_stats(&kh).unwrap();
    // A burst of chat from the host: ~2 KB to each member, ~18 slots' worth.
    for i in 0..5 {
        net.with(host, |ep, now| {
            ep.send_chat(now, &format!("{i} {}", "y".repeat(390)))
        })
        .unwrap();
    }
    net.run_for(SECS(3));
    let after = net.nodes[listener].ep.link_stats(&kh).unwrap();
    let skipped = after.audio_skipped - before.audio_skipped;
    let received = after.audio_received - before.audio_received;
    assert_eq!(
        after.audio_lost, before.audio_lost,
        "a skipped frame is not a loss"
    );
    assert!(skipped >= 15, "the chat went in audio slots: {skipped}");
    assert!(
        received >= 2 * skipped,
        "{received} frames heard, {skipped} skipped"
    );
    assert_eq!(net.chats(listener).len(), 5);
}

#[test]
fn a_removed_listener_is_told_within_a_second_in_a_room_of_five() {
    let mut net = Net::new(54);
    let ids: Vec<usize> = (0..5).map(|i| net.add(&format!("m{i}"))).collect();
    let invite = net.host(ids[0], "Removal").unwrap();
    for &i in &ids[1..] {
        net.join(i, &invite).unwrap();
    }
    assert!(net.run_until(SECS(30), |n| n.rosters_agree(&ids) && n.mesh_up(&ids)));
    net.nodes[ids[0]].speaking = true;
    net.run_for(SECS(1));
    let gone = ids[4];
    let k = net.key(gone);
    net.with(ids[0], |ep, now| ep.moderate(now, k, Action::Remove))
        .unwrap();
    assert!(net.run_until(SECS(1), |n| {
        n.events(gone)
            .contains(&Event::Left(salon_proto::LeftReason::Removed))
    }));
}
