//! Whole-pipeline tests on simulated time: tone in → encode → packetise → impaired link →
//! jitter buffer → decode → mix, checked with Goertzel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use salon_audio::backend::AudioSource;
use salon_audio::backend::synthetic::ToneSource;
use salon_audio::level::goertzel_amplitude;
use salon_audio::netsim::{Link, LinkConfig};
use salon_audio::{CodecConfig, FrameDuration, Receiver, SAMPLE_RATE, Sender};

struct Speaker {
    id: u32,
    source: ToneSource,
    sender: Sender,
    link: Link,
}

/// Runs `seconds` of simulated time with Salon's codec settings for `frame` and returns
/// the receiver's mixed output.
fn run(
    frame: FrameDuration,
    tones: &[(f32, f32)],
    link: LinkConfig,
    seconds: u64,
) -> (Vec<f32>, Receiver<u32>) {
    run_with(CodecConfig::for_frame(frame), tones, link, seconds)
}

/// [`run`] with explicit codec settings.
fn run_with(
    codec: CodecConfig,
    tones: &[(f32, f32)],
    link: LinkConfig,
    seconds: u64,
) -> (Vec<f32>, Receiver<u32>) {
    let frame = codec.frame;
    let mut speakers: Vec<Speaker> = tones
        .iter()
        .enumerate()
        .map(|(i, &(f, a))| {
            let mut sender = Sender::new(codec).unwrap();
            // RNNoise treats a steady tone as noise; these tests are about transport.
            sender.set_noise_suppression(false);
            Speaker {
                id: i as u32,
                source: ToneSource::new(f, a),
                sender,
                link: Link::new(LinkConfig {
                    seed: link.seed + i as u64,
                    ..link
                }),
            }
        })
        .collect();
    let mut rx = Receiver::new(frame);
    let n = frame.samples();
    let mut pcm = vec![0.0; n];
    let mut out = vec![0.0; n];
    let mut mixed = Vec::new();
    let step = Duration::from_micros(frame.micros());
    let mut now = Duration::ZERO;
    for _ in 0..(seconds * 1_000_000 / frame.micros()) {
        for s in &mut speakers {
            s.source.read(&mut pcm);
            let packet = s.sender.process(&pcm).unwrap();
            assert_eq!(packet.payload.len(), codec.frame_bytes());
            s.link.send(packet, now);
        }
        // Packets arrive between ticks; the playout for this tick happens half a frame in.
        let play = now + step / 2;
        for s in &mut speakers {
            for (at, p) in s.link.deliver(play) {
                rx.push(s.id, p, at).unwrap();
            }
        }
        rx.mix_into(play, &mut out);
        mixed.extend_from_slice(&out);
        now += step;
    }
    (mixed, rx)
}

/// Median over 100 ms blocks of the tone's amplitude: robust to the phase jumps that
/// concealment and time compression legitimately introduce, unlike one long Goertzel.
fn tone_level(x: &[f32], freq: f32) -> f32 {
    let mut v: Vec<f32> = x
        .chunks_exact(4800)
        .map(|b| goertzel_amplitude(b, freq, SAMPLE_RATE))
        .collect();
    v.sort_by(f32::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn db(x: f32) -> f32 {
    20.0 * x.log10()
}

fn impaired(seed: u64) -> LinkConfig {
    LinkConfig {
        base_delay: Duration::from_millis(30),
        jitter: Duration::from_millis(60),
        loss: 0.05,
        duplicate: 0.02,
        seed,
    }
}

#[test]
fn tone_comes_out_at_same_frequency_and_level_through_lossy_jittery_link() {
    for frame in [FrameDuration::Ms20, FrameDuration::Ms10] {
        let (mixed, rx) = run(frame, &[(440.0, 0.3)], impaired(11), 6);
        let tail = &mixed[mixed.len() - 3 * SAMPLE_RATE as usize..];
        let a = tone_level(tail, 440.0);
        assert!(
            (db(a) - db(0.3)).abs() < 1.5,
            "{frame:?}: 440 Hz at {a} (want 0.3)"
        );
        for other in [300.0, 700.0, 1000.0] {
            let o = tone_level(tail, other);
            assert!(o < 0.03, "{frame:?}: {other} Hz leaked at {o}");
        }
        let s = rx.stats(&0).unwrap();
        assert!(s.duplicates > 0, "the link duplicated packets: {s:?}");
        assert!(
            s.fec_recovered + s.concealed > 0,
            "the link lost packets: {s:?}"
        );
        assert!(s.target_frames > 1, "jitter should raise the target: {s:?}");
    }
}

#[test]
fn two_speakers_with_different_tones_are_both_in_the_mix() {
    let (mixed, rx) = run(
        FrameDuration::Ms20,
        &[(440.0, 0.25), (1200.0, 0.25)],
        impaired(5),
        5,
    );
    let tail = &mixed[mixed.len() - 2 * SAMPLE_RATE as usize..];
    for f in [440.0, 1200.0] {
        let a = tone_level(tail, f);
        assert!((db(a) - db(0.25)).abs() < 1.5, "{f} Hz at {a} (want 0.25)");
    }
    let levels = rx.levels();
    assert_eq!(levels.len(), 2);
    assert!(levels.iter().all(|(_, l)| l.speaking && l.rms_dbfs > -20.0));
}

#[test]
fn clean_link_loses_nothing() {
    let (_, rx) = run(
        FrameDuration::Ms20,
        &[(440.0, 0.3)],
        LinkConfig::default(),
        3,
    );
    let s = rx.stats(&0).unwrap();
    assert_eq!((s.concealed, s.fec_recovered, s.late), (0, 0, 0), "{s:?}");
    assert_eq!(s.target_frames, 1);
}

#[test]
fn per_speaker_volume_and_mute_apply_to_the_mix() {
    let codec = CodecConfig::default();
    let mut rx: Receiver<&str> = Receiver::new(codec.frame);
    let mut a = Sender::new(codec).unwrap();
    let mut b = Sender::new(codec).unwrap();
    a.set_noise_suppression(false);
    b.set_noise_suppression(false);
    let (mut ta, mut tb) = (ToneSource::new(440.0, 0.2), ToneSource::new(1200.0, 0.2));
    rx.set_volume(&"a", 2.0).unwrap();
    rx.set_muted(&"b", true).unwrap();
    let mut pcm = vec![0.0; 960];
    let mut out = vec![0.0; 960];
    let mut mixed = Vec::new();
    for i in 0..100u64 {
        let now = Duration::from_millis(i * 20);
        ta.read(&mut pcm);
        rx.push("a", a.process(&pcm).unwrap(), now).unwrap();
        tb.read(&mut pcm);
        rx.push("b", b.process(&pcm).unwrap(), now).unwrap();
        rx.mix_into(now + Duration::from_millis(5), &mut out);
        mixed.extend_from_slice(&out);
    }
    let tail = &mixed[48_000..];
    assert!((db(tone_level(tail, 440.0)) - db(0.4)).abs() < 1.0);
    assert!(tone_level(tail, 1200.0) < 0.005);
    // Muted locally but still measured, so the UI can show them talking.
    let b_level = rx.levels().into_iter().find(|(k, _)| *k == "b").unwrap().1;
    assert!(b_level.speaking);
}

#[test]
fn at_twenty_percent_loss_copies_restore_what_in_band_fec_leaves_concealed() {
    let link = LinkConfig {
        base_delay: Duration::from_millis(30),
        jitter: Duration::from_millis(10),
        loss: 0.2,
        duplicate: 0.0,
        seed: 11,
    };
    let run_at = |copies: bool| {
        // What receiver reports would tell the sender on this path.
        let codec = CodecConfig {
            expected_loss_pct: 20,
            copies,
            ..CodecConfig::default()
        };
        let (mixed, rx) = run_with(codec, &[(440.0, 0.3)], link, 20);
        let tail = tone_level(&mixed[mixed.len() - 5 * SAMPLE_RATE as usize..], 440.0);
        (rx.stats(&0).unwrap(), tail)
    };
    let (fec, _) = run_at(false);
    let (copies, level) = run_at(true);
    // 1,000 frames, ~200 lost: FEC restores only those whose next packet came (~80 %);
    // copies also those whose next-but-one did, leaving runs of three (~1 %).
    assert!(
        fec.concealed >= 25,
        "control: FEC alone conceals runs {fec:?}"
    );
    assert!(
        copies.concealed * 3 < fec.concealed,
        "copies {copies:?} vs FEC {fec:?}"
    );
    assert!(copies.fec_recovered > 150, "{copies:?}");
    assert!((db(level) - db(0.3)).abs() < 1.5, "tone at {level}");
}
