//! The engine thread on real time with synthetic backends: constant-size packets at a
//! constant rate, loopback of its own packets through the jitter buffer into the mix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use salon_audio::backend::synthetic::MemorySink;
use salon_audio::level::goertzel_amplitude;
use salon_audio::{AudioEngine, EngineConfig, InputSpec, OutputSpec, SAMPLE_RATE};

/// Generous bound on waiting for a condition: only reached if the behaviour is broken,
/// never because the machine is loaded.
const DEADLINE: Duration = Duration::from_secs(20);

/// Returns once the engine thread has run a whole loop iteration that started after this
/// call: every packet due by the time of the call is then in [`AudioEngine::packets`]
/// and clocked sinks have been written up to it. The first round trip is answered at the
/// top of an iteration whose clock reading is taken after it; the second is only answered
/// by the following iteration, after that one's packets were sent.
fn settle(engine: &AudioEngine<u32>) {
    engine.peer_stats(u32::MAX).unwrap();
    engine.peer_stats(u32::MAX).unwrap();
}

/// Frames of `frame` due in `elapsed` on a clocked input: one at 0, then one per period.
fn frames_due(elapsed: Duration, frame: Duration) -> usize {
    (elapsed.as_micros() / frame.as_micros()) as usize + 1
}

/// The strongest 523 Hz level over 300 ms windows (in 50 ms steps) of `out[..end]`.
fn best_tone_window(out: &[f32], end: usize) -> (f32, usize) {
    const WINDOW: usize = 14_400;
    let end = end.min(out.len());
    let mut best = (0.0f32, 0);
    let mut at = 0;
    while at + WINDOW <= end {
        let level = goertzel_amplitude(&out[at..at + WINDOW], 523.0, SAMPLE_RATE);
        if level > best.0 {
            best = (level, at);
        }
        at += 2_400;
    }
    best
}

#[test]
fn engine_sends_fixed_size_frames_and_plays_its_loopback_tone() {
    let sink = MemorySink::new();
    let config = EngineConfig {
        noise_suppression: false,
        // The loopback makes the far end equal the microphone: AEC would cancel the tone.
        echo_cancellation: false,
        ..EngineConfig::default()
    };
    let frame = Duration::from_micros(config.codec.frame.micros());
    // The engine's clock starts between these two instants.
    let before_start = Instant::now();
    let engine: AudioEngine<u32> = AudioEngine::start(
        config,
        InputSpec::Tone(523.0, 0.3),
        OutputSpec::Sink(Box::new(sink.clone())),
    )
    .unwrap();
    let start = Instant::now();
    let mut sizes = Vec::new();
    // Loop every packet back for at least 1.5 s, and until the tone has been heard, then
    // muted for at least 10 frames, and the jitter buffer has played more than 50 frames.
    // Each condition is waited for (a loaded machine delays the loopback), not assumed
    // to hold after a fixed time.
    let mut heard: Option<(f32, usize)> = None;
    let mut muted_from: Option<usize> = None;
    let mut played = 0;
    loop {
        let elapsed = start.elapsed();
        let muted_enough = muted_from.is_some_and(|m| sizes.len() >= m + 10);
        if elapsed >= Duration::from_millis(1500) && muted_enough && played > 50 {
            break;
        }
        assert!(
            elapsed < DEADLINE,
            "after {elapsed:?}: {} packets, tone {heard:?}, muted from {muted_from:?}, {played} played",
            sizes.len()
        );
        if let Ok(p) = engine.packets().recv_timeout(Duration::from_millis(100)) {
            sizes.push(p.payload.len());
            engine.push_packet(7, p).unwrap();
            if sizes.len() % 10 == 0 {
                if heard.is_none() {
                    // Only unmuted audio has been played so far.
                    let best = best_tone_window(&sink.snapshot(), usize::MAX);
                    heard = (best.0 > 0.2).then_some(best);
                }
                if heard.is_some() && elapsed > Duration::from_millis(700) {
                    engine.set_muted(true).unwrap();
                    muted_from.get_or_insert(sizes.len());
                }
                played = engine.peer_stats(7).unwrap().map_or(0, |s| s.played);
            }
        }
    }
    let loop_end = Instant::now();
    settle(&engine);
    while let Ok(p) = engine.packets().try_recv() {
        sizes.push(p.payload.len());
    }
    let settled = Instant::now();
    let levels = engine.levels();
    let stats = engine.peer_stats(7).unwrap().unwrap();
    engine.stop();
    assert!(sizes.iter().all(|&s| s == config.codec.frame_bytes()));
    // One 20 ms frame per period of the engine's clock: at least every frame due when the
    // loop ended (the engine had caught up by `settled`), at most those due by `settled`.
    let least = frames_due(loop_end - start, frame);
    let most = frames_due(settled - before_start, frame);
    assert!(
        (least..=most).contains(&sizes.len()),
        "{} packets, expected {least}..={most}",
        sizes.len()
    );
    let out = sink.snapshot();
    assert!(
        out.len() >= SAMPLE_RATE as usize,
        "{} samples played",
        out.len()
    );
    // The tone was heard before the microphone was muted.
    let (level, at) = heard.unwrap();
    assert!(level > 0.2, "tone level {level} at sample {at}");
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
    // Emulated device callbacks: 10 ms blocks, stereo, the speaker at 44.1 kHz. Play the
    // device for at least 600 ms and until 20 frames were sent: the engine paces a live
    // device's frames by the device and, after a stall of its own thread, resumes from
    // now rather than sending a burst, so how many frames a fixed wall-clock window holds
    // depends on how the machine schedules it.
    let start = Instant::now();
    let mut block = vec![0.1f32; 960];
    let mut out = vec![0.0f32; 882];
    let mut sent_before = 0;
    while start.elapsed() < Duration::from_millis(600) || sent_before < 20 {
        assert!(
            start.elapsed() < DEADLINE,
            "{sent_before} packets before unplug"
        );
        mic.feed(&block);
        speaker.drain(&mut out);
        std::thread::sleep(Duration::from_millis(10));
        while engine.packets().try_recv().is_ok() {
            sent_before += 1;
        }
    }
    mic.fail();
    speaker.fail();
    block.fill(0.0);
    let reported = |events: &[EngineEvent], dir: Direction| {
        // With a sound server the engine falls back to the default device; without one
        // it reports the loss. Either way the user is told.
        events.iter().any(|e| matches!(e,
            EngineEvent::DeviceFallback { direction, from, .. } if *direction == dir && from.starts_with("usb"))
            || matches!(e, EngineEvent::DeviceLost { direction, .. } if *direction == dir))
    };
    let unplugged = Instant::now();
    let mut events = Vec::new();
    while !(reported(&events, Direction::Input) && reported(&events, Direction::Output)) {
        assert!(unplugged.elapsed() < DEADLINE, "{events:?}");
        while let Ok(e) = engine.events().try_recv() {
            events.push(e);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Both losses are handled by now: the frames go on (silence while no mic), a second's
    // worth of them, however long a loaded machine takes to make them.
    while engine.packets().try_recv().is_ok() {}
    let told = Instant::now();
    let mut sent_after = 0;
    while sent_after < 50 {
        assert!(
            told.elapsed() < DEADLINE,
            "{sent_after} packets after the unplug"
        );
        while engine.packets().try_recv().is_ok() {
            sent_after += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    while let Ok(e) = engine.events().try_recv() {
        events.push(e);
    }
    engine.stop();
    for dir in [Direction::Input, Direction::Output] {
        assert!(reported(&events, dir), "{dir:?}: {events:?}");
    }
}
