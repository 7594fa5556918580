//! Real audio devices through `cpal`.
//!
//! The device callbacks only copy samples to or from pre-allocated lock-free SPSC rings
//! (`rtrb`): no locks, no allocation, no blocking. Channel mixing and resampling to and
//! from 48 kHz mono happen on the caller's (DSP) thread in [`CaptureRing::read`] and
//! [`PlaybackRing::write`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

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
#[derive(Debug)]
struct StreamFlags {
    failed: AtomicBool,
    callbacks: AtomicU64,
    /// When the first and the latest callback started, in microseconds after `origin`.
    first_callback_us: AtomicU64,
    last_callback_us: AtomicU64,
    origin: Instant,
    /// Samples dropped (capture ring full) or zero-filled (playback ring empty).
    xruns: AtomicU64,
    /// Largest callback buffer seen, in samples (all channels).
    max_callback: AtomicU64,
}

impl StreamFlags {
    fn new() -> Self {
        Self {
            failed: AtomicBool::new(false),
            callbacks: AtomicU64::new(0),
            first_callback_us: AtomicU64::new(0),
            last_callback_us: AtomicU64::new(0),
            origin: Instant::now(),
            xruns: AtomicU64::new(0),
            max_callback: AtomicU64::new(0),
        }
    }

    /// Counts a callback and notes when it came (a clock read: no lock, no allocation).
    fn callback_started(&self) {
        let now = self.origin.elapsed().as_micros() as u64;
        if self.callbacks.fetch_add(1, Ordering::Relaxed) == 0 {
            self.first_callback_us.store(now, Ordering::Relaxed);
        }
        self.last_callback_us.store(now, Ordering::Relaxed);
    }

    /// Mean time between callbacks (µs); `None` before the second one.
    fn callback_period(&self) -> Option<u64> {
        let n = self.callbacks.load(Ordering::Relaxed);
        let span = self
            .last_callback_us
            .load(Ordering::Relaxed)
            .saturating_sub(self.first_callback_us.load(Ordering::Relaxed));
        (n >= 2).then(|| span / (n - 1))
    }

    /// Microseconds since the latest callback started; `None` before the first one.
    fn since_callback(&self) -> Option<u64> {
        if self.callbacks.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let last = self.last_callback_us.load(Ordering::Relaxed);
        Some((self.origin.elapsed().as_micros() as u64).saturating_sub(last))
    }
}

/// What a capture callback does: copy into the ring, count what did not fit.
fn push_samples(
    ring: &mut Producer<f32>,
    flags: &StreamFlags,
    data: impl Iterator<Item = f32>,
    len: usize,
) {
    flags.callback_started();
    let n = len.min(ring.slots());
    if let Ok(chunk) = ring.write_chunk_uninit(n) {
        chunk.fill_from_iter(data);
    }
    if n < len {
        flags.xruns.fetch_add((len - n) as u64, Ordering::Relaxed);
    }
}

/// What a playback callback does: copy out of the ring, fill the rest with silence.
fn pull_samples<T: SizedSample + FromSample<f32>>(
    ring: &mut Consumer<f32>,
    flags: &StreamFlags,
    data: &mut [T],
) {
    flags.callback_started();
    flags
        .max_callback
        .fetch_max(data.len() as u64, Ordering::Relaxed);
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

/// The callback end of a capture ring. A cpal callback does exactly what [`Self::feed`]
/// does; tests and benchmarks call it from their own thread to emulate a device.
pub struct CaptureFeeder {
    ring: Producer<f32>,
    flags: Arc<StreamFlags>,
}

impl std::fmt::Debug for CaptureFeeder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFeeder").finish_non_exhaustive()
    }
}

impl CaptureFeeder {
    /// Pushes one callback's worth of interleaved samples; never blocks or allocates.
    pub fn feed(&mut self, data: &[f32]) {
        push_samples(
            &mut self.ring,
            &self.flags,
            data.iter().copied(),
            data.len(),
        );
    }

    /// Marks the emulated device as failed (as an unplug would).
    pub fn fail(&self) {
        self.flags.failed.store(true, Ordering::Release);
    }
}

/// The callback end of a playback ring; see [`CaptureFeeder`].
pub struct PlaybackDrain {
    ring: Consumer<f32>,
    flags: Arc<StreamFlags>,
}

impl std::fmt::Debug for PlaybackDrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackDrain").finish_non_exhaustive()
    }
}

impl PlaybackDrain {
    /// Fills one callback's buffer (interleaved); never blocks or allocates.
    pub fn drain(&mut self, out: &mut [f32]) {
        pull_samples(&mut self.ring, &self.flags, out);
    }

    /// Marks the emulated device as failed (as an unplug would).
    pub fn fail(&self) {
        self.flags.failed.store(true, Ordering::Release);
    }
}

/// One second of device audio: ample slack for a DSP thread hiccup.
fn ring_len(rate: u32, channels: usize) -> usize {
    rate as usize * channels
}

/// What the DSP-thread end of a ring knows about its device (both kinds of ring deref
/// to it).
pub struct DeviceMeta {
    name: String,
    channels: usize,
    rate: u32,
    flags: Arc<StreamFlags>,
}

impl std::fmt::Debug for DeviceMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceMeta")
            .field("name", &self.name)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl DeviceMeta {
    fn new(name: String, rate: u32, channels: usize, flags: Arc<StreamFlags>) -> Self {
        Self {
            name,
            channels,
            rate,
            flags,
        }
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

    /// Microseconds of device audio in `samples` interleaved samples.
    fn micros(&self, samples: u64) -> u64 {
        samples / self.channels.max(1) as u64 * 1_000_000 / u64::from(self.rate.max(1))
    }
}

/// The DSP-thread end of a capture ring: device-format samples in, 48 kHz mono out.
/// `Send`, unlike a cpal stream, so an emulated device can be handed to the engine.
pub struct CaptureRing {
    meta: DeviceMeta,
    ring: Consumer<f32>,
    resampler: Resampler,
    mono: Vec<f32>,
}

impl std::fmt::Debug for CaptureRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureRing")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for CaptureRing {
    type Target = DeviceMeta;
    fn deref(&self) -> &DeviceMeta {
        &self.meta
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

impl CaptureRing {
    /// An emulated capture device at `rate` Hz with `channels` channels: the returned
    /// feeder plays the role of the device callback.
    pub fn emulated(
        name: impl Into<String>,
        rate: u32,
        channels: u16,
    ) -> Result<(CaptureFeeder, Self)> {
        let channels = usize::from(channels.max(1));
        let (producer, consumer) = RingBuffer::new(ring_len(rate, channels));
        let flags = Arc::new(StreamFlags::new());
        Ok((
            CaptureFeeder {
                ring: producer,
                flags: flags.clone(),
            },
            Self {
                meta: DeviceMeta::new(name.into(), rate, channels, flags),
                ring: consumer,
                resampler: Resampler::new(rate, SAMPLE_RATE)?,
                mono: Vec::with_capacity(rate as usize),
            },
        ))
    }

    /// Samples lost because the ring was full.
    pub fn overruns(&self) -> u64 {
        self.flags.xruns.load(Ordering::Relaxed)
    }

    /// Moves everything captured so far, as 48 kHz mono, onto the end of `out`.
    pub fn read(&mut self, out: &mut Vec<f32>) -> Result<()> {
        // Whole device frames only, so channels never get out of step.
        let avail = self.ring.slots() / self.meta.channels * self.meta.channels;
        if avail == 0 {
            return Ok(());
        }
        self.mono.clear();
        if let Ok(chunk) = self.ring.read_chunk(avail) {
            let (a, b) = chunk.as_slices();
            downmix(a, self.meta.channels, &mut self.mono);
            downmix(b, self.meta.channels, &mut self.mono);
            chunk.commit_all();
        }
        self.resampler.process(&self.mono, out)
    }
}

/// A running cpal stream; everything else is on its ring `R` (via `Deref`).
pub struct DeviceStream<R> {
    _stream: cpal::Stream,
    ring: R,
}

/// A running capture device: a [`CaptureRing`] fed by a cpal input callback.
pub type CaptureStream = DeviceStream<CaptureRing>;

/// A running playback device: a [`PlaybackRing`] drained by a cpal output callback.
pub type PlaybackStream = DeviceStream<PlaybackRing>;

impl<R: std::fmt::Debug> std::fmt::Debug for DeviceStream<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceStream")
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl<R> std::ops::Deref for DeviceStream<R> {
    type Target = R;
    fn deref(&self) -> &R {
        &self.ring
    }
}

impl<R> std::ops::DerefMut for DeviceStream<R> {
    fn deref_mut(&mut self) -> &mut R {
        &mut self.ring
    }
}

/// What [`open_stream`] asks for each candidate configuration: the ring for it and the
/// cpal stream (not started) whose callback feeds or drains that ring.
type BuiltStream<R> = (std::result::Result<cpal::Stream, cpal::BuildStreamError>, R);

/// Finds the named (or default) device, tries its stream configurations in turn with
/// `build`, and starts the first one that builds.
fn open_stream<R>(
    direction: Direction,
    name: Option<&str>,
    mut build: impl FnMut(&cpal::Device, &StreamConfig, SampleFormat, String) -> Result<BuiltStream<R>>,
) -> Result<DeviceStream<R>> {
    let device = find_device(direction, name)?;
    let dev_name = device.name().unwrap_or_default();
    let supported = choose_config(&device, direction)?;
    let mut last_err = String::new();
    for config in stream_configs(&supported) {
        let (built, ring) = build(
            &device,
            &config,
            supported.sample_format(),
            dev_name.clone(),
        )?;
        match built {
            Ok(stream) => {
                stream
                    .play()
                    .map_err(|e| AudioError::Backend(e.to_string()))?;
                return Ok(DeviceStream {
                    _stream: stream,
                    ring,
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

impl DeviceStream<CaptureRing> {
    /// Opens and starts the named input device, or the default one.
    pub fn open(name: Option<&str>) -> Result<Self> {
        open_stream(
            Direction::Input,
            name,
            |device, config, format, dev_name| {
                let (feeder, this) =
                    CaptureRing::emulated(dev_name, config.sample_rate.0, config.channels)?;
                let CaptureFeeder { mut ring, flags } = feeder;
                let cb_flags = flags.clone();
                let built = match format {
                    SampleFormat::I16 => device.build_input_stream(
                        config,
                        move |data: &[i16], _: &cpal::InputCallbackInfo| {
                            let it = data.iter().map(|s| f32::from_sample_(*s));
                            push_samples(&mut ring, &cb_flags, it, data.len());
                        },
                        error_callback(flags),
                        None,
                    ),
                    _ => device.build_input_stream(
                        config,
                        move |data: &[f32], _: &cpal::InputCallbackInfo| {
                            push_samples(&mut ring, &cb_flags, data.iter().copied(), data.len());
                        },
                        error_callback(flags),
                        None,
                    ),
                };
                Ok((built, this))
            },
        )
    }
}

/// The DSP-thread end of a playback ring: 48 kHz mono in, device-format samples out.
pub struct PlaybackRing {
    meta: DeviceMeta,
    ring: Producer<f32>,
    resampler: Resampler,
    resampled: Vec<f32>,
    interleaved: Vec<f32>,
}

impl std::fmt::Debug for PlaybackRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaybackRing")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for PlaybackRing {
    type Target = DeviceMeta;
    fn deref(&self) -> &DeviceMeta {
        &self.meta
    }
}

impl PlaybackRing {
    /// An emulated playback device; the returned drain plays the role of its callback.
    pub fn emulated(
        name: impl Into<String>,
        rate: u32,
        channels: u16,
    ) -> Result<(Self, PlaybackDrain)> {
        let channels = usize::from(channels.max(1));
        let (producer, consumer) = RingBuffer::new(ring_len(rate, channels));
        let flags = Arc::new(StreamFlags::new());
        Ok((
            Self {
                meta: DeviceMeta::new(name.into(), rate, channels, flags.clone()),
                ring: producer,
                resampler: Resampler::new(SAMPLE_RATE, rate)?,
                resampled: Vec::with_capacity(rate as usize),
                interleaved: Vec::with_capacity(ring_len(rate, channels)),
            },
            PlaybackDrain {
                ring: consumer,
                flags,
            },
        ))
    }

    /// Samples the callback had to fill with silence.
    pub fn underruns(&self) -> u64 {
        self.flags.xruns.load(Ordering::Relaxed)
    }

    /// Longest buffer the device callback has asked for, in microseconds (0 before the
    /// first callback). The queue must stay above this to avoid underruns.
    pub fn callback_micros(&self) -> u64 {
        self.micros(self.flags.max_callback.load(Ordering::Relaxed))
    }

    /// Microseconds until the device's next callback is expected, from the mean period
    /// of its callbacks so far (`None` before the second): audio can then be mixed just
    /// before it is taken rather than a whole callback ahead. 0 when it is overdue.
    pub fn next_callback_micros(&self) -> Option<u64> {
        let period = self.flags.callback_period()?;
        Some(period.saturating_sub(self.flags.since_callback()?))
    }

    /// Audio queued for the device, in microseconds.
    pub fn queued_micros(&self) -> u64 {
        self.micros((self.ring.buffer().capacity() - self.ring.slots()) as u64)
    }

    /// Queues 48 kHz mono samples for playback; what does not fit is dropped.
    pub fn write(&mut self, samples: &[f32]) -> Result<()> {
        self.resampled.clear();
        self.resampler.process(samples, &mut self.resampled)?;
        self.interleaved.clear();
        upmix(&self.resampled, self.meta.channels, &mut self.interleaved);
        let n =
            self.interleaved.len().min(self.ring.slots()) / self.meta.channels * self.meta.channels;
        if let Ok(chunk) = self.ring.write_chunk_uninit(n) {
            chunk.fill_from_iter(self.interleaved.iter().copied());
        }
        Ok(())
    }
}

impl DeviceStream<PlaybackRing> {
    /// Opens and starts the named output device, or the default one.
    pub fn open(name: Option<&str>) -> Result<Self> {
        open_stream(
            Direction::Output,
            name,
            |device, config, format, dev_name| {
                let (this, drain) =
                    PlaybackRing::emulated(dev_name, config.sample_rate.0, config.channels)?;
                let PlaybackDrain { mut ring, flags } = drain;
                let cb_flags = flags.clone();
                let built = match format {
                    SampleFormat::I16 => device.build_output_stream(
                        config,
                        move |data: &mut [i16], _: &cpal::OutputCallbackInfo| {
                            pull_samples(&mut ring, &cb_flags, data);
                        },
                        error_callback(flags),
                        None,
                    ),
                    _ => device.build_output_stream(
                        config,
                        move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
                            pull_samples(&mut ring, &cb_flags, data);
                        },
                        error_callback(flags),
                        None,
                    ),
                };
                Ok((built, this))
            },
        )
    }
}
