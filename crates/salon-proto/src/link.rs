//! Everything we keep about one peer: its sessions (current, previous, unconfirmed next),
//! a handshake in flight, the reliable channel, addresses, liveness and statistics.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use snow::HandshakeState;

use crate::channel::{ChannelConfig, ReliableChannel};
use crate::event::LinkStats;
use crate::handshake::Kind;
use crate::identity::PublicKey;
use crate::session::Session;

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
}

/// Inputs of an initiation, kept so that `handshake::initiate` can recreate the exact
/// same Noise state (it is deterministic) after a bogus response destroyed it. An
/// on-path attacker who sees our index then cannot kill a handshake with one datagram.
pub struct Rebuild {
    /// Seed of the ephemeral key.
    pub seed: [u8; 32],
    /// Message-1 payload.
    pub payload: crate::handshake::InitPayload,
    /// PSK.
    pub psk: [u8; 32],
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
    /// The peer's static key.
    pub peer: PublicKey,
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
    /// Where the last authenticated datagram came from: where we send.
    pub addr: Option<SocketAddr>,
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
    /// Next ping id.
    pub next_ping_id: u32,
    /// Statistics for the UI.
    pub stats: LinkStats,
    /// Highest audio sequence seen (for loss counting).
    pub audio_high: Option<u32>,
    /// Drop the link at this time (after a goodbye has had time to arrive).
    pub closing: Option<Instant>,
    /// Whether `LinkUp` was reported and no `LinkDown` since.
    pub reported_up: bool,
}

impl Link {
    /// A link with no session yet.
    pub fn new(peer: PublicKey, now: Instant) -> Self {
        Self {
            peer,
            current: None,
            previous: None,
            next: None,
            pending: None,
            retry: None,
            cookie: None,
            channel: ReliableChannel::new(ChannelConfig::default()),
            addr: None,
            candidates: Vec::new(),
            incarnation: None,
            next_incarnation: None,
            last_recv: now,
            last_send: now,
            ping: None,
            next_ping_id: 1,
            stats: LinkStats::default(),
            audio_high: None,
            closing: None,
            reported_up: false,
        }
    }

    /// Session for sending: the current one if usable.
    pub fn sendable(&mut self, now: Instant, reject_after: Duration) -> Option<&mut Session> {
        self.current
            .as_mut()
            .filter(|s| now.saturating_duration_since(s.created) < reject_after)
    }

    /// Whether a session can carry data now.
    pub fn is_up(&self, now: Instant, reject_after: Duration) -> bool {
        self.current
            .as_ref()
            .is_some_and(|s| now.saturating_duration_since(s.created) < reject_after)
    }

    /// Installs a session we initiated (confirmed: the response proved the peer).
    pub fn install_initiated(&mut self, s: Session) {
        self.previous = self.current.take();
        self.current = Some(s);
    }

    /// Promotes the responder-side `next` session once the peer used it.
    pub fn promote_next(&mut self) {
        if let Some(n) = self.next.take() {
            self.previous = self.current.take();
            self.current = Some(n);
        }
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

    /// Where to send: the last authenticated address, else the first candidate.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.addr.or_else(|| self.candidates.first().copied())
    }

    /// Restarts the reliable channel (the peer restarted and lost its side of it).
    pub fn reset_channel(&mut self) {
        self.channel = ReliableChannel::new(ChannelConfig::default());
        self.audio_high = None;
    }
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
