//! Salon's sans-IO room protocol.

pub mod identity;
pub mod replay;
