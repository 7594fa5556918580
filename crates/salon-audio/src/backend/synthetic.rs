//! Synthetic sources and sinks: a sine tone, silence, a sink that discards, and a sink that
//! keeps everything in memory for tests.

use std::sync::{Arc, Mutex};

use super::{AudioSink, AudioSource};
use crate::codec::SAMPLE_RATE;
use crate::error::Result;

/// An endless sine tone.
#[derive(Debug, Clone)]
pub struct ToneSource {
    step: f64,
    phase: f64,
    amplitude: f32,
}

impl ToneSource {
    /// A tone of `freq` Hz and peak `amplitude` (full scale = 1.0) at 48 kHz.
    pub fn new(freq: f32, amplitude: f32) -> Self {
        Self {
            step: std::f64::consts::TAU * f64::from(freq) / f64::from(SAMPLE_RATE),
            phase: 0.0,
            amplitude,
        }
    }
}

impl AudioSource for ToneSource {
    fn read(&mut self, out: &mut [f32]) -> usize {
        for s in out.iter_mut() {
            *s = self.amplitude * self.phase.sin() as f32;
            self.phase = (self.phase + self.step) % std::f64::consts::TAU;
        }
        out.len()
    }
}

/// Endless silence.
#[derive(Debug, Clone, Copy, Default)]
pub struct SilenceSource;

impl AudioSource for SilenceSource {
    fn read(&mut self, out: &mut [f32]) -> usize {
        out.fill(0.0);
        out.len()
    }
}

/// Discards everything, counting samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink {
    /// Samples written so far.
    pub samples: u64,
}

impl AudioSink for NullSink {
    fn write(&mut self, samples: &[f32]) -> Result<()> {
        self.samples += samples.len() as u64;
        Ok(())
    }
}

/// Keeps every sample in a shared buffer that the test (or caller) can read while the
/// pipeline runs elsewhere.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    samples: Arc<Mutex<Vec<f32>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything written so far.
    pub fn snapshot(&self) -> Vec<f32> {
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl AudioSink for MemorySink {
    fn write(&mut self, samples: &[f32]) -> Result<()> {
        if let Ok(mut s) = self.samples.lock() {
            s.extend_from_slice(samples);
        }
        Ok(())
    }
}

/// Plays a fixed buffer once, then ends.
#[derive(Debug, Clone, Default)]
pub struct BufferSource {
    samples: Vec<f32>,
    pos: usize,
}

impl BufferSource {
    /// A source that plays `samples` (48 kHz mono).
    pub fn new(samples: Vec<f32>) -> Self {
        Self { samples, pos: 0 }
    }
}

impl AudioSource for BufferSource {
    fn read(&mut self, out: &mut [f32]) -> usize {
        let rest = &self.samples[self.pos.min(self.samples.len())..];
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        n
    }
}
