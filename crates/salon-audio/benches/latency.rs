//! Software-added latency, capture callback in → playback callback out, through the real
//! engine thread (encode → loopback "network" → jitter buffer → decode → mix) with
//! emulated devices whose callbacks run every 10 ms in real time.
//!
//! `cargo bench -p salon-audio --bench latency` prints p50/p90 per configuration
//! (`LATENCY_ONLY=10` or `=20`: only that frame duration, no jitter; `LATENCY_DEBUG=1`:
//! per-phase figures and jitter-buffer statistics).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use salon_audio::backend::device::{CaptureRing, PlaybackRing};
use salon_audio::{AudioEngine, CodecConfig, EngineConfig, FrameDuration, InputSpec, OutputSpec};

const RATE: u32 = 48_000;
const BLOCK: usize = 480; // 10 ms device callbacks
/// Bursts measured per device phase.
const BURSTS: usize = 6;
/// Offsets of the playback callbacks against the capture callbacks: real devices run
/// at an arbitrary phase to each other, and latency depends on it.
const PHASES_US: [u64; 8] = [0, 1_250, 2_500, 3_750, 5_000, 6_250, 7_500, 8_750];
const BURST_EVERY: usize = 30; // blocks (300 ms)
const BURST_LEN: usize = 10; // blocks (100 ms)

fn run(frame: FrameDuration, jitter_ms: u64, noise_suppression: bool, phase_us: u64) -> Vec<f64> {
    let (mut feeder, capture) = CaptureRing::emulated("emulated mic", RATE, 1).unwrap();
    let (playback, mut drain) = PlaybackRing::emulated("emulated speaker", RATE, 1).unwrap();
    let config = EngineConfig {
        codec: CodecConfig::for_frame(frame),
        noise_suppression,
        // The loopback makes the far end equal the microphone.
        echo_cancellation: false,
        ..EngineConfig::default()
    };
    let engine: AudioEngine<u8> = AudioEngine::start(
        config,
        InputSpec::Emulated(Box::new(capture)),
        OutputSpec::Emulated(Box::new(playback)),
    )
    .unwrap();
    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let burst_start = Arc::new(AtomicU64::new(u64::MAX));

    // "Network": loop packets back, each delayed by a uniform 0..=jitter.
    let net = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut in_flight: Vec<(Instant, salon_audio::AudioPacket)> = Vec::new();
            let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
            while !stop.load(Ordering::Relaxed) {
                while let Ok(p) = engine.packets().recv_timeout(Duration::from_micros(500)) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let d = if jitter_ms == 0 {
                        0
                    } else {
                        rng % (jitter_ms * 1000 + 1)
                    };
                    in_flight.push((Instant::now() + Duration::from_micros(d), p));
                }
                let now = Instant::now();
                let mut i = 0;
                while i < in_flight.len() {
                    if in_flight[i].0 <= now {
                        let (_, p) = in_flight.swap_remove(i);
                        let _ = engine.push_packet(1, p);
                    } else {
                        i += 1;
                    }
                }
            }
            if std::env::var("LATENCY_DEBUG").is_ok() {
                eprintln!("{:?}", engine.peer_stats(1));
            }
        })
    };

    // Capture "callback": silence, then a 100 ms 1 kHz burst every 300 ms.
    let cap = {
        let stop = stop.clone();
        let burst_start = burst_start.clone();
        std::thread::spawn(move || {
            let mut block = vec![0.0f32; BLOCK];
            let mut n = 0usize;
            let mut phase = 0.0f64;
            while !stop.load(Ordering::Relaxed) {
                let deadline = origin + Duration::from_micros(10_000 * n as u64);
                if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let pos = n % BURST_EVERY;
                // Skip the first 3 s: steady state is what a call lives in, and the
                // jitter buffer trims its start-up margin over a few 500 ms windows.
                let on = n > 300 && pos < BURST_LEN;
                for s in block.iter_mut() {
                    *s = if on { 0.5 * phase.sin() as f32 } else { 0.0 };
                    phase += std::f64::consts::TAU * 1000.0 / f64::from(RATE);
                }
                feeder.feed(&block);
                if on && pos == 0 {
                    burst_start.store(origin.elapsed().as_micros() as u64, Ordering::Release);
                }
                n += 1;
            }
        })
    };

    // Playback "callback": detect each burst's onset.
    let mut latencies = Vec::new();
    let mut out = vec![0.0f32; BLOCK];
    let mut n = 0usize;
    let mut armed_for = u64::MAX;
    let mut quiet_blocks = 0;
    while latencies.len() < BURSTS {
        let deadline = origin + Duration::from_micros(10_000 * n as u64 + phase_us);
        if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        drain.drain(&mut out);
        let now = origin.elapsed().as_micros() as u64;
        let start = burst_start.load(Ordering::Acquire);
        let loud = out.iter().position(|s| s.abs() > 0.1);
        match loud {
            Some(i) if start != u64::MAX && start != armed_for && quiet_blocks >= 5 => {
                let played = now + (i as u64 * 1_000_000 / u64::from(RATE));
                latencies.push((played.saturating_sub(start)) as f64 / 1000.0);
                armed_for = start;
                quiet_blocks = 0;
            }
            Some(_) => quiet_blocks = 0,
            None => quiet_blocks += 1,
        }
        n += 1;
        if n > 100 * 60 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = cap.join();
    let _ = net.join();
    latencies
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: run short.
    println!("software latency, capture callback in -> playback callback out (ms)");
    println!(
        "{:<32} {:>6} {:>6} {:>6} {:>6} {:>4}",
        "config", "p50", "p90", "min", "max", "n"
    );
    for (frame, jitter, ns) in [
        (FrameDuration::Ms20, 0, false),
        (FrameDuration::Ms10, 0, false),
        // RNNoise adds its 10 ms block; a tone burst is a poor probe for it (it treats a
        // steady tone as noise), so it is measured at 10 ms frames only.
        (FrameDuration::Ms10, 0, true),
        (FrameDuration::Ms20, 30, false),
        (FrameDuration::Ms10, 30, false),
    ] {
        // `LATENCY_ONLY=10` (or 20) measures just that frame duration without jitter.
        if let Ok(only) = std::env::var("LATENCY_ONLY")
            && (only != frame.millis().to_string() || jitter != 0 || ns)
        {
            continue;
        }
        let mut per_phase = Vec::new();
        let mut l: Vec<f64> = Vec::new();
        for &phase in &PHASES_US {
            let mut r = run(frame, jitter, ns, phase);
            r.sort_by(f64::total_cmp);
            per_phase.push(pct(&r, 0.5));
            l.extend(r);
        }
        l.sort_by(f64::total_cmp);
        let label = format!(
            "{} ms frames, jitter {jitter} ms{}",
            frame.millis(),
            if ns { ", NS on" } else { "" }
        );
        println!(
            "{label:<32} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>4}",
            pct(&l, 0.5),
            pct(&l, 0.9),
            pct(&l, 0.0),
            pct(&l, 1.0),
            l.len()
        );
        if std::env::var("LATENCY_DEBUG").is_ok() {
            println!("  per phase p50: {per_phase:.1?}");
        }
    }
}
