//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong in `salon-audio`.
#[derive(Debug, Error)]
pub enum AudioError {
    /// libopus rejected a setting or failed to encode/decode.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// A PCM buffer handed to the codec did not hold exactly one frame.
    #[error("expected {expected} samples per frame, got {got}")]
    FrameLength {
        /// Samples one frame must hold.
        expected: usize,
        /// Samples that were given.
        got: usize,
    },
    /// The encoder produced a packet larger than the fixed frame size (bitrate set too high
    /// for the frame budget); the frame was not sent.
    #[error("encoded frame of {got} bytes exceeds the fixed frame size of {max} bytes")]
    FrameTooLarge {
        /// Bytes the encoder produced.
        got: usize,
        /// The fixed frame size.
        max: usize,
    },
    /// A received payload does not follow any known payload format (see
    /// [`crate::payload`]); it is treated as lost.
    #[error("malformed audio payload")]
    MalformedPayload,
    /// A codec setting is outside what Salon supports.
    #[error("invalid codec configuration: {0}")]
    InvalidConfig(&'static str),
    /// No audio device of the requested kind exists.
    #[error(
        "no {kind} audio device found: plug one in, or start PulseAudio/PipeWire, or pick a \
         device from the device list"
    )]
    NoDevice {
        /// "input" or "output".
        kind: &'static str,
    },
    /// A device with the requested name does not exist (any more).
    #[error("audio device {name:?} not found; choose one from the device list")]
    DeviceNotFound {
        /// The name that was asked for.
        name: String,
    },
    /// The device exists but offers no configuration Salon can use.
    #[error("audio device {name:?} has no usable configuration: {reason}")]
    UnsupportedDevice {
        /// The device's name.
        name: String,
        /// What the backend said.
        reason: String,
    },
    /// The audio host (ALSA, CoreAudio, WASAPI...) reported an error.
    #[error("audio backend: {0}")]
    Backend(String),
    /// The resampler could not be built or failed on a block.
    #[error("resampler: {0}")]
    Resample(String),
    /// Reading or writing a WAV file failed.
    #[error("wav file: {0}")]
    Wav(#[from] hound::Error),
    /// A WAV file has a format the file backend does not read.
    #[error("unsupported wav format: {0}")]
    WavFormat(String),
    /// The audio thread is gone (it stopped or panicked).
    #[error("the audio engine thread has stopped")]
    EngineStopped,
}

/// Result alias for this crate.
pub type Result<T, E = AudioError> = std::result::Result<T, E>;
