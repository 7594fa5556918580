//! The room authority (PROTOCOL §6): the roster, and the rules by which it changes.
//!
//! The host decides every request (hello, hand, mute, moderation, stage answers) against
//! it; members take the host's rosters and deltas only when they follow the roster they
//! hold, and agree without talking on who succeeds a host that is gone. A pure state
//! machine: requests and `now` in, a [`Decision`] or [`Verdict`] out, no links, datagrams
//! or events of its own. The endpoint carries the decisions out (sends, re-keys, events).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::allowance::{Allowance, REQUEST_BURST, REQUEST_EVERY};
use crate::identity::PublicKey;
use crate::message::{Action, Message, RoomState};
use crate::roster::{MAX_CANDIDATES, Member, Role, successor, valid_name};
use crate::secret::Secret32;

/// How long a stage invitation can be accepted: long enough for someone to notice the
/// prompt, short enough that a stale "yes" cannot open a microphone much later.
pub const STAGE_INVITE_LIFETIME: Duration = Duration::from_secs(60);

/// Host side: a stage invitation waiting for the listener's answer.
#[derive(Debug, Clone, Copy)]
struct StageInvitation {
    /// The moderator (or the host) who invited.
    by: PublicKey,
    /// The answer counts only before this.
    expires: Instant,
}

/// What the host decided about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing changes: refused, over the member's allowance, or already so.
    Unchanged,
    /// `key`'s entry changed and the version went up. A newcomer needs the whole roster;
    /// everyone else needs only this entry.
    Changed { key: PublicKey, newcomer: bool },
    /// A moderator removed `target`; see [`Authority::remove`].
    Remove(PublicKey),
    /// `by` invited the listener `target`, who did not ask: nobody goes on stage (and so
    /// has their microphone opened) without saying yes, so the listener is asked first.
    AskToStage { by: PublicKey, target: PublicKey },
    /// `member` said no to `by`'s stage invitation.
    Declined { member: PublicKey, by: PublicKey },
}

/// What a member makes of a roster that arrived.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Not ours to take: not from the host or its agreed successor, not newer, or not
    /// naming exactly one host.
    Refused,
    /// From the agreed successor before we noticed the host gone: kept until we do
    /// (the channel acknowledged it, so it will not come again).
    Early,
    /// Take it: it names `host`.
    Accepted { state: RoomState, host: PublicKey },
}

/// What taking a roster changed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Adopted {
    /// The host before.
    pub(crate) old_host: PublicKey,
    /// Whether it opened a new epoch (links re-key).
    pub(crate) epoch_changed: bool,
}

/// The roster of one room and who holds authority over it. The host's copy is the truth;
/// a member's copy follows it.
pub(crate) struct Authority {
    pub(crate) title: String,
    pub(crate) host: PublicKey,
    /// Grows on every leave, removal and host change; each epoch has its own secret.
    pub(crate) epoch: u64,
    pub(crate) epoch_secret: Secret32,
    /// Grows on every change inside an epoch.
    pub(crate) version: u64,
    pub(crate) members: Vec<Member>,
    pub(crate) banned: BTreeSet<PublicKey>,
    /// The host's uniform-rate setting (PROTOCOL §5.1).
    pub(crate) uniform: bool,
    next_join_order: u64,
    /// Since when the host is known to be gone (left or timed out) with no successor
    /// roster yet.
    host_gone: Option<Instant>,
    /// A roster from the agreed successor that arrived before the host was known gone.
    successor_state: Option<(PublicKey, RoomState)>,
    /// Host: each member's allowance of requests (hand, mute, moderation, hello).
    requests: BTreeMap<PublicKey, Allowance>,
    /// Host: pending stage invitations, at most one per member (a new one replaces it).
    stage_invites: BTreeMap<PublicKey, StageInvitation>,
}

impl Authority {
    /// A room we host: epoch 1, with us alone in it.
    pub(crate) fn hosted(me: Member, title: String, epoch_secret: Secret32, uniform: bool) -> Self {
        let mut authority = Self::awaiting(me.key);
        authority.title = title;
        authority.epoch = 1;
        authority.epoch_secret = epoch_secret;
        authority.version = 1;
        authority.members = vec![Member {
            role: Role::Host,
            joined: 0,
            ..me
        }];
        authority.next_join_order = 1;
        authority.uniform = uniform;
        authority
    }

    /// A room we are joining: nothing known but its host, until its first roster.
    pub(crate) fn awaiting(host: PublicKey) -> Self {
        Self {
            title: String::new(),
            host,
            epoch: 0,
            epoch_secret: Secret32::from_bytes([0; 32]),
            version: 0,
            members: Vec::new(),
            banned: BTreeSet::new(),
            uniform: false,
            next_join_order: 0,
            host_gone: None,
            successor_state: None,
            requests: BTreeMap::new(),
            stage_invites: BTreeMap::new(),
        }
    }

    /// The member with this key.
    pub(crate) fn member(&self, key: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| m.key == *key)
    }

    fn member_mut(&mut self, key: &PublicKey) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.key == *key)
    }

    /// The whole roster as it goes on the wire.
    pub(crate) fn state(&self) -> RoomState {
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

    // ---- The host's decisions ----

    /// Host: decides one request `msg` from `from` (ourselves included: the host's own
    /// requests go through the same rules). `observed` is the address `from`'s datagrams
    /// come from, put first among a newcomer's addresses; `max_members` caps the room.
    pub(crate) fn decide(
        &mut self,
        now: Instant,
        from: PublicKey,
        msg: Message,
        observed: Option<SocketAddr>,
        max_members: usize,
    ) -> Decision {
        let me = self.host;
        let request = matches!(
            msg,
            Message::Hello { .. }
                | Message::SetHand(_)
                | Message::SetMuted(_)
                | Message::Moderate { .. }
                | Message::StageAnswer { .. }
        );
        // Each request costs the host a roster update to everyone: a member gets as many
        // as a person could make, and the rest are ignored.
        if !request
            || (from != me
                && !self
                    .requests
                    .entry(from)
                    .or_insert_with(|| Allowance::new(now, REQUEST_BURST, REQUEST_EVERY))
                    .take(now))
        {
            return Decision::Unchanged;
        }
        let decision = match msg {
            Message::Hello { name, candidates } => {
                self.hello(from, &name, candidates, observed, max_members)
            }
            Message::SetHand(up) => self.member_mut(&from).map_or(Decision::Unchanged, |m| {
                let up = up && m.role == Role::Listener;
                let changed = m.hand_raised != up;
                m.hand_raised = up;
                Decision::changed_if(changed, from)
            }),
            Message::SetMuted(muted) => self.member_mut(&from).map_or(Decision::Unchanged, |m| {
                let changed = m.muted != muted;
                m.muted = muted;
                Decision::changed_if(changed, from)
            }),
            Message::Moderate { target, action } => self.moderate(now, from, target, action),
            Message::StageAnswer { accept } => self.stage_answer(now, from, accept),
            _ => Decision::Unchanged,
        };
        if matches!(decision, Decision::Changed { .. }) {
            self.version += 1;
        }
        decision
    }

    fn hello(
        &mut self,
        from: PublicKey,
        name: &str,
        candidates: Vec<SocketAddr>,
        observed: Option<SocketAddr>,
        max_members: usize,
    ) -> Decision {
        if from == self.host || !valid_name(name) || self.banned.contains(&from) {
            return Decision::Unchanged;
        }
        let mut cands: Vec<SocketAddr> = observed.into_iter().collect();
        for c in candidates {
            if !cands.contains(&c) && cands.len() < MAX_CANDIDATES {
                cands.push(c);
            }
        }
        let name = name.trim().to_owned();
        if let Some(m) = self.member_mut(&from) {
            m.name = name;
            m.candidates = cands;
            return Decision::changed_if(true, from);
        }
        if self.members.len() >= max_members {
            return Decision::Unchanged;
        }
        let joined = self.next_join_order;
        self.next_join_order += 1;
        self.members.push(Member {
            key: from,
            name,
            role: Role::Listener,
            hand_raised: false,
            muted: false,
            candidates: cands,
            joined,
        });
        Decision::Changed {
            key: from,
            newcomer: true,
        }
    }

    fn moderate(
        &mut self,
        now: Instant,
        from: PublicKey,
        target: PublicKey,
        action: Action,
    ) -> Decision {
        let (Some(actor), Some(subject)) = (
            self.member(&from).map(|m| m.role),
            self.member(&target).map(|m| m.role),
        ) else {
            return Decision::Unchanged;
        };
        let allowed = match actor {
            Role::Host => true,
            Role::Moderator => {
                matches!(subject, Role::Speaker | Role::Listener) && action != Action::MakeModerator
            }
            _ => false,
        };
        if !allowed || subject == Role::Host || target == from {
            return Decision::Unchanged;
        }
        if action == Action::Remove {
            return Decision::Remove(target);
        }
        let asked = self.member(&target).is_some_and(|m| m.hand_raised);
        if action == Action::InviteToStage && subject == Role::Listener && !asked {
            self.remember_invitation(now, from, target);
            return Decision::AskToStage { by: from, target };
        }
        let Some(m) = self.member_mut(&target) else {
            return Decision::Unchanged;
        };
        match action {
            // A raised hand already asked to speak (the Clubhouse model): on stage at
            // once, no invitation.
            Action::InviteToStage if m.role == Role::Listener => {
                m.role = Role::Speaker;
                m.hand_raised = false;
                self.stage_invites.remove(&target);
            }
            Action::MoveToAudience if m.role.on_stage() => {
                m.role = Role::Listener;
                m.muted = false;
            }
            Action::MakeModerator => {
                m.role = Role::Moderator;
                m.hand_raised = false;
            }
            Action::Mute if m.role.on_stage() => m.muted = true,
            _ => return Decision::Unchanged,
        }
        Decision::changed_if(true, target)
    }

    /// Remembers a stage invitation from `by` to `target`, replacing any earlier one.
    /// Lapsed invitations and ones for members who are gone are dropped first, so the
    /// map never holds more than one entry per member.
    fn remember_invitation(&mut self, now: Instant, by: PublicKey, target: PublicKey) {
        let members = &self.members;
        self.stage_invites
            .retain(|k, inv| now < inv.expires && members.iter().any(|m| m.key == *k));
        self.stage_invites.insert(
            target,
            StageInvitation {
                by,
                expires: now + STAGE_INVITE_LIFETIME,
            },
        );
    }

    fn stage_answer(&mut self, now: Instant, from: PublicKey, accept: bool) -> Decision {
        // Used up whatever the answer: one invitation, one answer.
        let Some(invitation) = self.stage_invites.remove(&from) else {
            return Decision::Unchanged;
        };
        if now >= invitation.expires {
            return Decision::Unchanged;
        }
        if !accept {
            return Decision::Declined {
                member: from,
                by: invitation.by,
            };
        }
        // The inviter must still be allowed to invite (not demoted since).
        if !self
            .member(&invitation.by)
            .is_some_and(|m| m.role.can_moderate())
        {
            return Decision::Unchanged;
        }
        match self.member_mut(&from) {
            Some(m) if m.role == Role::Listener => {
                m.role = Role::Speaker;
                m.hand_raised = false;
                Decision::changed_if(true, from)
            }
            _ => Decision::Unchanged,
        }
    }

    /// Host: stage invitations nobody answered by `now`, as `(member, inviter)` in key
    /// order (the map is ordered: the machine stays deterministic); they are forgotten.
    pub(crate) fn lapse_invitations(&mut self, now: Instant) -> Vec<(PublicKey, PublicKey)> {
        let lapsed: Vec<(PublicKey, PublicKey)> = self
            .stage_invites
            .iter()
            .filter(|(_, i)| now >= i.expires)
            .map(|(member, i)| (*member, i.by))
            .collect();
        for (member, _) in &lapsed {
            self.stage_invites.remove(member);
        }
        lapsed
    }

    /// Host: who holds a pending stage invitation, in key order.
    #[cfg(test)]
    pub(crate) fn invited(&self) -> Vec<PublicKey> {
        self.stage_invites.keys().copied().collect()
    }

    /// Host: when the first pending stage invitation lapses.
    pub(crate) fn next_lapse(&self) -> Option<Instant> {
        self.stage_invites.values().map(|i| i.expires).min()
    }

    /// Host: takes `target` out of the roster (with `ban`, for good: whoever hosts next
    /// keeps refusing the key). `false` if they were not in it. The caller opens a new
    /// epoch.
    pub(crate) fn remove(&mut self, target: PublicKey, ban: bool) -> bool {
        if self.member(&target).is_none() {
            return false;
        }
        self.members.retain(|m| m.key != target);
        self.stage_invites.remove(&target);
        if ban {
            self.banned.insert(target);
        }
        true
    }

    /// Host: a new epoch under `secret` (after a departure, so the departed cannot follow).
    pub(crate) fn new_epoch(&mut self, secret: Secret32) {
        self.epoch = self.epoch.saturating_add(1);
        self.epoch_secret = secret;
        self.version = 1;
    }

    /// Host: our own addresses changed.
    pub(crate) fn set_own_candidates(&mut self, mut candidates: Vec<SocketAddr>) {
        let me = self.host;
        if let Some(m) = self.member_mut(&me) {
            candidates.truncate(MAX_CANDIDATES);
            m.candidates = candidates;
        }
        self.version += 1;
    }

    /// Host: `peer` answered a path challenge from `addr`: it goes first among their
    /// addresses, so the others punch towards it. `false` if it already was.
    pub(crate) fn moved(&mut self, peer: &PublicKey, addr: SocketAddr) -> bool {
        let Some(m) = self.member_mut(peer) else {
            return false;
        };
        if m.candidates.first() == Some(&addr) {
            return false;
        }
        m.candidates.retain(|c| *c != addr);
        m.candidates.insert(0, addr);
        m.candidates.truncate(MAX_CANDIDATES);
        self.version += 1;
        true
    }

    /// Host, leaving: hands the room to the successor, if anyone is left, and leaves the
    /// roster. The caller opens a new epoch.
    pub(crate) fn hand_over(&mut self) -> Option<PublicKey> {
        let me = self.host;
        let next = successor(&self.members, &me)?;
        self.members.retain(|m| m.key != me);
        if let Some(m) = self.member_mut(&next) {
            m.role = Role::Host;
            m.hand_raised = false;
        }
        self.host = next;
        Some(next)
    }

    // ---- Members: following the host, and succession ----

    /// Member: what to make of a roster `s` from `from`. Only the current host (naming
    /// anyone as host: a graceful hand-over) or the agreed successor naming itself may
    /// send one, and only a newer one counts (while `joining`, the first one does).
    pub(crate) fn judge(&mut self, from: PublicKey, s: RoomState, joining: bool) -> Verdict {
        let mut hosts = s
            .members
            .iter()
            .filter(|m| m.role == Role::Host)
            .map(|m| m.key);
        let (Some(new_host), None) = (hosts.next(), hosts.next()) else {
            return Verdict::Refused;
        };
        let from_host = from == self.host;
        let from_successor = successor(&self.members, &self.host) == Some(from) && new_host == from;
        let newer = joining || (s.epoch, s.version) > (self.epoch, self.version);
        if !(from_host || from_successor) || !newer || s.epoch == u64::MAX {
            return Verdict::Refused;
        }
        if !from_host && self.host_gone.is_none() {
            self.successor_state = Some((from, s));
            return Verdict::Early;
        }
        Verdict::Accepted {
            state: s,
            host: new_host,
        }
    }

    /// Member: the roster `judge` accepted becomes ours.
    pub(crate) fn adopt(&mut self, s: RoomState, host: PublicKey) -> Adopted {
        let adopted = Adopted {
            old_host: self.host,
            epoch_changed: s.epoch != self.epoch,
        };
        self.title = s.title;
        self.epoch = s.epoch;
        self.epoch_secret = s.epoch_secret;
        self.version = s.version;
        self.members = s.members;
        self.banned = s.banned.into_iter().collect();
        self.uniform = s.uniform;
        self.next_join_order = self.members.iter().map(|m| m.joined + 1).max().unwrap_or(0);
        self.host = host;
        self.host_gone = None;
        self.successor_state = None;
        adopted
    }

    /// Member: the host's delta, as the whole roster it makes, if it follows ours
    /// exactly; anything else (another epoch, a gap, not from the host, a second host)
    /// gives nothing.
    pub(crate) fn follow(
        &self,
        from: PublicKey,
        epoch: u64,
        version: u64,
        member: Member,
    ) -> Option<RoomState> {
        if from != self.host
            || epoch != self.epoch
            || Some(version) != self.version.checked_add(1)
            || member.role == Role::Host
        {
            return None;
        }
        let mut s = self.state();
        s.version = version;
        match s.members.iter_mut().find(|m| m.key == member.key) {
            Some(m) if m.role == Role::Host => return None,
            Some(m) => *m = member,
            None => s.members.push(member),
        }
        Some(s)
    }

    /// Member: the host left or timed out at `now`; returns a successor's roster that
    /// came early, to judge again now.
    pub(crate) fn host_left(&mut self, now: Instant) -> Option<(PublicKey, RoomState)> {
        self.host_gone = Some(now);
        self.successor_state.take()
    }

    /// Since when the host has been gone with no successor's roster.
    pub(crate) fn host_gone(&self) -> Option<Instant> {
        self.host_gone
    }

    /// Member: when the host is gone and we are its agreed successor, we become host (the
    /// caller opens a new epoch). `true` if we did.
    pub(crate) fn take_over(&mut self, me: PublicKey) -> bool {
        if self.host_gone.is_none() || successor(&self.members, &self.host) != Some(me) {
            return false;
        }
        let old = self.host;
        self.members.retain(|m| m.key != old);
        if let Some(m) = self.member_mut(&me) {
            m.role = Role::Host;
            m.hand_raised = false;
        }
        self.host = me;
        self.host_gone = None;
        self.successor_state = None;
        self.next_join_order = self.members.iter().map(|m| m.joined + 1).max().unwrap_or(0);
        true
    }
}

impl Decision {
    fn changed_if(changed: bool, key: PublicKey) -> Self {
        if changed {
            Decision::Changed {
                key,
                newcomer: false,
            }
        } else {
            Decision::Unchanged
        }
    }
}

#[cfg(test)]
mod tests {
    //! The authority alone: no endpoint, no links, no datagrams. Each test feeds requests
    //! and rosters and reads the decisions.

    use super::*;

    const MAX: usize = 8;

    fn key(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    fn person(n: u8) -> Member {
        Member {
            key: key(n),
            name: format!("person {n}"),
            role: Role::Listener,
            hand_raised: false,
            muted: false,
            candidates: Vec::new(),
            joined: 0,
        }
    }

    /// A room hosted by key 1 with `others` joined, in order.
    fn room(now: Instant, others: &[u8]) -> Authority {
        let mut a = Authority::hosted(
            person(1),
            "Room".into(),
            Secret32::from_bytes([9; 32]),
            true,
        );
        for &n in others {
            let hello = Message::Hello {
                name: format!("person {n}"),
                candidates: Vec::new(),
            };
            assert_eq!(
                a.decide(now, key(n), hello, None, MAX),
                Decision::Changed {
                    key: key(n),
                    newcomer: true
                }
            );
        }
        a
    }

    fn role(a: &Authority, n: u8) -> Option<Role> {
        a.member(&key(n)).map(|m| m.role)
    }

    fn moderate(a: &mut Authority, now: Instant, by: u8, target: u8, action: Action) -> Decision {
        let msg = Message::Moderate {
            target: key(target),
            action,
        };
        a.decide(now, key(by), msg, None, MAX)
    }

    #[test]
    fn a_newcomer_gets_the_next_join_order_and_the_seen_address_first() {
        let now = Instant::now();
        let mut a = room(now, &[2]);
        let seen: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let lan: SocketAddr = "10.0.0.7:4000".parse().unwrap();
        let hello = Message::Hello {
            name: "  Ana ".into(),
            candidates: vec![lan, seen],
        };
        let d = a.decide(now, key(3), hello, Some(seen), MAX);
        assert_eq!(
            d,
            Decision::Changed {
                key: key(3),
                newcomer: true
            }
        );
        let m = a.member(&key(3)).unwrap();
        assert_eq!((m.name.as_str(), m.joined), ("Ana", 2));
        assert_eq!(m.candidates, vec![seen, lan]);
        assert_eq!(a.version, 3, "one version per change");
    }

    #[test]
    fn a_banned_key_a_full_room_and_a_bad_name_get_no_seat() {
        let now = Instant::now();
        let mut a = room(now, &[2]);
        assert!(a.remove(key(2), true));
        let hello = |name: &str| Message::Hello {
            name: name.into(),
            candidates: Vec::new(),
        };
        assert_eq!(
            a.decide(now, key(2), hello("back"), None, MAX),
            Decision::Unchanged
        );
        assert_eq!(
            a.decide(now, key(3), hello("a\u{202e}b"), None, MAX),
            Decision::Unchanged
        );
        assert_eq!(
            a.decide(now, key(4), hello("four"), None, 1),
            Decision::Unchanged
        );
        assert_eq!(a.members.len(), 1);
    }

    #[test]
    fn moderators_act_on_speakers_and_listeners_only_and_never_appoint_moderators() {
        let now = Instant::now();
        let mut a = room(now, &[2, 3, 4]);
        assert!(matches!(
            moderate(&mut a, now, 1, 2, Action::MakeModerator),
            Decision::Changed { .. }
        ));
        assert_eq!(
            moderate(&mut a, now, 2, 3, Action::MakeModerator),
            Decision::Unchanged
        );
        assert_eq!(
            moderate(&mut a, now, 2, 1, Action::Remove),
            Decision::Unchanged
        );
        assert_eq!(
            moderate(&mut a, now, 3, 4, Action::Remove),
            Decision::Unchanged
        );
        assert_eq!(
            moderate(&mut a, now, 2, 4, Action::Remove),
            Decision::Remove(key(4))
        );
        assert_eq!(
            role(&a, 4),
            Some(Role::Listener),
            "removal is the endpoint's to do"
        );
    }

    #[test]
    fn an_unasked_listener_goes_on_stage_only_after_saying_yes_in_time() {
        let now = Instant::now();
        let mut a = room(now, &[2, 3]);
        assert_eq!(
            moderate(&mut a, now, 1, 2, Action::InviteToStage),
            Decision::AskToStage {
                by: key(1),
                target: key(2)
            }
        );
        assert_eq!(role(&a, 2), Some(Role::Listener));
        let yes = Message::StageAnswer { accept: true };
        assert!(matches!(
            a.decide(now, key(2), yes.clone(), None, MAX),
            Decision::Changed { .. }
        ));
        assert_eq!(role(&a, 2), Some(Role::Speaker));
        // A late "yes" counts for nothing, and the invitation is used up.
        moderate(&mut a, now, 1, 3, Action::InviteToStage);
        let late = now + STAGE_INVITE_LIFETIME;
        assert_eq!(a.decide(late, key(3), yes, None, MAX), Decision::Unchanged);
        assert_eq!(role(&a, 3), Some(Role::Listener));
        assert!(a.invited().is_empty());
    }

    #[test]
    fn a_raised_hand_goes_on_stage_at_once() {
        let now = Instant::now();
        let mut a = room(now, &[2]);
        a.decide(now, key(2), Message::SetHand(true), None, MAX);
        assert!(matches!(
            moderate(&mut a, now, 1, 2, Action::InviteToStage),
            Decision::Changed { .. }
        ));
        let m = a.member(&key(2)).unwrap();
        assert_eq!((m.role, m.hand_raised), (Role::Speaker, false));
    }

    #[test]
    fn a_declined_invitation_is_reported_and_lapsed_ones_are_listed_once() {
        let now = Instant::now();
        let mut a = room(now, &[2, 3]);
        moderate(&mut a, now, 1, 2, Action::InviteToStage);
        moderate(&mut a, now, 1, 3, Action::InviteToStage);
        let no = Message::StageAnswer { accept: false };
        assert_eq!(
            a.decide(now, key(2), no, None, MAX),
            Decision::Declined {
                member: key(2),
                by: key(1)
            }
        );
        assert_eq!(a.next_lapse(), Some(now + STAGE_INVITE_LIFETIME));
        let later = now + STAGE_INVITE_LIFETIME;
        assert_eq!(a.lapse_invitations(later), vec![(key(3), key(1))]);
        assert!(a.lapse_invitations(later).is_empty());
        assert_eq!(a.next_lapse(), None);
    }

    #[test]
    fn a_member_over_its_request_allowance_is_ignored_but_the_host_is_not() {
        let now = Instant::now();
        let mut a = room(now, &[2]);
        let mut decided = 0;
        for i in 0..100 {
            let d = a.decide(now, key(2), Message::SetHand(i % 2 == 0), None, MAX);
            decided += usize::from(d != Decision::Unchanged);
        }
        // The hello that seated them took one token.
        assert_eq!(decided, REQUEST_BURST as usize - 1);
        for i in 0..100 {
            let d = a.decide(now, key(1), Message::SetMuted(i % 2 == 0), None, MAX);
            assert_ne!(d, Decision::Unchanged, "the host's own request {i}");
        }
    }

    #[test]
    fn a_member_follows_only_the_next_delta_from_the_host() {
        let now = Instant::now();
        let host = room(now, &[2]);
        let mut member = Authority::awaiting(key(1));
        let Verdict::Accepted { state, host: h } = member.judge(key(1), host.state(), true) else {
            panic!("the host's first roster is taken while joining");
        };
        member.adopt(state, h);
        let mut next = person(2);
        next.hand_raised = true;
        let (e, v) = (member.epoch, member.version);
        assert!(member.follow(key(1), e, v + 1, next.clone()).is_some());
        assert!(
            member.follow(key(1), e, v + 2, next.clone()).is_none(),
            "a gap"
        );
        assert!(
            member.follow(key(1), e + 1, v + 1, next.clone()).is_none(),
            "an epoch"
        );
        assert!(
            member.follow(key(2), e, v + 1, next.clone()).is_none(),
            "not the host"
        );
        next.role = Role::Host;
        assert!(
            member.follow(key(1), e, v + 1, next).is_none(),
            "a second host"
        );
    }

    #[test]
    fn only_the_agreed_successor_takes_over_and_its_early_roster_waits_for_the_host_to_go() {
        let now = Instant::now();
        let mut host = room(now, &[2, 3]);
        let mut member = Authority::awaiting(key(1));
        if let Verdict::Accepted { state, host: h } = member.judge(key(1), host.state(), true) {
            member.adopt(state, h);
        }
        // Key 2 joined first: the successor. Key 3's claim counts for nothing.
        let claim = |by: u8| {
            let mut a = room(now, &[2, 3]);
            a.members.retain(|m| m.key != key(1));
            for m in &mut a.members {
                if m.key == key(by) {
                    m.role = Role::Host;
                }
            }
            a.host = key(by);
            a.new_epoch(Secret32::from_bytes([7; 32]));
            a.state()
        };
        assert!(matches!(
            member.judge(key(3), claim(3), false),
            Verdict::Refused
        ));
        assert!(matches!(
            member.judge(key(2), claim(2), false),
            Verdict::Early
        ));
        let Some((from, early)) = member.host_left(now) else {
            panic!("the early roster is kept");
        };
        assert!(matches!(
            member.judge(from, early, false),
            Verdict::Accepted { host, .. } if host == key(2)
        ));
        // The host's own copy: key 2, not key 3, takes over once the host is gone.
        assert!(!host.take_over(key(2)), "not while the host is there");
        host.host_left(now);
        assert!(!host.take_over(key(3)));
        assert!(host.take_over(key(2)));
        assert_eq!(role(&host, 2), Some(Role::Host));
        assert!(host.member(&key(1)).is_none());
    }
}
