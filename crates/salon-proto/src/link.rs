//! Everything we keep about one peer: its sessions (current, previous, unconfirmed next),
//! a handshake in flight, the reliable channel, addresses, liveness and statistics.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use snow::HandshakeState;

use crate::channel::{ChannelConfig, ReliableChannel};
use crate::event::LinkStats;
use crate::handshake::Kind;
use crate::identity::PublicKey;
use crate::path::{Birthday, Challenge, Hop, MAIN_SOCKET, Path, RelayPath};
use crate::rtt::RttEstimator;
use crate::session::Session;

/// Path challenges remembered per link.
const MAX_CHALLENGES: usize = 16;

/// A handshake we initiated and are waiting on.
pub struct Pending {
    /// Join or link.
    pub kind: Kind,
    /// Noise state after message 1.
    pub state: HandshakeState,
    /// Our index (the response's receiver field).
    pub local_index: u32,
    /// The mac1 key the initiation used (cookie replies are sealed under a key derived from it).
    pub mac1_key: [u8; 32],
    /// mac1 of the last initiation (authenticated data of a cookie reply).
    pub mac1: [u8; 16],
    /// Epoch the handshake is keyed for (links).
    pub epoch: u64,
    /// What rebuilds the identical state if a forged response consumed it: the seed,
    /// payload, PSK and prologue of the initiation.
    pub rebuild: Rebuild,
    /// The initiation datagram, resent at once when the peer's own initiation shows a
    /// path to it (simultaneous open).
    pub packet: Vec<u8>,
}

/// Inputs of an initiation, kept so that `handshake::initiate` can recreate the exact
/// same Noise state (it is deterministic) after a bogus response destroyed it. An
/// on-path attacker who sees our index then cannot kill a handshake with one datagram.
pub struct Rebuild {
    /// Seed of the ephemeral key (wiped with the handshake, like the PSK).
    pub(crate) seed: crate::secret::Secret32,
    /// Message-1 payload.
    pub payload: crate::handshake::InitPayload,
    /// PSK (a copy of the room or epoch secret, wiped with the handshake).
    pub(crate) psk: crate::secret::Secret32,
    /// Prologue.
    pub prologue: Vec<u8>,
}

/// Retry schedule of handshakes to one peer.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts made in this series.
    pub attempts: u32,
    /// When to try again.
    pub next: Instant,
}

/// One peer.
pub struct Link {
    /// Session in use for sending.
    pub current: Option<Session>,
    /// The session before the last handshake, still accepted for in-flight packets.
    pub previous: Option<Session>,
    /// A session we answered but the peer has not used yet (responder side).
    pub next: Option<Session>,
    /// A handshake we started.
    pub pending: Option<Pending>,
    /// When to (re)send an initiation, if we are the side that initiates.
    pub retry: Option<Retry>,
    /// Cookie from the peer's cookie reply, with when it arrived (valid two minutes).
    pub cookie: Option<([u8; 16], Instant)>,
    /// Reliable ordered control messages.
    pub channel: ReliableChannel,
    /// The peer's validated direct address: where we send.
    pub addr: Option<SocketAddr>,
    /// Our socket for `addr`.
    pub socket: u16,
    /// Addresses to try when no datagram has arrived yet.
    pub candidates: Vec<SocketAddr>,
    /// The peer's incarnation from the last confirmed handshake.
    pub incarnation: Option<u64>,
    /// The incarnation claimed by the unconfirmed `next` session; applied only when the
    /// peer confirms it (message-1 payloads are open to key-compromise impersonation).
    pub next_incarnation: Option<u64>,
    /// Last authenticated datagram received.
    pub last_recv: Instant,
    /// Last datagram sent.
    pub last_send: Instant,
    /// Outstanding ping: id and when it left.
    pub ping: Option<(u32, Instant)>,
    /// The pings' round trips, smoothed (RFC 6298): what `stats.rtt` shows.
    pub rtt: RttEstimator,
    /// Next ping id.
    pub next_ping_id: u32,
    /// Statistics for the UI.
    pub stats: LinkStats,
    /// Highest audio sequence seen (for loss counting).
    pub audio_high: Option<u32>,
    /// End of the current reception-report interval; set when the first audio frame
    /// from the peer arrives.
    pub report_next: Option<Instant>,
    /// `(audio_received, audio_lost)` at the start of the current report interval.
    pub report_base: (u64, u64),
    /// Drop the link at this time (after a goodbye has had time to arrive).
    pub closing: Option<Instant>,
    /// Whether `LinkUp` was reported and no `LinkDown` since.
    pub reported_up: bool,
    /// Last authenticated datagram that arrived straight from `addr`.
    pub direct_recv: Option<Instant>,
    /// A path through another member, once the direct one failed.
    pub relay: Option<RelayPath>,
    /// Relays that did not confirm in time, skipped when choosing the next.
    pub relay_tried: Vec<PublicKey>,
    /// Path challenges in flight (the newest few).
    pub challenges: VecDeque<Challenge>,
    /// Last round trip proven on the direct path: a handshake over it, or a path response
    /// from it. Receiving alone does not prove the peer hears us.
    pub direct_confirmed: Option<Instant>,
    /// Since when the link has had no session (none yet, or lost); `None` while up.
    pub down_since: Option<Instant>,
    /// When to look at the path again (relay, probes, unreachable report).
    pub path_check: Option<Instant>,
    /// Whether this outage was reported as unreachable.
    pub unreachable_reported: bool,
    /// The path last reported to the application.
    pub reported_path: Option<Path>,
    /// A birthday attempt against a symmetric NAT, running or done.
    pub birthday: Option<Birthday>,
    /// When we last probed the peer's addresses straight.
    pub last_probe: Option<Instant>,
    /// A round-trip proof of the direct path is due: the next keepalive carries it.
    pub confirm_wanted: bool,
    /// The peer's proof of our direct path, to answer in the next keepalive.
    pub answer_wanted: Option<u64>,
    /// Last authenticated datagram that came through a relay.
    pub relay_recv: Option<Instant>,
    /// Since when the peer has been sending through the relay without a break.
    pub relay_since: Option<Instant>,
    /// A ping from the peer to answer in our next slot (the latest one), and when it came.
    pub pong_owed: Option<(u32, Instant)>,
    /// A reception report to carry in our next slot.
    pub report_owed: Option<u16>,
    /// When our next ping is due (it rides in a slot; one a keepalive interval).
    pub next_ping: Instant,
    /// Audio frames sent in a row since a slot last went to control (`schedule::STEAL_GAP`).
    pub audio_run: u32,
    /// A roster update for this member did not fit its channel: the next slot with room
    /// sends the whole roster instead (host only).
    pub roster_resync: bool,
}

/// A reliable channel whose segments fit a slot (`schedule::SEGMENT_DATA`).
fn slot_channel() -> ReliableChannel {
    ReliableChannel::new(ChannelConfig {
        max_segment_data: crate::schedule::SEGMENT_DATA,
        ..ChannelConfig::default()
    })
}

impl Link {
    /// A link with no session yet.
    pub fn new(now: Instant) -> Self {
        Self {
            current: None,
            previous: None,
            next: None,
            pending: None,
            retry: None,
            cookie: None,
            channel: slot_channel(),
            addr: None,
            socket: MAIN_SOCKET,
            candidates: Vec::new(),
            incarnation: None,
            next_incarnation: None,
            last_recv: now,
            last_send: now,
            ping: None,
            rtt: RttEstimator::default(),
            next_ping_id: 1,
            stats: LinkStats::default(),
            audio_high: None,
            report_next: None,
            report_base: (0, 0),
            closing: None,
            reported_up: false,
            direct_recv: None,
            relay: None,
            relay_tried: Vec::new(),
            challenges: VecDeque::new(),
            direct_confirmed: None,
            down_since: Some(now),
            path_check: Some(now),
            unreachable_reported: false,
            reported_path: None,
            birthday: None,
            last_probe: None,
            confirm_wanted: false,
            answer_wanted: None,
            relay_recv: None,
            relay_since: None,
            pong_owed: None,
            report_owed: None,
            next_ping: now,
            audio_run: 0,
            roster_resync: false,
        }
    }

    /// Session for sending: the current one if usable.
    pub fn sendable(&mut self, now: Instant, reject_after: Duration) -> Option<&mut Session> {
        self.current
            .as_mut()
            .filter(|s| !s.expired(now, reject_after))
    }

    /// Whether control is waiting for a slot: what a stage member's link may give up an
    /// audio frame for.
    pub fn control_waiting(&self, now: Instant) -> bool {
        // A pong only rides along: the answer says how long it waited.
        self.report_owed.is_some()
            || self.answer_wanted.is_some()
            || self.confirm_wanted
            || self.channel.wants_to_send(now)
    }

    /// Whether a session can carry data now.
    pub fn is_up(&self, now: Instant, reject_after: Duration) -> bool {
        self.current
            .as_ref()
            .is_some_and(|s| !s.expired(now, reject_after))
    }

    /// Installs a session we initiated (confirmed: the response proved the peer).
    pub fn install_initiated(&mut self, s: Session) {
        self.previous = self.current.take();
        self.current = Some(s);
        self.down_since = None;
        self.unreachable_reported = false;
    }

    /// Promotes the responder-side `next` session once the peer used it.
    pub fn promote_next(&mut self) {
        if let Some(n) = self.next.take() {
            self.previous = self.current.take();
            self.current = Some(n);
            self.down_since = None;
            self.unreachable_reported = false;
        }
    }

    /// Opens a datagram that came through a relay: its index names the link, not the
    /// session, so each session younger than `reject_after` is tried (a failed try
    /// changes nothing).
    pub fn open_any(
        &mut self,
        now: Instant,
        reject_after: Duration,
        counter: u64,
        ciphertext: &[u8],
    ) -> Option<(Vec<u8>, Slot)> {
        for (slot, s) in [
            (Slot::Current, self.current.as_mut()),
            (Slot::Next, self.next.as_mut()),
            (Slot::Previous, self.previous.as_mut()),
        ] {
            if let Some(s) = s
                && !s.expired(now, reject_after)
                && let Ok(plain) = s.open(counter, ciphertext)
            {
                return Some((plain, slot));
            }
        }
        None
    }

    /// The validated direct path, if any.
    pub fn direct_hop(&self) -> Option<Hop> {
        self.addr.map(|addr| Hop {
            addr,
            socket: self.socket,
        })
    }

    /// Makes `hop` the direct path: a round trip just went over it (a handshake, or a
    /// challenge answered from it).
    pub fn set_direct(&mut self, hop: Hop, now: Instant) {
        self.addr = Some(hop.addr);
        self.socket = hop.socket;
        self.direct_recv = Some(now);
        self.direct_confirmed = Some(now);
    }

    /// Every way to try the peer straight: the validated path, then each candidate
    /// address through our main socket.
    pub fn direct_hops(&self) -> Vec<Hop> {
        let mut hops: Vec<Hop> = self.direct_hop().into_iter().collect();
        for c in &self.candidates {
            if !hops.iter().any(|h| h.addr == *c) {
                hops.push(Hop::main(*c));
            }
        }
        hops
    }

    /// Remembers a challenge sent, forgetting the oldest beyond a few (probes go to
    /// several addresses at once).
    pub fn remember_challenge(&mut self, c: Challenge) {
        if self.challenges.len() >= MAX_CHALLENGES {
            self.challenges.pop_front();
        }
        self.challenges.push_back(c);
    }

    /// Whether the direct path carried an authenticated datagram within `window`.
    pub fn direct_fresh(&self, now: Instant, window: Duration) -> bool {
        self.addr.is_some()
            && self
                .direct_recv
                .is_some_and(|t| now.saturating_duration_since(t) < window)
    }

    /// All local indices this link owns (to unregister them).
    pub fn indices(&self) -> Vec<u32> {
        let mut v: Vec<u32> = [&self.current, &self.previous, &self.next]
            .into_iter()
            .flatten()
            .map(|s| s.local_index)
            .collect();
        if let Some(p) = &self.pending {
            v.push(p.local_index);
        }
        v
    }

    /// The session with this local index.
    pub fn session_mut(&mut self, index: u32) -> Option<(&mut Session, Slot)> {
        if let Some(s) = self.current.as_mut().filter(|s| s.local_index == index) {
            return Some((s, Slot::Current));
        }
        if let Some(s) = self.next.as_mut().filter(|s| s.local_index == index) {
            return Some((s, Slot::Next));
        }
        if let Some(s) = self.previous.as_mut().filter(|s| s.local_index == index) {
            return Some((s, Slot::Previous));
        }
        None
    }

    /// Counts one audio frame with sequence number `seq` from the peer, and starts the
    /// reception-report clock with the first one.
    pub fn count_audio(&mut self, now: Instant, seq: u32, report_interval: Duration) {
        self.account_audio(now, seq, report_interval, true);
    }

    /// Notes that the peer's audio frame `seq` gave its slot to control: neither
    /// received nor lost (a gap it filled was counted lost and is cancelled).
    pub fn skip_audio(&mut self, now: Instant, seq: u32, report_interval: Duration) {
        self.account_audio(now, seq, report_interval, false);
    }

    fn account_audio(&mut self, now: Instant, seq: u32, report_interval: Duration, received: bool) {
        if self.report_next.is_none() {
            self.report_next = Some(now + report_interval);
            self.report_base = (self.stats.audio_received, self.stats.audio_lost);
        }
        if received {
            self.stats.audio_received += 1;
        } else {
            self.stats.audio_skipped += 1;
        }
        let st = &mut self.stats;
        match self.audio_high {
            Some(h) if seq.wrapping_sub(h) as i32 > 0 => {
                st.audio_lost += u64::from(seq.wrapping_sub(h) - 1);
                self.audio_high = Some(seq);
            }
            Some(_) => st.audio_lost = st.audio_lost.saturating_sub(1),
            None => self.audio_high = Some(seq),
        }
    }

    /// If the report interval ended at `now`, starts the next one and returns the loss
    /// (per thousand) over the one that ended, or `None` when no audio was expected in it.
    pub fn take_report(&mut self, now: Instant, report_interval: Duration) -> Option<u16> {
        let next = self.report_next?;
        if now < next {
            return None;
        }
        let (received, lost) = (self.stats.audio_received, self.stats.audio_lost);
        let (base_received, base_lost) = self.report_base;
        self.report_base = (received, lost);
        self.report_next = Some(now + report_interval);
        loss_permille(
            received.saturating_sub(base_received),
            lost.saturating_sub(base_lost),
        )
    }

    /// Restarts the reliable channel (the peer restarted and lost its side of it).
    pub fn reset_channel(&mut self) {
        self.channel = slot_channel();
        self.audio_high = None;
    }
}

/// Lost frames per thousand expected, rounded to nearest; `None` when nothing was expected.
pub fn loss_permille(received: u64, lost: u64) -> Option<u16> {
    let expected = received.saturating_add(lost);
    if expected == 0 {
        return None;
    }
    let permille = lost.saturating_mul(1000).saturating_add(expected / 2) / expected;
    Some(permille.min(u64::from(crate::frame::MAX_LOSS_PERMILLE)) as u16)
}

/// Which of a link's sessions a datagram used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The current session.
    Current,
    /// The unconfirmed responder session.
    Next,
    /// The session before the last rekey.
    Previous,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> (Link, Instant) {
        let now = Instant::now();
        (Link::new(now), now)
    }

    /// Both ends of a finished link handshake, made at `now`.
    fn session_pair(now: Instant) -> (Session, Session) {
        use crate::handshake::{self, InitPayload, Keys, Kind, ResponsePayload, Status};
        use rand_chacha::ChaCha20Rng;
        use rand_core::SeedableRng;
        let a = crate::identity::Identity::generate(&mut ChaCha20Rng::from_seed([1; 32]));
        let b = crate::identity::Identity::generate(&mut ChaCha20Rng::from_seed([2; 32]));
        let keys = |local| Keys {
            local,
            psk: &[3; 32],
            prologue: b"p",
        };
        let payload = InitPayload {
            timestamp: 1,
            incarnation: 1,
        };
        let (hs, m1) =
            handshake::initiate(Kind::Link, &keys(&a), &b.public_key(), &payload, [4; 32]).unwrap();
        let (rhs, _, _) =
            handshake::accept(Kind::Link, &keys(&b), Some(&a.public_key()), &m1, [5; 32]).unwrap();
        let resp = ResponsePayload {
            status: Status::Accepted,
            incarnation: 2,
            timestamp: 0,
        };
        let (rt, m2) = handshake::respond(rhs, &resp).unwrap();
        let (it, _) = handshake::complete(hs, &m2).unwrap();
        (
            Session::new(it, 10, 20, true, now),
            Session::new(rt, 20, 10, false, now),
        )
    }

    #[test]
    fn relayed_datagram_under_a_session_older_than_reject_after_is_not_opened() {
        let (mut l, t0) = link();
        let reject_after = Duration::from_secs(180);
        let (mut sender, receiver) = session_pair(t0);
        l.previous = Some(receiver);
        let d = sender.seal(&[0; 32]).unwrap();
        let (counter, ct) = (
            u64::from_be_bytes(d[5..13].try_into().unwrap()),
            &d[crate::wire::TRANSPORT_HEADER_LEN..],
        );
        assert!(
            l.open_any(t0 + reject_after, reject_after, counter, ct)
                .is_none()
        );
        // Refused before decryption: the counter is still free while the session is young.
        let opened = l.open_any(t0 + reject_after / 2, reject_after, counter, ct);
        assert_eq!(
            opened.map(|(p, slot)| (p.len(), slot)),
            Some((32, Slot::Previous))
        );
    }

    #[test]
    fn loss_permille_rounds_and_needs_expected_audio() {
        assert_eq!(loss_permille(0, 0), None);
        assert_eq!(loss_permille(80, 20), Some(200));
        assert_eq!(loss_permille(100, 0), Some(0));
        assert_eq!(loss_permille(0, 5), Some(1000));
        assert_eq!(loss_permille(2, 1), Some(333));
        assert_eq!(loss_permille(1, 2), Some(667));
    }

    #[test]
    fn report_covers_only_the_interval_that_ended() {
        let (mut l, t0) = link();
        let iv = Duration::from_secs(2);
        assert_eq!(l.take_report(t0, iv), None, "no audio yet, no clock");
        // Interval 1: seq 1..=10 with 3 and 4 missing: 8 received, 2 lost.
        for seq in (1..=10).filter(|s| *s != 3 && *s != 4) {
            l.count_audio(t0, seq, iv);
        }
        assert_eq!(
            l.take_report(t0 + Duration::from_secs(1), iv),
            None,
            "not due"
        );
        let t1 = t0 + iv;
        assert_eq!(l.take_report(t1, iv), Some(200));
        // Interval 2: seq 11..=20, all there.
        for seq in 11..=20 {
            l.count_audio(t1, seq, iv);
        }
        assert_eq!(l.take_report(t1 + iv, iv), Some(0));
        // Interval 3: nothing arrives: nothing to report.
        assert_eq!(l.take_report(t1 + iv * 2, iv), None);
    }
}
