//! The constant-rate schedule (PROTOCOL §5.1): each link sends exactly one transport
//! datagram per slot, always 160 bytes of plaintext (189 on the wire), carrying audio,
//! control frames or padding. Nothing a person does (mute, push-to-talk, a raised hand,
//! chat, moderation) adds, removes or resizes a datagram: control waits for the next
//! slot instead of leaving at once.
//!
//! A stage member's slots are clocked by its audio frames (one `send_audio` per frame
//! period); everyone else's, and a stage member whose audio stalls, by this timer.

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

/// How late a stage member's audio may be before the timer sends the slot instead, as a
/// fraction of the slot: audio that arrives on time never meets the timer.
const AUDIO_GRACE_NUM: u32 = 3;
const AUDIO_GRACE_DEN: u32 = 2;

/// The slot clock of one endpoint (all its links share it).
#[derive(Debug, Default, Clone)]
pub struct Schedule {
    next: Option<Instant>,
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
    pub fn take_due(&mut self, now: Instant, period: Duration) -> bool {
        match self.next {
            Some(t) if now >= t => {
                let next = t + period;
                self.next = Some(if next <= now { now + period } else { next });
                true
            }
            _ => false,
        }
    }

    /// A stage member's audio frame just filled the slot: the timer stands back until
    /// audio is late by half a slot.
    pub fn audio_sent(&mut self, now: Instant, period: Duration) {
        self.next = Some(now + period * AUDIO_GRACE_NUM / AUDIO_GRACE_DEN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

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

    #[test]
    fn audio_on_time_keeps_the_timer_from_sending_a_second_datagram() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.start(t0);
        s.audio_sent(t0, 20 * MS);
        assert!(!s.take_due(t0 + 20 * MS, 20 * MS));
        s.audio_sent(t0 + 20 * MS, 20 * MS);
        assert!(!s.take_due(t0 + 49 * MS, 20 * MS));
        assert!(
            s.take_due(t0 + 50 * MS, 20 * MS),
            "audio late by half a slot"
        );
    }
}
