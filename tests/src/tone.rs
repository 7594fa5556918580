//! Who can be heard in a recording, and when: each speaker sends a tone of its own, and a
//! recording is cut into 100 ms blocks in which each tone is present or not.

use std::path::Path;

/// Samples per second of every recording (`salon --output FILE.wav` writes 48 kHz mono).
pub const RATE: usize = 48_000;
/// One block: 100 ms, a whole number of periods of every tone the tests use (multiples
/// of 10 Hz), so a tone falls exactly on its frequency bin.
const BLOCK: usize = RATE / 10;
/// A tone is present in a block when it carries at least this share of the block's power:
/// a speaker among two or three others carries a third to a half of it; silence, noise
/// and the other tones carry next to nothing at its frequency.
const PRESENT: f64 = 0.05;

/// A 16-bit mono 48 kHz WAV as `salon` writes it.
pub struct Recording {
    samples: Vec<i16>,
}

impl Recording {
    /// Reads a recording. The samples start after the canonical 44-byte header; its size
    /// fields are not trusted (they stay 0 until the writer finishes cleanly).
    pub fn read(path: &Path) -> Recording {
        let bytes = std::fs::read(path)
            .unwrap_or_else(|e| panic!("cannot read the recording {}: {e}", path.display()));
        let samples = bytes
            .get(44..)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        Recording { samples }
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / RATE as f64
    }

    /// For each 100 ms block, whether `hz` is present.
    pub fn presence(&self, hz: f64) -> Vec<bool> {
        self.samples
            .chunks_exact(BLOCK)
            .map(|b| share(b, hz) >= PRESENT)
            .collect()
    }

    /// Seconds in which `hz` is present.
    pub fn tone_seconds(&self, hz: f64) -> f64 {
        self.presence(hz).iter().filter(|p| **p).count() as f64 / 10.0
    }

    /// Where `hz` was last present, in seconds from the start (the end of its last block).
    pub fn last_heard(&self, hz: f64) -> Option<f64> {
        self.presence(hz)
            .iter()
            .rposition(|x| *x)
            .map(|i| (i + 1) as f64 / 10.0)
    }

    /// The longest run of blocks without `hz` between its first and last presence, in
    /// seconds: how long a speaker who was heard went unheard.
    pub fn longest_gap(&self, hz: f64) -> f64 {
        let p = self.presence(hz);
        let (Some(first), Some(last)) = (p.iter().position(|x| *x), p.iter().rposition(|x| *x))
        else {
            return 0.0;
        };
        p[first..=last]
            .split(|x| *x)
            .map(<[bool]>::len)
            .max()
            .unwrap_or(0) as f64
            / 10.0
    }
}

/// The share of `block`'s power at `hz`: the squared magnitude of one DFT bin, scaled so
/// that a pure tone filling the block gives 1.
fn share(block: &[i16], hz: f64) -> f64 {
    let step = 2.0 * std::f64::consts::PI * hz / RATE as f64;
    let (mut re, mut im, mut total) = (0.0f64, 0.0f64, 0.0f64);
    for (n, &x) in block.iter().enumerate() {
        let x = f64::from(x) / 32768.0;
        let (s, c) = (step * n as f64).sin_cos();
        re += x * c;
        im -= x * s;
        total += x * x;
    }
    // A tone of amplitude A over N samples: |X|² = (A·N/2)², total power A²·N/2.
    if total == 0.0 {
        0.0
    } else {
        (re * re + im * im) / (total * block.len() as f64 / 2.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tone(hz: f64, secs: f64, amp: f64) -> Vec<i16> {
        (0..(secs * RATE as f64) as usize)
            .map(|n| {
                (amp * 32767.0 * (2.0 * std::f64::consts::PI * hz * n as f64 / RATE as f64).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn a_mix_shows_each_tone_and_only_its_tones() {
        let a = tone(440.0, 2.0, 0.3);
        let b = tone(880.0, 2.0, 0.3);
        let mixed: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let r = Recording { samples: mixed };
        assert!((r.tone_seconds(440.0) - 2.0).abs() < 1e-9);
        assert!((r.tone_seconds(880.0) - 2.0).abs() < 1e-9);
        assert_eq!(r.tone_seconds(660.0), 0.0);
    }

    #[test]
    fn a_silent_stretch_is_the_longest_gap() {
        let mut s = tone(660.0, 1.0, 0.5);
        s.extend(std::iter::repeat_n(0, RATE * 3 / 2));
        s.extend(tone(660.0, 1.0, 0.5));
        let r = Recording { samples: s };
        assert!(
            (r.longest_gap(660.0) - 1.5).abs() < 0.11,
            "{}",
            r.longest_gap(660.0)
        );
        assert_eq!(r.last_heard(660.0), Some(3.5));
        assert_eq!(r.last_heard(440.0), None);
    }
}
