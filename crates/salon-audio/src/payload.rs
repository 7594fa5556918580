//! Salon's audio payload format: what goes inside the protocol's fixed-size audio datagram.
//!
//! Every payload is exactly [`crate::CodecConfig::frame_bytes`] long, muted or not. The first
//! byte is a format version:
//!
//! * version 0 (`[0, opus…]`): one Opus frame filling the rest, with Opus in-band FEC for
//!   the frame before it. The format while loss is low. Version 3 is the same on a path
//!   where receivers report some loss ([`LOSSY_PATH_PCT`]): it tells receivers to hold the
//!   frame FEC needs from the first packet, not from the first loss.
//! * version 2 (`[2, count, len, frame(seq), frame(seq-1), …, zeros…]`): `count` (1..=3)
//!   Opus frames of `len` bytes from one encoder, newest first: this period's frame and
//!   bit-exact copies of the one or two before it (RFC 2198 redundancy inside the fixed
//!   size). A frame is lost only when three packets in a row are, and what a copy restores
//!   is exactly what the original would have played. The format while loss is high.
//!
//! The sender switches between them on its expected-loss figure (receiver reports), with
//! hysteresis, on one Opus encoder whose bitrate changes in place, so the decoder never
//! sees a seam. Measured with `tools/pesq_bench.py` (PESQ-WB, 0 / 5 / 10 / 20 % random
//! loss; copies of 50 bytes):
//!
//! | frames | version 0, 152 bytes + FEC | version 2, three copies |
//! |---|---|---|
//! | 20 ms | 4.26 / 3.96 / 3.47 / 2.50 | 3.64 / 3.58 / 3.64 / 3.25 |
//! | 10 ms | 4.29 / 4.12 / 3.80 / 2.96 | 3.69 / 3.69 / 3.66 / 3.49 |
//!
//! (stream running 5 s before the speech, as in a room: `LEAD_IN_S=5`; copies at 20 ms
//! are 20 kb/s each, held to wideband by [`crate::codec`], where they score best).
//!
//! Version 1 (a low-rate copy from a second encoder) was measured worse than in-band FEC
//! and is gone; a receiver treats it as malformed.
//!
//! A payload that does not parse (truncated, unknown version, lengths that overrun) is
//! treated by the receiver as lost.

use crate::codec::{CodecConfig, Encoder, FrameDuration, expect_len};
use crate::error::{AudioError, Result};

/// Format version: one plain Opus frame.
pub const VERSION_PLAIN: u8 = 0;
/// Format version: one plain Opus frame, from a sender whose listeners report loss.
pub const VERSION_PLAIN_LOSSY: u8 = 3;
/// Expected loss (percent) from which plain payloads say the path is lossy.
pub const LOSSY_PATH_PCT: u8 = 2;
/// Format version: this frame plus bit-exact copies of the previous ones.
pub const VERSION_COPIES: u8 = 2;

/// Frames a version-2 payload carries at most (this one and two copies).
pub const MAX_FRAMES: usize = 3;
/// Expected loss (percent) at which the sender switches to copies, and back to plain
/// payloads: just past where copies start to beat in-band FEC in the measurements above
/// (about 9 % at 20 ms, 11 % at 10 ms, where the plain payload carries twice the bits per
/// second), since a loss figure from reports is noisy and copies cost more on a path that
/// is cleaner than it looked. The gap keeps a loss rate near the threshold from flipping
/// formats every report.
pub const fn copies_thresholds(frame: FrameDuration) -> (u8, u8) {
    match frame {
        FrameDuration::Ms20 => (10, 6),
        FrameDuration::Ms10 => (13, 9),
    }
}
/// Lowest Opus loss hint used: with 0 Opus sends no FEC at all, and the first surprise
/// loss costs a concealed frame.
pub const MIN_LOSS_HINT_PCT: u8 = 5;

/// Header bytes of a version-2 payload (version, count, frame length).
const COPIES_HEADER: usize = 3;
/// Lowest bitrate (b/s) a copied frame may have; below it copies lose to FEC everywhere.
const MIN_COPY_BITRATE: u64 = 20_000;

/// The parts of a received payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// This period's Opus frame.
    pub primary: &'a [u8],
    /// Copies of earlier frames, newest first, each `primary.len()` bytes.
    copies: &'a [u8],
    /// Frames a receiver should hold back for loss recovery from this packet on, before
    /// any loss of its own: 0 on a clean path, 1 for FEC on a lossy one, 2 for copies
    /// (also before the first payload has earlier frames to copy).
    pub hold_frames: usize,
}

impl<'a> Parsed<'a> {
    /// The copy of the frame `back` periods before this one (1 or 2), if carried.
    pub fn copy(&self, back: usize) -> Option<&'a [u8]> {
        let len = self.primary.len();
        let start = back.checked_sub(1)?.checked_mul(len)?;
        self.copies.get(start..start.checked_add(len)?)
    }

    /// How many earlier frames this payload carries copies of.
    pub fn copy_count(&self) -> usize {
        self.copies
            .len()
            .checked_div(self.primary.len())
            .unwrap_or(0)
    }
}

/// Splits a payload into its Opus frames; `None` if it is malformed.
pub fn parse(payload: &[u8]) -> Option<Parsed<'_>> {
    match *payload.first()? {
        version @ (VERSION_PLAIN | VERSION_PLAIN_LOSSY) => {
            let primary = payload.get(1..)?;
            (!primary.is_empty()).then_some(Parsed {
                primary,
                copies: &[],
                hold_frames: usize::from(version == VERSION_PLAIN_LOSSY),
            })
        }
        VERSION_COPIES => {
            let count = usize::from(*payload.get(1)?);
            let len = usize::from(*payload.get(2)?);
            if !(1..=MAX_FRAMES).contains(&count) || len == 0 {
                return None;
            }
            let frames = payload.get(COPIES_HEADER..COPIES_HEADER + count * len)?;
            let (primary, copies) = frames.split_at(len);
            Some(Parsed {
                primary,
                copies,
                hold_frames: MAX_FRAMES - 1,
            })
        }
        _ => None,
    }
}

/// Size of each frame in a version-2 payload of `payload_bytes`, if copies are worth it.
fn copy_frame_bytes(payload_bytes: usize, frame_us: u64) -> Option<usize> {
    let len = (payload_bytes.checked_sub(COPIES_HEADER)? / MAX_FRAMES).min(255);
    let bitrate = len as u64 * 8 * 1_000_000 / frame_us.max(1);
    (bitrate >= MIN_COPY_BITRATE).then_some(len)
}

/// Encodes microphone frames into fixed-size Salon payloads (see the module docs).
pub struct PayloadEncoder {
    config: CodecConfig,
    encoder: Encoder,
    /// Frame size in version 2, when the budget allows copies and they are enabled.
    copy_len: Option<usize>,
    /// Whether payloads are version 2 now.
    copying: bool,
    /// The last two frames encoded in version 2, newest first (`copy_len` bytes each).
    history: [Vec<u8>; MAX_FRAMES - 1],
    /// How many of `history` hold frames from the current run of version 2.
    history_len: usize,
}

impl std::fmt::Debug for PayloadEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadEncoder")
            .field("config", &self.config)
            .field("copying", &self.copying)
            .finish()
    }
}

impl PayloadEncoder {
    /// Builds the encoder, in version 2 from the start if `config.expected_loss_pct` is
    /// already at the threshold of [`copies_thresholds`].
    pub fn new(config: CodecConfig) -> Result<Self> {
        config.validate()?;
        let frame_bytes = config.frame_bytes();
        if frame_bytes < 2 {
            return Err(AudioError::InvalidConfig("frame budget too small"));
        }
        let copy_len =
            copy_frame_bytes(frame_bytes, config.frame.micros()).filter(|_| config.copies);
        let plain_rate = ((frame_bytes - 1) as u64 * 8 * 1_000_000 / config.frame.micros()) as u32;
        let encoder = Encoder::sized(config, plain_rate, frame_bytes - 1, config.fec)?;
        let len = copy_len.unwrap_or(0);
        let mut this = Self {
            config,
            encoder,
            copy_len,
            copying: false,
            history: [vec![0; len], vec![0; len]],
            history_len: 0,
        };
        this.set_expected_loss(config.expected_loss_pct)?;
        Ok(this)
    }

    /// Bytes in every payload.
    pub fn frame_bytes(&self) -> usize {
        self.config.frame_bytes()
    }

    /// Samples one input frame must hold.
    pub fn frame_samples(&self) -> usize {
        self.config.frame.samples()
    }

    /// The settings this encoder was built with (with the current loss figure).
    pub fn config(&self) -> &CodecConfig {
        &self.config
    }

    /// Whether payloads carry copies of earlier frames now (version 2).
    pub fn copying(&self) -> bool {
        self.copying
    }

    /// Updates the expected loss (clamped to 0..=100): the Opus hint (at least
    /// [`MIN_LOSS_HINT_PCT`]) and, with hysteresis, the payload format.
    pub fn set_expected_loss(&mut self, pct: u8) -> Result<()> {
        let pct = pct.min(100);
        self.encoder.set_expected_loss(pct.max(MIN_LOSS_HINT_PCT))?;
        self.config.expected_loss_pct = pct;
        let (enter, leave) = copies_thresholds(self.config.frame);
        let want = match self.copy_len {
            None => false,
            Some(_) if self.copying => pct > leave,
            Some(_) => pct >= enter,
        };
        if want != self.copying {
            let us = self.config.frame.micros();
            let bytes = match self.copy_len {
                Some(len) if want => len,
                _ => self.frame_bytes() - 1,
            };
            let rate = (bytes as u64 * 8 * 1_000_000 / us) as u32;
            // Copies protect every frame three deep: FEC would only eat their bits.
            self.encoder.resize(rate, bytes, self.config.fec && !want)?;
            self.copying = want;
            self.history_len = 0;
        }
        Ok(())
    }

    /// Encodes one frame into `out`, which must be exactly [`Self::frame_bytes`] long.
    pub fn encode_into(&mut self, pcm: &[f32], out: &mut [u8]) -> Result<()> {
        expect_len(self.frame_samples(), pcm.len())?;
        expect_len(self.frame_bytes(), out.len())?;
        let len = match self.copy_len {
            Some(len) if self.copying => len,
            _ => {
                out[0] = if self.config.expected_loss_pct >= LOSSY_PATH_PCT {
                    VERSION_PLAIN_LOSSY
                } else {
                    VERSION_PLAIN
                };
                return self.encoder.encode_into(pcm, &mut out[1..]);
            }
        };
        out.fill(0);
        out[0] = VERSION_COPIES;
        out[1] = (1 + self.history_len) as u8;
        out[2] = len as u8;
        let body = &mut out[COPIES_HEADER..];
        self.encoder.encode_into(pcm, &mut body[..len])?;
        for (i, old) in self.history[..self.history_len].iter().enumerate() {
            body[(i + 1) * len..(i + 2) * len].copy_from_slice(old);
        }
        // Shift the history: this frame becomes the newest copy.
        self.history.rotate_right(1);
        self.history[0].copy_from_slice(&body[..len]);
        self.history_len = (self.history_len + 1).min(MAX_FRAMES - 1);
        Ok(())
    }

    /// Encodes one frame into a fresh `Vec` of exactly [`Self::frame_bytes`] bytes.
    pub fn encode(&mut self, pcm: &[f32]) -> Result<Vec<u8>> {
        let mut out = vec![0; self.frame_bytes()];
        self.encode_into(pcm, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::tone;
    use crate::codec::{Decoder, MAX_PAYLOAD_BYTES};

    fn lossy(frame: FrameDuration) -> CodecConfig {
        CodecConfig {
            expected_loss_pct: 20,
            ..CodecConfig::for_frame(frame)
        }
    }

    #[test]
    fn default_payloads_are_plain_and_fill_the_datagram() {
        for frame in [FrameDuration::Ms10, FrameDuration::Ms20] {
            let cfg = CodecConfig::for_frame(frame);
            let mut enc = PayloadEncoder::new(cfg).unwrap();
            assert!(!enc.copying());
            let mut d = Decoder::new(frame).unwrap();
            for i in 0..20 {
                let out = enc.encode(&tone(440.0, 0.5, frame.samples(), i)).unwrap();
                assert_eq!(out.len(), MAX_PAYLOAD_BYTES);
                assert_eq!(out[0], VERSION_PLAIN);
                d.decode_payload(&out, &mut vec![0.0; frame.samples()])
                    .unwrap();
            }
        }
    }

    #[test]
    fn at_high_loss_payloads_carry_bit_exact_copies_of_the_two_frames_before() {
        for frame in [FrameDuration::Ms10, FrameDuration::Ms20] {
            let mut enc = PayloadEncoder::new(lossy(frame)).unwrap();
            assert!(enc.copying());
            let n = frame.samples();
            let payloads: Vec<Vec<u8>> = (0..30)
                .map(|i| {
                    let pcm = if i % 3 == 0 {
                        vec![0.0; n]
                    } else {
                        tone(440.0, 0.5, n, i * n)
                    };
                    enc.encode(&pcm).unwrap()
                })
                .collect();
            for (i, p) in payloads.iter().enumerate() {
                assert_eq!(p.len(), MAX_PAYLOAD_BYTES, "muted or not, one size");
                assert_eq!(p[0], VERSION_COPIES);
                let parsed = parse(p).unwrap();
                assert_eq!(parsed.primary.len(), 50);
                assert_eq!(parsed.copy_count(), i.min(2), "payload {i}");
                for back in 1..=parsed.copy_count() {
                    let earlier = parse(&payloads[i - back]).unwrap();
                    assert_eq!(parsed.copy(back), Some(earlier.primary), "{i} -{back}");
                }
                assert_eq!(parsed.copy(parsed.copy_count() + 1), None);
            }
        }
    }

    #[test]
    fn copies_at_20_ms_are_coded_wideband_where_their_bits_buy_most() {
        let mut enc = PayloadEncoder::new(lossy(FrameDuration::Ms20)).unwrap();
        for i in 0..50 {
            let p = enc.encode(&tone(440.0, 0.4, 960, i * 960)).unwrap();
            let frame = parse(&p).unwrap().primary;
            assert_eq!(
                opus::packet::get_bandwidth(frame).unwrap(),
                opus::Bandwidth::Wideband,
                "frame {i}"
            );
        }
    }

    #[test]
    fn format_follows_the_expected_loss_with_hysteresis() {
        let mut enc = PayloadEncoder::new(CodecConfig::default()).unwrap();
        let pcm = tone(300.0, 0.3, 960, 0);
        let version = |enc: &mut PayloadEncoder, pct: u8| {
            enc.set_expected_loss(pct).unwrap();
            enc.encode(&pcm).unwrap()[0]
        };
        let (enter, leave) = copies_thresholds(FrameDuration::Ms20);
        let between = (enter + leave) / 2;
        assert_eq!(version(&mut enc, 0), VERSION_PLAIN);
        assert_eq!(version(&mut enc, LOSSY_PATH_PCT - 1), VERSION_PLAIN);
        assert_eq!(version(&mut enc, LOSSY_PATH_PCT), VERSION_PLAIN_LOSSY);
        assert_eq!(version(&mut enc, between), VERSION_PLAIN_LOSSY);
        assert_eq!(version(&mut enc, enter), VERSION_COPIES);
        assert_eq!(
            version(&mut enc, between),
            VERSION_COPIES,
            "in the gap: stays"
        );
        assert_eq!(version(&mut enc, leave), VERSION_PLAIN_LOSSY);
        assert_eq!(
            version(&mut enc, between),
            VERSION_PLAIN_LOSSY,
            "in the gap: stays"
        );
        // A fresh run of copies starts without stale ones.
        enc.set_expected_loss(50).unwrap();
        let p = enc.encode(&pcm).unwrap();
        assert_eq!(parse(&p).unwrap().copy_count(), 0);
    }

    #[test]
    fn small_budget_or_copies_off_stays_plain_at_any_loss() {
        for cfg in [
            CodecConfig {
                bitrate: 48_000,
                ..lossy(FrameDuration::Ms20)
            },
            CodecConfig {
                copies: false,
                ..lossy(FrameDuration::Ms20)
            },
        ] {
            let mut enc = PayloadEncoder::new(cfg).unwrap();
            enc.set_expected_loss(60).unwrap();
            assert!(!enc.copying());
            let out = enc.encode(&tone(300.0, 0.3, 960, 0)).unwrap();
            assert_eq!(out.len(), cfg.frame_bytes());
            assert_eq!(out[0], VERSION_PLAIN_LOSSY);
            assert_eq!(parse(&out).unwrap().hold_frames, 1);
        }
    }

    #[test]
    fn truncated_or_garbage_payloads_do_not_parse_or_panic() {
        let mut enc = PayloadEncoder::new(lossy(FrameDuration::Ms20)).unwrap();
        for i in 0..2 {
            enc.encode(&tone(300.0, 0.3, 960, i * 960)).unwrap();
        }
        let full = enc.encode(&tone(300.0, 0.3, 960, 1920)).unwrap();
        assert_eq!(parse(&full).unwrap().copy_count(), 2);
        // Everything after the three frames is zero padding, so cuts inside the frames fail.
        for len in 0..COPIES_HEADER + 3 * 50 {
            assert_eq!(parse(&full[..len]), None, "truncated to {len}");
        }
        assert_eq!(parse(&[VERSION_PLAIN]), None);
        assert_eq!(
            parse(&[VERSION_COPIES, 0, 5, 1, 2, 3, 4, 5]),
            None,
            "count 0"
        );
        assert_eq!(parse(&[VERSION_COPIES, 4, 1, 1, 2, 3, 4]), None, "count 4");
        assert_eq!(parse(&[VERSION_COPIES, 1, 0, 1]), None, "empty frames");
        assert_eq!(parse(&[1; 120]), None, "retired version 1");
        assert_eq!(parse(&[7; 120]), None);
        let mut d = Decoder::new(FrameDuration::Ms20).unwrap();
        let mut out = vec![0.0; 960];
        let mut x: u32 = 5;
        for len in [0, 1, 2, 3, 50, 120, 153] {
            for _ in 0..50 {
                let mut garbage: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (x >> 24) as u8
                    })
                    .collect();
                if let Some(v) = garbage.first_mut() {
                    *v %= 4;
                }
                let _ = parse(&garbage);
                let _ = d.decode_payload(&garbage, &mut out);
                let _ = d.recover_from_next(&garbage, &mut out);
            }
        }
    }

    #[test]
    fn two_lost_frames_are_restored_exactly_from_the_copies_in_the_next_payload() {
        let cfg = lossy(FrameDuration::Ms20);
        let mut enc = PayloadEncoder::new(cfg).unwrap();
        let payloads: Vec<Vec<u8>> = (0..20)
            .map(|i| {
                let f = if i < 12 { 500.0 } else { 1500.0 };
                enc.encode(&tone(f, 0.4, 960, i * 960)).unwrap()
            })
            .collect();
        let mut reference = Decoder::new(cfg.frame).unwrap();
        let mut lossy_rx = Decoder::new(cfg.frame).unwrap();
        let (mut a, mut b) = (vec![0.0; 960], vec![0.0; 960]);
        for (i, p) in payloads.iter().enumerate() {
            reference.decode_payload(p, &mut a).unwrap();
            match i {
                // 12 and 13 are lost; 14 carries both.
                12 => {
                    let copy = parse(&payloads[14]).unwrap().copy(2).unwrap();
                    lossy_rx.decode(copy, &mut b).unwrap();
                }
                13 => lossy_rx.recover_from_next(&payloads[14], &mut b).unwrap(),
                _ => lossy_rx.decode_payload(p, &mut b).unwrap(),
            }
            assert_eq!(a, b, "frame {i} differs from the lossless decode");
        }
    }
}
