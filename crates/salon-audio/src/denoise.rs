//! Noise suppression with RNNoise (the `nnnoiseless` port), on 48 kHz mono frames.

use nnnoiseless::DenoiseState;

/// RNNoise works on 10 ms blocks; any multiple of that is accepted.
pub const BLOCK: usize = DenoiseState::FRAME_SIZE;

/// A noise suppressor. Adds one block (10 ms) of delay.
pub struct NoiseSuppressor {
    state: Box<DenoiseState<'static>>,
    scaled_in: Vec<f32>,
    scaled_out: Vec<f32>,
}

impl std::fmt::Debug for NoiseSuppressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseSuppressor").finish_non_exhaustive()
    }
}

impl Default for NoiseSuppressor {
    fn default() -> Self {
        Self::new()
    }
}

impl NoiseSuppressor {
    /// A fresh suppressor with the built-in model.
    pub fn new() -> Self {
        Self {
            state: DenoiseState::new(),
            scaled_in: vec![0.0; BLOCK],
            scaled_out: vec![0.0; BLOCK],
        }
    }

    /// Denoises `frame` in place (its length should be a multiple of [`BLOCK`]; a trailing
    /// partial block passes through untouched). Returns RNNoise's mean voice probability.
    pub fn process(&mut self, frame: &mut [f32]) -> f32 {
        let mut vad_sum = 0.0;
        let mut blocks = 0;
        for chunk in frame.chunks_exact_mut(BLOCK) {
            // RNNoise expects 16-bit sample magnitudes.
            for (d, s) in self.scaled_in.iter_mut().zip(chunk.iter()) {
                *d = s * 32_768.0;
            }
            vad_sum += self
                .state
                .process_frame(&mut self.scaled_out, &self.scaled_in);
            for (d, s) in chunk.iter_mut().zip(&self.scaled_out) {
                *d = s / 32_768.0;
            }
            blocks += 1;
        }
        if blocks == 0 {
            0.0
        } else {
            vad_sum / blocks as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::rms;

    #[test]
    fn steady_white_noise_is_attenuated() {
        let mut ns = NoiseSuppressor::new();
        let mut x: u32 = 99;
        let mut last = Vec::new();
        for _ in 0..100 {
            let mut frame: Vec<f32> = (0..960)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    ((x >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * 0.05
                })
                .collect();
            let before = rms(&frame);
            ns.process(&mut frame);
            last.push(rms(&frame) / before);
        }
        let tail: f32 = last[50..].iter().sum::<f32>() / 50.0;
        assert!(tail < 0.3, "noise kept at {tail} of its level");
    }
}
