#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use super::*;
use crate::frame::REPORT_TYPE;
use crate::handshake::InitPayload;
use crate::sim::Net;

/// Seals `plain` with `from`'s session to `to`, as `from` would send it.
fn sealed(net: &mut Net, from: usize, to: usize, plain: &[u8]) -> Vec<u8> {
    let peer = net.key(to);
    let link = net.nodes[from].ep.links.get_mut(&peer).unwrap();
    link.current.as_mut().unwrap().seal(plain).unwrap()
}

/// A plaintext of exactly the audio size whose last `tail.len()` bytes are `tail`,
/// after an audio frame filling the rest (so nothing pads a cut report with zeros).
fn ending_with(tail: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    let fill = wire::AUDIO_PLAINTEXT_LEN - frame::AUDIO_OVERHEAD - tail.len();
    frame::push_audio(&mut p, 7, &vec![1; fill]);
    p.extend_from_slice(tail);
    assert_eq!(p.len(), wire::AUDIO_PLAINTEXT_LEN);
    p
}

/// A join initiation to `invite`'s host from `joiner`, with a valid mac1; with
/// `ephemeral` set, built around that (small-order) ephemeral as an attacker holding
/// the invite could.
fn join_initiation(invite: &Invite, joiner: &Identity, ephemeral: Option<[u8; 32]>) -> Vec<u8> {
    let prologue = join_prologue(&invite.room_id.0);
    let keys = Keys {
        local: joiner,
        psk: invite.secret().as_bytes(),
        prologue: &prologue,
    };
    let payload = InitPayload {
        timestamp: 1,
        incarnation: 2,
    };
    let noise = match ephemeral {
        Some(e) => handshake::initiate_with_low_order_ephemeral(
            Kind::Join,
            &keys,
            &invite.host,
            &payload,
            e,
        )
        .unwrap(),
        None => {
            handshake::initiate(Kind::Join, &keys, &invite.host, &payload, [8; 32])
                .unwrap()
                .1
        }
    };
    let mut packet = wire::encode_init(77, &[0; MAC_LEN], &noise).unwrap();
    let mac1 = mac(
        &join_mac1_key(&invite.host, invite.secret().as_bytes()),
        &packet[..INIT_MAC1_OFFSET],
    );
    packet[INIT_MAC1_OFFSET..INIT_MAC2_OFFSET].copy_from_slice(&mac1);
    packet
}

#[test]
fn join_initiation_with_a_low_order_ephemeral_creates_no_state_and_draws_no_response() {
    let mut net = Net::new(41);
    let a = net.add("a");
    let invite = net.host(a, "Low order").unwrap();
    net.run_for(Duration::from_millis(100));
    while net.nodes[a].ep.poll_transmit().is_some() {}
    while net.nodes[a].ep.poll_event().is_some() {}
    let joiner = Identity::generate(&mut ChaCha20Rng::seed_from_u64(9));
    let from: SocketAddr = "192.0.2.9:4000".parse().unwrap();
    let order8 = [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ];
    let mut p_plus_one = [0xff; 32];
    p_plus_one[0] = 0xee;
    p_plus_one[31] = 0xff; // bit 255 set as well: still low order
    for e in [[0; 32], order8, p_plus_one] {
        let d = join_initiation(&invite, &joiner, Some(e));
        let now = net.now;
        let ep = &mut net.nodes[a].ep;
        let (room, timeout) = (ep.room(), ep.poll_timeout());
        ep.handle_datagram(now, from, &d);
        assert_eq!(ep.poll_transmit(), None, "answered {e:02x?}");
        assert_eq!(ep.poll_event(), None);
        assert_eq!(ep.room(), room);
        assert_eq!(ep.poll_timeout(), timeout);
        assert!(ep.recent_mac1.0.is_empty(), "mac1 remembered");
        assert!(
            ep.links.is_empty() && ep.indices.is_empty(),
            "state for {e:02x?}"
        );
    }
    // The same joiner with an ordinary ephemeral is answered: the refusals above came
    // from the ephemeral, not from the harness.
    let d = join_initiation(&invite, &joiner, None);
    let now = net.now;
    net.nodes[a].ep.handle_datagram(now, from, &d);
    assert!(net.nodes[a].ep.poll_transmit().is_some());
    assert!(net.nodes[a].ep.links.contains_key(&joiner.public_key()));
}

#[test]
fn authenticated_datagram_with_a_malformed_reception_report_is_dropped_without_state_change() {
    let mut net = Net::new(40);
    let (a, b) = (net.add("a"), net.add("b"));
    let invite = net.host(a, "Reports").unwrap();
    net.join(b, &invite).unwrap();
    assert!(
        net.run_until(Duration::from_secs(10), |n| n.rosters_agree(&[a, b])
            && n.mesh_up(&[a, b]))
    );
    let kb = net.key(b);
    // b on stage: the audio frame in front of each bad report would count if the
    // parser took the frames before a bad one and dropped only the report.
    net.bring_on_stage(a, b).unwrap();
    assert!(net.run_until(Duration::from_secs(10), |n| {
        n.nodes[a]
            .ep
            .room()
            .and_then(|r| r.members.iter().find(|m| m.key == kb).map(|m| m.role))
            == Some(Role::Speaker)
    }));
    while net.nodes[a].ep.poll_event().is_some() {}
    let from = net.nodes[b].addr;
    let malformed = [
        ending_with(&[REPORT_TYPE]),             // loss field missing
        ending_with(&[REPORT_TYPE, 0]),          // loss field cut in half
        ending_with(&[REPORT_TYPE, 0x03, 0xe9]), // 1001 ‰
        ending_with(&[REPORT_TYPE, 0xff, 0xff]), // 65535 ‰
        {
            let mut p = vec![REPORT_TYPE, 0x03, 0xe9];
            frame::push_ping(&mut p, 5);
            frame::pad(&mut p);
            p
        },
    ];
    for plain in malformed {
        let d = sealed(&mut net, b, a, &plain);
        let now = net.now;
        let ep = &mut net.nodes[a].ep;
        let (room, timeout, stats) = (ep.room(), ep.poll_timeout(), ep.link_stats(&kb));
        ep.handle_datagram(now, from, &d);
        assert_eq!(ep.poll_event(), None, "event from {plain:02x?}");
        assert_eq!(ep.poll_transmit(), None, "reply to {plain:02x?}");
        assert_eq!(ep.room(), room);
        assert_eq!(ep.poll_timeout(), timeout);
        assert_eq!(ep.link_stats(&kb), stats);
    }
    // The same path with a well-formed report does surface it, and the audio filler
    // with a valid tail counts: the cases above were rejected by the report parser,
    // not by the harness.
    let stats = net.nodes[a].ep.link_stats(&kb).map(|s| s.audio_received);
    let d = sealed(&mut net, b, a, &ending_with(&[]));
    let now = net.now;
    net.nodes[a].ep.handle_datagram(now, from, &d);
    assert_eq!(
        net.nodes[a].ep.link_stats(&kb).map(|s| s.audio_received),
        stats.map(|n| n + 1),
        "b's audio counts once b is on stage"
    );
    while net.nodes[a].ep.poll_event().is_some() {}
    let mut ok = Vec::new();
    frame::push_report(&mut ok, 1000);
    frame::pad(&mut ok);
    assert_eq!(ok[0], REPORT_TYPE);
    let d = sealed(&mut net, b, a, &ok);
    let now = net.now;
    net.nodes[a].ep.handle_datagram(now, from, &d);
    assert_eq!(
        net.nodes[a].ep.poll_event(),
        Some(Event::ReceptionReport {
            from: kb,
            loss_permille: 1000
        })
    );
}

/// A host and `n - 1` listeners, all joined and linked.
/// Who holds a pending stage invitation at the host `h`.
fn invited(net: &Net, h: usize) -> Vec<PublicKey> {
    net.nodes[h]
        .ep
        .room
        .as_ref()
        .map(|r| r.authority.invited())
        .unwrap_or_default()
}

fn stage_room(seed: u64, n: usize) -> (Net, Vec<usize>) {
    let mut net = Net::new(seed);
    let ids: Vec<usize> = (0..n).map(|i| net.add(&format!("m{i}"))).collect();
    let invite = net.host(ids[0], "Stage").unwrap();
    for &i in &ids[1..] {
        net.join(i, &invite).unwrap();
    }
    assert!(
        net.run_until(Duration::from_secs(20), |n| n.rosters_agree(&ids)
            && n.mesh_up(&ids))
    );
    (net, ids)
}

/// `who`'s role in `at`'s roster.
fn role(net: &Net, at: usize, who: usize) -> Option<Role> {
    let k = net.key(who);
    net.nodes[at]
        .ep
        .room()?
        .members
        .iter()
        .find(|m| m.key == k)
        .map(|m| m.role)
}

fn invitations(net: &Net, i: usize) -> Vec<PublicKey> {
    net.events(i)
        .iter()
        .filter_map(|e| match e {
            Event::StageInvited { by } => Some(*by),
            _ => None,
        })
        .collect()
}

/// `from` sends `msg` to `to` over their channel, bypassing every local check.
fn send_raw(net: &mut Net, from: usize, to: usize, msg: &Message) {
    let k = net.key(to);
    net.with(from, |ep, now| {
        ep.send_message(&k, msg).unwrap();
        ep.flush(now);
    });
}

#[test]
fn a_stage_invitation_alone_does_not_put_the_listener_on_stage() {
    let (mut net, ids) = stage_room(50, 3);
    let (h, l) = (ids[0], ids[1]);
    let kl = net.key(l);
    net.with(h, |ep, now| ep.moderate(now, kl, Action::InviteToStage))
        .unwrap();
    net.run_for(Duration::from_secs(5));
    assert_eq!(invitations(&net, l), vec![net.key(h)]);
    for &i in &ids {
        assert_eq!(role(&net, i, l), Some(Role::Listener), "at node {i}");
    }
    assert!(
        !net.events(l)
            .iter()
            .any(|e| matches!(e, Event::RoleChanged(_)))
    );
    assert_eq!(
        net.with(l, |ep, now| ep.send_audio(now, &[1; 50])),
        Err(CommandError::NotOnStage)
    );
    // Only the invitee hears of it.
    assert!(invitations(&net, ids[2]).is_empty());
}

#[test]
fn accepting_a_stage_invitation_makes_the_listener_a_speaker_everywhere() {
    let (mut net, ids) = stage_room(51, 3);
    let (h, l) = (ids[0], ids[1]);
    let kl = net.key(l);
    net.with(h, |ep, now| ep.moderate(now, kl, Action::InviteToStage))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| !invitations(n, l).is_empty()));
    net.with(l, |ep, now| ep.answer_stage_invite(now, true))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| {
        ids.iter().all(|&i| role(n, i, l) == Some(Role::Speaker))
    }));
    assert!(net.events(l).contains(&Event::RoleChanged(Role::Speaker)));
    // One invitation, one answer.
    assert_eq!(
        net.with(l, |ep, now| ep.answer_stage_invite(now, true)),
        Err(CommandError::NoStageInvite)
    );
}

#[test]
fn declining_a_stage_invitation_leaves_the_listener_in_the_audience_and_tells_the_host() {
    let (mut net, ids) = stage_room(52, 2);
    let (h, l) = (ids[0], ids[1]);
    let (kh, kl) = (net.key(h), net.key(l));
    net.with(h, |ep, now| ep.moderate(now, kl, Action::InviteToStage))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| !invitations(n, l).is_empty()));
    let version = net.nodes[h].ep.room.as_ref().unwrap().authority.version;
    net.with(l, |ep, now| ep.answer_stage_invite(now, false))
        .unwrap();
    let declined = Event::StageInviteDeclined { member: kl, by: kh };
    assert!(net.run_until(Duration::from_secs(5), |n| n.events(h).contains(&declined)));
    net.run_for(Duration::from_secs(2));
    assert_eq!(role(&net, h, l), Some(Role::Listener));
    assert_eq!(role(&net, l, l), Some(Role::Listener));
    assert_eq!(
        net.nodes[h].ep.room.as_ref().unwrap().authority.version,
        version
    );
    // The "no" used the invitation up: a "yes" sent after it does nothing.
    send_raw(&mut net, l, h, &Message::StageAnswer { accept: true });
    net.run_for(Duration::from_secs(2));
    assert_eq!(role(&net, h, l), Some(Role::Listener));
}

#[test]
fn a_stage_answer_without_an_invitation_changes_nothing() {
    let (mut net, ids) = stage_room(53, 2);
    let (h, l) = (ids[0], ids[1]);
    assert_eq!(
        net.with(l, |ep, now| ep.answer_stage_invite(now, true)),
        Err(CommandError::NoStageInvite)
    );
    let before = net.nodes[h].ep.room();
    let events = net.events(h).len();
    send_raw(&mut net, l, h, &Message::StageAnswer { accept: true });
    send_raw(&mut net, l, h, &Message::StageAnswer { accept: false });
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.nodes[h].ep.room(), before);
    assert_eq!(role(&net, l, l), Some(Role::Listener));
    assert!(
        !net.events(h)[events..]
            .iter()
            .any(|e| matches!(e, Event::RoomChanged(_) | Event::StageInviteDeclined { .. }))
    );
}

#[test]
fn an_expired_stage_invitation_lapses_out_loud_and_cannot_be_accepted() {
    let (mut net, ids) = stage_room(54, 2);
    let (h, l) = (ids[0], ids[1]);
    let (kh, kl) = (net.key(h), net.key(l));
    net.with(h, |ep, now| ep.moderate(now, kl, Action::InviteToStage))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| !invitations(n, l).is_empty()));
    let lapsed = Event::StageInviteLapsed { by: kh };
    let unanswered = Event::StageInviteUnanswered { member: kl, by: kh };
    net.run_for(STAGE_ANSWER_BY - Duration::from_secs(1));
    assert!(!net.events(l).contains(&lapsed), "lapsed early");
    net.run_for(STAGE_INVITE_LIFETIME - STAGE_ANSWER_BY + Duration::from_secs(1));
    // The listener's prompt goes, the host hears nobody answered: once each.
    assert_eq!(net.events(l).iter().filter(|e| **e == lapsed).count(), 1);
    assert_eq!(
        net.events(h).iter().filter(|e| **e == unanswered).count(),
        1
    );
    assert_eq!(
        net.with(l, |ep, now| ep.answer_stage_invite(now, true)),
        Err(CommandError::NoStageInvite)
    );
    // The host refuses it too (a listener whose clock runs late, or a forged answer).
    send_raw(&mut net, l, h, &Message::StageAnswer { accept: true });
    net.run_for(Duration::from_secs(2));
    assert_eq!(role(&net, h, l), Some(Role::Listener));
    assert_eq!(role(&net, l, l), Some(Role::Listener));
    assert!(invited(&net, h).is_empty());
}

/// The listener's deadline is the host's less a margin: a "yes" at the last moment
/// the listener allows still arrives in time.
#[test]
fn a_yes_just_before_the_listeners_deadline_still_puts_them_on_stage() {
    let (mut net, ids) = stage_room(56, 2);
    let (h, l) = (ids[0], ids[1]);
    let kl = net.key(l);
    net.with(h, |ep, now| ep.moderate(now, kl, Action::InviteToStage))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| !invitations(n, l).is_empty()));
    net.run_for(STAGE_ANSWER_BY - Duration::from_millis(100));
    net.with(l, |ep, now| ep.answer_stage_invite(now, true))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(3), |n| role(n, h, l)
        == Some(Role::Speaker)));
    assert!(
        !net.events(h)
            .iter()
            .any(|e| matches!(e, Event::StageInviteUnanswered { .. }))
    );
}

#[test]
fn a_listener_with_a_raised_hand_goes_straight_on_stage_without_an_invitation() {
    let (mut net, ids) = stage_room(55, 2);
    let (h, l) = (ids[0], ids[1]);
    let kl = net.key(l);
    net.with(l, |ep, now| ep.set_hand(now, true)).unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| {
        n.nodes[h]
            .ep
            .room()
            .is_some_and(|r| r.members.iter().any(|m| m.key == kl && m.hand_raised))
    }));
    net.with(h, |ep, now| ep.moderate(now, kl, Action::InviteToStage))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| {
        role(n, h, l) == Some(Role::Speaker) && role(n, l, l) == Some(Role::Speaker)
    }));
    assert!(invitations(&net, l).is_empty());
}

#[test]
fn a_moderators_invitation_names_them_and_a_newer_one_replaces_it() {
    let (mut net, ids) = stage_room(56, 3);
    let (h, m, l) = (ids[0], ids[1], ids[2]);
    let (kh, km, kl) = (net.key(h), net.key(m), net.key(l));
    net.with(h, |ep, now| ep.moderate(now, km, Action::MakeModerator))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| role(n, m, m)
        == Some(Role::Moderator)));
    net.with(m, |ep, now| ep.moderate(now, kl, Action::InviteToStage))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| invitations(n, l) == vec![km]));
    net.with(h, |ep, now| ep.moderate(now, kl, Action::InviteToStage))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| invitations(n, l)
        == vec![km, kh]));
    let pending = invited(&net, h);
    assert_eq!(pending.len(), 1, "one invitation per member");
    net.with(l, |ep, now| ep.answer_stage_invite(now, false))
        .unwrap();
    let declined = Event::StageInviteDeclined { member: kl, by: kh };
    assert!(net.run_until(Duration::from_secs(5), |n| n.events(h).contains(&declined)));
    assert_eq!(role(&net, h, l), Some(Role::Listener));
}

#[test]
fn an_invitation_is_void_once_the_listener_is_no_longer_a_listener() {
    let (mut net, ids) = stage_room(57, 2);
    let (h, l) = (ids[0], ids[1]);
    let kl = net.key(l);
    net.with(h, |ep, now| ep.moderate(now, kl, Action::InviteToStage))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| !invitations(n, l).is_empty()));
    net.with(h, |ep, now| ep.moderate(now, kl, Action::MakeModerator))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| role(n, l, l)
        == Some(Role::Moderator)));
    assert_eq!(
        net.with(l, |ep, now| ep.answer_stage_invite(now, true)),
        Err(CommandError::NoStageInvite)
    );
    // A "yes" that gets through anyway does not turn the moderator into a speaker.
    send_raw(&mut net, l, h, &Message::StageAnswer { accept: true });
    net.run_for(Duration::from_secs(2));
    assert_eq!(role(&net, h, l), Some(Role::Moderator));
}

#[test]
fn a_stage_invite_not_from_the_host_or_to_a_speaker_is_dropped() {
    let (mut net, ids) = stage_room(58, 3);
    let (h, a, b) = (ids[0], ids[1], ids[2]);
    let (kh, ka) = (net.key(h), net.key(a));
    // A member forging the host's invitation: not from the host, so not seen.
    send_raw(&mut net, a, b, &Message::StageInvite { by: kh });
    // The host naming someone who may not moderate: dropped.
    send_raw(&mut net, h, b, &Message::StageInvite { by: ka });
    net.run_for(Duration::from_secs(2));
    assert!(invitations(&net, b).is_empty());
    assert_eq!(
        net.with(b, |ep, now| ep.answer_stage_invite(now, true)),
        Err(CommandError::NoStageInvite)
    );
    // A speaker has nothing to be invited to.
    net.bring_on_stage(h, a).unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| role(n, a, a)
        == Some(Role::Speaker)));
    let seen = invitations(&net, a).len();
    send_raw(&mut net, h, a, &Message::StageInvite { by: kh });
    net.run_for(Duration::from_secs(2));
    assert_eq!(invitations(&net, a).len(), seen);
    // The control: the same message to a listener from the host is seen.
    send_raw(&mut net, h, b, &Message::StageInvite { by: kh });
    net.run_for(Duration::from_secs(2));
    assert_eq!(invitations(&net, b), vec![kh]);
}

#[test]
fn a_departed_listeners_invitation_is_forgotten_and_a_lapsed_one_goes_at_its_deadline() {
    let (mut net, ids) = stage_room(59, 4);
    let (h, a, b, c) = (ids[0], ids[1], ids[2], ids[3]);
    let pending = |net: &Net| invited(net, h).len();
    for who in [a, b] {
        let k = net.key(who);
        net.with(h, |ep, now| ep.moderate(now, k, Action::InviteToStage))
            .unwrap();
    }
    assert_eq!(pending(&net), 2);
    net.with(a, |ep, now| ep.leave(now)).unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| pending(n) == 1));
    // b's invitation lapses at its deadline, and the host is told of b only (a left).
    net.run_for(STAGE_INVITE_LIFETIME);
    assert_eq!(pending(&net), 0);
    let unanswered: Vec<PublicKey> = net
        .events(h)
        .iter()
        .filter_map(|e| match e {
            Event::StageInviteUnanswered { member, .. } => Some(*member),
            _ => None,
        })
        .collect();
    assert_eq!(unanswered, vec![net.key(b)]);
    let kc = net.key(c);
    net.with(h, |ep, now| ep.moderate(now, kc, Action::InviteToStage))
        .unwrap();
    assert_eq!(invited(&net, h), vec![kc]);
}

/// A link's round trip is the pings' samples smoothed (RFC 6298), so one slow ping moves
/// the figure an eighth of the way instead of replacing it.
#[test]
fn one_slow_ping_moves_the_links_round_trip_an_eighth_of_the_way() {
    let (mut net, ids) = stage_room(61, 2);
    let (a, b) = (ids[0], ids[1]);
    let peer = net.key(b);
    let rtt = |net: &mut Net| net.with(a, |ep, _| ep.link_stats(&peer).and_then(|s| s.rtt));
    net.run_for(Duration::from_secs(30));
    let steady = rtt(&mut net).expect("pings answered");
    assert!(
        steady.abs_diff(Duration::from_millis(20)) < Duration::from_millis(5),
        "{steady:?} on a 10 ms each way network"
    );
    net.latency = Duration::from_millis(200);
    assert!(net.run_until(Duration::from_secs(60), |n| {
        n.nodes[a].ep.link_stats(&peer).and_then(|s| s.rtt) != Some(steady)
    }));
    net.latency = Duration::from_millis(10);
    let moved = rtt(&mut net).expect("pings answered");
    // A raw sample would say 400 ms; an eighth of the way from ~20 ms is ~67 ms.
    assert!(
        moved > steady && moved < Duration::from_millis(100),
        "{moved:?} after one 400 ms ping from {steady:?}"
    );
}
