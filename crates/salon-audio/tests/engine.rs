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

#[test]
fn unplugged_devices_are_reported_and_packets_keep_flowing() {
    use salon_audio::EngineEvent;
    use salon_audio::backend::device::{CaptureRing, Direction, PlaybackRing};

    let (mut mic, capture) = CaptureRing::emulated("usb mic", 48_000, 2).unwrap();
    let (playback, mut speaker) = PlaybackRing::emulated("usb speaker", 44_100, 2).unwrap();
    let config = EngineConfig {
        noise_suppression: false,
        echo_cancellation: false,
        ..EngineConfig::default()
    };
    let engine: AudioEngine<u32> = AudioEngine::start(
        config,
        InputSpec::Emulated(Box::new(capture)),
        OutputSpec::Emulated(Box::new(playback)),
    )
    .unwrap();
    // Emulated device callbacks: 10 ms blocks, stereo, the speaker at 44.1 kHz.
    let start = Instant::now();
    let mut block = vec![0.1f32; 960];
    let mut out = vec![0.0f32; 882];
    let mut sent_before = 0;
    let mut n = 0u32;
    while start.elapsed() < Duration::from_millis(600) {
        mic.feed(&block);
        speaker.drain(&mut out);
        std::thread::sleep(Duration::from_millis(10));
        n += 1;
        while engine.packets().try_recv().is_ok() {
            sent_before += 1;
        }
    }
    assert!(
        n > 0 && sent_before >= 20,
        "{sent_before} packets before unplug"
    );
    mic.fail();
    speaker.fail();
    block.fill(0.0);
    let mut events = Vec::new();
    let mut sent_after = 0;
    let unplugged = Instant::now();
    while unplugged.elapsed() < Duration::from_millis(1000) {
        while let Ok(e) = engine.events().try_recv() {
            events.push(e);
        }
        while engine.packets().try_recv().is_ok() {
            sent_after += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    engine.stop();
    for dir in [Direction::Input, Direction::Output] {
        // With a sound server the engine falls back to the default device; without one
        // it reports the loss. Either way the user is told.
        assert!(
            events.iter().any(|e| matches!(e,
                EngineEvent::DeviceFallback { direction, from, .. } if *direction == dir && from.starts_with("usb"))
                || matches!(e, EngineEvent::DeviceLost { direction, .. } if *direction == dir)),
            "{dir:?}: {events:?}"
        );
    }
    // The constant packet rate survives the unplug (silence while no mic).
    assert!(
        sent_after >= 40,
        "{sent_after} packets in the second after unplug"
    );
}
