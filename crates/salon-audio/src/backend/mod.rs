//! Where samples come from and go to. Every device path has a file or synthetic twin so
//! the pipeline runs headless: [`synthetic`] (tone, silence, null, memory), [`mod@file`] (WAV)
//! and [`device`] (cpal, real hardware).

pub mod device;
pub mod file;
pub mod synthetic;

use crate::error::Result;

/// A producer of 48 kHz mono samples.
pub trait AudioSource: Send {
    /// Writes up to `out.len()` samples and returns how many; `0` means the source has
    /// ended (a file) or has nothing yet (a device).
    fn read(&mut self, out: &mut [f32]) -> usize;
}

/// A consumer of 48 kHz mono samples.
pub trait AudioSink: Send {
    /// Takes `samples`.
    fn write(&mut self, samples: &[f32]) -> Result<()>;
    /// Flushes buffered output (e.g. finalises a WAV header).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
