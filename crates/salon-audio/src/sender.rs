//! The sending side: noise suppression, level metering, mute and push-to-talk, and Opus
//! encoding into fixed-size packets at a constant rate.

use crate::codec::CodecConfig;
use crate::denoise::NoiseSuppressor;
use crate::error::Result;
use crate::jitter_buffer::AudioPacket;
use crate::level::{Level, LevelMeter};
use crate::payload::PayloadEncoder;

/// How the microphone is gated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TalkMode {
    /// The microphone is live unless muted.
    #[default]
    Open,
    /// The microphone is live only while the talk key is held (and not muted).
    PushToTalk,
}

/// Turns 48 kHz mono frames into packets. Every call yields one packet of exactly
/// [`Sender::frame_bytes`] bytes, muted or not, so the network sees a constant stream.
#[derive(Debug)]
pub struct Sender {
    encoder: PayloadEncoder,
    seq: u32,
    muted: bool,
    mode: TalkMode,
    talk_key: bool,
    noise: Option<NoiseSuppressor>,
    #[cfg(feature = "aec")]
    echo: Option<crate::echo::EchoCanceller>,
    meter: LevelMeter,
    work: Vec<f32>,
    /// What a muted sender encodes, and what is added under the voice (see [`dither`]).
    dither: Vec<f32>,
}

impl Sender {
    /// A sender with the given codec settings, noise suppression on.
    pub fn new(config: CodecConfig) -> Result<Self> {
        let n = config.frame.samples();
        Ok(Self {
            encoder: PayloadEncoder::new(config)?,
            seq: 0,
            muted: false,
            mode: TalkMode::Open,
            talk_key: false,
            noise: Some(NoiseSuppressor::new()),
            #[cfg(feature = "aec")]
            echo: None,
            meter: LevelMeter::new(config.frame.millis()),
            work: vec![0.0; n],
            dither: dither(n),
        })
    }

    /// Bytes in every packet payload.
    pub fn frame_bytes(&self) -> usize {
        self.encoder.frame_bytes()
    }

    /// Samples per input frame.
    pub fn frame_samples(&self) -> usize {
        self.encoder.frame_samples()
    }

    /// The codec settings.
    pub fn config(&self) -> &CodecConfig {
        self.encoder.config()
    }

    /// Mutes or unmutes the microphone. Packets keep flowing either way.
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// Whether the user muted themselves.
    pub fn is_muted(&self) -> bool {
        self.muted
    }

    /// Switches between open microphone and push-to-talk.
    pub fn set_talk_mode(&mut self, mode: TalkMode) {
        self.mode = mode;
    }

    /// Push-to-talk key state.
    pub fn set_talk_key(&mut self, pressed: bool) {
        self.talk_key = pressed;
    }

    /// Switches noise suppression on or off.
    pub fn set_noise_suppression(&mut self, on: bool) {
        match (on, self.noise.is_some()) {
            (true, false) => self.noise = Some(NoiseSuppressor::new()),
            (false, true) => self.noise = None,
            _ => {}
        }
    }

    /// Switches echo cancellation on or off. Without the `aec` feature, switching it on
    /// is an error.
    pub fn set_echo_cancellation(&mut self, on: bool) -> Result<()> {
        #[cfg(feature = "aec")]
        {
            match (on, self.echo.is_some()) {
                (true, false) => self.echo = Some(crate::echo::EchoCanceller::new()?),
                (false, true) => self.echo = None,
                _ => {}
            }
            Ok(())
        }
        #[cfg(not(feature = "aec"))]
        {
            if on {
                Err(crate::AudioError::InvalidConfig(
                    "echo cancellation needs the `aec` feature",
                ))
            } else {
                Ok(())
            }
        }
    }

    /// Whether echo cancellation is on.
    pub fn echo_cancellation(&self) -> bool {
        #[cfg(feature = "aec")]
        {
            self.echo.is_some()
        }
        #[cfg(not(feature = "aec"))]
        {
            false
        }
    }

    /// Feeds what the speakers are about to play, so its echo can be removed from the
    /// microphone. A no-op while echo cancellation is off.
    pub fn far_end(&mut self, played: &[f32]) {
        #[cfg(feature = "aec")]
        if let Some(aec) = &mut self.echo {
            aec.far_end(played);
        }
        #[cfg(not(feature = "aec"))]
        let _ = played;
    }

    /// Whether noise suppression is on.
    pub fn noise_suppression(&self) -> bool {
        self.noise.is_some()
    }

    /// Updates the FEC loss hint from measured loss.
    pub fn set_expected_loss(&mut self, pct: u8) -> Result<()> {
        self.encoder.set_expected_loss(pct)
    }

    /// Whether the microphone currently reaches the network.
    pub fn transmitting(&self) -> bool {
        !self.muted && (self.mode == TalkMode::Open || self.talk_key)
    }

    /// Level of the (denoised) microphone, whether or not it is transmitting, so the UI
    /// can warn "you are muted" when someone talks into a muted mic.
    pub fn level(&self) -> Level {
        self.meter.level()
    }

    /// Sequence number the next packet will carry.
    pub fn next_seq(&self) -> u32 {
        self.seq
    }

    /// Processes one frame of microphone samples into a packet.
    pub fn process(&mut self, pcm: &[f32]) -> Result<AudioPacket> {
        let mut payload = vec![0; self.frame_bytes()];
        let seq = self.process_into(pcm, &mut payload)?;
        Ok(AudioPacket { seq, payload })
    }

    /// Like [`Self::process`] into a caller-owned buffer of [`Self::frame_bytes`]; returns
    /// the packet's sequence number.
    pub fn process_into(&mut self, pcm: &[f32], payload: &mut [u8]) -> Result<u32> {
        crate::codec::expect_len(self.frame_samples(), pcm.len())?;
        self.work.copy_from_slice(pcm);
        // Echo first: the canceller models the linear speaker-to-mic path, which the
        // (non-linear) noise suppressor would distort.
        #[cfg(feature = "aec")]
        if let Some(aec) = &mut self.echo {
            aec.near_end(&mut self.work);
        }
        if let Some(ns) = &mut self.noise {
            ns.process(&mut self.work);
        }
        self.meter.update(&self.work);
        // Noise at the 16-bit step under the voice too: a silent input (a listener's
        // engine runs on digital silence, a mic can be dead quiet) must not reach Opus's
        // fast path either.
        for (w, d) in self.work.iter_mut().zip(&self.dither) {
            *w += d;
        }
        let input = if self.transmitting() {
            &self.work
        } else {
            &self.dither
        };
        self.encoder.encode_into(input, payload)?;
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        Ok(seq)
    }
}

/// A frame of noise at the 16-bit step (about -96 dBFS): what a muted sender encodes
/// instead of digital silence, which Opus encodes on a fast path. So a muted frame costs
/// the encoder about what a voiced one does, and the work does not show (SECURITY.md).
fn dither(n: usize) -> Vec<f32> {
    let mut x: u32 = 0x9E37_79B9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 - 0.5) * 2.0 / 32768.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Decoder, FrameDuration};
    use crate::level::rms;

    fn tone(n: usize, offset: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.4 * (2.0 * std::f32::consts::PI * 440.0 * (i + offset) as f32 / 48e3).sin())
            .collect()
    }

    fn decoded_rms(cfg: CodecConfig, mute: impl Fn(&mut Sender, usize)) -> (Vec<usize>, f32) {
        let mut s = Sender::new(cfg).unwrap();
        s.set_noise_suppression(false);
        let mut d = Decoder::new(cfg.frame).unwrap();
        let n = cfg.frame.samples();
        let mut out = vec![0.0; n];
        let mut sizes = Vec::new();
        let mut tail = 0.0;
        for i in 0..50 {
            mute(&mut s, i);
            let p = s.process(&tone(n, i * n)).unwrap();
            assert_eq!(p.seq, i as u32);
            sizes.push(p.payload.len());
            d.decode_payload(&p.payload, &mut out).unwrap();
            if i >= 40 {
                tail += rms(&out) / 10.0;
            }
        }
        (sizes, tail)
    }

    #[test]
    fn muted_sender_emits_same_size_packets_that_decode_to_silence() {
        for frame in [FrameDuration::Ms10, FrameDuration::Ms20] {
            let cfg = CodecConfig {
                frame,
                ..CodecConfig::default()
            };
            let (live_sizes, live) = decoded_rms(cfg, |_, _| {});
            let (muted_sizes, muted) = decoded_rms(cfg, |s, i| s.set_muted(i >= 20));
            assert!(
                live_sizes
                    .iter()
                    .chain(&muted_sizes)
                    .all(|&b| b == cfg.frame_bytes())
            );
            assert!(live > 0.2, "live tone {live}");
            assert!(muted < 0.001, "muted output {muted}");
        }
    }

    /// Opus encodes digital silence on a fast path, so a muted sender or a silent input
    /// would cost less than a voice and show in a busy machine's send timing. What they
    /// encode instead is inaudible (under -80 dBFS) but not silence.
    /// (`cargo bench -p salon-audio --bench encode_cost` prints the costs.)
    #[test]
    fn muted_and_silent_frames_reach_the_encoder_as_inaudible_noise_not_silence() {
        let cfg = CodecConfig::default();
        let n = cfg.frame.samples();
        for muted in [true, false] {
            let mut s = Sender::new(cfg).unwrap();
            s.set_noise_suppression(false);
            s.set_muted(muted);
            let mut d = Decoder::new(cfg.frame).unwrap();
            let mut out = vec![0.0; n];
            let mut tail = 0.0;
            for i in 0..50 {
                let p = s.process(&vec![0.0; n]).unwrap();
                d.decode_payload(&p.payload, &mut out).unwrap();
                if i >= 40 {
                    tail += rms(&out) / 10.0;
                }
            }
            // Between -100 dBFS (digital silence decodes to about 2e-6) and -80 dBFS.
            assert!(tail > 1e-5 && tail < 1e-4, "muted {muted}: rms {tail}");
        }
    }

    #[test]
    fn push_to_talk_transmits_only_while_key_held() {
        let cfg = CodecConfig::default();
        let (_, released) = decoded_rms(cfg, |s, _| s.set_talk_mode(TalkMode::PushToTalk));
        let (_, held) = decoded_rms(cfg, |s, _| {
            s.set_talk_mode(TalkMode::PushToTalk);
            s.set_talk_key(true);
        });
        assert!(released < 0.001);
        assert!(held > 0.2);
    }
}

#[cfg(all(test, feature = "aec"))]
mod aec_tests {
    use super::*;
    use crate::codec::Decoder;
    use crate::level::rms;

    #[test]
    fn echo_of_what_is_played_is_removed_from_what_is_sent() {
        let cfg = CodecConfig::default();
        let run = |aec: bool| {
            let mut s = Sender::new(cfg).unwrap();
            s.set_noise_suppression(false);
            s.set_echo_cancellation(aec).unwrap();
            let mut d = Decoder::new(cfg.frame).unwrap();
            let mut out = vec![0.0; 960];
            let mut x: u32 = 3;
            let mut prev = vec![0.0f32; 960];
            let mut energy = 0.0;
            for i in 0..300 {
                // Far end: noisy speech-like signal; the mic hears it one frame later.
                let far: Vec<f32> = (0..960)
                    .map(|j| {
                        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        let env = 0.5 + 0.5 * ((i * 960 + j) as f32 / 9_000.0).sin();
                        0.3 * env * ((x >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0)
                    })
                    .collect();
                s.far_end(&far);
                let mic: Vec<f32> = prev.iter().map(|v| 0.5 * v).collect();
                let p = s.process(&mic).unwrap();
                d.decode_payload(&p.payload, &mut out).unwrap();
                if i >= 200 {
                    energy += rms(&out).powi(2);
                }
                prev = far;
            }
            energy
        };
        let without = run(false);
        let with = run(true);
        let db = 10.0 * (without / with.max(1e-12)).log10();
        assert!(db > 10.0, "echo only {db:.1} dB lower");
        assert!(
            Sender::new(cfg)
                .unwrap()
                .set_echo_cancellation(true)
                .is_ok()
        );
    }
}
