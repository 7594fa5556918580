//! Salon's sans-IO room protocol.

pub mod cookie;
pub mod identity;
pub mod invite;
pub mod replay;
pub mod safety_code;
