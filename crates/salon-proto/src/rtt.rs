//! Round-trip time estimation as RFC 6298 §2 gives it: a smoothed round trip (SRTT), its
//! variation (RTTVAR), and the retransmission timeout they set. The reliable channel
//! times its retransmissions with one; each link smooths its ping samples with another,
//! so the figure shown to people does not jump with every ping.

use std::time::Duration;

/// Clock granularity term `G` of RFC 6298; keeps the RTO strictly above SRTT even when
/// the measured variation is zero.
const CLOCK_GRANULARITY: Duration = Duration::from_millis(1);

/// SRTT and RTTVAR over the samples seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl RttEstimator {
    /// Takes in one round-trip sample (RFC 6298 §2.2 for the first, §2.3 after).
    pub fn update(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(r);
                self.rttvar = self.rttvar * 3 / 4 + diff / 4;
                self.srtt = Some(srtt * 7 / 8 + r / 8);
            }
        }
    }

    /// The smoothed round trip, once a sample was taken.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The round trip's variation (zero before the first sample).
    #[cfg(test)]
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// The retransmission timeout, `SRTT + max(G, 4·RTTVAR)`, or `initial` before any
    /// sample, held within `[min, max]`.
    pub fn rto(&self, initial: Duration, min: Duration, max: Duration) -> Duration {
        let raw = match self.srtt {
            None => initial,
            Some(srtt) => srtt + CLOCK_GRANULARITY.max(self.rttvar * 4),
        };
        raw.clamp(min, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_sample_sets_srtt_and_half_of_it_as_variation() {
        let mut e = RttEstimator::default();
        assert_eq!(e.srtt(), None);
        assert_eq!(e.rto(500 * MS, 200 * MS, 60_000 * MS), 500 * MS);
        e.update(80 * MS);
        assert_eq!(e.srtt(), Some(80 * MS));
        assert_eq!(e.rttvar(), 40 * MS);
        // SRTT + 4 * RTTVAR = 80 + 160.
        assert_eq!(e.rto(500 * MS, 200 * MS, 60_000 * MS), 240 * MS);
    }

    #[test]
    fn later_samples_move_srtt_by_an_eighth_and_rttvar_by_a_quarter() {
        let mut e = RttEstimator::default();
        e.update(100 * MS);
        e.update(180 * MS);
        // RTTVAR = 3/4 * 50 + 1/4 * |100 - 180| = 57.5; SRTT = 7/8 * 100 + 1/8 * 180 = 110.
        assert_eq!(e.rttvar(), Duration::from_micros(57_500));
        assert_eq!(e.srtt(), Some(110 * MS));
    }

    #[test]
    fn one_outlier_ping_moves_the_estimate_only_an_eighth_of_the_way() {
        let mut e = RttEstimator::default();
        for _ in 0..20 {
            e.update(40 * MS);
        }
        e.update(1_000 * MS);
        assert_eq!(e.srtt(), Some(160 * MS));
    }

    #[test]
    fn the_timeout_stays_within_its_bounds_and_above_srtt_without_variation() {
        let mut e = RttEstimator::default();
        for _ in 0..200 {
            e.update(300 * MS);
        }
        // The variation decays to (almost) nothing; G keeps the timeout above SRTT.
        assert!(e.rto(500 * MS, MS, 60_000 * MS) > 300 * MS);
        assert_eq!(e.rto(500 * MS, 1_000 * MS, 60_000 * MS), 1_000 * MS);
        e.update(100_000 * MS);
        assert_eq!(e.rto(500 * MS, MS, 60_000 * MS), 60_000 * MS);
    }
}
