//! Salon's audio pipeline: capture → noise suppression → Opus (fixed-size CBR frames) →
//! network (not here) → per-speaker adaptive jitter buffer → decode → mixer with limiter →
//! playback, plus file/synthetic backends so all of it runs headless and deterministically.

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
pub use receiver::Receiver;
pub use sender::{Sender, TalkMode};
