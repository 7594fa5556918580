//! The constant-rate schedule (PROTOCOL §5.1): each link sends exactly one transport
//! datagram per slot, always 160 bytes of plaintext (189 on the wire), carrying audio,
//! control frames or padding. Nothing a person does (mute, push-to-talk, a raised hand,
//! chat, moderation) adds, removes or resizes a datagram: control waits for the next
//! slot instead of leaving at once.
//!
//! Every slot leaves on this clock, never on an audio frame's arrival: the work of making
//! a frame (capture, encoding a voice or silence) must not show in when datagrams leave,
//! or a capture could tell talking from muted and stage from audience by the spacing of
//! datagrams alone. A frame waits in a short queue for its slot. So that it waits only a
//! little, the clock locks its phase to the frames, which the engine makes whatever our
//! role: it looks at how long frames waited over the last second and moves the slots by
//! at most [`LOCK_STEP`] each, until the shortest wait is [`LOCK_MARGIN`].

use std::time::{Duration, Instant};

/// Segment payload per slot: a slot holds 160 bytes of plaintext, of which an ack (9),
/// a segment header (8), and a skipped-audio note, a pong, a ping, a reception report
/// and a path frame (5 + 7 + 5 + 3 + 9) may take 46, leaving 114. Whole segments only,
/// so a control slot always has room for one.
pub const SEGMENT_DATA: usize = 112;

/// A stage member's link gives up an audio slot to waiting control only after this many
/// audio frames in a row: one frame in three at most, each lost frame alone between
/// two that arrive, so the next frame's in-band FEC (or the copies of payload format 2)
/// restores it.
pub const STEAL_GAP: u32 = 2;

/// Frames that may wait for a slot; a further one pushes the oldest out (a frame lost,
/// restored by the next one's forward error correction). Two absorb a frame that arrives
/// a moment after its slot, and the drift between the sound card's clock and ours.
pub const AUDIO_QUEUE: usize = 2;

/// The shortest wait for a slot the phase lock aims at: more than the spread of the
/// frames' arrival (the engine thread's scheduling), so frames rarely miss their slot.
pub const LOCK_MARGIN: Duration = Duration::from_millis(2);

/// The most the phase lock moves one slot: tiny beside the spacing's own jitter (a few
/// hundred microseconds on a quiet machine), so a capture sees no step, and slow enough
/// that a whole re-lock is no visible drift either. The frames' phase jumps when their
/// clock changes source (a microphone opens on going on stage and closes on leaving it);
/// re-locking half a period (10 ms) takes 2,000 slots, 40 s, in which the interval
/// between slots is off by 5 us, a quarter of a typical sound card's own clock error and
/// far under what a window of a capture can resolve. Meanwhile frames wait longer (at
/// most a period) for their slot. Fast enough to follow a sound card's drift (250 ppm).
pub const LOCK_STEP: Duration = Duration::from_micros(5);

/// Frames per phase estimate: a second's worth at 20 ms.
const LOCK_FRAMES: u32 = 50;

/// The slot clock of one endpoint (all its links share it).
#[derive(Debug, Default, Clone)]
pub struct Schedule {
    next: Option<Instant>,
    /// The shortest wait of a frame for its slot in this estimate, and the frames seen.
    shortest_wait: Option<Duration>,
    frames: u32,
    /// What the slots still have to move, in nanoseconds: positive earlier, negative
    /// later.
    shift: i64,
}

impl Schedule {
    /// The slot length of our links: the frame period when we are on stage or the room
    /// is uniform-rate, the listener slot otherwise.
    pub fn period(slot: Duration, listener_slot: Duration, full_rate: bool) -> Duration {
        if full_rate { slot } else { listener_slot }
    }

    /// When the timer next sends a slot, if it runs.
    pub fn due(&self) -> Option<Instant> {
        self.next
    }

    /// Starts the clock (a no-op if it runs): the first slot is now.
    pub fn start(&mut self, now: Instant) {
        if self.next.is_none() {
            self.next = Some(now);
        }
    }

    /// Stops the clock (no room, or no link that can carry a slot).
    pub fn stop(&mut self) {
        self.next = None;
    }

    /// Whether the timer's slot is due at `now`; if so, schedules the next one a period
    /// after this one (not after `now`, so timer lateness does not add up), or a period
    /// from now after a long stall.
    /// Moves the next slot by up to [`LOCK_STEP`] of the phase lock's outstanding shift.
    pub fn take_due(&mut self, now: Instant, period: Duration) -> bool {
        match self.next {
            Some(t) if now >= t => {
                let limit = LOCK_STEP.as_nanos() as i64;
                let step = self.shift.clamp(-limit, limit);
                self.shift -= step;
                let moved = Duration::from_nanos(step.unsigned_abs());
                let next = if step >= 0 {
                    t + period.saturating_sub(moved)
                } else {
                    t + period + moved
                };
                self.next = Some(if next <= now { now + period } else { next });
                true
            }
            _ => false,
        }
    }

    /// An audio frame arrived at `now` and will wait for the next slot: feeds the phase
    /// lock. Once a second the lock sets the shift that brings the shortest wait to
    /// [`LOCK_MARGIN`], the shorter way round the period.
    pub fn frame_arrived(&mut self, now: Instant, period: Duration) {
        let Some(next) = self.next else {
            return;
        };
        let wait = next.saturating_duration_since(now);
        self.shortest_wait = Some(self.shortest_wait.map_or(wait, |w| w.min(wait)));
        self.frames += 1;
        if self.frames < LOCK_FRAMES {
            return;
        }
        let shortest = self.shortest_wait.take().unwrap_or(wait);
        self.frames = 0;
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let mut error = nanos(shortest) - nanos(LOCK_MARGIN);
        if error > nanos(period) / 2 {
            error -= nanos(period);
        }
        self.shift = error;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const US: Duration = Duration::from_micros(1);

    #[test]
    fn timer_slots_keep_their_cadence_when_the_timer_fires_late() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.start(t0);
        assert!(s.take_due(t0 + 3 * MS, 20 * MS));
        assert_eq!(s.due(), Some(t0 + 20 * MS));
        assert!(!s.take_due(t0 + 19 * MS, 20 * MS));
        assert!(s.take_due(t0 + 21 * MS, 20 * MS));
        assert_eq!(s.due(), Some(t0 + 40 * MS));
    }

    #[test]
    fn a_stalled_clock_restarts_a_period_from_now_instead_of_bursting() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.start(t0);
        assert!(s.take_due(t0 + 500 * MS, 20 * MS));
        assert_eq!(s.due(), Some(t0 + 520 * MS));
    }

    /// Frames every 20 ms at `phase` after the clock's start, each arriving `late(i)`
    /// after that; runs the clock for `frames` frames and returns the waits of the last
    /// 50 frames for their slots, and every spacing between slots.
    fn run(
        phase: Duration,
        frames: u32,
        late: impl Fn(u32) -> Duration,
    ) -> (Vec<Duration>, Vec<Duration>) {
        let period = 20 * MS;
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.start(t0);
        let mut slots = Vec::new();
        let mut waits = Vec::new();
        let mut pending: Vec<Instant> = Vec::new();
        for i in 0..frames {
            let arrive = t0 + phase + period * i + late(i);
            // Slots due before this frame arrives.
            while let Some(due) = s.due().filter(|d| *d <= arrive) {
                assert!(s.take_due(due, period));
                slots.push(due);
                for a in pending.drain(..) {
                    waits.push(due - a);
                }
            }
            s.frame_arrived(arrive, period);
            pending.push(arrive);
        }
        let spacing = slots.windows(2).map(|w| w[1] - w[0]).collect();
        let tail = waits.len().saturating_sub(50);
        (waits[tail..].to_vec(), spacing)
    }

    /// Frames enough for the lock to cover half a period, and then some.
    fn relock_frames() -> u32 {
        (10 * MS).as_nanos() as u32 / LOCK_STEP.as_nanos() as u32 + 500
    }

    #[test]
    fn the_phase_lock_brings_the_wait_for_a_slot_down_to_the_margin() {
        for phase in [1, 5, 10, 15, 19] {
            let (waits, spacing) = run(phase * MS, relock_frames(), |_| Duration::ZERO);
            let shortest = waits.iter().min().copied().unwrap();
            let longest = waits.iter().max().copied().unwrap();
            assert!(
                shortest >= LOCK_MARGIN && longest <= LOCK_MARGIN + LOCK_STEP * 2,
                "phase {phase} ms: waits {shortest:?}..{longest:?}"
            );
            assert!(
                spacing
                    .iter()
                    .all(|d| *d >= 20 * MS - LOCK_STEP && *d <= 20 * MS + LOCK_STEP),
                "phase {phase} ms: a slot moved by more than one step"
            );
        }
    }

    #[test]
    fn frames_that_arrive_with_jitter_keep_the_margin_to_their_latest() {
        // Up to 1.5 ms late, in a fixed pattern.
        let (waits, _) = run(7 * MS, relock_frames(), |i| {
            Duration::from_micros(u64::from(i * 7919 % 1500))
        });
        let shortest = waits.iter().min().copied().unwrap();
        // Each second's estimate is the minimum of that second's lateness, which differs
        // from second to second by tens of microseconds: the lock wanders that much.
        assert!(
            shortest >= LOCK_MARGIN - 100 * US && shortest <= LOCK_MARGIN + 2 * MS,
            "shortest wait {shortest:?}"
        );
    }

    #[test]
    fn without_frames_the_clock_keeps_its_exact_period() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.start(t0);
        for i in 0..100u32 {
            assert!(s.take_due(t0 + 20 * MS * i, 20 * MS));
        }
        assert_eq!(s.due(), Some(t0 + 20 * MS * 100));
    }
}
