//! Sample-rate and channel conversion between devices and the 48 kHz mono pipeline, with
//! `rubato`. Runs on the DSP thread, never inside a device callback.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Async, FixedAsync, Resampler as _, SincInterpolationParameters, WindowFunction};

use crate::error::{AudioError, Result};

/// Averages interleaved `channels` into mono, appending to `out`.
pub fn downmix(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    let channels = channels.max(1);
    if channels == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / channels as f32;
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|f| f.iter().sum::<f32>() * scale),
    );
}

/// Copies mono into every one of `channels` interleaved channels, appending to `out`.
pub fn upmix(mono: &[f32], channels: usize, out: &mut Vec<f32>) {
    let channels = channels.max(1);
    for &s in mono {
        out.extend(std::iter::repeat_n(s, channels));
    }
}

/// Streaming mono resampler; a pass-through when both rates are equal.
pub struct Resampler {
    inner: Option<Async<f32>>,
    chunk: usize,
    pending: Vec<f32>,
    scratch: Vec<f32>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("active", &self.inner.is_some())
            .field("chunk", &self.chunk)
            .finish()
    }
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self> {
        if from == 0 || to == 0 {
            return Err(AudioError::Resample("sample rate 0".into()));
        }
        if from == to {
            return Ok(Self {
                inner: None,
                chunk: 0,
                pending: Vec::new(),
                scratch: Vec::new(),
            });
        }
        // 5 ms chunks keep the added latency low; a short sinc is plenty for speech.
        let chunk = (from as usize / 200).max(16);
        let params = SincInterpolationParameters::new(64, WindowFunction::BlackmanHarris2);
        let inner = Async::<f32>::new_sinc(
            f64::from(to) / f64::from(from),
            1.1,
            &params,
            chunk,
            1,
            FixedAsync::Input,
        )
        .map_err(|e| AudioError::Resample(e.to_string()))?;
        let max_out = inner.output_frames_max();
        Ok(Self {
            inner: Some(inner),
            chunk,
            pending: Vec::with_capacity(chunk * 4),
            scratch: vec![0.0; max_out],
        })
    }

    /// Whether rates differ (otherwise samples pass straight through).
    pub fn is_active(&self) -> bool {
        self.inner.is_some()
    }

    /// Delay the resampler adds, in output samples.
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Resamples `input`, appending whatever output is ready to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let Some(inner) = &mut self.inner else {
            out.extend_from_slice(input);
            return Ok(());
        };
        self.pending.extend_from_slice(input);
        let mut start = 0;
        while self.pending.len() - start >= self.chunk {
            let block = &self.pending[start..start + self.chunk];
            let inp = InterleavedSlice::new(block, 1, self.chunk)
                .map_err(|e| AudioError::Resample(e.to_string()))?;
            let cap = self.scratch.len();
            let mut outp = InterleavedSlice::new_mut(&mut self.scratch, 1, cap)
                .map_err(|e| AudioError::Resample(e.to_string()))?;
            let (_, written) = inner
                .process_into_buffer(&inp, &mut outp, None)
                .map_err(|e| AudioError::Resample(e.to_string()))?;
            out.extend_from_slice(&self.scratch[..written]);
            start += self.chunk;
        }
        self.pending.drain(..start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::goertzel_amplitude;

    #[test]
    fn resampling_44k1_to_48k_keeps_tone_frequency_and_level() {
        let mut r = Resampler::new(44_100, 48_000).unwrap();
        let input: Vec<f32> = (0..44_100)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 44_100.0).sin())
            .collect();
        let mut out = Vec::new();
        for block in input.chunks(441) {
            r.process(block, &mut out).unwrap();
        }
        let n = out.len();
        assert!((47_000..=48_100).contains(&n), "got {n} samples");
        let tail = &out[n - 24_000..];
        assert!((goertzel_amplitude(tail, 1000.0, 48_000) - 0.5).abs() < 0.03);
        assert!(goertzel_amplitude(tail, 1088.0, 48_000) < 0.05);
    }

    #[test]
    fn equal_rates_pass_through_and_channels_mix() {
        let mut r = Resampler::new(48_000, 48_000).unwrap();
        let mut out = Vec::new();
        r.process(&[0.1, 0.2], &mut out).unwrap();
        assert_eq!(out, vec![0.1, 0.2]);
        let mut mono = Vec::new();
        downmix(&[1.0, 0.0, 0.5, 0.5], 2, &mut mono);
        assert_eq!(mono, vec![0.5, 0.5]);
        let mut st = Vec::new();
        upmix(&[0.25], 2, &mut st);
        assert_eq!(st, vec![0.25, 0.25]);
    }
}
