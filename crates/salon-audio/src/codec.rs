//! Opus encoder and decoder with Salon's privacy rules built in: constant bitrate, no DTX,
//! and every encoded frame exactly [`Encoder::frame_bytes`] long, so packet sizes say
//! nothing about whether someone is talking.

use crate::error::{AudioError, Result};

/// Salon's only sample rate: everything inside the pipeline is 48 kHz mono.
pub const SAMPLE_RATE: u32 = 48_000;

/// Opus frame duration. Shorter frames cut latency at the cost of more packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameDuration {
    /// 10 ms frames (480 samples): lower latency, twice the packet rate.
    Ms10,
    /// 20 ms frames (960 samples): the default.
    #[default]
    Ms20,
}

impl FrameDuration {
    /// Samples per frame at [`SAMPLE_RATE`].
    pub const fn samples(self) -> usize {
        match self {
            Self::Ms10 => 480,
            Self::Ms20 => 960,
        }
    }

    /// Frame length in microseconds.
    pub const fn micros(self) -> u64 {
        match self {
            Self::Ms10 => 10_000,
            Self::Ms20 => 20_000,
        }
    }

    /// Frame length in milliseconds.
    pub const fn millis(self) -> u32 {
        match self {
            Self::Ms10 => 10,
            Self::Ms20 => 20,
        }
    }
}

/// Largest payload the protocol's audio datagram carries (`salon_proto`'s
/// `MAX_AUDIO_FRAME`). The datagram is padded to its fixed size anyway, so a payload that
/// fills it costs nothing on the wire.
pub const MAX_PAYLOAD_BYTES: usize = 153;

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecConfig {
    /// Frame duration.
    pub frame: FrameDuration,
    /// Constant bitrate in bits per second (6 000 ..= 128 000) of the whole payload.
    pub bitrate: u32,
    /// Opus in-band forward error correction (the next packet carries a coarse copy).
    pub fec: bool,
    /// Expected packet loss in percent, a hint that sizes the FEC share of the budget and,
    /// from [`crate::payload::copies_thresholds`], switches to payloads of three copies.
    pub expected_loss_pct: u8,
    /// Encoder complexity 0..=10.
    pub complexity: u8,
    /// Let [`crate::Sender`] switch to payload format 2 (each payload carries this frame
    /// and bit-exact copies of the two before it, see [`crate::payload`]) while the
    /// expected loss is high. The bare [`Encoder`] always produces plain Opus.
    pub copies: bool,
}

impl Default for CodecConfig {
    /// 20 ms frames filling [`MAX_PAYLOAD_BYTES`] (61.2 kb/s) with in-band FEC. Measured
    /// with espeak-ng speech (`tools/pesq_bench.py`, bare codec row): PESQ-WB 4.26 / 3.82 /
    /// 3.55 / 2.49 at 0 / 5 / 10 / 20 % loss, against 4.00 / 3.56 / 3.25 / 2.31 at the
    /// 48 kb/s (`BITRATE=48000`) that left 33 bytes of every datagram as padding.
    fn default() -> Self {
        Self::for_frame(FrameDuration::Ms20)
    }
}

impl CodecConfig {
    /// Salon's settings for `frame`: a bitrate that fills [`MAX_PAYLOAD_BYTES`] (61.2 kb/s
    /// at 20 ms, 122.4 kb/s at 10 ms), in-band FEC sized for a 5 % loss until receivers
    /// report, complexity 9, and copies at high loss.
    pub const fn for_frame(frame: FrameDuration) -> Self {
        Self {
            frame,
            bitrate: (MAX_PAYLOAD_BYTES as u64 * 8 * 1_000_000 / frame.micros()) as u32,
            fec: true,
            // Nothing known until receivers report (Opus still gets a hint of
            // `payload::MIN_LOSS_HINT_PCT`, so it always carries some FEC).
            expected_loss_pct: 0,
            complexity: 9,
            copies: true,
        }
    }

    /// Bytes every encoded frame occupies at this bitrate and frame duration.
    pub const fn frame_bytes(&self) -> usize {
        (self.bitrate as usize * self.frame.micros() as usize) / 8 / 1_000_000
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(6_000..=128_000).contains(&self.bitrate) {
            return Err(AudioError::InvalidConfig(
                "bitrate must be 6000..=128000 b/s",
            ));
        }
        if self.expected_loss_pct > 100 {
            return Err(AudioError::InvalidConfig("expected loss must be 0..=100 %"));
        }
        if self.complexity > 10 {
            return Err(AudioError::InvalidConfig("complexity must be 0..=10"));
        }
        Ok(())
    }
}

/// Opus encoder producing fixed-size frames.
pub struct Encoder {
    inner: opus::Encoder,
    config: CodecConfig,
    frame_bytes: usize,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("config", &self.config)
            .finish()
    }
}

impl Encoder {
    /// Builds a VOIP-mode, CBR, DTX-off encoder.
    pub fn new(config: CodecConfig) -> Result<Self> {
        config.validate()?;
        Self::sized(config, config.bitrate, config.frame_bytes(), config.fec)
    }

    /// An encoder at `bitrate` whose frames are padded to exactly `frame_bytes` (one part
    /// of a [`crate::payload`]), with `config`'s other settings and `fec` as given.
    pub(crate) fn sized(
        config: CodecConfig,
        bitrate: u32,
        frame_bytes: usize,
        fec: bool,
    ) -> Result<Self> {
        Ok(Self {
            inner: opus_encoder(&config, bitrate, fec)?,
            config,
            frame_bytes,
            // Room for the largest frame `resize` may ask for, so switching never allocates.
            scratch: vec![0; frame_bytes.max(MAX_PAYLOAD_BYTES)],
        })
    }

    /// The settings this encoder was built with.
    pub fn config(&self) -> &CodecConfig {
        &self.config
    }

    /// Changes the bitrate, frame size and in-band FEC in place. The Opus state carries
    /// over, so the decoder at the other end hears no seam.
    pub(crate) fn resize(&mut self, bitrate: u32, frame_bytes: usize, fec: bool) -> Result<()> {
        self.inner
            .set_bitrate(opus::Bitrate::Bits(bitrate as i32))?;
        self.inner.set_max_bandwidth(max_bandwidth(bitrate))?;
        self.inner.set_inband_fec(fec)?;
        if self.scratch.len() < frame_bytes {
            self.scratch.resize(frame_bytes, 0);
        }
        self.frame_bytes = frame_bytes;
        Ok(())
    }

    /// Bytes in every encoded frame, muted or not.
    pub fn frame_bytes(&self) -> usize {
        self.frame_bytes
    }

    /// Samples one input frame must hold.
    pub fn frame_samples(&self) -> usize {
        self.config.frame.samples()
    }

    /// Updates the expected-loss hint (e.g. from receiver reports); clamped to 0..=100.
    pub fn set_expected_loss(&mut self, pct: u8) -> Result<()> {
        let pct = pct.min(100);
        self.inner.set_packet_loss_perc(i32::from(pct))?;
        self.config.expected_loss_pct = pct;
        Ok(())
    }

    /// Encodes one frame of 48 kHz mono samples (nominally -1.0..=1.0) into `out`, which must
    /// be exactly [`Self::frame_bytes`] long. The whole of `out` is a valid Opus packet.
    pub fn encode_into(&mut self, pcm: &[f32], out: &mut [u8]) -> Result<()> {
        expect_len(self.frame_samples(), pcm.len())?;
        let want = self.frame_bytes();
        expect_len(want, out.len())?;
        let n = self.inner.encode_float(pcm, &mut self.scratch[..want])?;
        pad_to(&mut self.scratch, n, want)?;
        out.copy_from_slice(&self.scratch[..want]);
        Ok(())
    }

    /// Encodes one frame into a fresh `Vec` of exactly [`Self::frame_bytes`] bytes.
    pub fn encode(&mut self, pcm: &[f32]) -> Result<Vec<u8>> {
        let mut out = vec![0; self.frame_bytes()];
        self.encode_into(pcm, &mut out)?;
        Ok(out)
    }
}

/// `Ok` if a buffer of `got` samples (or bytes) has the `expected` length of one frame.
pub(crate) fn expect_len(expected: usize, got: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(AudioError::FrameLength { expected, got })
    }
}

/// A libopus encoder with Salon's settings: VOIP, CBR, DTX off, voice signal, the loss hint
/// and complexity of `config`, at `bitrate` with in-band FEC as given.
pub(crate) fn opus_encoder(config: &CodecConfig, bitrate: u32, fec: bool) -> Result<opus::Encoder> {
    let mut e = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
    e.set_bitrate(opus::Bitrate::Bits(bitrate as i32))?;
    // CBR + no DTX: the packet size and rate must not reveal speech activity.
    e.set_vbr(false)?;
    e.set_dtx(false)?;
    e.set_inband_fec(fec)?;
    e.set_packet_loss_perc(i32::from(config.expected_loss_pct))?;
    e.set_complexity(i32::from(config.complexity))?;
    e.set_signal(opus::Signal::Voice)?;
    e.set_max_bandwidth(max_bandwidth(bitrate))?;
    Ok(e)
}

/// Below this bitrate the encoder is held to wideband (8 kHz of audio).
const WIDEBAND_BELOW: u32 = 32_000;

/// The widest audio band worth coding at `bitrate`. At low rates Opus would otherwise go
/// super-wideband (hybrid) and spread thin bits over 8–12 kHz; for speech the bits buy
/// more below 8 kHz. Measured (espeak-ng speech, 20 kb/s CBR without loss:
/// `BITRATE=20000 NOFEC=1 LOSSES=0 tools/pesq_bench.py`, bare row): PESQ-WB 3.56 held to
/// wideband, 3.13 with this hold taken out.
fn max_bandwidth(bitrate: u32) -> opus::Bandwidth {
    if bitrate < WIDEBAND_BELOW {
        opus::Bandwidth::Wideband
    } else {
        opus::Bandwidth::Fullband
    }
}

/// Grows an Opus packet of `len` bytes in `buf` to `target` bytes with Opus's own padding
/// (RFC 6716 §3.2.5), so the result still decodes to the same audio.
pub(crate) fn pad_to(buf: &mut [u8], len: usize, target: usize) -> Result<()> {
    if len > target || target > buf.len() {
        return Err(AudioError::FrameTooLarge {
            got: len,
            max: target,
        });
    }
    if len < target {
        opus::packet::pad(&mut buf[..target], len)?;
    }
    Ok(())
}

/// Opus decoder with packet-loss concealment and FEC recovery.
pub struct Decoder {
    inner: opus::Decoder,
    frame: FrameDuration,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("frame", &self.frame)
            .finish()
    }
}

impl Decoder {
    /// A decoder for frames of the given duration.
    pub fn new(frame: FrameDuration) -> Result<Self> {
        Ok(Self {
            inner: opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)?,
            frame,
        })
    }

    /// Samples per decoded frame.
    pub fn frame_samples(&self) -> usize {
        self.frame.samples()
    }

    fn check(&self, out: &[f32]) -> Result<()> {
        expect_len(self.frame.samples(), out.len())
    }

    /// Decodes one received frame into `out` (one frame long). A corrupt packet is an error;
    /// the caller should conceal instead.
    pub fn decode(&mut self, packet: &[u8], out: &mut [f32]) -> Result<()> {
        self.check(out)?;
        self.inner.decode_float(packet, out, false)?;
        Ok(())
    }

    /// Recovers the frame *before* `next_packet` from the FEC data `next_packet` carries
    /// (Opus falls back to concealment when it carries none).
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut [f32]) -> Result<()> {
        self.check(out)?;
        self.inner.decode_float(next_packet, out, true)?;
        Ok(())
    }

    /// Decodes one Salon payload ([`crate::payload`]) into `out`. A malformed payload is an
    /// error; the caller should conceal instead.
    pub fn decode_payload(&mut self, payload: &[u8], out: &mut [f32]) -> Result<()> {
        let parsed = crate::payload::parse(payload).ok_or(AudioError::MalformedPayload)?;
        self.decode(parsed.primary, out)
    }

    /// Recovers the frame *before* `next_payload`: from the bit-exact copy it carries, else
    /// from Opus in-band FEC in its primary frame (which falls back to concealment).
    pub fn recover_from_next(&mut self, next_payload: &[u8], out: &mut [f32]) -> Result<()> {
        let parsed = crate::payload::parse(next_payload).ok_or(AudioError::MalformedPayload)?;
        match parsed.copy(1) {
            Some(copy) => self.decode(copy, out),
            None => self.decode_fec(parsed.primary, out),
        }
    }

    /// Synthesises one frame for a lost packet (Opus packet-loss concealment).
    pub fn conceal(&mut self, out: &mut [f32]) -> Result<()> {
        self.check(out)?;
        self.inner.decode_float(&[], out, false)?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` samples of a sine at `freq` Hz and peak `amp`, starting at sample `offset`.
    pub(crate) fn tone(freq: f32, amp: f32, n: usize, offset: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = (i + offset) as f32 / SAMPLE_RATE as f32;
                amp * (2.0 * std::f32::consts::PI * freq * t).sin()
            })
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn every_frame_has_the_fixed_size_for_tone_silence_noise_and_clipping() {
        for frame in [FrameDuration::Ms10, FrameDuration::Ms20] {
            for bitrate in [16_000, 32_000, 48_000] {
                let cfg = CodecConfig {
                    frame,
                    bitrate,
                    ..CodecConfig::default()
                };
                let mut enc = Encoder::new(cfg).unwrap();
                let n = enc.frame_samples();
                let mut x: u32 = 1;
                for i in 0..100 {
                    let pcm: Vec<f32> = match i % 4 {
                        0 => vec![0.0; n],
                        1 => tone(440.0, 0.5, n, i * n),
                        2 => (0..n)
                            .map(|_| {
                                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                                (x >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
                            })
                            .collect(),
                        _ => vec![4.0; n],
                    };
                    let out = enc.encode(&pcm).unwrap();
                    assert_eq!(out.len(), cfg.frame_bytes(), "{frame:?} {bitrate}");
                }
            }
        }
    }

    #[test]
    fn padding_a_short_packet_keeps_it_decodable_to_the_same_audio() {
        // A VBR encoder at a low rate gives short packets; pad them to the CBR size.
        let mut raw =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip).unwrap();
        raw.set_bitrate(opus::Bitrate::Bits(12_000)).unwrap();
        let pcm = tone(300.0, 0.3, 960, 0);
        let mut buf = vec![0u8; 120];
        let n = raw.encode_float(&pcm, &mut buf).unwrap();
        assert!(n < 120, "need a short packet to pad, got {n}");
        let short = buf[..n].to_vec();
        pad_to(&mut buf, n, 120).unwrap();
        let mut a = vec![0.0; 960];
        let mut b = vec![0.0; 960];
        Decoder::new(FrameDuration::Ms20)
            .unwrap()
            .decode(&short, &mut a)
            .unwrap();
        Decoder::new(FrameDuration::Ms20)
            .unwrap()
            .decode(&buf, &mut b)
            .unwrap();
        assert_eq!(a, b);
        assert!(pad_to(&mut buf, 121, 120).is_err());
    }

    #[test]
    fn wrong_frame_length_is_an_error_not_a_panic() {
        let mut enc = Encoder::new(CodecConfig::default()).unwrap();
        assert!(matches!(
            enc.encode(&[0.0; 100]),
            Err(AudioError::FrameLength {
                expected: 960,
                got: 100
            })
        ));
        let mut dec = Decoder::new(FrameDuration::Ms20).unwrap();
        assert!(dec.decode(&[0xff; 3], &mut [0.0; 10]).is_err());
        // Garbage of the right shape must not panic either.
        let _ = dec.decode(&[0xff; 120], &mut [0.0; 960]);
    }

    #[test]
    fn fec_in_the_next_packet_recovers_a_lost_frame() {
        use crate::level::goertzel_amplitude;
        let cfg = CodecConfig {
            expected_loss_pct: 20,
            ..CodecConfig::default()
        };
        let mut enc = Encoder::new(cfg).unwrap();
        // 500 Hz up to frame 10, then 1500 Hz: concealment can only extrapolate the old
        // tone, so hearing the new one proves the frame came from FEC.
        let frames: Vec<Vec<u8>> = (0..20)
            .map(|i| {
                let f = if i < 11 { 500.0 } else { 1500.0 };
                enc.encode(&tone(f, 0.4, 960, i * 960)).unwrap()
            })
            .collect();
        let mut with_fec = Decoder::new(cfg.frame).unwrap();
        let mut plc_only = Decoder::new(cfg.frame).unwrap();
        let mut out = vec![0.0; 960];
        for f in &frames[..12] {
            with_fec.decode(f, &mut out).unwrap();
            plc_only.decode(f, &mut out).unwrap();
        }
        // Frame 12 is lost; 13 arrives.
        let mut fec_out = vec![0.0; 960];
        let mut plc_out = vec![0.0; 960];
        with_fec.decode_fec(&frames[13], &mut fec_out).unwrap();
        plc_only.conceal(&mut plc_out).unwrap();
        let fec_new = goertzel_amplitude(&fec_out, 1500.0, SAMPLE_RATE);
        let plc_new = goertzel_amplitude(&plc_out, 1500.0, SAMPLE_RATE);
        assert!(
            fec_new > 0.2,
            "FEC copy should carry the new tone: {fec_new}"
        );
        assert!(rms(&fec_out) > 0.5 * 0.4 / 2f32.sqrt());
        // Sanity: the decoders continue normally afterwards.
        with_fec.decode(&frames[13], &mut out).unwrap();
        let _ = plc_new;
    }
}
