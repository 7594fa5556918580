//! Room invites: one copyable text string that carries everything needed to join.
//!
//! # Format (version 1)
//!
//! ```text
//! "salon:" || base32(payload)          lowercase RFC 4648 alphabet, no padding
//! payload = version u8 (= 1)
//!        || host static public key (32)
//!        || room id (16)
//!        || room secret (32)
//!        || n u8                         1..=8 candidates
//!        || n × ( kind u8                1 = LAN, 2 = reflexive, 3 = relay
//!               || family u8             4 or 6
//!               || address (4 | 16)
//!               || port u16 BE )         non-zero
//!        || checksum (4)                 BLAKE2s-256("salon invite checksum" || all
//!                                        bytes before it)[..4]
//! ```
//!
//! The checksum is always the last four bytes, over everything before it, in every
//! version: that lets a parser tell a mistyped invite ("copy it again") from an invite
//! of a newer format ("update Salon") before it understands the layout. It is a typo
//! detector, not an authenticator: whoever can change the invite can recompute it. The
//! invite's authenticity comes from the channel it was shared over.
//!
//! Base32 because it survives being read aloud, typed, case-folded by chat apps and
//! encoded in a QR code's alphanumeric mode (upper case). Parsing ignores surrounding and
//! internal whitespace (line wrapping when copy-pasting) and letter case. Decoding is
//! strict: non-zero padding bits are rejected, so every text maps to at most one payload
//! and any single-character typo is detected.
//!
//! IPv6 flow labels and scope ids are not carried: a link-local address without its
//! scope is useless to the joiner anyway, so hosts should offer global or ULA addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use blake2::{Blake2s256, Digest};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::identity::{KEY_LEN, PublicKey};

/// Text every invite starts with (matched case-insensitively).
pub const PREFIX: &str = "salon:";

/// The invite format version this code writes and reads.
pub const VERSION: u8 = 1;

/// Fewest host addresses an invite may carry: without one, nobody can reach the host.
pub const MIN_CANDIDATES: usize = 1;

/// Most host addresses an invite may carry: LAN, reflexive and relay for two address
/// families leaves room to spare, and it keeps the text short enough to copy by hand.
pub const MAX_CANDIDATES: usize = 8;

/// Domain separation for the checksum hash.
const CHECKSUM_DOMAIN: &[u8] = b"salon invite checksum";

/// Length of the checksum at the end of the payload.
const CHECKSUM_LEN: usize = 4;

/// Length of the fixed part before the candidate count: version, key, room id, secret.
const HEADER_LEN: usize = 1 + KEY_LEN + 16 + 32;

/// Smallest complete version-1 payload: one IPv4 candidate.
const MIN_V1_LEN: usize = HEADER_LEN + 1 + (1 + 1 + 4 + 2) + CHECKSUM_LEN;

const BASE32_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Identifies a room; random, chosen by the host.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RoomId(pub [u8; 16]);

impl RoomId {
    /// A fresh random room id.
    pub fn generate(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        Self(id)
    }
}

/// The 256-bit room secret, used as the Noise PSK when joining the host: a
/// [`Secret32`](crate::secret::Secret32), so wiped on drop, never printed, compared in
/// constant time.
pub type RoomSecret = crate::secret::Secret32;

/// How a host address was obtained, which tells the joiner how to try it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CandidateKind {
    /// An address on the host's local network.
    Lan,
    /// The host's public address as seen by a STUN-like server (server-reflexive).
    Reflexive,
    /// An address on a relay that forwards to the host.
    Relay,
}

impl CandidateKind {
    /// The wire value. 0 is left unused so zeroed memory never parses as a candidate.
    pub fn to_u8(self) -> u8 {
        match self {
            CandidateKind::Lan => 1,
            CandidateKind::Reflexive => 2,
            CandidateKind::Relay => 3,
        }
    }

    /// The kind for a wire value; `None` for values this version does not know.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(CandidateKind::Lan),
            2 => Some(CandidateKind::Reflexive),
            3 => Some(CandidateKind::Relay),
            _ => None,
        }
    }
}

/// One address at which the host may be reachable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Candidate {
    /// How the address was obtained.
    pub kind: CandidateKind,
    /// The UDP address (IPv6 flow info and scope id are not carried by invites).
    pub addr: SocketAddr,
}

/// Why an invite text could not be read. Every message says what the user can do.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum InviteError {
    /// Nothing but whitespace was given.
    #[error("The invite is empty. Paste the invite text you were sent.")]
    Empty,
    /// The text does not start with `salon:`.
    #[error(
        "This is not a Salon invite (an invite starts with \"salon:\"). Check that you copied the right text."
    )]
    NotAnInvite,
    /// A character outside the invite alphabet; `position` is its 0-based character
    /// index in the text as given (the message shows it 1-based).
    #[error(
        "The invite contains a character that cannot be part of an invite (character {}). It looks mistyped; copy it again.",
        .position + 1
    )]
    BadCharacter {
        /// 0-based character index in the input text.
        position: usize,
    },
    /// The text ends before the invite does.
    #[error("The invite is incomplete. Copy the whole invite again.")]
    Truncated,
    /// The checksum does not match: a typo or a missing piece.
    #[error("The invite looks mistyped or incomplete; copy it again.")]
    ChecksumMismatch,
    /// A well-formed invite of a format this version does not know.
    #[error(
        "This invite needs a newer version of Salon (invite format {found}). Update Salon, then open the invite again."
    )]
    UnsupportedVersion {
        /// The format version found in the invite.
        found: u8,
    },
    /// The invite lists no host address.
    #[error("The invite has no address to reach the host. Ask the host for a new invite.")]
    NoCandidates,
    /// The invite lists more host addresses than allowed.
    #[error(
        "The invite lists more host addresses than Salon accepts. Ask the host for a new invite."
    )]
    TooManyCandidates,
    /// A host address of an unknown kind or family, or with port 0.
    #[error(
        "The invite contains a host address Salon cannot use. Ask the host for a new invite, or update Salon."
    )]
    BadCandidate,
    /// Bytes after the last candidate.
    #[error(
        "The invite contains unexpected extra data. Ask the host for a new invite, or update Salon."
    )]
    TrailingData,
    /// The host key is a small-order X25519 point: no real key is, and a handshake with
    /// it would have no secret from the host's side.
    #[error(
        "The invite's host key is invalid (a weak X25519 key no real host has). Ask the host for a new invite."
    )]
    WeakHostKey,
}

/// Everything a joiner needs: whom to talk to, where, and the secret that admits them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Invite {
    /// The host's static public key (the Noise `IK` responder key).
    pub host: PublicKey,
    /// The room to join.
    pub room_id: RoomId,
    /// The room secret (Noise PSK); private so it is only read on purpose
    /// ([`Invite::secret`]).
    secret: RoomSecret,
    /// Host addresses, best first; 1 to [`MAX_CANDIDATES`].
    pub candidates: Vec<Candidate>,
}

impl Invite {
    /// An invite from its parts (see [`Invite::validate`] for what they must satisfy).
    pub fn new(
        host: PublicKey,
        room_id: RoomId,
        secret: RoomSecret,
        candidates: Vec<Candidate>,
    ) -> Self {
        Self {
            host,
            room_id,
            secret,
            candidates,
        }
    }

    /// The room secret (the join PSK); whoever holds it can join.
    pub fn secret(&self) -> &RoomSecret {
        &self.secret
    }

    /// Checks what `encode` cannot express: the candidate count must be within
    /// [`MIN_CANDIDATES`]..=[`MAX_CANDIDATES`] and every port non-zero. Hosts call this
    /// before showing an invite, so they never hand out one that fails to parse.
    pub fn validate(&self) -> Result<(), InviteError> {
        if self.host.is_low_order() {
            return Err(InviteError::WeakHostKey);
        }
        if self.candidates.len() < MIN_CANDIDATES {
            return Err(InviteError::NoCandidates);
        }
        if self.candidates.len() > MAX_CANDIDATES {
            return Err(InviteError::TooManyCandidates);
        }
        if self.candidates.iter().any(|c| c.addr.port() == 0) {
            return Err(InviteError::BadCandidate);
        }
        Ok(())
    }

    /// The invite text. Only the first [`MAX_CANDIDATES`] candidates are written (the
    /// caller lists the best first); see [`Invite::validate`] for the other limits.
    ///
    /// The text contains the room secret: show it only to the people being invited.
    pub fn encode(&self) -> String {
        let mut payload = Vec::with_capacity(HEADER_LEN + 1 + MAX_CANDIDATES * 20 + 4);
        payload.push(VERSION);
        payload.extend_from_slice(self.host.as_bytes());
        payload.extend_from_slice(&self.room_id.0);
        payload.extend_from_slice(self.secret.as_bytes());
        let candidates = &self.candidates[..self.candidates.len().min(MAX_CANDIDATES)];
        // At most MAX_CANDIDATES (8), so it fits in a u8.
        payload.push(candidates.len() as u8);
        for c in candidates {
            payload.push(c.kind.to_u8());
            match c.addr.ip() {
                IpAddr::V4(ip) => {
                    payload.push(4);
                    payload.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    payload.push(6);
                    payload.extend_from_slice(&ip.octets());
                }
            }
            payload.extend_from_slice(&c.addr.port().to_be_bytes());
        }
        let text = armor(&mut payload);
        payload.zeroize();
        text
    }

    /// Reads an invite text; see the module docs for what is tolerated.
    pub fn parse(text: &str) -> Result<Invite, InviteError> {
        let mut payload = dearmor(text)?;
        let result = parse_payload(&payload);
        payload.zeroize();
        result
    }
}

impl fmt::Display for Invite {
    /// The invite text (as [`Invite::encode`]); it contains the room secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for Invite {
    type Err = InviteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Invite::parse(s)
    }
}

fn checksum(data: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut h = Blake2s256::new();
    h.update(CHECKSUM_DOMAIN);
    h.update(data);
    let digest = h.finalize();
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

/// Appends the checksum to `payload` and renders the text.
fn armor(payload: &mut Vec<u8>) -> String {
    let sum = checksum(payload);
    payload.extend_from_slice(&sum);
    let mut text = String::with_capacity(PREFIX.len() + payload.len() * 8 / 5 + 1);
    text.push_str(PREFIX);
    base32_encode(payload, &mut text);
    text
}

fn base32_encode(data: &[u8], out: &mut String) {
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
}

fn base32_value(c: char) -> Option<u32> {
    match c.to_ascii_lowercase() {
        c @ 'a'..='z' => Some(u32::from(c) - u32::from('a')),
        c @ '2'..='7' => Some(u32::from(c) - u32::from('2') + 26),
        _ => None,
    }
}

/// Strips the prefix and whitespace, decodes base32 and verifies the checksum; returns
/// the payload without the checksum.
fn dearmor(text: &str) -> Result<Vec<u8>, InviteError> {
    let mut significant = text.chars().enumerate().filter(|(_, c)| !c.is_whitespace());
    let mut seen_prefix = 0;
    for expected in PREFIX.chars() {
        match significant.next() {
            Some((_, c)) if c.to_ascii_lowercase() == expected => seen_prefix += 1,
            Some(_) => return Err(InviteError::NotAnInvite),
            None if seen_prefix == 0 => return Err(InviteError::Empty),
            // A cut-off prefix such as "salo" is most likely a truncated copy.
            None => return Err(InviteError::Truncated),
        }
    }

    let mut bytes = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for (position, c) in significant {
        let value = base32_value(c).ok_or(InviteError::BadCharacter { position })?;
        buffer = ((buffer << 5) | value) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            // Masked to 8 bits, so the narrowing is lossless.
            bytes.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    // A whole leftover character (5+ bits) cannot come from an encoder: text missing.
    if bits >= 5 {
        bytes.zeroize();
        return Err(InviteError::Truncated);
    }
    let canonical = buffer & ((1 << bits) - 1) == 0;

    if bytes.len() < 1 + CHECKSUM_LEN {
        bytes.zeroize();
        return Err(InviteError::Truncated);
    }
    let body_len = bytes.len() - CHECKSUM_LEN;
    let sum_ok = bool::from(checksum(&bytes[..body_len]).ct_eq(&bytes[body_len..]));
    if !sum_ok || !canonical {
        let looks_cut = bytes[0] == VERSION && bytes.len() < MIN_V1_LEN;
        bytes.zeroize();
        return Err(if looks_cut {
            InviteError::Truncated
        } else {
            InviteError::ChecksumMismatch
        });
    }
    bytes.truncate(body_len);
    Ok(bytes)
}

/// A cursor over untrusted bytes: every read is bounds-checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], InviteError> {
        if self.rest.len() < n {
            return Err(InviteError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], InviteError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, InviteError> {
        Ok(self.array::<1>()?[0])
    }
}

fn parse_payload(payload: &[u8]) -> Result<Invite, InviteError> {
    let mut r = Reader { rest: payload };
    let version = r.u8()?;
    if version != VERSION {
        return Err(InviteError::UnsupportedVersion { found: version });
    }
    let host = PublicKey(r.array()?);
    if host.is_low_order() {
        return Err(InviteError::WeakHostKey);
    }
    let room_id = RoomId(r.array()?);
    let secret = RoomSecret::from_bytes(r.array()?);
    let n = usize::from(r.u8()?);
    if n < MIN_CANDIDATES {
        return Err(InviteError::NoCandidates);
    }
    if n > MAX_CANDIDATES {
        return Err(InviteError::TooManyCandidates);
    }
    let mut candidates = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = CandidateKind::from_u8(r.u8()?).ok_or(InviteError::BadCandidate)?;
        let ip = match r.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
            _ => return Err(InviteError::BadCandidate),
        };
        let port = u16::from_be_bytes(r.array()?);
        if port == 0 {
            return Err(InviteError::BadCandidate);
        }
        candidates.push(Candidate {
            kind,
            addr: SocketAddr::new(ip, port),
        });
    }
    if !r.rest.is_empty() {
        return Err(InviteError::TrailingData);
    }
    Ok(Invite {
        host,
        room_id,
        secret,
        candidates,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Invite {
        Invite {
            host: PublicKey([0x3f; 32]),
            room_id: RoomId([0xa5; 16]),
            secret: RoomSecret::from_bytes([0x5c; 32]),
            candidates: vec![
                Candidate {
                    kind: CandidateKind::Lan,
                    addr: "192.168.1.20:40000".parse().unwrap(),
                },
                Candidate {
                    kind: CandidateKind::Reflexive,
                    addr: "[2001:db8::7]:51820".parse().unwrap(),
                },
                Candidate {
                    kind: CandidateKind::Relay,
                    addr: "203.0.113.9:3478".parse().unwrap(),
                },
            ],
        }
    }

    /// Builds an invite text from a raw payload with a valid checksum, to reach the
    /// structural checks behind the checksum.
    fn raw(payload: &[u8]) -> String {
        armor(&mut payload.to_vec())
    }

    fn header(version: u8) -> Vec<u8> {
        let mut p = vec![version];
        p.extend_from_slice(&[1; 32]);
        p.extend_from_slice(&[2; 16]);
        p.extend_from_slice(&[3; 32]);
        p
    }

    fn v4_candidate(kind: u8, family: u8, port: u16) -> Vec<u8> {
        let mut c = vec![kind, family, 10, 0, 0, 1];
        c.extend_from_slice(&port.to_be_bytes());
        c
    }

    #[test]
    fn round_trips_sample_and_starts_with_prefix() {
        let text = sample().encode();
        assert!(text.starts_with("salon:"));
        assert!(
            text[6..]
                .bytes()
                .all(|b| BASE32_ALPHABET.contains(&b) && !b.is_ascii_uppercase())
        );
        assert_eq!(Invite::parse(&text).unwrap(), sample());
        assert_eq!(text.parse::<Invite>().unwrap(), sample());
        assert_eq!(sample().to_string(), text);
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            let mut out = String::new();
            base32_encode(input.as_bytes(), &mut out);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn every_single_character_substitution_is_caught() {
        let text = sample().encode();
        let chars: Vec<char> = text.chars().collect();
        let replacements: Vec<char> = "abcdefghijklmnopqrstuvwxyz234567:0189!-_.=/"
            .chars()
            .collect();
        for i in 0..chars.len() {
            for &r in &replacements {
                if r.eq_ignore_ascii_case(&chars[i]) {
                    continue;
                }
                let mut mutated = chars.clone();
                mutated[i] = r;
                let mutated: String = mutated.into_iter().collect();
                let result = Invite::parse(&mutated);
                assert!(result.is_err(), "substitution {i}->{r} parsed: {mutated}");
                if i >= PREFIX.len() && base32_value(r).is_none() {
                    assert_eq!(result, Err(InviteError::BadCharacter { position: i }));
                }
            }
        }
    }

    #[test]
    fn truncation_at_every_length_is_an_error() {
        let text = sample().encode();
        for len in 0..text.len() {
            let result = Invite::parse(&text[..len]);
            assert!(result.is_err(), "length {len}");
        }
        assert_eq!(Invite::parse(""), Err(InviteError::Empty));
        assert_eq!(Invite::parse("sal"), Err(InviteError::Truncated));
        assert_eq!(Invite::parse("salon:"), Err(InviteError::Truncated));
        assert_eq!(Invite::parse(&text[..40]), Err(InviteError::Truncated));
    }

    #[test]
    fn whitespace_and_case_are_tolerated() {
        let text = sample().encode();
        let wrapped: String = text
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let sep = match i % 23 {
                    22 => Some('\n'),
                    11 => Some(' '),
                    5 => Some('\t'),
                    _ => None,
                };
                std::iter::once(c).chain(sep)
            })
            .collect();
        let messy = format!("  \r\n{}\r\n  ", wrapped.to_uppercase());
        assert_eq!(Invite::parse(&messy).unwrap(), sample());
    }

    #[test]
    fn bad_character_position_counts_characters_of_the_input() {
        let text = format!("  {}", sample().encode());
        let mut chars: Vec<char> = text.chars().collect();
        chars[20] = 'é';
        let mutated: String = chars.into_iter().collect();
        assert_eq!(
            Invite::parse(&mutated),
            Err(InviteError::BadCharacter { position: 20 })
        );
        assert!(
            InviteError::BadCharacter { position: 20 }
                .to_string()
                .contains("character 21")
        );
    }

    #[test]
    fn wrong_prefix_is_not_an_invite() {
        assert_eq!(
            Invite::parse("https://example.com"),
            Err(InviteError::NotAnInvite)
        );
        let text = sample().encode().replacen("salon:", "salad:", 1);
        assert_eq!(Invite::parse(&text), Err(InviteError::NotAnInvite));
    }

    #[test]
    fn newer_version_is_reported_as_unsupported() {
        let mut p = header(2);
        p.push(1);
        p.extend_from_slice(&v4_candidate(1, 4, 9));
        assert_eq!(
            Invite::parse(&raw(&p)),
            Err(InviteError::UnsupportedVersion { found: 2 })
        );
        // Even a short future payload is recognised, since the checksum comes first.
        assert_eq!(
            Invite::parse(&raw(&[9, 1, 2])),
            Err(InviteError::UnsupportedVersion { found: 9 })
        );
    }

    #[test]
    fn candidate_count_limits_are_enforced() {
        let mut p = header(1);
        p.push(0);
        assert_eq!(Invite::parse(&raw(&p)), Err(InviteError::NoCandidates));

        let mut p = header(1);
        p.push(9);
        for _ in 0..9 {
            p.extend_from_slice(&v4_candidate(1, 4, 9));
        }
        assert_eq!(Invite::parse(&raw(&p)), Err(InviteError::TooManyCandidates));

        let mut p = header(1);
        p.push(8);
        for _ in 0..8 {
            p.extend_from_slice(&v4_candidate(1, 4, 9));
        }
        assert_eq!(Invite::parse(&raw(&p)).unwrap().candidates.len(), 8);
    }

    #[test]
    fn unknown_kind_family_or_zero_port_is_a_bad_candidate() {
        for candidate in [
            v4_candidate(0, 4, 9),
            v4_candidate(4, 4, 9),
            v4_candidate(1, 5, 9),
            v4_candidate(1, 4, 0),
        ] {
            let mut p = header(1);
            p.push(1);
            p.extend_from_slice(&candidate);
            assert_eq!(Invite::parse(&raw(&p)), Err(InviteError::BadCandidate));
        }
    }

    #[test]
    fn checksummed_but_short_or_long_payloads_are_rejected() {
        let mut p = header(1);
        p.push(2);
        p.extend_from_slice(&v4_candidate(1, 4, 9));
        assert_eq!(Invite::parse(&raw(&p)), Err(InviteError::Truncated));

        let mut p = header(1);
        p.push(1);
        p.extend_from_slice(&v4_candidate(1, 4, 9));
        p.push(0);
        assert_eq!(Invite::parse(&raw(&p)), Err(InviteError::TrailingData));
    }

    #[test]
    fn encode_writes_at_most_max_candidates_and_validate_flags_limits() {
        let mut inv = sample();
        let c = inv.candidates[0];
        inv.candidates = vec![c; MAX_CANDIDATES + 3];
        assert_eq!(inv.validate(), Err(InviteError::TooManyCandidates));
        let parsed = Invite::parse(&inv.encode()).unwrap();
        assert_eq!(parsed.candidates.len(), MAX_CANDIDATES);
        inv.candidates.clear();
        assert_eq!(inv.validate(), Err(InviteError::NoCandidates));
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn invite_with_a_low_order_host_key_is_refused_with_a_clear_error() {
        let mut p_minus_one = [0xff; 32];
        p_minus_one[0] = 0xec;
        p_minus_one[31] = 0x7f;
        for key in [[0u8; 32], p_minus_one] {
            let mut invite = sample();
            invite.host = PublicKey(key);
            assert_eq!(invite.validate(), Err(InviteError::WeakHostKey));
            // Built by hand, as a hostile or broken host could (encode does not validate).
            let text = invite.encode();
            let err = text.parse::<Invite>().unwrap_err();
            assert_eq!(err, InviteError::WeakHostKey);
            assert!(err.to_string().contains("host key is invalid"), "{err}");
        }
    }

    #[test]
    fn room_secret_debug_is_redacted() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("92, 92"), "{text}");
        assert!(text.contains("redacted"));
    }

    #[test]
    fn every_error_message_tells_the_user_what_to_do() {
        let all = [
            InviteError::Empty,
            InviteError::NotAnInvite,
            InviteError::BadCharacter { position: 0 },
            InviteError::Truncated,
            InviteError::ChecksumMismatch,
            InviteError::UnsupportedVersion { found: 2 },
            InviteError::NoCandidates,
            InviteError::TooManyCandidates,
            InviteError::BadCandidate,
            InviteError::TrailingData,
        ];
        for e in all {
            let msg = e.to_string();
            assert!(
                ["Paste", "Check", "copy", "Copy", "Update", "Ask"]
                    .iter()
                    .any(|verb| msg.contains(verb)),
                "{msg}"
            );
        }
    }

    fn candidate() -> impl Strategy<Value = Candidate> {
        let kind = prop_oneof![
            Just(CandidateKind::Lan),
            Just(CandidateKind::Reflexive),
            Just(CandidateKind::Relay)
        ];
        let ip = prop_oneof![
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into())),
            any::<[u8; 16]>().prop_map(|o| IpAddr::V6(o.into())),
        ];
        (kind, ip, 1u16..).prop_map(|(kind, ip, port)| Candidate {
            kind,
            addr: SocketAddr::new(ip, port),
        })
    }

    fn invite() -> impl Strategy<Value = Invite> {
        (
            any::<[u8; 32]>(),
            any::<[u8; 16]>(),
            any::<[u8; 32]>(),
            proptest::collection::vec(candidate(), MIN_CANDIDATES..=MAX_CANDIDATES),
        )
            .prop_map(|(host, room, secret, candidates)| Invite {
                host: PublicKey(host),
                room_id: RoomId(room),
                secret: RoomSecret::from_bytes(secret),
                candidates,
            })
    }

    proptest! {
        #[test]
        fn random_invites_round_trip(inv in invite()) {
            prop_assert_eq!(inv.validate(), Ok(()));
            let text = inv.encode();
            prop_assert_eq!(Invite::parse(&text), Ok(inv));
        }

        #[test]
        fn arbitrary_text_never_panics(s in ".{0,300}") {
            let _ = Invite::parse(&s);
            let _ = Invite::parse(&format!("salon:{s}"));
        }
    }
}
