//! Salon's sans-IO room protocol.
//!
//! Bytes and `now` in; datagrams, timer deadlines and events out. No sockets, no clock
//! reads, no OS randomness, no audio, no storage: the `salon-node` crate drives an
//! [`Endpoint`] from a UDP socket and a timer. See `docs/PROTOCOL.md` for the wire format.

pub mod allowance;
pub mod channel;
pub mod codec;
pub mod config;
pub mod cookie;
pub mod endpoint;
pub mod error;
pub mod event;
pub mod frame;
#[cfg(feature = "test-support")]
pub mod fuzz;
pub mod handshake;
pub mod identity;
pub mod invite;
pub mod link;
pub mod message;
pub mod path;
pub mod replay;
pub mod roster;
pub mod rtt;
pub mod safety_code;
pub mod schedule;
pub mod secret;
pub mod session;
pub mod sim;
pub mod wire;

pub use config::{Config, UNIFORM_RATE_MAX_MEMBERS};
pub use endpoint::{Endpoint, Transmit};
pub use error::CommandError;
pub use event::{Event, InviteChange, JoinFailure, LeftReason, LinkStats, RoomView};
pub use identity::{Identity, PublicKey};
pub use invite::{Candidate, CandidateKind, Invite, InviteError, RoomId};
pub use message::Action;
pub use path::Path;
pub use roster::{Member, Role};
