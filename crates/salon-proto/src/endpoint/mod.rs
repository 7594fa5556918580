//! The protocol state machine of one node: one UDP socket's worth of peers, at most one
//! room at a time.
//!
//! Shaped like `quinn-proto`: the driver feeds [`Endpoint::handle_datagram`] and
//! [`Endpoint::handle_timeout`] with `now`, gives commands (host, join, chat, …), and
//! drains [`Endpoint::poll_transmit`], [`Endpoint::poll_event`] and
//! [`Endpoint::poll_timeout`]. No clock reads, no sockets, no OS randomness: the same seed
//! and inputs give the same outputs.
//!
//! The parts, one file each: commands (what a person asks for), handshakes,
//! transport (datagrams in, slots out), control messages (carrying out what the room
//! authority decides), paths and relays, and the timers, all adding to one
//! `impl Endpoint` over the state declared here; the room as this node holds it is
//! `room`. The room authority itself (the roster and its rules) is a state machine of
//! its own, `crate::authority`, with no links or datagrams.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::allowance::{Allowance, CHAT_BURST, CHAT_EVERY};
#[cfg(test)]
use crate::authority::STAGE_INVITE_LIFETIME;
use crate::authority::{Adopted, Authority, Decision, Verdict};
use crate::config::{Config, UNIFORM_RATE_MAX_MEMBERS};
use crate::cookie::{CookieJar, LoadMonitor, RateLimiter, mac, mac2, open_reply};
use crate::error::CommandError;
use crate::event::{Event, InviteChange, JoinFailure, LeftReason, LinkStats, RoomView};
use crate::frame::{self, Frame, MAX_AUDIO_FRAME};
use crate::handshake::{
    self, InitPayload, Keys, Kind, ResponsePayload, Status, cookie_key, join_mac1_key,
    join_prologue, link_hint, link_mac1_key, link_prologue,
};
use crate::identity::{Identity, PublicKey, is_low_order};
use crate::invite::{Candidate, CandidateKind, Invite, RoomId};
use crate::link::{Link, Pending, Rebuild, Retry, Slot};
use crate::message::{Action, MAX_CHAT_LEN, Message, RoomState};
use crate::path::{
    BIRTHDAY_ATTEMPTS, BIRTHDAY_BURST, BIRTHDAY_LOW_PORT, BIRTHDAY_PROBES, BIRTHDAY_RETRY,
    BIRTHDAY_SOCKETS, BIRTHDAY_SPRAY_EVERY, BIRTHDAY_TICK, BIRTHDAY_WINDOW, Birthday, BirthdayRole,
    Challenge, Forward, Hop, MAIN_SOCKET, Origin, Path, RelayPath,
};
use crate::roster::{Member, Role, valid_name, valid_title};
use crate::safety_code::room_safety_code;
use crate::schedule::{AUDIO_QUEUE, STEAL_GAP, Schedule};
use crate::secret::Secret32;
use crate::session::{REKEY_AFTER_MESSAGES, Session};
use crate::wire::{self, INIT_MAC1_OFFSET, INIT_MAC2_OFFSET, MAC_LEN, Packet};

// One file per part of the state machine; each adds to `impl Endpoint`.
mod commands;
mod control;
mod handshakes;
mod log;
mod paths;
mod room;
mod timers;
mod transport;

use room::{Phase, Room};

/// How long a cookie from a cookie reply stays usable (the responder rotates its secret
/// every two minutes).
const COOKIE_LIFETIME: Duration = Duration::from_secs(120);
/// How many recent initiation mac1 values we remember. mac1 covers the fresh ephemeral
/// key, so a repeat is a replay: dropping it before any other work means a replayed
/// initiation gets no byte back, not even a cookie reply under load.
const RECENT_MAC1: usize = 4096;
/// A direct path's round trip is proven (a challenge) this often, so that the lower key
/// knows when to leave the relay again (see `route`).
const CONFIRM_EVERY: Duration = Duration::from_secs(5);
/// A link whose direct path has been gone this long probes it less often...
const PROBE_BACKOFF_AFTER: Duration = Duration::from_secs(30);
/// ...at this interval.
const PROBE_SLOW_INTERVAL: Duration = Duration::from_secs(8);
/// Most initiation timestamps remembered per room before forgetting non-members.
const MAX_SEEN_TIMESTAMPS: usize = 4096;
/// How long a listener may answer a stage invitation, from when it arrived: five seconds
/// under the host's lifetime, so the last possible "yes" still reaches the host (over
/// retransmissions) before the invitation is void there.
pub const STAGE_ANSWER_BY: Duration = Duration::from_secs(55);

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The bytes.
    pub contents: Vec<u8>,
    /// Which of our sockets sends it: [`MAIN_SOCKET`], or one the driver opens on demand
    /// for the birthday technique (the same number always means the same socket).
    pub socket: u16,
}

/// One node's protocol state. See the module documentation.
pub struct Endpoint {
    cfg: Config,
    identity: Identity,
    me: PublicKey,
    rng: ChaCha20Rng,
    incarnation: u64,
    clock_base: Instant,
    unix_base_micros: u64,
    last_timestamp: u64,
    room: Option<Room>,
    links: BTreeMap<PublicKey, Link>,
    indices: BTreeMap<u32, PublicKey>,
    seen_timestamps: BTreeMap<PublicKey, u64>,
    recent_mac1: (VecDeque<[u8; MAC_LEN]>, BTreeSet<[u8; MAC_LEN]>),
    cookies: CookieJar,
    rate: RateLimiter,
    load: LoadMonitor,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Indices we gave relays: datagrams from this peer arrive through a relay with it.
    relay_in: BTreeMap<u32, PublicKey>,
    /// As a relay: where datagrams with this receiver index go.
    forwards: BTreeMap<u32, Forward>,
    /// As a relay: `(from, to)` asked to be relayed, with the index `from` wants.
    relay_halves: BTreeMap<(PublicKey, PublicKey), u32>,
    /// As a relay: datagrams and bytes forwarded.
    relayed: (u64, u64),
    /// Something may have moved a link's path since the last report (time alone does
    /// too: every timer run sets it).
    paths_dirty: bool,
    /// The slot clock of the constant-rate schedule.
    schedule: Schedule,
    /// Our codec frames waiting for their slot, with their sequence numbers.
    audio_queue: VecDeque<(u32, Vec<u8>)>,
    /// Slots that carried our audio.
    audio_slots: u64,
}

/// Constant-time comparison of MACs.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

impl Endpoint {
    /// A node with this identity. `seed` feeds every random choice (indices, ephemeral
    /// keys, secrets): the driver passes 32 bytes from the OS; tests pass fixed seeds.
    /// `unix_micros` is the wall-clock time at `now`, used only for handshake replay
    /// timestamps.
    pub fn new(
        cfg: Config,
        identity: Identity,
        seed: [u8; 32],
        now: Instant,
        unix_micros: u64,
    ) -> Self {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let incarnation = rng.next_u64();
        let cookies = CookieJar::new(&mut rng, now);
        let me = identity.public_key();
        let cfg_threshold = cfg.handshake_load_threshold;
        Self {
            cfg,
            identity,
            me,
            rng,
            incarnation,
            clock_base: now,
            unix_base_micros: unix_micros,
            last_timestamp: 0,
            room: None,
            links: BTreeMap::new(),
            indices: BTreeMap::new(),
            seen_timestamps: BTreeMap::new(),
            recent_mac1: (VecDeque::new(), BTreeSet::new()),
            cookies,
            rate: RateLimiter::new(),
            load: LoadMonitor::new(cfg_threshold as usize),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            relay_in: BTreeMap::new(),
            forwards: BTreeMap::new(),
            relay_halves: BTreeMap::new(),
            relayed: (0, 0),
            paths_dirty: false,
            schedule: Schedule::default(),
            audio_queue: VecDeque::new(),
            audio_slots: 0,
        }
    }

    /// Datagrams and bytes this node forwarded as a relay for other members.
    pub fn relayed(&self) -> (u64, u64) {
        self.relayed
    }

    /// Our static public key.
    pub fn public_key(&self) -> PublicKey {
        self.me
    }

    /// The room as we see it, if we are in one.
    pub fn room(&self) -> Option<RoomView> {
        self.room
            .as_ref()
            .filter(|r| r.phase == Phase::Open)
            .map(Room::view)
    }

    /// Whether we are in no room (never joined, or left and done lingering).
    pub fn is_idle(&self) -> bool {
        self.room.is_none()
    }

    /// An invite to the room, if we are its host.
    pub fn invite(&self, candidates: Vec<Candidate>) -> Option<Invite> {
        let room = self.room.as_ref()?;
        (room.host() == self.me && room.phase == Phase::Open)
            .then(|| Invite::new(self.me, room.id, room.secret.clone(), candidates))
    }

    /// Link figures for one peer.
    pub fn link_stats(&self, peer: &PublicKey) -> Option<LinkStats> {
        self.links.get(peer).map(|l| LinkStats {
            retransmissions: l.channel.retransmissions(),
            up: l.current.is_some(),
            path: l.reported_path,
            ..l.stats
        })
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front()?;
        log::event(&e);
        Some(e)
    }

    /// Test support: seals `plaintext` (padded by the caller) under the current session
    /// to `peer`, whatever its age, as if we sent it; `None` without a session. Lets tests
    /// and fuzz targets put any plaintext past decryption.
    #[cfg(any(test, feature = "test-support"))]
    pub fn seal_for_test(&mut self, peer: &PublicKey, plaintext: &[u8]) -> Option<Vec<u8>> {
        self.links
            .get_mut(peer)?
            .current
            .as_mut()?
            .seal(plaintext)
            .ok()
    }

    /// Test support: queues `bytes` as one control message on the reliable channel to
    /// `peer`, unchecked (they need not decode); sent by the next timer run. `false`
    /// without a link or when the channel is full.
    #[cfg(any(test, feature = "test-support"))]
    pub fn send_raw_message_for_test(&mut self, peer: &PublicKey, bytes: &[u8]) -> bool {
        self.links
            .get_mut(peer)
            .is_some_and(|l| l.channel.send(bytes).is_ok())
    }

    fn random32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        self.rng.fill_bytes(&mut b);
        b
    }

    fn new_index(&mut self) -> u32 {
        loop {
            let i = self.rng.next_u32();
            if i != 0
                && !self.indices.contains_key(&i)
                && !self.relay_in.contains_key(&i)
                && !self.forwards.contains_key(&i)
            {
                return i;
            }
        }
    }

    fn timestamp(&mut self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.clock_base).as_micros();
        let t = self
            .unix_base_micros
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX));
        self.last_timestamp = t.max(self.last_timestamp + 1);
        self.last_timestamp
    }

    fn jitter(&mut self) -> Duration {
        let ms = self.cfg.handshake_jitter.as_millis() as u64;
        if ms == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(self.rng.next_u64() % ms)
        }
    }
}

#[cfg(test)]
mod tests;
