//! CPU cost of one sender (noise suppression, echo cancellation, Opus encode) plus seven
//! received streams (jitter buffer, Opus decode, mix, limiter), as a share of one core.
//!
//! `cargo bench -p salon-audio --bench cpu`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use salon_audio::backend::AudioSource;
use salon_audio::backend::synthetic::ToneSource;
use salon_audio::{AudioPacket, CodecConfig, FrameDuration, Receiver, Sender};

const SECONDS: u64 = 20;
const REMOTES: u32 = 7;

/// `loss`: share of the remote packets dropped (the senders then carry copies, as
/// receiver reports would make them).
fn run(frame: FrameDuration, ns: bool, aec: bool, loss: f64) -> f64 {
    let codec = CodecConfig {
        expected_loss_pct: (loss * 100.0).round() as u8,
        ..CodecConfig::for_frame(frame)
    };
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut lost = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1_000_000) as f64 / 1_000_000.0 < loss
    };
    let n = frame.samples();
    let frames = (SECONDS * 1_000_000 / frame.micros()) as usize;
    // The remote streams are encoded elsewhere: prepare them untimed.
    let remote: Vec<Vec<AudioPacket>> = (0..REMOTES)
        .map(|r| {
            let mut s = Sender::new(codec).unwrap();
            s.set_noise_suppression(false);
            let mut tone = ToneSource::new(200.0 + 90.0 * r as f32, 0.2);
            let mut pcm = vec![0.0; n];
            (0..frames)
                .map(|_| {
                    tone.read(&mut pcm);
                    s.process(&pcm).unwrap()
                })
                .collect()
        })
        .collect();
    let mut sender = Sender::new(codec).unwrap();
    sender.set_noise_suppression(ns);
    sender.set_echo_cancellation(aec).unwrap();
    let mut rx: Receiver<u32> = Receiver::new(frame);
    let mut mic = ToneSource::new(440.0, 0.3);
    let mut pcm = vec![0.0; n];
    let mut chunk = vec![0.0; 48];
    let mut played = Vec::with_capacity(n);
    let start = Instant::now();
    for f in 0..frames {
        let now = Duration::from_micros(f as u64 * frame.micros());
        mic.read(&mut pcm);
        let packet = sender.process(&pcm).unwrap();
        std::hint::black_box(&packet);
        for (r, stream) in remote.iter().enumerate() {
            if !lost() {
                rx.push(r as u32, stream[f].clone(), now).unwrap();
            }
        }
        // Playback pulls in 1 ms chunks, as the engine does for devices.
        played.clear();
        for _ in 0..n / chunk.len() {
            rx.mix_into(now + Duration::from_millis(1), &mut chunk);
            played.extend_from_slice(&chunk);
        }
        sender.far_end(&played);
    }
    start.elapsed().as_secs_f64() / SECONDS as f64
}

fn main() {
    println!(
        "CPU, 1 sender + {REMOTES} received streams mixed, share of one core ({SECONDS} s of audio)"
    );
    for (frame, ns, aec, loss) in [
        (FrameDuration::Ms20, true, true, 0.0),
        (FrameDuration::Ms20, true, false, 0.0),
        (FrameDuration::Ms20, false, false, 0.0),
        (FrameDuration::Ms10, true, true, 0.0),
        (FrameDuration::Ms20, true, true, 0.2),
        (FrameDuration::Ms10, true, true, 0.2),
    ] {
        let share = run(frame, ns, aec, loss);
        println!(
            "{:>2} ms frames, NS {:<3} AEC {:<3} loss {:>2.0} %: {:5.2} %",
            frame.millis(),
            if ns { "on" } else { "off" },
            if aec { "on" } else { "off" },
            loss * 100.0,
            share * 100.0
        );
    }
}
