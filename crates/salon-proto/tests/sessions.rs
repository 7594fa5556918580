//! Transport sessions on the simulated network: what a receiver accepts under which
//! session.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use salon_proto::frame;
use salon_proto::sim::Net;
use salon_proto::{Config, Event, Role};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// One audio frame from a speaker, padded as it would be sent.
fn audio(seq: u32) -> Vec<u8> {
    let mut p = Vec::new();
    frame::push_audio(&mut p, seq, &[7; 40]);
    frame::pad(&mut p);
    p
}

#[test]
fn transport_datagram_under_a_session_older_than_reject_after_is_dropped_without_state_change() {
    let mut net = Net::new(77);
    let (a, b) = (net.add("host"), net.add("speaker"));
    let invite = net.host(a, "Expiry").unwrap();
    net.join(b, &invite).unwrap();
    assert!(net.run_until(SECS(10), |n| n.rosters_agree(&[a, b]) && n.mesh_up(&[a, b])));
    let (ka, kb) = (net.key(a), net.key(b));
    // b on stage, so its audio counts at a and surfaces as an event.
    net.bring_on_stage(a, b).unwrap();
    assert!(net.run_until(SECS(10), |n| {
        n.nodes[a]
            .ep
            .room()
            .and_then(|r| r.members.iter().find(|m| m.key == kb).map(|m| m.role))
            == Some(Role::Speaker)
    }));
    let from = net.nodes[b].addr;
    let reject_after = Config::default().reject_after;
    let ep = &mut net.nodes[a].ep;
    while ep.poll_event().is_some() {}
    while ep.poll_transmit().is_some() {}

    // Sealed under b's current session (made before `net.now`), delivered once that
    // session is reject_after old, before any timer at a could drop it.
    let late = net.now + reject_after;
    let old = net.nodes[b].ep.seal_for_test(&ka, &audio(1000)).unwrap();
    let ep = &mut net.nodes[a].ep;
    let (room, timeout, stats) = (ep.room(), ep.poll_timeout(), ep.link_stats(&kb));
    ep.handle_datagram(late, from, &old);
    assert_eq!(
        ep.poll_event(),
        None,
        "the expired session delivered something"
    );
    assert_eq!(ep.poll_transmit(), None);
    assert_eq!(ep.room(), room);
    assert_eq!(ep.poll_timeout(), timeout);
    assert_eq!(ep.link_stats(&kb), stats);

    // The same datagram while the session is young is taken: the drop above came from
    // the session's age, not from the harness (and it did not mark the replay window).
    let now = net.now;
    ep.handle_datagram(now, from, &old);
    assert!(
        std::iter::from_fn(|| ep.poll_event())
            .any(|e| matches!(e, Event::Audio { from, seq: 1000, .. } if from == kb)),
        "audio from a live session"
    );
    assert_eq!(
        ep.link_stats(&kb).map(|s| s.audio_received),
        stats.map(|s| s.audio_received + 1)
    );
}
