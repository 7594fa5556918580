//! Anti-replay sliding window for transport counters (RFC 6479).
//!
//! Every transport packet carries an explicit 64-bit counter. UDP reorders packets, so
//! instead of demanding strictly increasing counters the receiver accepts any counter it
//! has not seen yet, as long as it is not more than [`WINDOW_SIZE`] - 1 behind the
//! highest counter accepted so far.
//!
//! The bitmap is a ring of [`BLOCKS`] 64-bit blocks. When the window slides forward,
//! whole blocks are zeroed instead of shifting bits, which keeps `mark` O(1) amortised
//! even for big jumps (RFC 6479 section 2). One block is kept as slack so the block that
//! is being reused never overlaps the window, hence `WINDOW_SIZE = (BLOCKS - 1) * 64`.
//!
//! Usage: call [`ReplayWindow::check`] before decrypting (cheap rejection without
//! spending AEAD work on replays), and [`ReplayWindow::mark`] only after the tag verified,
//! so forged packets can never move the window.

/// Number of 64-bit blocks in the bitmap ring; a power of two so the ring index is a mask.
pub const BLOCKS: usize = 64;

const BITS_PER_BLOCK: u64 = u64::BITS as u64;

/// How many counters the window covers: a counter is accepted when it is greater than
/// `highest - WINDOW_SIZE` (and unseen). 4032 comfortably exceeds the 2048 the design
/// asks for, covering several seconds of reordering at audio packet rates.
pub const WINDOW_SIZE: u64 = (BLOCKS as u64 - 1) * BITS_PER_BLOCK;

/// RFC 6479 receive window over 64-bit counters.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Highest counter marked so far (0 before any, which still lets counter 0 in once
    /// because its bit is clear).
    highest: u64,
    bitmap: [u64; BLOCKS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// An empty window: every counter is acceptable once.
    pub fn new() -> Self {
        Self {
            highest: 0,
            bitmap: [0; BLOCKS],
        }
    }

    /// The highest counter accepted so far (0 if none).
    #[cfg(test)]
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether `counter` would be accepted: ahead of the window, or inside it and not
    /// seen. Does not change state, so unauthenticated packets can be screened with it.
    pub fn check(&self, counter: u64) -> bool {
        if counter > self.highest {
            return true;
        }
        if self.highest - counter >= WINDOW_SIZE {
            return false;
        }
        let (block, bit) = Self::position(counter);
        self.bitmap[block] & bit == 0
    }

    /// Records `counter` as received. Call only after the packet authenticated.
    /// Returns `false` (and changes nothing) for a replay or a too-old counter, `true` if
    /// the counter was new and is now recorded.
    pub fn mark(&mut self, counter: u64) -> bool {
        if !self.check(counter) {
            return false;
        }
        if counter > self.highest {
            let current_block = self.highest / BITS_PER_BLOCK;
            let new_block = counter / BITS_PER_BLOCK;
            // Beyond BLOCKS, every block is stale anyway: clear each once.
            let to_clear = (new_block - current_block).min(BLOCKS as u64);
            for i in 1..=to_clear {
                self.bitmap[Self::ring_index(current_block + i)] = 0;
            }
            self.highest = counter;
        }
        let (block, bit) = Self::position(counter);
        self.bitmap[block] |= bit;
        true
    }

    fn ring_index(block: u64) -> usize {
        // The mask keeps the value below BLOCKS, so the narrowing is lossless.
        (block & (BLOCKS as u64 - 1)) as usize
    }

    fn position(counter: u64) -> (usize, u64) {
        (
            Self::ring_index(counter / BITS_PER_BLOCK),
            1u64 << (counter % BITS_PER_BLOCK),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Obviously-correct model with the same acceptance rule.
    #[derive(Default)]
    struct Model {
        seen: BTreeSet<u64>,
        highest: u64,
    }

    impl Model {
        fn check(&self, c: u64) -> bool {
            !self.seen.contains(&c) && (c > self.highest || self.highest - c < WINDOW_SIZE)
        }
        fn mark(&mut self, c: u64) -> bool {
            if !self.check(c) {
                return false;
            }
            self.seen.insert(c);
            self.highest = self.highest.max(c);
            true
        }
    }

    #[test]
    fn window_covers_at_least_2048_counters() {
        const { assert!(WINDOW_SIZE >= 2048) };
    }

    #[test]
    fn duplicate_is_rejected() {
        let mut w = ReplayWindow::new();
        assert!(w.mark(5));
        assert!(!w.check(5));
        assert!(!w.mark(5));
    }

    #[test]
    fn counter_zero_is_accepted_once() {
        let mut w = ReplayWindow::new();
        assert!(w.mark(0));
        assert!(!w.mark(0));
    }

    #[test]
    fn check_does_not_mutate() {
        let w = ReplayWindow::new();
        assert!(w.check(10));
        assert!(w.check(10));
        assert_eq!(w.highest(), 0);
    }

    #[test]
    fn oldest_counter_inside_window_accepted_and_one_older_rejected() {
        let mut w = ReplayWindow::new();
        let top = 10_000;
        assert!(w.mark(top));
        assert!(!w.check(top - WINDOW_SIZE));
        assert!(w.mark(top - WINDOW_SIZE + 1));
    }

    #[test]
    fn any_order_inside_window_is_accepted() {
        let mut w = ReplayWindow::new();
        let base = 1_000_000;
        assert!(w.mark(base + WINDOW_SIZE - 1));
        // Reverse order down to the bottom of the window.
        for c in (base..base + WINDOW_SIZE - 1).rev() {
            assert!(w.mark(c), "counter {c}");
        }
        for c in base..base + WINDOW_SIZE {
            assert!(!w.check(c), "replay {c}");
        }
    }

    #[test]
    fn big_jump_clears_stale_bits() {
        let mut w = ReplayWindow::new();
        for c in 0..200 {
            assert!(w.mark(c));
        }
        // Jump so far that the ring wraps onto blocks that held old bits.
        let far = 199 + BLOCKS as u64 * 64 * 3 + 17;
        assert!(w.mark(far));
        for c in far - WINDOW_SIZE + 1..far {
            assert!(w.check(c), "counter {c} should be fresh");
        }
    }

    #[test]
    fn huge_counters_do_not_overflow() {
        let mut w = ReplayWindow::new();
        assert!(w.mark(u64::MAX));
        assert!(!w.mark(u64::MAX));
        assert!(w.mark(u64::MAX - 1));
        assert!(!w.check(0));
    }

    fn op() -> impl Strategy<Value = u64> {
        // Mostly small steps around a moving region, sometimes huge jumps.
        prop_oneof![
            8 => 0u64..6000,
            1 => 0u64..100_000,
            1 => any::<u64>(),
        ]
    }

    proptest! {
        #[test]
        fn matches_reference_model(ops in proptest::collection::vec((op(), any::<bool>()), 1..600)) {
            let mut w = ReplayWindow::new();
            let mut m = Model::default();
            let mut base = 0u64;
            for (delta, relative) in ops {
                // Relative ops wander near the current top to exercise the window edge.
                let c = if relative { base.saturating_add(delta).saturating_sub(3000) } else { delta };
                prop_assert_eq!(w.check(c), m.check(c), "check {}", c);
                prop_assert_eq!(w.mark(c), m.mark(c), "mark {}", c);
                base = m.highest;
            }
        }
    }
}
