//! Every timer of the endpoint.

use super::*;

impl Endpoint {
    /// The earliest time [`Endpoint::handle_timeout`] should be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let room = self.room.as_ref()?;
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |y| y.min(x)));
        match &room.phase {
            Phase::Joining { deadline, .. } => at(*deadline),
            Phase::Closing { until } => at(*until),
            Phase::Open => {}
        }
        if let Some(since) = room.host_gone {
            at(since + self.cfg.peer_timeout * 3);
        }
        if let Some((_, arrived)) = room.stage_invited {
            at(arrived + STAGE_ANSWER_BY);
        }
        for i in room.stage_invites.values() {
            at(i.expires);
        }
        if let Some(slot) = self.schedule.due() {
            at(slot);
        }
        for (peer, l) in &self.links {
            if let Some(r) = l.retry {
                at(r.next);
            }
            if let Some(c) = l.closing {
                at(c);
            }
            if let Some(s) = &l.current {
                at(s.created + self.cfg.reject_after);
                if self.me < *peer && l.retry.is_none() && l.closing.is_none() {
                    at(s.created + self.cfg.rekey_after);
                }
                if room.phase == Phase::Open
                    && let Some(r) = l.report_next
                {
                    at(r);
                }
            }
            if l.reported_up {
                at(l.last_recv + self.cfg.peer_timeout);
            }
            if room.phase == Phase::Open
                && let Some(c) = l.path_check
            {
                at(c);
            }
            if let Some(b) = l.birthday
                && b.next < b.started + BIRTHDAY_RETRY
            {
                at(b.next);
            }
        }
        t
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Paths also change with time alone (a direct path goes stale).
        self.paths_dirty = true;
        let Some(room) = self.room.as_ref() else {
            return;
        };
        match &room.phase {
            Phase::Joining { deadline, tried } if now >= *deadline => {
                let tried = tried.clone();
                self.drop_room();
                self.events
                    .push_back(Event::JoinFailed(JoinFailure::Unreachable { tried }));
                return;
            }
            Phase::Closing { until } if now >= *until => {
                self.drop_room();
                return;
            }
            _ => {}
        }
        if room
            .host_gone
            .is_some_and(|since| now >= since + self.cfg.peer_timeout * 3)
        {
            // Nobody took over (we may have been dropped from the room unawares).
            self.close_now(LeftReason::TimedOut);
            return;
        }
        self.lapse_stage_invitations(now);
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let open = room.phase == Phase::Open;
        let i_host = room.host == self.me && open;
        let members: HashSet<PublicKey> = room.members.iter().map(|m| m.key).collect();
        let me = self.me;
        let cfg = self.cfg.clone();
        let peers: Vec<PublicKey> = self.links.keys().copied().collect();
        for peer in peers {
            let Some(link) = self.links.get_mut(&peer) else {
                continue;
            };
            if link.closing.is_some_and(|c| now >= c) {
                self.drop_link(&peer);
                continue;
            }
            // A joiner that handshook but never said Hello (or a stale one) holds no
            // seat: the host forgets it once it goes quiet, so invite holders cannot pile
            // up state.
            if i_host
                && !members.contains(&peer)
                && link.closing.is_none()
                && now.saturating_duration_since(link.last_recv) >= cfg.peer_timeout
            {
                self.drop_link(&peer);
                continue;
            }
            // Expire old sessions.
            let mut expired = Vec::new();
            for slot in [&mut link.current, &mut link.previous, &mut link.next] {
                if slot
                    .as_ref()
                    .is_some_and(|s| now.saturating_duration_since(s.created) >= cfg.reject_after)
                    && let Some(s) = slot.take()
                {
                    expired.push(s.local_index);
                }
            }
            if link.current.is_none() && link.down_since.is_none() {
                link.down_since = Some(now);
            }
            // Time to rekey (we initiate on links where our key is lower); a lost session
            // is set up again from both sides (hole punching needs both).
            if link.retry.is_none() && link.closing.is_none() {
                let stale = link.current.as_ref().is_some_and(|s| {
                    now.saturating_duration_since(s.created) >= cfg.rekey_after
                        || s.sent() >= REKEY_AFTER_MESSAGES
                });
                if (me < peer && stale) || (link.current.is_none() && link.reported_up) {
                    link.retry = Some(Retry {
                        attempts: 0,
                        next: now,
                    });
                }
            }
            let timed_out = link.reported_up
                && now.saturating_duration_since(link.last_recv) >= cfg.peer_timeout;
            let retry_due = link.retry.is_some_and(|r| now >= r.next);
            let path_due = open && link.path_check.is_some_and(|c| now >= c);
            let birthday_due = link
                .birthday
                .is_some_and(|b| now >= b.next && b.next < b.started + BIRTHDAY_RETRY);
            // The report clock runs only while a session can carry the report (the same
            // condition under which `poll_timeout` asks for it).
            let report = if open && link.current.is_some() {
                link.take_report(now, cfg.report_interval)
            } else {
                None
            };
            for i in expired {
                self.indices.remove(&i);
            }
            if timed_out {
                self.on_peer_timeout(now, peer);
                continue;
            }
            if retry_due {
                self.start_handshake(now, peer);
            }
            if let Some(loss) = report
                && let Some(l) = self.links.get_mut(&peer)
            {
                l.report_owed = Some(loss);
            }
            if path_due {
                self.maintain_path(now, peer);
            }
            if birthday_due {
                self.step_birthday(now, peer);
            }
        }
        let period = self.slot_period();
        if self.schedule.take_due(now, period) {
            self.run_slot(now);
        }
        self.flush(now);
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
        if room.host == me {
            self.remove_member(now, peer, false);
        } else if peer == room.host {
            self.host_is_gone(now, peer);
        } else if let Some(l) = self.links.get_mut(&peer) {
            l.retry = Some(Retry {
                attempts: 0,
                next: now,
            });
        }
    }
}
