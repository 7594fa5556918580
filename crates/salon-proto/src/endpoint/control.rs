//! Control messages from peers, and carrying out what the room authority
//! (`crate::authority`) decides: the host's sends, removals, new epochs and secrets; a
//! member's links following the roster; hand-over, leaving and closing (PROTOCOL §6).

use super::*;

impl Endpoint {
    pub(super) fn on_message(&mut self, now: Instant, from: PublicKey, msg: Message) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        if matches!(room.phase, Phase::Closing { .. }) {
            return;
        }
        let i_am_host = room.host() == self.me && room.phase == Phase::Open;
        match msg {
            Message::State(s) => self.apply_state(now, from, s),
            Message::Update {
                epoch,
                version,
                member,
            } => self.apply_update(now, from, epoch, version, member),
            Message::Chat { seq, text } => {
                let Some(room) = self.room.as_mut() else {
                    return;
                };
                let Some(name) = room.member(&from).map(|m| m.name.clone()) else {
                    return;
                };
                if text.is_empty() || text.len() > MAX_CHAT_LEN {
                    return;
                }
                let last = room.chat_seen.get(&from).copied().unwrap_or(0);
                if seq <= last {
                    return;
                }
                // An honest sender keeps to the same allowance (`send_chat` refuses), so
                // only a flood is dropped here.
                if !room
                    .chat_allowance
                    .entry(from)
                    .or_insert_with(|| Allowance::new(now, CHAT_BURST, CHAT_EVERY))
                    .take(now)
                {
                    return;
                }
                room.chat_seen.insert(from, seq);
                self.events.push_back(Event::Chat {
                    from,
                    name,
                    seq,
                    text,
                });
            }
            Message::Removed if from == room.host() => {
                self.close_after_notice(now, LeftReason::Removed)
            }
            Message::Ended if from == room.host() => {
                self.close_after_notice(now, LeftReason::Ended)
            }
            Message::Leave => self.on_leave(now, from),
            Message::StageInvite { by } if from == room.host() => self.on_stage_invite(now, by),
            Message::Observed(addr) if from == room.host() => {
                if let Some(r) = self.room.as_mut() {
                    r.observed = Some(addr);
                }
            }
            Message::RelayOpen { peer, index } => self.on_relay_open(from, peer, index),
            Message::RelayAsk { peer } => self.on_relay_ask(now, from, peer),
            Message::RelayReady { peer, index } => {
                if let Some(l) = self.links.get_mut(&peer)
                    && let Some(r) = l.relay.as_mut()
                    && r.via == from
                {
                    r.send_index = Some(index);
                    // The next slot confirms a responder session waiting on us, and its
                    // ping shows the path.
                    l.next_ping = now;
                }
            }
            Message::RelayTo { peer, datagram } => self.on_relay_to(from, peer, datagram),
            Message::RelayFrom { peer, datagram } if self.links.contains_key(&peer) => {
                match Packet::parse(&datagram) {
                    Ok(Packet::Init(init)) => self.on_init(now, Origin::Relay(from), &init),
                    Ok(Packet::Response(resp)) => self.on_response(now, Origin::Relay(from), &resp),
                    _ => {}
                }
            }
            other if i_am_host => self.host_handle(now, from, other),
            _ => {}
        }
    }

    /// Host side of requests (also used for our own requests when we host): the
    /// authority decides, and this carries the decision out.
    pub(super) fn host_handle(&mut self, now: Instant, from: PublicKey, msg: Message) {
        let observed = self.links.get(&from).and_then(|l| l.addr);
        let hello = matches!(msg, Message::Hello { .. });
        let max_members = self.cfg.max_members;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        match room.authority.decide(now, from, msg, observed, max_members) {
            Decision::Unchanged => {}
            Decision::Changed { key, newcomer } => {
                if hello && let Some(addr) = observed {
                    let _ = self.send_message(&from, &Message::Observed(addr));
                }
                self.broadcast_update(key, newcomer);
                self.emit_room_changed();
            }
            Decision::Remove(target) => self.remove_member(now, target, true),
            Decision::AskToStage { by, target } => {
                let _ = self.send_message(&target, &Message::StageInvite { by });
            }
            Decision::Declined { member, by } => {
                self.events
                    .push_back(Event::StageInviteDeclined { member, by });
            }
        }
    }

    /// Host: tells everyone that `key`'s entry changed (a delta), and a newcomer `key`
    /// the whole roster.
    pub(super) fn broadcast_update(&mut self, key: PublicKey, newcomer: bool) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let Some(member) = room.member(&key).cloned() else {
            return self.broadcast_state();
        };
        let update = Message::Update {
            epoch: room.authority.epoch,
            version: room.authority.version,
            member,
        };
        if newcomer {
            let state = Message::State(room.authority.state());
            if self.send_message(&key, &state).is_err()
                && let Some(l) = self.links.get_mut(&key)
            {
                l.roster_resync = true;
            }
            self.broadcast_roster(&update, Some(key));
        } else {
            self.broadcast_roster(&update, None);
        }
    }

    /// Sends a roster message to every member but us (and `except`). A member whose
    /// channel is full does not silently miss it: it gets the whole roster as soon as
    /// its channel has drained (`flush`).
    pub(super) fn broadcast_roster(&mut self, msg: &Message, except: Option<PublicKey>) {
        let me = self.me;
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let peers = room.others(me, except);
        let bytes = msg.encode();
        for p in peers {
            if let Some(link) = self.links.get_mut(&p)
                && (link.roster_resync || link.channel.send(&bytes).is_err())
            {
                link.roster_resync = true;
            }
        }
    }

    /// Member: applies the host's delta if it follows our roster exactly; anything else
    /// (another epoch, a gap, not from the host, a second host) changes nothing.
    pub(super) fn apply_update(
        &mut self,
        now: Instant,
        from: PublicKey,
        epoch: u64,
        version: u64,
        member: Member,
    ) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        if room.phase != Phase::Open {
            return;
        }
        if let Some(s) = room.authority.follow(from, epoch, version, member) {
            self.apply_state(now, from, s);
        }
    }

    /// Host: takes a member out of the roster and opens a new epoch. With `ban`, the
    /// member is told, and the invite no longer admits their key.
    pub(super) fn remove_member(&mut self, now: Instant, target: PublicKey, ban: bool) {
        let linger = self.cfg.linger;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if !room.authority.remove(target, ban) {
            return;
        }
        room.chat_seen.remove(&target);
        if ban {
            let _ = self.send_message(&target, &Message::Removed);
            if let Some(l) = self.links.get_mut(&target) {
                l.closing = Some(now + linger);
                l.retry = None;
            }
        } else {
            self.drop_link(&target);
        }
        self.new_epoch();
        self.broadcast_state();
        self.emit_room_changed();
        if ban {
            // The ban holds their key only: with the old invite a fresh identity would
            // get a seat again. A new room secret makes the old invite answer nothing.
            self.rotate_room_secret(InviteChange::Removal);
        }
        self.schedule_rekeys(now);
    }

    /// Stage invitations nobody answered in time lapse out loud: the listener's prompt
    /// goes, and the host learns the invitation went unanswered.
    pub(super) fn lapse_stage_invitations(&mut self, now: Instant) {
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if let Some((by, arrived)) = room.stage_invited
            && now >= arrived + STAGE_ANSWER_BY
        {
            room.stage_invited = None;
            self.events.push_back(Event::StageInviteLapsed { by });
        }
        for (member, by) in room.authority.lapse_invitations(now) {
            self.events
                .push_back(Event::StageInviteUnanswered { member, by });
        }
    }

    /// Listener: the host relays a moderator's stage invitation. Kept for the application
    /// to answer only while we are a listener and `by` may moderate; anything else is
    /// dropped unseen.
    pub(super) fn on_stage_invite(&mut self, now: Instant, by: PublicKey) {
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        let listening = room.member(&me).is_some_and(|m| m.role == Role::Listener);
        let may_invite = room.member(&by).is_some_and(|m| m.role.can_moderate());
        if room.phase != Phase::Open || !listening || !may_invite {
            return;
        }
        room.stage_invited = Some((by, now));
        self.events.push_back(Event::StageInvited { by });
    }

    /// Host: draws a fresh room secret, so initiations whose mac1 is keyed with the old
    /// one match no key and get no answer, and hands the application the new invite.
    /// Members are not told: only the host admits joiners (and a successor draws its own
    /// secret), so the secret stays with whoever the host gives the invite to.
    pub(super) fn rotate_room_secret(&mut self, reason: InviteChange) -> Option<Invite> {
        let secret = Secret32::generate(&mut self.rng);
        self.room.as_mut()?.secret = secret;
        let invite = self.own_invite()?;
        self.events.push_back(Event::InviteChanged {
            invite: invite.clone(),
            reason,
        });
        Some(invite)
    }

    /// Our invite with the addresses we know of ourselves: where the old host saw us
    /// first (joiners from outside our network reach that), then our own addresses.
    pub(super) fn own_invite(&self) -> Option<Invite> {
        let room = self.room.as_ref()?;
        let cands: Vec<Candidate> = room
            .observed
            .filter(|o| !room.my_candidates.contains(o))
            .map(|addr| Candidate {
                kind: CandidateKind::Reflexive,
                addr,
            })
            .into_iter()
            .chain(room.my_candidates.iter().map(|a| Candidate {
                kind: CandidateKind::Lan,
                addr: *a,
            }))
            .take(crate::invite::MAX_CANDIDATES)
            .collect();
        self.invite(cands)
    }

    pub(super) fn new_epoch(&mut self) {
        let secret = Secret32::generate(&mut self.rng);
        if let Some(room) = self.room.as_mut() {
            room.authority.new_epoch(secret);
        }
    }

    pub(super) fn broadcast_state(&mut self) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let msg = Message::State(room.authority.state());
        self.broadcast_roster(&msg, None);
    }

    pub(super) fn emit_room_changed(&mut self) {
        if let Some(room) = self.room.as_ref() {
            self.events.push_back(Event::RoomChanged(room.view()));
        }
    }

    /// Links where we are the initiating side get a fresh handshake for the new epoch,
    /// slightly spread so the new roster reaches the peer first.
    pub(super) fn schedule_rekeys(&mut self, now: Instant) {
        let me = self.me;
        let peers: Vec<PublicKey> = self.links.keys().copied().filter(|p| me < *p).collect();
        for p in peers {
            let j = self.jitter();
            if let Some(l) = self.links.get_mut(&p)
                && l.closing.is_none()
            {
                l.retry = Some(Retry {
                    attempts: 0,
                    next: now + j,
                });
            }
        }
    }

    /// Member: a whole roster from `from`, taken if the authority accepts it; our links,
    /// role and the application follow it.
    pub(super) fn apply_state(&mut self, now: Instant, from: PublicKey, s: RoomState) {
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        let joining = matches!(room.phase, Phase::Joining { .. });
        let Verdict::Accepted { state, host } = room.authority.judge(from, s, joining) else {
            return;
        };
        let Some(mine) = state.members.iter().find(|m| m.key == me).cloned() else {
            if !joining {
                self.close_after_notice(now, LeftReason::Removed);
            }
            return;
        };
        let old_role = room.member(&me).map(|m| m.role);
        let old_muted = room.member(&me).is_some_and(|m| m.muted);
        let Adopted {
            old_host,
            epoch_changed,
        } = room.authority.adopt(state, host);
        let authority = &room.authority;
        room.chat_seen.retain(|k, _| authority.member(k).is_some());
        // An invitation is void once we are off the audience benches, or its host (who
        // alone holds the other half of it) is gone.
        if mine.role != Role::Listener || old_host != host {
            room.stage_invited = None;
        }
        let view = room.view();
        if joining {
            room.phase = Phase::Open;
            self.events.push_back(Event::Joined(view));
        } else {
            self.events.push_back(Event::RoomChanged(view));
            if old_host != host && host == me {
                self.become_host_invite();
            } else if old_host != host {
                self.events
                    .push_back(Event::HostChanged { host, invite: None });
            }
        }
        if old_role.is_some_and(|r| r != mine.role) {
            self.events.push_back(Event::RoleChanged(mine.role));
        }
        let want_muted = self.room.as_ref().is_some_and(|r| r.want_muted);
        if mine.muted && !old_muted && !want_muted {
            self.events.push_back(Event::MutedByModerator);
        }
        if let Some(r) = self.room.as_mut() {
            r.want_muted = mine.muted;
        }
        self.sync_links(now, epoch_changed);
    }

    /// Makes the links match the roster: new members get a link (we initiate when our key
    /// is the lower one), departed members lose theirs.
    pub(super) fn sync_links(&mut self, now: Instant, epoch_changed: bool) {
        let me = self.me;
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let members: Vec<(PublicKey, Vec<SocketAddr>)> = room
            .authority
            .members
            .iter()
            .filter(|m| m.key != me)
            .map(|m| (m.key, m.candidates.clone()))
            .collect();
        let gone: Vec<PublicKey> = self
            .links
            .iter()
            .filter(|(k, l)| l.closing.is_none() && !members.iter().any(|(m, _)| m == *k))
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            self.drop_link(&k);
        }
        for (key, cands) in members {
            let j = self.jitter();
            let link = self.links.entry(key).or_insert_with(|| Link::new(now));
            link.candidates = cands;
            // A link not up yet is opened from both sides at once, so each side's
            // initiation opens its own NAT towards the other (the roster reaching
            // everyone at about the same time is the "punch now"). Re-keys for a new
            // epoch stay with the lower key, so the two never race.
            let setup = link.current.is_none();
            if link.retry.is_none() && (setup || (me < key && epoch_changed)) {
                let next = if setup { now } else { now + j };
                link.retry = Some(Retry { attempts: 0, next });
            }
        }
    }

    pub(super) fn on_leave(&mut self, now: Instant, from: PublicKey) {
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if room.phase != Phase::Open {
            return;
        }
        if room.host() == me {
            self.remove_member(now, from, false);
            return;
        }
        if from == room.host() {
            self.host_is_gone(now, from);
        } else {
            self.drop_link(&from);
        }
    }

    /// We just became host: draw a fresh room secret (removed members hold the old one,
    /// and the old roster told them our key and addresses) and hand the application the
    /// new invite to share.
    pub(super) fn become_host_invite(&mut self) {
        let secret = Secret32::generate(&mut self.rng);
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        room.secret = secret;
        let invite = self.own_invite();
        self.events
            .push_back(Event::HostChanged { host: me, invite });
    }

    /// The host left or timed out: drop its link, apply a successor roster that came
    /// early, or take over if we are the successor.
    pub(super) fn host_is_gone(&mut self, now: Instant, host: PublicKey) {
        let Some(room) = self.room.as_mut() else {
            return;
        };
        let early = room.authority.host_left(now);
        self.drop_link(&host);
        if let Some((from, state)) = early {
            self.apply_state(now, from, state);
        }
        self.maybe_take_over(now);
    }

    /// When the host is gone, the successor becomes host and opens a new epoch.
    pub(super) fn maybe_take_over(&mut self, now: Instant) {
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if !room.authority.take_over(me) {
            return;
        }
        room.stage_invited = None;
        self.new_epoch();
        self.broadcast_state();
        self.become_host_invite();
        self.events.push_back(Event::RoleChanged(Role::Host));
        self.emit_room_changed();
        self.schedule_rekeys(now);
    }

    pub(super) fn close_after_notice(&mut self, now: Instant, reason: LeftReason) {
        let linger = self.cfg.linger;
        if let Some(room) = self.room.as_mut() {
            room.phase = Phase::Closing {
                until: now + linger,
            };
        }
        for l in self.links.values_mut() {
            l.retry = None;
        }
        self.events.push_back(Event::Left(reason));
    }

    pub(super) fn close_now(&mut self, reason: LeftReason) {
        self.drop_room();
        self.events.push_back(Event::Left(reason));
    }

    pub(super) fn drop_room(&mut self) {
        self.room = None;
        let keys: Vec<PublicKey> = self.links.keys().copied().collect();
        for k in keys {
            self.drop_link(&k);
        }
    }
}
