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
//! Frames live inside the decrypted datagram plaintext, next to frames the
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

/// Frame type byte of an [`Frame::Ack`].
pub const ACK_TYPE: u8 = 0x02;
/// Frame type byte of a [`Frame::Segment`].
pub const SEGMENT_TYPE: u8 = 0x03;
/// Encoded size of an ACK frame in bytes.
pub const ACK_LEN: usize = 9;
/// Encoded size of a SEGMENT frame excluding its data, in bytes.
pub const SEGMENT_HEADER_LEN: usize = 8;

/// Flag bit marking the final segment of a message; every other flag bit is
/// reserved and must be zero so that future use can be detected.
const FLAG_LAST: u8 = 0x01;

/// Clock granularity term `G` of RFC 6298; keeps the RTO strictly above SRTT
/// even when the measured variance is zero.
const CLOCK_GRANULARITY: Duration = Duration::from_millis(1);

/// Upper bound applied to `max_rto` so that `now + rto` can never overflow an
/// [`Instant`]; RFC 6298 only asks for a maximum of at least 60 s.
const RTO_CEILING: Duration = Duration::from_secs(3600);

/// Number of selective-ack bits an ACK frame carries.
const SACK_BITS: u32 = 32;

/// Why a byte string is not a valid channel frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The input ends before the frame does (including an empty input).
    #[error("frame truncated")]
    Truncated,
    /// The type byte is not [`ACK_TYPE`] or [`SEGMENT_TYPE`]; the caller
    /// dispatches its own frame types before calling [`Frame::decode`].
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// A segment's flags byte has reserved bits set.
    #[error("invalid segment flags {0:#04x}")]
    InvalidFlags(u8),
}

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

/// One channel frame, borrowing segment data from the datagram it was decoded
/// from so that decoding never copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Acknowledgement of received segments.
    Ack {
        /// Every segment with `seq < next` has been received.
        next: u32,
        /// Bit `i` set: segment `next + 1 + i` has been received too.
        bits: u32,
    },
    /// A fragment of a message.
    Segment {
        /// Sequence number of this segment.
        seq: u32,
        /// Whether this is the final segment of its message.
        last: bool,
        /// Segment payload; at most `u16::MAX` bytes on the wire.
        data: &'a [u8],
    },
}

impl<'a> Frame<'a> {
    /// Appends the encoded frame to `out`.
    ///
    /// A segment's data must not exceed `u16::MAX` bytes (the channel never
    /// produces such segments); if it does, only the first `u16::MAX` bytes
    /// are written so the output is still a well-formed frame.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Frame::Ack { next, bits } => {
                out.push(ACK_TYPE);
                out.extend_from_slice(&next.to_be_bytes());
                out.extend_from_slice(&bits.to_be_bytes());
            }
            Frame::Segment { seq, last, data } => {
                debug_assert!(data.len() <= usize::from(u16::MAX), "segment data too long");
                let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
                out.push(SEGMENT_TYPE);
                out.extend_from_slice(&seq.to_be_bytes());
                out.push(if last { FLAG_LAST } else { 0 });
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&data[..usize::from(len)]);
            }
        }
    }

    /// Number of bytes [`Frame::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        match *self {
            Frame::Ack { .. } => ACK_LEN,
            Frame::Segment { data, .. } => {
                SEGMENT_HEADER_LEN + data.len().min(usize::from(u16::MAX))
            }
        }
    }

    /// Decodes one frame from the start of `input`, returning it and the
    /// number of bytes it occupied so the caller can continue with the next
    /// frame. Never panics; trailing bytes are left to the caller.
    pub fn decode(input: &'a [u8]) -> Result<(Frame<'a>, usize), FrameError> {
        let (&ty, body) = input.split_first().ok_or(FrameError::Truncated)?;
        match ty {
            ACK_TYPE => {
                let next = read_u32(body, 0)?;
                let bits = read_u32(body, 4)?;
                Ok((Frame::Ack { next, bits }, ACK_LEN))
            }
            SEGMENT_TYPE => {
                let seq = read_u32(body, 0)?;
                let flags = *body.get(4).ok_or(FrameError::Truncated)?;
                if flags & !FLAG_LAST != 0 {
                    return Err(FrameError::InvalidFlags(flags));
                }
                let len_bytes: [u8; 2] = body
                    .get(5..7)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(FrameError::Truncated)?;
                let len = usize::from(u16::from_be_bytes(len_bytes));
                let data = body.get(7..7 + len).ok_or(FrameError::Truncated)?;
                let frame = Frame::Segment {
                    seq,
                    last: flags & FLAG_LAST != 0,
                    data,
                };
                Ok((frame, SEGMENT_HEADER_LEN + len))
            }
            other => Err(FrameError::UnknownType(other)),
        }
    }
}

/// Reads a big-endian `u32` at `at`, reporting truncation instead of panicking.
fn read_u32(bytes: &[u8], at: usize) -> Result<u32, FrameError> {
    let raw: [u8; 4] = bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or(FrameError::Truncated)?;
    Ok(u32::from_be_bytes(raw))
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
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
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
            srtt: None,
            rttvar: Duration::ZERO,
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

    /// The effective (normalized) configuration.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// Queues a whole message for reliable, ordered delivery.
    ///
    /// The message is split into segments of at most `max_segment_data`
    /// bytes; an empty message becomes one empty final segment. Nothing is
    /// queued on error.
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
            Frame::Segment {
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
            Frame::Segment {
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
    /// Errors are informational: the frame has been dealt with (or ignored
    /// without state change) and the channel remains usable.
    pub fn handle_frame(&mut self, now: Instant, frame: &Frame<'_>) -> Result<(), ChannelError> {
        match *frame {
            Frame::Segment { seq, last, data } => self.on_segment(seq, last, data),
            Frame::Ack { next, bits } => self.on_ack(now, next, bits),
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

    fn ack_frame(&self) -> Frame<'static> {
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
        Frame::Ack {
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
            self.update_rtt(r);
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

    /// RFC 6298 section 2 smoothing.
    fn update_rtt(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(r);
                self.rttvar = self.rttvar * 3 / 4 + diff / 4;
                self.srtt = Some(srtt * 7 / 8 + r / 8);
            }
        }
    }

    fn computed_rto(&self) -> Duration {
        let raw = match self.srtt {
            None => self.config.initial_rto,
            Some(srtt) => srtt + CLOCK_GRANULARITY.max(self.rttvar * 4),
        };
        raw.clamp(self.config.min_rto, self.config.max_rto)
    }

    /// Returns the next complete message in order, if any.
    pub fn poll_message(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// Earliest time at which [`write_frames`](Self::write_frames) has a
    /// retransmission to make; `None` when nothing is in flight. Work that is
    /// due already (owed acks, new data, retransmissions that did not fit the
    /// last budget) is reported by [`wants_to_send`](Self::wants_to_send).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rtx_deadline
    }

    /// Smoothed round-trip time, once at least one sample was taken.
    pub fn rtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// Current retransmission timeout, including any backoff.
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// Number of transmitted segments not yet acknowledged.
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
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.unacked.is_empty()
    }

    /// Total segment retransmissions so far, for statistics.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions
    }
}
