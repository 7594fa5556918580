//! The engine thread on real time with synthetic backends: constant-size packets at a
//! constant rate, loopback of its own packets through the jitter buffer into the mix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use salon_audio::backend::synthetic::MemorySink;
use salon_audio::level::goertzel_amplitude;
use salon_audio::{AudioEngine, EngineConfig, InputSpec, OutputSpec, SAMPLE_RATE};

#[test]
fn engine_sends_fixed_size_frames_and_plays_its_loopback_tone() {
    let sink = MemorySink::new();
    let config = EngineConfig {
        noise_suppression: false,
        // The loopback makes the far end equal the microphone: AEC would cancel the tone.
        echo_cancellation: false,
        ..EngineConfig::default()
    };
    let engine: AudioEngine<u32> = AudioEngine::start(
        config,
        InputSpec::Tone(523.0, 0.3),
        OutputSpec::Sink(Box::new(sink.clone())),
    )
    .unwrap();
    let start = Instant::now();
    let mut sizes = Vec::new();
    while start.elapsed() < Duration::from_millis(1500) {
        if let Ok(p) = engine.packets().recv_timeout(Duration::from_millis(100)) {
            sizes.push(p.payload.len());
            if start.elapsed() > Duration::from_millis(700) && sizes.len() % 10 == 0 {
                engine.set_muted(true).unwrap();
            }
            engine.push_packet(7, p).unwrap();
        }
    }
    let levels = engine.levels();
    let stats = engine.peer_stats(7).unwrap().unwrap();
    engine.stop();
    assert!(sizes.iter().all(|&s| s == config.codec.frame_bytes()));
    // 1.5 s of 20 ms frames, give or take scheduling.
    assert!((65..=80).contains(&sizes.len()), "{} packets", sizes.len());
    let out = sink.snapshot();
    assert!(
        out.len() >= SAMPLE_RATE as usize,
        "{} samples played",
        out.len()
    );
    let heard = goertzel_amplitude(&out[9_600..24_000], 523.0, SAMPLE_RATE);
    assert!(heard > 0.2, "tone level {heard}");
    assert_eq!(levels.peers.len(), 1);
    assert!(stats.played > 50, "{stats:?}");
}

#[test]
fn missing_wav_file_is_reported_at_start() {
    let r: Result<AudioEngine<u32>, _> = AudioEngine::start(
        EngineConfig::default(),
        InputSpec::Wav("/nonexistent/salon.wav".into()),
        OutputSpec::Null,
    );
    assert!(matches!(r, Err(salon_audio::AudioError::Wav(_))));
}
