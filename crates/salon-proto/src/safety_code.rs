//! The room safety code: a short code every member can read aloud to check that all of
//! them see the same member keys in the same epoch.
//!
//! The host distributes the roster, so a malicious host could substitute someone's key
//! with its own and sit in the middle. Any substitution changes the code that the
//! affected members compute, which shows up when people compare codes by voice.
//!
//! Construction:
//!
//! ```text
//! keys = sort(dedupe(members))
//! h = BLAKE2s-256("salon room safety code v1" || room_id(16) || u64_be(epoch)
//!                 || u32_be(len(keys)) || keys[0] || keys[1] || ...)
//! code = u64_be(h[0..8]) mod 10^12, shown as 12 digits in groups of 4
//! ```
//!
//! Every field has a fixed length (and the count is included), so the encoding is
//! unambiguous. The reduction bias of 2^64 mod 10^12 is below 10^-7, negligible.
//! 40 bits of code make an online substitution that keeps the code unchanged a
//! one-in-a-trillion event per attempt.

use std::fmt;

use blake2::{Blake2s256, Digest};

use crate::identity::PublicKey;

/// Domain separation so this hash can never collide with another Salon use of BLAKE2s.
const DOMAIN: &[u8] = b"salon room safety code v1";

/// Number of decimal digits in a [`SafetyCode`].
pub const SAFETY_CODE_DIGITS: usize = 12;

const MODULUS: u64 = 1_000_000_000_000;

/// A 12-digit room safety code; displays as `"4821 0937 5562"`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SafetyCode(u64);

impl SafetyCode {
    /// The code as a number below 10^12 (leading zeros are significant in the display).
    pub fn value(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for SafetyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:04} {:04} {:04}",
            v / 100_000_000,
            (v / 10_000) % 10_000,
            v % 10_000
        )
    }
}

/// The safety code of a room at an epoch with the given members. The order of
/// `members` and duplicates in it do not matter.
pub fn room_safety_code(room_id: &[u8; 16], epoch: u64, members: &[PublicKey]) -> SafetyCode {
    let mut keys: Vec<&PublicKey> = members.iter().collect();
    keys.sort();
    keys.dedup();
    let mut h = Blake2s256::new();
    h.update(DOMAIN);
    h.update(room_id);
    h.update(epoch.to_be_bytes());
    // A roster never approaches 2^32 members; saturate rather than wrap just in case.
    h.update(u32::try_from(keys.len()).unwrap_or(u32::MAX).to_be_bytes());
    for k in keys {
        h.update(k.as_bytes());
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    SafetyCode(u64::from_be_bytes(first) % MODULUS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    const ROOM: [u8; 16] = [9; 16];

    #[test]
    fn display_is_three_groups_of_four_digits_with_leading_zeros() {
        assert_eq!(SafetyCode(482_109_375_562).to_string(), "4821 0937 5562");
        assert_eq!(SafetyCode(7).to_string(), "0000 0000 0007");
    }

    #[test]
    fn same_code_for_any_member_order_and_duplicates() {
        let a = room_safety_code(&ROOM, 3, &[key(1), key(2), key(3)]);
        let b = room_safety_code(&ROOM, 3, &[key(3), key(1), key(2), key(1)]);
        assert_eq!(a, b);
    }

    #[test]
    fn substituting_any_key_changes_the_code() {
        let members = [key(1), key(2), key(3), key(4)];
        let good = room_safety_code(&ROOM, 3, &members);
        for i in 0..members.len() {
            let mut evil = members;
            evil[i] = key(200);
            assert_ne!(good, room_safety_code(&ROOM, 3, &evil), "index {i}");
        }
    }

    #[test]
    fn epoch_and_room_change_the_code() {
        let members = [key(1), key(2)];
        let good = room_safety_code(&ROOM, 3, &members);
        assert_ne!(good, room_safety_code(&ROOM, 4, &members));
        assert_ne!(good, room_safety_code(&[8; 16], 3, &members));
    }

    #[test]
    fn adding_or_removing_a_member_changes_the_code() {
        let good = room_safety_code(&ROOM, 3, &[key(1), key(2)]);
        assert_ne!(good, room_safety_code(&ROOM, 3, &[key(1)]));
        assert_ne!(good, room_safety_code(&ROOM, 3, &[key(1), key(2), key(3)]));
    }

    proptest! {
        #[test]
        fn order_independent_for_random_rosters(
            keys in proptest::collection::vec(any::<[u8; 32]>(), 1..12),
            epoch in any::<u64>(),
            rotate in 0usize..12,
        ) {
            let members: Vec<PublicKey> = keys.into_iter().map(PublicKey).collect();
            let mut shuffled = members.clone();
            shuffled.reverse();
            let len = shuffled.len();
            shuffled.rotate_left(rotate % len);
            let code = room_safety_code(&ROOM, epoch, &members);
            prop_assert_eq!(code, room_safety_code(&ROOM, epoch, &shuffled));
            prop_assert!(code.value() < MODULUS);
        }
    }
}
