//! Salon's engine: joins the protocol (`salon-proto`), the audio pipeline (`salon-audio`)
//! and the encrypted history (`salon-store`) into a running peer behind one typed API.
//! The `salon` command line and the desktop app are thin front ends over [`Node`].

pub mod api;
pub mod error;
pub mod history;
pub mod logging;
pub mod loss_feedback;
pub mod node;
mod precise_timer;
pub mod profile;
pub mod test_sound;

pub use api::{
    Action, Command, InviteReason, NodeEvent, Reply, RoomInfo, parse_input, parse_output,
};
pub use error::NodeError;
pub use node::{Node, NodeConfig, NodeHandle};
pub use profile::{Profile, default_data_dir};
