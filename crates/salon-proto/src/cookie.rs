//! Handshake flood protection after WireGuard (whitepaper section 5.3): MACs, cookies,
//! per-source rate limiting and load detection. Primitives only; the packet layout
//! lives with the handshake messages.
//!
//! How the pieces fit (responder side):
//!
//! 1. Every handshake message carries `mac1 = mac(hash(label || responder_pubkey), msg)`,
//!    checked before any DH work, so only people who know the responder's key make it
//!    spend CPU.
//! 2. [`LoadMonitor`] says when handshake traffic is heavy. Under load, a message without
//!    a valid `mac2` gets a cookie reply instead of a handshake response: the
//!    [`CookieJar`] makes a cookie bound to the sender's address and seals it with
//!    [`CookieJar::seal_reply`]; the initiator opens it with [`open_reply`] and retries
//!    with `mac2 = mac2(cookie, msg up to mac2)`. This proves the sender owns its address.
//! 3. [`RateLimiter`] caps handshakes per source IP once addresses are proven.
//!
//! Everything takes `now` and an RNG from the caller: no clock reads, no OS randomness.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::secret::Secret32;
use blake2::digest::consts::U16;
use blake2::digest::{KeyInit, Mac};
use blake2::{Blake2s256, Blake2sMac, Digest};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use subtle::ConstantTimeEq;

/// Length of a MAC and of a cookie.
pub const MAC_LEN: usize = 16;

/// Length of the random nonce of a cookie reply (XChaCha20-Poly1305).
pub const COOKIE_NONCE_LEN: usize = 24;

/// Length of a sealed cookie: the 16-byte cookie plus the 16-byte Poly1305 tag.
pub const SEALED_COOKIE_LEN: usize = MAC_LEN + 16;

/// How long a cookie secret is used before it is replaced (WireGuard's value).
pub const COOKIE_SECRET_LIFETIME: Duration = Duration::from_secs(120);

/// BLAKE2s-256 of the concatenation of `parts`, e.g. `hash(&[LABEL_MAC1, pubkey])` for
/// the mac1 key.
pub fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Blake2s256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Keyed BLAKE2s with a 128-bit output and a 32-byte key (WireGuard's `MAC`).
pub fn mac(key: &[u8; 32], data: &[u8]) -> [u8; MAC_LEN] {
    let mut m = <Blake2sMac<U16> as KeyInit>::new(key.into());
    Mac::update(&mut m, data);
    m.finalize().into_bytes().into()
}

/// The initiator's `mac2`: keyed BLAKE2s-128 with the 16-byte cookie as the key, over
/// the message bytes before the mac2 field (WireGuard's `MAC(cookie, msg)`).
pub fn mac2(cookie: &[u8; MAC_LEN], data_before_mac2: &[u8]) -> [u8; MAC_LEN] {
    match <Blake2sMac<U16> as KeyInit>::new_from_slice(cookie) {
        Ok(mut m) => {
            Mac::update(&mut m, data_before_mac2);
            m.finalize().into_bytes().into()
        }
        // BLAKE2s accepts keys up to 32 bytes, so a 16-byte key always fits.
        Err(_) => unreachable!("BLAKE2s rejected a 16-byte key"),
    }
}

/// The bytes a cookie is bound to: the IP address (4 or 16 bytes) then the port, BE.
fn address_bytes(src: SocketAddr, out: &mut [u8; 18]) -> &[u8] {
    match src.ip() {
        IpAddr::V4(ip) => {
            out[..4].copy_from_slice(&ip.octets());
            out[4..6].copy_from_slice(&src.port().to_be_bytes());
            &out[..6]
        }
        IpAddr::V6(ip) => {
            out[..16].copy_from_slice(&ip.octets());
            out[16..18].copy_from_slice(&src.port().to_be_bytes());
            &out[..18]
        }
    }
}

/// Responder-side cookie state: a random secret that rotates every
/// [`COOKIE_SECRET_LIFETIME`].
///
/// `check_mac2` accepts cookies made with the current or the previous secret. WireGuard
/// only checks the current secret, but its initiators keep a cookie for up to 120 s, so a
/// cookie handed out just before a rotation would be refused at once and the initiator
/// would need another round trip while the responder is already under load. Keeping the
/// previous secret bounds a cookie's life to two lifetimes (240 s) and no more: a cookie
/// from two rotations ago is rejected.
pub struct CookieJar {
    /// Both zeroize on drop, so a replaced or expired secret leaves no copy behind.
    current: Secret32,
    previous: Option<Secret32>,
    rotated_at: Instant,
}

impl CookieJar {
    /// A jar with a fresh secret, valid from `now`.
    pub fn new(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng), now: Instant) -> Self {
        Self {
            current: Secret32::generate(rng),
            previous: None,
            rotated_at: now,
        }
    }

    /// Rotates the secret if it has expired. After more than two lifetimes without
    /// traffic the old secret is expired too and is dropped rather than kept as previous.
    fn refresh(
        &mut self,
        now: Instant,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) {
        let age = now.saturating_duration_since(self.rotated_at);
        if age < COOKIE_SECRET_LIFETIME {
            return;
        }
        let old = std::mem::replace(&mut self.current, Secret32::generate(rng));
        self.previous = (age < 2 * COOKIE_SECRET_LIFETIME).then_some(old);
        self.rotated_at = now;
    }

    /// The cookie for `src` under the current secret: `mac(secret, ip || port_be)`.
    pub fn cookie(
        &mut self,
        now: Instant,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
        src: SocketAddr,
    ) -> [u8; MAC_LEN] {
        self.refresh(now, rng);
        let mut buf = [0u8; 18];
        mac(self.current.as_bytes(), address_bytes(src, &mut buf))
    }

    /// Seals `cookie` for the initiator with XChaCha20-Poly1305 under `key` (WireGuard:
    /// `hash(LABEL_COOKIE || responder_pubkey)`), a random nonce, and the initiator's
    /// `mac1` as associated data so the reply only fits the message it answers.
    pub fn seal_reply(
        &self,
        key: &[u8; 32],
        cookie: &[u8; MAC_LEN],
        mac1: &[u8; MAC_LEN],
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> ([u8; COOKIE_NONCE_LEN], [u8; SEALED_COOKIE_LEN]) {
        let mut nonce = [0u8; COOKIE_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(key.into());
        let mut buf = *cookie;
        let mut sealed = [0u8; SEALED_COOKIE_LEN];
        // Encryption only fails for plaintexts near 2^38 bytes; for 16 bytes it cannot.
        // Were it ever to, an all-zero blob is sent, which fails to open like a lost reply.
        if let Ok(tag) =
            cipher.encrypt_in_place_detached(XNonce::from_slice(&nonce), mac1, &mut buf)
        {
            sealed[..MAC_LEN].copy_from_slice(&buf);
            sealed[MAC_LEN..].copy_from_slice(&tag);
        }
        (nonce, sealed)
    }

    /// Whether `mac2` is valid for `src` and the message bytes before it, under a cookie
    /// of the current or the previous secret (see the type docs). Compared in constant
    /// time so timing does not reveal how much of a guessed mac2 was right.
    pub fn check_mac2(
        &mut self,
        now: Instant,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
        src: SocketAddr,
        data_before_mac2: &[u8],
        mac2_received: &[u8; MAC_LEN],
    ) -> bool {
        self.refresh(now, rng);
        let mut buf = [0u8; 18];
        let addr = address_bytes(src, &mut buf);
        let mut ok = subtle::Choice::from(0);
        for secret in std::iter::once(&self.current).chain(self.previous.as_ref()) {
            let cookie = mac(secret.as_bytes(), addr);
            ok |= mac2(&cookie, data_before_mac2).ct_eq(mac2_received);
        }
        ok.into()
    }
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieJar")
            .field("rotated_at", &self.rotated_at)
            .finish_non_exhaustive()
    }
}

/// Initiator side: opens a cookie reply sealed by [`CookieJar::seal_reply`]. `None` if
/// it was forged, corrupted, or does not answer the message with this `mac1`.
pub fn open_reply(
    key: &[u8; 32],
    nonce: &[u8; COOKIE_NONCE_LEN],
    sealed: &[u8; SEALED_COOKIE_LEN],
    mac1: &[u8; MAC_LEN],
) -> Option<[u8; MAC_LEN]> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut buf = [0u8; MAC_LEN];
    buf.copy_from_slice(&sealed[..MAC_LEN]);
    cipher
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            mac1,
            &mut buf,
            sealed[MAC_LEN..].into(),
        )
        .ok()?;
    Some(buf)
}

/// Default sustained handshake rate per source (WireGuard's value).
pub const DEFAULT_RATE_PER_SEC: u32 = 20;
/// Default burst per source (WireGuard's value).
pub const DEFAULT_BURST: u32 = 5;
/// Default cap on tracked sources: bounds memory at a few hundred KiB under a flood.
pub const DEFAULT_MAX_ENTRIES: usize = 4096;

/// The interval between table sweeps when the table is full; bounds the sweep cost to
/// one pass per second however hard the limiter is flooded.
const GC_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens in nanoseconds of refill time; one handshake costs `cost_ns`.
    tokens_ns: u64,
    last: Instant,
}

/// Per-source token bucket limiting handshake messages, with bounded memory.
///
/// Sources are keyed by IPv4 address, or by IPv6 /64 prefix because one host usually
/// owns a whole /64 and could otherwise rotate addresses to dodge the limit. The table
/// is a `BTreeMap` rather than a `BTreeMap`: deterministic (no OS-seeded hasher in a
/// sans-IO crate) and immune to hash-flooding. When the table is full, buckets that have
/// refilled completely are forgotten (they carry no information); if it is still full,
/// new sources are denied rather than letting an attacker grow memory.
#[derive(Debug)]
pub struct RateLimiter {
    cost_ns: u64,
    max_tokens_ns: u64,
    max_entries: usize,
    table: BTreeMap<IpAddr, Bucket>,
    last_gc: Option<Instant>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimiter {
    /// WireGuard's limits: 20 handshakes per second per source, burst 5, 4096 sources.
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_RATE_PER_SEC, DEFAULT_BURST, DEFAULT_MAX_ENTRIES)
    }

    /// Custom limits. A zero rate or burst is raised to 1 so the limiter never locks
    /// everyone out by configuration mistake.
    pub fn with_limits(rate_per_sec: u32, burst: u32, max_entries: usize) -> Self {
        let cost_ns = 1_000_000_000 / u64::from(rate_per_sec.max(1));
        Self {
            cost_ns,
            max_tokens_ns: cost_ns * u64::from(burst.max(1)),
            max_entries,
            table: BTreeMap::new(),
            last_gc: None,
        }
    }

    /// Number of sources currently tracked.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn key(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut o = v6.octets();
                    o[8..].fill(0);
                    IpAddr::V6(o.into())
                }
            },
        }
    }

    fn refill(&self, bucket: &Bucket, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(bucket.last).as_nanos();
        let elapsed = u64::try_from(elapsed).unwrap_or(u64::MAX);
        bucket
            .tokens_ns
            .saturating_add(elapsed)
            .min(self.max_tokens_ns)
    }

    /// Whether a handshake message from `ip` may be processed now; consumes a token if so.
    pub fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        let key = Self::key(ip);
        if let Some(bucket) = self.table.get(&key).copied() {
            let tokens = self.refill(&bucket, now);
            let allowed = tokens >= self.cost_ns;
            let tokens = if allowed {
                tokens - self.cost_ns
            } else {
                tokens
            };
            self.table.insert(
                key,
                Bucket {
                    tokens_ns: tokens,
                    last: now,
                },
            );
            return allowed;
        }
        if self.table.len() >= self.max_entries {
            self.collect_garbage(now);
            if self.table.len() >= self.max_entries {
                return false;
            }
        }
        self.table.insert(
            key,
            Bucket {
                tokens_ns: self.max_tokens_ns - self.cost_ns,
                last: now,
            },
        );
        true
    }

    /// Forgets buckets that are full again (at most once per [`GC_INTERVAL`]).
    fn collect_garbage(&mut self, now: Instant) {
        if self
            .last_gc
            .is_some_and(|last| now.saturating_duration_since(last) < GC_INTERVAL)
        {
            return;
        }
        self.last_gc = Some(now);
        let max = self.max_tokens_ns;
        let table = std::mem::take(&mut self.table);
        self.table = table
            .into_iter()
            .filter(|(_, b)| self.refill(b, now) < max)
            .collect();
    }
}

/// Default number of handshake messages per second above which the node is under load.
pub const DEFAULT_LOAD_THRESHOLD: usize = 64;

/// Detects handshake floods: under load when more than `threshold` handshake messages
/// arrived within the last second. Keeps only the last `threshold + 1` arrival times,
/// which is all the question needs, so memory is bounded.
#[derive(Clone, Debug)]
pub struct LoadMonitor {
    threshold: usize,
    arrivals: std::collections::VecDeque<Instant>,
}

impl Default for LoadMonitor {
    fn default() -> Self {
        Self::new(DEFAULT_LOAD_THRESHOLD)
    }
}

impl LoadMonitor {
    /// A monitor that reports load above `threshold` messages per second.
    pub fn new(threshold: usize) -> Self {
        Self {
            threshold,
            arrivals: std::collections::VecDeque::with_capacity(threshold.saturating_add(1)),
        }
    }

    /// Records one handshake message arriving at `now`.
    pub fn record(&mut self, now: Instant) {
        self.arrivals.push_back(now);
        while self.arrivals.len() > self.threshold.saturating_add(1) {
            self.arrivals.pop_front();
        }
    }

    /// Whether more than `threshold` messages arrived in the second before `now`.
    pub fn under_load(&self, now: Instant) -> bool {
        self.arrivals.len() > self.threshold
            && self
                .arrivals
                .front()
                .is_some_and(|&t| now.saturating_duration_since(t) < Duration::from_secs(1))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(7)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hash_matches_rfc7693_vector_and_concatenates_parts() {
        let expected = [
            0x50, 0x8C, 0x5E, 0x8C, 0x32, 0x7C, 0x14, 0xE2, 0xE1, 0xA7, 0x2B, 0xA3, 0x4E, 0xEB,
            0x45, 0x2F, 0x37, 0x45, 0x8B, 0x20, 0x9E, 0xD6, 0x3A, 0x29, 0x4D, 0x99, 0x9B, 0x4C,
            0x86, 0x67, 0x59, 0x82,
        ];
        assert_eq!(hash(&[b"abc"]), expected);
        assert_eq!(hash(&[b"a", b"", b"bc"]), expected);
    }

    #[test]
    fn mac_depends_on_key_and_data() {
        let m = mac(&[1; 32], b"hello");
        assert_ne!(m, mac(&[2; 32], b"hello"));
        assert_ne!(m, mac(&[1; 32], b"hellp"));
        assert_eq!(m, mac(&[1; 32], b"hello"));
    }

    #[test]
    fn cookie_is_bound_to_address_and_port() {
        let now = Instant::now();
        let mut r = rng();
        let mut jar = CookieJar::new(&mut r, now);
        let a = jar.cookie(now, &mut r, addr("192.0.2.1:5000"));
        assert_ne!(a, jar.cookie(now, &mut r, addr("192.0.2.2:5000")));
        assert_ne!(a, jar.cookie(now, &mut r, addr("192.0.2.1:5001")));
        assert_eq!(a, jar.cookie(now, &mut r, addr("192.0.2.1:5000")));
    }

    #[test]
    fn mac2_with_valid_cookie_is_accepted_and_wrong_source_rejected() {
        let now = Instant::now();
        let mut r = rng();
        let mut jar = CookieJar::new(&mut r, now);
        let src = addr("[2001:db8::1]:4000");
        let cookie = jar.cookie(now, &mut r, src);
        let msg = b"handshake bytes up to mac2";
        let m2 = mac2(&cookie, msg);
        assert!(jar.check_mac2(now, &mut r, src, msg, &m2));
        assert!(!jar.check_mac2(now, &mut r, addr("[2001:db8::2]:4000"), msg, &m2));
        assert!(!jar.check_mac2(now, &mut r, src, b"other bytes", &m2));
        let mut bad = m2;
        bad[0] ^= 1;
        assert!(!jar.check_mac2(now, &mut r, src, msg, &bad));
    }

    #[test]
    fn cookie_from_previous_secret_accepted_but_two_rotations_ago_rejected() {
        let t0 = Instant::now();
        let mut r = rng();
        let mut jar = CookieJar::new(&mut r, t0);
        let src = addr("198.51.100.7:9999");
        let msg = b"m";
        let old = mac2(&jar.cookie(t0, &mut r, src), msg);
        let t1 = t0 + COOKIE_SECRET_LIFETIME;
        let fresh = jar.cookie(t1, &mut r, src);
        assert_ne!(mac2(&fresh, msg), old, "secret rotated");
        assert!(
            jar.check_mac2(t1, &mut r, src, msg, &old),
            "previous accepted"
        );
        let t2 = t1 + COOKIE_SECRET_LIFETIME;
        assert!(
            !jar.check_mac2(t2, &mut r, src, msg, &old),
            "two rotations ago"
        );
        assert!(jar.check_mac2(t2, &mut r, src, msg, &mac2(&fresh, msg)));
    }

    #[test]
    fn long_idle_drops_both_secrets() {
        let t0 = Instant::now();
        let mut r = rng();
        let mut jar = CookieJar::new(&mut r, t0);
        let src = addr("198.51.100.7:9999");
        let old = mac2(&jar.cookie(t0, &mut r, src), b"m");
        let later = t0 + 2 * COOKIE_SECRET_LIFETIME;
        assert!(!jar.check_mac2(later, &mut r, src, b"m", &old));
    }

    #[test]
    fn cookie_reply_seals_and_opens() {
        let now = Instant::now();
        let mut r = rng();
        let jar = CookieJar::new(&mut r, now);
        let key = hash(&[b"cookie--", &[5; 32]]);
        let cookie = [0x42; 16];
        let mac1 = [0x11; 16];
        let (nonce, sealed) = jar.seal_reply(&key, &cookie, &mac1, &mut r);
        assert_ne!(&sealed[..16], &cookie, "encrypted");
        assert_eq!(open_reply(&key, &nonce, &sealed, &mac1), Some(cookie));
    }

    #[test]
    fn cookie_reply_with_wrong_mac1_key_or_tampering_fails_to_open() {
        let now = Instant::now();
        let mut r = rng();
        let jar = CookieJar::new(&mut r, now);
        let key = [3; 32];
        let mac1 = [0x11; 16];
        let (nonce, sealed) = jar.seal_reply(&key, &[0x42; 16], &mac1, &mut r);
        assert_eq!(open_reply(&key, &nonce, &sealed, &[0x12; 16]), None);
        assert_eq!(open_reply(&[4; 32], &nonce, &sealed, &mac1), None);
        let mut bad = sealed;
        bad[31] ^= 1;
        assert_eq!(open_reply(&key, &nonce, &bad, &mac1), None);
        let mut bad_nonce = nonce;
        bad_nonce[0] ^= 1;
        assert_eq!(open_reply(&key, &bad_nonce, &sealed, &mac1), None);
    }

    #[test]
    fn rate_limiter_allows_burst_then_denies_then_refills() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        for i in 0..DEFAULT_BURST {
            assert!(rl.allow(t0, ip), "burst {i}");
        }
        assert!(!rl.allow(t0, ip));
        // One token per 50 ms at 20/s.
        assert!(!rl.allow(t0 + Duration::from_millis(49), ip));
        assert!(rl.allow(t0 + Duration::from_millis(50), ip));
        assert!(!rl.allow(t0 + Duration::from_millis(50), ip));
        // After a long pause the burst is back, but not more than the burst.
        let later = t0 + Duration::from_secs(10);
        for _ in 0..DEFAULT_BURST {
            assert!(rl.allow(later, ip));
        }
        assert!(!rl.allow(later, ip));
    }

    #[test]
    fn rate_limiter_sustains_configured_rate() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new();
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        // Try every millisecond for 10 s: burst + 20/s.
        let allowed = (0..10_000)
            .filter(|ms| rl.allow(t0 + Duration::from_millis(*ms), ip))
            .count();
        assert!((200..=206).contains(&allowed), "{allowed}");
    }

    #[test]
    fn rate_limiter_sources_are_independent_and_ipv6_limited_per_64() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::with_limits(20, 1, 16);
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        assert!(rl.allow(t0, a));
        assert!(!rl.allow(t0, a));
        assert!(rl.allow(t0, b));
        let v6a: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:0:1::ffff".parse().unwrap();
        let v6c: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        assert!(rl.allow(t0, v6a));
        assert!(!rl.allow(t0, v6b), "same /64 shares a bucket");
        assert!(rl.allow(t0, v6c));
    }

    #[test]
    fn rate_limiter_full_of_live_entries_denies_new_sources_without_growing() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::with_limits(20, 5, 4);
        for i in 0..4u8 {
            assert!(rl.allow(t0, IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))));
        }
        let newcomer = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));
        assert!(!rl.allow(t0, newcomer));
        assert_eq!(rl.len(), 4);
        // Known sources still get served.
        assert!(rl.allow(t0, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0))));
    }

    #[test]
    fn rate_limiter_forgets_refilled_buckets_when_full() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::with_limits(20, 5, 4);
        for i in 0..4u8 {
            assert!(rl.allow(t0, IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))));
        }
        // 50 ms refills the one token each used: the buckets are full again.
        let t1 = t0 + Duration::from_millis(50);
        assert!(rl.allow(t1, IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(rl.len(), 1);
    }

    #[test]
    fn rate_limiter_table_never_exceeds_cap_under_flood() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::with_limits(20, 5, 64);
        for i in 0..10_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 10);
            rl.allow(now, IpAddr::V4(Ipv4Addr::from(i)));
            assert!(rl.len() <= 64);
        }
    }

    #[test]
    fn load_monitor_trips_above_threshold_within_one_second() {
        let t0 = Instant::now();
        let mut lm = LoadMonitor::new(3);
        for i in 0..3 {
            lm.record(t0 + Duration::from_millis(i * 100));
        }
        assert!(!lm.under_load(t0 + Duration::from_millis(300)));
        lm.record(t0 + Duration::from_millis(300));
        assert!(lm.under_load(t0 + Duration::from_millis(300)));
        // The oldest of the four falls out of the last second.
        assert!(!lm.under_load(t0 + Duration::from_millis(1000)));
    }

    #[test]
    fn load_monitor_default_threshold_is_64_and_memory_bounded() {
        let t0 = Instant::now();
        let mut lm = LoadMonitor::default();
        for i in 0..64 {
            lm.record(t0 + Duration::from_millis(i));
        }
        assert!(!lm.under_load(t0 + Duration::from_millis(64)));
        for i in 0..10_000 {
            lm.record(t0 + Duration::from_millis(i));
        }
        assert!(lm.under_load(t0 + Duration::from_millis(10_000)));
        assert_eq!(lm.arrivals.len(), 65);
    }
}
