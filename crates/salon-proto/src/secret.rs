//! The one type that holds symmetric secrets (room secrets, epoch secrets, PSK copies):
//! wiped when dropped, never printed, compared in constant time.
//!
//! A plain `[u8; 32]` is `Copy`, so every assignment leaves another copy in memory that
//! nobody wipes; this type is `Clone` only, and each clone wipes itself too. (Moves may
//! still leave stale bytes behind on the stack; Rust gives no way to prevent that short
//! of pinning, which the protocol state does not need.)

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// `N` secret bytes. `Debug` prints `Secret<N>(<redacted>)`; `==` takes the same time
/// wherever the first difference is.
#[derive(Clone)]
pub struct Secret<const N: usize>([u8; N]);

/// A 256-bit secret: the size of every Noise PSK and key Salon uses.
pub type Secret32 = Secret<32>;

impl<const N: usize> Secret<N> {
    /// Fresh random bytes from the caller's cryptographic RNG.
    pub fn generate(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        let mut s = Self([0u8; N]);
        rng.fill_bytes(&mut s.0);
        s
    }

    /// Wraps existing secret bytes (e.g. loaded from storage or parsed off the wire).
    /// The argument is a copy the caller should not keep.
    pub fn from_bytes(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// The secret bytes, e.g. for `snow::Builder::psk` or a MAC key derivation.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> PartialEq for Secret<N> {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl<const N: usize> Eq for Secret<N> {}

impl<const N: usize> Zeroize for Secret<N> {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl<const N: usize> Drop for Secret<N> {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl<const N: usize> ZeroizeOnDrop for Secret<N> {}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret<{N}>(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_struct_holding_a_secret_does_not_contain_its_bytes() {
        #[derive(Debug)]
        #[allow(dead_code)] // read only through Debug
        struct Holder {
            name: &'static str,
            secret: Secret32,
        }
        let h = Holder {
            name: "room",
            secret: Secret::from_bytes([0xab; 32]),
        };
        for text in [format!("{h:?}"), format!("{h:#?}")] {
            assert!(!text.contains("ab, ") && !text.contains("171"), "{text}");
            assert!(!text.to_lowercase().contains("abab"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
    }

    #[test]
    fn zeroize_wipes_the_bytes_and_drop_is_wired_to_it() {
        let mut s = Secret::from_bytes([0x5c; 32]);
        s.zeroize();
        assert_eq!(s.as_bytes(), &[0; 32]);
        // Drop calls the same `zeroize`; the marker trait states it for callers.
        fn wipes_on_drop<T: ZeroizeOnDrop>(_: &T) {}
        wipes_on_drop(&s);
    }

    #[test]
    fn equality_compares_every_byte() {
        let a = Secret::from_bytes([1u8; 32]);
        let mut last = [1u8; 32];
        last[31] = 2;
        let mut first = [1u8; 32];
        first[0] = 2;
        assert_eq!(a, Secret::from_bytes([1; 32]));
        assert_ne!(a, Secret::from_bytes(last));
        assert_ne!(a, Secret::from_bytes(first));
    }
}
