//! Salon's sans-IO room protocol.
