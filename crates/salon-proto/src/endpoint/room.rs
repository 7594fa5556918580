//! The room as this node holds it: its secret and epoch, the roster, the stage
//! invitations, and where we are in joining or leaving it.

use super::*;

/// Host side: a stage invitation waiting for the listener's answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct StageInvitation {
    /// The moderator (or the host) who invited.
    pub(super) by: PublicKey,
    /// The answer counts only before this.
    pub(super) expires: Instant,
}

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
    pub(super) title: String,
    pub(super) my_name: String,
    pub(super) my_candidates: Vec<SocketAddr>,
    pub(super) host: PublicKey,
    /// Since when the host is known to be gone (left or timed out) with no successor
    /// roster yet.
    pub(super) host_gone: Option<Instant>,
    /// A roster from the expected successor that arrived before we noticed the host was
    /// gone (the channel already acknowledged it, so it will not come again).
    pub(super) successor_state: Option<(PublicKey, RoomState)>,
    pub(super) phase: Phase,
    pub(super) epoch: u64,
    pub(super) epoch_secret: Secret32,
    pub(super) version: u64,
    pub(super) members: Vec<Member>,
    pub(super) banned: BTreeSet<PublicKey>,
    pub(super) next_join_order: u64,
    pub(super) chat_sent: u64,
    pub(super) chat_seen: BTreeMap<PublicKey, u64>,
    pub(super) audio_seq: u32,
    /// Our own mute request, to tell a moderator's mute from ours.
    pub(super) want_muted: bool,
    /// Our address as the host sees it (our reflexive address).
    pub(super) observed: Option<SocketAddr>,
    /// The host's uniform-rate setting (PROTOCOL §5.1).
    pub(super) uniform: bool,
    /// Host: each member's allowance of requests (hand, mute, moderation, hello).
    pub(super) requests: BTreeMap<PublicKey, Allowance>,
    /// Each member's allowance of chat messages we deliver (ours included).
    pub(super) chat_allowance: BTreeMap<PublicKey, Allowance>,
    /// Host: pending stage invitations, at most one per member (a new one replaces it).
    pub(super) stage_invites: BTreeMap<PublicKey, StageInvitation>,
    /// Listener: the stage invitation we may answer (the inviter, and when it came).
    pub(super) stage_invited: Option<(PublicKey, Instant)>,
}

impl Room {
    pub(super) fn member(&self, key: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| m.key == *key)
    }

    pub(super) fn member_mut(&mut self, key: &PublicKey) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.key == *key)
    }

    pub(super) fn state(&self) -> RoomState {
        // A `BTreeSet`: already in key order, as the wire wants.
        let banned: Vec<PublicKey> = self.banned.iter().copied().collect();
        RoomState::new(
            self.title.clone(),
            self.epoch,
            self.epoch_secret.clone(),
            self.version,
            self.members.clone(),
            banned,
        )
        .with_uniform(self.uniform)
    }

    /// Whether every member sends at the stage rate now.
    pub(super) fn uniform_now(&self) -> bool {
        self.uniform && self.members.len() <= UNIFORM_RATE_MAX_MEMBERS
    }

    pub(super) fn view(&self) -> RoomView {
        let keys: Vec<PublicKey> = self.members.iter().map(|m| m.key).collect();
        RoomView {
            room_id: self.id,
            title: self.title.clone(),
            epoch: self.epoch,
            host: self.host,
            members: self.members.clone(),
            safety_code: room_safety_code(&self.id.0, self.epoch, &keys),
        }
    }
}
