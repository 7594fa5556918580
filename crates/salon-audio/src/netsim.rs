//! A simulated network link for tests, benchmarks and the CLI: random loss, delay jitter
//! (which reorders packets), and duplication, reproducible from a seed.

use std::time::Duration;

use crate::jitter_buffer::AudioPacket;

/// Link impairments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way delay.
    pub base_delay: Duration,
    /// Extra delay, uniform in `0..=jitter` per packet (so packets can overtake each other).
    pub jitter: Duration,
    /// Probability a packet is lost.
    pub loss: f64,
    /// Probability a delivered packet arrives twice.
    pub duplicate: f64,
    /// Random seed.
    pub seed: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(20),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            seed: 1,
        }
    }
}

/// The link: packets go in with [`Self::send`] and come out when their time has come.
#[derive(Debug, Clone)]
pub struct Link {
    config: LinkConfig,
    rng: u64,
    in_flight: Vec<(Duration, u64, AudioPacket)>,
    order: u64,
}

impl Link {
    /// A link with these impairments.
    pub fn new(config: LinkConfig) -> Self {
        Self {
            rng: config.seed | 1,
            config,
            in_flight: Vec::new(),
            order: 0,
        }
    }

    fn uniform(&mut self) -> f64 {
        // xorshift64*: enough randomness for impairments, no dependency.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn delay(&mut self) -> Duration {
        let j = self.config.jitter.as_secs_f64() * self.uniform();
        self.config.base_delay + Duration::from_secs_f64(j)
    }

    /// Sends `packet` at `now`.
    pub fn send(&mut self, packet: AudioPacket, now: Duration) {
        if self.uniform() < self.config.loss {
            return;
        }
        if self.uniform() < self.config.duplicate {
            let at = now + self.delay();
            self.order += 1;
            self.in_flight.push((at, self.order, packet.clone()));
        }
        let at = now + self.delay();
        self.order += 1;
        self.in_flight.push((at, self.order, packet));
    }

    /// Packets whose arrival time is `<= now`, in arrival order, with their arrival times.
    pub fn deliver(&mut self, now: Duration) -> Vec<(Duration, AudioPacket)> {
        let mut due: Vec<_> = Vec::new();
        let mut i = 0;
        while i < self.in_flight.len() {
            if self.in_flight[i].0 <= now {
                due.push(self.in_flight.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|(at, order, _)| (*at, *order));
        due.into_iter().map(|(at, _, p)| (at, p)).collect()
    }
}
