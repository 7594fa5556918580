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

use crate::codec::{CodecConfig, expect_len, opus_encoder, pad_to};
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
    /// Version 0 through the plain encoder.
    Plain { enc: opus::Encoder },
    /// Version 1: primary + redundant encoders and the previous period's copy.
    Redundant {
        primary: opus::Encoder,
        copy: opus::Encoder,
        p: usize,
        r: usize,
        prev: Vec<u8>,
        have_prev: bool,
    },
}

/// Encodes microphone frames into fixed-size Salon payloads (see the module docs).
pub struct PayloadEncoder {
    config: CodecConfig,
    mode: Mode,
    scratch: Vec<u8>,
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
        let rate = |bytes: usize| (bytes as u64 * 8 * 1_000_000 / us) as u32;
        let mode = match split(frame_bytes, us).filter(|_| config.redundancy) {
            Some((p, r)) => Mode::Redundant {
                // The copy in the next packet already protects this frame: no in-band FEC.
                primary: opus_encoder(&config, rate(p), false)?,
                copy: opus_encoder(&config, rate(r), false)?,
                p,
                r,
                prev: vec![0; r],
                have_prev: false,
            },
            None => Mode::Plain {
                enc: opus_encoder(&config, rate(frame_bytes - 1), config.fec)?,
            },
        };
        Ok(Self {
            config,
            mode,
            scratch: vec![0; frame_bytes],
        })
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
        let pct = pct.min(100);
        match &mut self.mode {
            Mode::Plain { enc } => enc.set_packet_loss_perc(i32::from(pct))?,
            Mode::Redundant { primary, copy, .. } => {
                primary.set_packet_loss_perc(i32::from(pct))?;
                copy.set_packet_loss_perc(i32::from(pct))?;
            }
        }
        self.config.expected_loss_pct = pct;
        Ok(())
    }

    /// Encodes one frame into `out`, which must be exactly [`Self::frame_bytes`] long.
    pub fn encode_into(&mut self, pcm: &[f32], out: &mut [u8]) -> Result<()> {
        expect_len(self.frame_samples(), pcm.len())?;
        let want = self.frame_bytes();
        expect_len(want, out.len())?;
        match &mut self.mode {
            Mode::Plain { enc } => {
                let body = &mut self.scratch[..want - 1];
                let n = enc.encode_float(pcm, body)?;
                pad_to(body, n, want - 1)?;
                out[0] = VERSION_PLAIN;
                out[1..].copy_from_slice(body);
            }
            Mode::Redundant {
                primary,
                copy,
                p,
                r,
                prev,
                have_prev,
            } => {
                let (p, r) = (*p, *r);
                out.fill(0);
                out[0] = VERSION_REDUNDANT;
                out[1] = p as u8;
                out[2] = if *have_prev { r as u8 } else { 0 };
                let body = &mut self.scratch[..p];
                let n = primary.encode_float(pcm, body)?;
                pad_to(body, n, p)?;
                out[RED_HEADER..RED_HEADER + p].copy_from_slice(body);
                if *have_prev {
                    out[RED_HEADER + p..RED_HEADER + p + r].copy_from_slice(prev);
                }
                // This period's copy rides in the next packet.
                let body = &mut self.scratch[..r];
                let n = copy.encode_float(pcm, body)?;
                pad_to(body, n, r)?;
                prev.copy_from_slice(body);
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
    use crate::codec::{Decoder, FrameDuration};
    use crate::level::goertzel_amplitude;

    fn tone(freq: f32, amp: f32, n: usize, offset: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = (i + offset) as f32 / SAMPLE_RATE as f32;
                amp * (std::f32::consts::TAU * freq * t).sin()
            })
            .collect()
    }

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
