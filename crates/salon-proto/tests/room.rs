//! Whole rooms on the simulated network: joining, roles, chat, removal and epochs,
//! hand-over, timeouts, metadata on the wire, garbage input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use salon_proto::sim::Net;
use salon_proto::{Action, Config, Event, InviteChange, JoinFailure, LeftReason, Role};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Host plus `n - 1` joiners on a network with the given impairments, all joined.
fn room(seed: u64, n: usize, loss: f64, dup: f64, jitter_ms: u64) -> (Net, Vec<usize>) {
    let mut net = Net::new(seed).lossy(loss, dup, jitter_ms);
    let names = [
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Leslie", "Frances",
    ];
    let ids: Vec<usize> = (0..n).map(|i| net.add(names[i % names.len()])).collect();
    let invite = net.host(ids[0], "Friday night jazz").unwrap();
    for &i in &ids[1..] {
        net.join(i, &invite).unwrap();
    }
    let joined = net.run_until(SECS(30), |net| {
        net.rosters_agree(&ids) && room_size(net, ids[0]) == n && net.mesh_up(&ids)
    });
    assert!(joined, "room of {n} did not converge");
    (net, ids)
}

fn room_size(net: &Net, i: usize) -> usize {
    net.nodes[i].ep.room().map_or(0, |r| r.members.len())
}

fn role_of(net: &Net, at: usize, who: usize) -> Option<Role> {
    let k = net.key(who);
    net.nodes[at]
        .ep
        .room()?
        .members
        .iter()
        .find(|m| m.key == k)
        .map(|m| m.role)
}

#[test]
fn eight_members_join_one_invite_and_build_all_28_links_under_loss_reorder_duplication() {
    let (net, ids) = room(1, 8, 0.10, 0.05, 40);
    assert!(net.rosters_agree(&ids));
    let mut links = 0;
    for a in &ids {
        for b in &ids {
            if a < b
                && net.nodes[*a]
                    .ep
                    .link_stats(&net.key(*b))
                    .is_some_and(|s| s.up)
            {
                links += 1;
            }
        }
    }
    assert_eq!(links, 28);
    let code = net.nodes[0].ep.room().unwrap().safety_code;
    for &i in &ids {
        assert_eq!(
            net.nodes[i].ep.room().unwrap().safety_code,
            code,
            "node {i}"
        );
        assert!(
            net.events(i)
                .iter()
                .find(|e| matches!(e, Event::Joined(_)))
                .is_some()
        );
    }
}

#[test]
fn raised_hand_promotion_audio_mute_and_move_to_audience_follow_the_host() {
    let (mut net, ids) = room(2, 4, 0.05, 0.02, 20);
    let (host, a, b) = (ids[0], ids[1], ids[2]);
    net.with(a, |ep, now| ep.set_hand(now, true)).unwrap();
    assert!(net.run_until(SECS(5), |n| {
        let k = n.key(a);
        ids.iter().all(|i| {
            n.nodes[*i]
                .ep
                .room()
                .unwrap()
                .members
                .iter()
                .any(|m| m.key == k && m.hand_raised)
        })
    }));
    // A listener cannot send audio; after promotion it can and everyone hears it.
    assert!(
        net.with(a, |ep, now| ep.send_audio(now, &[1; 100]))
            .is_err()
    );
    let ka = net.key(a);
    net.with(host, |ep, now| ep.moderate(now, ka, Action::InviteToStage))
        .unwrap();
    assert!(net.run_until(SECS(5), |n| {
        ids.iter().all(|i| role_of(n, *i, a) == Some(Role::Speaker))
    }));
    assert!(net.events(a).contains(&Event::RoleChanged(Role::Speaker)));
    let hand_lowered = net.nodes[b]
        .ep
        .room()
        .unwrap()
        .members
        .iter()
        .any(|m| m.key == ka && !m.hand_raised);
    assert!(hand_lowered, "promotion lowers the hand");
    net.nodes[a].speaking = true;
    net.run_for(SECS(2));
    for &i in &ids {
        if i != a {
            assert!(
                net.audio_from(i, a) > 80,
                "node {i} heard {} frames",
                net.audio_from(i, a)
            );
        }
    }
    assert_eq!(net.audio_from(a, a), 0);
    // A listener cannot moderate.
    let kb = net.key(b);
    assert!(
        net.with(b, |ep, now| ep.moderate(now, ka, Action::Mute))
            .is_err()
    );
    // The host mutes the speaker: it is told, and everyone sees the mute.
    net.with(host, |ep, now| ep.moderate(now, ka, Action::Mute))
        .unwrap();
    assert!(net.run_until(SECS(5), |n| n.events(a).contains(&Event::MutedByModerator)));
    assert!(net.run_until(SECS(5), |n| ids.iter().all(|i| {
        n.nodes[*i]
            .ep
            .room()
            .unwrap()
            .members
            .iter()
            .any(|m| m.key == ka && m.muted)
    })));
    // Moderator promotion, then the moderator moves the speaker back to the audience.
    net.with(host, |ep, now| ep.moderate(now, kb, Action::MakeModerator))
        .unwrap();
    assert!(net.run_until(SECS(5), |n| role_of(n, b, b) == Some(Role::Moderator)));
    net.with(b, |ep, now| ep.moderate(now, ka, Action::MoveToAudience))
        .unwrap();
    assert!(net.run_until(SECS(5), |n| {
        ids.iter()
            .all(|i| role_of(n, *i, a) == Some(Role::Listener))
    }));
    // Audio from the audience is no longer accepted by anyone.
    let before = net.audio_from(host, a);
    net.run_for(SECS(1));
    assert_eq!(net.audio_from(host, a), before);
}

#[test]
fn chat_arrives_everywhere_exactly_once_in_order_per_sender() {
    let (mut net, ids) = room(3, 5, 0.15, 0.10, 60);
    for k in 1..=30u64 {
        let sender = ids[(k % 3) as usize];
        net.with(sender, |ep, now| {
            ep.send_chat(now, &format!("line {k} from {sender}"))
        })
        .unwrap();
        net.run_for(Duration::from_millis(15));
    }
    net.run_for(SECS(10));
    for &i in &ids {
        let got = net.chats(i);
        assert_eq!(got.len(), 30, "node {i} got {} lines", got.len());
        for &s in &ids[..3] {
            let ks = net.key(s);
            let seqs: Vec<u64> = got
                .iter()
                .filter(|(f, ..)| *f == ks)
                .map(|(_, q, _)| *q)
                .collect();
            let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seqs, expected, "node {i} from {s}");
        }
    }
}

#[test]
fn removal_opens_new_epoch_and_removed_member_cannot_decrypt_or_rejoin() {
    let (mut net, ids) = room(4, 4, 0.05, 0.0, 10);
    let invite = net.nodes[0]
        .ep
        .invite(vec![salon_proto::Candidate {
            kind: salon_proto::CandidateKind::Lan,
            addr: net.nodes[0].addr,
        }])
        .unwrap();
    let (host, victim) = (ids[0], ids[3]);
    let epoch_before = net.nodes[host].ep.room().unwrap().epoch;
    let kv = net.key(victim);
    net.with(host, |ep, now| ep.moderate(now, kv, Action::Remove))
        .unwrap();
    let rest = &ids[..3];
    assert!(net.run_until(SECS(10), |n| n.rosters_agree(rest)
        && room_size(n, host) == 3));
    assert!(net.nodes[host].ep.room().unwrap().epoch > epoch_before);
    assert!(
        net.events(victim)
            .contains(&Event::Left(LeftReason::Removed))
    );
    // Links re-keyed in the new epoch, and nobody keeps a link to the removed member.
    assert!(net.run_until(SECS(10), |n| n.mesh_up(rest)));
    net.run_for(SECS(3));
    for &i in rest {
        assert!(
            net.nodes[i].ep.link_stats(&kv).is_none(),
            "node {i} still links the removed member"
        );
    }
    // The room goes on: audio after the removal reaches members, never the removed one,
    // even when every datagram on the wire is delivered to it as well.
    net.nodes[host].speaking = true;
    let from = net.captured.len();
    net.run_for(SECS(2));
    let heard_before = net.audio_from(victim, host);
    let packets: Vec<_> = net.captured[from..].to_vec();
    for c in &packets {
        let now = net.now;
        net.nodes[victim].ep.handle_datagram(now, c.from, &c.bytes);
    }
    net.pump(victim);
    assert_eq!(net.audio_from(victim, host), heard_before);
    assert!(net.audio_from(ids[1], host) > 80);
    // The old invite answers nothing now (the removal rotated the room secret)...
    net.run_for(SECS(3));
    net.join(victim, &invite).unwrap();
    assert!(net.run_until(SECS(20), |n| {
        n.events(victim)
            .iter()
            .any(|e| matches!(e, Event::JoinFailed(JoinFailure::Unreachable { .. })))
    }));
    assert_eq!(room_size(&net, host), 3);
    // ...and with the new one (say it leaked) the ban on the key is told as such.
    let current = invite_of(&net, host);
    assert_ne!(current.secret(), invite.secret());
    net.join(victim, &current).unwrap();
    assert!(net.run_until(SECS(10), |n| {
        n.events(victim)
            .contains(&Event::JoinFailed(JoinFailure::Removed))
    }));
    assert_eq!(room_size(&net, host), 3);
}

#[test]
fn host_leaving_hands_the_room_to_a_moderator_and_the_room_goes_on() {
    let (mut net, ids) = room(5, 5, 0.05, 0.02, 20);
    let (host, m) = (ids[0], ids[3]);
    let km = net.key(m);
    net.with(host, |ep, now| ep.moderate(now, km, Action::MakeModerator))
        .unwrap();
    assert!(net.run_until(SECS(5), |n| role_of(n, m, m) == Some(Role::Moderator)));
    net.with(host, |ep, now| ep.leave(now)).unwrap();
    let rest = &ids[1..];
    assert!(net.run_until(SECS(10), |n| n.rosters_agree(rest) && room_size(n, m) == 4));
    for &i in rest {
        assert_eq!(net.nodes[i].ep.room().unwrap().host, km, "node {i}");
    }
    assert!(net.events(m).iter().any(|e| matches!(
        e,
        Event::HostChanged {
            invite: Some(_),
            ..
        }
    ) || matches!(e, Event::RoleChanged(Role::Host))));
    net.run_for(SECS(3));
    assert!(net.nodes[host].ep.is_idle());
    // The new host runs the room: a chat and a promotion still work.
    net.bring_on_stage(m, ids[1]).unwrap();
    assert!(net.run_until(SECS(5), |n| {
        rest.iter()
            .all(|i| role_of(n, *i, ids[1]) == Some(Role::Speaker))
    }));
}

#[test]
fn crashed_host_times_out_and_the_earliest_speaker_takes_over() {
    let (mut net, ids) = room(6, 4, 0.02, 0.0, 10);
    let (host, s) = (ids[0], ids[2]);
    let ks = net.key(s);
    net.bring_on_stage(host, s).unwrap();
    assert!(net.run_until(SECS(5), |n| role_of(n, ids[1], s) == Some(Role::Speaker)));
    net.kill(host);
    let rest = &ids[1..];
    assert!(net.run_until(SECS(20), |n| n.rosters_agree(rest) && room_size(n, s) == 3));
    for &i in rest {
        assert_eq!(net.nodes[i].ep.room().unwrap().host, ks);
    }
    let invite = net.events(s).iter().find_map(|e| match e {
        Event::HostChanged {
            invite: Some(inv), ..
        } => Some(inv.clone()),
        _ => None,
    });
    let invite = invite.expect("new host gets a fresh invite");
    assert_eq!(invite.host, ks);
    // A newcomer joins through the new host's invite.
    let late = net.add("Late");
    net.join(late, &invite).unwrap();
    let all = [ids[1], ids[2], ids[3], late];
    assert!(net.run_until(SECS(15), |n| n.rosters_agree(&all)
        && room_size(n, s) == 4
        && n.mesh_up(&all)));
}

#[test]
fn silent_member_times_out_and_leaves_every_roster() {
    let (mut net, ids) = room(7, 4, 0.0, 0.0, 0);
    net.kill(ids[2]);
    let rest = [ids[0], ids[1], ids[3]];
    assert!(net.run_until(SECS(15), |n| n.rosters_agree(&rest)
        && room_size(n, ids[0]) == 3));
    let elapsed = net.now - net.start;
    assert!(elapsed < SECS(40), "took {elapsed:?}");
    assert!(
        net.events(ids[1])
            .contains(&Event::LinkDown(net.key(ids[2])))
    );
}

#[test]
fn joining_without_the_room_secret_gets_no_answer() {
    let mut net = Net::new(8);
    let host = net.add("Host");
    let fast = Config {
        join_timeout: SECS(3),
        ..Config::default()
    };
    let intruder = net.add_with("Mallory", fast);
    let real = net.host(host, "Private").unwrap();
    let invite = salon_proto::Invite::new(
        real.host,
        real.room_id,
        salon_proto::invite::RoomSecret::from_bytes([9; 32]),
        real.candidates.clone(),
    );
    net.join(intruder, &invite).unwrap();
    net.run_for(SECS(5));
    let to_intruder = net
        .captured
        .iter()
        .filter(|c| c.to == net.nodes[intruder].addr)
        .count();
    assert_eq!(to_intruder, 0, "host answered someone without the invite");
    assert!(
        matches!(net.events(intruder).last(), Some(Event::JoinFailed(JoinFailure::Unreachable { tried })) if tried.contains(&net.nodes[host].addr))
    );
    assert_eq!(room_size(&net, host), 1);
}

#[test]
fn ended_room_tells_everyone() {
    let (mut net, ids) = room(9, 3, 0.05, 0.0, 10);
    net.with(ids[0], |ep, now| ep.end_room(now)).unwrap();
    net.run_for(SECS(5));
    for &i in &ids[1..] {
        assert!(
            net.events(i).contains(&Event::Left(LeftReason::Ended)),
            "node {i}"
        );
        assert!(net.nodes[i].ep.is_idle());
    }
}

#[test]
fn sessions_rekey_after_two_minutes_without_losing_audio() {
    let (mut net, ids) = room(10, 3, 0.0, 0.0, 5);
    net.nodes[ids[0]].speaking = true;
    net.run_for(SECS(400));
    let frames = net.audio_from(ids[1], ids[0]);
    let k0 = net.key(ids[0]);
    let stats = net.nodes[ids[1]].ep.link_stats(&k0).unwrap();
    // 400 s of 20 ms frames, minus the first moments and the few whose slots carried
    // control (each announced, so not lost); a gap at each rekey would show as loss.
    assert_eq!(stats.audio_lost, 0, "{stats:?}");
    let sent = frames as u64 + stats.audio_skipped;
    assert!(
        sent > 19_900,
        "only {frames} frames and {} skipped",
        stats.audio_skipped
    );
    assert!(stats.audio_skipped < 200, "{stats:?}");
    assert!(net.mesh_up(&ids));
}

// ---- regression tests for bugs found in review; each is named after the bug it pins.

#[test]
fn removed_member_cannot_rejoin_through_the_next_host_even_with_a_crafted_invite() {
    let (mut net, ids) = room(11, 4, 0.0, 0.0, 0);
    let original = net.nodes[ids[0]].ep.invite(vec![]).unwrap();
    let (host, s, victim) = (ids[0], ids[1], ids[3]);
    let ks = net.key(s);
    net.with(host, |ep, now| ep.moderate(now, ks, Action::MakeModerator))
        .unwrap();
    net.run_for(SECS(2));
    let kv = net.key(victim);
    net.with(host, |ep, now| ep.moderate(now, kv, Action::Remove))
        .unwrap();
    net.run_for(SECS(5));
    assert!(net.nodes[victim].ep.is_idle());
    net.kill(host);
    assert!(net.run_until(SECS(20), |n| {
        n.nodes[s].ep.room().is_some_and(|r| r.host == ks)
    }));
    net.run_for(SECS(3));
    // The old secret with the new host's key and address (both in the old roster).
    let mut crafted = original.clone();
    crafted.host = ks;
    crafted.candidates = vec![salon_proto::Candidate {
        kind: salon_proto::CandidateKind::Lan,
        addr: net.nodes[s].addr,
    }];
    net.join(victim, &crafted).unwrap();
    net.run_for(SECS(20));
    assert!(
        !net.nodes[s]
            .ep
            .room()
            .unwrap()
            .members
            .iter()
            .any(|m| m.key == kv)
    );
    assert!(
        net.events(victim)
            .iter()
            .any(|e| matches!(e, Event::JoinFailed(_)))
    );
    // The ban travelled with the roster: the new host refuses the key outright, even
    // when the victim holds the new host's fresh invite.
    let fresh = net.nodes[s]
        .ep
        .invite(vec![salon_proto::Candidate {
            kind: salon_proto::CandidateKind::Lan,
            addr: net.nodes[s].addr,
        }])
        .unwrap();
    assert_ne!(
        fresh.secret(),
        original.secret(),
        "new host draws a fresh room secret"
    );
    net.join(victim, &fresh).unwrap();
    assert!(net.run_until(SECS(10), |n| {
        n.events(victim)
            .iter()
            .filter(|e| matches!(e, Event::JoinFailed(JoinFailure::Removed)))
            .count()
            == 1
    }));
}

#[test]
fn chat_from_a_member_who_left_and_rejoined_reaches_everyone() {
    let (mut net, ids) = room(12, 3, 0.0, 0.0, 0);
    let invite = net.nodes[ids[0]]
        .ep
        .invite(vec![salon_proto::Candidate {
            kind: salon_proto::CandidateKind::Lan,
            addr: net.nodes[ids[0]].addr,
        }])
        .unwrap();
    let b = ids[2];
    for i in 0..3 {
        net.with(b, |ep, now| ep.send_chat(now, &format!("old{i}")))
            .unwrap();
    }
    net.run_for(SECS(2));
    net.with(b, |ep, now| ep.leave(now)).unwrap();
    net.run_for(SECS(5));
    net.join(b, &invite).unwrap();
    assert!(net.run_until(SECS(20), |n| n.rosters_agree(&ids) && n.mesh_up(&ids)));
    net.with(b, |ep, now| ep.send_chat(now, "new1")).unwrap();
    net.run_for(SECS(3));
    for &i in &ids[..2] {
        assert!(
            net.chats(i).iter().any(|c| c.2 == "new1"),
            "node {i} dropped chat after rejoin"
        );
    }
}

#[test]
fn removing_a_member_while_rekeying_to_it_leaves_no_deadline_in_the_past() {
    let cfg = Config {
        rekey_after: SECS(2),
        peer_timeout: SECS(60),
        ..Config::default()
    };
    let mut checked = 0;
    for seed in 20..40u64 {
        let mut net = Net::new(seed);
        let h = net.add_with("h", cfg.clone());
        let v = net.add_with("v", cfg.clone());
        if net.key(h) > net.key(v) {
            continue; // the host must be the side that initiates rekeys
        }
        let inv = net.host(h, "t").unwrap();
        net.join(v, &inv).unwrap();
        assert!(net.run_until(SECS(10), |n| n.mesh_up(&[h, v]) && n.rosters_agree(&[h, v])));
        net.kill(v);
        net.run_for(SECS(4));
        let kv = net.key(v);
        net.with(h, |ep, now| ep.moderate(now, kv, Action::Remove))
            .unwrap();
        let now = net.now;
        net.nodes[h].ep.handle_timeout(now);
        let next = net.nodes[h].ep.poll_timeout().unwrap();
        assert!(next > now, "seed {seed}: deadline stays in the past");
        net.run_for(SECS(3)); // the simulator panics if timers stop advancing
        checked += 1;
    }
    assert!(checked > 3);
}

#[test]
fn every_member_converges_on_the_successor_whatever_order_they_notice_the_host_died() {
    for seed in 100..110u64 {
        let (mut net, ids) = room(seed, 5, 0.0, 0.0, 0);
        let off = net.rng_f64();
        net.run_for(Duration::from_millis((off * 1000.0) as u64));
        net.kill(ids[0]);
        let rest = &ids[1..];
        let ok = net.run_until(SECS(30), |n| {
            n.rosters_agree(rest)
                && rest
                    .iter()
                    .all(|&i| n.nodes[i].ep.room().is_some_and(|r| r.members.len() == 4))
        });
        assert!(ok, "seed {seed}: members did not converge on the successor");
    }
}

#[test]
fn graceful_hand_over_installs_the_leaving_hosts_roster_and_gives_the_successor_an_invite() {
    let (mut net, ids) = room(13, 4, 0.0, 0.0, 0);
    let epoch = net.nodes[ids[1]].ep.room().unwrap().epoch;
    let original = net.nodes[ids[0]].ep.invite(vec![]).unwrap();
    let successor = salon_proto::roster::successor(
        &net.nodes[ids[0]].ep.room().unwrap().members,
        &net.key(ids[0]),
    )
    .unwrap();
    let s = ids
        .iter()
        .copied()
        .find(|&i| net.key(i) == successor)
        .unwrap();
    net.with(ids[0], |ep, now| ep.leave(now)).unwrap();
    // Well under the peer timeout: no member had to time the host out.
    net.run_for(Duration::from_millis(800));
    for &i in &ids[1..] {
        let r = net.nodes[i].ep.room().unwrap();
        assert_eq!(r.host, successor, "node {i}");
        assert_eq!(
            r.epoch,
            epoch + 1,
            "node {i}: the leaving host's epoch, not a second one"
        );
    }
    let invite = net.events(s).iter().find_map(|e| match e {
        Event::HostChanged {
            invite: Some(inv), ..
        } => Some(inv.clone()),
        _ => None,
    });
    let invite = invite.expect("successor gets an invite");
    assert_ne!(invite.secret(), original.secret());
}

/// Whether `a` has an encrypted session up towards `b`.
fn link_up(net: &Net, a: usize, b: usize) -> bool {
    net.nodes[a]
        .ep
        .link_stats(&net.key(b))
        .is_some_and(|s| s.up)
}

#[test]
fn chat_sent_before_the_links_to_a_newcomer_are_up_is_delivered_once_they_are() {
    // A newcomer who talks the moment it has joined, and a member who greets the newcomer
    // the moment it appears in the roster: neither has a session to the other yet. Their
    // lines wait in the reliable channel and arrive when the link comes up.
    for seed in 21..31 {
        early_chat(seed);
    }
}

fn early_chat(seed: u64) {
    let mut net = Net::new(seed).lossy(0.05, 0.0, 20);
    let (host, old, new) = (net.add("Ada"), net.add("Grace"), net.add("Alan"));
    let invite = net.host(host, "Early birds").unwrap();
    net.join(old, &invite).unwrap();
    assert!(net.run_until(SECS(10), |n| n.rosters_agree(&[host, old])
        && n.mesh_up(&[host, old])));
    net.join(new, &invite).unwrap();
    let joined = |n: &Net| n.events(new).iter().any(|e| matches!(e, Event::Joined(_)));
    let end = net.now + SECS(10);
    while !joined(&net) && net.now < end {
        net.run_for(Duration::from_millis(1));
    }
    assert!(joined(&net), "seed {seed}: the newcomer never joined");
    assert!(
        !link_up(&net, new, old),
        "seed {seed}: the test needs the link still down"
    );
    net.with(new, |ep, now| ep.send_chat(now, "hi all, just in"))
        .unwrap();
    let kn = net.key(new);
    let old_sees_new = |n: &Net| {
        n.nodes[old]
            .ep
            .room()
            .is_some_and(|r| r.members.iter().any(|m| m.key == kn))
    };
    while !old_sees_new(&net) && net.now < end {
        net.run_for(Duration::from_millis(1));
    }
    assert!(
        old_sees_new(&net),
        "seed {seed}: the member never saw the newcomer"
    );
    assert!(
        !link_up(&net, old, new),
        "seed {seed}: the test needs the link still down"
    );
    net.with(old, |ep, now| ep.send_chat(now, "welcome"))
        .unwrap();
    net.run_for(SECS(10));
    let has = |i: usize, text: &str| net.chats(i).iter().any(|c| c.2 == text);
    assert!(
        has(old, "hi all, just in"),
        "seed {seed}: the member missed the newcomer's line"
    );
    assert!(
        has(host, "hi all, just in"),
        "seed {seed}: the host missed the newcomer's line"
    );
    assert!(
        has(new, "welcome"),
        "seed {seed}: the newcomer missed the member's line"
    );
    assert!(
        has(host, "welcome"),
        "seed {seed}: the host missed the member's line"
    );
}

// ---- removal that sticks (issue 12, must fix 1): the room secret rotates on removal.

/// Whether node `i` received a datagram from anyone since `captured[from..]`.
fn answered(net: &Net, i: usize, from: usize) -> usize {
    let addr = net.nodes[i].addr;
    net.captured[from..].iter().filter(|c| c.to == addr).count()
}

/// The host's invite as a joiner would have received it.
fn invite_of(net: &Net, host: usize) -> salon_proto::Invite {
    net.nodes[host]
        .ep
        .invite(vec![salon_proto::Candidate {
            kind: salon_proto::CandidateKind::Lan,
            addr: net.nodes[host].addr,
        }])
        .unwrap()
}

#[test]
fn removed_member_with_a_fresh_identity_and_the_old_invite_gets_no_answer_and_decrypts_nothing() {
    let (mut net, ids) = room(40, 4, 0.0, 0.0, 5);
    let old = invite_of(&net, ids[0]);
    let (host, victim) = (ids[0], ids[3]);
    let kv = net.key(victim);
    net.with(host, |ep, now| ep.moderate(now, kv, Action::Remove))
        .unwrap();
    let rest = &ids[..3];
    assert!(net.run_until(SECS(10), |n| n.rosters_agree(rest)
        && room_size(n, host) == 3
        && n.mesh_up(rest)));
    assert!(
        net.events(victim)
            .contains(&Event::Left(LeftReason::Removed))
    );
    let seen_at_removal = net.events(victim).len();
    // The host got a new invite to hand the remaining people; the old one is dead.
    let new = new_invites(&net, host);
    assert_eq!(new.len(), 1, "one new invite per removal");
    assert_eq!(new[0].1, InviteChange::Removal);
    assert_ne!(new[0].0.secret(), old.secret());
    assert_eq!(invite_of(&net, host).secret(), new[0].0.secret());
    // `salon init` in a fresh folder: a new identity, at a new address, with the invite
    // the removed member kept.
    let fast = Config {
        join_timeout: SECS(5),
        ..Config::default()
    };
    let again = net.add_with("Mallory", fast);
    let since = net.captured.len();
    net.join(again, &old).unwrap();
    // The room goes on meanwhile: a speaker and chat.
    net.nodes[host].speaking = true;
    net.with(ids[1], |ep, now| ep.send_chat(now, "after the removal"))
        .unwrap();
    net.run_for(SECS(7));
    assert_eq!(
        answered(&net, again, since),
        0,
        "the host answered the old invite"
    );
    assert!(
        matches!(net.events(again).last(), Some(Event::JoinFailed(JoinFailure::Unreachable { tried })) if tried.contains(&net.nodes[host].addr)),
        "{:?}",
        net.events(again).last()
    );
    assert!(
        !net.events(again).iter().any(|e| matches!(
            e,
            Event::Joined(_) | Event::Audio { .. } | Event::Chat { .. }
        )),
        "the fresh identity got a seat"
    );
    assert_eq!(room_size(&net, host), 3);
    assert!(net.rosters_agree(rest));
    assert!(net.audio_from(ids[1], host) > 80);
    assert!(net.chats(host).iter().any(|c| c.2 == "after the removal"));
    // Every datagram of the room since the removal, fed to the removed member and to its
    // new identity (as an on-path observer holding their keys would): nothing opens.
    let packets: Vec<_> = net.captured[since..].to_vec();
    for who in [victim, again] {
        let before = net.events(who).len();
        for c in &packets {
            let now = net.now;
            net.nodes[who].ep.handle_datagram(now, c.from, &c.bytes);
        }
        net.pump(who);
        assert_eq!(
            net.events(who).len(),
            before,
            "node {who} got events from room traffic after the removal: {:?}",
            &net.events(who)[before..]
        );
    }
    // Its own links winding down is all the removed member noticed since.
    let after = &net.events(victim)[seen_at_removal..];
    assert!(
        after.iter().all(|e| matches!(e, Event::LinkDown(_))),
        "the removed member saw something after its removal: {after:?}"
    );
}

/// The new invites node `i` was handed (removals and revocations), in order.
fn new_invites(net: &Net, i: usize) -> Vec<(salon_proto::Invite, InviteChange)> {
    net.events(i)
        .iter()
        .filter_map(|e| match e {
            Event::InviteChanged { invite, reason } => Some((invite.clone(), *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn revoked_invite_admits_nobody_the_new_one_does_and_members_see_no_change() {
    let (mut net, ids) = room(41, 3, 0.0, 0.0, 5);
    let host = ids[0];
    let old = invite_of(&net, host);
    let before: Vec<_> = ids
        .iter()
        .map(|&i| net.nodes[i].ep.room().unwrap())
        .collect();
    let seen: Vec<usize> = ids.iter().map(|&i| net.events(i).len()).collect();
    // Only the host holds the invite.
    assert!(net.with(ids[1], |ep, now| ep.revoke_invite(now)).is_err());
    let new = net.with(host, |ep, now| ep.revoke_invite(now)).unwrap();
    assert_ne!(new.secret(), old.secret());
    assert_eq!(new.room_id, old.room_id);
    assert_eq!(new.host, old.host);
    assert_eq!(
        new_invites(&net, host),
        vec![(new.clone(), InviteChange::Revoked)]
    );
    assert_eq!(invite_of(&net, host).secret(), new.secret());
    let fast = Config {
        join_timeout: SECS(5),
        ..Config::default()
    };
    let stale = net.add_with("Stale", fast.clone());
    let since = net.captured.len();
    net.join(stale, &old).unwrap();
    net.run_for(SECS(7));
    assert_eq!(
        answered(&net, stale, since),
        0,
        "the host answered a revoked invite"
    );
    assert!(matches!(
        net.events(stale).last(),
        Some(Event::JoinFailed(JoinFailure::Unreachable { .. }))
    ));
    // Members' rosters are untouched: same epoch, same version, no event at all.
    for (n, &i) in ids.iter().enumerate() {
        assert_eq!(net.nodes[i].ep.room().unwrap(), before[n], "node {i}");
        if i != host {
            assert_eq!(
                &net.events(i)[seen[n]..],
                &[] as &[Event],
                "node {i} noticed the revocation"
            );
        }
    }
    assert!(net.mesh_up(&ids));
    // The new invite admits.
    let fresh = net.add_with("Fresh", fast);
    net.join(fresh, &new).unwrap();
    let all = [ids[0], ids[1], ids[2], fresh];
    assert!(net.run_until(SECS(10), |n| n.rosters_agree(&all)
        && room_size(n, host) == 4
        && n.mesh_up(&all)));
}
