//! Frames inside a decrypted transport datagram, and the padding that gives every
//! datagram one of a few fixed sizes.
//!
//! A plaintext is a sequence of frames; a `PADDING` byte ends it (the rest is zeros).
//! The reliable channel's frames (`ACK`, `SEGMENT`, [`ChannelFrame`]) are here too: one
//! codec for everything a slot carries; [`crate::channel`] keeps only the protocol.

use crate::codec::{DecodeError, Reader};
use crate::wire::{AUDIO_PLAINTEXT_LEN, bucket_for};

/// Ends the frame list; the rest of the plaintext is padding.
pub const PADDING_TYPE: u8 = 0x00;
/// An audio frame: `seq u32 | len u16 | bytes`.
pub const AUDIO_TYPE: u8 = 0x01;
/// A ping: `id u32`. Answered with a pong; measures round-trip time.
pub const PING_TYPE: u8 = 0x04;
/// A pong: `id u32` of the ping it answers.
pub const PONG_TYPE: u8 = 0x05;
/// A reception report: `loss u16`, the audio loss (in tenths of a percent, at most
/// [`MAX_LOSS_PERMILLE`]) the sender measured from us over the last report interval.
pub const REPORT_TYPE: u8 = 0x06;
/// A path challenge: `token u64`. Sent straight to an address an authenticated datagram
/// came from that is not the link's current address; only the real peer can answer it.
pub const PATH_CHALLENGE_TYPE: u8 = 0x07;
/// A path response: `token u64` of the challenge it answers, sent back to where the
/// challenge came from.
pub const PATH_RESPONSE_TYPE: u8 = 0x08;
/// Frame type: the audio frame with this sequence number was not sent to this peer (its
/// slot carried control instead), so it does not count as lost.
pub const SKIPPED_TYPE: u8 = 0x09;
/// Largest loss a reception report may carry: 1000 tenths of a percent, all of it.
pub const MAX_LOSS_PERMILLE: u16 = 1000;
/// Bytes an audio frame adds around the codec bytes.
pub const AUDIO_OVERHEAD: usize = 1 + 4 + 2;
/// Largest codec frame an audio datagram carries (153 bytes: Opus CBR up to ~61 kb/s at
/// 20 ms or ~122 kb/s at 10 ms).
pub const MAX_AUDIO_FRAME: usize = AUDIO_PLAINTEXT_LEN - AUDIO_OVERHEAD;

/// One frame of a decrypted plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Codec bytes from a stage member.
    Audio {
        /// Sender's audio sequence number.
        seq: u32,
        /// Opaque codec frame.
        data: &'a [u8],
    },
    /// Round-trip probe.
    Ping(u32),
    /// Answer to a probe.
    Pong {
        /// The ping's id.
        id: u32,
        /// Milliseconds the answer waited for a slot (subtracted from the round trip).
        held_ms: u16,
    },
    /// The sender's audio frame `seq` gave its slot to control: not a loss.
    Skipped(u32),
    /// Reception report: audio loss from us the peer measured, in tenths of a percent.
    Report {
        /// Lost frames per thousand expected over the report interval (0..=1000).
        loss_permille: u16,
    },
    /// Asks the peer to prove it receives at the address this came to.
    PathChallenge(u64),
    /// Proves the path: the token of a challenge.
    PathResponse(u64),
    /// Reliable-channel frame.
    Channel(ChannelFrame<'a>),
}

/// Parses every frame of a plaintext. Any malformed frame fails the whole datagram, so a
/// corrupt datagram changes no state.
pub fn parse(plaintext: &[u8]) -> Result<Vec<Frame<'_>>, DecodeError> {
    let mut frames = Vec::new();
    let mut rest = plaintext;
    while let Some(&ty) = rest.first() {
        match ty {
            PADDING_TYPE => break,
            AUDIO_TYPE => {
                let mut r = Reader::new(&rest[1..]);
                let seq = r.u32()?;
                let data = r.var_bytes(MAX_AUDIO_FRAME)?;
                frames.push(Frame::Audio { seq, data });
                rest = r.rest();
            }
            PING_TYPE | SKIPPED_TYPE => {
                let mut r = Reader::new(&rest[1..]);
                let n = r.u32()?;
                frames.push(if ty == PING_TYPE {
                    Frame::Ping(n)
                } else {
                    Frame::Skipped(n)
                });
                rest = r.rest();
            }
            PONG_TYPE => {
                let mut r = Reader::new(&rest[1..]);
                let id = r.u32()?;
                let held_ms = r.u16()?;
                frames.push(Frame::Pong { id, held_ms });
                rest = r.rest();
            }
            REPORT_TYPE => {
                let mut r = Reader::new(&rest[1..]);
                let loss_permille = r.u16()?;
                if loss_permille > MAX_LOSS_PERMILLE {
                    return Err(DecodeError::Invalid("report loss"));
                }
                frames.push(Frame::Report { loss_permille });
                rest = r.rest();
            }
            PATH_CHALLENGE_TYPE | PATH_RESPONSE_TYPE => {
                let mut r = Reader::new(&rest[1..]);
                let token = r.u64()?;
                frames.push(if ty == PATH_CHALLENGE_TYPE {
                    Frame::PathChallenge(token)
                } else {
                    Frame::PathResponse(token)
                });
                rest = r.rest();
            }
            ACK_TYPE | SEGMENT_TYPE => {
                let (f, used) = ChannelFrame::decode(rest)
                    .map_err(|_| DecodeError::Invalid("channel frame"))?;
                frames.push(Frame::Channel(f));
                rest = rest.get(used..).ok_or(DecodeError::Truncated)?;
            }
            _ => return Err(DecodeError::Invalid("frame type")),
        }
    }
    Ok(frames)
}

/// Appends an audio frame. The caller checks `data.len() <= MAX_AUDIO_FRAME`.
pub fn push_audio(out: &mut Vec<u8>, seq: u32, data: &[u8]) {
    out.push(AUDIO_TYPE);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// Appends a ping.
pub fn push_ping(out: &mut Vec<u8>, id: u32) {
    out.push(PING_TYPE);
    out.extend_from_slice(&id.to_be_bytes());
}

/// Appends a pong that waited `held_ms` for its slot.
pub fn push_pong(out: &mut Vec<u8>, id: u32, held_ms: u16) {
    out.push(PONG_TYPE);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&held_ms.to_be_bytes());
}

/// Appends a note that audio frame `seq` was not sent to this peer.
pub fn push_skipped(out: &mut Vec<u8>, seq: u32) {
    out.push(SKIPPED_TYPE);
    out.extend_from_slice(&seq.to_be_bytes());
}

/// Appends a path challenge or response.
pub fn push_path(out: &mut Vec<u8>, response: bool, token: u64) {
    out.push(if response {
        PATH_RESPONSE_TYPE
    } else {
        PATH_CHALLENGE_TYPE
    });
    out.extend_from_slice(&token.to_be_bytes());
}

/// Appends a reception report; a loss above [`MAX_LOSS_PERMILLE`] is written as the
/// maximum (the receiver rejects anything larger).
pub fn push_report(out: &mut Vec<u8>, loss_permille: u16) {
    out.push(REPORT_TYPE);
    out.extend_from_slice(&loss_permille.min(MAX_LOSS_PERMILLE).to_be_bytes());
}

/// Pads a plaintext with zeros to the smallest bucket that holds it. Returns false if it
/// is larger than every bucket (a bug in the caller's budget).
pub fn pad(plaintext: &mut Vec<u8>) -> bool {
    match bucket_for(plaintext.len()) {
        Some(b) => {
            plaintext.resize(b, PADDING_TYPE);
            true
        }
        None => false,
    }
}

// ---------------------------------------------------------------- channel frames

/// Frame type byte of an [`ChannelFrame::Ack`].
pub const ACK_TYPE: u8 = 0x02;
/// Frame type byte of a [`ChannelFrame::Segment`].
pub const SEGMENT_TYPE: u8 = 0x03;
/// Encoded size of an ACK frame in bytes.
pub const ACK_LEN: usize = 9;
/// Encoded size of a SEGMENT frame excluding its data, in bytes.
pub const SEGMENT_HEADER_LEN: usize = 8;

/// Flag bit marking the final segment of a message; every other flag bit is
/// reserved and must be zero so that future use can be detected.
const FLAG_LAST: u8 = 0x01;

/// Why a byte string is not a valid channel frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelFrameError {
    /// The input ends before the frame does (including an empty input).
    #[error("frame truncated")]
    Truncated,
    /// The type byte is not [`ACK_TYPE`] or [`SEGMENT_TYPE`]; the caller
    /// dispatches its own frame types before calling [`ChannelFrame::decode`].
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// A segment's flags byte has reserved bits set.
    #[error("invalid segment flags {0:#04x}")]
    InvalidFlags(u8),
}

/// One channel frame, borrowing segment data from the datagram it was decoded
/// from so that decoding never copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelFrame<'a> {
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

impl<'a> ChannelFrame<'a> {
    /// Appends the encoded frame to `out`.
    ///
    /// A segment's data must not exceed `u16::MAX` bytes (the channel never
    /// produces such segments); if it does, only the first `u16::MAX` bytes
    /// are written so the output is still a well-formed frame.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            ChannelFrame::Ack { next, bits } => {
                out.push(ACK_TYPE);
                out.extend_from_slice(&next.to_be_bytes());
                out.extend_from_slice(&bits.to_be_bytes());
            }
            ChannelFrame::Segment { seq, last, data } => {
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

    /// Number of bytes [`ChannelFrame::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        match *self {
            ChannelFrame::Ack { .. } => ACK_LEN,
            ChannelFrame::Segment { data, .. } => {
                SEGMENT_HEADER_LEN + data.len().min(usize::from(u16::MAX))
            }
        }
    }

    /// Decodes one frame from the start of `input`, returning it and the
    /// number of bytes it occupied so the caller can continue with the next
    /// frame. Never panics; trailing bytes are left to the caller.
    pub fn decode(input: &'a [u8]) -> Result<(ChannelFrame<'a>, usize), ChannelFrameError> {
        let (&ty, body) = input.split_first().ok_or(ChannelFrameError::Truncated)?;
        match ty {
            ACK_TYPE => {
                let next = read_u32(body, 0)?;
                let bits = read_u32(body, 4)?;
                Ok((ChannelFrame::Ack { next, bits }, ACK_LEN))
            }
            SEGMENT_TYPE => {
                let seq = read_u32(body, 0)?;
                let flags = *body.get(4).ok_or(ChannelFrameError::Truncated)?;
                if flags & !FLAG_LAST != 0 {
                    return Err(ChannelFrameError::InvalidFlags(flags));
                }
                let len_bytes: [u8; 2] = body
                    .get(5..7)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(ChannelFrameError::Truncated)?;
                let len = usize::from(u16::from_be_bytes(len_bytes));
                let data = body.get(7..7 + len).ok_or(ChannelFrameError::Truncated)?;
                let frame = ChannelFrame::Segment {
                    seq,
                    last: flags & FLAG_LAST != 0,
                    data,
                };
                Ok((frame, SEGMENT_HEADER_LEN + len))
            }
            other => Err(ChannelFrameError::UnknownType(other)),
        }
    }
}

/// Reads a big-endian `u32` at `at`, reporting truncation instead of panicking.
fn read_u32(bytes: &[u8], at: usize) -> Result<u32, ChannelFrameError> {
    let raw: [u8; 4] = bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or(ChannelFrameError::Truncated)?;
    Ok(u32::from_be_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip_and_padding_ends_the_list() {
        let mut pt = Vec::new();
        push_audio(&mut pt, 42, &[7; 100]);
        push_ping(&mut pt, 9);
        push_pong(&mut pt, 10, 300);
        push_skipped(&mut pt, 41);
        ChannelFrame::Ack { next: 3, bits: 1 }.encode(&mut pt);
        assert!(pad(&mut pt));
        assert_eq!(pt.len(), 160);
        let frames = parse(&pt).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Audio {
                    seq: 42,
                    data: &[7; 100]
                },
                Frame::Ping(9),
                Frame::Pong {
                    id: 10,
                    held_ms: 300
                },
                Frame::Skipped(41),
                Frame::Channel(ChannelFrame::Ack { next: 3, bits: 1 }),
            ]
        );
    }

    #[test]
    fn path_challenge_and_response_round_trip_in_an_audio_sized_plaintext() {
        let mut pt = Vec::new();
        push_path(&mut pt, false, 0x0102_0304_0506_0708);
        push_path(&mut pt, true, 9);
        assert_eq!(pt[..9], [PATH_CHALLENGE_TYPE, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(pad(&mut pt));
        assert_eq!(pt.len(), AUDIO_PLAINTEXT_LEN);
        assert_eq!(
            parse(&pt).unwrap(),
            vec![
                Frame::PathChallenge(0x0102_0304_0506_0708),
                Frame::PathResponse(9)
            ]
        );
        assert!(
            parse(&[PATH_RESPONSE_TYPE, 0, 0, 0]).is_err(),
            "truncated token"
        );
    }

    #[test]
    fn malformed_frames_fail_the_whole_plaintext() {
        let mut pt = Vec::new();
        push_audio(&mut pt, 1, &[1; 10]);
        assert!(parse(&pt[..8]).is_err());
        assert!(parse(&[0x77, 0, 0]).is_err());
        let mut big = vec![AUDIO_TYPE, 0, 0, 0, 1];
        big.extend_from_slice(&(MAX_AUDIO_FRAME as u16 + 1).to_be_bytes());
        big.resize(400, 1);
        assert!(parse(&big).is_err());
    }

    #[test]
    fn reception_report_round_trips_and_shares_the_audio_size() {
        let mut pt = Vec::new();
        push_report(&mut pt, 200);
        push_ping(&mut pt, 3);
        assert_eq!(pt, [REPORT_TYPE, 0, 200, PING_TYPE, 0, 0, 0, 3]);
        assert!(pad(&mut pt));
        assert_eq!(pt.len(), AUDIO_PLAINTEXT_LEN);
        assert_eq!(
            parse(&pt).unwrap(),
            vec![Frame::Report { loss_permille: 200 }, Frame::Ping(3)]
        );
        let mut capped = Vec::new();
        push_report(&mut capped, u16::MAX);
        assert_eq!(
            parse(&capped).unwrap(),
            vec![Frame::Report {
                loss_permille: MAX_LOSS_PERMILLE
            }]
        );
    }

    #[test]
    fn truncated_or_out_of_range_reception_reports_fail_the_whole_plaintext() {
        // Cut inside the loss field, with and without a valid frame in front.
        assert!(parse(&[REPORT_TYPE]).is_err());
        assert!(parse(&[REPORT_TYPE, 0]).is_err());
        assert!(parse(&[PING_TYPE, 0, 0, 0, 1, REPORT_TYPE, 3]).is_err());
        // More than 100 %.
        assert!(parse(&[REPORT_TYPE, 0x03, 0xe9]).is_err());
        assert!(parse(&[REPORT_TYPE, 0xff, 0xff, 0, 0]).is_err());
        // The largest valid value still parses.
        assert!(parse(&[REPORT_TYPE, 0x03, 0xe8]).is_ok());
    }

    #[test]
    fn largest_audio_frame_fits_the_audio_bucket_exactly() {
        let mut pt = Vec::new();
        push_audio(&mut pt, 1, &[1; MAX_AUDIO_FRAME]);
        assert_eq!(pt.len(), AUDIO_PLAINTEXT_LEN);
    }

    fn encode(frame: &ChannelFrame<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        frame.encode(&mut out);
        out
    }

    #[test]
    fn frames_round_trip_with_exact_wire_bytes() {
        let ack = ChannelFrame::Ack {
            next: 0x0102_0304,
            bits: 0x8000_0001,
        };
        let bytes = encode(&ack);
        assert_eq!(bytes, [0x02, 1, 2, 3, 4, 0x80, 0, 0, 1]);
        assert_eq!(ChannelFrame::decode(&bytes), Ok((ack, ACK_LEN)));
        assert_eq!(ack.encoded_len(), bytes.len());

        let seg = ChannelFrame::Segment {
            seq: 7,
            last: true,
            data: b"hi",
        };
        let bytes = encode(&seg);
        assert_eq!(bytes, [0x03, 0, 0, 0, 7, 0x01, 0, 2, b'h', b'i']);
        assert_eq!(ChannelFrame::decode(&bytes), Ok((seg, 10)));
        assert_eq!(seg.encoded_len(), bytes.len());

        // Trailing bytes (e.g. the caller's padding) are not consumed.
        let mut padded = encode(&ChannelFrame::Segment {
            seq: 1,
            last: false,
            data: b"",
        });
        padded.extend_from_slice(&[0, 0, 0]);
        let (frame, used) = ChannelFrame::decode(&padded).unwrap();
        assert_eq!(used, SEGMENT_HEADER_LEN);
        assert_eq!(
            frame,
            ChannelFrame::Segment {
                seq: 1,
                last: false,
                data: b""
            }
        );
    }

    #[test]
    fn decode_rejects_truncation_bad_flags_and_foreign_types() {
        let seg = encode(&ChannelFrame::Segment {
            seq: 9,
            last: false,
            data: b"abc",
        });
        for cut in 0..seg.len() {
            assert_eq!(
                ChannelFrame::decode(&seg[..cut]),
                Err(ChannelFrameError::Truncated),
                "cut {cut}"
            );
        }
        let ack = encode(&ChannelFrame::Ack { next: 1, bits: 2 });
        for cut in 0..ack.len() {
            assert_eq!(
                ChannelFrame::decode(&ack[..cut]),
                Err(ChannelFrameError::Truncated),
                "cut {cut}"
            );
        }
        let mut bad = seg.clone();
        bad[5] = 0x02;
        assert_eq!(
            ChannelFrame::decode(&bad),
            Err(ChannelFrameError::InvalidFlags(0x02))
        );
        assert_eq!(
            ChannelFrame::decode(&[0x01, 0]),
            Err(ChannelFrameError::UnknownType(0x01))
        );
        assert_eq!(
            ChannelFrame::decode(&[0x00]),
            Err(ChannelFrameError::UnknownType(0x00))
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_arbitrary_bytes(
            // Bias the type byte towards our own types so that the segment
            // and ack parsers, not just the type dispatch, see garbage.
            ty in prop_oneof![Just(ACK_TYPE), Just(SEGMENT_TYPE), any::<u8>()],
            tail in proptest::collection::vec(any::<u8>(), 0..64),
            raw in any::<bool>(),
        ) {
            let bytes = if raw { tail } else { [vec![ty], tail].concat() };
            if let Ok((frame, used)) = ChannelFrame::decode(&bytes) {
                prop_assert!(used <= bytes.len());
                prop_assert_eq!(frame.encoded_len(), used);
                prop_assert_eq!(&encode(&frame)[..], &bytes[..used]);
            }
        }

        #[test]
        fn decode_inverts_encode(seq in any::<u32>(), last in any::<bool>(),
                                 data in proptest::collection::vec(any::<u8>(), 0..2000),
                                 next in any::<u32>(), bits in any::<u32>()) {
            for frame in [ChannelFrame::Segment { seq, last, data: &data }, ChannelFrame::Ack { next, bits }] {
                let bytes = encode(&frame);
                prop_assert_eq!(bytes.len(), frame.encoded_len());
                prop_assert_eq!(ChannelFrame::decode(&bytes), Ok((frame, bytes.len())));
            }
        }
    }
}
