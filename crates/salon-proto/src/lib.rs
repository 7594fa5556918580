//! Salon's sans-IO room protocol.
//!
//! Bytes and `now` in; datagrams, timer deadlines and events out. No sockets, no clock
//! reads, no OS randomness, no audio, no storage: the `salon-node` crate drives an
//! [`Endpoint`] from a UDP socket and a timer. See `docs/PROTOCOL.md` for the wire format.

mod allowance;
mod authority;
mod channel;
mod codec;
mod config;
pub mod cookie;
mod endpoint;
mod error;
mod event;
pub mod frame;
#[cfg(feature = "test-support")]
pub mod fuzz;
pub mod handshake;
pub mod identity;
pub mod invite;
mod link;
pub mod message;
pub mod path;
mod replay;
pub mod roster;
mod rtt;
mod safety_code;
mod schedule;
pub mod secret;
pub mod session;
#[cfg(any(test, feature = "test-support"))]
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
