//! Salon's whole-system tests: real `salon` processes in rooms across a NAT test bed made
//! of Linux network namespaces ([`bed`]), heard through the tones they send ([`tone`]),
//! gathered into rooms of three ([`room`]), their traffic captured ([`capture`]).
//!
//! The bed needs root (namespaces, iptables) and `ip`, `iptables`, `conntrack` and
//! `python3` (scripts/deps.sh installs them). Without them a test prints why and passes,
//! unless `SALON_CI=1`, where it fails. Run:
//!
//! ```text
//! cargo build -p salon-node --bin salon
//! cargo test -p salon-tests -- --nocapture
//! ```

// A test bed: a failed expectation is a failed test, and says so in its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bed;
pub mod capture;
pub mod room;
pub mod salon;
pub mod tone;
pub mod traffic;

use std::sync::{Condvar, Mutex};

pub use bed::{Bed, Home, Impairment, Nat, Public, Router, Shape};
pub use salon::{LinkPath, Salon};
pub use tone::Recording;

/// How many rooms may run at once in one test binary: each is three `salon` processes
/// with Opus at 50 frames a second, on a machine of 2 cores; more at once starve each
/// other and blur the timings. `SALON_NAT_ROOMS` overrides it.
pub fn room_limit() -> usize {
    std::env::var("SALON_NAT_ROOMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(3)
}

static ROOMS: Mutex<usize> = Mutex::new(0);
static ROOM_FREED: Condvar = Condvar::new();

/// A place among the rooms that may run at once ([`room_limit`]); held until dropped.
pub struct RoomSlot(());

impl RoomSlot {
    /// Waits for a free place.
    pub fn take() -> RoomSlot {
        let mut n = ROOMS.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= room_limit() {
            n = ROOM_FREED.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        RoomSlot(())
    }
}

impl Drop for RoomSlot {
    fn drop(&mut self) {
        let mut n = ROOMS.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        ROOM_FREED.notify_one();
    }
}
