//! Turns listeners' reception reports into the expected-loss hint of our encoder.
//!
//! Each member that hears us reports every 2 s how much of our audio it lost
//! (`salon_proto::Event::ReceptionReport`). We protect the worst listener: the hint is the
//! highest loss among reports fresher than [`MAX_REPORT_AGE`], in whole percent rounded
//! up. With no fresh report it falls back to the configured default, so a speaker nobody
//! reports to encodes exactly as before. Pure: `now` in, no clock reads.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A report older than this no longer counts: three report intervals, so one or two
/// reports lost on the way do not reset the hint.
pub const MAX_REPORT_AGE: Duration = Duration::from_secs(6);

/// Latest reception report per listener, and the hint derived from them.
#[derive(Debug, Clone)]
pub struct LossFeedback<K> {
    /// Listener → (loss per thousand, when the report arrived).
    reports: HashMap<K, (u16, Instant)>,
    /// Hint when no fresh report exists, in percent.
    default_pct: u8,
    /// The hint last handed out, in percent.
    current: u8,
}

impl<K: Eq + Hash> LossFeedback<K> {
    /// No reports yet: the hint is `default_pct` (clamped to 100).
    pub fn new(default_pct: u8) -> Self {
        let default_pct = default_pct.min(100);
        Self {
            reports: HashMap::new(),
            default_pct,
            current: default_pct,
        }
    }

    /// The expected loss to use now, in percent.
    pub fn current(&self) -> u8 {
        self.current
    }

    /// `peer`'s latest report, per thousand, if it has sent one that is still counted.
    pub fn reported(&self, peer: &K) -> Option<u16> {
        self.reports.get(peer).map(|(permille, _)| *permille)
    }

    /// Records `from`'s latest report (it replaces the previous one). Returns the new
    /// hint if it changed.
    pub fn record(&mut self, from: K, loss_permille: u16, now: Instant) -> Option<u8> {
        self.reports.insert(from, (loss_permille, now));
        self.refresh(now)
    }

    /// Forgets a listener that left or whose link went down. Returns the new hint if it
    /// changed.
    pub fn forget(&mut self, peer: &K, now: Instant) -> Option<u8> {
        self.reports.remove(peer);
        self.refresh(now)
    }

    /// Forgets every listener (we left the room). Returns the new hint if it changed.
    pub fn clear(&mut self) -> Option<u8> {
        self.reports.clear();
        self.set(self.default_pct)
    }

    /// Drops reports older than [`MAX_REPORT_AGE`] and recomputes the hint. Returns the
    /// new hint if it changed; call it periodically so stale reports expire.
    pub fn refresh(&mut self, now: Instant) -> Option<u8> {
        self.reports
            .retain(|_, (_, at)| now.saturating_duration_since(*at) <= MAX_REPORT_AGE);
        let worst = self.reports.values().map(|(permille, _)| *permille).max();
        self.set(worst.map_or(self.default_pct, permille_to_pct))
    }

    fn set(&mut self, pct: u8) -> Option<u8> {
        (pct != self.current).then(|| {
            self.current = pct;
            pct
        })
    }
}

/// Tenths of a percent to whole percent, rounded up, at most 100.
fn permille_to_pct(permille: u16) -> u8 {
    permille.div_ceil(10).min(100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn each_listeners_latest_report_is_kept_until_it_expires() {
        let t = Instant::now();
        let mut f = LossFeedback::<u8>::new(10);
        assert_eq!(f.reported(&1), None);
        f.record(1, 150, t);
        f.record(1, 40, t + S(2));
        f.record(2, 0, t + S(2));
        assert_eq!((f.reported(&1), f.reported(&2)), (Some(40), Some(0)));
        f.refresh(t + S(9));
        assert_eq!(f.reported(&1), None);
    }

    #[test]
    fn without_reports_the_hint_is_the_default_and_nothing_changes() {
        let t = Instant::now();
        let mut f = LossFeedback::<u8>::new(10);
        assert_eq!(f.current(), 10);
        assert_eq!(f.refresh(t), None);
        assert_eq!(f.refresh(t + S(60)), None);
        assert_eq!(f.clear(), None);
        assert_eq!(f.current(), 10);
    }

    #[test]
    fn hint_is_the_worst_fresh_listener_rounded_up_to_whole_percent() {
        let t = Instant::now();
        let mut f = LossFeedback::new(10);
        assert_eq!(f.record(1u8, 52, t), Some(6), "5.2 % rounds up to 6");
        assert_eq!(f.record(2, 201, t), Some(21), "the worse listener wins");
        assert_eq!(f.record(1, 150, t), None, "a better one changes nothing");
        assert_eq!(
            f.record(2, 0, t),
            Some(15),
            "the worst improved: next worst"
        );
        assert_eq!(f.record(2, 1000, t), Some(100));
        assert_eq!(f.record(1, 0, t), None);
        assert_eq!(
            f.record(2, 0, t),
            Some(0),
            "everyone loss-free: 0, not the default"
        );
    }

    #[test]
    fn out_of_range_reports_are_clamped_to_100_percent() {
        let mut f = LossFeedback::new(10);
        assert_eq!(f.record(1u8, u16::MAX, Instant::now()), Some(100));
        assert_eq!(LossFeedback::<u8>::new(250).current(), 100);
    }

    #[test]
    fn repeating_the_same_value_yields_no_update() {
        let t = Instant::now();
        let mut f = LossFeedback::new(10);
        assert_eq!(f.record(1u8, 200, t), Some(20));
        assert_eq!(f.record(1, 200, t + S(2)), None);
        assert_eq!(f.record(1, 195, t + S(4)), None, "19.5 % rounds up to 20");
        assert_eq!(f.refresh(t + S(5)), None);
    }

    #[test]
    fn reports_older_than_six_seconds_expire_back_to_the_default() {
        let t = Instant::now();
        let mut f = LossFeedback::new(10);
        assert_eq!(f.record(1u8, 300, t), Some(30));
        assert_eq!(f.record(2, 100, t + S(3)), None);
        assert_eq!(
            f.refresh(t + S(6)),
            None,
            "exactly six seconds is still fresh"
        );
        assert_eq!(
            f.refresh(t + S(7)),
            Some(10),
            "listener 1 expired: listener 2's 10 %"
        );
        assert_eq!(f.record(2, 50, t + S(8)), Some(5));
        assert_eq!(f.refresh(t + S(15)), Some(10), "nobody fresh: the default");
        assert_eq!(f.refresh(t + S(16)), None);
    }

    #[test]
    fn a_listener_who_leaves_stops_counting_at_once() {
        let t = Instant::now();
        let mut f = LossFeedback::new(10);
        f.record(1u8, 400, t);
        f.record(2, 30, t);
        assert_eq!(f.current(), 40);
        assert_eq!(f.forget(&1, t), Some(3));
        assert_eq!(f.forget(&7, t), None, "unknown peer: no change");
        assert_eq!(f.forget(&2, t), Some(10));
        f.record(3, 700, t);
        assert_eq!(f.clear(), Some(10));
    }
}
