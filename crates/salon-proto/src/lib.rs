//! Salon's sans-IO room protocol.

pub mod identity;
pub mod replay;
pub mod safety_code;
