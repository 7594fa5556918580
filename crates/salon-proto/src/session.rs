//! An established Noise transport session: indices, counters, replay window, age.

use std::time::{Duration, Instant};

use snow::StatelessTransportState;

use crate::replay::ReplayWindow;
use crate::wire::{TAG_LEN, TRANSPORT_HEADER_LEN, transport_header};

/// After this many messages a session must not send any more (WireGuard's REJECT_AFTER_MESSAGES).
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);
/// After this many messages the initiator starts a new handshake.
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 60;

/// Why a transport datagram was not accepted. Always dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The counter was seen before or is behind the replay window.
    #[error("replayed or too old")]
    Replay,
    /// The AEAD tag did not verify.
    #[error("decryption failed")]
    Decrypt,
    /// The session has sent too many messages and must be replaced.
    #[error("session exhausted")]
    Exhausted,
}

/// One direction-pair of transport keys with its bookkeeping.
pub struct Session {
    /// Our index: peers put it in the receiver field.
    pub local_index: u32,
    /// The peer's index: we put it in the receiver field.
    pub remote_index: u32,
    /// Whether we initiated the handshake that made this session.
    pub initiator: bool,
    /// When the handshake completed.
    pub created: Instant,
    /// Whether the peer has proven it holds the keys (initiator side: always; responder
    /// side: after the first authenticated transport datagram).
    pub confirmed: bool,
    transport: StatelessTransportState,
    send_counter: u64,
    replay: ReplayWindow,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("initiator", &self.initiator)
            .field("confirmed", &self.confirmed)
            .field("send_counter", &self.send_counter)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Wraps transport keys from a finished handshake.
    pub fn new(
        transport: StatelessTransportState,
        local_index: u32,
        remote_index: u32,
        initiator: bool,
        now: Instant,
    ) -> Self {
        Self {
            local_index,
            remote_index,
            initiator,
            created: now,
            confirmed: initiator,
            transport,
            send_counter: 0,
            replay: ReplayWindow::new(),
        }
    }

    /// Whether the session is at least `reject_after` old: it must then neither send nor
    /// be accepted on receive (WireGuard's REJECT_AFTER_TIME applies to both directions;
    /// a datagram sealed under an expired session is dropped before decryption, so it
    /// does not even touch the replay window).
    pub fn expired(&self, now: Instant, reject_after: Duration) -> bool {
        now.saturating_duration_since(self.created) >= reject_after
    }

    /// Messages sent so far.
    pub fn sent(&self) -> u64 {
        self.send_counter
    }

    /// Encrypts `plaintext` (already padded to a bucket size) into a whole datagram.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, SessionError> {
        if self.send_counter >= REJECT_AFTER_MESSAGES {
            return Err(SessionError::Exhausted);
        }
        let counter = self.send_counter;
        let mut out = transport_header(self.remote_index, counter, plaintext.len() + TAG_LEN);
        let n = self
            .transport
            .write_message(counter, plaintext, &mut out[TRANSPORT_HEADER_LEN..])
            .map_err(|_| SessionError::Exhausted)?;
        out.truncate(TRANSPORT_HEADER_LEN + n);
        self.send_counter += 1;
        Ok(out)
    }

    /// Decrypts a transport datagram's ciphertext. The replay window is consulted before
    /// decrypting (cheap rejection) and updated only after the tag verified, so forged
    /// packets cannot move it.
    pub fn open(&mut self, counter: u64, ciphertext: &[u8]) -> Result<Vec<u8>, SessionError> {
        if counter >= REJECT_AFTER_MESSAGES || !self.replay.check(counter) {
            return Err(SessionError::Replay);
        }
        let mut out = vec![0u8; ciphertext.len()];
        let n = self
            .transport
            .read_message(counter, ciphertext, &mut out)
            .map_err(|_| SessionError::Decrypt)?;
        if !self.replay.mark(counter) {
            return Err(SessionError::Replay);
        }
        out.truncate(n);
        self.confirmed = true;
        Ok(out)
    }
}
