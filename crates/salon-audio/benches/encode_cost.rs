//! What one frame costs the sender when talking, when muted and when the input is digital
//! silence (a listener's engine runs on silence): the work must not depend on which,
//! or a busy machine's timer jitter would tell (see docs/SECURITY.md, timing).
//!
//! `cargo bench -p salon-audio --bench encode_cost` (add `--profile dev` for debug code)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use salon_audio::backend::AudioSource;
use salon_audio::backend::synthetic::ToneSource;
use salon_audio::{CodecConfig, FrameDuration, Sender};

const FRAMES: usize = 1500;

/// Mean microseconds per frame of `FRAMES` frames, the best of three rounds.
fn cost(muted: bool, silent_input: bool) -> f64 {
    let codec = CodecConfig::for_frame(FrameDuration::Ms20);
    let n = FrameDuration::Ms20.samples();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let mut s = Sender::new(codec).unwrap();
        s.set_noise_suppression(false);
        s.set_muted(muted);
        let mut tone = ToneSource::new(440.0, 0.3);
        let mut pcm = vec![0.0; n];
        let start = Instant::now();
        for _ in 0..FRAMES {
            if !silent_input {
                tone.read(&mut pcm);
            }
            std::hint::black_box(s.process(&pcm).unwrap());
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / FRAMES as f64);
    }
    best
}

fn main() {
    let talking = cost(false, false);
    let muted = cost(true, false);
    let silence = cost(false, true);
    println!("[encode cost] per 20 ms frame, Opus only (no noise suppression):");
    println!("[encode cost] talking (440 Hz tone)      {talking:8.1} us");
    println!(
        "[encode cost] muted                      {muted:8.1} us ({:+.0} %)",
        (muted / talking - 1.0) * 100.0
    );
    println!(
        "[encode cost] digital-silence input      {silence:8.1} us ({:+.0} %)",
        (silence / talking - 1.0) * 100.0
    );
}
