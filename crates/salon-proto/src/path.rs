//! How datagrams reach a peer: straight to an address we validated, or through another
//! member that forwards them (a relay). Also the relay's own forwarding table.
//!
//! A relayed transport datagram is the end-to-end one, byte for byte, except for its
//! receiver index: the sender writes the index the relay gave it, the relay rewrites it
//! to the index the receiver asked for. The index is not covered by the AEAD (only the
//! counter is, as the nonce), so the end-to-end Noise session is untouched, the datagram
//! keeps its size, and the relay learns nothing it did not know from the roster.

use std::net::SocketAddr;
use std::time::Instant;

use crate::identity::PublicKey;

/// The socket a node sends from unless told otherwise.
pub const MAIN_SOCKET: u16 = 0;

/// One end of a direct path as we see it: the peer's address, and which of our sockets
/// talks to it. Sockets other than [`MAIN_SOCKET`] exist only for the birthday technique
/// against endpoint-dependent ("symmetric") NATs: the driver opens them on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hop {
    /// The peer's address.
    pub addr: SocketAddr,
    /// Our socket.
    pub socket: u16,
}

impl Hop {
    /// `addr` through our main socket.
    pub fn main(addr: SocketAddr) -> Self {
        Self {
            addr,
            socket: MAIN_SOCKET,
        }
    }
}

/// Where a datagram came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Straight from this address, to this socket of ours.
    Direct(Hop),
    /// Through this member, a relay (handshakes in its control channel, transport
    /// datagrams with a relay index).
    Relay(PublicKey),
}

/// The path a link uses now, for display and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// Datagrams go straight to this validated address.
    Direct(SocketAddr),
    /// Datagrams go through this member.
    Relayed {
        /// The relaying member.
        via: PublicKey,
    },
}

/// Our side of a relayed path to one peer.
#[derive(Debug, Clone, Copy)]
pub struct RelayPath {
    /// The member that relays.
    pub via: PublicKey,
    /// Index we allocated: the relay writes it into datagrams it forwards to us.
    pub recv_index: u32,
    /// Index the relay gave us for datagrams towards the peer, once it is ready.
    pub send_index: Option<u32>,
    /// When we asked.
    pub opened: Instant,
}

/// An outstanding path challenge.
#[derive(Debug, Clone, Copy)]
pub struct Challenge {
    /// Where it was sent (the path under test).
    pub hop: Hop,
    /// The token the answer must carry.
    pub token: u64,
    /// When it was sent.
    pub sent: Instant,
}

/// Extra sockets the side behind an endpoint-dependent ("symmetric") NAT opens, each
/// sending one datagram to the peer so that its NAT holds that many mappings towards it.
pub const BIRTHDAY_SOCKETS: u16 = 256;
/// Random ports of the symmetric side's IP the other side probes per attempt. With 256
/// mappings among ~64,500 ports, 1024 probes hit one with probability 1 - (1 - 256/64512)^1024
/// ≈ 98 % (Tailscale's numbers); 192 KB of probes at most.
pub const BIRTHDAY_PROBES: u32 = 1024;
/// Probes per burst, one burst every [`BIRTHDAY_TICK`]: 1024 probes take ~3.2 s, a rate
/// a home uplink and NAT table take without trouble.
pub const BIRTHDAY_BURST: u32 = 16;
/// Time between probe bursts.
pub const BIRTHDAY_TICK: std::time::Duration = std::time::Duration::from_millis(50);
/// How long one attempt runs (the sprayer refreshes its mappings every
/// [`BIRTHDAY_SPRAY_EVERY`] within it); then the link stays relayed until the next.
pub const BIRTHDAY_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);
/// Refresh of the sprayer's mappings, well inside a NAT's ~30 s UDP timeout.
pub const BIRTHDAY_SPRAY_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Between attempts.
pub const BIRTHDAY_RETRY: std::time::Duration = std::time::Duration::from_secs(60);
/// Attempts per outage; after that the relay carries the link for good.
pub const BIRTHDAY_ATTEMPTS: u32 = 3;
/// Lowest port a probe aims at (NATs rarely hand out the privileged range).
pub const BIRTHDAY_LOW_PORT: u16 = 1024;

/// Our part in a birthday attempt on one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BirthdayRole {
    /// We sit behind the symmetric NAT: send from many sockets to the peer.
    Spray,
    /// The peer does: probe random ports of its public IP.
    Probe,
}

/// A birthday attempt (the many-ports technique against a symmetric NAT).
#[derive(Debug, Clone, Copy)]
pub struct Birthday {
    /// What we do.
    pub role: BirthdayRole,
    /// Where the peer's NAT showed it to the host: its IP is probed, or its address sprayed.
    pub target: SocketAddr,
    /// Attempt start.
    pub started: Instant,
    /// Next step.
    pub next: Instant,
    /// Probes sent in this attempt.
    pub sent: u32,
    /// Attempts made in this outage (this one included).
    pub attempts: u32,
}

/// On a relay: one direction of a relayed pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// Who may send with this index (the datagram must come from its validated address).
    pub from: PublicKey,
    /// Where it goes.
    pub to: PublicKey,
    /// The receiver index written before forwarding (what `to` asked for).
    pub rewrite: u32,
}
