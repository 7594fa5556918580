//! Signal levels for the UI and for tests: RMS/peak meters, a voice-activity detector with
//! hangover, and a Goertzel tone detector.

/// Level of silence, in dBFS, reported for an all-zero block.
pub const SILENCE_DBFS: f32 = -100.0;

/// Root mean square of a block (0.0 for an empty block).
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

/// Largest absolute sample.
pub fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0.0, |m, s| m.max(s.abs()))
}

/// Converts a linear amplitude to dBFS, floored at [`SILENCE_DBFS`].
pub fn to_dbfs(amplitude: f32) -> f32 {
    if amplitude <= 1e-5 {
        SILENCE_DBFS
    } else {
        (20.0 * amplitude.log10()).max(SILENCE_DBFS)
    }
}

/// Amplitude of the `freq` component of `samples` (a sine of amplitude A gives ≈ A),
/// by the Goertzel algorithm.
pub fn goertzel_amplitude(samples: &[f32], freq: f32, sample_rate: u32) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let n = samples.len() as f32;
    let w = 2.0 * std::f32::consts::PI * freq / sample_rate as f32;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / n
}

/// A level reading for one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// RMS level in dBFS.
    pub rms_dbfs: f32,
    /// Peak level in dBFS.
    pub peak_dbfs: f32,
    /// Whether the voice-activity detector says someone is speaking.
    pub speaking: bool,
}

impl Default for Level {
    fn default() -> Self {
        Self {
            rms_dbfs: SILENCE_DBFS,
            peak_dbfs: SILENCE_DBFS,
            speaking: false,
        }
    }
}

/// Energy-based voice-activity detector with an adaptive noise floor and hangover, so the
/// speaking indicator neither flickers between words nor lights up on steady background
/// noise.
#[derive(Debug, Clone)]
pub struct Vad {
    noise_floor_db: f32,
    hangover_frames: u32,
    remaining: u32,
    frame_ms: u32,
}

impl Vad {
    /// Speech must stand this far above the noise floor.
    const MARGIN_DB: f32 = 12.0;
    /// ...and above this absolute level (quiet rooms have a very low floor).
    const MIN_SPEECH_DBFS: f32 = -50.0;
    /// The floor rises slowly (dB per second) so speech does not become the floor.
    const FLOOR_RISE_DB_PER_S: f32 = 6.0;

    /// A detector for frames of `frame_ms` that stays on for `hangover_ms` after speech.
    pub fn new(frame_ms: u32, hangover_ms: u32) -> Self {
        let frame_ms = frame_ms.max(1);
        Self {
            noise_floor_db: -70.0,
            hangover_frames: hangover_ms.div_ceil(frame_ms),
            remaining: 0,
            frame_ms,
        }
    }

    /// Feeds one frame's RMS level; returns whether speech is active.
    pub fn update(&mut self, rms_dbfs: f32) -> bool {
        if rms_dbfs < self.noise_floor_db {
            // Falls fast: a quieter moment is the best estimate of the floor.
            self.noise_floor_db = 0.7 * self.noise_floor_db + 0.3 * rms_dbfs;
        } else {
            self.noise_floor_db += Self::FLOOR_RISE_DB_PER_S * self.frame_ms as f32 / 1000.0;
        }
        let voiced =
            rms_dbfs > Self::MIN_SPEECH_DBFS && rms_dbfs > self.noise_floor_db + Self::MARGIN_DB;
        if voiced {
            self.remaining = self.hangover_frames + 1;
        }
        if self.remaining > 0 {
            self.remaining -= 1;
            true
        } else {
            false
        }
    }

    /// Current noise-floor estimate in dBFS.
    pub fn noise_floor_dbfs(&self) -> f32 {
        self.noise_floor_db
    }
}

/// Measures frames and keeps the latest [`Level`].
#[derive(Debug, Clone)]
pub struct LevelMeter {
    vad: Vad,
    last: Level,
    frame_ms: u32,
}

impl LevelMeter {
    /// A meter for frames of `frame_ms` with a 300 ms speaking hangover.
    pub fn new(frame_ms: u32) -> Self {
        Self {
            vad: Vad::new(frame_ms, 300),
            last: Level::default(),
            frame_ms,
        }
    }

    /// How fast the displayed level may fall.
    const FALL_DB_PER_S: f32 = 30.0;

    /// Measures one frame and returns its level.
    pub fn update(&mut self, frame: &[f32]) -> Level {
        let rms_dbfs = to_dbfs(rms(frame));
        // Meter ballistics: rise at once, fall at a bounded rate, so the UI does not
        // flicker on one quiet (e.g. concealed) frame.
        let fall = Self::FALL_DB_PER_S * self.frame_ms as f32 / 1000.0;
        let smooth = |new: f32, old: f32| new.max(old - fall).max(SILENCE_DBFS);
        self.last = Level {
            rms_dbfs: smooth(rms_dbfs, self.last.rms_dbfs),
            peak_dbfs: smooth(to_dbfs(peak(frame)), self.last.peak_dbfs),
            speaking: self.vad.update(rms_dbfs),
        };
        self.last
    }

    /// The most recent reading.
    pub fn level(&self) -> Level {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, amp: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / 48_000.0).sin())
            .collect()
    }

    #[test]
    fn goertzel_measures_the_amplitude_of_the_asked_frequency_only() {
        let x: Vec<f32> = sine(440.0, 0.5, 4800)
            .iter()
            .zip(sine(1000.0, 0.2, 4800))
            .map(|(a, b)| a + b)
            .collect();
        assert!((goertzel_amplitude(&x, 440.0, 48_000) - 0.5).abs() < 0.02);
        assert!((goertzel_amplitude(&x, 1000.0, 48_000) - 0.2).abs() < 0.02);
        assert!(goertzel_amplitude(&x, 700.0, 48_000) < 0.02);
    }

    #[test]
    fn dbfs_of_full_scale_sine_rms_is_minus_three() {
        assert!((to_dbfs(rms(&sine(1000.0, 1.0, 4800))) + 3.01).abs() < 0.05);
        assert_eq!(to_dbfs(0.0), SILENCE_DBFS);
    }

    #[test]
    fn vad_holds_through_hangover_then_releases() {
        let mut vad = Vad::new(20, 100);
        for _ in 0..50 {
            assert!(!vad.update(-80.0));
        }
        assert!(vad.update(-20.0));
        for _ in 0..5 {
            assert!(vad.update(-80.0), "hangover must keep it on for 100 ms");
        }
        assert!(!vad.update(-80.0));
    }

    #[test]
    fn vad_ignores_steady_background_noise() {
        let mut vad = Vad::new(20, 100);
        let on = (0..1000).filter(|_| vad.update(-40.0)).count();
        // The floor catches up within seconds; afterwards the noise is not speech.
        assert!(on < 300, "on for {on} frames");
        assert!(!vad.update(-40.0));
        assert!(vad.update(-15.0));
    }
}
