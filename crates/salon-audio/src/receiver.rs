//! The receiving side: one jitter buffer and decoder per remote speaker, per-speaker volume
//! and mute, speaking levels, and the mix of everyone into one playback frame.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use crate::codec::{Decoder, FrameDuration, SAMPLE_RATE};
use crate::error::Result;
use crate::jitter_buffer::{AudioPacket, JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::level::{Level, LevelMeter, rms, to_dbfs};
use crate::mixer::Mixer;

/// Highest per-speaker volume (4× = +12 dB); more only amplifies noise.
pub const MAX_VOLUME: f32 = 4.0;

/// One remote speaker's state.
#[derive(Debug)]
struct RemoteSpeaker {
    jitter: JitterBuffer,
    decoder: Decoder,
    volume: f32,
    muted: bool,
    meter: LevelMeter,
    /// This period's output.
    frame: Vec<f32>,
    /// Decoded samples not yet output (less than a frame carried between periods).
    fifo: Vec<f32>,
    decoded: Vec<f32>,
    /// Output length of the previous render, to keep the jitter buffer's granularity.
    last_len: usize,
    /// Samples the jitter buffer asked to cut that have not been cut yet.
    owed: usize,
    /// Payloads dropped because they did not parse.
    malformed: u64,
}

impl RemoteSpeaker {
    fn new(frame: FrameDuration, jitter: JitterConfig) -> Result<Self> {
        let n = frame.samples();
        Ok(Self {
            jitter: JitterBuffer::new(jitter),
            decoder: Decoder::new(frame)?,
            volume: 1.0,
            muted: false,
            meter: LevelMeter::new(frame.millis()),
            frame: vec![0.0; n],
            fifo: Vec::with_capacity(4 * n),
            decoded: vec![0.0; n],
            last_len: n,
            owed: 0,
            malformed: 0,
        })
    }

    fn decode(&mut self, p: &AudioPacket) {
        if self
            .decoder
            .decode_payload(&p.payload, &mut self.decoded)
            .is_err()
        {
            self.conceal();
        }
        self.fifo.extend_from_slice(&self.decoded);
    }

    fn conceal(&mut self) {
        if self.decoder.conceal(&mut self.decoded).is_err() {
            self.decoded.fill(0.0);
        }
    }

    /// Produces the next `len` samples in `self.frame`, pulling playout decisions from the
    /// jitter buffer whenever the decoded FIFO runs short. Output can be shorter than a
    /// codec frame, so packets are needed (and time compression moves playout) with that
    /// finer granularity.
    fn render(&mut self, now: Duration, len: usize) {
        if len != self.last_len {
            self.last_len = len;
            let us = len as u64 * 1_000_000 / u64::from(SAMPLE_RATE);
            self.jitter.set_granularity(Duration::from_micros(us));
        }
        while self.fifo.len() < len {
            self.pull(now);
        }
        self.frame.clear();
        self.frame.extend_from_slice(&self.fifo[..len]);
        self.fifo.drain(..len);
    }

    /// Decodes one playout decision onto the end of the FIFO; a corrupt packet is concealed.
    fn pull(&mut self, now: Duration) {
        let n = self.frame.len();
        match self.jitter.pop(now) {
            Playout::Silence => self.fifo.extend(std::iter::repeat_n(0.0, n)),
            Playout::Normal(p) => self.decode(&p),
            Playout::Fec { next_payload, .. } => {
                if self
                    .decoder
                    .recover_from_next(&next_payload, &mut self.decoded)
                    .is_err()
                {
                    self.conceal();
                }
                self.fifo.extend_from_slice(&self.decoded);
            }
            Playout::Conceal => {
                self.conceal();
                self.fifo.extend_from_slice(&self.decoded);
            }
            Playout::Accelerate(a, b) => {
                // Two frames in one go: decode both (keeps decoder state continuous); the
                // surplus frame is cut out below, preferably in a pause.
                self.decode(&a);
                self.decode(&b);
                self.owed += n;
            }
            Playout::Shrink(p, by) => {
                self.decode(&p);
                self.owed += (by.as_micros() as usize * SAMPLE_RATE as usize / 1_000_000).min(n);
            }
        }
        self.pay_owed(n);
        // Levels per codec frame, so the VAD's hangover counts real frame periods.
        let tail = self.fifo.len().saturating_sub(n);
        self.meter.update(&self.fifo[tail..]);
    }
}

impl RemoteSpeaker {
    /// Removes owed samples (time compression asked for by the jitter buffer) where it is
    /// least audible: in a pause. Splicing inside speech is what listeners (and PESQ)
    /// notice, so it only happens there when the debt reaches [`FORCE_SPLICE_FRAMES`].
    fn pay_owed(&mut self, n: usize) {
        if self.owed == 0 {
            return;
        }
        let max = self
            .owed
            .min(self.fifo.len().saturating_sub(SPLICE_OVERLAP));
        // The splice rewrites the oldest `max + overlap` samples: that is what must be quiet.
        let region = &self.fifo[..(max + SPLICE_OVERLAP).min(self.fifo.len())];
        let quiet = to_dbfs(rms(region)) < QUIET_DBFS;
        if !quiet && self.owed < FORCE_SPLICE_FRAMES * n {
            return;
        }
        let before = self.fifo.len();
        splice_out(&mut self.fifo, max / 2, max, SPLICE_OVERLAP.min(max / 2));
        self.owed -= (before - self.fifo.len()).min(self.owed);
        if !quiet {
            // Forced in speech: forget the rest rather than splice again right away.
            self.owed = 0;
        }
    }
}

/// Debt (in frames) at which a splice happens even inside speech, bounding the delay.
const FORCE_SPLICE_FRAMES: usize = 4;

/// Below this a decoded frame counts as a pause, where splices go unheard.
const QUIET_DBFS: f32 = -40.0;

/// Cross-fade length for splices: 2.5 ms, shorter than a pitch period of most voices.
const SPLICE_OVERLAP: usize = 120;

/// Time compression by overlap-add (WSOLA-like): removes `lag` samples from the start of
/// `x`, with `lag` in `min_lag..=max_lag` chosen where `x[lag..]` best continues `x[..]`,
/// cross-fading over `overlap` samples so no click is heard.
fn splice_out(x: &mut Vec<f32>, min_lag: usize, max_lag: usize, overlap: usize) {
    let max_lag = max_lag.min(x.len().saturating_sub(overlap));
    if overlap == 0 || min_lag > max_lag {
        return;
    }
    let head = &x[..overlap];
    let head_energy: f32 = head.iter().map(|v| v * v).sum();
    let mut best = (f32::MIN, max_lag);
    if head_energy > 1e-9 {
        // Longest lag first so ties cut more delay.
        for lag in (min_lag..=max_lag).rev() {
            let cand = &x[lag..lag + overlap];
            let (mut dot, mut energy) = (0.0f32, 0.0f32);
            for (a, b) in head.iter().zip(cand) {
                dot += a * b;
                energy += b * b;
            }
            let score = dot / (head_energy * energy).sqrt().max(1e-9);
            if score > best.0 {
                best = (score, lag);
            }
        }
    }
    let lag = best.1;
    for i in 0..overlap {
        let w = (i as f32 + 0.5) / overlap as f32;
        x[lag + i] = x[i] * (1.0 - w) + x[lag + i] * w;
    }
    x.drain(..lag);
}

/// Receives every remote speaker's packets and mixes them into playback frames.
///
/// `K` identifies a speaker (a peer id from the network layer). Drive it with
/// [`Receiver::push`] as packets arrive and [`Receiver::mix_into`] once per frame period.
#[derive(Debug)]
pub struct Receiver<K> {
    frame: FrameDuration,
    jitter: JitterConfig,
    speakers: HashMap<K, RemoteSpeaker>,
    mixer: Mixer,
}

impl<K: Eq + Hash + Clone> Receiver<K> {
    /// A receiver for streams of `frame` duration with default jitter-buffer tuning.
    pub fn new(frame: FrameDuration) -> Self {
        Self::with_jitter_config(JitterConfig::new(frame))
    }

    /// A receiver with custom jitter-buffer tuning.
    pub fn with_jitter_config(jitter: JitterConfig) -> Self {
        Self {
            frame: jitter.frame,
            jitter,
            speakers: HashMap::new(),
            mixer: Mixer::new(jitter.frame.samples(), SAMPLE_RATE),
        }
    }

    /// Samples per output frame.
    pub fn frame_samples(&self) -> usize {
        self.frame.samples()
    }

    fn speaker(&mut self, from: &K) -> Result<&mut RemoteSpeaker> {
        if !self.speakers.contains_key(from) {
            let s = RemoteSpeaker::new(self.frame, self.jitter)?;
            self.speakers.insert(from.clone(), s);
        }
        // Just inserted if it was missing, so the lookup succeeds.
        self.speakers
            .get_mut(from)
            .ok_or(crate::AudioError::InvalidConfig("speaker table"))
    }

    /// Hands over a packet from `from` that arrived at `now` (any monotonic clock, the
    /// same one given to [`Self::mix_into`]). The first packet from a peer adds it.
    /// A payload that does not parse ([`crate::payload::parse`]) is dropped here, so the
    /// jitter buffer treats it as lost (and recovers it from the next packet). Copies of
    /// earlier frames the payload carries fill gaps in the jitter buffer.
    pub fn push(&mut self, from: K, packet: AudioPacket, now: Duration) -> Result<()> {
        let speaker = self.speaker(&from)?;
        let Some(parsed) = crate::payload::parse(&packet.payload) else {
            speaker.malformed += 1;
            return Ok(());
        };
        let copies = parsed.copy_count();
        speaker.jitter.set_hold(parsed.hold_frames);
        // Copies are rebuilt as plain payloads, only for frames still missing.
        let mut missing: [Option<(u32, Vec<u8>)>; crate::payload::MAX_FRAMES - 1] = [None, None];
        for (back, slot) in (1..=copies).zip(missing.iter_mut()) {
            let seq = packet.seq.wrapping_sub(back as u32);
            if let Some(copy) = parsed.copy(back).filter(|_| speaker.jitter.wants(seq)) {
                let mut payload = Vec::with_capacity(copy.len() + 1);
                payload.push(crate::payload::VERSION_PLAIN);
                payload.extend_from_slice(copy);
                *slot = Some((seq, payload));
            }
        }
        speaker.jitter.push(packet, now);
        for (seq, payload) in missing.into_iter().flatten() {
            speaker.jitter.push_copy(AudioPacket { seq, payload }, now);
        }
        Ok(())
    }

    /// Renders the next `out.len()` samples for every speaker and writes the limited mix to
    /// `out`. Any length works; chunks shorter than a frame give finer playout timing.
    pub fn mix_into(&mut self, now: Duration, out: &mut [f32]) {
        self.mixer.begin(out.len());
        for s in self.speakers.values_mut() {
            s.render(now, out.len());
            if !s.muted {
                self.mixer.add(&s.frame, s.volume);
            }
        }
        self.mixer.finish(out);
    }

    /// Sets a speaker's playback volume (0.0 ..= [`MAX_VOLUME`], 1.0 = unchanged). Adds the
    /// speaker if unknown so the setting holds when their audio starts.
    pub fn set_volume(&mut self, who: &K, volume: f32) -> Result<()> {
        let v = if volume.is_finite() {
            volume.clamp(0.0, MAX_VOLUME)
        } else {
            1.0
        };
        self.speaker(who)?.volume = v;
        Ok(())
    }

    /// Mutes or unmutes a speaker locally (their stream is still decoded, so levels and
    /// unmuting stay seamless).
    pub fn set_muted(&mut self, who: &K, muted: bool) -> Result<()> {
        self.speaker(who)?.muted = muted;
        Ok(())
    }

    /// Forgets a speaker (left the stage or the room).
    pub fn remove(&mut self, who: &K) {
        self.speakers.remove(who);
    }

    /// Speakers currently known.
    pub fn speakers(&self) -> impl Iterator<Item = &K> {
        self.speakers.keys()
    }

    /// Latest level and speaking flag of every speaker (measured before volume and mute).
    pub fn levels(&self) -> Vec<(K, Level)> {
        self.speakers
            .iter()
            .map(|(k, s)| (k.clone(), s.meter.level()))
            .collect()
    }

    /// Jitter-buffer statistics for one speaker.
    pub fn stats(&self, who: &K) -> Option<JitterStats> {
        self.speakers.get(who).map(|s| JitterStats {
            malformed: s.malformed,
            ..s.jitter.stats()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_removes_a_pitch_multiple_without_a_discontinuity() {
        // 200 Hz: period 240 samples. Removing 400..=960 samples should pick 960 (4
        // periods) and leave a seamless sine.
        let mut x: Vec<f32> = (0..2880)
            .map(|i| (std::f32::consts::TAU * 200.0 * i as f32 / 48_000.0).sin())
            .collect();
        splice_out(&mut x, 400, 960, 120);
        assert_eq!(x.len(), 2880 - 960);
        let max_step = x
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max);
        // A clean 200 Hz sine never moves more than 2π·200/48000 ≈ 0.026 per sample.
        assert!(max_step < 0.03, "discontinuity of {max_step}");
    }

    /// Streams `frames` of a 500 Hz tone from a sender expecting 20 % loss (so payloads
    /// carry copies of the two frames before) into a receiver, one frame period apart.
    /// `damage` may corrupt a packet or return `false` to lose it. Returns the stats.
    fn copies_stream(
        frames: usize,
        damage: impl Fn(usize, &mut AudioPacket) -> bool,
    ) -> JitterStats {
        use crate::codec::CodecConfig;
        use crate::codec::tests::tone;
        use crate::sender::Sender;
        let cfg = CodecConfig {
            expected_loss_pct: 20,
            ..CodecConfig::default()
        };
        let mut tx = Sender::new(cfg).unwrap();
        tx.set_noise_suppression(false);
        let mut rx: Receiver<u8> = Receiver::new(FrameDuration::Ms20);
        let mut out = vec![0.0; 960];
        for k in 0..frames {
            let mut p = tx.process(&tone(500.0, 0.4, 960, k * 960)).unwrap();
            let now = Duration::from_millis(k as u64 * 20);
            if damage(k, &mut p) {
                rx.push(1, p, now).unwrap();
            }
            rx.mix_into(now + Duration::from_millis(10), &mut out);
        }
        rx.stats(&1).unwrap()
    }

    #[test]
    fn malformed_payloads_are_dropped_and_their_frames_rebuilt_from_later_copies() {
        let stats = copies_stream(60, |k, p| {
            match k {
                30 => p.payload.truncate(50),
                // Two in a row: only the copy two frames back can restore the first.
                44 => p.payload[0] = 0xee,
                45 => p.payload[2] = 0,
                _ => {}
            }
            true
        });
        assert_eq!(stats.malformed, 3, "{stats:?}");
        assert_eq!(stats.fec_recovered, 3, "{stats:?}");
        // Every frame played from real or copied data (the rest is still buffered). The
        // concealments are expansions that grow the delay by the frames copies reach
        // (one at the first loss, one more once copies two deep are seen); none replaces
        // a frame.
        assert_eq!(
            stats.played + stats.fec_recovered + stats.level_frames as u64,
            60,
            "{stats:?}"
        );
        assert!(stats.concealed <= 2, "{stats:?}");
    }

    #[test]
    fn a_streams_lost_first_packet_is_played_from_the_copy_in_the_next() {
        // Packets 0 and 2 are lost: only packet 1 carries frame 0.
        let stats = copies_stream(20, |k, _| k != 0 && k != 2);
        assert_eq!(
            stats.fec_recovered, 2,
            "frames 0 and 2 from copies: {stats:?}"
        );
        assert_eq!(
            stats.played + stats.fec_recovered + stats.level_frames as u64,
            20,
            "{stats:?}"
        );
    }

    #[test]
    fn silent_speaker_is_not_speaking_and_unknown_volume_is_clamped() {
        let mut rx: Receiver<u8> = Receiver::new(FrameDuration::Ms20);
        rx.set_volume(&1, f32::NAN).unwrap();
        rx.set_volume(&2, 100.0).unwrap();
        let mut out = vec![0.0; 960];
        for i in 0..10 {
            rx.mix_into(Duration::from_millis(i * 20), &mut out);
        }
        assert!(out.iter().all(|s| *s == 0.0));
        assert!(rx.levels().iter().all(|(_, l)| !l.speaking));
        assert_eq!(rx.speakers.get(&1).map(|s| s.volume), Some(1.0));
        assert_eq!(rx.speakers.get(&2).map(|s| s.volume), Some(MAX_VOLUME));
    }
}
