//! Salon's audio pipeline: capture → echo cancellation → noise suppression → Opus
//! (fixed-size CBR frames) → network (not here) → per-speaker adaptive jitter buffer →
//! decode → mixer with limiter → playback, plus file/synthetic backends so all of it runs
//! headless and deterministically.
//!
//! # For the node
//!
//! Start an [`AudioEngine`] (its own thread, not tokio's) with an input and an output:
//!
//! ```no_run
//! use salon_audio::{AudioEngine, AudioPacket, EngineConfig, InputSpec, OutputSpec};
//! # fn main() -> salon_audio::Result<()> {
//! let engine: AudioEngine<u32> = AudioEngine::start(
//!     EngineConfig::default(),
//!     InputSpec::Device(None),  // or Tone, Silence, Wav(path), None (audience)
//!     OutputSpec::Device(None), // or Null, Wav(path)
//! )?;
//! // Every frame period one packet, always `engine.frame_bytes()` bytes, muted or not:
//! let packet: AudioPacket = engine.packets().recv().map_err(|_| salon_audio::AudioError::EngineStopped)?;
//! # let peer_id = 7;
//! // ... send `packet.seq` and `packet.payload` to listeners; for what arrives:
//! engine.push_packet(peer_id, packet)?;
//! engine.set_muted(true)?;
//! let levels = engine.levels(); // input level, speaking flags per peer
//! # let _ = levels;
//! # Ok(())
//! # }
//! ```
//!
//! [`AudioEngine::control`] gives a cloneable `Send + Sync` handle for other tasks;
//! [`AudioEngine::events`] reports device loss and fallback. Device lists come from
//! [`backend::device::list_devices`]; switch with [`EngineControl::set_input`] /
//! [`EngineControl::set_output`].
//!
//! The layers are usable on their own and are what the tests drive on simulated time:
//! [`Sender`] (mute, push-to-talk, DSP, encode), [`Receiver`] (jitter buffers, decode,
//! volume, mix), [`JitterBuffer`], [`Encoder`]/[`Decoder`], [`netsim::Link`].

// Tests may panic on setup failures; library code may not.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod backend;
pub mod clock;
pub mod codec;
pub mod denoise;
#[cfg(feature = "aec")]
pub mod echo;
pub mod engine;
pub mod error;
pub mod jitter_buffer;
pub mod level;
pub mod mixer;
pub mod netsim;
pub mod payload;
pub mod receiver;
pub mod resample;
pub mod sender;

pub use backend::device::{CaptureRing, PlaybackRing};
pub use codec::{CodecConfig, Decoder, Encoder, FrameDuration, SAMPLE_RATE};
pub use engine::{
    AudioEngine, EngineConfig, EngineControl, EngineEvent, InputSpec, Levels, OutputSpec,
};
pub use error::{AudioError, Result};
pub use jitter_buffer::{AudioPacket, JitterBuffer, JitterConfig, JitterStats, Playout};
pub use level::Level;
pub use payload::PayloadEncoder;
pub use receiver::Receiver;
pub use sender::{Sender, TalkMode};
