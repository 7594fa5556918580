//! The protocol state machine of one node: one UDP socket's worth of peers, at most one
//! room at a time.
//!
//! Shaped like `quinn-proto`: the driver feeds [`Endpoint::handle_datagram`] and
//! [`Endpoint::handle_timeout`] with `now`, gives commands (host, join, chat, …), and
//! drains [`Endpoint::poll_transmit`], [`Endpoint::poll_event`] and
//! [`Endpoint::poll_timeout`]. No clock reads, no sockets, no OS randomness: the same seed
//! and inputs give the same outputs.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::allowance::{Allowance, CHAT_BURST, CHAT_EVERY, REQUEST_BURST, REQUEST_EVERY};
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
use crate::roster::{Member, Role, successor, valid_name, valid_title};
use crate::safety_code::room_safety_code;
use crate::schedule::{AUDIO_QUEUE, STEAL_GAP, Schedule};
use crate::secret::Secret32;
use crate::session::{REKEY_AFTER_MESSAGES, Session};
use crate::wire::{self, INIT_MAC1_OFFSET, INIT_MAC2_OFFSET, MAC_LEN, Packet};

/// How long a cookie from a cookie reply stays usable (the responder rotates its secret
/// every two minutes).
const COOKIE_LIFETIME: Duration = Duration::from_secs(120);
/// Most datagrams one flush sends on one link, so a huge backlog cannot starve the rest.
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
/// How long a stage invitation can be accepted: long enough for someone to notice the
/// prompt, short enough that a stale "yes" cannot open a microphone much later.
pub const STAGE_INVITE_LIFETIME: Duration = Duration::from_secs(60);
/// How long a listener may answer a stage invitation, from when it arrived: five seconds
/// under the host's lifetime, so the last possible "yes" still reaches the host (over
/// retransmissions) before the invitation is void there.
pub const STAGE_ANSWER_BY: Duration = Duration::from_secs(55);

/// Host side: a stage invitation waiting for the listener's answer.
#[derive(Debug, Clone, Copy)]
struct StageInvitation {
    /// The moderator (or the host) who invited.
    by: PublicKey,
    /// The answer counts only before this.
    expires: Instant,
}

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Handshaking with the host; no roster yet.
    Joining {
        deadline: Instant,
        tried: Vec<SocketAddr>,
    },
    /// In the room.
    Open,
    /// Left; lingering so goodbyes are delivered.
    Closing { until: Instant },
}

struct Room {
    id: RoomId,
    secret: Secret32,
    title: String,
    my_name: String,
    my_candidates: Vec<SocketAddr>,
    host: PublicKey,
    /// Since when the host is known to be gone (left or timed out) with no successor
    /// roster yet.
    host_gone: Option<Instant>,
    /// A roster from the expected successor that arrived before we noticed the host was
    /// gone (the channel already acknowledged it, so it will not come again).
    successor_state: Option<(PublicKey, RoomState)>,
    phase: Phase,
    epoch: u64,
    epoch_secret: Secret32,
    version: u64,
    members: Vec<Member>,
    banned: HashSet<PublicKey>,
    next_join_order: u64,
    chat_sent: u64,
    chat_seen: HashMap<PublicKey, u64>,
    audio_seq: u32,
    /// Our own mute request, to tell a moderator's mute from ours.
    want_muted: bool,
    /// Our address as the host sees it (our reflexive address).
    observed: Option<SocketAddr>,
    /// The host's uniform-rate setting (PROTOCOL §5.1).
    uniform: bool,
    /// Host: each member's allowance of requests (hand, mute, moderation, hello).
    requests: HashMap<PublicKey, Allowance>,
    /// Each member's allowance of chat messages we deliver (ours included).
    chat_allowance: HashMap<PublicKey, Allowance>,
    /// Host: pending stage invitations, at most one per member (a new one replaces it).
    stage_invites: HashMap<PublicKey, StageInvitation>,
    /// Listener: the stage invitation we may answer (the inviter, and when it came).
    stage_invited: Option<(PublicKey, Instant)>,
}

impl Room {
    fn member(&self, key: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| m.key == *key)
    }

    fn member_mut(&mut self, key: &PublicKey) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.key == *key)
    }

    fn state(&self) -> RoomState {
        let mut banned: Vec<PublicKey> = self.banned.iter().copied().collect();
        banned.sort_unstable();
        RoomState::new(
            self.title.clone(),
            self.epoch,
            self.epoch_secret.clone(),
            self.version,
            self.members.clone(),
            banned,
        )
        .with_uniform(self.uniform)
    }

    /// Whether every member sends at the stage rate now.
    fn uniform_now(&self) -> bool {
        self.uniform && self.members.len() <= UNIFORM_RATE_MAX_MEMBERS
    }

    fn view(&self) -> RoomView {
        let keys: Vec<PublicKey> = self.members.iter().map(|m| m.key).collect();
        RoomView {
            room_id: self.id,
            title: self.title.clone(),
            epoch: self.epoch,
            host: self.host,
            members: self.members.clone(),
            safety_code: room_safety_code(&self.id.0, self.epoch, &keys),
        }
    }
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
    indices: HashMap<u32, PublicKey>,
    seen_timestamps: HashMap<PublicKey, u64>,
    recent_mac1: (VecDeque<[u8; MAC_LEN]>, HashSet<[u8; MAC_LEN]>),
    cookies: CookieJar,
    rate: RateLimiter,
    load: LoadMonitor,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Indices we gave relays: datagrams from this peer arrive through a relay with it.
    relay_in: HashMap<u32, PublicKey>,
    /// As a relay: where datagrams with this receiver index go.
    forwards: HashMap<u32, Forward>,
    /// As a relay: `(from, to)` asked to be relayed, with the index `from` wants.
    relay_halves: HashMap<(PublicKey, PublicKey), u32>,
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
            indices: HashMap::new(),
            seen_timestamps: HashMap::new(),
            recent_mac1: (VecDeque::new(), HashSet::new()),
            cookies,
            rate: RateLimiter::new(),
            load: LoadMonitor::new(cfg_threshold as usize),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            relay_in: HashMap::new(),
            forwards: HashMap::new(),
            relay_halves: HashMap::new(),
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
        (room.host == self.me && room.phase == Phase::Open)
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
        self.events.pop_front()
    }

    // ---------------------------------------------------------------- commands

    /// Opens a new room with us as host and returns its invite. `candidates` are the
    /// addresses joiners should try (the driver knows its socket's addresses).
    pub fn host(
        &mut self,
        now: Instant,
        title: &str,
        name: &str,
        candidates: Vec<Candidate>,
    ) -> Result<Invite, CommandError> {
        if self.room.is_some() {
            return Err(CommandError::AlreadyInRoom);
        }
        if !valid_title(title) {
            return Err(CommandError::InvalidTitle);
        }
        if !valid_name(name) {
            return Err(CommandError::InvalidName);
        }
        let mut id = [0u8; 16];
        self.rng.fill_bytes(&mut id);
        let secret = Secret32::generate(&mut self.rng);
        let epoch_secret = Secret32::generate(&mut self.rng);
        let my_candidates: Vec<SocketAddr> = candidates.iter().map(|c| c.addr).collect();
        let room = Room {
            id: RoomId(id),
            secret,
            title: title.trim().to_owned(),
            my_name: name.trim().to_owned(),
            my_candidates: my_candidates.clone(),
            host: self.me,
            host_gone: None,
            successor_state: None,
            phase: Phase::Open,
            epoch: 1,
            epoch_secret,
            version: 1,
            members: vec![Member {
                key: self.me,
                name: name.trim().to_owned(),
                role: Role::Host,
                hand_raised: false,
                muted: false,
                candidates: my_candidates,
                joined: 0,
            }],
            banned: HashSet::new(),
            next_join_order: 1,
            chat_sent: 0,
            chat_seen: HashMap::new(),
            audio_seq: 0,
            want_muted: false,
            observed: None,
            uniform: self.cfg.uniform_rate,
            requests: HashMap::new(),
            chat_allowance: HashMap::new(),
            stage_invites: HashMap::new(),
            stage_invited: None,
        };
        self.events.push_back(Event::Joined(room.view()));
        self.room = Some(room);
        let _ = now;
        self.invite(candidates).ok_or(CommandError::NotInRoom)
    }

    /// Starts joining the room of `invite`. `candidates` are our own addresses to tell
    /// other members (LAN addresses of our socket).
    pub fn join(
        &mut self,
        now: Instant,
        invite: &Invite,
        name: &str,
        candidates: Vec<SocketAddr>,
    ) -> Result<(), CommandError> {
        if self.room.is_some() {
            return Err(CommandError::AlreadyInRoom);
        }
        if !valid_name(name) {
            return Err(CommandError::InvalidName);
        }
        if invite.host.is_low_order() {
            return Err(CommandError::WeakHostKey);
        }
        self.room = Some(Room {
            id: invite.room_id,
            secret: invite.secret().clone(),
            title: String::new(),
            my_name: name.trim().to_owned(),
            my_candidates: candidates,
            host: invite.host,
            host_gone: None,
            successor_state: None,
            phase: Phase::Joining {
                deadline: now + self.cfg.join_timeout,
                tried: Vec::new(),
            },
            epoch: 0,
            epoch_secret: Secret32::from_bytes([0; 32]),
            version: 0,
            members: Vec::new(),
            banned: HashSet::new(),
            next_join_order: 0,
            chat_sent: 0,
            chat_seen: HashMap::new(),
            audio_seq: 0,
            want_muted: false,
            observed: None,
            uniform: false,
            requests: HashMap::new(),
            chat_allowance: HashMap::new(),
            stage_invites: HashMap::new(),
            stage_invited: None,
        });
        let mut link = Link::new(invite.host, now);
        link.candidates = invite.candidates.iter().map(|c| c.addr).collect();
        link.retry = Some(Retry {
            attempts: 0,
            next: now,
        });
        self.links.insert(invite.host, link);
        self.start_handshake(now, invite.host);
        Ok(())
    }

    /// Our own addresses changed (a port mapping came or went, the network changed): the
    /// room learns the new list, so members punch towards it. A member tells the host (a
    /// repeated Hello); the host updates its own entry and sends the roster.
    pub fn set_candidates(
        &mut self,
        now: Instant,
        candidates: Vec<SocketAddr>,
    ) -> Result<(), CommandError> {
        let me = self.me;
        let room = self.room.as_mut().ok_or(CommandError::NotInRoom)?;
        room.my_candidates = candidates.clone();
        if room.phase != Phase::Open {
            return Ok(());
        }
        if room.host == me {
            if let Some(m) = room.member_mut(&me) {
                m.candidates = candidates;
                m.candidates.truncate(crate::roster::MAX_CANDIDATES);
            }
            room.version += 1;
            self.broadcast_state();
            self.emit_room_changed();
        } else {
            let host = room.host;
            let hello = Message::Hello {
                name: room.my_name.clone(),
                candidates,
            };
            self.send_message(&host, &hello)?;
        }
        self.flush(now);
        Ok(())
    }

    /// Our network changed (another Wi-Fi, a cable, tethering): look at every path now
    /// instead of waiting for it to go stale. Links probe and challenge at once, and links
    /// without a session retry their handshakes (punching from the new address).
    pub fn network_changed(&mut self, now: Instant) {
        for link in self.links.values_mut() {
            link.path_check = Some(now);
            link.challenges.clear();
            link.last_probe = None;
            if link.current.is_none() && link.closing.is_none() {
                link.retry = Some(Retry {
                    attempts: 0,
                    next: now,
                });
            }
        }
        // Our next slot tells everyone where we are: the host's challenge moves our
        // roster entry, the others follow it. It carries a ping, so the answer shows
        // whether the path still works.
        for link in self.links.values_mut() {
            link.next_ping = now;
        }
        self.flush(now);
    }

    /// Raises (true) or lowers (false) our hand.
    pub fn set_hand(&mut self, now: Instant, raised: bool) -> Result<(), CommandError> {
        self.request(now, Message::SetHand(raised))
    }

    /// Mutes or unmutes our microphone as shown to others. The application keeps sending
    /// audio frames (encoded silence) while muted, so the network cannot tell.
    pub fn set_muted(&mut self, now: Instant, muted: bool) -> Result<(), CommandError> {
        if let Some(r) = self.room.as_mut() {
            r.want_muted = muted;
        }
        self.request(now, Message::SetMuted(muted))
    }

    /// A moderator action on another member.
    pub fn moderate(
        &mut self,
        now: Instant,
        target: PublicKey,
        action: Action,
    ) -> Result<(), CommandError> {
        let room = self.open_room()?;
        let my_role = room.member(&self.me).map(|m| m.role);
        if !my_role.is_some_and(Role::can_moderate) {
            return Err(CommandError::NotPermitted);
        }
        if action == Action::MakeModerator && my_role != Some(Role::Host) {
            return Err(CommandError::NotHost);
        }
        if room.member(&target).is_none() || target == self.me {
            return Err(CommandError::UnknownMember);
        }
        self.request(now, Message::Moderate { target, action })
    }

    /// Answers the stage invitation of the last [`Event::StageInvited`]: `accept` tells the
    /// host to make us a speaker ([`Event::RoleChanged`] follows, and only then may the
    /// application open the microphone); `false` declines and we stay in the audience.
    /// Either way the invitation is used up. Fails with [`CommandError::NoStageInvite`]
    /// when there is none to answer, or it is older than [`STAGE_ANSWER_BY`].
    pub fn answer_stage_invite(&mut self, now: Instant, accept: bool) -> Result<(), CommandError> {
        let room = self.open_room_mut()?;
        match room.stage_invited.take() {
            Some((_, at)) if now < at + STAGE_ANSWER_BY => {}
            _ => return Err(CommandError::NoStageInvite),
        }
        self.request(now, Message::StageAnswer { accept })
    }

    /// Sends a chat line to everyone in the room.
    pub fn send_chat(&mut self, now: Instant, text: &str) -> Result<(), CommandError> {
        if text.trim().is_empty() || text.len() > MAX_CHAT_LEN {
            return Err(CommandError::InvalidChat);
        }
        let me = self.me;
        let room = self.open_room_mut()?;
        // The allowance every receiver holds us to: over it, receivers would drop the
        // line, so it is refused here with a message instead.
        if !room
            .chat_allowance
            .entry(me)
            .or_insert_with(|| Allowance::new(now, CHAT_BURST, CHAT_EVERY))
            .take(now)
        {
            return Err(CommandError::ChatTooFast);
        }
        room.chat_sent += 1;
        let seq = room.chat_sent;
        let name = room.my_name.clone();
        let msg = Message::Chat {
            seq,
            text: text.to_owned(),
        };
        self.broadcast(&msg, None)?;
        self.events.push_back(Event::Chat {
            from: me,
            name,
            seq,
            text: text.to_owned(),
        });
        self.flush(now);
        Ok(())
    }

    /// Hands over one codec frame, as the audio engine makes one every frame period (on
    /// stage or not, muted or not). The frame paces the slot clock (PROTOCOL §5.1: slots
    /// leave a fixed margin after frames arrive, whatever our role, so a capture cannot
    /// tell a stage member from a listener by timing), and, when we are on stage, goes
    /// to every member in the next slot. Fails with [`CommandError::NotOnStage`] when
    /// the frame only paced the clock.
    pub fn send_audio(&mut self, now: Instant, codec_frame: &[u8]) -> Result<(), CommandError> {
        if codec_frame.len() > MAX_AUDIO_FRAME {
            return Err(CommandError::AudioFrameTooLarge(codec_frame.len()));
        }
        let period = self.slot_period();
        self.schedule.frame_arrived(now, period);
        let me = self.me;
        let room = self.open_room_mut()?;
        if !room.member(&me).is_some_and(|m| m.role.on_stage()) {
            return Err(CommandError::NotOnStage);
        }
        room.audio_seq = room.audio_seq.wrapping_add(1);
        let seq = room.audio_seq;
        // A frame pushed out unsent is a gap in the sequence: receivers count it lost
        // and restore it from the next frame's forward error correction.
        if self.audio_queue.len() >= AUDIO_QUEUE {
            self.audio_queue.pop_front();
        }
        self.audio_queue.push_back((seq, codec_frame.to_vec()));
        Ok(())
    }

    /// How many slots have carried our audio so far.
    pub fn audio_slots(&self) -> u64 {
        self.audio_slots
    }

    /// Leaves the room. A leaving host hands the room to its successor first.
    pub fn leave(&mut self, now: Instant) -> Result<(), CommandError> {
        let me = self.me;
        let room = self.room.as_mut().ok_or(CommandError::NotInRoom)?;
        match room.phase {
            Phase::Closing { .. } => return Err(CommandError::NotInRoom),
            Phase::Joining { .. } => {
                self.close_now(LeftReason::Left);
                return Ok(());
            }
            Phase::Open => {}
        }
        if room.host == me
            && let Some(next) = successor(&room.members, &me)
        {
            room.members.retain(|m| m.key != me);
            if let Some(m) = room.member_mut(&next) {
                m.role = Role::Host;
                m.hand_raised = false;
            }
            room.host = next;
            self.new_epoch();
            self.broadcast_state();
        }
        self.say_goodbye(now, &Message::Leave, LeftReason::Left);
        Ok(())
    }

    /// Sends a last message to everyone, then lingers so it is delivered.
    fn say_goodbye(&mut self, now: Instant, msg: &Message, reason: LeftReason) {
        let linger = self.cfg.linger;
        let _ = self.broadcast(msg, None);
        if let Some(room) = self.room.as_mut() {
            room.phase = Phase::Closing {
                until: now + linger,
            };
        }
        self.events.push_back(Event::Left(reason));
        self.flush(now);
    }

    /// Revokes the current invite (host only): draws a fresh room secret, so the host no
    /// longer answers anyone who holds the old invite, and returns the new invite (also
    /// announced as [`Event::InviteChanged`]). The room goes on untouched: members keep
    /// their seats, links and epoch, and learn nothing of it.
    pub fn revoke_invite(&mut self, now: Instant) -> Result<Invite, CommandError> {
        let me = self.me;
        if self.open_room()?.host != me {
            return Err(CommandError::NotHost);
        }
        let _ = now;
        self.rotate_room_secret(InviteChange::Revoked)
            .ok_or(CommandError::NotInRoom)
    }

    /// Ends the room for everyone (host only).
    pub fn end_room(&mut self, now: Instant) -> Result<(), CommandError> {
        let me = self.me;
        let room = self.open_room()?;
        if room.host != me {
            return Err(CommandError::NotHost);
        }
        self.say_goodbye(now, &Message::Ended, LeftReason::Ended);
        Ok(())
    }

    fn open_room(&self) -> Result<&Room, CommandError> {
        match &self.room {
            None => Err(CommandError::NotInRoom),
            Some(r) => match r.phase {
                Phase::Open => Ok(r),
                Phase::Joining { .. } => Err(CommandError::StillJoining),
                Phase::Closing { .. } => Err(CommandError::NotInRoom),
            },
        }
    }

    fn open_room_mut(&mut self) -> Result<&mut Room, CommandError> {
        match &mut self.room {
            None => Err(CommandError::NotInRoom),
            Some(r) => match r.phase {
                Phase::Open => Ok(r),
                Phase::Joining { .. } => Err(CommandError::StillJoining),
                Phase::Closing { .. } => Err(CommandError::NotInRoom),
            },
        }
    }

    /// Sends a request to the host, or applies it directly when we are the host.
    fn request(&mut self, now: Instant, msg: Message) -> Result<(), CommandError> {
        let host = self.open_room()?.host;
        if host == self.me {
            let me = self.me;
            self.host_handle(now, me, msg);
        } else {
            self.send_message(&host, &msg)?;
        }
        self.flush(now);
        Ok(())
    }

    // ---------------------------------------------------------------- input

    /// Feeds one datagram received on the main socket. Anything unauthenticated or
    /// malformed is dropped without a reply and without changing state.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.handle_datagram_on(now, MAIN_SOCKET, from, data);
    }

    /// Feeds one datagram received on `socket` (see [`Transmit::socket`]).
    pub fn handle_datagram_on(&mut self, now: Instant, socket: u16, from: SocketAddr, data: &[u8]) {
        let Ok(packet) = Packet::parse(data) else {
            return;
        };
        let hop = Hop { addr: from, socket };
        if !matches!(packet, Packet::Transport(_)) {
            self.paths_dirty = true;
        }
        match packet {
            Packet::Init(init) => self.on_init(now, Origin::Direct(hop), &init),
            Packet::Response(resp) => self.on_response(now, Origin::Direct(hop), &resp),
            Packet::Cookie(c) => self.on_cookie(now, &c),
            Packet::Transport(t) => match self.forwards.get(&t.receiver).copied() {
                Some(f) => self.forward(hop, f, data),
                None => self.on_transport(now, hop, &t),
            },
        }
        self.flush(now);
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

    /// Whether `peer`'s initiation timestamp is newer than any we accepted; records it.
    fn fresh_timestamp(&mut self, peer: PublicKey, ts: u64) -> bool {
        if self.seen_timestamps.len() >= MAX_SEEN_TIMESTAMPS {
            // Bounded memory: keep only keys that are (or were banned from) the room.
            if let Some(room) = self.room.as_ref() {
                self.seen_timestamps
                    .retain(|k, _| room.member(k).is_some() || room.banned.contains(k));
            }
        }
        match self.seen_timestamps.get(&peer) {
            Some(&last) if ts <= last => false,
            _ => {
                self.seen_timestamps.insert(peer, ts);
                true
            }
        }
    }

    fn start_handshake(&mut self, now: Instant, peer: PublicKey) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let joining = matches!(room.phase, Phase::Joining { .. });
        let kind = if joining && peer == room.host {
            Kind::Join
        } else {
            Kind::Link
        };
        let (psk, prologue, mac1_key) = match kind {
            Kind::Join => (
                room.secret.clone(),
                join_prologue(&room.id.0),
                join_mac1_key(&peer, room.secret.as_bytes()),
            ),
            Kind::Link => (
                room.epoch_secret.clone(),
                link_prologue(&room.id.0, room.epoch),
                link_mac1_key(&peer, room.epoch_secret.as_bytes()),
            ),
        };
        let epoch = room.epoch;
        let payload = InitPayload {
            timestamp: self.timestamp(now),
            incarnation: self.incarnation,
        };
        let seed = self.random32();
        let keys = Keys {
            local: &self.identity,
            psk: psk.as_bytes(),
            prologue: &prologue,
        };
        let Ok((state, noise)) = handshake::initiate(kind, &keys, &peer, &payload, seed) else {
            return;
        };
        let hint: [u8; MAC_LEN] = match kind {
            Kind::Join => {
                let mut h = [0u8; MAC_LEN];
                self.rng.fill_bytes(&mut h);
                h
            }
            Kind::Link => link_hint(psk.as_bytes(), &self.me, &noise[..32]),
        };
        let index = self.new_index();
        let Some(mut packet) = wire::encode_init(index, &hint, &noise) else {
            return;
        };
        let mac1 = mac(&mac1_key, &packet[..INIT_MAC1_OFFSET]);
        packet[INIT_MAC1_OFFSET..INIT_MAC2_OFFSET].copy_from_slice(&mac1);
        let retry_base = self.cfg.handshake_retry;
        let retry_max = self.cfg.handshake_retry_max;
        let jitter = self.jitter();
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if let Some((cookie, at)) = link.cookie
            && now.saturating_duration_since(at) < COOKIE_LIFETIME
        {
            let mac2 = mac2(&cookie, &packet[..INIT_MAC2_OFFSET]);
            packet[INIT_MAC2_OFFSET..].copy_from_slice(&mac2);
        }
        if let Some(old) = link.pending.take() {
            self.indices.remove(&old.local_index);
        }
        link.pending = Some(Pending {
            kind,
            state,
            local_index: index,
            mac1_key,
            mac1,
            epoch,
            rebuild: Rebuild {
                seed,
                payload,
                psk,
                prologue,
            },
            packet: packet.clone(),
        });
        self.indices.insert(index, peer);
        let attempts = link.retry.map_or(0, |r| r.attempts) + 1;
        let backoff = retry_base
            .saturating_mul(1u32 << (attempts - 1).min(8))
            .min(retry_max);
        link.retry = Some(Retry {
            attempts,
            next: now + backoff + jitter,
        });
        let dests = link.direct_hops();
        link.last_send = now;
        let via = link.relay.map(|r| r.via).filter(|_| kind == Kind::Link);
        for d in &dests {
            self.transmits.push_back(Transmit {
                destination: d.addr,
                contents: packet.clone(),
                socket: d.socket,
            });
        }
        if let Some(via) = via {
            let _ = self.send_message(
                &via,
                &Message::RelayTo {
                    peer,
                    datagram: packet,
                },
            );
        }
        if let Some(Room {
            phase: Phase::Joining { tried, .. },
            ..
        }) = self.room.as_mut()
        {
            for d in dests {
                if !tried.contains(&d.addr) {
                    tried.push(d.addr);
                }
            }
        }
    }

    fn on_init(&mut self, now: Instant, origin: Origin, init: &wire::Init<'_>) {
        // A small-order ephemeral would make `es` (and `ee`) all zeros: drop it before it
        // touches the mac1 memory, the load count or a DH.
        if init.noise.get(..32).is_none_or(is_low_order) {
            return;
        }
        let Some(room) = self.room.as_ref() else {
            return;
        };
        if room.phase != Phase::Open {
            return;
        }
        let mut keys: Vec<(Kind, [u8; 32])> = Vec::with_capacity(2);
        // Joins come straight from the invite holder, never through a member.
        if room.host == self.me && matches!(origin, Origin::Direct(_)) {
            keys.push((Kind::Join, join_mac1_key(&self.me, room.secret.as_bytes())));
        }
        keys.push((
            Kind::Link,
            link_mac1_key(&self.me, room.epoch_secret.as_bytes()),
        ));
        let covered = &init.raw[..INIT_MAC1_OFFSET];
        let Some(&(kind, mac1_key)) = keys
            .iter()
            .find(|(_, k)| ct_eq(&mac(k, covered), init.mac1))
        else {
            return;
        };
        if self.recent_mac1.1.contains(init.mac1) {
            return;
        }
        if self.recent_mac1.0.len() >= RECENT_MAC1
            && let Some(old) = self.recent_mac1.0.pop_front()
        {
            self.recent_mac1.1.remove(&old);
        }
        self.recent_mac1.0.push_back(*init.mac1);
        self.recent_mac1.1.insert(*init.mac1);
        // Only now, with a valid mac1 (the sender holds the invite or the epoch secret),
        // does the datagram count towards load and possibly earn a cookie reply. Through a
        // relay it came over a member's authenticated channel: no cookie round.
        if matches!(origin, Origin::Direct(_)) {
            self.load.record(now);
        }
        if let Origin::Direct(Hop { addr: from, socket }) = origin
            && self.load.under_load(now)
        {
            let rng = &mut self.rng;
            if !self
                .cookies
                .check_mac2(now, rng, from, &init.raw[..INIT_MAC2_OFFSET], init.mac2)
            {
                let cookie = self.cookies.cookie(now, &mut self.rng, from);
                let (nonce, sealed) = self.cookies.seal_reply(
                    &cookie_key(&mac1_key),
                    &cookie,
                    init.mac1,
                    &mut self.rng,
                );
                self.transmits.push_back(Transmit {
                    destination: from,
                    contents: wire::encode_cookie(init.sender, &nonce, &sealed),
                    socket,
                });
                return;
            }
            if !self.rate.allow(now, from.ip()) {
                return;
            }
        }
        let (room_id, room_secret, epoch, epoch_secret) = (
            room.id,
            room.secret.clone(),
            room.epoch,
            room.epoch_secret.clone(),
        );
        let seed = self.random32();
        let (state, remote, payload, status) = match kind {
            Kind::Join => {
                let prologue = join_prologue(&room_id.0);
                let keys = Keys {
                    local: &self.identity,
                    psk: room_secret.as_bytes(),
                    prologue: &prologue,
                };
                let Ok((state, remote, payload)) =
                    handshake::accept(kind, &keys, None, init.noise, seed)
                else {
                    return;
                };
                let Some(room) = self.room.as_ref() else {
                    return;
                };
                let seatless = self
                    .links
                    .keys()
                    .filter(|k| room.member(k).is_none())
                    .count();
                let status = if room.banned.contains(&remote) {
                    Status::Removed
                } else if room.member(&remote).is_none()
                    && (room.members.len() >= self.cfg.max_members
                        || seatless >= self.cfg.max_members)
                {
                    Status::Full
                } else {
                    Status::Accepted
                };
                (state, remote, payload, status)
            }
            Kind::Link => {
                let e = &init.noise[..32];
                let Some(initiator) = self.room.as_ref().and_then(|r| {
                    r.members.iter().map(|m| m.key).find(|k| {
                        *k != self.me && ct_eq(&link_hint(epoch_secret.as_bytes(), k, e), init.hint)
                    })
                }) else {
                    return;
                };
                // Simultaneous open (both sides punch at once): the lower key's handshake
                // wins. The lower side does not answer; the initiation proves a path, so
                // it resends its own initiation there at once. The higher side answers
                // and drops its own attempt.
                if let Some(link) = self.links.get(&initiator)
                    && link.current.is_none()
                    && let Some(p) = link.pending.as_ref()
                    && p.kind == Kind::Link
                    && self.me < initiator
                {
                    let packet = p.packet.clone();
                    self.send_handshake(origin, initiator, packet);
                    return;
                }
                let prologue = link_prologue(&room_id.0, epoch);
                let keys = Keys {
                    local: &self.identity,
                    psk: epoch_secret.as_bytes(),
                    prologue: &prologue,
                };
                let Ok((state, remote, payload)) =
                    handshake::accept(kind, &keys, Some(&initiator), init.noise, seed)
                else {
                    return;
                };
                (state, remote, payload, Status::Accepted)
            }
        };
        if remote == self.me || !self.fresh_timestamp(remote, payload.timestamp) {
            return;
        }
        let reply = ResponsePayload {
            status,
            incarnation: self.incarnation,
            timestamp: self.timestamp(now),
        };
        let Ok((transport, noise)) = handshake::respond(state, &reply) else {
            return;
        };
        let index = self.new_index();
        let Some(packet) = wire::encode_response(index, init.sender, &noise) else {
            return;
        };
        self.send_handshake(origin, remote, packet);
        if status != Status::Accepted {
            return;
        }
        let link = self
            .links
            .entry(remote)
            .or_insert_with(|| Link::new(remote, now));
        if link.current.is_none()
            && let Some(mine) = link.pending.take()
        {
            // We are the higher key of a simultaneous open: theirs wins.
            self.indices.remove(&mine.local_index);
            link.retry = None;
        }
        // Nothing from message 1 takes effect until the peer confirms the session.
        link.next_incarnation = Some(payload.incarnation);
        if let Some(old) = link.next.take() {
            self.indices.remove(&old.local_index);
        }
        link.next = Some(Session::new(transport, index, init.sender, false, now));
        self.indices.insert(index, remote);
    }

    fn on_response(&mut self, now: Instant, origin: Origin, resp: &wire::Response<'_>) {
        // Refused before the pending handshake is touched (no rebuild needed).
        if resp.noise.get(..32).is_none_or(is_low_order) {
            return;
        }
        let Some(&peer) = self.indices.get(&resp.receiver) else {
            return;
        };
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if link.pending.as_ref().map(|p| p.local_index) != Some(resp.receiver) {
            return;
        }
        let Some(pending) = link.pending.take() else {
            return;
        };
        let Pending {
            kind,
            state,
            local_index,
            mac1_key,
            mac1,
            epoch,
            rebuild,
            packet,
        } = pending;
        let (transport, payload) = match handshake::complete(state, resp.noise) {
            Ok(done) => done,
            Err(_) => {
                // A forged or corrupt response consumed the Noise state: recreate it
                // exactly (same seed and inputs) so the genuine response still works.
                let keys = Keys {
                    local: &self.identity,
                    psk: rebuild.psk.as_bytes(),
                    prologue: &rebuild.prologue,
                };
                if let Ok((state, _)) =
                    handshake::initiate(kind, &keys, &peer, &rebuild.payload, rebuild.seed)
                {
                    link.pending = Some(Pending {
                        kind,
                        state,
                        local_index,
                        mac1_key,
                        mac1,
                        epoch,
                        rebuild,
                        packet,
                    });
                } else {
                    self.indices.remove(&resp.receiver);
                }
                return;
            }
        };
        // Authenticated: the peer's clock as it answered. (A field, not `timestamp_floor`,
        // because `link` still borrows `self.links`.)
        let floor = self.seen_timestamps.entry(peer).or_insert(0);
        *floor = (*floor).max(payload.timestamp);
        let pending_kind = kind;
        let current_epoch = self.room.as_ref().map(|r| r.epoch);
        if kind == Kind::Link && current_epoch != Some(epoch) {
            // Keyed for an epoch that has ended: start over with the current one.
            self.indices.remove(&resp.receiver);
            link.retry = Some(Retry {
                attempts: 0,
                next: now,
            });
            return;
        }
        if payload.status != Status::Accepted {
            self.indices.remove(&resp.receiver);
            if pending_kind == Kind::Join {
                let failure = match payload.status {
                    Status::Removed => JoinFailure::Removed,
                    Status::Full => JoinFailure::Full,
                    _ => JoinFailure::Ended,
                };
                self.events.push_back(Event::JoinFailed(failure));
                self.drop_room();
            }
            return;
        }
        let restarted = link.incarnation.is_some_and(|i| i != payload.incarnation);
        if restarted {
            link.reset_channel();
        }
        link.incarnation = Some(payload.incarnation);
        if let Some(old) = link.previous.take() {
            self.indices.remove(&old.local_index);
        }
        link.install_initiated(Session::new(transport, local_index, resp.sender, true, now));
        if let Origin::Direct(hop) = origin {
            // The response answers our fresh initiation: the path it came by works.
            link.set_direct(hop, now);
        }
        link.last_recv = now;
        link.retry = None;
        if !link.reported_up {
            link.reported_up = true;
            self.events.push_back(Event::LinkUp(peer));
        }
        if restarted && let Some(r) = self.room.as_mut() {
            r.chat_seen.remove(&peer);
        }
        if pending_kind == Kind::Join
            && let Some(room) = self.room.as_ref()
        {
            let hello = Message::Hello {
                name: room.my_name.clone(),
                candidates: room.my_candidates.clone(),
            };
            let _ = self.send_message(&peer, &hello);
        }
        // The next slot confirms the session to the responder, even with nothing to say.
        self.schedule.start(now);
    }

    fn on_cookie(&mut self, now: Instant, c: &wire::CookieReply<'_>) {
        let Some(&peer) = self.indices.get(&c.receiver) else {
            return;
        };
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let Some(p) = link
            .pending
            .as_ref()
            .filter(|p| p.local_index == c.receiver)
        else {
            return;
        };
        if let Some(cookie) = open_reply(&cookie_key(&p.mac1_key), c.nonce, c.sealed, &p.mac1) {
            link.cookie = Some((cookie, now));
        }
    }

    fn on_transport(&mut self, now: Instant, from: Hop, t: &wire::Transport<'_>) {
        let challenge_retry = self.cfg.probe_interval;
        let (peer, origin) = if let Some(&peer) = self.indices.get(&t.receiver) {
            (peer, Origin::Direct(from))
        } else if let Some(&peer) = self.relay_in.get(&t.receiver) {
            let Some(via) = self.links.get(&peer).and_then(|l| l.relay).map(|r| r.via) else {
                return;
            };
            (peer, Origin::Relay(via))
        } else {
            return;
        };
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        // Sessions past reject_after are refused here too, not only for sending: the
        // timer that drops them may run after a datagram for them arrives, and the
        // previous and unconfirmed sessions have no timer of their own.
        let reject_after = self.cfg.reject_after;
        let opened = match origin {
            Origin::Direct(_) => link
                .session_mut(t.receiver)
                .filter(|(session, _)| !session.expired(now, reject_after))
                .and_then(|(session, slot)| {
                    session
                        .open(t.counter, t.ciphertext)
                        .ok()
                        .map(|p| (p, slot))
                }),
            Origin::Relay(_) => link.open_any(now, reject_after, t.counter, t.ciphertext),
        };
        let Some((plain, slot)) = opened else {
            return;
        };
        let Ok(frames) = frame::parse(&plain) else {
            return;
        };
        let mut restarted = false;
        // Whether this datagram can have changed the link's path (most audio cannot: it
        // arrives on a path already fresh, and the path sweep then has nothing to do).
        let mut moved = slot == Slot::Next || !link.reported_up;
        if slot == Slot::Next {
            if let Some(old) = link.previous.take() {
                self.indices.remove(&old.local_index);
            }
            link.promote_next();
            if let Some(inc) = link.next_incarnation.take() {
                if link.incarnation.is_some_and(|i| i != inc) {
                    // The peer restarted: its channel and chat numbering start over.
                    link.reset_channel();
                    restarted = true;
                }
                link.incarnation = Some(inc);
            }
        }
        // An authenticated datagram from an address we have not validated moves nothing
        // by itself (it may be a replay from a spoofed source): we challenge the address
        // and switch only when the answer comes back from it. The very first address of
        // a fresh session is taken as is (the handshake just ran over it).
        let mut challenge_to = None;
        if let Origin::Relay(_) = origin {
            // `direct_window`, spelled out: `link` holds `self` here.
            let window = self.cfg.keepalive * 3;
            if link.relay_recv.is_none_or(|t| now >= t + window) {
                link.relay_since = Some(now);
                moved = true;
            }
            link.relay_recv = Some(now);
        }
        if let Origin::Direct(hop) = origin {
            if link.direct_hop() == Some(hop) {
                moved |= !link.direct_fresh(now, self.cfg.keepalive * 3);
                link.direct_recv = Some(now);
            } else if link.addr.is_none() && link.relay.is_none() {
                link.set_direct(hop, now);
                moved = true;
            } else if !link
                .challenges
                .iter()
                .any(|c| c.hop == hop && now < c.sent + challenge_retry)
            {
                challenge_to = Some(hop);
            }
        }
        link.last_recv = now;
        if !link.reported_up {
            link.reported_up = true;
            self.events.push_back(Event::LinkUp(peer));
        }
        // One roster lookup per datagram: this runs for every audio frame.
        let role = self
            .room
            .as_ref()
            .filter(|r| r.phase == Phase::Open)
            .and_then(|r| r.member(&peer))
            .map(|m| m.role);
        let on_stage = role.is_some_and(Role::on_stage);
        let is_member = role.is_some();
        let report_interval = self.cfg.report_interval;
        let mut pongs = Vec::new();
        let mut report = None;
        let mut answer = None;
        let mut validated = None;
        for f in frames {
            match f {
                Frame::Audio { seq, data } => {
                    if !on_stage {
                        continue;
                    }
                    link.count_audio(now, seq, report_interval);
                    self.events.push_back(Event::Audio {
                        from: peer,
                        seq,
                        frame: data.to_vec(),
                    });
                }
                Frame::Ping(id) => pongs.push(id),
                Frame::Skipped(seq) => {
                    if on_stage {
                        link.skip_audio(now, seq, report_interval);
                    }
                }
                Frame::Report { loss_permille } => {
                    if is_member {
                        report = Some(loss_permille);
                    }
                }
                Frame::Pong { id, held_ms } => {
                    if let Some((pid, sent)) = link.ping
                        && pid == id
                    {
                        let held = Duration::from_millis(u64::from(held_ms));
                        link.stats.rtt = Some(now.saturating_duration_since(sent + held));
                        link.ping = None;
                    }
                }
                Frame::Channel(cf) => {
                    let _ = link.channel.handle_frame(now, &cf);
                }
                Frame::PathChallenge(token) => {
                    if let Origin::Direct(from) = origin {
                        answer = Some((from, token));
                    }
                }
                Frame::PathResponse(token) => {
                    if let Origin::Direct(from) = origin
                        && link
                            .challenges
                            .iter()
                            .any(|c| c.hop == from && c.token == token)
                    {
                        validated = Some(from);
                    }
                }
            }
        }
        let mut messages = Vec::new();
        while let Some(m) = link.channel.poll_message() {
            messages.push(m);
        }
        // At most one report per datagram is surfaced (the last one it carried).
        if let Some(loss_permille) = report {
            self.events.push_back(Event::ReceptionReport {
                from: peer,
                loss_permille,
            });
        }
        if restarted && let Some(r) = self.room.as_mut() {
            r.chat_seen.remove(&peer);
        }
        // One pong per slot however many pings came: no amplification.
        if let Some(id) = pongs.last()
            && let Some(link) = self.links.get_mut(&peer)
        {
            link.pong_owed = Some((*id, now));
        }
        if let Some((to, token)) = answer {
            // The proof of our current path rides in the next slot; an answer about
            // another address (a probe's) goes at once, to that address.
            let in_slot = self.route(now, &peer) == Some((to, None));
            match self.links.get_mut(&peer) {
                Some(link) if in_slot && link.direct_hop() == Some(to) => {
                    link.answer_wanted = Some(token);
                }
                _ => {
                    let mut plain = Vec::with_capacity(wire::AUDIO_PLAINTEXT_LEN);
                    frame::push_path(&mut plain, true, token);
                    self.send_plain_to(now, peer, &mut plain, Some((to, None)));
                }
            }
        }
        // Control messages (relay set-up among them) and a validated path can move paths.
        if moved || validated.is_some() || !messages.is_empty() {
            self.paths_dirty = true;
        }
        if let Some(addr) = validated {
            self.path_validated(now, peer, addr);
        } else if let Some(to) = challenge_to {
            self.send_challenge(now, peer, to);
        }
        for m in messages {
            if let Ok(msg) = Message::decode(&m) {
                self.on_message(now, peer, msg);
            }
        }
    }

    // ---------------------------------------------------------------- room logic

    fn on_message(&mut self, now: Instant, from: PublicKey, msg: Message) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        if matches!(room.phase, Phase::Closing { .. }) {
            return;
        }
        let i_am_host = room.host == self.me && room.phase == Phase::Open;
        match msg {
            Message::State(s) => self.apply_state(now, from, s),
            Message::Update {
                epoch,
                version,
                member,
            } => self.apply_update(now, from, epoch, version, member),
            Message::Chat { seq, text } => {
                let Some(room) = self.room.as_mut() else {
                    return;
                };
                let Some(name) = room.member(&from).map(|m| m.name.clone()) else {
                    return;
                };
                if text.is_empty() || text.len() > MAX_CHAT_LEN {
                    return;
                }
                let last = room.chat_seen.get(&from).copied().unwrap_or(0);
                if seq <= last {
                    return;
                }
                // An honest sender keeps to the same allowance (`send_chat` refuses), so
                // only a flood is dropped here.
                if !room
                    .chat_allowance
                    .entry(from)
                    .or_insert_with(|| Allowance::new(now, CHAT_BURST, CHAT_EVERY))
                    .take(now)
                {
                    return;
                }
                room.chat_seen.insert(from, seq);
                self.events.push_back(Event::Chat {
                    from,
                    name,
                    seq,
                    text,
                });
            }
            Message::Removed if from == room.host => {
                self.close_after_notice(now, LeftReason::Removed)
            }
            Message::Ended if from == room.host => self.close_after_notice(now, LeftReason::Ended),
            Message::Leave => self.on_leave(now, from),
            Message::StageInvite { by } if from == room.host => self.on_stage_invite(now, by),
            Message::Observed(addr) if from == room.host => {
                if let Some(r) = self.room.as_mut() {
                    r.observed = Some(addr);
                }
            }
            Message::RelayOpen { peer, index } => self.on_relay_open(from, peer, index),
            Message::RelayAsk { peer } => self.on_relay_ask(now, from, peer),
            Message::RelayReady { peer, index } => {
                if let Some(l) = self.links.get_mut(&peer)
                    && let Some(r) = l.relay.as_mut()
                    && r.via == from
                {
                    r.send_index = Some(index);
                    // The next slot confirms a responder session waiting on us, and its
                    // ping shows the path.
                    l.next_ping = now;
                }
            }
            Message::RelayTo { peer, datagram } => self.on_relay_to(from, peer, datagram),
            Message::RelayFrom { peer, datagram } if self.links.contains_key(&peer) => {
                match Packet::parse(&datagram) {
                    Ok(Packet::Init(init)) => self.on_init(now, Origin::Relay(from), &init),
                    Ok(Packet::Response(resp)) => self.on_response(now, Origin::Relay(from), &resp),
                    _ => {}
                }
            }
            other if i_am_host => self.host_handle(now, from, other),
            _ => {}
        }
    }

    /// Host side of requests (also used for our own requests when we host).
    fn host_handle(&mut self, now: Instant, from: PublicKey, msg: Message) {
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        let request = matches!(
            msg,
            Message::Hello { .. }
                | Message::SetHand(_)
                | Message::SetMuted(_)
                | Message::Moderate { .. }
                | Message::StageAnswer { .. }
        );
        // Each request costs the host a roster update to everyone: a member gets as many
        // as a person could make, and the rest are ignored.
        if request
            && from != me
            && !room
                .requests
                .entry(from)
                .or_insert_with(|| Allowance::new(now, REQUEST_BURST, REQUEST_EVERY))
                .take(now)
        {
            return;
        }
        let mut changed = false;
        // The member whose entry changed, when only one did: a delta goes out instead of
        // the whole roster. A newcomer gets the whole roster.
        let mut changed_key = from;
        let mut newcomer = false;
        match msg {
            Message::Hello { name, candidates } => {
                if from == me || !valid_name(&name) || room.banned.contains(&from) {
                    return;
                }
                let observed = self.links.get(&from).and_then(|l| l.addr);
                let mut cands: Vec<SocketAddr> = observed.into_iter().collect();
                for c in candidates {
                    if !cands.contains(&c) && cands.len() < crate::roster::MAX_CANDIDATES {
                        cands.push(c);
                    }
                }
                if let Some(addr) = observed {
                    let _ = self.send_message(&from, &Message::Observed(addr));
                }
                let Some(room) = self.room.as_mut() else {
                    return;
                };
                if let Some(m) = room.member_mut(&from) {
                    m.name = name.trim().to_owned();
                    m.candidates = cands;
                } else {
                    if room.members.len() >= self.cfg.max_members {
                        return;
                    }
                    let joined = room.next_join_order;
                    room.next_join_order += 1;
                    newcomer = true;
                    room.members.push(Member {
                        key: from,
                        name: name.trim().to_owned(),
                        role: Role::Listener,
                        hand_raised: false,
                        muted: false,
                        candidates: cands,
                        joined,
                    });
                }
                changed = true;
            }
            Message::SetHand(up) => {
                if let Some(m) = room.member_mut(&from) {
                    let up = up && m.role == Role::Listener;
                    changed = m.hand_raised != up;
                    m.hand_raised = up;
                }
            }
            Message::SetMuted(muted) => {
                if let Some(m) = room.member_mut(&from) {
                    changed = m.muted != muted;
                    m.muted = muted;
                }
            }
            Message::Moderate { target, action } => {
                let Some(actor) = room.member(&from).map(|m| m.role) else {
                    return;
                };
                let Some(subject) = room.member(&target).map(|m| m.role) else {
                    return;
                };
                let allowed = match actor {
                    Role::Host => true,
                    Role::Moderator => {
                        matches!(subject, Role::Speaker | Role::Listener)
                            && action != Action::MakeModerator
                    }
                    _ => false,
                };
                if !allowed || subject == Role::Host || target == from {
                    return;
                }
                if action == Action::Remove {
                    self.remove_member(now, target, true);
                    return;
                }
                let asked = room.member(&target).is_some_and(|m| m.hand_raised);
                if action == Action::InviteToStage && subject == Role::Listener && !asked {
                    // Nobody is put on stage (and so has their microphone opened) without
                    // saying yes: ask first, and wait for the StageAnswer.
                    self.send_stage_invite(now, from, target);
                    return;
                }
                changed_key = target;
                let Some(m) = room.member_mut(&target) else {
                    return;
                };
                match action {
                    // A raised hand already asked to speak (the Clubhouse model): on stage
                    // at once, no invitation.
                    Action::InviteToStage if m.role == Role::Listener => {
                        m.role = Role::Speaker;
                        m.hand_raised = false;
                        room.stage_invites.remove(&target);
                    }
                    Action::MoveToAudience if m.role.on_stage() => {
                        m.role = Role::Listener;
                        m.muted = false;
                    }
                    Action::MakeModerator => {
                        m.role = Role::Moderator;
                        m.hand_raised = false;
                    }
                    Action::Mute if m.role.on_stage() => m.muted = true,
                    _ => return,
                }
                changed = true;
            }
            Message::StageAnswer { accept } => {
                // Used up whatever the answer: one invitation, one answer.
                let Some(invitation) = room.stage_invites.remove(&from) else {
                    return;
                };
                if now >= invitation.expires {
                    return;
                }
                if !accept {
                    self.events.push_back(Event::StageInviteDeclined {
                        member: from,
                        by: invitation.by,
                    });
                    return;
                }
                // The inviter must still be allowed to invite (not demoted since).
                if !room
                    .member(&invitation.by)
                    .is_some_and(|m| m.role.can_moderate())
                {
                    return;
                }
                let Some(m) = room.member_mut(&from) else {
                    return;
                };
                if m.role != Role::Listener {
                    return;
                }
                m.role = Role::Speaker;
                m.hand_raised = false;
                changed = true;
            }
            _ => {}
        }
        if changed {
            if let Some(room) = self.room.as_mut() {
                room.version += 1;
            }
            self.broadcast_update(changed_key, newcomer);
            self.emit_room_changed();
        }
    }

    /// Host: tells everyone that `key`'s entry changed (a delta), and a newcomer `key`
    /// the whole roster.
    fn broadcast_update(&mut self, key: PublicKey, newcomer: bool) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let Some(member) = room.member(&key).cloned() else {
            return self.broadcast_state();
        };
        let update = Message::Update {
            epoch: room.epoch,
            version: room.version,
            member,
        };
        if newcomer {
            let state = Message::State(room.state());
            if self.send_message(&key, &state).is_err()
                && let Some(l) = self.links.get_mut(&key)
            {
                l.roster_resync = true;
            }
            self.broadcast_roster(&update, Some(key));
        } else {
            self.broadcast_roster(&update, None);
        }
    }

    /// Sends a roster message to every member but us (and `except`). A member whose
    /// channel is full does not silently miss it: it gets the whole roster as soon as
    /// its channel has drained (`flush`).
    fn broadcast_roster(&mut self, msg: &Message, except: Option<PublicKey>) {
        let me = self.me;
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let peers: Vec<PublicKey> = room
            .members
            .iter()
            .map(|m| m.key)
            .filter(|k| *k != me && Some(*k) != except)
            .collect();
        let bytes = msg.encode();
        for p in peers {
            if let Some(link) = self.links.get_mut(&p)
                && (link.roster_resync || link.channel.send(&bytes).is_err())
            {
                link.roster_resync = true;
            }
        }
    }

    /// Member: applies the host's delta if it follows our roster exactly; anything else
    /// (another epoch, a gap, not from the host, a second host) changes nothing.
    fn apply_update(
        &mut self,
        now: Instant,
        from: PublicKey,
        epoch: u64,
        version: u64,
        member: Member,
    ) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        if from != room.host
            || room.phase != Phase::Open
            || epoch != room.epoch
            || Some(version) != room.version.checked_add(1)
            || member.role == Role::Host
        {
            return;
        }
        let mut s = room.state();
        s.version = version;
        match s.members.iter_mut().find(|m| m.key == member.key) {
            Some(m) if m.role == Role::Host => return,
            Some(m) => *m = member,
            None => s.members.push(member),
        }
        self.apply_state(now, from, s);
    }

    /// Host: takes a member out of the roster and opens a new epoch. With `ban`, the
    /// member is told, and the invite no longer admits their key.
    fn remove_member(&mut self, now: Instant, target: PublicKey, ban: bool) {
        let linger = self.cfg.linger;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if room.member(&target).is_none() {
            return;
        }
        room.members.retain(|m| m.key != target);
        room.chat_seen.remove(&target);
        room.stage_invites.remove(&target);
        if ban {
            room.banned.insert(target);
            let _ = self.send_message(&target, &Message::Removed);
            if let Some(l) = self.links.get_mut(&target) {
                l.closing = Some(now + linger);
                l.retry = None;
            }
        } else {
            self.drop_link(&target);
        }
        self.new_epoch();
        self.broadcast_state();
        self.emit_room_changed();
        if ban {
            // The ban holds their key only: with the old invite a fresh identity would
            // get a seat again. A new room secret makes the old invite answer nothing.
            self.rotate_room_secret(InviteChange::Removal);
        }
        self.schedule_rekeys(now);
    }

    /// Host: remembers a stage invitation from `by` to the listener `target` (replacing
    /// any earlier one) and sends it. Lapsed invitations and ones for members who are gone
    /// are dropped first, so the map never holds more than one entry per member.
    fn send_stage_invite(&mut self, now: Instant, by: PublicKey, target: PublicKey) {
        let Some(room) = self.room.as_mut() else {
            return;
        };
        let members = &room.members;
        room.stage_invites
            .retain(|k, inv| now < inv.expires && members.iter().any(|m| m.key == *k));
        room.stage_invites.insert(
            target,
            StageInvitation {
                by,
                expires: now + STAGE_INVITE_LIFETIME,
            },
        );
        let _ = self.send_message(&target, &Message::StageInvite { by });
    }

    /// Listener: the host relays a moderator's stage invitation. Kept for the application
    /// to answer only while we are a listener and `by` may moderate; anything else is
    /// dropped unseen.
    /// Stage invitations nobody answered in time lapse out loud: the listener's prompt
    /// goes, and the host learns the invitation went unanswered.
    fn lapse_stage_invitations(&mut self, now: Instant) {
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if let Some((by, arrived)) = room.stage_invited
            && now >= arrived + STAGE_ANSWER_BY
        {
            room.stage_invited = None;
            self.events.push_back(Event::StageInviteLapsed { by });
        }
        let mut lapsed: Vec<(PublicKey, PublicKey)> = room
            .stage_invites
            .iter()
            .filter(|(_, i)| now >= i.expires)
            .map(|(member, i)| (*member, i.by))
            .collect();
        // One order whatever the map's: the sans-IO machine stays deterministic.
        lapsed.sort_unstable();
        for (member, by) in lapsed {
            room.stage_invites.remove(&member);
            self.events
                .push_back(Event::StageInviteUnanswered { member, by });
        }
    }

    fn on_stage_invite(&mut self, now: Instant, by: PublicKey) {
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        let listening = room.member(&me).is_some_and(|m| m.role == Role::Listener);
        let may_invite = room.member(&by).is_some_and(|m| m.role.can_moderate());
        if room.phase != Phase::Open || !listening || !may_invite {
            return;
        }
        room.stage_invited = Some((by, now));
        self.events.push_back(Event::StageInvited { by });
    }

    /// Host: draws a fresh room secret, so initiations whose mac1 is keyed with the old
    /// one match no key and get no answer, and hands the application the new invite.
    /// Members are not told: only the host admits joiners (and a successor draws its own
    /// secret), so the secret stays with whoever the host gives the invite to.
    fn rotate_room_secret(&mut self, reason: InviteChange) -> Option<Invite> {
        let secret = Secret32::generate(&mut self.rng);
        self.room.as_mut()?.secret = secret;
        let invite = self.own_invite()?;
        self.events.push_back(Event::InviteChanged {
            invite: invite.clone(),
            reason,
        });
        Some(invite)
    }

    /// Our invite with the addresses we know of ourselves: where the old host saw us
    /// first (joiners from outside our network reach that), then our own addresses.
    fn own_invite(&self) -> Option<Invite> {
        let room = self.room.as_ref()?;
        let cands: Vec<Candidate> = room
            .observed
            .filter(|o| !room.my_candidates.contains(o))
            .map(|addr| Candidate {
                kind: CandidateKind::Reflexive,
                addr,
            })
            .into_iter()
            .chain(room.my_candidates.iter().map(|a| Candidate {
                kind: CandidateKind::Lan,
                addr: *a,
            }))
            .take(crate::invite::MAX_CANDIDATES)
            .collect();
        self.invite(cands)
    }

    fn new_epoch(&mut self) {
        let secret = Secret32::generate(&mut self.rng);
        if let Some(room) = self.room.as_mut() {
            room.epoch = room.epoch.saturating_add(1);
            room.epoch_secret = secret;
            room.version = 1;
        }
    }

    fn broadcast_state(&mut self) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let msg = Message::State(room.state());
        self.broadcast_roster(&msg, None);
    }

    fn emit_room_changed(&mut self) {
        if let Some(room) = self.room.as_ref() {
            self.events.push_back(Event::RoomChanged(room.view()));
        }
    }

    /// Links where we are the initiating side get a fresh handshake for the new epoch,
    /// slightly spread so the new roster reaches the peer first.
    fn schedule_rekeys(&mut self, now: Instant) {
        let me = self.me;
        let peers: Vec<PublicKey> = self.links.keys().copied().filter(|p| me < *p).collect();
        for p in peers {
            let j = self.jitter();
            if let Some(l) = self.links.get_mut(&p)
                && l.closing.is_none()
            {
                l.retry = Some(Retry {
                    attempts: 0,
                    next: now + j,
                });
            }
        }
    }

    fn apply_state(&mut self, now: Instant, from: PublicKey, s: RoomState) {
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        let joining = matches!(room.phase, Phase::Joining { .. });
        let mut hosts = s
            .members
            .iter()
            .filter(|m| m.role == Role::Host)
            .map(|m| m.key);
        let (Some(new_host), None) = (hosts.next(), hosts.next()) else {
            return;
        };
        // The current host may name anyone as host (a graceful hand-over); anyone else
        // must be the agreed successor naming itself.
        let from_host = from == room.host;
        let from_successor = successor(&room.members, &room.host) == Some(from) && new_host == from;
        let newer = joining || (s.epoch, s.version) > (room.epoch, room.version);
        if !(from_host || from_successor) || !newer || s.epoch == u64::MAX {
            return;
        }
        if !from_host && room.host_gone.is_none() {
            room.successor_state = Some((from, s));
            return;
        }
        let Some(mine) = s.members.iter().find(|m| m.key == me).cloned() else {
            if !joining {
                self.close_after_notice(now, LeftReason::Removed);
            }
            return;
        };
        let old_role = room.member(&me).map(|m| m.role);
        let old_muted = room.member(&me).is_some_and(|m| m.muted);
        let old_host = room.host;
        let epoch_changed = s.epoch != room.epoch;
        room.title = s.title;
        room.epoch = s.epoch;
        room.epoch_secret = s.epoch_secret;
        room.version = s.version;
        room.members = s.members;
        room.banned = s.banned.into_iter().collect();
        room.uniform = s.uniform;
        room.next_join_order = room.members.iter().map(|m| m.joined + 1).max().unwrap_or(0);
        let present: HashSet<PublicKey> = room.members.iter().map(|m| m.key).collect();
        room.chat_seen.retain(|k, _| present.contains(k));
        room.host = new_host;
        room.host_gone = None;
        room.successor_state = None;
        // An invitation is void once we are off the audience benches, or its host (who
        // alone holds the other half of it) is gone.
        if mine.role != Role::Listener || old_host != new_host {
            room.stage_invited = None;
        }
        let view = room.view();
        if joining {
            room.phase = Phase::Open;
            self.events.push_back(Event::Joined(view));
        } else {
            self.events.push_back(Event::RoomChanged(view));
            if old_host != new_host && new_host == me {
                self.become_host_invite();
            } else if old_host != new_host {
                self.events.push_back(Event::HostChanged {
                    host: new_host,
                    invite: None,
                });
            }
        }
        if old_role.is_some_and(|r| r != mine.role) {
            self.events.push_back(Event::RoleChanged(mine.role));
        }
        let want_muted = self.room.as_ref().is_some_and(|r| r.want_muted);
        if mine.muted && !old_muted && !want_muted {
            self.events.push_back(Event::MutedByModerator);
        }
        if !mine.muted {
            if let Some(r) = self.room.as_mut() {
                r.want_muted = false;
            }
        } else if let Some(r) = self.room.as_mut() {
            r.want_muted = true;
        }
        self.sync_links(now, epoch_changed);
    }

    /// Makes the links match the roster: new members get a link (we initiate when our key
    /// is the lower one), departed members lose theirs.
    fn sync_links(&mut self, now: Instant, epoch_changed: bool) {
        let me = self.me;
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let members: Vec<(PublicKey, Vec<SocketAddr>)> = room
            .members
            .iter()
            .filter(|m| m.key != me)
            .map(|m| (m.key, m.candidates.clone()))
            .collect();
        let gone: Vec<PublicKey> = self
            .links
            .iter()
            .filter(|(k, l)| l.closing.is_none() && !members.iter().any(|(m, _)| m == *k))
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            self.drop_link(&k);
        }
        for (key, cands) in members {
            let j = self.jitter();
            let link = self.links.entry(key).or_insert_with(|| Link::new(key, now));
            link.candidates = cands;
            // A link not up yet is opened from both sides at once, so each side's
            // initiation opens its own NAT towards the other (the roster reaching
            // everyone at about the same time is the "punch now"). Re-keys for a new
            // epoch stay with the lower key, so the two never race.
            let setup = link.current.is_none();
            if link.retry.is_none() && (setup || (me < key && epoch_changed)) {
                let next = if setup { now } else { now + j };
                link.retry = Some(Retry { attempts: 0, next });
            }
        }
    }

    fn on_leave(&mut self, now: Instant, from: PublicKey) {
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if room.phase != Phase::Open {
            return;
        }
        if room.host == me {
            self.remove_member(now, from, false);
            return;
        }
        if from == room.host {
            self.host_is_gone(now, from);
        } else {
            self.drop_link(&from);
        }
    }

    /// We just became host: draw a fresh room secret (removed members hold the old one,
    /// and the old roster told them our key and addresses) and hand the application the
    /// new invite to share.
    fn become_host_invite(&mut self) {
        let secret = Secret32::generate(&mut self.rng);
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        room.secret = secret;
        let invite = self.own_invite();
        self.events
            .push_back(Event::HostChanged { host: me, invite });
    }

    /// The host left or timed out: drop its link, apply a successor roster that came
    /// early, or take over if we are the successor.
    fn host_is_gone(&mut self, now: Instant, host: PublicKey) {
        let Some(room) = self.room.as_mut() else {
            return;
        };
        room.host_gone = Some(now);
        let early = room.successor_state.take();
        self.drop_link(&host);
        if let Some((from, state)) = early {
            self.apply_state(now, from, state);
        }
        self.maybe_take_over(now);
    }

    /// When the host is gone, the successor becomes host and opens a new epoch.
    fn maybe_take_over(&mut self, now: Instant) {
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if room.host_gone.is_none() || successor(&room.members, &room.host) != Some(me) {
            return;
        }
        let old = room.host;
        room.members.retain(|m| m.key != old);
        if let Some(m) = room.member_mut(&me) {
            m.role = Role::Host;
            m.hand_raised = false;
        }
        room.host = me;
        room.host_gone = None;
        room.successor_state = None;
        room.stage_invited = None;
        room.next_join_order = room.members.iter().map(|m| m.joined + 1).max().unwrap_or(0);
        self.new_epoch();
        self.broadcast_state();
        self.become_host_invite();
        self.events.push_back(Event::RoleChanged(Role::Host));
        self.emit_room_changed();
        self.schedule_rekeys(now);
    }

    fn close_after_notice(&mut self, now: Instant, reason: LeftReason) {
        let linger = self.cfg.linger;
        if let Some(room) = self.room.as_mut() {
            room.phase = Phase::Closing {
                until: now + linger,
            };
        }
        for l in self.links.values_mut() {
            l.retry = None;
        }
        self.events.push_back(Event::Left(reason));
    }

    fn close_now(&mut self, reason: LeftReason) {
        self.drop_room();
        self.events.push_back(Event::Left(reason));
    }

    fn drop_room(&mut self) {
        self.room = None;
        let keys: Vec<PublicKey> = self.links.keys().copied().collect();
        for k in keys {
            self.drop_link(&k);
        }
    }

    fn drop_link(&mut self, peer: &PublicKey) {
        // Relays through this peer, and relaying for it, end with it.
        self.relay_halves.retain(|(a, b), _| a != peer && b != peer);
        self.forwards
            .retain(|_, f| f.from != *peer && f.to != *peer);
        for l in self.links.values_mut() {
            if l.relay.is_some_and(|r| r.via == *peer) {
                if let Some(r) = l.relay.take() {
                    self.relay_in.remove(&r.recv_index);
                }
                l.relay_tried.clear();
            }
        }
        if let Some(link) = self.links.remove(peer) {
            if let Some(r) = link.relay {
                self.relay_in.remove(&r.recv_index);
            }
            for i in link.indices() {
                self.indices.remove(&i);
            }
            if link.reported_up {
                self.events.push_back(Event::LinkDown(*peer));
            }
        }
    }

    // ---------------------------------------------------------------- output

    fn send_message(&mut self, peer: &PublicKey, msg: &Message) -> Result<(), CommandError> {
        let link = self
            .links
            .get_mut(peer)
            .ok_or(CommandError::UnknownMember)?;
        link.channel
            .send(&msg.encode())
            .map_err(|_| CommandError::Backlog)
    }

    /// Queues `msg` to every member but us (and `except`).
    fn broadcast(&mut self, msg: &Message, except: Option<PublicKey>) -> Result<(), CommandError> {
        let me = self.me;
        let Some(room) = self.room.as_ref() else {
            return Err(CommandError::NotInRoom);
        };
        let peers: Vec<PublicKey> = room
            .members
            .iter()
            .map(|m| m.key)
            .filter(|k| *k != me && Some(*k) != except)
            .collect();
        let bytes = msg.encode();
        let mut result = Ok(());
        for p in peers {
            if let Some(link) = self.links.get_mut(&p)
                && link.channel.send(&bytes).is_err()
            {
                result = Err(CommandError::Backlog);
            }
        }
        result
    }

    /// Pads, seals and sends a plaintext to `peer` on its current path.
    fn send_plain(&mut self, now: Instant, peer: PublicKey, plain: &mut Vec<u8>) -> bool {
        let route = self.route(now, &peer);
        self.send_plain_to(now, peer, plain, route)
    }

    /// Pads, seals and sends a plaintext to `peer` by `route`: an address, and the relay
    /// index to write into the datagram when that address is a relay's.
    fn send_plain_to(
        &mut self,
        now: Instant,
        peer: PublicKey,
        plain: &mut Vec<u8>,
        route: Option<(Hop, Option<u32>)>,
    ) -> bool {
        let reject_after = self.cfg.reject_after;
        if !frame::pad(plain) {
            return false;
        }
        let Some((dest, relay_index)) = route else {
            return false;
        };
        let Some(link) = self.links.get_mut(&peer) else {
            return false;
        };
        let Some(session) = link.sendable(now, reject_after) else {
            return false;
        };
        match session.seal(plain) {
            Ok(mut contents) => {
                if let Some(index) = relay_index {
                    wire::set_receiver(&mut contents, index);
                }
                link.last_send = now;
                self.transmits.push_back(Transmit {
                    destination: dest.addr,
                    contents,
                    socket: dest.socket,
                });
                true
            }
            Err(_) => false,
        }
    }

    /// The slot length of our links now (PROTOCOL §5.1).
    fn slot_period(&self) -> Duration {
        let me = self.me;
        let full_rate = self
            .room
            .as_ref()
            .is_some_and(|r| r.uniform_now() || r.member(&me).is_some_and(|m| m.role.on_stage()));
        Schedule::period(self.cfg.slot, self.cfg.listener_slot, full_rate)
    }

    /// The timer's slot: one datagram on every link that can carry one: to each member
    /// the oldest queued audio frame when we are on stage and have one, otherwise (and
    /// to links outside the roster) whatever control the link owes, else padding.
    fn run_slot(&mut self, now: Instant) {
        let reject_after = self.cfg.reject_after;
        let me = self.me;
        let on_stage = self.room.as_ref().is_some_and(|r| {
            r.phase == Phase::Open && r.member(&me).is_some_and(|m| m.role.on_stage())
        });
        if !on_stage {
            self.audio_queue.clear();
        }
        let audio = self.audio_queue.pop_front();
        let mut plain = Vec::new();
        if let Some((seq, frame)) = &audio {
            plain.reserve(wire::AUDIO_PLAINTEXT_LEN);
            frame::push_audio(&mut plain, *seq, frame);
            frame::pad(&mut plain);
            self.audio_slots += 1;
        }
        let peers: Vec<PublicKey> = self
            .links
            .iter()
            .filter(|(_, l)| l.is_up(now, reject_after))
            .map(|(k, _)| *k)
            .collect();
        for peer in peers {
            let Some((seq, _)) = audio.as_ref().filter(|_| self.is_other_member(&peer)) else {
                self.send_control_slot(now, peer, reject_after, None);
                continue;
            };
            // The frame fills this link's slot, unless control has waited long enough
            // for the slot to be given up to it (`STEAL_GAP`).
            let steal = self.links.get_mut(&peer).is_some_and(|l| {
                let steal = l.audio_run >= STEAL_GAP && l.control_waiting(now);
                if !steal {
                    l.audio_run = l.audio_run.saturating_add(1);
                }
                steal
            });
            if steal && self.send_control_slot(now, peer, reject_after, Some(*seq)) {
                continue;
            }
            self.send_plain(now, peer, &mut plain);
        }
    }

    /// Fills one slot to `peer` with the control it owes (a pong, a reception report, a
    /// path proof or its answer, a ping when due, channel acks and segments) and sends
    /// it, padded to the one size. Returns whether a datagram left.
    fn send_control_slot(
        &mut self,
        now: Instant,
        peer: PublicKey,
        reject_after: Duration,
        skipped: Option<u32>,
    ) -> bool {
        let keepalive = self.cfg.keepalive;
        let route = self.route(now, &peer);
        let token = self.rng.next_u64();
        let Some(link) = self.links.get_mut(&peer) else {
            return false;
        };
        if !link.is_up(now, reject_after) {
            return false;
        }
        // Path proofs ride only on the direct path they are about.
        let direct = match route {
            Some((hop, None)) if link.direct_hop() == Some(hop) => Some(hop),
            _ => None,
        };
        if direct.is_none() {
            // Proofs of a direct path we do not use: moot (the path checks probe it).
            link.confirm_wanted = false;
            link.answer_wanted = None;
        }
        let mut plain = Vec::with_capacity(wire::AUDIO_PLAINTEXT_LEN);
        if let Some(seq) = skipped {
            frame::push_skipped(&mut plain, seq);
        }
        if let Some((id, since)) = link.pong_owed.take() {
            let held = now.saturating_duration_since(since).as_millis();
            frame::push_pong(&mut plain, id, u16::try_from(held).unwrap_or(u16::MAX));
        }
        if let Some(loss) = link.report_owed.take() {
            frame::push_report(&mut plain, loss);
        }
        if let Some(hop) = direct {
            if let Some(t) = link.answer_wanted.take() {
                frame::push_path(&mut plain, true, t);
            } else if link.confirm_wanted {
                link.confirm_wanted = false;
                link.remember_challenge(Challenge {
                    hop,
                    token,
                    sent: now,
                });
                frame::push_path(&mut plain, false, token);
            }
        }
        if now >= link.next_ping {
            let id = link.next_ping_id;
            link.next_ping_id = link.next_ping_id.wrapping_add(1);
            link.ping = Some((id, now));
            link.next_ping = now + keepalive;
            frame::push_ping(&mut plain, id);
        }
        let budget = wire::AUDIO_PLAINTEXT_LEN.saturating_sub(plain.len());
        link.channel.write_frames(now, &mut plain, budget);
        link.audio_run = 0;
        self.send_plain_to(now, peer, &mut plain, route)
    }

    /// After input or a command: nothing is sent here (everything waits for its slot);
    /// a member whose roster update did not fit its channel gets the whole roster once
    /// there is room, and paths are reported.
    fn flush(&mut self, now: Instant) {
        let i_host = self
            .room
            .as_ref()
            .is_some_and(|r| r.host == self.me && r.phase == Phase::Open);
        if i_host {
            let stale: Vec<PublicKey> = self
                .links
                .iter()
                .filter(|(_, l)| l.roster_resync && l.channel.queued_bytes() == 0)
                .map(|(k, _)| *k)
                .collect();
            if let Some(state) = self.room.as_ref().map(|r| Message::State(r.state())) {
                for peer in stale {
                    if self.send_message(&peer, &state).is_ok()
                        && let Some(l) = self.links.get_mut(&peer)
                    {
                        l.roster_resync = false;
                    }
                }
            }
        }
        if self.links.values().any(|l| l.current.is_some()) {
            self.schedule.start(now);
        } else {
            self.schedule.stop();
        }
        self.report_paths(now);
    }

    // ---------------------------------------------------------------- paths and relays

    /// How datagrams reach `peer` now: straight to its validated address while that path
    /// is fresh, else through a ready relay, else the validated address or the first
    /// candidate (a handshake in flight, or a path we still hope for).
    fn route(&self, now: Instant, peer: &PublicKey) -> Option<(Hop, Option<u32>)> {
        let link = self.links.get(peer)?;
        let window = self.direct_window();
        // Something arrived straight lately. Whether the peer hears us is its own
        // judgement: if it does not, it goes to the relay, and we follow it there.
        let healthy = link.direct_fresh(now, window);
        // A peer that sends through the relay does not hear us directly (or thinks so):
        // meet it there. The higher key follows the lower key's choice; the lower key
        // follows only until a round trip on the direct path proves it works again, so
        // the two cannot hold each other on the relay. Challenges and probes always go
        // straight, which is how both find their way back.
        let peer_relays = link.relay_recv.is_some_and(|t| now < t + window);
        let follow = peer_relays
            && (*peer < self.me
                || link
                    .relay_since
                    .is_some_and(|s| link.direct_confirmed.is_none_or(|c| c <= s)));
        if (!healthy || follow)
            && let Some(r) = link.relay
            && let Some(index) = r.send_index
            && let Some(via) = self.links.get(&r.via).and_then(Link::direct_hop)
        {
            return Some((via, Some(index)));
        }
        link.direct_hop()
            .or_else(|| link.candidates.first().copied().map(Hop::main))
            .map(|h| (h, None))
    }

    /// How long a direct path counts as working after its last authenticated datagram:
    /// three keepalives, so a lost one or two must not flip a link to the relay.
    fn direct_window(&self) -> Duration {
        self.cfg.keepalive * 3
    }

    /// The path a link uses now, if it has a session.
    fn path_of(&self, now: Instant, peer: &PublicKey) -> Option<Path> {
        let link = self.links.get(peer)?;
        link.current.as_ref()?;
        match self.route(now, peer)? {
            (_, Some(_)) => link.relay.map(|r| Path::Relayed { via: r.via }),
            (hop, None) => (link.direct_hop() == Some(hop)).then_some(Path::Direct(hop.addr)),
        }
    }

    /// Sends a handshake datagram back the way its counterpart came.
    fn send_handshake(&mut self, origin: Origin, peer: PublicKey, packet: Vec<u8>) {
        match origin {
            Origin::Direct(to) => self.transmits.push_back(Transmit {
                destination: to.addr,
                contents: packet,
                socket: to.socket,
            }),
            Origin::Relay(via) => {
                let _ = self.send_message(
                    &via,
                    &Message::RelayTo {
                        peer,
                        datagram: packet,
                    },
                );
            }
        }
    }

    /// As a relay: passes a transport datagram on, with the receiver's index written in.
    /// Only the member the index was given to may use it, from its validated address, so
    /// nobody can bounce traffic off us.
    fn forward(&mut self, from: Hop, f: Forward, data: &[u8]) {
        let source = self.links.get(&f.from).and_then(Link::direct_hop);
        let Some(dest) = self.links.get(&f.to).and_then(Link::direct_hop) else {
            return;
        };
        if source != Some(from) {
            return;
        }
        let mut contents = data.to_vec();
        wire::set_receiver(&mut contents, f.rewrite);
        self.relayed.0 += 1;
        self.relayed.1 += contents.len() as u64;
        self.transmits.push_back(Transmit {
            destination: dest.addr,
            contents,
            socket: dest.socket,
        });
    }

    /// Whether `key` is in the room with us (and is not us).
    fn is_other_member(&self, key: &PublicKey) -> bool {
        *key != self.me
            && self
                .room
                .as_ref()
                .is_some_and(|r| r.phase == Phase::Open && r.member(key).is_some())
    }

    /// As a relay: `from` wants to reach `peer` through us. When both sides asked, each
    /// gets an index for the other; until then the other side is asked.
    fn on_relay_open(&mut self, from: PublicKey, peer: PublicKey, index: u32) {
        if from == peer || !self.is_other_member(&from) || !self.is_other_member(&peer) {
            return;
        }
        let peer_reachable = self.links.get(&peer).is_some_and(|l| l.current.is_some());
        if !peer_reachable {
            return;
        }
        self.relay_halves.insert((from, peer), index);
        let Some(&theirs) = self.relay_halves.get(&(peer, from)) else {
            let _ = self.send_message(&peer, &Message::RelayAsk { peer: from });
            return;
        };
        self.forwards
            .retain(|_, f| !(f.from == from && f.to == peer || f.from == peer && f.to == from));
        let to_peer = self.new_index();
        self.forwards.insert(
            to_peer,
            Forward {
                from,
                to: peer,
                rewrite: theirs,
            },
        );
        let to_from = self.new_index();
        self.forwards.insert(
            to_from,
            Forward {
                from: peer,
                to: from,
                rewrite: index,
            },
        );
        let _ = self.send_message(
            &from,
            &Message::RelayReady {
                peer,
                index: to_peer,
            },
        );
        let _ = self.send_message(
            &peer,
            &Message::RelayReady {
                peer: from,
                index: to_from,
            },
        );
    }

    /// `peer` could not reach us directly and asked `via` to relay: open our side there.
    fn on_relay_ask(&mut self, now: Instant, via: PublicKey, peer: PublicKey) {
        if !self.is_other_member(&via) || !self.is_other_member(&peer) {
            return;
        }
        let Some(link) = self.links.get(&peer) else {
            return;
        };
        // Already relaying through `via` and ready: nothing to do. Otherwise (re)open.
        if link
            .relay
            .is_some_and(|r| r.via == via && r.send_index.is_some())
        {
            return;
        }
        self.open_relay(now, peer, via);
    }

    /// As a relay: passes a handshake datagram from one member to another.
    fn on_relay_to(&mut self, from: PublicKey, peer: PublicKey, datagram: Vec<u8>) {
        if from == peer || !self.is_other_member(&from) || !self.is_other_member(&peer) {
            return;
        }
        if !matches!(
            Packet::parse(&datagram),
            Ok(Packet::Init(_) | Packet::Response(_))
        ) {
            return;
        }
        let _ = self.send_message(
            &peer,
            &Message::RelayFrom {
                peer: from,
                datagram,
            },
        );
    }

    /// Asks `via` to relay between us and `peer`.
    fn open_relay(&mut self, now: Instant, peer: PublicKey, via: PublicKey) {
        let index = self.new_index();
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if let Some(old) = link.relay.take() {
            self.relay_in.remove(&old.recv_index);
        }
        link.relay = Some(RelayPath {
            via,
            recv_index: index,
            send_index: None,
            opened: now,
        });
        // A link still without a session sends its next initiation through the relay at
        // once instead of at the next retry (up to seconds away).
        if link.current.is_none() && link.closing.is_none() {
            link.retry = Some(Retry {
                attempts: link.retry.map_or(0, |r| r.attempts),
                next: now,
            });
        }
        self.relay_in.insert(index, peer);
        let _ = self.send_message(&via, &Message::RelayOpen { peer, index });
    }

    /// The member to ask to relay to `peer`: the host first, then others in join order,
    /// among those we have a working direct link to, skipping ones that did not answer.
    fn pick_relay(&self, now: Instant, peer: &PublicKey) -> Option<PublicKey> {
        let room = self.room.as_ref()?;
        let tried = &self.links.get(peer)?.relay_tried;
        let mut members: Vec<&Member> = room
            .members
            .iter()
            .filter(|m| m.key != self.me && m.key != *peer)
            .collect();
        members.sort_by_key(|m| (m.role != Role::Host, m.joined));
        let usable = |k: &PublicKey| {
            self.links
                .get(k)
                .is_some_and(|l| l.current.is_some() && l.direct_fresh(now, self.direct_window()))
        };
        members
            .iter()
            .map(|m| m.key)
            .find(|k| usable(k) && !tried.contains(k))
            .or_else(|| members.iter().map(|m| m.key).find(|k| usable(k)))
    }

    /// Sends a path challenge straight to `to`.
    fn send_challenge(&mut self, now: Instant, peer: PublicKey, to: Hop) {
        // A challenge to where our slots go anyway rides in the next slot: an extra
        // datagram on the flow would show on the wire.
        if self.route(now, &peer) == Some((to, None))
            && let Some(link) = self.links.get_mut(&peer)
            && link.direct_hop() == Some(to)
        {
            link.confirm_wanted = true;
            return;
        }
        let token = self.rng.next_u64();
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        link.remember_challenge(Challenge {
            hop: to,
            token,
            sent: now,
        });
        let mut plain = Vec::with_capacity(wire::AUDIO_PLAINTEXT_LEN);
        frame::push_path(&mut plain, false, token);
        self.send_plain_to(now, peer, &mut plain, Some((to, None)));
    }

    /// The peer answered a challenge from `addr`: that is its direct path from now on.
    /// The host also puts it first among the member's candidates (it is where others
    /// should punch) and tells the member.
    fn path_validated(&mut self, now: Instant, peer: PublicKey, hop: Hop) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        link.set_direct(hop, now);
        link.challenges.clear();
        let addr = hop.addr;
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if room.host != me || room.phase != Phase::Open {
            return;
        }
        let Some(m) = room.member_mut(&peer) else {
            return;
        };
        if m.candidates.first() == Some(&addr) {
            return;
        }
        m.candidates.retain(|c| *c != addr);
        m.candidates.insert(0, addr);
        m.candidates.truncate(crate::roster::MAX_CANDIDATES);
        room.version += 1;
        let _ = self.send_message(&peer, &Message::Observed(addr));
        self.broadcast_update(peer, false);
        self.emit_room_changed();
    }

    /// Looks after one link's path: opens or replaces a relay when the direct path has
    /// failed, probes the peer's addresses straight so a direct path can (re)appear, and
    /// reports a peer nobody can reach.
    fn maintain_path(&mut self, now: Instant, peer: PublicKey) {
        let window = self.direct_window();
        let cfg = self.cfg.clone();
        let member = self.is_other_member(&peer);
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if link.closing.is_some() || !member {
            link.path_check = Some(now + cfg.probe_interval);
            return;
        }
        let has_session = link.current.is_some();
        if has_session && link.direct_fresh(now, window) {
            // Healthy. Prove the round trip now and then: receiving alone does not show
            // that the peer hears us (a one-way break leaves us sending into nothing).
            link.path_check = Some(now + cfg.probe_interval);
            link.birthday = None;
            // Due every few seconds; every second while the peer sends through the relay
            // (it does not hear us directly, it seems: the answer tells when it does).
            let peer_relays = link.relay_recv.is_some_and(|t| now < t + window);
            let due = link
                .direct_confirmed
                .is_none_or(|t| now >= t + CONFIRM_EVERY)
                || peer_relays;
            let recent = link
                .challenges
                .back()
                .is_some_and(|c| now < c.sent + cfg.probe_interval);
            if due && !recent {
                // The next slot carries it (a stage member's link gives up an audio
                // frame for it).
                if link.direct_hop().is_some() {
                    link.confirm_wanted = true;
                }
            }
            return;
        }
        link.path_check = Some(now + cfg.probe_interval);
        let failed = if has_session {
            true
        } else {
            link.down_since.is_some_and(|d| now >= d + cfg.relay_after)
        };
        let relay = link.relay;
        let unreachable = !has_session
            && !link.unreachable_reported
            && link
                .down_since
                .is_some_and(|d| now >= d + cfg.unreachable_after);
        if failed {
            match relay {
                None => {
                    if let Some(via) = self.pick_relay(now, &peer) {
                        self.open_relay(now, peer, via);
                    }
                }
                Some(r) if r.send_index.is_none() && now >= r.opened + cfg.relay_ready_timeout => {
                    if let Some(l) = self.links.get_mut(&peer) {
                        l.relay_tried.push(r.via);
                        l.relay_tried.dedup();
                    }
                    if let Some(via) = self.pick_relay(now, &peer) {
                        self.open_relay(now, peer, via);
                    }
                }
                Some(_) => {}
            }
        }
        if unreachable {
            let Some(link) = self.links.get_mut(&peer) else {
                return;
            };
            link.unreachable_reported = true;
            let tried = link.candidates.clone();
            let relayed = link.relay.is_some();
            self.events.push_back(Event::Unreachable {
                peer,
                tried,
                relay_asked: relayed,
            });
        }
        if has_session {
            self.maybe_start_birthday(now, peer);
            // Probes straight to every address the peer may have: they keep our side of
            // punched holes open, and the peer answers one that arrives with a challenge.
            // Every second at first; once the direct path has been gone a while (two
            // strict NATs), every few seconds: a path that appears later still shows up.
            let Some(link) = self.links.get_mut(&peer) else {
                return;
            };
            let since = link
                .direct_recv
                .or(link.current.as_ref().map(|s| s.created));
            let long_gone = since.is_some_and(|t| now >= t + PROBE_BACKOFF_AFTER);
            if long_gone
                && link
                    .last_probe
                    .is_some_and(|t| now < t + PROBE_SLOW_INTERVAL)
            {
                return;
            }
            link.last_probe = Some(now);
            // Each probe is a path challenge: the answer proves the round trip, the
            // arrival shows the peer a path (it challenges back).
            for d in link.direct_hops() {
                self.send_challenge(now, peer, d);
            }
        }
    }

    /// Starts a birthday attempt on a relayed link when exactly one side sits behind a
    /// port-translating NAT (both would need ~2^16 tries; neither means simultaneous open
    /// should have worked and a firewall is in the way).
    fn maybe_start_birthday(&mut self, now: Instant, peer: PublicKey) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let (Some(mine), Some(theirs)) = (room.member(&self.me), room.member(&peer)) else {
            return;
        };
        let role = match (mine.port_translated(), theirs.port_translated()) {
            (true, false) => BirthdayRole::Spray,
            (false, true) => BirthdayRole::Probe,
            _ => return,
        };
        let Some(&target) = theirs.candidates.first() else {
            return;
        };
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let ready = link.relay.is_some_and(|r| r.send_index.is_some());
        let attempts = match link.birthday {
            None => 0,
            Some(b) if b.attempts < BIRTHDAY_ATTEMPTS && now >= b.started + BIRTHDAY_RETRY => {
                b.attempts
            }
            Some(_) => return,
        };
        if !ready {
            return;
        }
        // The prober waits a moment so the sprayer's mappings exist when probes arrive.
        let first = match role {
            BirthdayRole::Spray => now,
            BirthdayRole::Probe => now + BIRTHDAY_TICK * 10,
        };
        link.birthday = Some(Birthday {
            role,
            target,
            started: now,
            next: first,
            sent: 0,
            attempts: attempts + 1,
        });
    }

    /// One step of a birthday attempt: a spray from every extra socket, or a burst of
    /// probes at random ports. Each datagram is an ordinary audio-sized ping in the link
    /// session; whichever one gets through draws a path challenge and the link goes direct.
    fn step_birthday(&mut self, now: Instant, peer: PublicKey) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let Some(mut b) = link.birthday else {
            return;
        };
        if now >= b.started + BIRTHDAY_WINDOW || link.current.is_none() {
            // Done: the next attempt (if any) starts from `maintain_path`.
            b.next = b.started + BIRTHDAY_RETRY;
            link.birthday = Some(b);
            return;
        }
        let hops: Vec<Hop> = match b.role {
            BirthdayRole::Spray => {
                b.next = now + BIRTHDAY_SPRAY_EVERY;
                (1..=BIRTHDAY_SOCKETS)
                    .map(|socket| Hop {
                        addr: b.target,
                        socket,
                    })
                    .collect()
            }
            BirthdayRole::Probe => {
                let n = BIRTHDAY_BURST.min(BIRTHDAY_PROBES.saturating_sub(b.sent));
                b.sent += n;
                b.next = if b.sent >= BIRTHDAY_PROBES {
                    b.started + BIRTHDAY_WINDOW
                } else {
                    now + BIRTHDAY_TICK
                };
                let span = u32::from(u16::MAX - BIRTHDAY_LOW_PORT) + 1;
                (0..n)
                    .map(|_| {
                        let port = BIRTHDAY_LOW_PORT + (self.rng.next_u32() % span) as u16;
                        Hop::main(SocketAddr::new(b.target.ip(), port))
                    })
                    .collect()
            }
        };
        if let Some(link) = self.links.get_mut(&peer) {
            link.birthday = Some(b);
        }
        for hop in hops {
            let mut plain = Vec::with_capacity(wire::AUDIO_PLAINTEXT_LEN);
            let Some(link) = self.links.get_mut(&peer) else {
                return;
            };
            let id = link.next_ping_id;
            link.next_ping_id = link.next_ping_id.wrapping_add(1);
            frame::push_ping(&mut plain, id);
            self.send_plain_to(now, peer, &mut plain, Some((hop, None)));
        }
    }

    /// Tells the application about every link whose path changed (once in the room: the
    /// host link's path is told after `Joined`, when the application knows the names).
    /// Only when something that moves paths happened since the last sweep: a flush
    /// follows every audio datagram, and those almost never do.
    fn report_paths(&mut self, now: Instant) {
        if !std::mem::take(&mut self.paths_dirty)
            || self.room.as_ref().is_none_or(|r| r.phase != Phase::Open)
        {
            return;
        }
        let peers: Vec<PublicKey> = self.links.keys().copied().collect();
        for peer in peers {
            let path = self.path_of(now, &peer);
            let Some(link) = self.links.get_mut(&peer) else {
                continue;
            };
            if link.reported_path != path {
                link.reported_path = path;
                if let Some(path) = path {
                    self.events.push_back(Event::LinkPath { peer, path });
                }
            }
        }
    }

    // ---------------------------------------------------------------- timers

    /// The earliest time [`Endpoint::handle_timeout`] should be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let room = self.room.as_ref()?;
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |y| y.min(x)));
        match &room.phase {
            Phase::Joining { deadline, .. } => at(*deadline),
            Phase::Closing { until } => at(*until),
            Phase::Open => {}
        }
        if let Some(since) = room.host_gone {
            at(since + self.cfg.peer_timeout * 3);
        }
        if let Some((_, arrived)) = room.stage_invited {
            at(arrived + STAGE_ANSWER_BY);
        }
        for i in room.stage_invites.values() {
            at(i.expires);
        }
        if let Some(slot) = self.schedule.due() {
            at(slot);
        }
        for (peer, l) in &self.links {
            if let Some(r) = l.retry {
                at(r.next);
            }
            if let Some(c) = l.closing {
                at(c);
            }
            if let Some(s) = &l.current {
                at(s.created + self.cfg.reject_after);
                if self.me < *peer && l.retry.is_none() && l.closing.is_none() {
                    at(s.created + self.cfg.rekey_after);
                }
                if room.phase == Phase::Open
                    && let Some(r) = l.report_next
                {
                    at(r);
                }
            }
            if l.reported_up {
                at(l.last_recv + self.cfg.peer_timeout);
            }
            if room.phase == Phase::Open
                && let Some(c) = l.path_check
            {
                at(c);
            }
            if let Some(b) = l.birthday
                && b.next < b.started + BIRTHDAY_RETRY
            {
                at(b.next);
            }
        }
        t
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Paths also change with time alone (a direct path goes stale).
        self.paths_dirty = true;
        let Some(room) = self.room.as_ref() else {
            return;
        };
        match &room.phase {
            Phase::Joining { deadline, tried } if now >= *deadline => {
                let tried = tried.clone();
                self.drop_room();
                self.events
                    .push_back(Event::JoinFailed(JoinFailure::Unreachable { tried }));
                return;
            }
            Phase::Closing { until } if now >= *until => {
                self.drop_room();
                return;
            }
            _ => {}
        }
        if room
            .host_gone
            .is_some_and(|since| now >= since + self.cfg.peer_timeout * 3)
        {
            // Nobody took over (we may have been dropped from the room unawares).
            self.close_now(LeftReason::TimedOut);
            return;
        }
        self.lapse_stage_invitations(now);
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let open = room.phase == Phase::Open;
        let i_host = room.host == self.me && open;
        let members: HashSet<PublicKey> = room.members.iter().map(|m| m.key).collect();
        let me = self.me;
        let cfg = self.cfg.clone();
        let peers: Vec<PublicKey> = self.links.keys().copied().collect();
        for peer in peers {
            let Some(link) = self.links.get_mut(&peer) else {
                continue;
            };
            if link.closing.is_some_and(|c| now >= c) {
                self.drop_link(&peer);
                continue;
            }
            // A joiner that handshook but never said Hello (or a stale one) holds no
            // seat: the host forgets it once it goes quiet, so invite holders cannot pile
            // up state.
            if i_host
                && !members.contains(&peer)
                && link.closing.is_none()
                && now.saturating_duration_since(link.last_recv) >= cfg.peer_timeout
            {
                self.drop_link(&peer);
                continue;
            }
            // Expire old sessions.
            let mut expired = Vec::new();
            for slot in [&mut link.current, &mut link.previous, &mut link.next] {
                if slot
                    .as_ref()
                    .is_some_and(|s| now.saturating_duration_since(s.created) >= cfg.reject_after)
                    && let Some(s) = slot.take()
                {
                    expired.push(s.local_index);
                }
            }
            if link.current.is_none() && link.down_since.is_none() {
                link.down_since = Some(now);
            }
            // Time to rekey (we initiate on links where our key is lower); a lost session
            // is set up again from both sides (hole punching needs both).
            if link.retry.is_none() && link.closing.is_none() {
                let stale = link.current.as_ref().is_some_and(|s| {
                    now.saturating_duration_since(s.created) >= cfg.rekey_after
                        || s.sent() >= REKEY_AFTER_MESSAGES
                });
                if (me < peer && stale) || (link.current.is_none() && link.reported_up) {
                    link.retry = Some(Retry {
                        attempts: 0,
                        next: now,
                    });
                }
            }
            let timed_out = link.reported_up
                && now.saturating_duration_since(link.last_recv) >= cfg.peer_timeout;
            let retry_due = link.retry.is_some_and(|r| now >= r.next);
            let path_due = open && link.path_check.is_some_and(|c| now >= c);
            let birthday_due = link
                .birthday
                .is_some_and(|b| now >= b.next && b.next < b.started + BIRTHDAY_RETRY);
            // The report clock runs only while a session can carry the report (the same
            // condition under which `poll_timeout` asks for it).
            let report = if open && link.current.is_some() {
                link.take_report(now, cfg.report_interval)
            } else {
                None
            };
            for i in expired {
                self.indices.remove(&i);
            }
            if timed_out {
                self.on_peer_timeout(now, peer);
                continue;
            }
            if retry_due {
                self.start_handshake(now, peer);
            }
            if let Some(loss) = report
                && let Some(l) = self.links.get_mut(&peer)
            {
                l.report_owed = Some(loss);
            }
            if path_due {
                self.maintain_path(now, peer);
            }
            if birthday_due {
                self.step_birthday(now, peer);
            }
        }
        let period = self.slot_period();
        if self.schedule.take_due(now, period) {
            self.run_slot(now);
        }
        self.flush(now);
    }

    fn on_peer_timeout(&mut self, now: Instant, peer: PublicKey) {
        let me = self.me;
        if let Some(link) = self.links.get_mut(&peer) {
            link.reported_up = false;
            link.down_since = Some(now);
            link.addr = None;
            link.direct_recv = None;
            link.path_check = Some(now);
            for s in [link.current.take(), link.previous.take(), link.next.take()]
                .into_iter()
                .flatten()
            {
                self.indices.remove(&s.local_index);
            }
        }
        self.events.push_back(Event::LinkDown(peer));
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if room.phase != Phase::Open {
            return;
        }
        if room.host == me {
            self.remove_member(now, peer, false);
        } else if peer == room.host {
            self.host_is_gone(now, peer);
        } else if let Some(l) = self.links.get_mut(&peer) {
            l.retry = Some(Retry {
                attempts: 0,
                next: now,
            });
        }
    }
}

#[cfg(test)]
mod tests {
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
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
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
        let version = net.nodes[h].ep.room.as_ref().unwrap().version;
        net.with(l, |ep, now| ep.answer_stage_invite(now, false))
            .unwrap();
        let declined = Event::StageInviteDeclined { member: kl, by: kh };
        assert!(net.run_until(Duration::from_secs(5), |n| n.events(h).contains(&declined)));
        net.run_for(Duration::from_secs(2));
        assert_eq!(role(&net, h, l), Some(Role::Listener));
        assert_eq!(role(&net, l, l), Some(Role::Listener));
        assert_eq!(net.nodes[h].ep.room.as_ref().unwrap().version, version);
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
        assert!(
            net.nodes[h]
                .ep
                .room
                .as_ref()
                .unwrap()
                .stage_invites
                .is_empty()
        );
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
        let pending = &net.nodes[h].ep.room.as_ref().unwrap().stage_invites;
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
        let pending = |net: &Net| net.nodes[h].ep.room.as_ref().unwrap().stage_invites.len();
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
        let room = net.nodes[h].ep.room.as_ref().unwrap();
        assert_eq!(room.stage_invites.keys().collect::<Vec<_>>(), vec![&kc]);
    }
}
