//! The room as this node holds it: its secret, the roster under its authority, our own
//! part in it, and where we are in joining or leaving it.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    /// Handshaking with the host; no roster yet.
    Joining {
        deadline: Instant,
        tried: Vec<SocketAddr>,
    },
    /// In the room.
    Open,
    /// Left; lingering so goodbyes are delivered.
    Closing { until: Instant },
}

pub(super) struct Room {
    pub(super) id: RoomId,
    pub(super) secret: Secret32,
    /// The roster, its epoch and the rules for changing it.
    pub(super) authority: Authority,
    pub(super) my_name: String,
    pub(super) my_candidates: Vec<SocketAddr>,
    pub(super) phase: Phase,
    pub(super) chat_sent: u64,
    pub(super) chat_seen: BTreeMap<PublicKey, u64>,
    pub(super) audio_seq: u32,
    /// Our own mute request, to tell a moderator's mute from ours.
    pub(super) want_muted: bool,
    /// Our address as the host sees it (our reflexive address).
    pub(super) observed: Option<SocketAddr>,
    /// Each member's allowance of chat messages we deliver (ours included).
    pub(super) chat_allowance: BTreeMap<PublicKey, Allowance>,
    /// Listener: the stage invitation we may answer (the inviter, and when it came).
    pub(super) stage_invited: Option<(PublicKey, Instant)>,
}

impl Room {
    /// A room in `phase` under `authority`, with nothing of ours in it yet.
    pub(super) fn new(
        id: RoomId,
        secret: Secret32,
        authority: Authority,
        my_name: &str,
        my_candidates: Vec<SocketAddr>,
        phase: Phase,
    ) -> Self {
        Self {
            id,
            secret,
            authority,
            my_name: my_name.trim().to_owned(),
            my_candidates,
            phase,
            chat_sent: 0,
            chat_seen: BTreeMap::new(),
            audio_seq: 0,
            want_muted: false,
            observed: None,
            chat_allowance: BTreeMap::new(),
            stage_invited: None,
        }
    }

    /// The host's key.
    pub(super) fn host(&self) -> PublicKey {
        self.authority.host
    }

    pub(super) fn member(&self, key: &PublicKey) -> Option<&Member> {
        self.authority.member(key)
    }

    /// Every member's key but `me` (and `except`), in roster order.
    pub(super) fn others(&self, me: PublicKey, except: Option<PublicKey>) -> Vec<PublicKey> {
        self.authority
            .members
            .iter()
            .map(|m| m.key)
            .filter(|k| *k != me && Some(*k) != except)
            .collect()
    }

    /// Whether every member sends at the stage rate now.
    pub(super) fn uniform_now(&self) -> bool {
        self.authority.uniform && self.authority.members.len() <= UNIFORM_RATE_MAX_MEMBERS
    }

    pub(super) fn view(&self) -> RoomView {
        let a = &self.authority;
        let keys: Vec<PublicKey> = a.members.iter().map(|m| m.key).collect();
        RoomView {
            room_id: self.id,
            title: a.title.clone(),
            epoch: a.epoch,
            host: a.host,
            members: a.members.clone(),
            safety_code: room_safety_code(&self.id.0, a.epoch, &keys),
        }
    }
}
