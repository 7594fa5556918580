//! WAV file backend with `hound`: read any PCM/float WAV (downmixed and resampled to 48 kHz
//! mono), write 48 kHz mono 16-bit WAV.

use std::fs::File;
use std::path::Path;

use super::{AudioSink, AudioSource};
use crate::codec::SAMPLE_RATE;
use crate::error::{AudioError, Result};
use crate::resample::{Resampler, downmix};

/// Reads a whole WAV file into 48 kHz mono samples.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Vec<f32>> {
    let reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.into_samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            if spec.bits_per_sample == 0 || spec.bits_per_sample > 32 {
                return Err(AudioError::WavFormat(format!(
                    "{} bits per sample",
                    spec.bits_per_sample
                )));
            }
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()?
        }
    };
    let mut mono = Vec::with_capacity(interleaved.len() / usize::from(spec.channels.max(1)));
    downmix(&interleaved, usize::from(spec.channels), &mut mono);
    if spec.sample_rate == SAMPLE_RATE {
        return Ok(mono);
    }
    let mut r = Resampler::new(spec.sample_rate, SAMPLE_RATE)?;
    let mut out = Vec::with_capacity(mono.len() * SAMPLE_RATE as usize / spec.sample_rate as usize);
    r.process(&mono, &mut out)?;
    // Flush the resampler's tail so the end of the file is not cut off.
    let tail = vec![0.0; spec.sample_rate as usize / 10];
    r.process(&tail, &mut out)?;
    let delay = r.delay().min(out.len());
    out.drain(..delay);
    let expected =
        (mono.len() as u64 * u64::from(SAMPLE_RATE) / u64::from(spec.sample_rate)) as usize;
    out.truncate(expected);
    Ok(out)
}

/// A WAV file as an [`AudioSource`]; ends at the end of the file.
#[derive(Debug, Clone)]
pub struct WavSource {
    samples: Vec<f32>,
    pos: usize,
    looping: bool,
}

impl WavSource {
    /// Opens `path` (decoded fully up front: speech clips are small).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self {
            samples: read_wav(path)?,
            pos: 0,
            looping: false,
        })
    }

    /// Restart from the beginning at the end instead of ending.
    pub fn looping(mut self, on: bool) -> Self {
        self.looping = on;
        self
    }

    /// Length in samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the file holds no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

impl AudioSource for WavSource {
    fn read(&mut self, out: &mut [f32]) -> usize {
        let mut n = 0;
        while n < out.len() {
            if self.pos >= self.samples.len() {
                if self.looping && !self.samples.is_empty() {
                    self.pos = 0;
                } else {
                    break;
                }
            }
            let take = (out.len() - n).min(self.samples.len() - self.pos);
            out[n..n + take].copy_from_slice(&self.samples[self.pos..self.pos + take]);
            n += take;
            self.pos += take;
        }
        n
    }
}

/// Writes 48 kHz mono 16-bit WAV.
pub struct WavSink {
    writer: Option<hound::WavWriter<std::io::BufWriter<File>>>,
}

impl std::fmt::Debug for WavSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSink").finish_non_exhaustive()
    }
}

impl WavSink {
    /// Creates (truncates) `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(Self {
            writer: Some(hound::WavWriter::create(path, spec)?),
        })
    }
}

impl AudioSink for WavSink {
    fn write(&mut self, samples: &[f32]) -> Result<()> {
        if let Some(w) = &mut self.writer {
            for &s in samples {
                w.write_sample((s.clamp(-1.0, 1.0) * 32_767.0).round() as i16)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            w.finalize()?;
        }
        Ok(())
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        // Best effort: a WAV without a final header is still mostly readable.
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::goertzel_amplitude;

    #[test]
    fn wav_written_then_read_round_trips_and_other_rates_are_resampled() {
        let dir = tempfile::Builder::new()
            .prefix("salon-audio-wav-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("tone.wav");
        let tone: Vec<f32> = (0..4800)
            .map(|i| 0.5 * (std::f32::consts::TAU * 600.0 * i as f32 / 48e3).sin())
            .collect();
        let mut sink = WavSink::create(&path).unwrap();
        sink.write(&tone).unwrap();
        sink.finish().unwrap();
        let back = read_wav(&path).unwrap();
        assert_eq!(back.len(), tone.len());
        assert!(back.iter().zip(&tone).all(|(a, b)| (a - b).abs() < 1e-4));

        // A 16 kHz stereo file comes back as 48 kHz mono at the same pitch.
        let p16 = dir.path().join("tone16.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&p16, spec).unwrap();
        for i in 0..16_000 {
            let v =
                (0.5 * (std::f32::consts::TAU * 600.0 * i as f32 / 16e3).sin() * 32767.0) as i16;
            w.write_sample(v).unwrap();
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let up = WavSource::open(&p16).unwrap();
        assert!((47_000..=49_000).contains(&up.len()), "{}", up.len());
        let mut buf = vec![0.0; 24_000];
        let mut src = up;
        src.read(&mut buf);
        let mut rest = vec![0.0; 24_000];
        src.read(&mut rest);
        assert!((goertzel_amplitude(&rest[..12_000], 600.0, 48_000) - 0.5).abs() < 0.05);
    }
}
