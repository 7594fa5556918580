//! Long-term identity keys and their human-comparable fingerprints.
//!
//! Each user has one X25519 static key pair, used as the Noise static key in every
//! handshake. People compare keys out of band through a Signal-style numeric
//! fingerprint: 30 decimal digits per key, and a 60-digit safety number per pair of
//! users that both sides see identically.
//!
//! # Fingerprint construction
//!
//! Exactly Signal's `NumericFingerprintGenerator` (display part, fingerprint version 0,
//! 5200 iterations), with the key itself standing in for Signal's "stable identifier"
//! (Salon has no phone numbers or account ids):
//!
//! ```text
//! h = u16_be(0) || key || key
//! repeat 5200 times: h = SHA-512(h || key)
//! digits = for i in 0..6: format("{:05}", u40_be(h[5i .. 5i+5]) % 100000)
//! ```
//!
//! The iteration count makes a brute-force search for a colliding key costlier (the same
//! reasoning as Signal's). The safety number of two keys is both 30-digit fingerprints
//! concatenated, the smaller (as a digit string) first, so both sides get the same text.

use std::fmt;

use sha2::{Digest, Sha512};
use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroize;

/// Length in bytes of an X25519 public or secret key.
pub const KEY_LEN: usize = 32;

/// Version prefix hashed into every fingerprint; Signal's display fingerprint uses 0,
/// and keeping it means Signal's published test vectors check our implementation.
pub const FINGERPRINT_VERSION: u16 = 0;

/// Number of SHA-512 iterations per fingerprint (Signal's value).
pub const FINGERPRINT_ITERATIONS: usize = 5200;

/// Number of decimal digits in one key's [`Fingerprint`].
pub const FINGERPRINT_DIGITS: usize = 30;

/// Number of decimal digits in a [`SafetyNumber`].
pub const SAFETY_NUMBER_DIGITS: usize = 2 * FINGERPRINT_DIGITS;

/// The X25519 inputs of small order, as libsodium's and WireGuard's blocklist: the five
/// canonical u-coordinates of the points of order 1, 2, 4 and 8 on the curve and its
/// twist (0, 1, the two of order 8, p-1) and the non-canonical p and p+1. Bit 255 is
/// ignored by X25519, so it is masked off before comparing. X25519 with any clamped
/// scalar (a multiple of 8) maps exactly these to the all-zero output, so a peer sending
/// one contributes nothing to the shared secret.
const LOW_ORDER: [[u8; KEY_LEN]; 7] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    high_bytes(0xec),
    high_bytes(0xed),
    high_bytes(0xee),
];

/// `b, 0xff × 30, 0x7f`: p-1, p and p+1 for b = 0xec, 0xed, 0xee.
const fn high_bytes(first: u8) -> [u8; KEY_LEN] {
    let mut k = [0xff; KEY_LEN];
    k[0] = first;
    k[KEY_LEN - 1] = 0x7f;
    k
}

/// Whether `key` is an X25519 input of small order (or not 32 bytes long): DH with it
/// gives the all-zero secret whatever our private key, so a peer that sends one adds
/// nothing to the handshake. Every peer key (handshake ephemeral or static, invite,
/// roster) is refused when this holds.
pub fn is_low_order(key: &[u8]) -> bool {
    let Ok(key) = <[u8; KEY_LEN]>::try_from(key) else {
        return true;
    };
    let mut masked = key;
    masked[KEY_LEN - 1] &= 0x7f;
    let mut hit = Choice::from(0);
    for bad in &LOW_ORDER {
        hit |= masked.ct_eq(bad);
    }
    hit.into()
}

/// An X25519 public key: a user's long-term identity as others see it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl PublicKey {
    /// The raw 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Reads a key from a slice; `None` unless it is exactly [`KEY_LEN`] bytes, so
    /// wire parsers can reject bad lengths without panicking.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; KEY_LEN]>::try_from(bytes).ok().map(Self)
    }

    /// Whether this is a small-order point that no honest peer sends ([`is_low_order`]).
    pub fn is_low_order(&self) -> bool {
        is_low_order(&self.0)
    }

    /// The displayable 30-digit fingerprint of this key (see the module docs).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(numeric_fingerprint(&self.0, &self.0))
    }
}

impl fmt::Debug for PublicKey {
    /// Only a short prefix: enough to tell keys apart in logs without filling them with
    /// key material that could be correlated across logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

/// A user's long-term X25519 static key pair.
///
/// The secret is wiped from memory when the value is dropped, and never printed.
#[derive(Clone)]
pub struct Identity {
    secret: [u8; KEY_LEN],
    public: PublicKey,
}

impl Identity {
    /// Creates a fresh identity from the caller's cryptographic RNG.
    pub fn generate(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Identity {
        let mut secret = [0u8; KEY_LEN];
        rng.fill_bytes(&mut secret);
        let identity = Identity::from_secret_bytes(secret);
        secret.zeroize();
        identity
    }

    /// Rebuilds an identity from its stored secret, deriving the public key with the
    /// same X25519 implementation snow uses in handshakes (so the two always agree,
    /// including on clamping).
    pub fn from_secret_bytes(secret: [u8; KEY_LEN]) -> Identity {
        let Some(mut dh) = DefaultResolver.resolve_dh(&DHChoice::Curve25519) else {
            // The crate enables snow's `use-curve25519` feature, so the default resolver
            // always provides Curve25519; `resolver_provides_curve25519` pins this.
            unreachable!("snow is built without Curve25519 support");
        };
        dh.set(&secret);
        let Some(public) = PublicKey::from_slice(dh.pubkey()) else {
            // snow's Curve25519 public keys are always 32 bytes.
            unreachable!("X25519 public key is not 32 bytes");
        };
        // snow's key pair does not wipe itself on drop; overwrite our secret in it.
        dh.set(&[0u8; KEY_LEN]);
        Identity { secret, public }
    }

    /// The secret key bytes, e.g. for `snow::Builder::local_private_key` or storage.
    pub fn secret_bytes(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }

    /// The public half of the key pair.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }
}

impl Drop for Identity {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for Identity {
    /// Prints the public key only; the secret must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Signal's numeric fingerprint of `key` for `identifier`: 30 decimal digits, each
/// element of the result in `0..=9`.
fn numeric_fingerprint(key: &[u8], identifier: &[u8]) -> [u8; FINGERPRINT_DIGITS] {
    let mut hash = Vec::with_capacity(2 + key.len() + identifier.len());
    hash.extend_from_slice(&FINGERPRINT_VERSION.to_be_bytes());
    hash.extend_from_slice(key);
    hash.extend_from_slice(identifier);
    for _ in 0..FINGERPRINT_ITERATIONS {
        let mut digest = Sha512::new();
        digest.update(&hash);
        digest.update(key);
        hash = digest.finalize().to_vec();
    }
    let mut digits = [0u8; FINGERPRINT_DIGITS];
    for (chunk, out) in hash[..30].chunks_exact(5).zip(digits.chunks_exact_mut(5)) {
        let mut value = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)) % 100_000;
        for d in out.iter_mut().rev() {
            // `value % 10` is below 10, so the narrowing is lossless.
            *d = (value % 10) as u8;
            value /= 10;
        }
    }
    digits
}

/// Writes decimal digits in space-separated groups of five.
fn write_grouped(f: &mut fmt::Formatter<'_>, digits: &[u8]) -> fmt::Result {
    for (i, group) in digits.chunks(5).enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        for d in group {
            write!(f, "{d}")?;
        }
    }
    Ok(())
}

/// One key's 30-digit fingerprint; displays as six groups of five digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Fingerprint([u8; FINGERPRINT_DIGITS]);

impl Fingerprint {
    /// The digits without separators, e.g. for comparing pasted text.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_grouped(f, &self.0)
    }
}

/// The 60-digit number two users compare to check each other's keys; displays as
/// twelve groups of five digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SafetyNumber([u8; SAFETY_NUMBER_DIGITS]);

impl SafetyNumber {
    /// The digits without separators.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }
}

impl fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_grouped(f, &self.0)
    }
}

/// The safety number of two keys: symmetric, so `safety_number(a, b)` equals
/// `safety_number(b, a)` and both users read out the same digits.
pub fn safety_number(a: &PublicKey, b: &PublicKey) -> SafetyNumber {
    safety_number_from(a.fingerprint(), b.fingerprint())
}

/// [`safety_number`] from fingerprints already computed (each costs 5,200 SHA-512
/// rounds): for one key against many, compute its fingerprint once.
pub fn safety_number_from(a: Fingerprint, b: Fingerprint) -> SafetyNumber {
    // Digit arrays compare like their digit strings, which is Signal's ordering.
    let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
    let mut out = [0u8; SAFETY_NUMBER_DIGITS];
    out[..FINGERPRINT_DIGITS].copy_from_slice(&first.0);
    out[FINGERPRINT_DIGITS..].copy_from_slice(&second.0);
    SafetyNumber(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn numeric_fingerprint_matches_signal_test_vector() {
        // libsignal NumericFingerprintGeneratorTest: 33-byte Signal identity keys with
        // phone-number identifiers, displayable text for both parties.
        let alice =
            hex::decode("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
                .unwrap();
        let bob = hex::decode("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
            .unwrap();
        let fa = Fingerprint(numeric_fingerprint(&alice, b"+14152222222"));
        let fb = Fingerprint(numeric_fingerprint(&bob, b"+14153333333"));
        assert_eq!(
            safety_number_from(fa, fb).digits(),
            "300354477692869396892869876765458257569162576843440918079131"
        );
    }

    /// X25519 through snow's Curve25519, as handshakes run it.
    fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
        let mut dh = DefaultResolver.resolve_dh(&DHChoice::Curve25519).unwrap();
        dh.set(secret);
        let mut out = [0u8; 32];
        dh.dh(public, &mut out).unwrap();
        out
    }

    #[test]
    fn every_blocklisted_point_gives_the_all_zero_secret_with_and_without_bit_255() {
        for secret in [[1u8; 32], [0x5a; 32], [0xff; 32]] {
            for bad in &LOW_ORDER {
                let mut high = *bad;
                high[31] |= 0x80;
                for key in [*bad, high] {
                    assert!(is_low_order(&key), "{key:02x?}");
                    assert_eq!(x25519(&secret, &key), [0; 32], "{key:02x?}");
                }
            }
        }
    }

    #[test]
    fn ordinary_keys_are_not_low_order() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for _ in 0..64 {
            let id = Identity::generate(&mut rng);
            assert!(!id.public_key().is_low_order());
            assert_ne!(x25519(&[7; 32], id.public_key().as_bytes()), [0; 32]);
        }
        // Neighbours of blocklisted values are ordinary inputs.
        assert!(!is_low_order(&[2; 32]));
        let mut near = high_bytes(0xef);
        assert!(!is_low_order(&near));
        near[0] = 0xeb;
        assert!(!is_low_order(&near));
    }

    #[test]
    fn keys_of_the_wrong_length_count_as_low_order() {
        assert!(is_low_order(&[9; 31]));
        assert!(is_low_order(&[]));
    }

    #[test]
    fn resolver_provides_curve25519() {
        assert!(DefaultResolver.resolve_dh(&DHChoice::Curve25519).is_some());
    }

    #[test]
    fn public_key_matches_rfc7748_test_vector() {
        // RFC 7748 section 6.1, Alice's key pair.
        let secret: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        let id = Identity::from_secret_bytes(secret);
        assert_eq!(
            id.public_key().as_bytes().to_vec(),
            hex::decode("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
                .unwrap()
        );
        assert_eq!(id.secret_bytes(), &secret);
    }

    #[test]
    fn generate_gives_distinct_identities_whose_secret_rebuilds_them() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let a = Identity::generate(&mut rng);
        let b = Identity::generate(&mut rng);
        assert_ne!(a.public_key(), b.public_key());
        let again = Identity::from_secret_bytes(*a.secret_bytes());
        assert_eq!(again.public_key(), a.public_key());
    }

    #[test]
    fn identity_debug_does_not_print_the_secret() {
        let id = Identity::from_secret_bytes([0xab; 32]);
        let text = format!("{id:?}");
        assert!(!text.contains("abab"), "{text}");
        assert!(text.contains("redacted"));
    }

    #[test]
    fn public_key_debug_prints_only_a_short_prefix() {
        let key = PublicKey([0x3f; 32]);
        assert_eq!(format!("{key:?}"), "PublicKey(3f3f3f3f…)");
    }

    #[test]
    fn from_slice_rejects_wrong_lengths() {
        assert!(PublicKey::from_slice(&[1; 31]).is_none());
        assert!(PublicKey::from_slice(&[1; 33]).is_none());
        assert_eq!(PublicKey::from_slice(&[1; 32]), Some(PublicKey([1; 32])));
    }

    #[test]
    fn fingerprint_displays_six_groups_of_five_digits() {
        let text = PublicKey([7; 32]).fingerprint().to_string();
        let groups: Vec<&str> = text.split(' ').collect();
        assert_eq!(groups.len(), 6);
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_digit()))
        );
    }

    #[test]
    fn fingerprint_differs_between_keys() {
        assert_ne!(
            PublicKey([1; 32]).fingerprint(),
            PublicKey([2; 32]).fingerprint()
        );
    }

    #[test]
    fn safety_number_is_symmetric_and_has_twelve_groups() {
        let a = PublicKey([1; 32]);
        let b = PublicKey([2; 32]);
        let ab = safety_number(&a, &b);
        assert_eq!(ab, safety_number(&b, &a));
        let text = ab.to_string();
        assert_eq!(text.split(' ').count(), 12);
        assert_eq!(ab.digits().len(), 60);
        assert_eq!(text.replace(' ', ""), ab.digits());
    }

    #[test]
    fn safety_number_changes_when_a_key_is_substituted() {
        let a = PublicKey([1; 32]);
        let b = PublicKey([2; 32]);
        let mitm = PublicKey([3; 32]);
        assert_ne!(safety_number(&a, &b), safety_number(&a, &mitm));
    }
}
