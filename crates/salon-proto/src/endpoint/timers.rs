//! Every timer of the endpoint, in one table: [`Endpoint::poll_timeout`] asks it for the
//! earliest deadline and [`Endpoint::handle_timeout`] for those that are due, so the
//! condition under which a timer runs is written once.

use super::*;

/// The room's own timers.
struct RoomTimers {
    /// Joining gives up, or a closing room's goodbyes are done.
    phase_ends: Option<Instant>,
    /// Nobody took over from a departed host.
    host_gone: Option<Instant>,
    /// The first stage invitation (ours to answer, or one we gave) to lapse.
    stage_invitation: Option<Instant>,
    /// The next slot of the constant-rate schedule.
    slot: Option<Instant>,
}

impl RoomTimers {
    fn earliest(&self) -> Option<Instant> {
        [
            self.phase_ends,
            self.host_gone,
            self.stage_invitation,
            self.slot,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// One link's timers.
struct LinkTimers {
    /// A closed link's lingering (for goodbyes) ends.
    closing: Option<Instant>,
    /// Host: a joiner that handshook but holds no seat has been quiet too long, so
    /// invite holders cannot pile up state.
    forget: Option<Instant>,
    /// The oldest session reaches the reject-after age.
    expiry: Option<Instant>,
    /// Time to rekey, where we initiate (the lower key): by the session's age, or at
    /// once once it has sent too many messages.
    rekey: Option<Instant>,
    /// The next handshake attempt.
    retry: Option<Instant>,
    /// The next reception report, while a session can carry it.
    report: Option<Instant>,
    /// The peer has been silent too long.
    silence: Option<Instant>,
    /// The path to the peer is due a check.
    path_check: Option<Instant>,
    /// The birthday technique's next step.
    birthday: Option<Instant>,
}

impl LinkTimers {
    fn earliest(&self) -> Option<Instant> {
        [
            self.closing,
            self.forget,
            self.expiry,
            self.rekey,
            self.retry,
            self.report,
            self.silence,
            self.path_check,
            self.birthday,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Whether timer `t` is set and due at `now`.
fn due(t: Option<Instant>, now: Instant) -> bool {
    t.is_some_and(|t| now >= t)
}

impl Endpoint {
    /// The earliest time [`Endpoint::handle_timeout`] should be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let room = self.room.as_ref()?;
        let links = self
            .links
            .iter()
            .filter_map(|(peer, link)| self.link_timers(room, peer, link).earliest());
        self.room_timers(room)
            .earliest()
            .into_iter()
            .chain(links)
            .min()
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Paths also change with time alone (a direct path goes stale).
        self.paths_dirty = true;
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let timers = self.room_timers(room);
        if due(timers.phase_ends, now) {
            let failed = match &room.phase {
                Phase::Joining { tried, .. } => Some(tried.clone()),
                _ => None,
            };
            self.drop_room();
            if let Some(tried) = failed {
                self.events
                    .push_back(Event::JoinFailed(JoinFailure::Unreachable { tried }));
            }
            return;
        }
        if due(timers.host_gone, now) {
            // Nobody took over (we may have been dropped from the room unawares).
            self.close_now(LeftReason::TimedOut);
            return;
        }
        if due(timers.stage_invitation, now) {
            self.lapse_stage_invitations(now);
        }
        let peers: Vec<PublicKey> = self.links.keys().copied().collect();
        for peer in peers {
            self.run_link_timers(now, peer);
        }
        if due(timers.slot, now) && self.schedule.take_due(now, self.slot_period()) {
            self.run_slot(now);
        }
        self.flush(now);
    }

    fn room_timers(&self, room: &Room) -> RoomTimers {
        RoomTimers {
            phase_ends: match &room.phase {
                Phase::Joining { deadline, .. } => Some(*deadline),
                Phase::Closing { until } => Some(*until),
                Phase::Open => None,
            },
            host_gone: room
                .authority
                .host_gone()
                .map(|since| since + self.cfg.peer_timeout * 3),
            stage_invitation: room
                .stage_invited
                .map(|(_, arrived)| arrived + STAGE_ANSWER_BY)
                .into_iter()
                .chain(room.authority.next_lapse())
                .min(),
            slot: self.schedule.due(),
        }
    }

    fn link_timers(&self, room: &Room, peer: &PublicKey, link: &Link) -> LinkTimers {
        let open = room.phase == Phase::Open;
        let settled = link.retry.is_none() && link.closing.is_none();
        let rekey = match &link.current {
            Some(s) if settled && self.me < *peer => Some(if s.sent() >= REKEY_AFTER_MESSAGES {
                s.created
            } else {
                s.created + self.cfg.rekey_after
            }),
            _ => None,
        };
        LinkTimers {
            closing: link.closing,
            forget: (open
                && room.host() == self.me
                && room.member(peer).is_none()
                && link.closing.is_none())
            .then(|| link.last_recv + self.cfg.peer_timeout),
            expiry: [&link.current, &link.previous, &link.next]
                .into_iter()
                .flatten()
                .map(|s| s.created + self.cfg.reject_after)
                .min(),
            rekey,
            retry: link.retry.map(|r| r.next),
            report: link.report_next.filter(|_| open && link.current.is_some()),
            silence: link
                .reported_up
                .then(|| link.last_recv + self.cfg.peer_timeout),
            path_check: link.path_check.filter(|_| open),
            birthday: link
                .birthday
                .filter(|b| b.next < b.started + BIRTHDAY_RETRY)
                .map(|b| b.next),
        }
    }

    /// Runs `peer`'s link timers that are due at `now`.
    fn run_link_timers(&mut self, now: Instant, peer: PublicKey) {
        let (Some(room), Some(link)) = (self.room.as_ref(), self.links.get(&peer)) else {
            return;
        };
        let t = self.link_timers(room, &peer, link);
        if due(t.closing, now) || due(t.forget, now) {
            self.drop_link(&peer);
            return;
        }
        let cfg = &self.cfg;
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let mut expired = Vec::new();
        if due(t.expiry, now) {
            for slot in [&mut link.current, &mut link.previous, &mut link.next] {
                if slot
                    .as_ref()
                    .is_some_and(|s| now.saturating_duration_since(s.created) >= cfg.reject_after)
                    && let Some(s) = slot.take()
                {
                    expired.push(s.local_index);
                }
            }
        }
        if link.current.is_none() && link.down_since.is_none() {
            link.down_since = Some(now);
        }
        // A stale session is rekeyed; a lost one is set up again from both sides (hole
        // punching needs both).
        if link.retry.is_none() && link.closing.is_none() {
            let stale = link.current.is_some() && due(t.rekey, now);
            if stale || (link.current.is_none() && link.reported_up) {
                link.retry = Some(Retry {
                    attempts: 0,
                    next: now,
                });
            }
        }
        let retry_due = due(link.retry.map(|r| r.next), now);
        let report = if due(t.report, now) && link.current.is_some() {
            link.take_report(now, cfg.report_interval)
        } else {
            None
        };
        for i in expired {
            self.indices.remove(&i);
        }
        if due(t.silence, now) {
            self.on_peer_timeout(now, peer);
            return;
        }
        if retry_due {
            self.start_handshake(now, peer);
        }
        if let Some(loss) = report
            && let Some(l) = self.links.get_mut(&peer)
        {
            l.report_owed = Some(loss);
        }
        if due(t.path_check, now) {
            self.maintain_path(now, peer);
        }
        if due(t.birthday, now) {
            self.step_birthday(now, peer);
        }
    }

    pub(super) fn on_peer_timeout(&mut self, now: Instant, peer: PublicKey) {
        let me = self.me;
        if let Some(link) = self.links.get_mut(&peer) {
            link.reported_up = false;
            link.down_since = Some(now);
            link.addr = None;
            link.direct_recv = None;
            link.path_check = Some(now);
            for s in [link.current.take(), link.previous.take(), link.next.take()]
                .into_iter()
                .flatten()
            {
                self.indices.remove(&s.local_index);
            }
        }
        self.events.push_back(Event::LinkDown(peer));
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if room.phase != Phase::Open {
            return;
        }
        if room.host() == me {
            self.remove_member(now, peer, false);
        } else if peer == room.host() {
            self.host_is_gone(now, peer);
        } else if let Some(l) = self.links.get_mut(&peer) {
            l.retry = Some(Retry {
                attempts: 0,
                next: now,
            });
        }
    }
}
