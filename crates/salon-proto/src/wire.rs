//! Datagram layouts: the four packet types Salon sends, parsed once by (type, length).
//!
//! Every datagram has a fixed length for its type (transport datagrams: one of a few
//! [`BUCKETS`]), so the size of a packet tells an observer only its type. See
//! `docs/PROTOCOL.md` for the byte-level specification and the reasons behind it.

use crate::codec::{DecodeError, Reader};

/// Type byte of a handshake initiation (join or member link: indistinguishable on the wire).
pub const TYPE_INIT: u8 = 1;
/// Type byte of a handshake response.
pub const TYPE_RESPONSE: u8 = 2;
/// Type byte of a cookie reply (sent instead of a response while under load).
pub const TYPE_COOKIE: u8 = 3;
/// Type byte of an encrypted transport datagram.
pub const TYPE_TRANSPORT: u8 = 4;

/// Length of a MAC field (mac1, mac2, key hint).
pub const MAC_LEN: usize = 16;
/// Length of the Noise message inside an initiation. Both patterns are padded to it:
/// IKpsk1 message 1 is `e(32) + s(32+16) + payload(192+16)`, KKpsk0 message 1 is
/// `e(32) + payload(240+16)`.
pub const INIT_NOISE_LEN: usize = 288;
/// Plaintext payload length of a join (IKpsk1) initiation.
pub const JOIN_INIT_PAYLOAD_LEN: usize = 192;
/// Plaintext payload length of a link (KKpsk0) initiation.
pub const LINK_INIT_PAYLOAD_LEN: usize = 240;
/// Total length of an initiation datagram.
pub const INIT_LEN: usize = 1 + 4 + MAC_LEN + INIT_NOISE_LEN + MAC_LEN + MAC_LEN;
/// Plaintext payload length of a handshake response (both patterns).
pub const RESPONSE_PAYLOAD_LEN: usize = 64;
/// Length of the Noise message inside a response: `e(32) + payload(64+16)`.
pub const RESPONSE_NOISE_LEN: usize = 32 + RESPONSE_PAYLOAD_LEN + 16;
/// Total length of a response datagram.
pub const RESPONSE_LEN: usize = 1 + 4 + 4 + RESPONSE_NOISE_LEN;
/// Total length of a cookie reply datagram.
pub const COOKIE_LEN: usize = 1 + 4 + 24 + 32;
/// Header of a transport datagram: type, receiver index, counter.
pub const TRANSPORT_HEADER_LEN: usize = 1 + 4 + 8;
/// AEAD tag length.
pub const TAG_LEN: usize = 16;
/// The plaintext sizes a transport datagram may have. The smallest one is the audio size:
/// every audio datagram, keepalive and ping has exactly this size, so an observer cannot
/// tell speech from silence from a bare keepalive. The largest keeps the whole UDP payload
/// (1213 bytes) under the IPv6 minimum MTU minus headers (1232).
pub const BUCKETS: [usize; 3] = [160, 480, 1184];
/// Plaintext size of every audio datagram.
pub const AUDIO_PLAINTEXT_LEN: usize = BUCKETS[0];
/// The largest plaintext a transport datagram carries.
pub const MAX_PLAINTEXT_LEN: usize = BUCKETS[2];

/// Offset of mac1 inside an initiation: everything before it is covered by mac1.
pub const INIT_MAC1_OFFSET: usize = INIT_LEN - 2 * MAC_LEN;
/// Offset of mac2 inside an initiation: everything before it is covered by mac2.
pub const INIT_MAC2_OFFSET: usize = INIT_LEN - MAC_LEN;

// Every datagram fits the IPv6 minimum MTU (1280) minus IPv6 and UDP headers, so nothing
// is ever fragmented; checked at compile time.
const _: () = assert!(TRANSPORT_HEADER_LEN + MAX_PLAINTEXT_LEN + TAG_LEN <= 1232);
const _: () = assert!(INIT_LEN <= 1232);

/// A parsed, not yet authenticated datagram. Views borrow from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A handshake initiation.
    Init(Init<'a>),
    /// A handshake response.
    Response(Response<'a>),
    /// A cookie reply.
    Cookie(CookieReply<'a>),
    /// An encrypted transport datagram.
    Transport(Transport<'a>),
}

/// View of a handshake initiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Init<'a> {
    /// The initiator's index for the session being set up.
    pub sender: u32,
    /// Key hint for member links (random bytes on joins): lets the responder find the
    /// initiator's static key with cheap MACs instead of one trial DH per member.
    pub hint: &'a [u8; MAC_LEN],
    /// The Noise handshake message (padded).
    pub noise: &'a [u8],
    /// MAC over the datagram up to here, keyed with a secret only invite holders know.
    pub mac1: &'a [u8; MAC_LEN],
    /// MAC keyed with a cookie from the responder, or zeros.
    pub mac2: &'a [u8; MAC_LEN],
    /// The whole datagram (for MAC checks).
    pub raw: &'a [u8],
}

/// View of a handshake response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The responder's index for the new session.
    pub sender: u32,
    /// The initiator's index this answers.
    pub receiver: u32,
    /// The Noise handshake message.
    pub noise: &'a [u8],
}

/// View of a cookie reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieReply<'a> {
    /// The initiator's index of the initiation this answers.
    pub receiver: u32,
    /// XChaCha20 nonce.
    pub nonce: &'a [u8; 24],
    /// The sealed cookie (16 bytes + tag).
    pub sealed: &'a [u8; 32],
}

/// View of a transport datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport<'a> {
    /// The receiver's session index.
    pub receiver: u32,
    /// The sender's message counter, used as the AEAD nonce.
    pub counter: u64,
    /// Ciphertext and tag.
    pub ciphertext: &'a [u8],
}

fn fixed<'a, const N: usize>(r: &mut Reader<'a>) -> Result<&'a [u8; N], DecodeError> {
    r.bytes(N)?
        .try_into()
        .map_err(|_| DecodeError::Invalid("length"))
}

impl<'a> Packet<'a> {
    /// Parses a datagram by its type byte and exact length. Anything else is an error;
    /// the caller drops it silently.
    pub fn parse(data: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        let ty = r.u8()?;
        let pkt = match (ty, data.len()) {
            (TYPE_INIT, INIT_LEN) => Packet::Init(Init {
                sender: r.u32()?,
                hint: fixed(&mut r)?,
                noise: r.bytes(INIT_NOISE_LEN)?,
                mac1: fixed(&mut r)?,
                mac2: fixed(&mut r)?,
                raw: data,
            }),
            (TYPE_RESPONSE, RESPONSE_LEN) => Packet::Response(Response {
                sender: r.u32()?,
                receiver: r.u32()?,
                noise: r.bytes(RESPONSE_NOISE_LEN)?,
            }),
            (TYPE_COOKIE, COOKIE_LEN) => Packet::Cookie(CookieReply {
                receiver: r.u32()?,
                nonce: fixed(&mut r)?,
                sealed: fixed(&mut r)?,
            }),
            (TYPE_TRANSPORT, n)
                if BUCKETS
                    .iter()
                    .any(|b| TRANSPORT_HEADER_LEN + b + TAG_LEN == n) =>
            {
                Packet::Transport(Transport {
                    receiver: r.u32()?,
                    counter: r.u64()?,
                    ciphertext: r.rest(),
                })
            }
            _ => return Err(DecodeError::Invalid("packet type or length")),
        };
        Ok(pkt)
    }
}

/// Builds an initiation datagram with zeroed MAC fields; the caller fills mac1/mac2.
pub fn encode_init(sender: u32, hint: &[u8; MAC_LEN], noise: &[u8]) -> Option<Vec<u8>> {
    if noise.len() != INIT_NOISE_LEN {
        return None;
    }
    let mut out = Vec::with_capacity(INIT_LEN);
    out.push(TYPE_INIT);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(hint);
    out.extend_from_slice(noise);
    out.resize(INIT_LEN, 0);
    Some(out)
}

/// Builds a response datagram.
pub fn encode_response(sender: u32, receiver: u32, noise: &[u8]) -> Option<Vec<u8>> {
    if noise.len() != RESPONSE_NOISE_LEN {
        return None;
    }
    let mut out = Vec::with_capacity(RESPONSE_LEN);
    out.push(TYPE_RESPONSE);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&receiver.to_be_bytes());
    out.extend_from_slice(noise);
    Some(out)
}

/// Builds a cookie reply datagram.
pub fn encode_cookie(receiver: u32, nonce: &[u8; 24], sealed: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(COOKIE_LEN);
    out.push(TYPE_COOKIE);
    out.extend_from_slice(&receiver.to_be_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(sealed);
    out
}

/// Writes a transport header in front of `ciphertext_len` bytes of space; returns the
/// buffer with the header filled and the ciphertext area zeroed.
pub fn transport_header(receiver: u32, counter: u64, ciphertext_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(TRANSPORT_HEADER_LEN + ciphertext_len);
    out.push(TYPE_TRANSPORT);
    out.extend_from_slice(&receiver.to_be_bytes());
    out.extend_from_slice(&counter.to_be_bytes());
    out.resize(TRANSPORT_HEADER_LEN + ciphertext_len, 0);
    out
}

/// Writes `index` into a transport datagram's receiver field. The field is outside the
/// AEAD (only the counter, as the nonce, is bound), which is what lets a relay rewrite it.
pub fn set_receiver(datagram: &mut [u8], index: u32) {
    if datagram.first() == Some(&TYPE_TRANSPORT)
        && let Some(field) = datagram.get_mut(1..5)
    {
        field.copy_from_slice(&index.to_be_bytes());
    }
}

/// The smallest bucket that holds `len` plaintext bytes, if any.
pub fn bucket_for(len: usize) -> Option<usize> {
    BUCKETS.iter().copied().find(|b| *b >= len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_parses_only_at_its_exact_length() {
        let init = encode_init(7, &[1; 16], &[2; INIT_NOISE_LEN]).unwrap();
        assert!(matches!(Packet::parse(&init), Ok(Packet::Init(i)) if i.sender == 7));
        assert!(Packet::parse(&init[..INIT_LEN - 1]).is_err());
        let mut long = init.clone();
        long.push(0);
        assert!(Packet::parse(&long).is_err());

        let resp = encode_response(1, 2, &[0; RESPONSE_NOISE_LEN]).unwrap();
        assert!(
            matches!(Packet::parse(&resp), Ok(Packet::Response(r)) if r.sender == 1 && r.receiver == 2)
        );
        let cookie = encode_cookie(9, &[0; 24], &[0; 32]);
        assert!(matches!(Packet::parse(&cookie), Ok(Packet::Cookie(c)) if c.receiver == 9));
        for b in BUCKETS {
            let t = transport_header(3, 99, b + TAG_LEN);
            assert!(
                matches!(Packet::parse(&t), Ok(Packet::Transport(t)) if t.counter == 99 && t.receiver == 3)
            );
        }
        let odd = transport_header(3, 99, 100);
        assert!(Packet::parse(&odd).is_err());
        assert!(Packet::parse(&[]).is_err());
        assert!(Packet::parse(&[9; INIT_LEN]).is_err());
    }

    #[test]
    fn bucket_for_picks_smallest_fitting_bucket() {
        assert_eq!(bucket_for(0), Some(160));
        assert_eq!(bucket_for(160), Some(160));
        assert_eq!(bucket_for(161), Some(480));
        assert_eq!(bucket_for(1184), Some(1184));
        assert_eq!(bucket_for(1185), None);
    }
}
