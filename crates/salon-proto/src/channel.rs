//! Reliable, ordered control channel carried inside encrypted datagrams.
//!
//! Audio tolerates loss, but room control messages (joins, mutes, key
//! rotations, …) must arrive exactly once and in order. This module layers a
//! small selective-repeat ARQ over the datagrams the caller already exchanges
//! with a peer: messages are fragmented into numbered segments, the receiver
//! reassembles them in order and reports what it holds with cumulative plus
//! selective acks, and the sender retransmits on an RFC 6298 timer with
//! exponential backoff.
//!
//! The module is sans-IO and deterministic: it never reads a clock (every
//! time-dependent call takes `now`), uses no randomness and performs no I/O.
//! The caller decides when datagrams are built and sent, which is what lets the
//! tests drive it through a simulated lossy link with a simulated clock.
//!
//! # Wire format
//!
//! Frames ([`ChannelFrame`], encoded in [`crate::frame`] with every other frame a slot
//! carries) live inside the decrypted datagram plaintext, next to frames the
//! caller owns (`0x00` padding-to-end, `0x01` audio). All integers are
//! big-endian.
//!
//! | frame     | layout                                                          |
//! |-----------|-----------------------------------------------------------------|
//! | `ACK`     | `0x02`, `next: u32`, `bits: u32`                                |
//! | `SEGMENT` | `0x03`, `seq: u32`, `flags: u8` (bit0 = last), `len: u16`, data |
//!
//! `next` is cumulative (every `seq < next` was received); bit `i` of `bits`
//! means segment `next + 1 + i` was received as well.
//!
//! # Sequence numbers
//!
//! Segment numbers are `u32`, start at 0 and never wrap. Four billion
//! segments is far beyond what a live room session carries, so instead of the
//! complexity (and attack surface) of serial-number arithmetic the channel
//! refuses to go on: [`ReliableChannel::send`] returns
//! [`ChannelError::SequenceExhausted`] once the space is used up, and the caller
//! is expected to tear the channel (and its session) down and re-establish it.
//! The last usable sequence number is `u32::MAX - 1`, so that `next` in an ack
//! can always express "everything received".

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::frame::{ACK_LEN, ChannelFrame, SEGMENT_HEADER_LEN};
use crate::rtt::RttEstimator;

/// Upper bound applied to `max_rto` so that `now + rto` can never overflow an
/// [`Instant`]; RFC 6298 only asks for a maximum of at least 60 s.
const RTO_CEILING: Duration = Duration::from_secs(3600);

/// Number of selective-ack bits an ACK frame carries.
const SACK_BITS: u32 = 32;

/// Errors reported by [`ReliableChannel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The message can never be sent: it exceeds `max_message_len`, or its
    /// framed size exceeds `max_queued_bytes` so it could never be queued.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Length of the rejected message.
        len: usize,
        /// The limit it exceeded.
        max: usize,
    },
    /// The send queue is temporarily full; retry after acks have drained it.
    #[error("send queue full: {queued} bytes queued, {needed} more needed, limit {max}")]
    QueueFull {
        /// Bytes (data plus segment headers) currently queued or unacked.
        queued: usize,
        /// Bytes the rejected message would have added.
        needed: usize,
        /// The configured `max_queued_bytes`.
        max: usize,
    },
    /// The sequence number space is used up; the channel must be torn down
    /// and re-established (see the module docs on why it never wraps).
    #[error("sequence numbers exhausted; the channel must be re-established")]
    SequenceExhausted,
    /// An ACK acknowledged a segment that was never sent. It was ignored
    /// without any state change; the caller may log it and carry on.
    #[error("implausible ack (next {next}, bits {bits:#010x}) ignored")]
    ImplausibleAck {
        /// The ack's cumulative `next` field.
        next: u32,
        /// The ack's selective bits.
        bits: u32,
    },
    /// The peer sent a message longer than our `max_message_len`. Its
    /// segments were consumed and discarded so later messages still arrive
    /// in order; the message itself is lost.
    #[error("incoming message exceeds the limit of {max} bytes and was discarded")]
    IncomingMessageTooLarge {
        /// The configured `max_message_len`.
        max: usize,
    },
}

/// Tuning knobs of a [`ReliableChannel`].
///
/// Both peers should use the same values; in particular the receiver's
/// `receive_window` must be at least the sender's `max_in_flight`, or
/// segments beyond the window are dropped and only recovered by timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Retransmission timeout before any RTT sample exists (default 500 ms).
    pub initial_rto: Duration,
    /// Lower bound on the retransmission timeout (default 100 ms).
    pub min_rto: Duration,
    /// Upper bound on the retransmission timeout, also the backoff cap
    /// (default 4 s; values above one hour are clamped to one hour).
    pub max_rto: Duration,
    /// Maximum payload bytes per segment (default 1000; clamped to
    /// `1..=u16::MAX`). A datagram needs `max_segment_data +
    /// SEGMENT_HEADER_LEN` bytes of budget to carry a full segment, plus
    /// [`ACK_LEN`] if an ack should ride along.
    pub max_segment_data: usize,
    /// Maximum segments in flight, measured as the span from the oldest
    /// unacknowledged segment to the next one to send (default 64; at least 1).
    pub max_in_flight: u32,
    /// Maximum bytes (payload plus [`SEGMENT_HEADER_LEN`] per segment)
    /// queued or awaiting ack on the send side; also bounds the bytes
    /// buffered out of order on the receive side (default 256 KiB).
    pub max_queued_bytes: usize,
    /// Maximum length of one message, sent or received (default 64 KiB).
    pub max_message_len: usize,
    /// How many segments ahead of the next expected one the receiver buffers
    /// out of order (default 256; at least 1). Later segments are dropped.
    pub receive_window: u32,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            initial_rto: Duration::from_millis(500),
            min_rto: Duration::from_millis(100),
            max_rto: Duration::from_secs(4),
            max_segment_data: 1000,
            max_in_flight: 64,
            max_queued_bytes: 256 * 1024,
            max_message_len: 64 * 1024,
            receive_window: 256,
        }
    }
}

impl ChannelConfig {
    /// Repairs nonsensical values instead of failing, so that no configuration
    /// can make the channel loop forever (zero-sized segments), stall (zero
    /// window) or overflow an `Instant` (huge RTO).
    fn normalized(mut self) -> Self {
        self.max_segment_data = self.max_segment_data.clamp(1, usize::from(u16::MAX));
        self.max_in_flight = self.max_in_flight.max(1);
        self.receive_window = self.receive_window.max(1);
        self.max_rto = self.max_rto.min(RTO_CEILING);
        self.min_rto = self.min_rto.min(self.max_rto);
        self.initial_rto = self.initial_rto.clamp(self.min_rto, self.max_rto);
        self
    }
}

/// A segment assigned a sequence number but never transmitted.
#[derive(Debug)]
struct Queued {
    seq: u32,
    last: bool,
    data: Vec<u8>,
}

/// A transmitted segment awaiting acknowledgement.
#[derive(Debug)]
struct Outstanding {
    last: bool,
    data: Vec<u8>,
    /// Time of the most recent transmission; the RTT sample and the
    /// "old enough to resend on timeout" test both use it.
    sent_at: Instant,
    /// Karn's algorithm: once retransmitted, an ack is ambiguous and must not
    /// produce an RTT sample.
    retransmitted: bool,
    /// Selected for retransmission by a timeout but not yet written (the
    /// budget of the datagram being built ran out).
    needs_retx: bool,
}

/// A reliable, ordered message channel to one peer. See the module docs.
#[derive(Debug)]
pub struct ReliableChannel {
    config: ChannelConfig,

    // Send side.
    /// Sequence number the next segment created by `send` gets.
    next_seq: u32,
    /// Segments not yet transmitted, in sequence order.
    queue: VecDeque<Queued>,
    /// Transmitted, unacknowledged segments by sequence number.
    unacked: BTreeMap<u32, Outstanding>,
    /// Framed bytes in `queue` and `unacked`, bounded by `max_queued_bytes`.
    queued_bytes: usize,
    /// Single retransmission timer as in RFC 6298; `None` when nothing is
    /// in flight.
    rtx_deadline: Option<Instant>,
    /// Round-trip estimate (RFC 6298 SRTT and RTTVAR).
    rtt: RttEstimator,
    /// Current retransmission timeout, including backoff.
    rto: Duration,
    /// Segments retransmitted so far, for statistics.
    retransmissions: u64,

    // Receive side.
    /// Next sequence number expected in order.
    rcv_next: u32,
    /// Out-of-order segments (`seq > rcv_next`) with their last flag.
    rcv_buf: BTreeMap<u32, (bool, Vec<u8>)>,
    /// Payload bytes in `rcv_buf`, bounded by `max_queued_bytes`.
    rcv_buf_bytes: usize,
    /// In-order payload of the message currently being reassembled.
    partial: Vec<u8>,
    /// Skipping the rest of an oversized incoming message.
    discarding: bool,
    /// Complete messages waiting for `poll_message`.
    ready: VecDeque<Vec<u8>>,
    /// A segment arrived since the last ack was written.
    ack_owed: bool,
}

impl ReliableChannel {
    /// Creates an idle channel. Out-of-range configuration values are
    /// clamped as documented on [`ChannelConfig`].
    pub fn new(config: ChannelConfig) -> Self {
        let config = config.normalized();
        Self {
            rto: config.initial_rto,
            config,
            next_seq: 0,
            queue: VecDeque::new(),
            unacked: BTreeMap::new(),
            queued_bytes: 0,
            rtx_deadline: None,
            rtt: RttEstimator::default(),
            retransmissions: 0,
            rcv_next: 0,
            rcv_buf: BTreeMap::new(),
            rcv_buf_bytes: 0,
            partial: Vec::new(),
            discarding: false,
            ready: VecDeque::new(),
            ack_owed: false,
        }
    }

    /// Queues a whole message for reliable, ordered delivery.
    ///
    /// The message is split into segments of at most `max_segment_data`
    /// bytes; an empty message becomes one empty final segment. Nothing is
    /// queued on error.
    ///
    /// # Errors
    ///
    /// [`ChannelError::MessageTooLarge`] (permanent for this message),
    /// [`ChannelError::QueueFull`] (retry once acks drained the queue) and
    /// [`ChannelError::SequenceExhausted`] (tear the channel down).
    pub fn send(&mut self, msg: &[u8]) -> Result<(), ChannelError> {
        let max_seg = self.config.max_segment_data;
        let segments = msg.len().div_ceil(max_seg).max(1);
        // Headers are charged too, so that a flood of empty messages is
        // bounded just like a flood of large ones.
        let needed = msg.len() + segments * SEGMENT_HEADER_LEN;
        if msg.len() > self.config.max_message_len {
            return Err(ChannelError::MessageTooLarge {
                len: msg.len(),
                max: self.config.max_message_len,
            });
        }
        if needed > self.config.max_queued_bytes {
            // Would never fit even into an empty queue: report it as
            // permanent rather than inviting an endless retry.
            return Err(ChannelError::MessageTooLarge {
                len: msg.len(),
                max: self
                    .config
                    .max_queued_bytes
                    .saturating_sub(segments * SEGMENT_HEADER_LEN),
            });
        }
        if self.queued_bytes + needed > self.config.max_queued_bytes {
            return Err(ChannelError::QueueFull {
                queued: self.queued_bytes,
                needed,
                max: self.config.max_queued_bytes,
            });
        }
        // Highest sequence number used must stay <= u32::MAX - 1.
        if u64::from(self.next_seq) + segments as u64 > u64::from(u32::MAX) {
            return Err(ChannelError::SequenceExhausted);
        }
        if msg.is_empty() {
            self.push_segment(true, Vec::new());
        } else {
            for (i, chunk) in msg.chunks(max_seg).enumerate() {
                self.push_segment(i + 1 == segments, chunk.to_vec());
            }
        }
        self.queued_bytes += needed;
        Ok(())
    }

    fn push_segment(&mut self, last: bool, data: Vec<u8>) {
        self.queue.push_back(Queued {
            seq: self.next_seq,
            last,
            data,
        });
        // Cannot overflow: `send` checked the whole message fits below u32::MAX.
        self.next_seq += 1;
    }

    /// Appends frames to `out` using at most `budget` bytes and returns the
    /// number of bytes written.
    ///
    /// Order: an owed ACK first (so acks are never starved by data), then
    /// retransmissions selected by an expired timer, then new segments while
    /// the in-flight window allows. Segments are never split; one that does
    /// not fit the remaining budget waits for the next call.
    pub fn write_frames(&mut self, now: Instant, out: &mut Vec<u8>, budget: usize) -> usize {
        let start = out.len();
        let mut remaining = budget;

        if self.ack_owed && remaining >= ACK_LEN {
            self.ack_frame().encode(out);
            remaining -= ACK_LEN;
            self.ack_owed = false;
        }

        self.on_timer(now);

        for (&seq, seg) in self.unacked.iter_mut() {
            if !seg.needs_retx {
                continue;
            }
            let len = SEGMENT_HEADER_LEN + seg.data.len();
            if len > remaining {
                // A smaller later segment may still fit.
                continue;
            }
            ChannelFrame::Segment {
                seq,
                last: seg.last,
                data: &seg.data,
            }
            .encode(out);
            remaining -= len;
            seg.needs_retx = false;
            seg.retransmitted = true;
            seg.sent_at = now;
            self.retransmissions += 1;
        }

        while self.can_send_new() {
            let Some(front) = self.queue.front() else {
                break;
            };
            let len = SEGMENT_HEADER_LEN + front.data.len();
            if len > remaining {
                break;
            }
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            ChannelFrame::Segment {
                seq: q.seq,
                last: q.last,
                data: &q.data,
            }
            .encode(out);
            remaining -= len;
            self.unacked.insert(
                q.seq,
                Outstanding {
                    last: q.last,
                    data: q.data,
                    sent_at: now,
                    retransmitted: false,
                    needs_retx: false,
                },
            );
            if self.rtx_deadline.is_none() {
                self.rtx_deadline = Some(now + self.rto);
            }
        }

        out.len() - start
    }

    /// Fires the retransmission timer if it expired: selects every segment
    /// that has gone unacknowledged for a full RTO (at least the oldest one),
    /// then backs off once per expiry. Backing off per expiry rather than per
    /// segment keeps one burst of losses from multiplying the RTO many times.
    fn on_timer(&mut self, now: Instant) {
        let Some(deadline) = self.rtx_deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        let rto = self.rto;
        for (i, seg) in self.unacked.values_mut().enumerate() {
            if i == 0 || now.saturating_duration_since(seg.sent_at) >= rto {
                seg.needs_retx = true;
            }
        }
        self.rto = rto
            .checked_mul(2)
            .unwrap_or(self.config.max_rto)
            .min(self.config.max_rto);
        self.rtx_deadline = if self.unacked.is_empty() {
            None
        } else {
            Some(now + self.rto)
        };
    }

    /// First sequence number not yet acknowledged (or, with nothing in
    /// flight, the next one to be sent); the in-flight window starts here.
    fn send_base(&self) -> u32 {
        self.unacked
            .keys()
            .next()
            .copied()
            .or_else(|| self.queue.front().map(|q| q.seq))
            .unwrap_or(self.next_seq)
    }

    fn can_send_new(&self) -> bool {
        self.queue
            .front()
            .is_some_and(|q| q.seq.saturating_sub(self.send_base()) < self.config.max_in_flight)
    }

    /// Whether [`write_frames`](Self::write_frames) has something to write:
    /// an ack is owed, a retransmission is due, or new data fits the window.
    pub fn wants_to_send(&self, now: Instant) -> bool {
        self.ack_owed
            || self.rtx_deadline.is_some_and(|d| now >= d)
            || self.unacked.values().any(|s| s.needs_retx)
            || self.can_send_new()
    }

    /// Processes one frame received from the peer.
    ///
    /// # Errors
    ///
    /// Errors are informational: the frame has been dealt with (or ignored
    /// without state change) and the channel remains usable.
    /// [`ChannelError::ImplausibleAck`] reports an ack for data never sent,
    /// [`ChannelError::IncomingMessageTooLarge`] a discarded peer message.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        frame: &ChannelFrame<'_>,
    ) -> Result<(), ChannelError> {
        match *frame {
            ChannelFrame::Segment { seq, last, data } => self.on_segment(seq, last, data),
            ChannelFrame::Ack { next, bits } => self.on_ack(now, next, bits),
        }
    }

    fn on_segment(&mut self, seq: u32, last: bool, data: &[u8]) -> Result<(), ChannelError> {
        // Ack every arrival, duplicates included: a duplicate means the peer
        // missed our ack, and only a fresh ack stops its retransmissions.
        self.ack_owed = true;
        if seq < self.rcv_next {
            return Ok(()); // duplicate of something already delivered
        }
        let ahead = seq - self.rcv_next;
        if ahead >= self.config.receive_window || seq == u32::MAX {
            return Ok(()); // outside the window; the sender will retransmit
        }
        if ahead > 0 {
            let fits = self.rcv_buf_bytes + data.len() <= self.config.max_queued_bytes;
            if fits && !self.rcv_buf.contains_key(&seq) {
                self.rcv_buf.insert(seq, (last, data.to_vec()));
                self.rcv_buf_bytes += data.len();
            }
            return Ok(());
        }
        let mut oversized = self.deliver_in_order(last, data);
        while let Some((last, data)) = self.rcv_buf.remove(&self.rcv_next) {
            self.rcv_buf_bytes -= data.len();
            oversized |= self.deliver_in_order(last, &data);
        }
        if oversized {
            return Err(ChannelError::IncomingMessageTooLarge {
                max: self.config.max_message_len,
            });
        }
        Ok(())
    }

    /// Appends the segment numbered `rcv_next` to the message being
    /// reassembled; returns whether an oversized message started being
    /// discarded.
    fn deliver_in_order(&mut self, last: bool, data: &[u8]) -> bool {
        // rcv_next <= u32::MAX - 1 here because seq == u32::MAX is refused.
        self.rcv_next += 1;
        let mut oversized = false;
        if !self.discarding {
            if self.partial.len() + data.len() > self.config.max_message_len {
                self.discarding = true;
                self.partial = Vec::new();
                oversized = true;
            } else {
                self.partial.extend_from_slice(data);
            }
        }
        if last {
            if self.discarding {
                self.discarding = false;
            } else {
                self.ready.push_back(std::mem::take(&mut self.partial));
            }
        }
        oversized
    }

    fn ack_frame(&self) -> ChannelFrame<'static> {
        let base = u64::from(self.rcv_next) + 1;
        let mut bits = 0u32;
        for &seq in self.rcv_buf.keys() {
            // Buffered keys are all > rcv_next, so this never underflows.
            let i = u64::from(seq) - base;
            if i >= u64::from(SACK_BITS) {
                break;
            }
            bits |= 1 << i;
        }
        ChannelFrame::Ack {
            next: self.rcv_next,
            bits,
        }
    }

    fn on_ack(&mut self, now: Instant, next: u32, bits: u32) -> Result<(), ChannelError> {
        // Validate before touching anything: an ack for a segment we never
        // transmitted is a peer bug or forgery and must not release data.
        let sent_bound = self.queue.front().map_or(self.next_seq, |q| q.seq);
        let implausible = ChannelError::ImplausibleAck { next, bits };
        if next > sent_bound {
            return Err(implausible);
        }
        if bits != 0 {
            let top = u64::from(next) + 1 + u64::from(31 - bits.leading_zeros());
            if top >= u64::from(sent_bound) {
                return Err(implausible);
            }
        }

        let mut progress = false;
        let mut sample: Option<Duration> = None;
        let still_unacked = self.unacked.split_off(&next);
        let acked = std::mem::replace(&mut self.unacked, still_unacked);
        for seg in acked.into_values() {
            progress = true;
            self.release(now, seg, &mut sample);
        }
        for i in 0..SACK_BITS {
            if bits & (1 << i) == 0 {
                continue;
            }
            // In range: validated above to be below sent_bound <= u32::MAX.
            let Ok(seq) = u32::try_from(u64::from(next) + 1 + u64::from(i)) else {
                continue;
            };
            if let Some(seg) = self.unacked.remove(&seq) {
                progress = true;
                self.release(now, seg, &mut sample);
            }
        }

        if let Some(r) = sample {
            self.rtt.update(r);
        }
        if progress {
            // The path delivers again: drop any backoff (even without a
            // fresh sample) and restart the timer for what is left.
            self.rto = self.computed_rto();
            self.rtx_deadline = if self.unacked.is_empty() {
                None
            } else {
                Some(now + self.rto)
            };
        }
        Ok(())
    }

    /// Forgets an acknowledged segment, keeping the smallest valid RTT
    /// sample: the most recently sent acked segment is the one that most
    /// likely triggered this ack, so its sample carries the least ack delay.
    fn release(&mut self, now: Instant, seg: Outstanding, sample: &mut Option<Duration>) {
        self.queued_bytes -= seg.data.len() + SEGMENT_HEADER_LEN;
        if !seg.retransmitted {
            let r = now.saturating_duration_since(seg.sent_at);
            *sample = Some(sample.map_or(r, |s| s.min(r)));
        }
    }

    fn computed_rto(&self) -> Duration {
        self.rtt.rto(
            self.config.initial_rto,
            self.config.min_rto,
            self.config.max_rto,
        )
    }

    /// Returns the next complete message in order, if any. Completed
    /// messages accumulate until polled, so poll after every
    /// [`handle_frame`](Self::handle_frame).
    pub fn poll_message(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// Earliest time at which [`write_frames`](Self::write_frames) has a
    /// retransmission to make; `None` when nothing is in flight. Work that is
    /// due already (owed acks, new data, retransmissions that did not fit the
    /// last budget) is reported by [`wants_to_send`](Self::wants_to_send).
    #[cfg(test)]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rtx_deadline
    }

    /// Smoothed round-trip time, once at least one sample was taken.
    #[cfg(test)]
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt.srtt()
    }

    /// Current retransmission timeout, including any backoff.
    #[cfg(test)]
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// Number of transmitted segments not yet acknowledged.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.unacked.len()
    }

    /// Bytes (payload plus segment headers) queued or awaiting ack; this is
    /// what `max_queued_bytes` bounds.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Whether everything sent has been acknowledged (nothing queued or
    /// unacked). Says nothing about the receive side.
    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.unacked.is_empty()
    }

    /// Total segment retransmissions so far, for statistics.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    const MS: Duration = Duration::from_millis(1);
    const BUDGET: usize = 1200;

    /// Decodes every frame of a datagram built by `write_frames`.
    fn frames(buf: &[u8]) -> Vec<ChannelFrame<'_>> {
        let mut out = Vec::new();
        let mut rest = buf;
        while !rest.is_empty() {
            let (frame, used) = ChannelFrame::decode(rest).unwrap();
            out.push(frame);
            rest = &rest[used..];
        }
        out
    }

    fn deliver(ch: &mut ReliableChannel, now: Instant, datagram: &[u8]) {
        for frame in frames(datagram) {
            ch.handle_frame(now, &frame).unwrap();
        }
    }

    /// Builds datagrams until the channel has nothing more to send.
    fn datagrams(ch: &mut ReliableChannel, now: Instant, budget: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while ch.wants_to_send(now) {
            let mut dg = Vec::new();
            let written = ch.write_frames(now, &mut dg, budget);
            assert_eq!(written, dg.len());
            assert!(written <= budget);
            if written == 0 {
                break;
            }
            out.push(dg);
        }
        out
    }

    /// Lossless, instantaneous exchange until both sides are quiet.
    fn pump(a: &mut ReliableChannel, b: &mut ReliableChannel, now: Instant) {
        for _ in 0..10_000 {
            let ab = datagrams(a, now, BUDGET);
            let ba = datagrams(b, now, BUDGET);
            if ab.is_empty() && ba.is_empty() {
                return;
            }
            ab.iter().for_each(|dg| deliver(b, now, dg));
            ba.iter().for_each(|dg| deliver(a, now, dg));
        }
        panic!("pump did not quiesce");
    }

    fn segments_of(datagrams: &[Vec<u8>]) -> Vec<(u32, bool, Vec<u8>)> {
        datagrams
            .iter()
            .flat_map(|dg| frames(dg))
            .filter_map(|f| match f {
                ChannelFrame::Segment { seq, last, data } => Some((seq, last, data.to_vec())),
                ChannelFrame::Ack { .. } => None,
            })
            .collect()
    }

    #[test]
    fn messages_fragment_into_bounded_segments_and_reassemble() {
        let config = ChannelConfig::default();
        let max = config.max_segment_data;
        let start = Instant::now();
        for len in [0, 1, max, 3 * max + 7, config.max_message_len] {
            let mut a = ReliableChannel::new(config.clone());
            let mut b = ReliableChannel::new(config.clone());
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            a.send(&msg).unwrap();
            let mut segs = Vec::new();
            let mut now = start;
            // Deliver batch by batch; the window forces several rounds for
            // the largest message.
            for round in 0.. {
                if a.is_idle() {
                    break;
                }
                assert!(round < 100, "len {len}: transfer did not complete");
                let out = datagrams(&mut a, now, max + SEGMENT_HEADER_LEN + ACK_LEN);
                segs.extend(segments_of(&out));
                out.iter().for_each(|dg| deliver(&mut b, now, dg));
                datagrams(&mut b, now, BUDGET)
                    .iter()
                    .for_each(|dg| deliver(&mut a, now, dg));
                now += MS;
            }
            let expected_segments = len.div_ceil(max).max(1);
            assert_eq!(segs.len(), expected_segments, "len {len}");
            for (i, (seq, last, data)) in segs.iter().enumerate() {
                assert_eq!(*seq as usize, i);
                assert_eq!(*last, i + 1 == expected_segments);
                assert!(data.len() <= max);
            }
            assert_eq!(b.poll_message(), Some(msg), "len {len}");
            assert_eq!(b.poll_message(), None);
            assert_eq!(a.retransmissions(), 0);
        }
    }

    #[test]
    fn too_large_and_queue_full_are_reported_without_queueing() {
        let config = ChannelConfig {
            max_segment_data: 100,
            max_queued_bytes: 3 * (100 + SEGMENT_HEADER_LEN),
            max_message_len: 250,
            ..ChannelConfig::default()
        };
        let mut a = ReliableChannel::new(config.clone());
        let mut b = ReliableChannel::new(config);
        assert_eq!(
            a.send(&[0; 251]),
            Err(ChannelError::MessageTooLarge { len: 251, max: 250 })
        );
        assert!(a.is_idle());
        for _ in 0..3 {
            a.send(&[1; 100]).unwrap();
        }
        assert!(matches!(
            a.send(&[2; 100]),
            Err(ChannelError::QueueFull { .. })
        ));
        assert!(matches!(a.send(&[]), Err(ChannelError::QueueFull { .. })));
        assert_eq!(a.queued_bytes(), 3 * 108);
        pump(&mut a, &mut b, Instant::now());
        assert!(a.is_idle());
        assert_eq!(a.queued_bytes(), 0);
        // Acks freed the space.
        a.send(&[2; 100]).unwrap();
        pump(&mut a, &mut b, Instant::now());
        let got: Vec<_> = std::iter::from_fn(|| b.poll_message()).collect();
        assert_eq!(
            got,
            [vec![1; 100], vec![1; 100], vec![1; 100], vec![2; 100]]
        );
    }

    #[test]
    fn message_that_can_never_fit_the_queue_is_too_large() {
        let mut a = ReliableChannel::new(ChannelConfig {
            max_queued_bytes: 100,
            ..ChannelConfig::default()
        });
        assert!(matches!(
            a.send(&[0; 200]),
            Err(ChannelError::MessageTooLarge { len: 200, .. })
        ));
    }

    #[test]
    fn sequence_space_exhaustion_is_an_error_not_a_wrap() {
        let mut a = ReliableChannel::new(ChannelConfig::default());
        a.next_seq = u32::MAX - 2;
        a.send(b"x").unwrap();
        a.send(b"y").unwrap(); // uses u32::MAX - 1, the last usable number
        assert_eq!(a.send(b"z"), Err(ChannelError::SequenceExhausted));
        let two_segments = vec![0; 1001];
        a.next_seq = u32::MAX - 1;
        assert_eq!(a.send(&two_segments), Err(ChannelError::SequenceExhausted));
    }

    #[test]
    fn rto_backoff_doubles_per_expiry_and_caps_then_resets_on_ack() {
        let mut a = ReliableChannel::new(ChannelConfig::default());
        let mut b = ReliableChannel::new(ChannelConfig::default());
        let t0 = Instant::now();
        a.send(b"hello").unwrap();
        let first = datagrams(&mut a, t0, BUDGET);
        assert_eq!(segments_of(&first).len(), 1);
        assert_eq!(a.rto(), 500 * MS);
        assert_eq!(a.poll_timeout(), Some(t0 + 500 * MS));

        // Not yet due.
        assert!(!a.wants_to_send(t0 + 499 * MS));
        assert!(datagrams(&mut a, t0 + 499 * MS, BUDGET).is_empty());

        let mut now = t0 + 500 * MS;
        for (expected_rto_ms, retx) in [(1000, 1), (2000, 2), (4000, 3), (4000, 4), (4000, 5)] {
            assert_eq!(a.poll_timeout(), Some(now));
            let out = datagrams(&mut a, now, BUDGET);
            assert_eq!(segments_of(&out), [(0, true, b"hello".to_vec())]);
            assert_eq!(a.rto(), expected_rto_ms * MS);
            assert_eq!(a.retransmissions(), retx);
            now += a.rto();
        }
        assert!(a.rtt().is_none());

        // The ack (of a retransmitted segment) resets the backoff but, per
        // Karn, yields no RTT sample.
        first.iter().for_each(|dg| deliver(&mut b, now, dg));
        datagrams(&mut b, now, BUDGET)
            .iter()
            .for_each(|dg| deliver(&mut a, now, dg));
        assert!(a.is_idle());
        assert_eq!(a.rto(), 500 * MS);
        assert!(a.rtt().is_none());
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn one_timeout_backs_off_once_and_resends_all_old_segments() {
        let mut a = ReliableChannel::new(ChannelConfig::default());
        let t0 = Instant::now();
        for _ in 0..3 {
            a.send(&[5; 1000]).unwrap();
        }
        assert_eq!(segments_of(&datagrams(&mut a, t0, BUDGET)).len(), 3);
        let out = datagrams(&mut a, t0 + 500 * MS, BUDGET);
        let seqs: Vec<u32> = segments_of(&out).iter().map(|s| s.0).collect();
        assert_eq!(seqs, [0, 1, 2]);
        assert_eq!(a.rto(), 1000 * MS);
        assert_eq!(a.retransmissions(), 3);
    }

    #[test]
    fn first_rtt_sample_sets_srtt_and_rto_per_rfc6298() {
        let mut a = ReliableChannel::new(ChannelConfig::default());
        let mut b = ReliableChannel::new(ChannelConfig::default());
        let t0 = Instant::now();
        a.send(b"ping").unwrap();
        let out = datagrams(&mut a, t0, BUDGET);
        out.iter().for_each(|dg| deliver(&mut b, t0 + 40 * MS, dg));
        let acks = datagrams(&mut b, t0 + 40 * MS, BUDGET);
        acks.iter().for_each(|dg| deliver(&mut a, t0 + 80 * MS, dg));
        assert_eq!(a.rtt(), Some(80 * MS));
        // SRTT + 4 * (R / 2) = 80 + 160.
        assert_eq!(a.rto(), 240 * MS);
    }

    /// Sends one message at `sent`, has `b` ack it, and delivers the ack to
    /// `a` at `acked`.
    fn round_trip(a: &mut ReliableChannel, b: &mut ReliableChannel, sent: Instant, acked: Instant) {
        a.send(b"ping").unwrap();
        let out = datagrams(a, sent, BUDGET);
        out.iter().for_each(|dg| deliver(b, sent, dg));
        let acks = datagrams(b, sent, BUDGET);
        acks.iter().for_each(|dg| deliver(a, acked, dg));
        assert!(a.is_idle());
    }

    #[test]
    fn later_rtt_samples_are_smoothed_per_rfc6298() {
        let mut a = ReliableChannel::new(ChannelConfig::default());
        let mut b = ReliableChannel::new(ChannelConfig::default());
        let t0 = Instant::now();
        round_trip(&mut a, &mut b, t0, t0 + 80 * MS);
        round_trip(&mut a, &mut b, t0 + 100 * MS, t0 + 220 * MS);
        // RTTVAR = 3/4 * 40 + 1/4 * |80 - 120| = 40; SRTT = 7/8 * 80 + 1/8 * 120 = 85.
        assert_eq!(a.rtt(), Some(85 * MS));
        assert_eq!(a.rto(), 85 * MS + 4 * 40 * MS);
    }

    #[test]
    fn cumulative_ack_samples_the_most_recently_sent_segment() {
        let mut a = ReliableChannel::new(ChannelConfig::default());
        let mut b = ReliableChannel::new(ChannelConfig::default());
        let t0 = Instant::now();
        a.send(b"early").unwrap();
        let first = datagrams(&mut a, t0, BUDGET);
        a.send(b"late").unwrap();
        let second = datagrams(&mut a, t0 + 50 * MS, BUDGET);
        let at_b = t0 + 80 * MS;
        first
            .iter()
            .chain(&second)
            .for_each(|dg| deliver(&mut b, at_b, dg));
        let ack = datagrams(&mut b, at_b, BUDGET);
        assert_eq!(ack.len(), 1, "one ack covers both segments");
        deliver(&mut a, t0 + 100 * MS, &ack[0]);
        // The early segment waited for the late one; its 100 ms would
        // overstate the path's 50 ms.
        assert_eq!(a.rtt(), Some(50 * MS));
    }

    #[test]
    fn rtt_estimate_converges_after_the_path_changes() {
        let mut a = ReliableChannel::new(ChannelConfig::default());
        let mut b = ReliableChannel::new(ChannelConfig::default());
        let mut now = Instant::now();
        round_trip(&mut a, &mut b, now, now + 400 * MS);
        for _ in 0..100 {
            now += Duration::from_secs(1);
            round_trip(&mut a, &mut b, now, now + 150 * MS);
        }
        let rtt = a.rtt().unwrap();
        assert!(rtt.abs_diff(150 * MS) < MS, "srtt {rtt:?}");
        // Variance has decayed too, so the RTO hugs the RTT.
        assert!(a.rto() < 155 * MS, "rto {:?}", a.rto());
    }

    #[test]
    fn retransmission_timer_is_not_pushed_back_by_later_sends() {
        let mut a = ReliableChannel::new(ChannelConfig::default());
        let t0 = Instant::now();
        a.send(b"first").unwrap();
        datagrams(&mut a, t0, BUDGET);
        a.send(b"second").unwrap();
        datagrams(&mut a, t0 + 300 * MS, BUDGET);
        assert_eq!(a.poll_timeout(), Some(t0 + 500 * MS));
        // Only the segment that has waited a full RTO is resent.
        let out = datagrams(&mut a, t0 + 500 * MS, BUDGET);
        assert_eq!(segments_of(&out), [(0, true, b"first".to_vec())]);
        assert_eq!(a.poll_timeout(), Some(t0 + 1500 * MS));
    }

    #[test]
    fn implausible_ack_is_rejected_without_state_change() {
        let mut a = ReliableChannel::new(ChannelConfig::default());
        let t0 = Instant::now();
        a.send(b"one").unwrap();
        a.send(b"two").unwrap();
        a.send(&[0; 2000]).unwrap(); // two segments, never transmitted below
        let mut dg = Vec::new();
        a.write_frames(t0, &mut dg, 2 * (SEGMENT_HEADER_LEN + 3)); // seq 0 and 1 only
        assert_eq!(a.in_flight(), 2);
        let before = format!("{a:?}");
        for (next, bits) in [(3, 0), (u32::MAX, 0), (0, 0b10), (1, 0b1), (0, 1 << 31)] {
            assert_eq!(
                a.handle_frame(t0 + 10 * MS, &ChannelFrame::Ack { next, bits }),
                Err(ChannelError::ImplausibleAck { next, bits })
            );
            assert_eq!(
                format!("{a:?}"),
                before,
                "ack ({next}, {bits:#b}) changed state"
            );
        }
        // A legitimate selective ack of seq 1 only is accepted.
        a.handle_frame(t0 + 10 * MS, &ChannelFrame::Ack { next: 0, bits: 0b1 })
            .unwrap();
        assert_eq!(a.in_flight(), 1);
    }

    #[test]
    fn duplicate_segments_never_yield_a_message_twice_and_are_reacked() {
        let mut a = ReliableChannel::new(ChannelConfig::default());
        let mut b = ReliableChannel::new(ChannelConfig::default());
        let now = Instant::now();
        a.send(&[9; 2500]).unwrap();
        a.send(b"second").unwrap();
        let out = datagrams(&mut a, now, BUDGET);
        // Deliver in reverse, then everything twice more.
        for _ in 0..3 {
            out.iter().rev().for_each(|dg| deliver(&mut b, now, dg));
        }
        assert_eq!(b.poll_message(), Some(vec![9; 2500]));
        assert_eq!(b.poll_message(), Some(b"second".to_vec()));
        assert_eq!(b.poll_message(), None);
        // Duplicates of already delivered segments still earn an ack, and
        // still yield nothing.
        datagrams(&mut b, now, BUDGET);
        deliver(&mut b, now, &out[0]);
        assert!(b.wants_to_send(now));
        let ack = datagrams(&mut b, now, BUDGET);
        assert_eq!(frames(&ack[0]), [ChannelFrame::Ack { next: 4, bits: 0 }]);
        assert_eq!(b.poll_message(), None);
    }

    #[test]
    fn ack_reports_out_of_order_segments_selectively() {
        let mut b = ReliableChannel::new(ChannelConfig::default());
        let now = Instant::now();
        for seq in [1, 3, 32, 33, 40] {
            b.handle_frame(
                now,
                &ChannelFrame::Segment {
                    seq,
                    last: true,
                    data: b"",
                },
            )
            .unwrap();
        }
        let mut dg = Vec::new();
        b.write_frames(now, &mut dg, BUDGET);
        // Bit i = seq 1 + i: seq 32 is bit 31; 33 and 40 are beyond the 32 bits.
        assert_eq!(
            frames(&dg),
            [ChannelFrame::Ack {
                next: 0,
                bits: 1 | 1 << 2 | 1 << 31
            }]
        );
    }

    #[test]
    fn receive_window_overflow_drops_without_corrupting_order() {
        let window = 16;
        let mut a = ReliableChannel::new(ChannelConfig {
            max_in_flight: 100,
            ..ChannelConfig::default()
        });
        let mut b = ReliableChannel::new(ChannelConfig {
            receive_window: window,
            ..ChannelConfig::default()
        });
        let now = Instant::now();
        for i in 0..40u8 {
            a.send(&[i]).unwrap();
        }
        let out = datagrams(&mut a, now, 10_000);
        let segs = segments_of(&out);
        assert_eq!(segs.len(), 40);
        // Lose seq 0; everything else arrives, most of it beyond the window.
        for (seq, last, data) in &segs[1..] {
            b.handle_frame(
                now,
                &ChannelFrame::Segment {
                    seq: *seq,
                    last: *last,
                    data,
                },
            )
            .unwrap();
        }
        assert_eq!(b.poll_message(), None);
        let (seq, last, data) = &segs[0];
        b.handle_frame(
            now,
            &ChannelFrame::Segment {
                seq: *seq,
                last: *last,
                data,
            },
        )
        .unwrap();
        // Only what fit in the window (seq 0..16) is deliverable.
        let got: Vec<_> = std::iter::from_fn(|| b.poll_message()).collect();
        let expected: Vec<Vec<u8>> = (0..window as u8).map(|i| vec![i]).collect();
        assert_eq!(got, expected);
        // Retransmissions fill in the dropped tail, in order, exactly once.
        let mut now = now;
        for _ in 0..20 {
            datagrams(&mut b, now, BUDGET)
                .iter()
                .for_each(|dg| deliver(&mut a, now, dg));
            now += a.rto();
            pump(&mut a, &mut b, now);
        }
        assert!(a.is_idle());
        let rest: Vec<_> = std::iter::from_fn(|| b.poll_message()).collect();
        let expected: Vec<Vec<u8>> = (window as u8..40).map(|i| vec![i]).collect();
        assert_eq!(rest, expected);
    }

    #[test]
    fn oversized_incoming_message_is_discarded_and_later_ones_survive() {
        let mut a = ReliableChannel::new(ChannelConfig {
            max_segment_data: 10,
            ..ChannelConfig::default()
        });
        let mut b = ReliableChannel::new(ChannelConfig {
            max_message_len: 15,
            ..ChannelConfig::default()
        });
        let now = Instant::now();
        a.send(&[1; 30]).unwrap();
        a.send(&[2; 5]).unwrap();
        let mut errors = 0;
        for dg in datagrams(&mut a, now, BUDGET) {
            for frame in frames(&dg) {
                match b.handle_frame(now, &frame) {
                    Ok(()) => {}
                    Err(ChannelError::IncomingMessageTooLarge { max: 15 }) => errors += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(errors, 1);
        assert_eq!(b.poll_message(), Some(vec![2; 5]));
        assert_eq!(b.poll_message(), None);
    }

    /// Messages are derived from (side, index) so the receiver can check
    /// content without sharing state with the sender.
    fn sim_message(side: usize, index: usize) -> Vec<u8> {
        let mut rng = ChaCha8Rng::seed_from_u64(((side as u64) << 32) | index as u64);
        let len = match index % 10 {
            0 => 0,
            1 => 2500 + (rng.next_u32() % 1000) as usize,
            _ => (rng.next_u32() % 1200) as usize,
        };
        let mut msg = vec![0; len];
        rng.fill_bytes(&mut msg);
        msg
    }

    struct Link {
        rng: ChaCha8Rng,
        loss: f64,
        duplicate: f64,
        latency: Duration,
        jitter_ms: u32,
        order: u64,
    }

    type Transit = BinaryHeap<Reverse<(Instant, u64, usize, Vec<u8>)>>;

    impl Link {
        fn chance(&mut self) -> f64 {
            f64::from(self.rng.next_u32()) / (f64::from(u32::MAX) + 1.0)
        }

        fn transmit(&mut self, now: Instant, to: usize, datagram: Vec<u8>, transit: &mut Transit) {
            let copies = if self.chance() < self.duplicate { 2 } else { 1 };
            for _ in 0..copies {
                if self.chance() < self.loss {
                    continue;
                }
                // Independent jitter per datagram reorders them.
                let jitter = if self.jitter_ms == 0 {
                    0
                } else {
                    self.rng.next_u32() % self.jitter_ms
                };
                let at = now + self.latency + MS * jitter;
                self.order += 1;
                transit.push(Reverse((at, self.order, to, datagram.clone())));
            }
        }
    }

    /// Runs both peers sending `n` messages each over a simulated link with
    /// a simulated clock until everything is delivered and acknowledged.
    fn simulate(mut link: Link, n: usize) -> [ReliableChannel; 2] {
        let start = Instant::now();
        let mut now = start;
        let mut peers = [
            ReliableChannel::new(ChannelConfig::default()),
            ReliableChannel::new(ChannelConfig::default()),
        ];
        let mut sent = [0usize; 2];
        let mut received = [0usize; 2];
        let mut transit = Transit::new();
        for _ in 0..10_000_000 {
            for side in 0..2 {
                while sent[side] < n {
                    match peers[side].send(&sim_message(side, sent[side])) {
                        Ok(()) => sent[side] += 1,
                        Err(ChannelError::QueueFull { .. }) => break,
                        Err(e) => panic!("send: {e}"),
                    }
                }
                for dg in datagrams(&mut peers[side], now, BUDGET) {
                    link.transmit(now, 1 - side, dg, &mut transit);
                }
            }
            if received == [n, n] && peers.iter().all(ReliableChannel::is_idle) {
                assert!(peers.iter_mut().all(|p| p.poll_message().is_none()));
                return peers;
            }
            let next = [
                transit.peek().map(|Reverse(t)| t.0),
                peers[0].poll_timeout(),
                peers[1].poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min()
            .expect("simulation stalled with work outstanding");
            assert!(next >= now, "timer in the past");
            now = next;
            assert!(
                now - start < Duration::from_secs(3600),
                "simulation too slow"
            );
            while transit.peek().is_some_and(|Reverse(t)| t.0 <= now) {
                let Reverse((_, _, to, dg)) = transit.pop().unwrap();
                deliver(&mut peers[to], now, &dg);
                while let Some(msg) = peers[to].poll_message() {
                    assert!(received[to] < n, "extra message delivered");
                    assert_eq!(
                        msg,
                        sim_message(1 - to, received[to]),
                        "message {} to side {to} wrong, duplicated or out of order",
                        received[to]
                    );
                    received[to] += 1;
                }
            }
        }
        panic!("simulation did not finish");
    }

    #[test]
    fn lossy_reordering_duplicating_link_delivers_everything_once_in_order() {
        for seed in [1, 2, 3] {
            let link = Link {
                rng: ChaCha8Rng::seed_from_u64(seed),
                loss: 0.2,
                duplicate: 0.1,
                latency: 20 * MS,
                jitter_ms: 60,
                order: 0,
            };
            let peers = simulate(link, 500);
            // With 20% loss the recovery path must actually have been used.
            assert!(peers.iter().all(|p| p.retransmissions() > 0));
        }
    }

    #[test]
    fn rtt_estimate_converges_to_the_simulated_rtt() {
        // One-way delay uniformly 40..60 ms: the true RTT averages 100 ms.
        let link = Link {
            rng: ChaCha8Rng::seed_from_u64(7),
            loss: 0.0,
            duplicate: 0.0,
            latency: 40 * MS,
            jitter_ms: 20,
            order: 0,
        };
        let peers = simulate(link, 200);
        for p in &peers {
            let rtt = p.rtt().unwrap();
            assert!(
                (85 * MS..=115 * MS).contains(&rtt),
                "srtt {rtt:?} far from 100 ms"
            );
            assert!(p.rto() >= rtt && p.rto() <= 300 * MS, "rto {:?}", p.rto());
        }

        // Exact case: fixed 30 ms each way.
        let link = Link {
            rng: ChaCha8Rng::seed_from_u64(8),
            loss: 0.0,
            duplicate: 0.0,
            latency: 30 * MS,
            jitter_ms: 0,
            order: 0,
        };
        for p in simulate(link, 50) {
            assert_eq!(p.rtt(), Some(60 * MS));
            assert_eq!(p.retransmissions(), 0);
        }
    }
}
