//! The settings screen's "play test sound": a short two-note chime on the chosen output
//! device, on a stream of its own so it plays whether or not a room is open.

use std::time::Duration;

use salon_audio::backend::device::PlaybackStream;

use crate::error::NodeError;

/// Length of the chime.
const LENGTH: Duration = Duration::from_millis(900);
/// How far ahead of the device the chime is queued.
const AHEAD_MICROS: u64 = 60_000;

/// The chime at 48 kHz: two soft notes (A5 then E6) with short fades, so it neither
/// clicks nor startles.
pub fn chime() -> Vec<f32> {
    let rate = salon_audio::SAMPLE_RATE as f32;
    let n = (LENGTH.as_secs_f32() * rate) as usize;
    let half = n / 2;
    let fade = (0.01 * rate) as usize;
    (0..n)
        .map(|i| {
            let (hz, j, len) = if i < half {
                (880.0, i, half)
            } else {
                (1318.5, i - half, n - half)
            };
            let env = (j.min(len - 1 - j) as f32 / fade as f32).min(1.0);
            0.25 * env * (2.0 * std::f32::consts::PI * hz * j as f32 / rate).sin()
        })
        .collect()
}

/// Opens the output device (`None` = default) on a thread of its own and plays the chime
/// there. `opened` is told whether the device opened; playing goes on after it returns.
pub fn play(device: Option<String>, opened: impl FnOnce(Result<(), NodeError>) + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("salon-test-sound".into())
        .spawn(move || {
            // The stream is opened here because a cpal stream cannot move between threads.
            let mut stream = match PlaybackStream::open(device.as_deref()) {
                Ok(s) => s,
                Err(e) => return opened(Err(e.into())),
            };
            opened(Ok(()));
            let samples = chime();
            let mut at = 0;
            // A device that stops pulling without failing (a suspended sink) must not
            // hold this thread and its stream forever.
            let deadline = std::time::Instant::now() + LENGTH + Duration::from_secs(2);
            while at < samples.len() && !stream.failed() && std::time::Instant::now() < deadline {
                if stream.queued_micros() < AHEAD_MICROS {
                    let end = (at + 480).min(samples.len());
                    if stream.write(&samples[at..end]).is_err() {
                        return;
                    }
                    at = end;
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            // Let the queue drain before the stream closes.
            std::thread::sleep(
                Duration::from_micros(stream.queued_micros()) + Duration::from_millis(20),
            );
        });
    if let Err(e) = spawned {
        // `opened` moved into the closure that failed to spawn; nothing else to tell.
        drop(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chime_is_quiet_click_free_and_two_notes_long() {
        let c = chime();
        assert_eq!(c.len(), 43_200);
        let peak = c.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.2 && peak <= 0.25, "peak {peak}");
        // Fades at both ends and around the note change: no step a speaker would click on.
        assert!(c[0].abs() < 1e-6 && c[c.len() - 1].abs() < 0.01);
        let max_step = c.windows(2).fold(0f32, |m, w| m.max((w[1] - w[0]).abs()));
        assert!(max_step < 0.1, "largest step {max_step}");
    }
}
