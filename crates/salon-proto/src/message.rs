//! Room control messages, carried on the reliable channel inside a link.

use std::net::SocketAddr;

use crate::codec::{DecodeError, Reader, Writer};
use crate::identity::PublicKey;
use crate::roster::{
    MAX_CANDIDATES, MAX_MEMBERS_ON_WIRE, MAX_NAME_LEN, MAX_TITLE_LEN, Member, valid_title,
};
use crate::secret::Secret32;

/// Most banned keys a roster carries (the oldest are dropped beyond that).
pub const MAX_BANNED_ON_WIRE: usize = 256;

/// Longest chat message, in UTF-8 bytes.
pub const MAX_CHAT_LEN: usize = 2000;

/// What a moderator asks the host to do to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Action {
    /// Ask an audience member on stage: the host sends them a [`Message::StageInvite`] and
    /// makes them a speaker only when they accept. A listener whose hand is raised already
    /// asked to speak, so they go on stage at once.
    InviteToStage,
    /// Send a stage member back to the audience.
    MoveToAudience,
    /// Make a member a moderator (host only).
    MakeModerator,
    /// Mute a stage member's microphone (they may unmute themselves).
    Mute,
    /// Remove the member from the room; they cannot rejoin with the invite.
    Remove,
}

impl Action {
    fn to_byte(self) -> u8 {
        match self {
            Action::InviteToStage => 0,
            Action::MoveToAudience => 1,
            Action::MakeModerator => 2,
            Action::Mute => 3,
            Action::Remove => 4,
        }
    }

    fn from_byte(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0 => Action::InviteToStage,
            1 => Action::MoveToAudience,
            2 => Action::MakeModerator,
            3 => Action::Mute,
            4 => Action::Remove,
            _ => return Err(DecodeError::Invalid("action")),
        })
    }
}

/// The host's full description of the room, sent on every change.
#[derive(Clone, PartialEq, Eq)]
pub struct RoomState {
    /// Room title.
    pub title: String,
    /// Epoch number: grows on every leave, removal and host change.
    pub epoch: u64,
    /// PSK for member links in this epoch; private so it is only read on purpose
    /// ([`RoomState::epoch_secret`]).
    pub(crate) epoch_secret: Secret32,
    /// Roster version inside the epoch.
    pub version: u64,
    /// Everyone in the room, the host included.
    pub members: Vec<Member>,
    /// Keys removed from the room: whoever hosts next keeps refusing them.
    pub banned: Vec<PublicKey>,
    /// The host's uniform-rate setting: every member sends at the stage rate while the
    /// room has at most `UNIFORM_RATE_MAX_MEMBERS` members (PROTOCOL §5.1).
    pub uniform: bool,
}

impl RoomState {
    /// A roster from its parts.
    pub fn new(
        title: String,
        epoch: u64,
        epoch_secret: Secret32,
        version: u64,
        members: Vec<Member>,
        banned: Vec<PublicKey>,
    ) -> Self {
        Self {
            title,
            epoch,
            epoch_secret,
            version,
            members,
            banned,
            uniform: false,
        }
    }

    /// The same roster with the uniform-rate setting `uniform`.
    pub fn with_uniform(mut self, uniform: bool) -> Self {
        self.uniform = uniform;
        self
    }

    /// The PSK of member links in this epoch.
    pub fn epoch_secret(&self) -> &Secret32 {
        &self.epoch_secret
    }
}

impl std::fmt::Debug for RoomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomState")
            .field("epoch", &self.epoch)
            .field("version", &self.version)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

/// A control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Joiner → host, first message on a new join session.
    Hello {
        /// Display name.
        name: String,
        /// Addresses the joiner can be reached at besides the one the host sees.
        candidates: Vec<SocketAddr>,
    },
    /// Host → members: the room as it is now.
    State(RoomState),
    /// Host → members: one member's entry changed (hand, mute, role, name, addresses)
    /// or a member joined; the roster moves from `version - 1` to `version` in the same
    /// epoch. A delta keeps a hand raise or a mute to one slot instead of a whole roster.
    Update {
        /// Epoch the update belongs to.
        epoch: u64,
        /// Roster version after the update.
        version: u64,
        /// The member's new entry (added if the key is not in the roster).
        member: Member,
    },
    /// Member → host: raise (true) or lower (false) my hand.
    SetHand(bool),
    /// Member → host: my microphone is muted (true) or live (false).
    SetMuted(bool),
    /// Moderator → host: do this to that member.
    Moderate {
        /// The member acted on.
        target: PublicKey,
        /// What to do.
        action: Action,
    },
    /// Anyone → everyone: a chat line. `seq` counts the sender's messages from 1 so each
    /// receiver delivers each line once, in order.
    Chat {
        /// Per-sender sequence number.
        seq: u64,
        /// The text.
        text: String,
    },
    /// Anyone → everyone: I am leaving.
    Leave,
    /// Host → a member: you were removed.
    Removed,
    /// Host → everyone: the room has ended.
    Ended,
    /// Host → a member: the address its datagrams arrive from (its reflexive address as
    /// the host sees it), so a member learns its public address without a STUN server.
    Observed(SocketAddr),
    /// Member → relay: "I cannot reach `peer` directly; forward its datagrams to me with
    /// receiver index `index`" (an index the member allocated for this purpose).
    RelayOpen {
        /// The member to reach through the relay.
        peer: PublicKey,
        /// Receiver index the relay writes into datagrams it forwards to the sender.
        index: u32,
    },
    /// Relay → member: both sides asked; send datagrams for `peer` to the relay with
    /// receiver index `index`.
    RelayReady {
        /// The member on the far side.
        peer: PublicKey,
        /// Receiver index that tells the relay where to forward.
        index: u32,
    },
    /// Relay → member: `peer` asked to be relayed to you; open your side if you also
    /// cannot reach it directly.
    RelayAsk {
        /// The member that asked.
        peer: PublicKey,
    },
    /// Member → relay: pass this handshake datagram on to `peer`. Only initiations and
    /// responses travel through relays' control channels; they are rare, and the channel
    /// retransmits them.
    RelayTo {
        /// Destination.
        peer: PublicKey,
        /// The whole handshake datagram, untouched.
        datagram: Vec<u8>,
    },
    /// Relay → member: a handshake datagram `peer` sent you through me.
    RelayFrom {
        /// Origin.
        peer: PublicKey,
        /// The whole handshake datagram, untouched.
        datagram: Vec<u8>,
    },
    /// Host → a listener: the moderator `by` invites you on stage. Nothing changes until
    /// you answer with [`Message::StageAnswer`]: the microphone opens only on "yes".
    StageInvite {
        /// The moderator (or the host) who sent the invitation.
        by: PublicKey,
    },
    /// Listener → host: yes (`true`) or no (`false`) to the pending stage invitation.
    StageAnswer {
        /// Whether the listener goes on stage.
        accept: bool,
    },
}

const HELLO: u8 = 1;
const STATE: u8 = 2;
const SET_HAND: u8 = 3;
const SET_MUTED: u8 = 4;
const MODERATE: u8 = 5;
const CHAT: u8 = 6;
const LEAVE: u8 = 7;
const REMOVED: u8 = 8;
const ENDED: u8 = 9;
const OBSERVED: u8 = 10;
const RELAY_OPEN: u8 = 11;
const RELAY_READY: u8 = 12;
const RELAY_ASK: u8 = 13;
const RELAY_TO: u8 = 14;
const RELAY_FROM: u8 = 15;
const UPDATE: u8 = 16;
const STAGE_INVITE: u8 = 17;
const STAGE_ANSWER: u8 = 18;

/// Largest datagram a [`Message::RelayTo`] or [`Message::RelayFrom`] carries: a handshake initiation.
pub const MAX_RELAYED_LEN: usize = crate::wire::INIT_LEN;

impl Message {
    /// Serialises the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Message::Hello { name, candidates } => {
                w.u8(HELLO).string(name);
                w.u8(candidates.len().min(MAX_CANDIDATES) as u8);
                for c in candidates.iter().take(MAX_CANDIDATES) {
                    w.socket_addr(c);
                }
            }
            Message::State(s) => {
                w.u8(STATE)
                    .string(&s.title)
                    .u64(s.epoch)
                    .bytes(s.epoch_secret.as_bytes())
                    .u64(s.version)
                    .u16(s.members.len().min(MAX_MEMBERS_ON_WIRE) as u16);
                for m in s.members.iter().take(MAX_MEMBERS_ON_WIRE) {
                    m.encode(&mut w);
                }
                w.u16(s.banned.len().min(MAX_BANNED_ON_WIRE) as u16);
                for k in s.banned.iter().take(MAX_BANNED_ON_WIRE) {
                    w.bytes(k.as_bytes());
                }
                w.bool(s.uniform);
            }
            Message::Update {
                epoch,
                version,
                member,
            } => {
                w.u8(UPDATE).u64(*epoch).u64(*version);
                member.encode(&mut w);
            }
            Message::SetHand(b) => {
                w.u8(SET_HAND).bool(*b);
            }
            Message::SetMuted(b) => {
                w.u8(SET_MUTED).bool(*b);
            }
            Message::Moderate { target, action } => {
                w.u8(MODERATE).bytes(target.as_bytes()).u8(action.to_byte());
            }
            Message::Chat { seq, text } => {
                w.u8(CHAT).u64(*seq).string(text);
            }
            Message::Leave => {
                w.u8(LEAVE);
            }
            Message::Removed => {
                w.u8(REMOVED);
            }
            Message::Ended => {
                w.u8(ENDED);
            }
            Message::Observed(addr) => {
                w.u8(OBSERVED).socket_addr(addr);
            }
            Message::RelayOpen { peer, index } => {
                w.u8(RELAY_OPEN).bytes(peer.as_bytes()).u32(*index);
            }
            Message::RelayReady { peer, index } => {
                w.u8(RELAY_READY).bytes(peer.as_bytes()).u32(*index);
            }
            Message::RelayAsk { peer } => {
                w.u8(RELAY_ASK).bytes(peer.as_bytes());
            }
            Message::RelayTo { peer, datagram } => {
                w.u8(RELAY_TO).bytes(peer.as_bytes()).var_bytes(datagram);
            }
            Message::RelayFrom { peer, datagram } => {
                w.u8(RELAY_FROM).bytes(peer.as_bytes()).var_bytes(datagram);
            }
            Message::StageInvite { by } => {
                w.u8(STAGE_INVITE).bytes(by.as_bytes());
            }
            Message::StageAnswer { accept } => {
                w.u8(STAGE_ANSWER).bool(*accept);
            }
        }
        w.into_inner()
    }

    /// Parses a message; any malformation is an error and the message is ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let msg = match r.u8()? {
            HELLO => {
                let name = r.string(MAX_NAME_LEN)?;
                let n = usize::from(r.u8()?);
                if n > MAX_CANDIDATES {
                    return Err(DecodeError::Invalid("candidates"));
                }
                let candidates = (0..n).map(|_| r.socket_addr()).collect::<Result<_, _>>()?;
                Message::Hello { name, candidates }
            }
            STATE => {
                let title = r.string(MAX_TITLE_LEN)?;
                // A title with control or invisible characters never comes from an honest
                // host (it refuses to open a room with one).
                if !valid_title(&title) {
                    return Err(DecodeError::Invalid("title"));
                }
                let epoch = r.u64()?;
                let epoch_secret = Secret32::from_bytes(r.array()?);
                let version = r.u64()?;
                let n = usize::from(r.u16()?);
                if n > MAX_MEMBERS_ON_WIRE {
                    return Err(DecodeError::Invalid("members"));
                }
                let members = (0..n)
                    .map(|_| Member::decode(&mut r))
                    .collect::<Result<_, _>>()?;
                let b = usize::from(r.u16()?);
                if b > MAX_BANNED_ON_WIRE {
                    return Err(DecodeError::Invalid("banned"));
                }
                let banned = (0..b).map(|_| r.key()).collect::<Result<_, _>>()?;
                let uniform = r.bool()?;
                Message::State(RoomState {
                    title,
                    epoch,
                    epoch_secret,
                    version,
                    members,
                    banned,
                    uniform,
                })
            }
            UPDATE => Message::Update {
                epoch: r.u64()?,
                version: r.u64()?,
                member: Member::decode(&mut r)?,
            },
            SET_HAND => Message::SetHand(r.bool()?),
            SET_MUTED => Message::SetMuted(r.bool()?),
            MODERATE => Message::Moderate {
                target: r.key()?,
                action: Action::from_byte(r.u8()?)?,
            },
            CHAT => Message::Chat {
                seq: r.u64()?,
                text: r.string(MAX_CHAT_LEN)?,
            },
            LEAVE => Message::Leave,
            REMOVED => Message::Removed,
            ENDED => Message::Ended,
            OBSERVED => Message::Observed(r.socket_addr()?),
            RELAY_OPEN => Message::RelayOpen {
                peer: r.key()?,
                index: r.u32()?,
            },
            RELAY_READY => Message::RelayReady {
                peer: r.key()?,
                index: r.u32()?,
            },
            RELAY_ASK => Message::RelayAsk { peer: r.key()? },
            RELAY_TO => Message::RelayTo {
                peer: r.key()?,
                datagram: r.var_bytes(MAX_RELAYED_LEN)?.to_vec(),
            },
            RELAY_FROM => Message::RelayFrom {
                peer: r.key()?,
                datagram: r.var_bytes(MAX_RELAYED_LEN)?.to_vec(),
            },
            STAGE_INVITE => Message::StageInvite { by: r.key()? },
            STAGE_ANSWER => Message::StageAnswer { accept: r.bool()? },
            _ => return Err(DecodeError::Invalid("message type")),
        };
        r.finish()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roster::Role;

    pub(crate) fn samples() -> Vec<Message> {
        vec![
            Message::Hello {
                name: "Ada".into(),
                candidates: vec!["10.0.0.2:4000".parse().unwrap()],
            },
            Message::State(RoomState {
                title: "Night owls".into(),
                epoch: 3,
                epoch_secret: Secret32::from_bytes([5; 32]),
                version: 9,
                members: vec![Member {
                    key: PublicKey([1; 32]),
                    name: "Ada".into(),
                    role: Role::Host,
                    hand_raised: false,
                    muted: true,
                    candidates: vec!["127.0.0.1:9".parse().unwrap()],
                    joined: 0,
                }],
                banned: vec![PublicKey([9; 32])],
                uniform: true,
            }),
            Message::SetHand(true),
            Message::SetMuted(false),
            Message::Moderate {
                target: PublicKey([2; 32]),
                action: Action::Remove,
            },
            Message::Chat {
                seq: 1,
                text: "hi".into(),
            },
            Message::Leave,
            Message::Removed,
            Message::Ended,
            Message::Observed("203.0.113.7:40000".parse().unwrap()),
            Message::RelayOpen {
                peer: PublicKey([3; 32]),
                index: 77,
            },
            Message::RelayReady {
                peer: PublicKey([4; 32]),
                index: 78,
            },
            Message::RelayAsk {
                peer: PublicKey([5; 32]),
            },
            Message::RelayTo {
                peer: PublicKey([6; 32]),
                datagram: vec![1; 121],
            },
            Message::RelayFrom {
                peer: PublicKey([7; 32]),
                datagram: vec![2; 341],
            },
            Message::Update {
                epoch: 3,
                version: 10,
                member: Member {
                    key: PublicKey([8; 32]),
                    name: "Bo".into(),
                    role: Role::Listener,
                    hand_raised: true,
                    muted: false,
                    candidates: vec!["192.0.2.1:5".parse().unwrap()],
                    joined: 2,
                },
            },
            Message::StageInvite {
                by: PublicKey([8; 32]),
            },
            Message::StageAnswer { accept: true },
            Message::StageAnswer { accept: false },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn a_state_with_a_bidi_override_in_the_title_or_a_name_does_not_decode() {
        for (title, name) in [("Night\u{202E}owls", "Ada"), ("Night owls", "A\u{2066}da")] {
            let mut sample = samples();
            let Message::State(mut state) = sample.swap_remove(1) else {
                panic!("sample 1 is a State")
            };
            state.title = title.into();
            if let Some(m) = state.members.first_mut() {
                m.name = name.into();
            }
            let bytes = Message::State(state).encode();
            assert!(Message::decode(&bytes).is_err(), "{title:?} {name:?}");
        }
    }

    #[test]
    fn a_stage_answer_that_is_not_0_or_1_and_a_truncated_update_do_not_decode() {
        for bad in [
            &[STAGE_ANSWER, 2][..],
            &[STAGE_ANSWER, 0xff],
            &[16],
            &[16, 0],
        ] {
            assert!(Message::decode(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn messages_naming_a_low_order_key_do_not_decode() {
        let low = PublicKey([0; 32]);
        let with_low_key: Vec<Message> = samples()
            .into_iter()
            .filter_map(|m| {
                Some(match m {
                    Message::State(mut s) => {
                        s.members[0].key = low;
                        s.banned.clear();
                        Message::State(s)
                    }
                    Message::Moderate { action, .. } => Message::Moderate {
                        target: low,
                        action,
                    },
                    Message::RelayOpen { index, .. } => Message::RelayOpen { peer: low, index },
                    Message::RelayReady { index, .. } => Message::RelayReady { peer: low, index },
                    Message::RelayAsk { .. } => Message::RelayAsk { peer: low },
                    Message::RelayTo { datagram, .. } => Message::RelayTo {
                        peer: low,
                        datagram,
                    },
                    Message::RelayFrom { datagram, .. } => Message::RelayFrom {
                        peer: low,
                        datagram,
                    },
                    _ => return None,
                })
            })
            .collect();
        assert_eq!(with_low_key.len(), 7);
        for m in with_low_key {
            assert_eq!(
                Message::decode(&m.encode()),
                Err(DecodeError::Invalid("low-order key")),
                "{m:?}"
            );
        }
        // A banned entry is a peer key too.
        let Some(Message::State(mut s)) = samples().into_iter().nth(1) else {
            panic!("sample 1 is a State");
        };
        s.banned = vec![low];
        assert!(Message::decode(&Message::State(s).encode()).is_err());
    }

    #[test]
    fn truncated_or_extended_messages_are_rejected() {
        for m in samples() {
            let b = m.encode();
            for cut in 0..b.len() {
                assert!(Message::decode(&b[..cut]).is_err(), "{m:?} cut at {cut}");
            }
            let mut long = b.clone();
            long.push(0);
            assert!(Message::decode(&long).is_err());
        }
    }
}
