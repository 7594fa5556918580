//! Bounds-checked big-endian reader and writer for everything Salon puts on the wire.
//!
//! Every parser in the crate goes through [`Reader`], so a short or malformed input is a
//! [`DecodeError`], never a panic or an out-of-bounds slice.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a byte string could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("input ended early")]
    Truncated,
    /// A tag, length or enum value is outside what the format allows.
    #[error("invalid value in field {0}")]
    Invalid(&'static str),
    /// A text field was not UTF-8.
    #[error("text is not valid UTF-8")]
    Utf8,
}

/// Reads big-endian values from a byte slice, advancing as it goes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The unread rest of the input.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// Reads a peer's X25519 public key, refusing small-order points
    /// ([`crate::identity::is_low_order`]): no honest peer has one, and a link keyed to it
    /// would get nothing secret from that side.
    pub fn key(&mut self) -> Result<crate::identity::PublicKey, DecodeError> {
        let key = crate::identity::PublicKey(self.array()?);
        if key.is_low_order() {
            return Err(DecodeError::Invalid("low-order key"));
        }
        Ok(key)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Reads a boolean stored as one byte, 0 or 1.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid("bool")),
        }
    }

    /// Reads a `u16`-length-prefixed byte string of at most `max` bytes.
    pub fn var_bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = usize::from(self.u16()?);
        if n > max {
            return Err(DecodeError::Invalid("length"));
        }
        self.bytes(n)
    }

    /// Reads a `u16`-length-prefixed UTF-8 string of at most `max` bytes.
    pub fn string(&mut self, max: usize) -> Result<String, DecodeError> {
        let raw = self.var_bytes(max)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Utf8)
    }

    /// Reads a socket address: family byte (4 or 6), address, port.
    pub fn socket_addr(&mut self) -> Result<SocketAddr, DecodeError> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
            _ => return Err(DecodeError::Invalid("address family")),
        };
        Ok(SocketAddr::new(ip, self.u16()?))
    }

    /// Fails unless the whole input was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Invalid("trailing bytes"))
        }
    }
}

/// Appends big-endian values to a byte vector.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a boolean as one byte.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// Appends a `u16`-length-prefixed byte string; longer input is cut at `u16::MAX`
    /// (callers validate lengths against much smaller protocol limits first).
    pub fn var_bytes(&mut self, b: &[u8]) -> &mut Self {
        let n = b.len().min(usize::from(u16::MAX));
        self.u16(n as u16).bytes(&b[..n])
    }

    /// Appends a `u16`-length-prefixed UTF-8 string.
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.var_bytes(s.as_bytes())
    }

    /// Appends a socket address: family byte, address, port.
    pub fn socket_addr(&mut self, addr: &SocketAddr) -> &mut Self {
        match addr.ip() {
            IpAddr::V4(ip) => self.u8(4).bytes(&ip.octets()),
            IpAddr::V6(ip) => self.u8(6).bytes(&ip.octets()),
        };
        self.u16(addr.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_writer_and_reader() {
        let v6: SocketAddr = "[2001:db8::1]:4433".parse().unwrap();
        let v4: SocketAddr = "192.0.2.7:9".parse().unwrap();
        let mut w = Writer::new();
        w.u8(7)
            .u16(513)
            .u32(70_000)
            .u64(1 << 40)
            .bool(true)
            .string("héllo");
        w.socket_addr(&v4).socket_addr(&v6);
        let bytes = w.into_inner();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u16().unwrap(), 513);
        assert_eq!(r.u32().unwrap(), 70_000);
        assert_eq!(r.u64().unwrap(), 1 << 40);
        assert!(r.bool().unwrap());
        assert_eq!(r.string(16).unwrap(), "héllo");
        assert_eq!(r.socket_addr().unwrap(), v4);
        assert_eq!(r.socket_addr().unwrap(), v6);
        r.finish().unwrap();
    }

    #[test]
    fn short_input_is_truncated_error_not_panic() {
        let mut r = Reader::new(&[0, 5, b'a']);
        assert_eq!(r.string(100), Err(DecodeError::Truncated));
        assert_eq!(Reader::new(&[1, 2, 3]).u64(), Err(DecodeError::Truncated));
    }

    #[test]
    fn over_long_string_and_bad_bool_are_invalid() {
        assert_eq!(
            Reader::new(&[0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0]).string(8),
            Err(DecodeError::Invalid("length"))
        );
        assert_eq!(Reader::new(&[2]).bool(), Err(DecodeError::Invalid("bool")));
        assert_eq!(Reader::new(&[0, 1, 0xff]).string(8), Err(DecodeError::Utf8));
    }
}
