//! Salon's audio payload format: what goes inside the protocol's fixed-size audio datagram.
//!
//! Every payload is exactly [`crate::CodecConfig::frame_bytes`] long, muted or not. The first
//! byte is a format version so the layout can evolve:
//!
//! * version 0 (`[0, opus…]`): one Opus frame filling the rest (Opus-padded).
//! * version 1 (`[1, p, r, primary(p), redundant(r), zeros…]`): the primary Opus frame of
//!   this period plus an independently decodable, lower-rate Opus copy of the *previous*
//!   period's audio (RFC 2198-style redundancy inside the fixed size). `r` is 0 when there
//!   is no previous frame (the first packet of a stream). When a packet is lost, the
//!   receiver decodes the copy the next packet carries.
//!
//! A payload that does not parse (truncated, unknown version, lengths that overrun) is
//! treated by the receiver as lost.

use crate::codec::{CodecConfig, Encoder, expect_len};
use crate::error::{AudioError, Result};

/// Format version: one plain Opus frame.
pub const VERSION_PLAIN: u8 = 0;
/// Format version: primary frame plus a low-rate copy of the previous one.
pub const VERSION_REDUNDANT: u8 = 1;

/// Header bytes of a version-1 payload (version, primary length, redundant length).
const RED_HEADER: usize = 3;
/// Lowest bitrate (b/s) worth spending on the redundant copy.
const MIN_RED_BITRATE: u32 = 10_000;
/// Lowest bitrate (b/s) left to the primary frame when redundancy is on.
const MIN_PRIMARY_BITRATE: u32 = 20_000;

/// The parts of a received payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// This period's Opus frame.
    pub primary: &'a [u8],
    /// An Opus copy of the previous period's audio, if the payload carries one.
    pub redundant: Option<&'a [u8]>,
}

/// Splits a payload into its Opus frames; `None` if it is malformed.
pub fn parse(payload: &[u8]) -> Option<Parsed<'_>> {
    match *payload.first()? {
        VERSION_PLAIN => {
            let primary = payload.get(1..)?;
            (!primary.is_empty()).then_some(Parsed {
                primary,
                redundant: None,
            })
        }
        VERSION_REDUNDANT => {
            let p = usize::from(*payload.get(1)?);
            let r = usize::from(*payload.get(2)?);
            let primary = payload.get(RED_HEADER..RED_HEADER + p)?;
            let redundant = payload.get(RED_HEADER + p..RED_HEADER + p + r)?;
            (!primary.is_empty()).then_some(Parsed {
                primary,
                redundant: (!redundant.is_empty()).then_some(redundant),
            })
        }
        _ => None,
    }
}

/// Byte split of a version-1 payload: (primary, redundant).
fn split(frame_bytes: usize, frame_us: u64) -> Option<(usize, usize)> {
    let body = frame_bytes.checked_sub(RED_HEADER)?;
    // A third of the budget for the copy: ~16 kb/s of 48 for 20 ms frames.
    let r = (frame_bytes / 3).min(255);
    let p = body.checked_sub(r)?.min(255);
    let rate = |bytes: usize| (bytes as u64 * 8 * 1_000_000 / frame_us.max(1)) as u32;
    (rate(r) >= MIN_RED_BITRATE && rate(p) >= MIN_PRIMARY_BITRATE).then_some((p, r))
}

enum Mode {
    /// Version 0: one encoder filling the payload after the version byte.
    Plain(Encoder),
    /// Version 1: primary + redundant encoders and the previous period's copy.
    Redundant {
        primary: Encoder,
        copy: Encoder,
        prev: Vec<u8>,
        have_prev: bool,
    },
}

/// Encodes microphone frames into fixed-size Salon payloads (see the module docs).
pub struct PayloadEncoder {
    config: CodecConfig,
    mode: Mode,
}

impl std::fmt::Debug for PayloadEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadEncoder")
            .field("config", &self.config)
            .field("redundant", &matches!(self.mode, Mode::Redundant { .. }))
            .finish()
    }
}

impl PayloadEncoder {
    /// Builds the encoder(s). Redundancy is used when `config.redundancy` is set and the
    /// budget leaves both frames a usable bitrate; otherwise payloads are version 0.
    pub fn new(config: CodecConfig) -> Result<Self> {
        config.validate()?;
        let frame_bytes = config.frame_bytes();
        if frame_bytes < 2 {
            return Err(AudioError::InvalidConfig("frame budget too small"));
        }
        let us = config.frame.micros();
        // An encoder whose frames fill `bytes` exactly.
        let part = |bytes: usize, fec: bool| {
            let rate = (bytes as u64 * 8 * 1_000_000 / us) as u32;
            Encoder::sized(config, rate, bytes, fec)
        };
        let mode = match split(frame_bytes, us).filter(|_| config.redundancy) {
            Some((p, r)) => Mode::Redundant {
                // The copy in the next packet already protects this frame: no in-band FEC.
                primary: part(p, false)?,
                copy: part(r, false)?,
                prev: vec![0; r],
                have_prev: false,
            },
            None => Mode::Plain(part(frame_bytes - 1, config.fec)?),
        };
        Ok(Self { config, mode })
    }

    /// Bytes in every payload.
    pub fn frame_bytes(&self) -> usize {
        self.config.frame_bytes()
    }

    /// Samples one input frame must hold.
    pub fn frame_samples(&self) -> usize {
        self.config.frame.samples()
    }

    /// The settings this encoder was built with.
    pub fn config(&self) -> &CodecConfig {
        &self.config
    }

    /// Whether payloads carry a redundant copy (version 1).
    pub fn redundant(&self) -> bool {
        matches!(self.mode, Mode::Redundant { .. })
    }

    /// Updates the expected-loss hint; clamped to 0..=100.
    pub fn set_expected_loss(&mut self, pct: u8) -> Result<()> {
        match &mut self.mode {
            Mode::Plain(enc) => enc.set_expected_loss(pct)?,
            Mode::Redundant { primary, copy, .. } => {
                primary.set_expected_loss(pct)?;
                copy.set_expected_loss(pct)?;
            }
        }
        self.config.expected_loss_pct = pct.min(100);
        Ok(())
    }

    /// Encodes one frame into `out`, which must be exactly [`Self::frame_bytes`] long.
    pub fn encode_into(&mut self, pcm: &[f32], out: &mut [u8]) -> Result<()> {
        expect_len(self.frame_samples(), pcm.len())?;
        expect_len(self.frame_bytes(), out.len())?;
        match &mut self.mode {
            Mode::Plain(enc) => {
                out[0] = VERSION_PLAIN;
                enc.encode_into(pcm, &mut out[1..])?;
            }
            Mode::Redundant {
                primary,
                copy,
                prev,
                have_prev,
            } => {
                let (p, r) = (primary.frame_bytes(), copy.frame_bytes());
                out.fill(0);
                out[0] = VERSION_REDUNDANT;
                out[1] = p as u8;
                out[2] = if *have_prev { r as u8 } else { 0 };
                primary.encode_into(pcm, &mut out[RED_HEADER..RED_HEADER + p])?;
                if *have_prev {
                    out[RED_HEADER + p..RED_HEADER + p + r].copy_from_slice(prev);
                }
                // This period's copy rides in the next packet.
                copy.encode_into(pcm, prev)?;
                *have_prev = true;
            }
        }
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
    use crate::codec::SAMPLE_RATE;
    use crate::codec::tests::tone;
    use crate::codec::{Decoder, FrameDuration};
    use crate::level::goertzel_amplitude;

    fn red() -> CodecConfig {
        CodecConfig {
            redundancy: true,
            ..CodecConfig::default()
        }
    }

    #[test]
    fn redundant_payloads_are_version_1_fixed_size_with_a_copy_after_the_first() {
        for frame in [FrameDuration::Ms10, FrameDuration::Ms20] {
            let cfg = CodecConfig {
                frame,
                redundancy: true,
                ..CodecConfig::default()
            };
            let mut enc = PayloadEncoder::new(cfg).unwrap();
            assert!(enc.redundant());
            let n = cfg.frame.samples();
            for i in 0..30 {
                let pcm = if i % 3 == 0 {
                    vec![0.0; n]
                } else {
                    tone(440.0, 0.5, n, i * n)
                };
                let out = enc.encode(&pcm).unwrap();
                assert_eq!(out.len(), cfg.frame_bytes());
                assert!(out.len() <= 153, "must fit the protocol's audio frame");
                let parsed = parse(&out).unwrap();
                assert_eq!(out[0], VERSION_REDUNDANT);
                assert_eq!(parsed.redundant.is_some(), i > 0, "frame {i}");
            }
        }
    }

    #[test]
    fn small_budget_or_redundancy_off_gives_plain_version_0() {
        for cfg in [
            CodecConfig {
                bitrate: 16_000,
                redundancy: true,
                ..CodecConfig::default()
            },
            CodecConfig {
                redundancy: false,
                ..CodecConfig::default()
            },
        ] {
            let mut enc = PayloadEncoder::new(cfg).unwrap();
            assert!(!enc.redundant());
            let out = enc.encode(&tone(300.0, 0.3, 960, 0)).unwrap();
            assert_eq!(out.len(), cfg.frame_bytes());
            assert_eq!(out[0], VERSION_PLAIN);
            let mut d = Decoder::new(cfg.frame).unwrap();
            d.decode_payload(&out, &mut [0.0; 960]).unwrap();
        }
    }

    #[test]
    fn truncated_or_garbage_payloads_do_not_parse_or_panic() {
        let mut enc = PayloadEncoder::new(red()).unwrap();
        let _ = enc.encode(&tone(300.0, 0.3, 960, 0)).unwrap();
        let full = enc.encode(&tone(300.0, 0.3, 960, 960)).unwrap();
        assert!(parse(&full).is_some());
        for len in 0..full.len() {
            assert_eq!(parse(&full[..len]), None, "truncated to {len}");
        }
        assert_eq!(parse(&[VERSION_PLAIN]), None);
        assert_eq!(parse(&[VERSION_REDUNDANT, 0, 0, 1, 2]), None);
        assert_eq!(parse(&[7; 120]), None);
        let mut d = Decoder::new(FrameDuration::Ms20).unwrap();
        let mut out = vec![0.0; 960];
        let mut x: u32 = 5;
        for len in [0, 1, 2, 3, 50, 120, 153] {
            for _ in 0..50 {
                let garbage: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (x >> 24) as u8
                    })
                    .collect();
                let _ = parse(&garbage);
                let _ = d.decode_payload(&garbage, &mut out);
                let _ = d.recover_from_next(&garbage, &mut out);
            }
        }
    }

    #[test]
    fn a_lost_frame_is_rebuilt_from_the_copy_in_the_next_payload() {
        let cfg = red();
        let mut enc = PayloadEncoder::new(cfg).unwrap();
        // 500 Hz up to frame 11, then 1500 Hz: concealment can only extrapolate the old
        // tone, so hearing the new one in lost frame 12 proves it came from the copy.
        let payloads: Vec<Vec<u8>> = (0..20)
            .map(|i| {
                let f = if i < 12 { 500.0 } else { 1500.0 };
                enc.encode(&tone(f, 0.4, 960, i * 960)).unwrap()
            })
            .collect();
        let mut dec = Decoder::new(cfg.frame).unwrap();
        let mut out = vec![0.0; 960];
        for p in &payloads[..12] {
            dec.decode_payload(p, &mut out).unwrap();
        }
        // Frame 12 is lost; 13 arrives. (12 is the first 1500 Hz frame.)
        dec.recover_from_next(&payloads[13], &mut out).unwrap();
        let new = goertzel_amplitude(&out[480..], 1500.0, SAMPLE_RATE);
        let old = goertzel_amplitude(&out[480..], 500.0, SAMPLE_RATE);
        assert!(
            new > 0.25,
            "copy should carry the new tone: {new} (old {old})"
        );
        assert!(old < 0.1, "old tone should be gone: {old}");
        // The stream continues normally afterwards.
        for p in &payloads[13..] {
            dec.decode_payload(p, &mut out).unwrap();
        }
        let tail = goertzel_amplitude(&out, 1500.0, SAMPLE_RATE);
        assert!(tail > 0.3, "{tail}");
    }
}
