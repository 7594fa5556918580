//! Key derivation (Argon2id) and the key header file kept next to the database.
//!
//! The header holds what is needed to turn the passphrase into the database key (the
//! Argon2id parameters and salt) plus a key-check value. The check lets `open` tell a
//! wrong passphrase (check differs) from a damaged database (check matches, database
//! unreadable) without ever writing to the database file. A checksum over the header
//! itself makes a damaged header read as damage rather than as a wrong passphrase.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use blake2::Digest;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

/// Length of the SQLCipher raw key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Length of the Argon2 salt in bytes.
pub const SALT_LEN: usize = 16;
/// Version of the header file format this build writes and reads.
pub const HEADER_VERSION: u32 = 1;

const HEADER_MAGIC: &str = "salon-store-header";
const KEY_CHECK_DOMAIN: &[u8] = b"salon-store key check v1\0";

type Blake2b256 = blake2::Blake2b<blake2::digest::consts::U32>;

/// Argon2id cost parameters.
///
/// The default (64 MiB, 3 passes, 1 lane) costs roughly a seventh of a second on the
/// reference 2-core machine: slow enough to hurt guessing, fast enough at each start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Degree of parallelism (lanes).
    pub p_cost: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// Very cheap parameters for tests only: they make a passphrase easy to guess.
    pub const INSECURE_FAST: KdfParams = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    /// The weakest stretching [`KdfParams::check_minimum`] lets a new history or a new
    /// passphrase have: OWASP's minimum for Argon2id (19 MiB, 2 passes, 1 lane).
    pub const MINIMUM: KdfParams = KdfParams {
        m_cost_kib: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };

    /// The environment variable that, set to `1`, lets [`KdfParams::check_minimum`] accept
    /// weaker parameters. Test harnesses set it so that creating many profiles stays fast;
    /// nothing else should.
    pub const INSECURE_TEST_ENV: &'static str = "SALON_INSECURE_KDF_FOR_TESTS";

    /// Whether these parameters cost at least [`KdfParams::MINIMUM`] (memory and passes).
    pub fn meets_minimum(&self) -> bool {
        self.m_cost_kib >= Self::MINIMUM.m_cost_kib && self.t_cost >= Self::MINIMUM.t_cost
    }

    /// Refuses parameters below [`KdfParams::MINIMUM`] with [`StoreError::WeakKdf`], unless
    /// [`KdfParams::INSECURE_TEST_ENV`] is `1` in the environment (tests only).
    pub fn check_minimum(&self) -> Result<()> {
        if self.meets_minimum() || std::env::var(Self::INSECURE_TEST_ENV).is_ok_and(|v| v == "1") {
            Ok(())
        } else {
            Err(StoreError::WeakKdf {
                m_cost_kib: self.m_cost_kib,
                t_cost: self.t_cost,
            })
        }
    }

    /// Checks the parameters are within what Argon2 accepts and what a header may ask
    /// for (so a damaged or hostile header cannot request terabytes of memory).
    pub fn validate(&self) -> Result<()> {
        let ok = (1..=16).contains(&self.p_cost)
            && (1..=64).contains(&self.t_cost)
            && self.m_cost_kib >= 8 * self.p_cost
            && self.m_cost_kib <= 4 * 1024 * 1024;
        if ok {
            Ok(())
        } else {
            Err(StoreError::InvalidInput(format!(
                "Argon2 parameters out of range: {self:?}"
            )))
        }
    }
}

/// A 256-bit SQLCipher key. Wiped from memory when dropped; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RawKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawKey(<redacted>)")
    }
}

impl RawKey {
    /// Wraps raw key bytes (e.g. read back from the OS keychain).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        RawKey(Zeroizing::new(bytes))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key as SQLCipher's raw-key literal `x'…'` (64 hex digits), e.g. for
    /// `PRAGMA key = "x'…'"` in the stock `sqlcipher` shell.
    pub fn to_sqlcipher_literal(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(3 + 2 * KEY_LEN));
        s.push_str("x'");
        push_hex(&mut s, self.as_bytes());
        s.push('\'');
        s
    }

    /// Derives the key from a passphrase with Argon2id.
    pub fn derive(passphrase: &str, salt: &[u8; SALT_LEN], params: KdfParams) -> Result<Self> {
        params.validate()?;
        let argon_params = argon2::Params::new(
            params.m_cost_kib,
            params.t_cost,
            params.p_cost,
            Some(KEY_LEN),
        )
        .map_err(|e| StoreError::InvalidInput(format!("Argon2 parameters: {e}")))?;
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon_params,
        );
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
            .map_err(|e| StoreError::InvalidInput(format!("Argon2: {e}")))?;
        Ok(RawKey(out))
    }

    /// The key-check value stored in the header: a one-way commitment to the key.
    fn check_value(&self) -> [u8; 32] {
        let mut h = Blake2b256::new();
        h.update(KEY_CHECK_DOMAIN);
        h.update(self.as_bytes());
        h.finalize().into()
    }
}

/// The contents of the key header file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Argon2id parameters used for this database.
    pub params: KdfParams,
    /// Argon2 salt.
    pub salt: [u8; SALT_LEN],
    check: [u8; 32],
}

impl Header {
    /// Makes a header (fresh random salt) and derives the key for `passphrase`.
    pub fn new_for_passphrase(passphrase: &str, params: KdfParams) -> Result<(Header, RawKey)> {
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let key = RawKey::derive(passphrase, &salt, params)?;
        let check = key.check_value();
        Ok((
            Header {
                params,
                salt,
                check,
            },
            key,
        ))
    }

    /// Derives the key from `passphrase` and returns it if it passes the key check.
    pub fn unlock(&self, passphrase: &str) -> Result<RawKey> {
        let key = RawKey::derive(passphrase, &self.salt, self.params)?;
        if self.matches(&key) {
            Ok(key)
        } else {
            Err(StoreError::WrongPassphrase)
        }
    }

    /// Whether `key` is the key this header was made for.
    pub fn matches(&self, key: &RawKey) -> bool {
        // Not secret-dependent timing worth guarding: the check value is public on disk.
        key.check_value() == self.check
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut body = String::new();
        body.push_str(&format!("{HEADER_MAGIC} {HEADER_VERSION}\n"));
        body.push_str("kdf argon2id-v19\n");
        body.push_str(&format!("m_kib {}\n", self.params.m_cost_kib));
        body.push_str(&format!("t {}\n", self.params.t_cost));
        body.push_str(&format!("p {}\n", self.params.p_cost));
        body.push_str("salt ");
        push_hex(&mut body, &self.salt);
        body.push_str("\ncheck ");
        push_hex(&mut body, &self.check);
        body.push('\n');
        let sum: [u8; 32] = Blake2b256::digest(body.as_bytes()).into();
        body.push_str("sum ");
        push_hex(&mut body, &sum);
        body.push('\n');
        body
    }

    /// Parses the file's text. A damaged header is [`StoreError::Corrupt`]; one from a newer
    /// Salon is [`StoreError::NewerVersion`].
    pub fn parse(text: &str) -> Result<Header> {
        let bad = |what: &str| StoreError::corrupt(format!("key header: {what}"));
        let first = text.lines().next().ok_or_else(|| bad("empty"))?;
        let version = first
            .strip_prefix(HEADER_MAGIC)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| bad("not a Salon key header"))?;
        if version > HEADER_VERSION {
            return Err(StoreError::NewerVersion {
                found: version,
                supported: HEADER_VERSION,
            });
        }
        let sum_at = text.rfind("sum ").ok_or_else(|| bad("no checksum"))?;
        let (body, sum_line) = text.split_at(sum_at);
        let sum = parse_hex::<32>(sum_line.trim_end_matches('\n').trim_start_matches("sum "))
            .ok_or_else(|| bad("unreadable checksum"))?;
        let actual: [u8; 32] = Blake2b256::digest(body.as_bytes()).into();
        if actual != sum {
            return Err(bad("checksum mismatch"));
        }
        let mut lines = body.lines().skip(1);
        let mut field = |name: &str| -> Result<&str> {
            let line = lines.next().ok_or_else(|| bad("truncated"))?;
            line.strip_prefix(name)
                .and_then(|v| v.strip_prefix(' '))
                .ok_or_else(|| bad(&format!("expected field {name}")))
        };
        if field("kdf")? != "argon2id-v19" {
            return Err(bad("unknown key derivation"));
        }
        let num = |v: &str| v.parse::<u32>().map_err(|_| bad("bad number"));
        let params = KdfParams {
            m_cost_kib: num(field("m_kib")?)?,
            t_cost: num(field("t")?)?,
            p_cost: num(field("p")?)?,
        };
        params
            .validate()
            .map_err(|_| bad("Argon2 parameters out of range"))?;
        let salt = parse_hex::<SALT_LEN>(field("salt")?).ok_or_else(|| bad("bad salt"))?;
        let check = parse_hex::<32>(field("check")?).ok_or_else(|| bad("bad check value"))?;
        Ok(Header {
            params,
            salt,
            check,
        })
    }

    /// Reads and parses a header file; a missing file is `Ok(None)`.
    pub fn read(path: &Path) -> Result<Option<Header>> {
        match fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| StoreError::corrupt("key header: not text"))?;
                Header::parse(&text).map(Some)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(
                format!("reading key header {}", path.display()),
                e,
            )),
        }
    }

    /// Writes the header durably to `path` (which must not exist yet).
    pub fn write_new(&self, path: &Path) -> Result<()> {
        let ctx = || format!("writing key header {}", path.display());
        let mut f = private(fs::OpenOptions::new().write(true).create_new(true))
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    StoreError::AlreadyExists(path.to_path_buf())
                } else {
                    StoreError::io(ctx(), e)
                }
            })?;
        f.write_all(self.to_text().as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| StoreError::io(ctx(), e))?;
        sync_parent_dir(path)
    }
}

/// Files the store creates are readable by their owner only (0600 on Unix); SQLite gives
/// the `-wal` and `-shm` files the mode of the database file.
pub(crate) fn private(o: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(o, 0o600);
    o
}

/// Makes a rename or create in `path`'s directory durable.
pub(crate) fn sync_parent_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("syncing directory {}", dir.display()), e))
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(s[2 * i])? << 4) | nibble(s[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn header_round_trips_and_detects_a_flipped_character() {
        let (h, key) = Header::new_for_passphrase("pw", KdfParams::INSECURE_FAST).unwrap();
        let text = h.to_text();
        assert_eq!(Header::parse(&text).unwrap(), h);
        assert!(h.matches(&key));
        assert!(matches!(h.unlock("nope"), Err(StoreError::WrongPassphrase)));
        // Flip one salt digit: must read as damage, not as a wrong passphrase later.
        let i = text.find("salt ").unwrap() + 5;
        let mut bytes = text.into_bytes();
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert!(matches!(
            Header::parse(&flipped),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn header_from_a_newer_salon_is_reported_as_such() {
        let text = "salon-store-header 9\nwhatever\n";
        assert!(matches!(
            Header::parse(text),
            Err(StoreError::NewerVersion { found: 9, .. })
        ));
    }

    #[test]
    fn hostile_argon2_parameters_are_refused() {
        let p = KdfParams {
            m_cost_kib: u32::MAX,
            t_cost: 3,
            p_cost: 1,
        };
        assert!(p.validate().is_err());
    }
}
