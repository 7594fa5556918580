//! Runs a WAV file through the whole pipeline (sender → lossy link → jitter buffer →
//! decode → mix) and through bare libopus with the same settings and the same loss trace,
//! writing both results as 48 kHz WAV for PESQ scoring (see `tools/pesq_bench.py`).
//!
//! `cargo run --release -p salon-audio --example speech_quality -- IN.wav LOSS_PCT SEED OUT_DIR [--ns]`
//!
//! `NO_SHRINK=1` turns off the jitter buffer's time compression (a diagnostic: PESQ punishes
//! delay changes inside an utterance). `NO_COPIES=1` keeps payload format 0 at any loss.
//! `FRAME_MS=10` uses 10 ms frames. Further diagnostics, for both paths: `HINT=PCT`
//! overrides the sender's expected loss (default: the trace's loss rate, which receiver
//! reports would tell it), `BITRATE=B` the bitrate, `NOFEC=1` turns in-band FEC off. `LEAD_IN_S=S` runs the stream S seconds (silence, same loss rate) before
//! the speech and leaves them out of both outputs: a Salon stream flows muted or not, so
//! speech rarely starts with a stream's first packets. `REPORTS=1`: the sender learns the
//! loss from simulated reception reports instead of knowing it from the start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use salon_audio::backend::AudioSink;
use salon_audio::backend::file::{WavSink, read_wav};
use salon_audio::netsim::{Link, LinkConfig};
use salon_audio::{CodecConfig, Decoder, Encoder, Receiver, Sender};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: speech_quality IN.wav LOSS_PCT SEED OUT_DIR [--ns]");
        std::process::exit(2);
    }
    let input = read_wav(&args[1]).expect("read input wav");
    let loss: f64 = args[2].parse::<f64>().expect("loss percent") / 100.0;
    let seed: u64 = args[3].parse().expect("seed");
    let out_dir = std::path::PathBuf::from(&args[4]);
    let ns = args.iter().any(|a| a == "--ns");
    std::fs::create_dir_all(&out_dir).expect("create output dir");

    // The sender's expected loss stands for what receiver reports tell it in a room: the
    // trace's loss rate (`HINT=PCT` overrides).
    let frame = match std::env::var("FRAME_MS").as_deref() {
        Ok("10") => salon_audio::FrameDuration::Ms10,
        _ => salon_audio::FrameDuration::Ms20,
    };
    let base = CodecConfig::for_frame(frame);
    let codec = CodecConfig {
        expected_loss_pct: std::env::var("HINT")
            .ok()
            .and_then(|h| h.parse().ok())
            .unwrap_or((loss * 100.0).round() as u8),
        copies: std::env::var("NO_COPIES").is_err(),
        bitrate: std::env::var("BITRATE")
            .ok()
            .and_then(|h| h.parse().ok())
            .unwrap_or(base.bitrate),
        fec: std::env::var("NOFEC").is_err(),
        ..base
    };
    let n = codec.frame.samples();
    // Half a second of silence after the speech flushes the pipeline's delay.
    // `LEAD_IN_S=S`: the stream runs S seconds (silence, same loss rate) before the speech,
    // as a Salon stream does (frames flow muted or not), and those seconds are not written.
    let lead_frames = std::env::var("LEAD_IN_S")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(0, |s| (s * 1_000_000 / codec.frame.micros()) as usize);
    let mut pcm = vec![0.0; lead_frames * n];
    pcm.extend_from_slice(&input);
    pcm.resize(pcm.len().div_ceil(n) * n + 24_000, 0.0);
    let frames = pcm.len() / n;

    // One loss trace for both paths.
    let mut x = seed | 1;
    let lost: Vec<bool> = (0..frames)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 1_000_000) as f64 / 1_000_000.0 < loss
        })
        .collect();

    // Whole pipeline.
    let mut sender = Sender::new(codec).unwrap();
    sender.set_noise_suppression(ns);
    let mut link = Link::new(LinkConfig::default());
    let mut jc = salon_audio::JitterConfig::new(codec.frame);
    if std::env::var("NO_SHRINK").is_ok() {
        jc.shrink_window = Duration::from_secs(100_000);
        jc.accelerate_margin = 1000;
    }
    let mut rx: Receiver<u8> = Receiver::with_jitter_config(jc);
    let mut out = vec![0.0; n];
    let mut sink = WavSink::create(out_dir.join("pipeline.wav")).unwrap();
    // `REPORTS=1`: the sender starts knowing nothing (expected loss 0) and learns the loss
    // as in a room: a report every 2 s of the frames lost in it, smoothed with a quarter
    // weight on the newest and half on the first (salon-node's `loss_feedback`), applied
    // as it arrives (a round trip, nothing at this scale).
    let reports = std::env::var("REPORTS").is_ok();
    let per_report = (2_000_000 / codec.frame.micros()) as usize;
    let mut smoothed: Option<u32> = None;
    if reports {
        sender.set_expected_loss(0).unwrap();
    }
    for f in 0..frames {
        let now = Duration::from_micros(f as u64 * codec.frame.micros());
        if reports && f > 0 && f % per_report == 0 {
            let window = &lost[f - per_report..f];
            let permille = (window.iter().filter(|l| **l).count() * 1000 / per_report) as u32;
            let s = smoothed.map_or(permille.div_ceil(2), |old| (3 * old + permille + 2) / 4);
            smoothed = Some(s);
            sender
                .set_expected_loss(s.div_ceil(10).min(100) as u8)
                .unwrap();
        }
        let packet = sender.process(&pcm[f * n..(f + 1) * n]).unwrap();
        if !lost[f] {
            link.send(packet, now);
        }
        let play = now + Duration::from_millis(10);
        for (at, p) in link.deliver(play) {
            rx.push(0, p, at).unwrap();
        }
        rx.mix_into(play, &mut out);
        if f >= lead_frames {
            sink.write(&out).unwrap();
        }
    }
    sink.finish().unwrap();
    eprintln!("pipeline: {:?}", rx.stats(&0));

    // Bare libopus: same encoder settings; FEC from the next packet, else concealment.
    // The bare encoder gets the same loss hint the pipeline's plain format uses.
    let mut enc = Encoder::new(codec).unwrap();
    enc.set_expected_loss(
        codec
            .expected_loss_pct
            .max(salon_audio::payload::MIN_LOSS_HINT_PCT),
    )
    .unwrap();
    let packets: Vec<Vec<u8>> = (0..frames)
        .map(|f| enc.encode(&pcm[f * n..(f + 1) * n]).unwrap())
        .collect();
    let mut dec = Decoder::new(codec.frame).unwrap();
    let mut sink = WavSink::create(out_dir.join("bare.wav")).unwrap();
    for f in 0..frames {
        if !lost[f] {
            dec.decode(&packets[f], &mut out).unwrap();
        } else if f + 1 < frames && !lost[f + 1] {
            dec.decode_fec(&packets[f + 1], &mut out).unwrap();
        } else {
            dec.conceal(&mut out).unwrap();
        }
        if f >= lead_frames {
            sink.write(&out).unwrap();
        }
    }
    sink.finish().unwrap();
    let lost_n = lost.iter().filter(|l| **l).count();
    eprintln!(
        "{frames} frames, {lost_n} lost ({:.1} %)",
        100.0 * lost_n as f64 / frames as f64
    );
}
