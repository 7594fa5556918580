//! Sums speakers into one stream and keeps it inside full scale with a soft limiter, so
//! loud overlapping speakers never wrap around or hard-clip.

/// Peak limiter with instant attack and smooth release: gain drops at once when a sample
/// would exceed the ceiling and recovers over `RELEASE_S`.
#[derive(Debug, Clone)]
pub struct Limiter {
    gain: f32,
    release: f32,
}

impl Limiter {
    /// Output never exceeds this magnitude; headroom below 1.0 for resamplers downstream.
    pub const CEILING: f32 = 0.95;
    /// Time for the gain to recover most of the way back to 1.
    const RELEASE_S: f32 = 0.15;

    /// A limiter for a stream at `sample_rate`.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            gain: 1.0,
            release: 1.0 - (-1.0 / (Self::RELEASE_S * sample_rate as f32)).exp(),
        }
    }

    /// Limits `buf` in place.
    pub fn process(&mut self, buf: &mut [f32]) {
        for s in buf {
            let x = if s.is_finite() { *s } else { 0.0 };
            self.gain += (1.0 - self.gain) * self.release;
            let a = x.abs() * self.gain;
            if a > Self::CEILING {
                self.gain = Self::CEILING / x.abs();
            }
            *s = (x * self.gain).clamp(-Self::CEILING, Self::CEILING);
        }
    }

    /// Current gain (1.0 = not limiting).
    pub fn gain(&self) -> f32 {
        self.gain
    }
}

/// Accumulates frames with per-source gain, then limits.
#[derive(Debug, Clone)]
pub struct Mixer {
    acc: Vec<f32>,
    limiter: Limiter,
}

impl Mixer {
    /// A mixer for frames of `frame_samples` at `sample_rate`.
    pub fn new(frame_samples: usize, sample_rate: u32) -> Self {
        Self {
            acc: vec![0.0; frame_samples],
            limiter: Limiter::new(sample_rate),
        }
    }

    /// Starts a new output block of `len` samples.
    pub fn begin(&mut self, len: usize) {
        self.acc.clear();
        self.acc.resize(len, 0.0);
    }

    /// Adds `frame` scaled by `gain` (extra samples are ignored, missing ones count as 0).
    pub fn add(&mut self, frame: &[f32], gain: f32) {
        for (a, s) in self.acc.iter_mut().zip(frame) {
            *a += s * gain;
        }
    }

    /// Limits the sum and writes it to `out` (which should be one frame long).
    pub fn finish(&mut self, out: &mut [f32]) {
        self.limiter.process(&mut self.acc);
        out.fill(0.0);
        for (o, a) in out.iter_mut().zip(&self.acc) {
            *o = *a;
        }
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
    fn loud_overlapping_speakers_stay_within_full_scale_without_wrapping() {
        let mut m = Mixer::new(960, 48_000);
        let a = sine(200.0, 0.9, 960);
        let b = sine(300.0, 0.9, 960);
        let mut out = vec![0.0; 960];
        for _ in 0..10 {
            m.begin(960);
            m.add(&a, 1.0);
            m.add(&b, 2.0);
            m.finish(&mut out);
            assert!(out.iter().all(|s| s.abs() <= Limiter::CEILING));
        }
        // Sign is preserved (no wrap-around): where the sum is strongly positive, so is out.
        for i in 0..960 {
            let sum = a[i] + 2.0 * b[i];
            if sum > 0.5 {
                assert!(out[i] > 0.0);
            }
        }
    }

    #[test]
    fn quiet_signal_passes_unchanged_and_gain_recovers_after_a_peak() {
        let mut l = Limiter::new(48_000);
        let mut quiet = sine(440.0, 0.3, 960);
        let orig = quiet.clone();
        l.process(&mut quiet);
        assert_eq!(quiet, orig);
        let mut loud = vec![3.0; 10];
        l.process(&mut loud);
        assert!(l.gain() < 0.5);
        let mut silence = vec![0.0; 48_000];
        l.process(&mut silence);
        assert!(l.gain() > 0.99);
    }

    #[test]
    fn non_finite_samples_become_silence() {
        let mut l = Limiter::new(48_000);
        let mut x = [f32::NAN, f32::INFINITY, 0.5];
        l.process(&mut x);
        assert_eq!(&x[..2], &[0.0, 0.0]);
        assert_eq!(x[2], 0.5);
    }
}
