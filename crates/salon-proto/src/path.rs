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

/// Where a datagram came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Straight from this address.
    Direct(SocketAddr),
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
    /// Where it was sent (the address under test).
    pub addr: SocketAddr,
    /// The token the answer must carry.
    pub token: u64,
    /// When it was sent.
    pub sent: Instant,
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
