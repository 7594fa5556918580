//! Acoustic echo cancellation with WebRTC's audio processing module (AEC, delay-agnostic,
//! extended filter): the far end (what the speakers play) is subtracted from the
//! microphone so remote speakers do not hear themselves.

use webrtc_audio_processing as webrtc;

use crate::error::{AudioError, Result};

/// WebRTC processes 10 ms blocks.
pub const BLOCK: usize = webrtc::NUM_SAMPLES_PER_FRAME as usize;

/// An echo canceller for 48 kHz mono.
pub struct EchoCanceller {
    processor: webrtc::Processor,
}

impl std::fmt::Debug for EchoCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoCanceller").finish_non_exhaustive()
    }
}

impl EchoCanceller {
    /// A canceller that finds the echo delay by itself.
    pub fn new() -> Result<Self> {
        let init = webrtc::InitializationConfig {
            num_capture_channels: 1,
            num_render_channels: 1,
            ..webrtc::InitializationConfig::default()
        };
        let mut processor = webrtc::Processor::new(&init)
            .map_err(|e| AudioError::Backend(format!("echo canceller: {e}")))?;
        processor.set_config(webrtc::Config {
            echo_cancellation: Some(webrtc::EchoCancellation {
                suppression_level: webrtc::EchoCancellationSuppressionLevel::High,
                // Device latency is unknown and varies with the host: let AEC find it.
                enable_delay_agnostic: true,
                enable_extended_filter: true,
                stream_delay_ms: None,
            }),
            enable_high_pass_filter: true,
            ..webrtc::Config::default()
        });
        Ok(Self { processor })
    }

    /// Feeds what is about to be played (any multiple of [`BLOCK`] samples).
    pub fn far_end(&mut self, played: &[f32]) {
        let mut block = [0.0f32; BLOCK];
        for chunk in played.chunks_exact(BLOCK) {
            block.copy_from_slice(chunk);
            // Errors only arise from a misconfigured stream; the audio is unaffected.
            let _ = self.processor.process_render_frame(&mut block);
        }
    }

    /// Removes echo from captured samples in place (any multiple of [`BLOCK`]).
    pub fn near_end(&mut self, captured: &mut [f32]) {
        for chunk in captured.chunks_exact_mut(BLOCK) {
            let _ = self.processor.process_capture_frame(chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::rms;

    /// Speech-like far-end: noise bursts shaped by a slow envelope.
    fn far(i: usize, x: &mut u32) -> f32 {
        *x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (*x >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
        let env = 0.5 + 0.5 * (i as f32 / 48_000.0 * std::f32::consts::TAU * 3.0).sin();
        0.3 * noise * env
    }

    #[test]
    fn echo_of_the_far_end_is_removed_from_the_microphone() {
        let mut aec = EchoCanceller::new().unwrap();
        let delay = 40 * 48; // 40 ms acoustic path
        let mut x = 5;
        let far_sig: Vec<f32> = (0..48_000 * 8).map(|i| far(i, &mut x)).collect();
        let mut before = 0.0;
        let mut after = 0.0;
        for (b, block) in far_sig.chunks_exact(BLOCK).enumerate() {
            aec.far_end(block);
            let start = b * BLOCK;
            let mut mic: Vec<f32> = (start..start + BLOCK)
                .map(|i| {
                    if i >= delay {
                        0.5 * far_sig[i - delay]
                    } else {
                        0.0
                    }
                })
                .collect();
            let r0 = rms(&mic);
            aec.near_end(&mut mic);
            // Judge the last 3 s, after convergence.
            if start > 48_000 * 5 {
                before += r0 * r0;
                after += rms(&mic).powi(2);
            }
        }
        let erle_db = 10.0 * (before / after.max(1e-12)).log10();
        eprintln!("ERLE {erle_db:.1} dB");
        assert!(erle_db > 10.0, "echo reduced by only {erle_db:.1} dB");
    }
}
