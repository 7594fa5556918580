//! The audio engine: one dedicated thread (not tokio's) that owns the devices or their
//! file/synthetic twins, the [`Sender`] and the [`Receiver`], and talks to the node through
//! channels. This is the API the node uses:
//!
//! - [`AudioEngine::start`] with an [`InputSpec`] and an [`OutputSpec`];
//! - [`AudioEngine::packets`]: encoded frames to send, one per frame period, all of
//!   [`AudioEngine::frame_bytes`] bytes, muted or not (the payload's first byte is a
//!   format version, see [`crate::payload`]; malformed payloads are treated as lost);
//! - [`EngineControl::push_packet`]: frames received from a peer;
//! - [`EngineControl::levels`]: input and per-peer levels and speaking flags for the UI;
//! - setters for mute, push-to-talk, per-peer volume/mute, devices; [`AudioEngine::events`]
//!   reports device loss and fallback.

use std::hash::Hash;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver as ChanRx, Sender as ChanTx, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backend::device::{CaptureRing, CaptureStream, Direction, PlaybackRing, PlaybackStream};
use crate::backend::file::{WavSink, WavSource};
use crate::backend::synthetic::{NullSink, SilenceSource, ToneSource};
use crate::backend::{AudioSink, AudioSource};
use crate::clock::{Clock, RealClock};
use crate::codec::CodecConfig;
use crate::error::{AudioError, Result};
use crate::jitter_buffer::{AudioPacket, JitterConfig, JitterStats};
use crate::level::Level;
use crate::receiver::Receiver;
use crate::sender::{Sender, TalkMode};

/// Where the microphone signal comes from.
pub enum InputSpec {
    /// A capture device by name, or the default one.
    Device(Option<String>),
    /// A sine tone (Hz, peak amplitude).
    Tone(f32, f32),
    /// Digital silence.
    Silence,
    /// A WAV file (any rate/channels), followed by silence when it ends.
    Wav(PathBuf),
    /// Any other source, paced by the engine clock.
    Source(Box<dyn AudioSource>),
    /// An emulated device (see [`CaptureRing::emulated`]): a test or benchmark thread plays
    /// the device callback in real time.
    Emulated(Box<CaptureRing>),
    /// No microphone: nothing is sent (an audience member).
    None,
}

impl std::fmt::Debug for InputSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Device(n) => f.debug_tuple("Device").field(n).finish(),
            Self::Tone(hz, a) => f.debug_tuple("Tone").field(hz).field(a).finish(),
            Self::Silence => f.write_str("Silence"),
            Self::Wav(p) => f.debug_tuple("Wav").field(p).finish(),
            Self::Source(_) => f.write_str("Source(..)"),
            Self::Emulated(r) => f.debug_tuple("Emulated").field(r).finish(),
            Self::None => f.write_str("None"),
        }
    }
}

/// Where the mix goes.
pub enum OutputSpec {
    /// A playback device by name, or the default one.
    Device(Option<String>),
    /// Discard (still mixed, so levels work).
    Null,
    /// A 48 kHz mono 16-bit WAV file.
    Wav(PathBuf),
    /// Any other sink, paced by the engine clock.
    Sink(Box<dyn AudioSink>),
    /// An emulated device (see [`PlaybackRing::emulated`]).
    Emulated(Box<PlaybackRing>),
}

impl std::fmt::Debug for OutputSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Device(n) => f.debug_tuple("Device").field(n).finish(),
            Self::Null => f.write_str("Null"),
            Self::Wav(p) => f.debug_tuple("Wav").field(p).finish(),
            Self::Sink(_) => f.write_str("Sink(..)"),
            Self::Emulated(r) => f.debug_tuple("Emulated").field(r).finish(),
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// Codec settings (frame duration, bitrate, FEC).
    pub codec: CodecConfig,
    /// RNNoise on the microphone.
    pub noise_suppression: bool,
    /// WebRTC echo cancellation on the microphone (needs the `aec` feature).
    pub echo_cancellation: bool,
    /// Jitter-buffer tuning; `None` = defaults for the frame duration.
    pub jitter: Option<JitterConfig>,
    /// Audio kept queued for the playback device beyond the largest buffer its callback
    /// asks for: less risks underruns, more adds latency. Grows by itself after underruns.
    pub playback_margin: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            codec: CodecConfig::default(),
            noise_suppression: true,
            echo_cancellation: cfg!(feature = "aec"),
            jitter: None,
            playback_margin: Duration::from_millis(1),
        }
    }
}

/// Something the node (and the user) should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// A device failed (e.g. unplugged) and the engine switched to the default one.
    DeviceFallback {
        /// Which side.
        direction: Direction,
        /// The device that failed.
        from: String,
        /// The device now in use.
        to: String,
    },
    /// A device failed and no replacement could be opened; the engine keeps trying.
    DeviceLost {
        /// Which side.
        direction: Direction,
        /// Why.
        error: String,
    },
    /// A requested device switch failed; the previous device stays in use.
    SwitchFailed {
        /// Which side.
        direction: Direction,
        /// Why.
        error: String,
    },
    /// A device (re)opened.
    DeviceOpened {
        /// Which side.
        direction: Direction,
        /// Its name.
        name: String,
    },
}

/// Levels for the UI.
#[derive(Debug, Clone)]
pub struct Levels<K> {
    /// The local microphone (measured even while muted).
    pub input: Level,
    /// Whether the microphone currently reaches the network.
    pub transmitting: bool,
    /// Every remote speaker.
    pub peers: Vec<(K, Level)>,
}

impl<K> Default for Levels<K> {
    fn default() -> Self {
        Self {
            input: Level::default(),
            transmitting: false,
            peers: Vec::new(),
        }
    }
}

enum Command<K> {
    Packet(K, AudioPacket, Duration),
    Muted(bool),
    TalkMode(TalkMode),
    TalkKey(bool),
    NoiseSuppression(bool),
    EchoCancellation(bool),
    ExpectedLoss(u8),
    Volume(K, f32),
    PeerMuted(K, bool),
    RemovePeer(K),
    Input(InputSpec),
    Output(OutputSpec),
    Stats(K, SyncSender<Option<JitterStats>>),
    Stop,
}

struct Shared<K> {
    levels: Mutex<Levels<K>>,
    stop: std::sync::atomic::AtomicBool,
}

/// Handle to the running engine thread. Dropping it stops the thread. Settings and
/// received packets can also go through a cloneable [`EngineControl`] (see
/// [`AudioEngine::control`]), which the handle derefs to.
pub struct AudioEngine<K> {
    control: EngineControl<K>,
    packets: ChanRx<AudioPacket>,
    events: ChanRx<EngineEvent>,
    frame_bytes: usize,
    thread: Option<JoinHandle<()>>,
}

impl<K> std::fmt::Debug for AudioEngine<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioEngine")
            .field("frame_bytes", &self.frame_bytes)
            .finish_non_exhaustive()
    }
}

impl<K> std::ops::Deref for AudioEngine<K> {
    type Target = EngineControl<K>;
    fn deref(&self) -> &EngineControl<K> {
        &self.control
    }
}

/// A cloneable, `Send + Sync` handle for feeding packets and changing settings from any
/// thread or task.
pub struct EngineControl<K> {
    commands: ChanTx<Command<K>>,
    shared: Arc<Shared<K>>,
    clock: Arc<dyn Clock>,
}

impl<K> Clone for EngineControl<K> {
    fn clone(&self) -> Self {
        Self {
            commands: self.commands.clone(),
            shared: self.shared.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<K> std::fmt::Debug for EngineControl<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineControl").finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone + Send + 'static> AudioEngine<K> {
    /// Starts the engine on real time. Device errors (no device, unsupported format) are
    /// returned here.
    pub fn start(config: EngineConfig, input: InputSpec, output: OutputSpec) -> Result<Self> {
        Self::start_with_clock(config, input, output, Arc::new(RealClock::new()))
    }

    /// Starts the engine paced by `clock` (file/synthetic backends only make sense with a
    /// simulated clock; devices pace themselves).
    pub fn start_with_clock(
        config: EngineConfig,
        input: InputSpec,
        output: OutputSpec,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let mut sender = Sender::new(config.codec)?;
        sender.set_noise_suppression(config.noise_suppression);
        sender.set_echo_cancellation(config.echo_cancellation)?;
        let receiver = Receiver::with_jitter_config(
            config
                .jitter
                .unwrap_or_else(|| JitterConfig::new(config.codec.frame)),
        );
        let frame_bytes = sender.frame_bytes();
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let (pkt_tx, pkt_rx) = mpsc::channel();
        let (ev_tx, ev_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let shared = Arc::new(Shared {
            levels: Mutex::new(Levels::default()),
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        let thread_shared = shared.clone();
        let thread_clock = clock.clone();
        let thread = std::thread::Builder::new()
            .name("salon-audio".into())
            .spawn(move || {
                // Devices are opened on this thread: cpal streams need not be `Send`.
                let opened = Input::open(input).and_then(|i| Ok((i, Output::open(output)?)));
                let (input, output) = match opened {
                    Ok(io) => {
                        let _ = ready_tx.send(Ok(()));
                        io
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut worker = Worker {
                    config,
                    sender,
                    receiver,
                    input,
                    output,
                    clock: thread_clock,
                    packets: pkt_tx,
                    events: ev_tx,
                    shared: thread_shared,
                    in_buf: Vec::with_capacity(48_000),
                    out_frame: vec![0.0; config.codec.frame.samples()],
                    next_send: Duration::ZERO,
                    next_play: Duration::ZERO,
                    input_retry_at: Duration::ZERO,
                    output_retry_at: Duration::ZERO,
                    margin: config.playback_margin,
                    underruns_seen: 0,
                    fill_in: None,
                    chunk: vec![0.0; MIX_CHUNK],
                    far_end: Vec::with_capacity(4 * FAR_END_BLOCK),
                };
                worker.run(cmd_rx);
            })
            .map_err(|e| AudioError::Backend(format!("cannot start audio thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => return Err(AudioError::EngineStopped),
        }
        Ok(Self {
            control: EngineControl {
                commands: cmd_tx,
                shared,
                clock,
            },
            packets: pkt_rx,
            events: ev_rx,
            frame_bytes,
            thread: Some(thread),
        })
    }

    /// Bytes in every encoded frame.
    pub fn frame_bytes(&self) -> usize {
        self.frame_bytes
    }

    /// Encoded frames to send to every listener, in order, one per frame period.
    pub fn packets(&self) -> &ChanRx<AudioPacket> {
        &self.packets
    }

    /// Device events.
    pub fn events(&self) -> &ChanRx<EngineEvent> {
        &self.events
    }

    /// A cloneable handle for other threads.
    pub fn control(&self) -> EngineControl<K> {
        self.control.clone()
    }

    /// Stops the engine and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.control.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<K: Eq + Hash + Clone + Send + 'static> EngineControl<K> {
    fn send(&self, cmd: Command<K>) -> Result<()> {
        self.commands
            .send(cmd)
            .map_err(|_| AudioError::EngineStopped)
    }

    /// Hands over a frame received from `from`; its arrival time is taken now.
    pub fn push_packet(&self, from: K, packet: AudioPacket) -> Result<()> {
        self.send(Command::Packet(from, packet, self.clock.now()))
    }

    /// Mutes the microphone (frames keep flowing, as silence).
    pub fn set_muted(&self, muted: bool) -> Result<()> {
        self.send(Command::Muted(muted))
    }

    /// Open microphone or push-to-talk.
    pub fn set_talk_mode(&self, mode: TalkMode) -> Result<()> {
        self.send(Command::TalkMode(mode))
    }

    /// Push-to-talk key state.
    pub fn set_talk_key(&self, pressed: bool) -> Result<()> {
        self.send(Command::TalkKey(pressed))
    }

    /// Noise suppression on or off.
    pub fn set_noise_suppression(&self, on: bool) -> Result<()> {
        self.send(Command::NoiseSuppression(on))
    }

    /// Echo cancellation on or off (ignored without the `aec` feature).
    pub fn set_echo_cancellation(&self, on: bool) -> Result<()> {
        self.send(Command::EchoCancellation(on))
    }

    /// Packet loss listeners report, in percent, to tune FEC.
    pub fn set_expected_loss(&self, pct: u8) -> Result<()> {
        self.send(Command::ExpectedLoss(pct))
    }

    /// A peer's playback volume (1.0 = unchanged).
    pub fn set_peer_volume(&self, peer: K, volume: f32) -> Result<()> {
        self.send(Command::Volume(peer, volume))
    }

    /// Mutes a peer locally.
    pub fn set_peer_muted(&self, peer: K, muted: bool) -> Result<()> {
        self.send(Command::PeerMuted(peer, muted))
    }

    /// Forgets a peer (left the stage).
    pub fn remove_peer(&self, peer: K) -> Result<()> {
        self.send(Command::RemovePeer(peer))
    }

    /// Switches the input; on failure the old one stays and an event says why.
    pub fn set_input(&self, input: InputSpec) -> Result<()> {
        self.send(Command::Input(input))
    }

    /// Switches the output; on failure the old one stays and an event says why.
    pub fn set_output(&self, output: OutputSpec) -> Result<()> {
        self.send(Command::Output(output))
    }

    /// Latest levels.
    pub fn levels(&self) -> Levels<K> {
        self.shared
            .levels
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// Jitter-buffer statistics for one peer.
    pub fn peer_stats(&self, peer: K) -> Result<Option<JitterStats>> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Command::Stats(peer, tx))?;
        rx.recv().map_err(|_| AudioError::EngineStopped)
    }
}

impl<K> Drop for AudioEngine<K> {
    fn drop(&mut self) {
        // Without `K: Send` bounds here we cannot build a `Stop`; tell the thread through
        // the shared flag instead (control clones may keep the channel open).
        self.control
            .shared
            .stop
            .store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Input {
    Device(Box<CaptureStream>),
    Ring(Box<CaptureRing>),
    Clocked(Box<dyn AudioSource>),
    None,
    /// The device failed and no replacement is open yet.
    Lost,
}

impl Input {
    fn ring(&mut self) -> Option<&mut CaptureRing> {
        match self {
            Self::Device(d) => Some(d),
            Self::Ring(r) => Some(r),
            _ => None,
        }
    }

    fn open(spec: InputSpec) -> Result<Self> {
        Ok(match spec {
            InputSpec::Device(name) => {
                Self::Device(Box::new(CaptureStream::open(name.as_deref())?))
            }
            InputSpec::Tone(hz, amp) => Self::Clocked(Box::new(ToneSource::new(hz, amp))),
            InputSpec::Silence => Self::Clocked(Box::new(SilenceSource)),
            InputSpec::Wav(path) => Self::Clocked(Box::new(WavSource::open(path)?)),
            InputSpec::Source(s) => Self::Clocked(s),
            InputSpec::Emulated(r) => Self::Ring(r),
            InputSpec::None => Self::None,
        })
    }
}

enum Output {
    Device(Box<PlaybackStream>),
    Ring(Box<PlaybackRing>),
    Clocked(Box<dyn AudioSink>),
    Lost,
}

impl Output {
    fn ring(&mut self) -> Option<&mut PlaybackRing> {
        match self {
            Self::Device(d) => Some(d),
            Self::Ring(r) => Some(r),
            _ => None,
        }
    }

    fn open(spec: OutputSpec) -> Result<Self> {
        Ok(match spec {
            OutputSpec::Device(name) => {
                Self::Device(Box::new(PlaybackStream::open(name.as_deref())?))
            }
            OutputSpec::Null => Self::Clocked(Box::new(NullSink::default())),
            OutputSpec::Wav(path) => Self::Clocked(Box::new(WavSink::create(path)?)),
            OutputSpec::Sink(s) => Self::Clocked(s),
            OutputSpec::Emulated(r) => Self::Ring(r),
        })
    }
}

/// How often the loop polls devices; well under a frame.
const POLL: Duration = Duration::from_millis(1);
/// Captured audio held back at most, in frames, before the oldest is dropped.
const MAX_CAPTURE_BACKLOG: usize = 3;
/// How long before a playback callback is due (beyond the margin) the engine mixes for it.
const JIT_SLACK: Duration = Duration::from_micros(500);
/// Device-paced mixing granularity: 1 ms at 48 kHz. The queue is filled in these steps
/// up to a callback plus the margin, so what is left over after a callback (latency) is
/// the margin plus at most one chunk.
const MIX_CHUNK: usize = 48;
/// Block size the far-end reference is handed over in (the echo canceller's 10 ms).
const FAR_END_BLOCK: usize = 480;
/// Cap on the self-tuned playback margin.
const MAX_MARGIN: Duration = Duration::from_millis(40);
/// How often to retry opening a default device after losing one.
const RETRY: Duration = Duration::from_secs(1);

struct Worker<K> {
    config: EngineConfig,
    sender: Sender,
    receiver: Receiver<K>,
    input: Input,
    output: Output,
    clock: Arc<dyn Clock>,
    packets: ChanTx<AudioPacket>,
    events: ChanTx<EngineEvent>,
    shared: Arc<Shared<K>>,
    in_buf: Vec<f32>,
    out_frame: Vec<f32>,
    next_send: Duration,
    next_play: Duration,
    /// When to look for a default device again after losing one, per direction (a lost
    /// microphone's failed retries must not postpone the speaker's).
    input_retry_at: Duration,
    output_retry_at: Duration,
    margin: Duration,
    underruns_seen: u64,
    /// Time until the playback device wants audio mixed (just-in-time mixing).
    fill_in: Option<Duration>,
    chunk: Vec<f32>,
    far_end: Vec<f32>,
}

impl<K: Eq + Hash + Clone> Worker<K> {
    fn run(&mut self, commands: ChanRx<Command<K>>) {
        let frame = Duration::from_micros(self.config.codec.frame.micros());
        let start = self.clock.now();
        self.next_send = start;
        self.next_play = start;
        loop {
            loop {
                match commands.try_recv() {
                    Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => {
                        self.finish();
                        return;
                    }
                    Ok(cmd) => self.handle(cmd),
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            if self.shared.stop.load(std::sync::atomic::Ordering::Acquire) {
                self.finish();
                return;
            }
            let now = self.clock.now();
            self.capture(now, frame);
            if self.encode().is_err() {
                // Only a mis-sized frame can fail here, which `capture` never produces.
                self.in_buf.clear();
            }
            self.play(now, frame);
            self.publish_levels();
            self.check_devices(now);
            let mut wake = now + POLL;
            if let Some(fill_in) = self.fill_in {
                wake = wake.min(now + fill_in);
            }
            if matches!(self.input, Input::Clocked(_)) {
                wake = wake.min(self.next_send);
            }
            if matches!(self.output, Output::Clocked(_)) {
                wake = wake.min(self.next_play);
            }
            if wake > now {
                self.clock.sleep_until(wake);
            } else if self.clock.now() == now {
                // A simulated clock does not move by itself.
                self.clock.sleep_until(now + POLL);
            }
        }
    }

    fn handle(&mut self, cmd: Command<K>) {
        match cmd {
            Command::Packet(from, p, at) => {
                let _ = self.receiver.push(from, p, at);
            }
            Command::Muted(m) => self.sender.set_muted(m),
            Command::TalkMode(m) => self.sender.set_talk_mode(m),
            Command::TalkKey(k) => self.sender.set_talk_key(k),
            Command::NoiseSuppression(on) => self.sender.set_noise_suppression(on),
            Command::EchoCancellation(on) => {
                let _ = self.sender.set_echo_cancellation(on);
            }
            Command::ExpectedLoss(p) => {
                let _ = self.sender.set_expected_loss(p);
            }
            Command::Volume(k, v) => {
                let _ = self.receiver.set_volume(&k, v);
            }
            Command::PeerMuted(k, m) => {
                let _ = self.receiver.set_muted(&k, m);
            }
            Command::RemovePeer(k) => self.receiver.remove(&k),
            Command::Input(spec) => match Input::open(spec) {
                Ok(i) => {
                    if let Input::Device(d) = &i {
                        self.event(EngineEvent::DeviceOpened {
                            direction: Direction::Input,
                            name: d.name().to_owned(),
                        });
                    }
                    self.input = i;
                    self.in_buf.clear();
                    self.next_send = self.clock.now();
                }
                Err(e) => self.event(EngineEvent::SwitchFailed {
                    direction: Direction::Input,
                    error: e.to_string(),
                }),
            },
            Command::Output(spec) => match Output::open(spec) {
                Ok(o) => {
                    if let Output::Device(d) = &o {
                        self.event(EngineEvent::DeviceOpened {
                            direction: Direction::Output,
                            name: d.name().to_owned(),
                        });
                    }
                    if let Output::Clocked(s) = &mut self.output {
                        let _ = s.finish();
                    }
                    self.output = o;
                    self.underruns_seen = 0;
                    self.next_play = self.clock.now();
                }
                Err(e) => self.event(EngineEvent::SwitchFailed {
                    direction: Direction::Output,
                    error: e.to_string(),
                }),
            },
            Command::Stats(k, reply) => {
                let _ = reply.send(self.receiver.stats(&k));
            }
            Command::Stop => {}
        }
    }

    fn event(&self, e: EngineEvent) {
        let _ = self.events.send(e);
    }

    fn capture(&mut self, now: Duration, frame: Duration) {
        let n = self.sender.frame_samples();
        match &mut self.input {
            Input::Device(_) | Input::Ring(_) => {
                if let Some(cap) = self.input.ring() {
                    let _ = cap.read(&mut self.in_buf);
                }
                // Bound the delay after a burst from the device (e.g. after a stall).
                if self.in_buf.len() > MAX_CAPTURE_BACKLOG * n {
                    let excess = self.in_buf.len() - (MAX_CAPTURE_BACKLOG - 1) * n;
                    self.in_buf.drain(..excess);
                }
                // The device is late (starting up, stalled, slower clock): send silence
                // on time so the network still sees a constant packet rate.
                if self.next_send + frame / 2 <= now && self.in_buf.len() < n {
                    self.in_buf.resize(n, 0.0);
                    if self.next_send + 2 * frame <= now {
                        // Far behind (the thread was descheduled): resume from now rather
                        // than send a burst.
                        self.next_send = now;
                    }
                }
            }
            Input::Clocked(src) => {
                while self.next_send <= now {
                    let start = self.in_buf.len();
                    self.in_buf.resize(start + n, 0.0);
                    // A short read (end of file) leaves zeros: silence keeps flowing.
                    src.read(&mut self.in_buf[start..]);
                    self.next_send += frame;
                }
            }
            Input::None => {}
            Input::Lost => {
                // Keep the constant packet rate while the microphone is gone.
                while self.next_send <= now {
                    self.in_buf.resize(self.in_buf.len() + n, 0.0);
                    self.next_send += frame;
                }
            }
        }
    }

    fn encode(&mut self) -> Result<()> {
        let n = self.sender.frame_samples();
        let mut used = 0;
        let device_paced = matches!(self.input, Input::Device(_) | Input::Ring(_));
        let frame = Duration::from_micros(self.config.codec.frame.micros());
        while self.in_buf.len() - used >= n {
            let packet = self.sender.process(&self.in_buf[used..used + n])?;
            used += n;
            let _ = self.packets.send(packet);
            if device_paced {
                // Deadline for the next frame; see `capture`.
                self.next_send += frame;
            }
        }
        self.in_buf.drain(..used);
        Ok(())
    }

    fn play(&mut self, now: Duration, frame: Duration) {
        self.fill_in = None;
        if let Some(pb) = self.output.ring() {
            // The device pulls: keep just over one callback's worth queued. Before the
            // first callback its size is unknown, so assume a frame.
            let underruns = pb.underruns();
            if underruns > self.underruns_seen && pb.callbacks() > 100 {
                // Underran in steady state: this device needs more slack.
                self.margin = (self.margin + Duration::from_millis(2)).min(MAX_MARGIN);
            }
            self.underruns_seen = underruns;
            let callback = match pb.callback_micros() {
                0 => frame.as_micros() as u64,
                c => c,
            };
            let margin = self.margin.as_micros() as u64;
            // Mix just in time: until the next callback is close, nothing drains, so
            // audio mixed now would only wait in the queue, while packets arriving
            // meanwhile could have made it. Fill when the callback is due within the
            // margin (which grows after underruns, moving this earlier) plus a little
            // for the wake-up; `run` wakes for that moment.
            let lead = margin + JIT_SLACK.as_micros() as u64;
            if let Some(next) = pb.next_callback_micros()
                && next > lead
            {
                self.fill_in = Some(Duration::from_micros(next - lead));
                return;
            }
            let target = callback + margin;
            // Mix in small chunks: playout then follows the device with 1 ms
            // granularity instead of a whole codec frame, which is what lets the jitter
            // buffer trim its delay below a frame.
            while pb.queued_micros() < target {
                self.receiver.mix_into(now, &mut self.chunk);
                self.far_end.extend_from_slice(&self.chunk);
                if pb.write(&self.chunk).is_err() {
                    break;
                }
            }
            // The echo canceller takes 10 ms blocks.
            let whole = self.far_end.len() / FAR_END_BLOCK * FAR_END_BLOCK;
            if whole > 0 {
                self.sender.far_end(&self.far_end[..whole]);
                self.far_end.drain(..whole);
            }
            return;
        }
        match &mut self.output {
            // Device-paced: handled above.
            Output::Device(_) | Output::Ring(_) => {}
            Output::Clocked(sink) => {
                while self.next_play <= now {
                    self.receiver.mix_into(self.next_play, &mut self.out_frame);
                    self.sender.far_end(&self.out_frame);
                    let _ = sink.write(&self.out_frame);
                    self.next_play += frame;
                }
            }
            Output::Lost => {
                // Keep jitter buffers draining so they do not fill up while deaf.
                while self.next_play <= now {
                    self.receiver.mix_into(self.next_play, &mut self.out_frame);
                    self.next_play += frame;
                }
            }
        }
    }

    fn publish_levels(&self) {
        if let Ok(mut l) = self.shared.levels.lock() {
            l.input = self.sender.level();
            l.transmitting = self.sender.transmitting() && !matches!(self.input, Input::None);
            l.peers = self.receiver.levels();
        }
    }

    fn check_devices(&mut self, now: Duration) {
        let input_failed = match &self.input {
            Input::Device(c) => c.failed().then(|| c.name().to_owned()),
            Input::Ring(c) => c.failed().then(|| c.name().to_owned()),
            Input::Lost => (now >= self.input_retry_at).then(String::new),
            _ => None,
        };
        if let Some(from) = input_failed {
            match CaptureStream::open(None) {
                Ok(c) => {
                    self.event(EngineEvent::DeviceFallback {
                        direction: Direction::Input,
                        from,
                        to: c.name().to_owned(),
                    });
                    self.input = Input::Device(Box::new(c));
                    self.next_send = now;
                }
                Err(e) => {
                    if !matches!(self.input, Input::Lost) {
                        self.event(EngineEvent::DeviceLost {
                            direction: Direction::Input,
                            error: e.to_string(),
                        });
                        self.next_send = now;
                    }
                    self.input = Input::Lost;
                    self.input_retry_at = now + RETRY;
                }
            }
        }
        let output_failed = match &self.output {
            Output::Device(p) => p.failed().then(|| p.name().to_owned()),
            Output::Ring(p) => p.failed().then(|| p.name().to_owned()),
            Output::Lost => (now >= self.output_retry_at).then(String::new),
            _ => None,
        };
        if let Some(from) = output_failed {
            match PlaybackStream::open(None) {
                Ok(p) => {
                    self.event(EngineEvent::DeviceFallback {
                        direction: Direction::Output,
                        from,
                        to: p.name().to_owned(),
                    });
                    self.output = Output::Device(Box::new(p));
                    self.underruns_seen = 0;
                }
                Err(e) => {
                    if !matches!(self.output, Output::Lost) {
                        self.event(EngineEvent::DeviceLost {
                            direction: Direction::Output,
                            error: e.to_string(),
                        });
                        self.next_play = now;
                    }
                    self.output = Output::Lost;
                    self.output_retry_at = now + RETRY;
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Output::Clocked(s) = &mut self.output {
            let _ = s.finish();
        }
    }
}
