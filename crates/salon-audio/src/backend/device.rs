//! Real audio devices through `cpal`.
//!
//! The device callbacks only copy samples to or from pre-allocated lock-free SPSC rings
//! (`rtrb`): no locks, no allocation, no blocking. Channel mixing and resampling to and
//! from 48 kHz mono happen on the caller's (DSP) thread in [`CaptureStream::read`] and
//! [`PlaybackStream::write`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig, SupportedStreamConfig};
use rtrb::{Consumer, Producer, RingBuffer};

use crate::codec::SAMPLE_RATE;
use crate::error::{AudioError, Result};
use crate::resample::{Resampler, downmix, upmix};

/// Whether a device records or plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Microphone side.
    Input,
    /// Speaker side.
    Output,
}

impl Direction {
    fn kind(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
        }
    }
}

/// A device as shown in a device picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Name to pass back when selecting it.
    pub name: String,
    /// Whether it is the system default.
    pub is_default: bool,
}

/// Lists the devices of one direction on the default host.
pub fn list_devices(direction: Direction) -> Result<Vec<DeviceInfo>> {
    let host = cpal::default_host();
    let default_name = match direction {
        Direction::Input => host.default_input_device(),
        Direction::Output => host.default_output_device(),
    }
    .and_then(|d| d.name().ok());
    let devices = match direction {
        Direction::Input => host.input_devices(),
        Direction::Output => host.output_devices(),
    }
    .map_err(|e| AudioError::Backend(e.to_string()))?;
    Ok(devices
        .filter_map(|d| d.name().ok())
        .map(|name| DeviceInfo {
            is_default: default_name.as_deref() == Some(name.as_str()),
            name,
        })
        .collect())
}

fn find_device(direction: Direction, name: Option<&str>) -> Result<cpal::Device> {
    let host = cpal::default_host();
    let Some(name) = name else {
        return match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        }
        .ok_or(AudioError::NoDevice {
            kind: direction.kind(),
        });
    };
    let mut devices = match direction {
        Direction::Input => host.input_devices(),
        Direction::Output => host.output_devices(),
    }
    .map_err(|e| AudioError::Backend(e.to_string()))?;
    devices
        .find(|d| d.name().is_ok_and(|n| n == name))
        .ok_or_else(|| AudioError::DeviceNotFound {
            name: name.to_owned(),
        })
}

/// Picks 48 kHz f32/i16 if the device offers it (no resampling), else its default.
fn choose_config(device: &cpal::Device, direction: Direction) -> Result<SupportedStreamConfig> {
    let name = device.name().unwrap_or_default();
    let unsupported = |reason: String| AudioError::UnsupportedDevice {
        name: name.clone(),
        reason,
    };
    let ranges: Vec<_> = match direction {
        Direction::Input => device
            .supported_input_configs()
            .map_err(|e| unsupported(e.to_string()))?
            .collect(),
        Direction::Output => device
            .supported_output_configs()
            .map_err(|e| unsupported(e.to_string()))?
            .collect(),
    };
    let rate = cpal::SampleRate(SAMPLE_RATE);
    let usable = |f: SampleFormat| matches!(f, SampleFormat::F32 | SampleFormat::I16);
    let best = ranges
        .iter()
        .filter(|r| usable(r.sample_format()))
        .filter(|r| r.min_sample_rate() <= rate && rate <= r.max_sample_rate())
        .min_by_key(|r| (r.channels(), r.sample_format() != SampleFormat::F32));
    if let Some(r) = best {
        return Ok(r.with_sample_rate(rate));
    }
    let default = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
    .map_err(|e| unsupported(e.to_string()))?;
    if usable(default.sample_format()) {
        Ok(default)
    } else {
        Err(unsupported(format!(
            "sample format {} (need f32 or i16)",
            default.sample_format()
        )))
    }
}

/// Shared between a callback and its owner: only atomics.
#[derive(Debug, Default)]
struct StreamFlags {
    failed: AtomicBool,
    callbacks: AtomicU64,
    /// Samples dropped (capture ring full) or zero-filled (playback ring empty).
    xruns: AtomicU64,
}

/// One second of device audio: ample slack for a DSP thread hiccup.
fn ring_capacity(config: &StreamConfig) -> usize {
    config.sample_rate.0 as usize * usize::from(config.channels)
}

/// A running capture stream delivering 48 kHz mono samples.
pub struct CaptureStream {
    _stream: cpal::Stream,
    name: String,
    channels: usize,
    rate: u32,
    ring: Consumer<f32>,
    flags: Arc<StreamFlags>,
    resampler: Resampler,
    mono: Vec<f32>,
}

impl std::fmt::Debug for CaptureStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureStream")
            .field("name", &self.name)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

fn capture_callback<T>(
    mut ring: Producer<f32>,
    flags: Arc<StreamFlags>,
) -> impl FnMut(&[T], &cpal::InputCallbackInfo) + Send + 'static
where
    T: SizedSample,
    f32: FromSample<T>,
{
    move |data: &[T], _| {
        flags.callbacks.fetch_add(1, Ordering::Relaxed);
        let n = data.len().min(ring.slots());
        if let Ok(chunk) = ring.write_chunk_uninit(n) {
            chunk.fill_from_iter(data.iter().map(|s| f32::from_sample_(*s)));
        }
        if n < data.len() {
            flags
                .xruns
                .fetch_add((data.len() - n) as u64, Ordering::Relaxed);
        }
    }
}

fn playback_callback<T>(
    mut ring: Consumer<f32>,
    flags: Arc<StreamFlags>,
) -> impl FnMut(&mut [T], &cpal::OutputCallbackInfo) + Send + 'static
where
    T: SizedSample + FromSample<f32>,
{
    move |data: &mut [T], _| {
        flags.callbacks.fetch_add(1, Ordering::Relaxed);
        let n = data.len().min(ring.slots());
        let mut written = 0;
        if let Ok(chunk) = ring.read_chunk(n) {
            for (d, s) in data.iter_mut().zip(chunk) {
                *d = T::from_sample_(s);
                written += 1;
            }
        }
        for d in &mut data[written..] {
            *d = T::EQUILIBRIUM;
        }
        if written < data.len() {
            flags
                .xruns
                .fetch_add((data.len() - written) as u64, Ordering::Relaxed);
        }
    }
}

fn error_callback(flags: Arc<StreamFlags>) -> impl FnMut(cpal::StreamError) + Send + 'static {
    move |_err| {
        // The owner polls this and falls back to the default device.
        flags.failed.store(true, Ordering::Release);
    }
}

/// Small device buffers keep latency low; some hosts refuse them, so fall back to default.
fn stream_configs(supported: &SupportedStreamConfig) -> [StreamConfig; 2] {
    let mut fixed: StreamConfig = supported.config();
    fixed.buffer_size = cpal::BufferSize::Fixed(supported.sample_rate().0 / 100);
    let mut default = supported.config();
    default.buffer_size = cpal::BufferSize::Default;
    [fixed, default]
}

impl CaptureStream {
    /// Opens and starts the named input device, or the default one.
    pub fn open(name: Option<&str>) -> Result<Self> {
        let device = find_device(Direction::Input, name)?;
        let dev_name = device.name().unwrap_or_default();
        let supported = choose_config(&device, Direction::Input)?;
        let mut last_err = String::new();
        for config in stream_configs(&supported) {
            let (producer, consumer) = RingBuffer::new(ring_capacity(&config));
            let flags = Arc::new(StreamFlags::default());
            let built = match supported.sample_format() {
                SampleFormat::I16 => device.build_input_stream(
                    &config,
                    capture_callback::<i16>(producer, flags.clone()),
                    error_callback(flags.clone()),
                    None,
                ),
                _ => device.build_input_stream(
                    &config,
                    capture_callback::<f32>(producer, flags.clone()),
                    error_callback(flags.clone()),
                    None,
                ),
            };
            match built {
                Ok(stream) => {
                    stream
                        .play()
                        .map_err(|e| AudioError::Backend(e.to_string()))?;
                    return Ok(Self {
                        _stream: stream,
                        name: dev_name,
                        channels: usize::from(config.channels),
                        rate: config.sample_rate.0,
                        ring: consumer,
                        flags,
                        resampler: Resampler::new(config.sample_rate.0, SAMPLE_RATE)?,
                        mono: Vec::with_capacity(config.sample_rate.0 as usize),
                    });
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        Err(AudioError::UnsupportedDevice {
            name: dev_name,
            reason: last_err,
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Device sample rate and channel count.
    pub fn device_format(&self) -> (u32, usize) {
        (self.rate, self.channels)
    }

    /// Whether the device reported an error (e.g. it was unplugged).
    pub fn failed(&self) -> bool {
        self.flags.failed.load(Ordering::Acquire)
    }

    /// Callbacks delivered so far.
    pub fn callbacks(&self) -> u64 {
        self.flags.callbacks.load(Ordering::Relaxed)
    }

    /// Samples lost because the ring was full.
    pub fn overruns(&self) -> u64 {
        self.flags.xruns.load(Ordering::Relaxed)
    }

    /// Moves everything captured so far, as 48 kHz mono, onto the end of `out`.
    pub fn read(&mut self, out: &mut Vec<f32>) -> Result<()> {
        // Whole device frames only, so channels never get out of step.
        let avail = self.ring.slots() / self.channels * self.channels;
        if avail == 0 {
            return Ok(());
        }
        self.mono.clear();
        if let Ok(chunk) = self.ring.read_chunk(avail) {
            let (a, b) = chunk.as_slices();
            downmix(a, self.channels, &mut self.mono);
            downmix(b, self.channels, &mut self.mono);
            chunk.commit_all();
        }
        self.resampler.process(&self.mono, out)
    }
}

/// A running playback stream fed with 48 kHz mono samples.
pub struct PlaybackStream {
    _stream: cpal::Stream,
    name: String,
    channels: usize,
    rate: u32,
    ring: Producer<f32>,
    flags: Arc<StreamFlags>,
    resampler: Resampler,
    resampled: Vec<f32>,
    interleaved: Vec<f32>,
}

impl std::fmt::Debug for PlaybackStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackStream")
            .field("name", &self.name)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl PlaybackStream {
    /// Opens and starts the named output device, or the default one.
    pub fn open(name: Option<&str>) -> Result<Self> {
        let device = find_device(Direction::Output, name)?;
        let dev_name = device.name().unwrap_or_default();
        let supported = choose_config(&device, Direction::Output)?;
        let mut last_err = String::new();
        for config in stream_configs(&supported) {
            let (producer, consumer) = RingBuffer::new(ring_capacity(&config));
            let flags = Arc::new(StreamFlags::default());
            let built = match supported.sample_format() {
                SampleFormat::I16 => device.build_output_stream(
                    &config,
                    playback_callback::<i16>(consumer, flags.clone()),
                    error_callback(flags.clone()),
                    None,
                ),
                _ => device.build_output_stream(
                    &config,
                    playback_callback::<f32>(consumer, flags.clone()),
                    error_callback(flags.clone()),
                    None,
                ),
            };
            match built {
                Ok(stream) => {
                    stream
                        .play()
                        .map_err(|e| AudioError::Backend(e.to_string()))?;
                    return Ok(Self {
                        _stream: stream,
                        name: dev_name,
                        channels: usize::from(config.channels),
                        rate: config.sample_rate.0,
                        ring: producer,
                        flags,
                        resampler: Resampler::new(SAMPLE_RATE, config.sample_rate.0)?,
                        resampled: Vec::with_capacity(config.sample_rate.0 as usize),
                        interleaved: Vec::with_capacity(ring_capacity(&config)),
                    });
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        Err(AudioError::UnsupportedDevice {
            name: dev_name,
            reason: last_err,
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Device sample rate and channel count.
    pub fn device_format(&self) -> (u32, usize) {
        (self.rate, self.channels)
    }

    /// Whether the device reported an error (e.g. it was unplugged).
    pub fn failed(&self) -> bool {
        self.flags.failed.load(Ordering::Acquire)
    }

    /// Callbacks delivered so far.
    pub fn callbacks(&self) -> u64 {
        self.flags.callbacks.load(Ordering::Relaxed)
    }

    /// Samples the callback had to fill with silence.
    pub fn underruns(&self) -> u64 {
        self.flags.xruns.load(Ordering::Relaxed)
    }

    /// Audio queued for the device, in microseconds.
    pub fn queued_micros(&self) -> u64 {
        let queued = self.ring.buffer().capacity() - self.ring.slots();
        let frames = queued / self.channels.max(1);
        frames as u64 * 1_000_000 / u64::from(self.rate.max(1))
    }

    /// Queues 48 kHz mono samples for playback; what does not fit is dropped.
    pub fn write(&mut self, samples: &[f32]) -> Result<()> {
        self.resampled.clear();
        self.resampler.process(samples, &mut self.resampled)?;
        self.interleaved.clear();
        upmix(&self.resampled, self.channels, &mut self.interleaved);
        let n = self.interleaved.len().min(self.ring.slots()) / self.channels * self.channels;
        if let Ok(chunk) = self.ring.write_chunk_uninit(n) {
            chunk.fill_from_iter(self.interleaved.iter().copied());
        }
        Ok(())
    }
}
