//! Salon's sans-IO room protocol.
pub mod channel;
