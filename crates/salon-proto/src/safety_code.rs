//! The room safety code: twenty words every member can read aloud to check that all of
//! them see the same member keys in the same epoch of the same room.
//!
//! The host distributes the roster, so a malicious host could substitute someone's key
//! with its own and sit in the middle. Any substitution changes the code that the
//! affected members compute, which shows up when people compare codes by voice.
//!
//! Construction (v2):
//!
//! ```text
//! keys = sort(dedupe(members))
//! h = BLAKE2s-256("salon room safety code v2" || room_id(16) || u64_be(epoch)
//!                 || u32_be(len(keys)) || keys[0] || keys[1] || ...)
//! index[i] = bits 10i .. 10i+10 of h[0..25], big-endian, for i in 0..20
//! code = WORDS[index[0]] ... WORDS[index[19]], shown in five groups of four
//! ```
//!
//! Every field has a fixed length (and the count is included), so the encoding is
//! unambiguous; `WORDS` is the 1,024-word list in `wordlist/words.txt`, so each word is
//! exactly 10 bits and the code is 200 bits with no reduction bias.
//!
//! # Why 200 bits
//!
//! A host that wants to sit between members A and B must hand A a roster with its own
//! key in place of B's and hand B a roster with its own key in place of A's: a link
//! works only if both sides hold the key the other end really uses. The host chooses
//! both substituted keys (and the epoch) freely, so it does not have to hit a fixed
//! code: it needs any pair of rosters whose codes agree, a *collision*. With an n-bit
//! code that costs about 2^(n/2) hashes (birthday bound; parallel collision search
//! needs little memory). 200 bits therefore cost ~2^100 hashes; a host that substitutes
//! on one side only must hit a fixed code (a second preimage, ~2^200). The old 40-bit
//! code fell to ~2^20 hashes, a fraction of a second. See `docs/SECURITY.md`.

use std::fmt;
use std::sync::LazyLock;

use blake2::{Blake2s256, Digest};

use crate::identity::PublicKey;

/// Domain separation so this hash can never collide with another Salon use of BLAKE2s
/// (nor with the 12-digit v1 code).
const DOMAIN: &[u8] = b"salon room safety code v2";

/// Number of words in a [`SafetyCode`].
pub const SAFETY_CODE_WORDS: usize = 20;

/// Number of words in the list the code draws from (a power of two: 10 bits a word).
pub const WORDLIST_LEN: usize = 1024;

/// Bits carried by one word.
pub const BITS_PER_WORD: u32 = WORDLIST_LEN.trailing_zeros();

/// Bits carried by a whole code: twice the 100 bits of work a host must spend to make
/// two different rosters show the same code.
#[cfg(test)]
pub const SAFETY_CODE_BITS: u32 = BITS_PER_WORD * SAFETY_CODE_WORDS as u32;

/// Words shown together; groups are separated by [`GROUP_SEPARATOR`].
pub const WORDS_PER_GROUP: usize = 4;

/// What separates groups of words in the display.
pub const GROUP_SEPARATOR: &str = " / ";

/// The word list, one word a line (see `wordlist/README.md` for its source and licence).
const WORDLIST_TEXT: &str = include_str!("../wordlist/words.txt");

/// The word list, parsed once.
static WORDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    WORDLIST_TEXT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

/// The 1,024 words a safety code is spelled in, in index order.
pub fn wordlist() -> &'static [&'static str] {
    &WORDS
}

/// A room safety code: 20 indices into the word list. Displays as five groups of four
/// words, e.g. `"acid acorn acre acts / afar affix aged agent / ..."`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SafetyCode([u16; SAFETY_CODE_WORDS]);

impl SafetyCode {
    /// The word-list index of each word (each below [`WORDLIST_LEN`]).
    pub fn indices(&self) -> [u16; SAFETY_CODE_WORDS] {
        self.0
    }

    /// The words, in reading order.
    pub fn words(&self) -> [&'static str; SAFETY_CODE_WORDS] {
        let list = wordlist();
        // Indices are 10-bit and the list has 1,024 entries (a test pins both).
        self.0
            .map(|i| list.get(usize::from(i)).copied().unwrap_or("?"))
    }
}

impl fmt::Display for SafetyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.words().iter().enumerate() {
            if i > 0 {
                f.write_str(if i % WORDS_PER_GROUP == 0 {
                    GROUP_SEPARATOR
                } else {
                    " "
                })?;
            }
            f.write_str(w)?;
        }
        Ok(())
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
    let mut indices = [0u16; SAFETY_CODE_WORDS];
    for (i, slot) in indices.iter_mut().enumerate() {
        let bit = i * BITS_PER_WORD as usize;
        let (byte, shift) = (bit / 8, bit % 8);
        // 10i mod 8 is 0, 2, 4 or 6, so the word always fits in these two bytes.
        let pair = u16::from_be_bytes([digest[byte], digest[byte + 1]]);
        let v = pair >> (16 - shift - BITS_PER_WORD as usize);
        *slot = v & (WORDLIST_LEN as u16 - 1);
    }
    SafetyCode(indices)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    const ROOM: [u8; 16] = [9; 16];

    #[test]
    fn wordlist_has_1024_distinct_lowercase_ascii_words() {
        let list = wordlist();
        assert_eq!(list.len(), WORDLIST_LEN);
        assert_eq!(list.iter().collect::<BTreeSet<_>>().len(), WORDLIST_LEN);
        for w in list {
            assert!((3..=6).contains(&w.len()), "{w}");
            assert!(w.bytes().all(|c| c.is_ascii_lowercase()), "{w}");
        }
        // Sorted, so the list reads as a dictionary and a diff shows any change.
        assert!(list.windows(2).all(|p| p[0] < p[1]));
    }

    #[test]
    fn code_carries_200_bits_so_matching_two_rosters_costs_2_to_the_100() {
        let (per_word, bits) = (BITS_PER_WORD, SAFETY_CODE_BITS);
        assert_eq!(per_word, 10);
        assert_eq!(bits, 200);
        // A host that picks both rosters needs a collision: 2^(bits/2) hashes.
        assert!(bits / 2 >= 100);
        let code = room_safety_code(&ROOM, 1, &[key(1), key(2)]);
        assert_eq!(code.words().len(), 20);
        assert!(
            code.indices()
                .iter()
                .all(|&i| usize::from(i) < WORDLIST_LEN)
        );
    }

    #[test]
    fn indices_are_the_leading_200_bits_of_the_hash() {
        let code = room_safety_code(&ROOM, 7, &[key(3), key(4)]);
        let mut h = Blake2s256::new();
        h.update(DOMAIN);
        h.update(ROOM);
        h.update(7u64.to_be_bytes());
        h.update(2u32.to_be_bytes());
        h.update([3u8; 32]);
        h.update([4u8; 32]);
        let d = h.finalize();
        let mut bits = String::new();
        for b in &d[..25] {
            bits.push_str(&format!("{b:08b}"));
        }
        for (i, idx) in code.indices().iter().enumerate() {
            let want = u16::from_str_radix(&bits[10 * i..10 * i + 10], 2).unwrap();
            assert_eq!(*idx, want, "word {i}");
        }
    }

    #[test]
    fn display_is_five_groups_of_four_words() {
        let code = SafetyCode(core::array::from_fn(|i| i as u16));
        assert_eq!(
            code.to_string(),
            "acid acorn acre acts / afar affix aged agent / agile aging agony ahead / \
             aim ajar alarm alias / alibi alien alike alive"
        );
        let s = room_safety_code(&ROOM, 3, &[key(1)]).to_string();
        let groups: Vec<&str> = s.split(GROUP_SEPARATOR).collect();
        assert_eq!(groups.len(), 5);
        assert!(groups.iter().all(|g| g.split(' ').count() == 4));
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
    fn flipping_any_bit_of_any_key_changes_the_code() {
        let members = [key(1), key(2), key(3)];
        let good = room_safety_code(&ROOM, 3, &members);
        for m in 0..members.len() {
            for bit in 0..256 {
                let mut evil = members;
                evil[m].0[bit / 8] ^= 1 << (bit % 8);
                assert_ne!(good, room_safety_code(&ROOM, 3, &evil), "key {m} bit {bit}");
            }
        }
    }

    #[test]
    fn epoch_and_room_change_the_code() {
        let members = [key(1), key(2)];
        let good = room_safety_code(&ROOM, 3, &members);
        assert_ne!(good, room_safety_code(&ROOM, 4, &members));
        assert_ne!(good, room_safety_code(&ROOM, 3 + (1 << 40), &members));
        assert_ne!(good, room_safety_code(&[8; 16], 3, &members));
        let mut room = ROOM;
        room[15] ^= 1;
        assert_ne!(good, room_safety_code(&room, 3, &members));
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
            prop_assert!(code.indices().iter().all(|&i| usize::from(i) < WORDLIST_LEN));
        }

        #[test]
        fn any_changed_key_changes_the_code(
            keys in proptest::collection::vec(any::<[u8; 32]>(), 1..12),
            epoch in any::<u64>(),
            which in 0usize..12,
            other in any::<[u8; 32]>(),
        ) {
            let members: Vec<PublicKey> = keys.into_iter().map(PublicKey).collect();
            let which = which % members.len();
            prop_assume!(!members.contains(&PublicKey(other)));
            let mut evil = members.clone();
            evil[which] = PublicKey(other);
            prop_assert_ne!(
                room_safety_code(&ROOM, epoch, &members),
                room_safety_code(&ROOM, epoch, &evil)
            );
        }
    }
}
