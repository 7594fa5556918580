//! Real-device round trip through cpal. Needs a sound server; in CI a PulseAudio null sink
//! (`module-null-sink`, default source = its monitor) stands in for a sound card.
//!
//! Runs only with `SALON_AUDIO_DEVICE_TESTS=1`, and then must pass; without it the tests
//! print a note and return.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use salon_audio::backend::device::{CaptureStream, Direction, list_devices};
use salon_audio::backend::synthetic::MemorySink;
use salon_audio::level::goertzel_amplitude;
use salon_audio::{AudioEngine, EngineConfig, InputSpec, OutputSpec, SAMPLE_RATE};

fn enabled(test: &str) -> bool {
    let on = std::env::var("SALON_AUDIO_DEVICE_TESTS").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("skipping {test}: set SALON_AUDIO_DEVICE_TESTS=1 with a sound server running");
    }
    on
}

/// Median 100 ms-block amplitude of `freq`.
fn tone_level(x: &[f32], freq: f32) -> f32 {
    let mut v: Vec<f32> = x
        .chunks_exact(4800)
        .map(|b| goertzel_amplitude(b, freq, SAMPLE_RATE))
        .collect();
    v.sort_by(f32::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[test]
fn devices_are_listed_with_a_default() {
    if !enabled("devices_are_listed_with_a_default") {
        return;
    }
    for dir in [Direction::Input, Direction::Output] {
        let list = list_devices(dir).unwrap();
        assert!(!list.is_empty(), "no {dir:?} devices");
        assert!(
            list.iter().any(|d| d.is_default),
            "{dir:?}: no default in {list:?}"
        );
    }
}

#[test]
fn tone_played_to_the_default_output_is_captured_from_the_default_input() {
    if !enabled("tone_played_to_the_default_output_is_captured_from_the_default_input") {
        return;
    }
    // Speaker side: a tone source whose packets loop back into its own mix, played on the
    // real output device.
    let config = EngineConfig {
        noise_suppression: false,
        // The loopback makes the far end equal the microphone: AEC would cancel the tone.
        echo_cancellation: false,
        ..EngineConfig::default()
    };
    let player: AudioEngine<u8> = AudioEngine::start(
        config,
        InputSpec::Tone(660.0, 0.3),
        OutputSpec::Device(None),
    )
    .expect("open the default output device");
    // Listener side: the real input device (the null sink's monitor) through the whole
    // send path, its packets looped into a mix kept in memory.
    let heard = MemorySink::new();
    let listener: AudioEngine<u8> = AudioEngine::start(
        config,
        InputSpec::Device(None),
        OutputSpec::Sink(Box::new(heard.clone())),
    )
    .expect("open the default input device");
    let start = Instant::now();
    let mut forwarded = 0;
    // Three seconds of audio through both devices, however long the machine takes (the
    // first capture callback alone can take ~1.5 s).
    while forwarded < 150 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "capture produced only {forwarded} frames in a minute"
        );
        while let Ok(p) = player.packets().try_recv() {
            player.push_packet(1, p).unwrap();
        }
        while let Ok(p) = listener.packets().try_recv() {
            assert_eq!(p.payload.len(), config.codec.frame_bytes());
            listener.push_packet(2, p).unwrap();
            forwarded += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    player.stop();
    listener.stop();
    let out = heard.snapshot();
    let tail = &out[out.len().saturating_sub(SAMPLE_RATE as usize)..];
    let level = tone_level(tail, 660.0);
    // Two trips through Opus and the device path; the level should survive within ~3 dB.
    assert!(
        (0.2..=0.45).contains(&level),
        "660 Hz came back at {level} (sent 0.3)"
    );
    assert!(tone_level(tail, 1000.0) < 0.02);
}

#[test]
fn capture_stream_delivers_48k_mono_without_overruns() {
    if !enabled("capture_stream_delivers_48k_mono_without_overruns") {
        return;
    }
    let mut cap = CaptureStream::open(None).unwrap();
    let mut buf = Vec::new();
    let start = Instant::now();
    // A second of audio, however long the first (slow) callback takes.
    while buf.len() < SAMPLE_RATE as usize {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} samples in a minute",
            buf.len()
        );
        cap.read(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!cap.failed());
    assert!(cap.callbacks() > 0);
    assert_eq!(cap.overruns(), 0);
}
