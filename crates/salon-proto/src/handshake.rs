//! The two Noise handshakes, their prologues and payloads, and the keys of the MAC layer.
//!
//! * Joining the host: `Noise_IKpsk1_25519_ChaChaPoly_BLAKE2s`, PSK = the invite's room
//!   secret. The joiner knows the host's static key from the invite (IK); with the PSK
//!   mixed in at the end of message 1, only invite holders can produce a message 1 the host
//!   accepts, and the host learns the joiner's static key only then.
//! * Member links: `Noise_KKpsk0_25519_ChaChaPoly_BLAKE2s`, PSK = the current epoch
//!   secret. Both sides know each other's static keys from the roster; a member removed in
//!   an earlier epoch lacks the PSK and cannot complete a link.
//!
//! Payloads carry no names, room data or chat; message-1 payloads (authenticated by `es`
//! and `ss` and the PSK only, so exposed to key-compromise impersonation) hold only a
//! replay timestamp and an incarnation number, and nothing is acted on until the session
//! is confirmed by the first transport message.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use snow::{HandshakeState, StatelessTransportState};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::codec::{Reader, Writer};
use crate::cookie::{hash, mac};
use crate::identity::{Identity, PublicKey, is_low_order};
use crate::wire::{
    INIT_NOISE_LEN, JOIN_INIT_PAYLOAD_LEN, LINK_INIT_PAYLOAD_LEN, MAC_LEN, RESPONSE_NOISE_LEN,
    RESPONSE_PAYLOAD_LEN,
};

/// Noise pattern for joining a room through its host.
pub const JOIN_PATTERN: &str = "Noise_IKpsk1_25519_ChaChaPoly_BLAKE2s";
/// Noise pattern for links between members.
pub const LINK_PATTERN: &str = "Noise_KKpsk0_25519_ChaChaPoly_BLAKE2s";
/// Version byte inside handshake payloads.
pub const PAYLOAD_VERSION: u8 = 1;

/// Why a handshake message was rejected. Callers drop the datagram; none of these is
/// shown to a peer.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Noise rejected the message (wrong key, wrong PSK, tampered bytes).
    #[error("noise: {0}")]
    Noise(#[from] snow::Error),
    /// The decrypted payload is not one this version understands.
    #[error("malformed handshake payload")]
    Payload,
    /// The peer's static key is missing or malformed.
    #[error("missing remote static key")]
    RemoteStatic,
    /// A key of the peer (ephemeral or static) is a small-order point, or a DH gave the
    /// all-zero secret: the peer would contribute nothing to the keys.
    #[error("low-order X25519 key")]
    LowOrderKey,
}

/// Which handshake a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A joiner and the host (IKpsk1 with the room secret).
    Join,
    /// Two members (KKpsk0 with the epoch secret).
    Link,
}

/// Payload of message 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitPayload {
    /// Strictly increasing per initiator (microseconds of wall time); a responder drops an
    /// initiation not newer than the last one it accepted from that key, so a replayed
    /// initiation gets no answer.
    pub timestamp: u64,
    /// Random per running instance: a new value tells the responder the peer restarted,
    /// so its reliable channel starts over.
    pub incarnation: u64,
}

/// The host's answer to a join, or a member's to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Welcome.
    Accepted,
    /// You were removed from this room and cannot rejoin it.
    Removed,
    /// The room has reached its member limit.
    Full,
    /// The room has ended.
    Ended,
}

impl Status {
    fn to_byte(self) -> u8 {
        match self {
            Status::Accepted => 0,
            Status::Removed => 1,
            Status::Full => 2,
            Status::Ended => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Status::Accepted,
            1 => Status::Removed,
            2 => Status::Full,
            3 => Status::Ended,
            _ => return None,
        })
    }
}

/// Payload of message 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePayload {
    /// Whether the responder accepts.
    pub status: Status,
    /// The responder's incarnation (see [`InitPayload::incarnation`]).
    pub incarnation: u64,
    /// The responder's handshake clock (as [`InitPayload::timestamp`]); 0 if not given.
    /// The initiator takes it as a floor for the responder's own initiations, so one
    /// the initiator never received (lost, or unreadable when it arrived) cannot be
    /// replayed to it afterwards.
    pub timestamp: u64,
}

impl InitPayload {
    fn encode(&self, len: usize) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PAYLOAD_VERSION)
            .u64(self.timestamp)
            .u64(self.incarnation);
        let mut out = w.into_inner();
        out.resize(len, 0);
        out
    }

    fn decode(b: &[u8]) -> Result<Self, HandshakeError> {
        let mut r = Reader::new(b);
        if r.u8().map_err(|_| HandshakeError::Payload)? != PAYLOAD_VERSION {
            return Err(HandshakeError::Payload);
        }
        let timestamp = r.u64().map_err(|_| HandshakeError::Payload)?;
        let incarnation = r.u64().map_err(|_| HandshakeError::Payload)?;
        Ok(Self {
            timestamp,
            incarnation,
        })
    }
}

impl ResponsePayload {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PAYLOAD_VERSION)
            .u8(self.status.to_byte())
            .u64(self.incarnation)
            .u64(self.timestamp);
        let mut out = w.into_inner();
        out.resize(RESPONSE_PAYLOAD_LEN, 0);
        out
    }

    fn decode(b: &[u8]) -> Result<Self, HandshakeError> {
        let mut r = Reader::new(b);
        let bad = |_| HandshakeError::Payload;
        if r.u8().map_err(bad)? != PAYLOAD_VERSION {
            return Err(HandshakeError::Payload);
        }
        let status = Status::from_byte(r.u8().map_err(bad)?).ok_or(HandshakeError::Payload)?;
        let incarnation = r.u64().map_err(bad)?;
        // Older encoders left these bytes as padding: zero, "not given".
        let timestamp = r.u64().map_err(bad)?;
        Ok(Self {
            status,
            incarnation,
            timestamp,
        })
    }
}

/// Prologue of a join handshake: binds it to the room.
pub fn join_prologue(room_id: &[u8; 16]) -> Vec<u8> {
    let mut p = b"salon/1 join".to_vec();
    p.extend_from_slice(room_id);
    p
}

/// Prologue of a link handshake: binds it to the room and the epoch.
pub fn link_prologue(room_id: &[u8; 16], epoch: u64) -> Vec<u8> {
    let mut p = b"salon/1 link".to_vec();
    p.extend_from_slice(room_id);
    p.extend_from_slice(&epoch.to_be_bytes());
    p
}

/// mac1 key for joins: only holders of the invite (host key and room secret) can compute
/// it, so the host answers nobody else and spends no DH on them. The host keys it with its
/// *current* room secret only, so an invite replaced by a removal or revoked matches
/// nothing.
pub fn join_mac1_key(host: &PublicKey, room_secret: &[u8; 32]) -> [u8; 32] {
    hash(&[b"salon/1 mac1 join", host.as_bytes(), room_secret])
}

/// mac1 key for links to `responder` in the epoch whose secret is given.
pub fn link_mac1_key(responder: &PublicKey, epoch_secret: &[u8; 32]) -> [u8; 32] {
    hash(&[b"salon/1 mac1 link", responder.as_bytes(), epoch_secret])
}

/// Key that seals cookie replies for initiations under `mac1_key`.
pub fn cookie_key(mac1_key: &[u8; 32]) -> [u8; 32] {
    hash(&[b"salon/1 cookie", mac1_key])
}

/// The key hint of a link initiation: identifies the initiator to members of the epoch
/// (and to nobody else) without a trial DH per member. `ephemeral` is the cleartext `e`
/// at the start of the Noise message, so hints never repeat.
pub fn link_hint(
    epoch_secret: &[u8; 32],
    initiator: &PublicKey,
    ephemeral: &[u8],
) -> [u8; MAC_LEN] {
    let key = hash(&[b"salon/1 hint", epoch_secret]);
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(initiator.as_bytes());
    data.extend_from_slice(ephemeral);
    mac(&key, &data)
}

/// A snow resolver whose randomness comes from a seed we supply, so the whole protocol
/// stays deterministic under a seeded simulation (the driver seeds from the OS).
struct SeededResolver {
    seed: [u8; 32],
}

struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        rand_core::RngCore::fill_bytes(&mut self.0, dest);
        Ok(())
    }
}

/// snow's X25519 with the all-zero check RFC 7748 section 6.1 allows: snow 0.10 does
/// not make it (Noise leaves it to the application), so a small-order key that slipped
/// past [`is_low_order`] still fails the handshake instead of yielding a key the peer
/// did not contribute to.
pub struct CheckedDh(Box<dyn Dh>);

impl CheckedDh {
    /// snow's default Curve25519, wrapped; `None` only if snow lacks Curve25519.
    pub fn curve25519() -> Option<Self> {
        DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .map(CheckedDh)
    }
}

impl Dh for CheckedDh {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn pub_len(&self) -> usize {
        self.0.pub_len()
    }
    fn priv_len(&self) -> usize {
        self.0.priv_len()
    }
    fn set(&mut self, privkey: &[u8]) {
        self.0.set(privkey);
    }
    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        self.0.generate(rng)
    }
    fn pubkey(&self) -> &[u8] {
        self.0.pubkey()
    }
    fn privkey(&self) -> &[u8] {
        self.0.privkey()
    }
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        // snow's dalek wrapper asserts on short keys: refuse them here instead.
        if pubkey.len() < self.0.pub_len() {
            return Err(snow::Error::Dh);
        }
        self.0.dh(pubkey, out)?;
        let len = self.0.dh_len().min(out.len());
        let zero = out[..len]
            .iter()
            .fold(subtle::Choice::from(1), |acc, b| acc & b.ct_eq(&0));
        if bool::from(zero) {
            out.zeroize();
            return Err(snow::Error::Dh);
        }
        Ok(())
    }
    fn dh_len(&self) -> usize {
        self.0.dh_len()
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(self.seed))))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => CheckedDh::curve25519().map(|d| Box::new(d) as Box<dyn Dh>),
            _ => None,
        }
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

fn builder(pattern: &str, seed: [u8; 32]) -> Result<snow::Builder<'static>, HandshakeError> {
    let params = pattern.parse()?;
    Ok(snow::Builder::with_resolver(
        params,
        Box::new(SeededResolver { seed }),
    ))
}

/// Secrets a handshake is keyed with.
pub struct Keys<'a> {
    /// Our identity.
    pub local: &'a Identity,
    /// The PSK: room secret for joins, epoch secret for links.
    pub psk: &'a [u8; 32],
    /// The prologue ([`join_prologue`] or [`link_prologue`]).
    pub prologue: &'a [u8],
}

/// Starts a handshake as initiator and writes message 1 (exactly [`INIT_NOISE_LEN`] bytes).
pub fn initiate(
    kind: Kind,
    keys: &Keys<'_>,
    remote: &PublicKey,
    payload: &InitPayload,
    seed: [u8; 32],
) -> Result<(HandshakeState, Vec<u8>), HandshakeError> {
    let (pattern, psk_at, payload_len) = match kind {
        Kind::Join => (JOIN_PATTERN, 1, JOIN_INIT_PAYLOAD_LEN),
        Kind::Link => (LINK_PATTERN, 0, LINK_INIT_PAYLOAD_LEN),
    };
    if remote.is_low_order() {
        return Err(HandshakeError::LowOrderKey);
    }
    let mut hs = builder(pattern, seed)?
        .local_private_key(keys.local.secret_bytes())?
        .remote_public_key(remote.as_bytes())?
        .psk(psk_at, keys.psk)?
        .prologue(keys.prologue)?
        .build_initiator()?;
    let mut msg = vec![0u8; INIT_NOISE_LEN];
    let n = hs.write_message(&payload.encode(payload_len), &mut msg)?;
    if n != INIT_NOISE_LEN {
        return Err(HandshakeError::Payload);
    }
    Ok((hs, msg))
}

/// Reads message 1 as responder. For links the initiator's key must be known (found via
/// the key hint); for joins it is learned from the message.
pub fn accept(
    kind: Kind,
    keys: &Keys<'_>,
    initiator: Option<&PublicKey>,
    message: &[u8],
    seed: [u8; 32],
) -> Result<(HandshakeState, PublicKey, InitPayload), HandshakeError> {
    let (pattern, psk_at) = match kind {
        Kind::Join => (JOIN_PATTERN, 1),
        Kind::Link => (LINK_PATTERN, 0),
    };
    // The cleartext ephemeral leads the message: refuse a small-order one before any DH.
    if message.get(..32).is_none_or(is_low_order) || initiator.is_some_and(|k| k.is_low_order()) {
        return Err(HandshakeError::LowOrderKey);
    }
    let mut b = builder(pattern, seed)?
        .local_private_key(keys.local.secret_bytes())?
        .psk(psk_at, keys.psk)?
        .prologue(keys.prologue)?;
    if let Some(remote) = initiator {
        b = b.remote_public_key(remote.as_bytes())?;
    }
    let mut hs = b.build_responder()?;
    let mut payload = vec![0u8; INIT_NOISE_LEN];
    let n = hs.read_message(message, &mut payload)?;
    let remote = hs
        .get_remote_static()
        .and_then(PublicKey::from_slice)
        .ok_or(HandshakeError::RemoteStatic)?;
    // Decrypted from an IK message 1 (joins); `CheckedDh` already failed `ss` on such a
    // key, but say so explicitly rather than rely on it.
    if remote.is_low_order() {
        return Err(HandshakeError::LowOrderKey);
    }
    let parsed = InitPayload::decode(payload.get(..n).ok_or(HandshakeError::Payload)?)?;
    Ok((hs, remote, parsed))
}

/// Writes message 2 and turns the responder's state into transport keys.
pub fn respond(
    mut hs: HandshakeState,
    payload: &ResponsePayload,
) -> Result<(StatelessTransportState, Vec<u8>), HandshakeError> {
    let mut msg = vec![0u8; RESPONSE_NOISE_LEN];
    let n = hs.write_message(&payload.encode(), &mut msg)?;
    if n != RESPONSE_NOISE_LEN {
        return Err(HandshakeError::Payload);
    }
    Ok((hs.into_stateless_transport_mode()?, msg))
}

/// Reads message 2 as initiator and turns the state into transport keys.
pub fn complete(
    mut hs: HandshakeState,
    message: &[u8],
) -> Result<(StatelessTransportState, ResponsePayload), HandshakeError> {
    if message.get(..32).is_none_or(is_low_order) {
        return Err(HandshakeError::LowOrderKey);
    }
    let mut payload = vec![0u8; RESPONSE_NOISE_LEN];
    let n = hs.read_message(message, &mut payload)?;
    let parsed = ResponsePayload::decode(payload.get(..n).ok_or(HandshakeError::Payload)?)?;
    Ok((hs.into_stateless_transport_mode()?, parsed))
}

/// Test support: a snow builder whose ephemeral key is the given (small-order) point, as
/// an attacker would send it. Every DH with that ephemeral is all zeros for both sides,
/// which the attacker can compute without any private key, so without the checks the
/// handshake completes.
#[cfg(test)]
fn attacker_builder(
    pattern: &str,
    ephemeral: [u8; 32],
) -> Result<snow::Builder<'static>, HandshakeError> {
    struct Attacker([u8; 32]);
    struct FakeDh {
        inner: Box<dyn Dh>,
        fake: Option<[u8; 32]>,
        ephemeral: [u8; 32],
    }
    impl Dh for FakeDh {
        fn name(&self) -> &'static str {
            "25519"
        }
        fn pub_len(&self) -> usize {
            32
        }
        fn priv_len(&self) -> usize {
            32
        }
        fn set(&mut self, privkey: &[u8]) {
            self.inner.set(privkey);
            self.fake = None;
        }
        fn generate(&mut self, _rng: &mut dyn Random) -> Result<(), snow::Error> {
            self.fake = Some(self.ephemeral);
            Ok(())
        }
        fn pubkey(&self) -> &[u8] {
            match &self.fake {
                Some(k) => k,
                None => self.inner.pubkey(),
            }
        }
        fn privkey(&self) -> &[u8] {
            self.inner.privkey()
        }
        fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
            if self.fake.is_some() {
                out[..32].fill(0);
                Ok(())
            } else {
                self.inner.dh(pubkey, out)
            }
        }
    }
    impl CryptoResolver for Attacker {
        fn resolve_rng(&self) -> Option<Box<dyn Random>> {
            Some(Box::new(SeededRandom(ChaCha20Rng::from_seed([0; 32]))))
        }
        fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
            Some(Box::new(FakeDh {
                inner: DefaultResolver.resolve_dh(choice)?,
                fake: None,
                ephemeral: self.0,
            }))
        }
        fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
            DefaultResolver.resolve_hash(choice)
        }
        fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
            DefaultResolver.resolve_cipher(choice)
        }
    }
    Ok(snow::Builder::with_resolver(
        pattern.parse()?,
        Box::new(Attacker(ephemeral)),
    ))
}

/// Test support: message 1 as an initiator holding the PSK would build it around a
/// small-order ephemeral (see `attacker_builder`).
#[cfg(test)]
pub(crate) fn initiate_with_low_order_ephemeral(
    kind: Kind,
    keys: &Keys<'_>,
    remote: &PublicKey,
    payload: &InitPayload,
    ephemeral: [u8; 32],
) -> Result<Vec<u8>, HandshakeError> {
    let (pattern, psk_at, payload_len) = match kind {
        Kind::Join => (JOIN_PATTERN, 1, JOIN_INIT_PAYLOAD_LEN),
        Kind::Link => (LINK_PATTERN, 0, LINK_INIT_PAYLOAD_LEN),
    };
    let mut hs = attacker_builder(pattern, ephemeral)?
        .local_private_key(keys.local.secret_bytes())?
        .remote_public_key(remote.as_bytes())?
        .psk(psk_at, keys.psk)?
        .prologue(keys.prologue)?
        .build_initiator()?;
    let mut msg = vec![0u8; INIT_NOISE_LEN];
    let n = hs.write_message(&payload.encode(payload_len), &mut msg)?;
    msg.truncate(n);
    Ok(msg)
}

/// Test support: message 2 as a responder (a malicious host or member) would build it
/// around a small-order ephemeral, robbing the session of its forward secrecy.
#[cfg(test)]
fn respond_with_low_order_ephemeral(
    kind: Kind,
    keys: &Keys<'_>,
    initiator: &PublicKey,
    message: &[u8],
    ephemeral: [u8; 32],
) -> Result<Vec<u8>, HandshakeError> {
    let (pattern, psk_at) = match kind {
        Kind::Join => (JOIN_PATTERN, 1),
        Kind::Link => (LINK_PATTERN, 0),
    };
    let mut b = attacker_builder(pattern, ephemeral)?
        .local_private_key(keys.local.secret_bytes())?
        .psk(psk_at, keys.psk)?
        .prologue(keys.prologue)?;
    if kind == Kind::Link {
        b = b.remote_public_key(initiator.as_bytes())?;
    }
    let mut hs = b.build_responder()?;
    let mut payload = vec![0u8; INIT_NOISE_LEN];
    hs.read_message(message, &mut payload)?;
    let reply = ResponsePayload {
        status: Status::Accepted,
        incarnation: 1,
        timestamp: 0,
    };
    let mut msg = vec![0u8; RESPONSE_NOISE_LEN];
    let n = hs.write_message(&reply.encode(), &mut msg)?;
    msg.truncate(n);
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn ident(n: u8) -> Identity {
        Identity::generate(&mut ChaCha20Rng::from_seed([n; 32]))
    }

    fn payload() -> InitPayload {
        InitPayload {
            timestamp: 5,
            incarnation: 6,
        }
    }

    fn run(kind: Kind, psk_i: [u8; 32], psk_r: [u8; 32]) -> Result<(), HandshakeError> {
        let (a, b) = (ident(1), ident(2));
        let prologue = join_prologue(&[9; 16]);
        let (hs, m1) = initiate(
            kind,
            &Keys {
                local: &a,
                psk: &psk_i,
                prologue: &prologue,
            },
            &b.public_key(),
            &payload(),
            [3; 32],
        )?;
        let known = (kind == Kind::Link).then(|| a.public_key());
        let (rhs, remote, p) = accept(
            kind,
            &Keys {
                local: &b,
                psk: &psk_r,
                prologue: &prologue,
            },
            known.as_ref(),
            &m1,
            [4; 32],
        )?;
        assert_eq!(remote, a.public_key());
        assert_eq!(p, payload());
        let resp = ResponsePayload {
            status: Status::Accepted,
            incarnation: 77,
            timestamp: 1_700_000_000_000_001,
        };
        let (rt, m2) = respond(rhs, &resp)?;
        let (it, got) = complete(hs, &m2)?;
        assert_eq!(got, resp);
        let mut ct = [0u8; 64];
        let n = it.write_message(0, b"hello", &mut ct)?;
        let mut pt = [0u8; 64];
        let m = rt.read_message(0, &ct[..n], &mut pt)?;
        assert_eq!(&pt[..m], b"hello");
        Ok(())
    }

    #[test]
    fn join_and_link_handshakes_complete_with_matching_psk() {
        run(Kind::Join, [7; 32], [7; 32]).unwrap();
        run(Kind::Link, [7; 32], [7; 32]).unwrap();
    }

    #[test]
    fn wrong_psk_fails_at_message_one() {
        assert!(run(Kind::Join, [7; 32], [8; 32]).is_err());
        assert!(run(Kind::Link, [7; 32], [8; 32]).is_err());
    }

    const ORDER_8: [u8; 32] = [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ];

    #[test]
    fn message_one_with_a_low_order_ephemeral_is_refused() {
        let (a, b) = (ident(1), ident(2));
        let prologue = join_prologue(&[9; 16]);
        for kind in [Kind::Join, Kind::Link] {
            for e in [[0u8; 32], ORDER_8] {
                let ka = Keys {
                    local: &a,
                    psk: &[7; 32],
                    prologue: &prologue,
                };
                let m1 =
                    initiate_with_low_order_ephemeral(kind, &ka, &b.public_key(), &payload(), e)
                        .unwrap();
                assert_eq!(&m1[..32], &e);
                let kb = Keys {
                    local: &b,
                    psk: &[7; 32],
                    prologue: &prologue,
                };
                let known = (kind == Kind::Link).then(|| a.public_key());
                let got = accept(kind, &kb, known.as_ref(), &m1, [4; 32]);
                assert!(
                    matches!(got, Err(HandshakeError::LowOrderKey)),
                    "{kind:?} {:?}",
                    got.err()
                );
            }
        }
    }

    #[test]
    fn message_two_with_a_low_order_ephemeral_is_refused() {
        let (a, b) = (ident(1), ident(2));
        let prologue = join_prologue(&[9; 16]);
        for kind in [Kind::Join, Kind::Link] {
            for e in [[0u8; 32], ORDER_8] {
                let keys = |local| Keys {
                    local,
                    psk: &[7; 32],
                    prologue: &prologue,
                };
                let (hs, m1) =
                    initiate(kind, &keys(&a), &b.public_key(), &payload(), [3; 32]).unwrap();
                let m2 = respond_with_low_order_ephemeral(kind, &keys(&b), &a.public_key(), &m1, e)
                    .unwrap();
                assert_eq!(&m2[..32], &e);
                let got = complete(hs, &m2);
                assert!(
                    matches!(got, Err(HandshakeError::LowOrderKey)),
                    "{kind:?} {:?}",
                    got.err()
                );
            }
        }
    }

    #[test]
    fn checked_dh_refuses_the_all_zero_secret_the_plain_one_returns() {
        let mut plain = DefaultResolver.resolve_dh(&DHChoice::Curve25519).unwrap();
        let mut checked = CheckedDh::curve25519().unwrap();
        plain.set(&[3; 32]);
        checked.set(&[3; 32]);
        let mut out = [0xaa; 32];
        plain.dh(&ORDER_8, &mut out).unwrap();
        assert_eq!(out, [0; 32], "snow itself does not check");
        assert!(checked.dh(&ORDER_8, &mut out).is_err());
        assert!(checked.dh(&[1; 31], &mut out).is_err(), "short key");
        checked
            .dh(ident(5).public_key().as_bytes(), &mut out)
            .unwrap();
        assert_ne!(out, [0; 32]);
    }

    #[test]
    fn initiating_to_a_low_order_key_is_refused() {
        let a = ident(1);
        let k = Keys {
            local: &a,
            psk: &[1; 32],
            prologue: b"p",
        };
        let got = initiate(Kind::Join, &k, &PublicKey(ORDER_8), &payload(), [5; 32]);
        assert!(matches!(got, Err(HandshakeError::LowOrderKey)));
    }

    #[test]
    fn same_seed_gives_same_bytes_for_deterministic_simulation() {
        let (a, b) = (ident(1), ident(2));
        let k = Keys {
            local: &a,
            psk: &[1; 32],
            prologue: b"p",
        };
        let (_, m1) = initiate(Kind::Join, &k, &b.public_key(), &payload(), [5; 32]).unwrap();
        let (_, m2) = initiate(Kind::Join, &k, &b.public_key(), &payload(), [5; 32]).unwrap();
        let (_, m3) = initiate(Kind::Join, &k, &b.public_key(), &payload(), [6; 32]).unwrap();
        assert_eq!(m1, m2);
        assert_ne!(m1, m3);
    }
}
