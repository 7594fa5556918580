//! Turns listeners' reception reports into the expected-loss hint of our encoder.
//!
//! Each member that hears us reports every 2 s how much of our audio it lost
//! (`salon_proto::Event::ReceptionReport`). One report covers only ~100 frames, so a path
//! with a steady 5 % loss reads anywhere from 1 to 10 %: each listener's figure is
//! smoothed over its reports ([`SMOOTHING`], the first at half weight), or the encoder
//! would flip between plain
//! payloads and copies on noise. We protect the worst listener: the hint is the highest
//! smoothed loss among listeners whose last report is fresher than [`MAX_REPORT_AGE`], in
//! whole percent rounded up. With no fresh report it falls back to the configured default, so a speaker nobody
//! reports to encodes exactly as before. Pure: `now` in, no clock reads.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A report older than this no longer counts: three report intervals, so one or two
/// reports lost on the way do not reset the hint.
pub const MAX_REPORT_AGE: Duration = Duration::from_secs(6);

/// Weight of a new report in a listener's smoothed loss: 1/4, so the figure follows
/// about the last four reports (8 s). A sudden 20 % loss reads 8 % after two reports.
pub const SMOOTHING: u32 = 4;

/// Latest reception report per listener, and the hint derived from them.
#[derive(Debug, Clone)]
pub struct LossFeedback<K> {
    /// Listener → (smoothed loss per thousand, when its last report arrived).
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

    /// `peer`'s smoothed loss, per thousand, if its last report is still counted.
    pub fn reported(&self, peer: &K) -> Option<u16> {
        self.reports.get(peer).map(|(permille, _)| *permille)
    }

    /// Folds `from`'s latest report into its smoothed loss. A first report (or one after
    /// the last expired) counts half, against a prior of no loss: one noisy 2 s window
    /// should not switch the encoder to copies on its own, and a real loss is confirmed
    /// by the next report. Returns the new hint if it changed.
    pub fn record(&mut self, from: K, loss_permille: u16, now: Instant) -> Option<u8> {
        let new = u32::from(loss_permille.min(1000));
        let smoothed = match self.reports.get(&from) {
            Some(&(old, at)) if now.saturating_duration_since(at) <= MAX_REPORT_AGE => {
                let old = u32::from(old);
                // Rounded to nearest; at most 1000, so it fits.
                ((old * (SMOOTHING - 1) + new + SMOOTHING / 2) / SMOOTHING) as u16
            }
            _ => new.div_ceil(2) as u16,
        };
        self.reports.insert(from, (smoothed, now));
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

    /// A feedback whose listeners have each sent `permille` long enough to settle.
    fn settled(listeners: &[(u8, u16)], t: Instant) -> LossFeedback<u8> {
        let mut f = LossFeedback::new(10);
        for i in 0..30 {
            for &(k, permille) in listeners {
                f.record(k, permille, t + Duration::from_millis(100 * i));
            }
        }
        f
    }

    #[test]
    fn each_listeners_reports_are_smoothed_until_they_expire() {
        let t = Instant::now();
        let mut f = LossFeedback::<u8>::new(10);
        assert_eq!(f.reported(&1), None);
        f.record(1, 200, t);
        assert_eq!(f.reported(&1), Some(100), "a first report counts half");
        f.record(1, 200, t + S(2));
        assert_eq!(f.reported(&1), Some(125), "then a quarter of each new one");
        f.record(1, 0, t + S(4));
        assert_eq!(f.reported(&1), Some(94));
        f.record(2, 0, t + S(4));
        assert_eq!(f.reported(&2), Some(0));
        f.refresh(t + S(11));
        assert_eq!(f.reported(&1), None);
        // After expiry a report starts afresh.
        f.record(1, 40, t + S(12));
        assert_eq!(f.reported(&1), Some(20));
    }

    #[test]
    fn a_steady_five_percent_path_read_noisily_stays_out_of_copies() {
        // Two-second reports of a 5 % path: binomial noise over ~100 frames, starting
        // with an unlucky 11 %.
        let t = Instant::now();
        let mut f = LossFeedback::new(0);
        let noisy = [
            110u16, 80, 50, 90, 20, 70, 40, 100, 30, 60, 10, 80, 50, 90, 30,
        ];
        let mut hints = Vec::new();
        for (i, r) in noisy.iter().enumerate() {
            f.record(1u8, *r, t + S(2 * i as u64));
            hints.push(f.current());
        }
        // salon-audio switches 20 ms streams to copies at 10 %.
        assert!(hints.iter().all(|&h| h < 10), "{hints:?}");
        // A real onset of 20 % is seen by the second report.
        let mut g = LossFeedback::new(0);
        g.record(1u8, 200, t);
        g.record(1, 200, t + S(2));
        assert!(g.current() >= 10, "{}", g.current());
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
        let mut f = settled(&[(1, 52)], t);
        assert_eq!(f.current(), 6, "5.2 % rounds up to 6");
        let t = t + S(3);
        for _ in 0..30 {
            f.record(2, 211, t);
            f.record(3, 150, t);
        }
        assert_eq!(f.current(), 21, "the worst listener wins");
        assert_eq!(f.forget(&2, t), Some(15), "the worst gone: next worst");
        f.forget(&3, t);
        assert_eq!(f.forget(&1, t), Some(10), "nobody left: the default");
        assert_eq!(
            f.record(5, 0, t),
            Some(0),
            "everyone loss-free: 0, not the default"
        );
    }

    #[test]
    fn out_of_range_reports_are_clamped_to_100_percent() {
        let t = Instant::now();
        let f = settled(&[(1, u16::MAX)], t);
        assert_eq!(f.current(), 100);
        assert!(f.reported(&1).is_some_and(|p| (990..=1000).contains(&p)));
        assert_eq!(LossFeedback::<u8>::new(250).current(), 100);
    }

    #[test]
    fn repeating_the_same_value_yields_no_update() {
        let t = Instant::now();
        let mut f = settled(&[(1, 200)], t);
        assert_eq!(f.current(), 20);
        assert_eq!(f.record(1, 200, t + S(4)), None);
        assert_eq!(f.record(1, 184, t + S(6)), None, "still rounds up to 20");
        assert_eq!(f.refresh(t + S(7)), None);
    }

    #[test]
    fn reports_older_than_six_seconds_expire_back_to_the_default() {
        let t = Instant::now();
        let mut f = LossFeedback::new(10);
        assert_eq!(f.record(1u8, 300, t), Some(15), "half of 30 %");
        assert_eq!(f.record(2, 100, t + S(3)), None);
        assert_eq!(
            f.refresh(t + S(6)),
            None,
            "exactly six seconds is still fresh"
        );
        assert_eq!(
            f.refresh(t + S(7)),
            Some(5),
            "listener 1 expired: listener 2's 5 %"
        );
        assert_eq!(f.refresh(t + S(10)), Some(10), "nobody fresh: the default");
        assert_eq!(f.refresh(t + S(11)), None);
    }

    #[test]
    fn a_listener_who_leaves_stops_counting_at_once() {
        let t = Instant::now();
        let mut f = settled(&[(1, 400), (2, 30)], t);
        assert_eq!(f.current(), 40);
        assert_eq!(f.forget(&1, t + S(4)), Some(3));
        assert_eq!(f.forget(&7, t + S(4)), None, "unknown peer: no change");
        assert_eq!(f.forget(&2, t + S(4)), Some(10));
        f.record(3, 700, t + S(4));
        assert_eq!(f.clear(), Some(10));
    }
}
