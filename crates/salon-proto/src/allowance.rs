//! Token buckets that bound what one member can make others do: requests to the host
//! (hand, mute, moderation, hello) and chat messages. A member over its allowance has the
//! request ignored (by the host) or refused locally (our own chat), so no member can make
//! the host or anyone else queue work faster than a person could ask for it.

use std::time::{Duration, Instant};

/// Requests to the host a member may make in a burst (hand, mute, moderation, hello).
pub const REQUEST_BURST: u32 = 20;
/// Requests per second a member may make on average.
pub const REQUEST_EVERY: Duration = Duration::from_millis(250);
/// Chat messages a member may send in a burst.
pub const CHAT_BURST: u32 = 10;
/// One more chat message allowed every this long.
pub const CHAT_EVERY: Duration = Duration::from_millis(500);

/// A token bucket of `burst` tokens that gains one token every `every`.
#[derive(Debug, Clone)]
pub struct Allowance {
    burst: u32,
    every: Duration,
    tokens: u32,
    /// When the last token was credited (or the bucket was made).
    since: Instant,
}

impl Allowance {
    /// A full bucket.
    pub fn new(now: Instant, burst: u32, every: Duration) -> Self {
        Self {
            burst,
            every,
            tokens: burst,
            since: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn refill(&mut self, now: Instant) {
        if self.tokens >= self.burst {
            self.since = now;
            return;
        }
        let every = self.every.as_nanos().max(1);
        let gained = now.saturating_duration_since(self.since).as_nanos() / every;
        if gained == 0 {
            return;
        }
        let gained = u32::try_from(gained).unwrap_or(u32::MAX);
        self.tokens = self.tokens.saturating_add(gained).min(self.burst);
        self.since = if self.tokens >= self.burst {
            now
        } else {
            self.since + self.every * gained
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_one_token_per_interval() {
        let t0 = Instant::now();
        let every = Duration::from_millis(100);
        let mut a = Allowance::new(t0, 3, every);
        assert!(a.take(t0) && a.take(t0) && a.take(t0));
        assert!(!a.take(t0), "the burst is spent");
        assert!(!a.take(t0 + Duration::from_millis(99)));
        assert!(a.take(t0 + Duration::from_millis(100)));
        assert!(!a.take(t0 + Duration::from_millis(150)));
        assert!(a.take(t0 + Duration::from_millis(200)));
    }

    #[test]
    fn an_idle_member_gets_back_at_most_a_full_burst() {
        let t0 = Instant::now();
        let mut a = Allowance::new(t0, 2, Duration::from_millis(10));
        assert!(a.take(t0) && a.take(t0));
        let later = t0 + Duration::from_secs(3600);
        assert!(a.take(later) && a.take(later));
        assert!(!a.take(later));
    }
}
