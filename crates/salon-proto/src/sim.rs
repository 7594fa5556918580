//! A deterministic simulated network for whole-room tests, demos and benchmarks: seeded
//! RNG, simulated clock, per-datagram latency with jitter (which reorders), loss and
//! duplication. Every datagram that crosses it is captured, so tests can inspect exactly
//! what an observer on the wire would see. Like the rest of the crate it does no I/O.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::error::CommandError;
use crate::{
    Action, Candidate, CandidateKind, Config, Endpoint, Event, Identity, Invite, PublicKey,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Most extra sockets a simulated node has (ports above its address's port).
const MAX_SOCKETS: u16 = 1024;

/// Frame period of simulated speakers.
pub const FRAME: Duration = Duration::from_millis(20);

/// One simulated peer.
pub struct Node {
    /// Its address on the simulated network.
    pub addr: SocketAddr,
    /// Its protocol state machine.
    pub ep: Endpoint,
    /// Every event it produced, in order.
    pub events: Vec<Event>,
    /// A dead node neither sends nor receives (a killed process).
    pub alive: bool,
    /// Sends an audio frame every FRAME while on stage.
    pub speaking: bool,
    /// Display name.
    pub name: String,
    /// The home router it sits behind (index into the network's NATs), if any.
    pub nat: Option<usize>,
}

/// How a simulated home router maps and filters UDP (RFC 4787's terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatKind {
    /// One public port per inside socket; anyone may send to it.
    FullCone,
    /// One public port per inside socket; only from IPs the inside has sent to.
    AddressRestricted,
    /// One public port per inside socket; only from the exact address:port sent to.
    PortRestricted,
    /// A new random public port per destination; only from that destination.
    Symmetric,
}

struct Mapping {
    inside: SocketAddr,
    /// The destination this mapping is for (symmetric NATs only).
    remote: Option<SocketAddr>,
    port: u16,
    contacted: BTreeSet<SocketAddr>,
}

/// A simulated home router with one public IP.
struct Nat {
    kind: NatKind,
    ip: IpAddr,
    mappings: Vec<Mapping>,
}

/// One captured datagram.
#[derive(Clone, Debug)]
pub struct Captured {
    /// Sender.
    pub from: SocketAddr,
    /// Destination.
    pub to: SocketAddr,
    /// The datagram.
    pub bytes: Vec<u8>,
    /// Sent in a slot that carried the sender's audio.
    pub audio: bool,
    /// When it was sent (simulated time).
    pub at: Instant,
}

/// A datagram on its way: arrival time, tie-break sequence, destination address, source
/// address (after the sender's NAT), bytes. The receiving side's NAT filters on arrival.
type InFlight = (Instant, u64, SocketAddr, SocketAddr, Vec<u8>);

/// The network, its clock and its nodes.
pub struct Net {
    /// Drives loss, duplication, jitter and node seeds.
    pub rng: ChaCha20Rng,
    /// Simulated time zero.
    pub start: Instant,
    /// Simulated now.
    pub now: Instant,
    /// The peers.
    pub nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a delivered datagram arrives twice.
    pub duplicate: f64,
    /// Base one-way latency.
    pub latency: Duration,
    /// Extra uniform random delay (0..jitter) per datagram; reorders datagrams.
    pub jitter: Duration,
    /// Every datagram sent, delivered or not.
    pub captured: Vec<Captured>,
    nats: Vec<Nat>,
    /// An on-path attacker: datagrams from the first address to the second are taken
    /// off the wire (into `hijacked`) instead of delivered.
    pub hijack: Option<(SocketAddr, SocketAddr)>,
    /// What the attacker took.
    pub hijacked: Vec<Vec<u8>>,
    next_audio: Instant,
    /// Audio frame bytes each speaker sends: its index repeated (the codec is opaque).
    pub frame_len: usize,
}

impl Net {
    /// An empty network with 10 ms latency and no impairments.
    pub fn new(seed: u64) -> Self {
        let start = Instant::now();
        Self {
            rng: ChaCha20Rng::seed_from_u64(seed),
            start,
            now: start,
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            loss: 0.0,
            duplicate: 0.0,
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            captured: Vec::new(),
            nats: Vec::new(),
            hijack: None,
            hijacked: Vec::new(),
            next_audio: start,
            frame_len: 120,
        }
    }

    /// Sets loss and duplication probabilities and jitter.
    pub fn lossy(mut self, loss: f64, duplicate: f64, jitter_ms: u64) -> Self {
        self.loss = loss;
        self.duplicate = duplicate;
        self.jitter = Duration::from_millis(jitter_ms);
        self
    }

    /// Adds a node with the default configuration; returns its index.
    pub fn add(&mut self, name: &str) -> usize {
        self.add_with(name, Config::default())
    }

    /// Adds a node with the given configuration; returns its index.
    pub fn add_with(&mut self, name: &str, cfg: Config) -> usize {
        let i = self.nodes.len();
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let id = Identity::generate(&mut ChaCha20Rng::from_seed(seed));
        self.rng.fill_bytes(&mut seed);
        let addr = SocketAddr::from((
            [127, 0, (i >> 8) as u8, (i & 0xff) as u8 + 1],
            4000 + i as u16,
        ));
        let ep = Endpoint::new(cfg, id, seed, self.now, 1_700_000_000_000_000);
        self.nodes.push(Node {
            addr,
            ep,
            events: Vec::new(),
            alive: true,
            speaking: false,
            name: name.into(),
            nat: None,
        });
        i
    }

    /// Puts node `i` behind a new home router of this kind (its own public IP) with a
    /// fresh inside address: on a node already in a room, the network it was on is gone
    /// (Wi-Fi to tethering). Returns the router's public IP.
    pub fn put_behind_nat(&mut self, i: usize, kind: NatKind) -> IpAddr {
        let n = self.nats.len();
        let ip = IpAddr::V4(Ipv4Addr::new(198, 51, (n >> 8) as u8, (n & 0xff) as u8 + 1));
        self.nats.push(Nat {
            kind,
            ip,
            mappings: Vec::new(),
        });
        let node = &mut self.nodes[i];
        node.nat = Some(n);
        node.addr = SocketAddr::from(([10, (n >> 8) as u8, (n & 0xff) as u8, 2], node.addr.port()));
        ip
    }

    /// Puts node `i` on the same home network as node `with` (behind its router), with an
    /// inside address of its own.
    pub fn share_nat(&mut self, i: usize, with: usize) {
        let Some(n) = self.nodes[with].nat else {
            return;
        };
        let base = self.nodes[with].addr;
        let node = &mut self.nodes[i];
        node.nat = Some(n);
        node.addr = match base.ip() {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                SocketAddr::from(([a, b, c, 100 + (i & 0x7f) as u8], node.addr.port()))
            }
            IpAddr::V6(_) => base,
        };
    }

    /// The source address a datagram from node `i`'s socket `socket` to `to` shows
    /// outside its NAT, creating the mapping (and the filter's permission) as a router
    /// would. Socket `k` of a node is bound to its address's port plus `k`.
    fn translate(&mut self, i: usize, socket: u16, to: SocketAddr) -> SocketAddr {
        let base = self.nodes[i].addr;
        let inside = SocketAddr::new(base.ip(), base.port().wrapping_add(socket));
        let Some(n) = self.nodes[i].nat else {
            return inside;
        };
        let rnd = 1024 + (self.rng.next_u32() % 60000) as u16;
        let nat = &mut self.nats[n];
        // Inside the same router, no translation (LAN traffic).
        if self.nodes.iter().any(|o| o.nat == Some(n) && o.addr == to) {
            return inside;
        }
        let symmetric = nat.kind == NatKind::Symmetric;
        let found = nat
            .mappings
            .iter()
            .position(|m| m.inside == inside && (!symmetric || m.remote == Some(to)));
        let idx = match found {
            Some(k) => k,
            None => {
                // Cone routers keep the inside port when free; symmetric ones pick at random.
                let taken = |p: u16| nat.mappings.iter().any(|m| m.port == p);
                let mut port = if symmetric { rnd } else { inside.port() };
                while taken(port) {
                    port = port.wrapping_add(1).max(1024);
                }
                nat.mappings.push(Mapping {
                    inside,
                    remote: symmetric.then_some(to),
                    port,
                    contacted: BTreeSet::new(),
                });
                nat.mappings.len() - 1
            }
        };
        let m = &mut nat.mappings[idx];
        m.contacted.insert(to);
        SocketAddr::new(nat.ip, m.port)
    }

    /// Which node and socket a datagram from `from` to `to` reaches, after the receiving
    /// NAT's filter.
    fn resolve(&self, from: SocketAddr, to: SocketAddr) -> Option<(usize, u16)> {
        if let Some((i, socket)) = self.socket_at(to) {
            // An inside address is reachable only from the same router's LAN.
            let same_lan = self.nodes[i].nat.is_some_and(|n| {
                self.nodes
                    .iter()
                    .any(|o| o.nat == Some(n) && o.addr.ip() == from.ip())
            });
            return (self.nodes[i].nat.is_none() || same_lan).then_some((i, socket));
        }
        let nat = self.nats.iter().find(|n| n.ip == to.ip())?;
        let m = nat.mappings.iter().find(|m| m.port == to.port())?;
        let allowed = match nat.kind {
            NatKind::FullCone => true,
            NatKind::AddressRestricted => m.contacted.iter().any(|c| c.ip() == from.ip()),
            NatKind::PortRestricted | NatKind::Symmetric => m.contacted.contains(&from),
        };
        if !allowed {
            return None;
        }
        self.socket_at(m.inside)
    }

    /// The node and socket bound to inside address `addr`, if any.
    fn socket_at(&self, addr: SocketAddr) -> Option<(usize, u16)> {
        self.nodes.iter().enumerate().find_map(|(i, n)| {
            let k = addr.port().wrapping_sub(n.addr.port());
            (n.addr.ip() == addr.ip() && k <= MAX_SOCKETS).then_some((i, k))
        })
    }

    /// Delivers `bytes` to whatever is at `to` as if sent from `from` (a spoofed source
    /// address, a replay), through the receiving NAT's filter.
    pub fn inject(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.seq += 1;
        let at = self.now + self.latency;
        self.queue.push(Reverse((at, self.seq, to, from, bytes)));
    }

    /// Static key of node `i`.
    pub fn key(&self, i: usize) -> PublicKey {
        self.nodes[i].ep.public_key()
    }

    /// Node `i` opens a room and returns the invite.
    pub fn host(&mut self, i: usize, title: &str) -> Result<Invite, CommandError> {
        let now = self.now;
        let n = &mut self.nodes[i];
        let cand = vec![Candidate {
            kind: CandidateKind::Lan,
            addr: n.addr,
        }];
        let name = n.name.clone();
        let inv = n.ep.host(now, title, &name, cand);
        self.pump(i);
        inv
    }

    /// Node `i` starts joining with `invite`.
    pub fn join(&mut self, i: usize, invite: &Invite) -> Result<(), CommandError> {
        let now = self.now;
        let n = &mut self.nodes[i];
        let name = n.name.clone();
        let addr = n.addr;
        let r = n.ep.join(now, invite, &name, vec![addr]);
        self.pump(i);
        r
    }

    /// Moves a node's pending transmits into the network and its events into its log.
    pub fn pump(&mut self, i: usize) {
        self.pump_tagged(i, false);
    }

    fn pump_tagged(&mut self, i: usize, audio: bool) {
        let now = self.now;
        while let Some(ev) = self.nodes[i].ep.poll_event() {
            self.nodes[i].events.push(ev);
        }
        while let Some(t) = self.nodes[i].ep.poll_transmit() {
            let from = if self.nodes[i].alive {
                self.translate(i, t.socket, t.destination)
            } else {
                self.nodes[i].addr
            };
            self.captured.push(Captured {
                from,
                to: t.destination,
                bytes: t.contents.clone(),
                audio,
                at: self.now,
            });
            if !self.nodes[i].alive {
                continue;
            }
            if self.hijack == Some((from, t.destination)) {
                self.hijacked.push(t.contents);
                continue;
            }
            let dst = t.destination;
            let copies = if self.rng_f64() < self.loss {
                0
            } else if self.rng_f64() < self.duplicate {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let j = if self.jitter.is_zero() {
                    0
                } else {
                    self.rng.next_u64() % (self.jitter.as_micros() as u64)
                };
                let at = now + self.latency + Duration::from_micros(j);
                self.seq += 1;
                self.queue
                    .push(Reverse((at, self.seq, dst, from, t.contents.clone())));
            }
        }
    }

    /// Uniform random number in [0, 1).
    pub fn rng_f64(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Runs the network until `d` of simulated time has passed.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        let mut spins = 0u32;
        loop {
            let mut next = end;
            if let Some(Reverse((t, ..))) = self.queue.peek() {
                next = next.min(*t);
            }
            for n in &self.nodes {
                if n.alive
                    && let Some(t) = n.ep.poll_timeout()
                {
                    next = next.min(t.max(self.now));
                }
            }
            if self.nodes.iter().any(|n| n.alive && n.speaking) {
                next = next.min(self.next_audio.max(self.now));
            }
            if next == self.now {
                spins += 1;
                if spins > 100_000 {
                    panic!("timers do not advance: a deadline stays in the past");
                }
            } else {
                spins = 0;
            }
            self.now = next;
            while let Some(Reverse((t, ..))) = self.queue.peek() {
                if *t > self.now {
                    break;
                }
                let Some(Reverse((_, _, to, from, bytes))) = self.queue.pop() else {
                    break;
                };
                let Some((dst, socket)) = self.resolve(from, to) else {
                    continue;
                };
                if self.nodes[dst].alive {
                    let now = self.now;
                    self.nodes[dst]
                        .ep
                        .handle_datagram_on(now, socket, from, &bytes);
                    self.pump(dst);
                }
            }
            for i in 0..self.nodes.len() {
                if !self.nodes[i].alive {
                    continue;
                }
                if self.nodes[i]
                    .ep
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    let now = self.now;
                    let before = self.nodes[i].ep.audio_slots();
                    self.nodes[i].ep.handle_timeout(now);
                    let audio = self.nodes[i].ep.audio_slots() > before;
                    self.pump_tagged(i, audio);
                }
            }
            if self.now >= self.next_audio {
                self.next_audio = self.now + FRAME;
                for i in 0..self.nodes.len() {
                    if self.nodes[i].alive && self.nodes[i].speaking {
                        let now = self.now;
                        let frame = vec![i as u8 + 1; self.frame_len];
                        // Not on stage: the frame only paced the slot clock.
                        let _ = self.nodes[i].ep.send_audio(now, &frame);
                        self.pump(i);
                    }
                }
            }
            if self.now >= end {
                break;
            }
        }
    }

    /// Runs until `pred` holds (checked every 50 ms of simulated time) or `limit` passes.
    pub fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if pred(self) {
                return true;
            }
            self.run_for(Duration::from_millis(50));
        }
        pred(self)
    }

    /// Applies a command to a node and pushes its output.
    pub fn with<R>(&mut self, i: usize, f: impl FnOnce(&mut Endpoint, Instant) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[i].ep, now);
        self.pump(i);
        r
    }

    /// Moderator `by` invites node `who` on stage, and `who` accepts as soon as the
    /// invitation arrives (within 20 s of simulated time), as a listener pressing "Accept"
    /// at once would. A listener whose hand is raised goes on stage without an
    /// invitation, so there is nothing to answer. Callers still wait for the roster.
    pub fn bring_on_stage(&mut self, by: usize, who: usize) -> Result<(), CommandError> {
        let k = self.key(who);
        let hand_raised = self.nodes[by]
            .ep
            .room()
            .is_some_and(|r| r.members.iter().any(|m| m.key == k && m.hand_raised));
        let seen = self.nodes[who].events.len();
        self.with(by, |ep, now| ep.moderate(now, k, Action::InviteToStage))?;
        if hand_raised {
            return Ok(());
        }
        self.run_until(Duration::from_secs(20), |n| {
            n.nodes[who].events[seen..]
                .iter()
                .any(|e| matches!(e, Event::StageInvited { .. }))
        });
        self.with(who, |ep, now| ep.answer_stage_invite(now, true))
    }

    /// Node `i` stops sending and receiving (a killed process).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
    }

    /// Events of node `i` since the start.
    pub fn events(&self, i: usize) -> &[Event] {
        &self.nodes[i].events
    }

    /// Whether every listed node sees the same roster (keys, roles) and epoch.
    pub fn rosters_agree(&self, ids: &[usize]) -> bool {
        let views: Vec<_> = ids.iter().map(|i| self.nodes[*i].ep.room()).collect();
        let Some(Some(first)) = views.first() else {
            return false;
        };
        views.iter().all(|v| {
            v.as_ref().is_some_and(|v| {
                v.epoch == first.epoch
                    && v.host == first.host
                    && v.safety_code == first.safety_code
                    && v.members.len() == first.members.len()
                    && v.members.iter().zip(&first.members).all(|(a, b)| {
                        a.key == b.key
                            && a.role == b.role
                            && a.muted == b.muted
                            && a.hand_raised == b.hand_raised
                    })
            })
        })
    }

    /// Whether every pair among `ids` has a session up in both directions.
    pub fn mesh_up(&self, ids: &[usize]) -> bool {
        ids.iter().all(|a| {
            ids.iter().filter(|b| *b != a).all(|b| {
                self.nodes[*a]
                    .ep
                    .link_stats(&self.key(*b))
                    .is_some_and(|s| s.up)
            })
        })
    }

    /// Number of audio frames node `i` got from node `from`.
    pub fn audio_from(&self, i: usize, from: usize) -> usize {
        let k = self.key(from);
        self.nodes[i]
            .events
            .iter()
            .filter(|e| matches!(e, Event::Audio { from, .. } if *from == k))
            .count()
    }

    /// Chat lines node `i` received: sender, sequence, text.
    pub fn chats(&self, i: usize) -> Vec<(PublicKey, u64, String)> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Chat {
                    from, seq, text, ..
                } => Some((*from, *seq, text.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Every form in which `raw` might leak into a datagram: the raw bytes, hex in both cases,
/// and base64 (standard and URL-safe), the encoded forms cut to their first 16
/// characters so a partial leak is found too. Metadata tests search captures for these.
pub fn leak_forms(raw: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let hex = hex::encode(raw);
    let mut v = vec![raw.to_vec()];
    for s in [
        hex.clone(),
        hex.to_uppercase(),
        STANDARD_NO_PAD.encode(raw),
        URL_SAFE_NO_PAD.encode(raw),
    ] {
        v.push(s.as_bytes()[..s.len().min(16)].to_vec());
    }
    v
}
