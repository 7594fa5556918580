//! Who is in the room and in which role. The host is the authority: it alone changes the
//! roster and sends it to everyone; members only request changes.

use std::net::SocketAddr;

use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::PublicKey;

/// Longest display name, in UTF-8 bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest room title, in UTF-8 bytes.
pub const MAX_TITLE_LEN: usize = 128;
/// Most address candidates one member advertises.
pub const MAX_CANDIDATES: usize = 4;
/// Most members the wire format carries in one roster.
pub const MAX_MEMBERS_ON_WIRE: usize = 64;

/// A member's role. Host, moderators and speakers are on stage and send audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Runs the room: admits members, holds the roster, can do everything.
    Host,
    /// On stage; may invite to stage, move to audience, mute and remove others.
    Moderator,
    /// On stage.
    Speaker,
    /// In the audience: hears, chats, raises a hand.
    Listener,
}

impl Role {
    /// Whether this role is on stage (sends audio).
    pub fn on_stage(self) -> bool {
        !matches!(self, Role::Listener)
    }

    /// Whether this role may moderate others.
    pub fn can_moderate(self) -> bool {
        matches!(self, Role::Host | Role::Moderator)
    }

    fn to_byte(self) -> u8 {
        match self {
            Role::Host => 0,
            Role::Moderator => 1,
            Role::Speaker => 2,
            Role::Listener => 3,
        }
    }

    fn from_byte(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0 => Role::Host,
            1 => Role::Moderator,
            2 => Role::Speaker,
            3 => Role::Listener,
            _ => return Err(DecodeError::Invalid("role")),
        })
    }
}

/// One member as the host describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Static public key: the member's identity.
    pub key: PublicKey,
    /// Display name the member chose (not verified by anyone).
    pub name: String,
    /// Current role.
    pub role: Role,
    /// Hand raised (audience members asking to speak).
    pub hand_raised: bool,
    /// Microphone muted (by themselves or by a moderator).
    pub muted: bool,
    /// Addresses other members try when linking to this one: first the address the host
    /// sees, then what the member reported (LAN addresses).
    pub candidates: Vec<SocketAddr>,
    /// Join order: earlier members are preferred as the next host.
    pub joined: u64,
}

impl Member {
    /// Whether the member seems to sit behind a NAT that translates ports (as
    /// endpoint-dependent, "symmetric", NATs do): the host saw it at an address and port
    /// that none of its own socket addresses has. A NAT that keeps ports (most home
    /// routers with endpoint-independent mapping) reads as not translating.
    pub fn port_translated(&self) -> bool {
        match self.candidates.split_first() {
            Some((seen, own)) if !own.is_empty() => {
                !own.iter().any(|c| c.ip() == seen.ip())
                    && !own.iter().any(|c| c.port() == seen.port())
            }
            _ => false,
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.bytes(self.key.as_bytes())
            .string(&self.name)
            .u8(self.role.to_byte())
            .bool(self.hand_raised)
            .bool(self.muted)
            .u64(self.joined);
        w.u8(self.candidates.len().min(MAX_CANDIDATES) as u8);
        for c in self.candidates.iter().take(MAX_CANDIDATES) {
            w.socket_addr(c);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = PublicKey(r.array()?);
        let name = r.string(MAX_NAME_LEN)?;
        let role = Role::from_byte(r.u8()?)?;
        let hand_raised = r.bool()?;
        let muted = r.bool()?;
        let joined = r.u64()?;
        let n = usize::from(r.u8()?);
        if n > MAX_CANDIDATES {
            return Err(DecodeError::Invalid("candidates"));
        }
        let candidates = (0..n).map(|_| r.socket_addr()).collect::<Result<_, _>>()?;
        Ok(Self {
            key,
            name,
            role,
            hand_raised,
            muted,
            candidates,
            joined,
        })
    }
}

/// Who takes over when the host leaves or times out: the earliest-joined moderator, else
/// the earliest-joined speaker, else the earliest-joined member. Every member computes
/// this from the same roster, so they agree without talking.
pub fn successor(members: &[Member], leaving: &PublicKey) -> Option<PublicKey> {
    let rank = |r: Role| match r {
        Role::Host => 3,
        Role::Moderator => 0,
        Role::Speaker => 1,
        Role::Listener => 2,
    };
    members
        .iter()
        .filter(|m| m.key != *leaving)
        .min_by_key(|m| (rank(m.role), m.joined, m.key))
        .map(|m| m.key)
}

/// Whether `name` is acceptable as a display name: 1–64 bytes after trimming, no control
/// characters (they would garble every other member's UI).
pub fn valid_name(name: &str) -> bool {
    let t = name.trim();
    !t.is_empty() && t.len() <= MAX_NAME_LEN && !t.chars().any(char::is_control)
}

/// Whether `title` is acceptable as a room title.
pub fn valid_title(title: &str) -> bool {
    let t = title.trim();
    !t.is_empty() && t.len() <= MAX_TITLE_LEN && !t.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(k: u8, role: Role, joined: u64) -> Member {
        Member {
            key: PublicKey([k; 32]),
            name: format!("m{k}"),
            role,
            hand_raised: false,
            muted: false,
            candidates: vec![],
            joined,
        }
    }

    #[test]
    fn successor_prefers_moderator_then_earliest_speaker_then_earliest_member() {
        let host = PublicKey([1; 32]);
        let mut ms = vec![
            m(1, Role::Host, 0),
            m(2, Role::Listener, 1),
            m(3, Role::Speaker, 3),
            m(4, Role::Speaker, 2),
            m(5, Role::Moderator, 9),
        ];
        assert_eq!(successor(&ms, &host), Some(PublicKey([5; 32])));
        ms.pop();
        assert_eq!(successor(&ms, &host), Some(PublicKey([4; 32])));
        ms.truncate(2);
        assert_eq!(successor(&ms, &host), Some(PublicKey([2; 32])));
        ms.truncate(1);
        assert_eq!(successor(&ms, &host), None);
    }

    #[test]
    fn member_round_trips_and_rejects_bad_role() {
        let mut a = m(7, Role::Moderator, 4);
        a.candidates = vec!["127.0.0.1:5".parse().unwrap(), "[::1]:6".parse().unwrap()];
        a.muted = true;
        let mut w = Writer::new();
        a.encode(&mut w);
        let bytes = w.into_inner();
        let b = Member::decode(&mut Reader::new(&bytes)).unwrap();
        assert_eq!(a, b);
        let mut bad = bytes.clone();
        bad[32 + 2 + 2] = 9; // role byte after key and the 2-byte name
        assert!(Member::decode(&mut Reader::new(&bad)).is_err());
    }

    #[test]
    fn names_with_control_characters_or_empty_are_rejected() {
        assert!(valid_name("Ada"));
        assert!(!valid_name("  "));
        assert!(!valid_name("a\u{7}b"));
        assert!(!valid_name(&"x".repeat(65)));
        assert!(valid_title("Friday jazz"));
    }
}
