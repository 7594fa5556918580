//! Transport datagrams in and out: decryption and the channel's frames on the way in;
//! the constant-rate slots, messages and routing on the way out (PROTOCOL §4, §5).

use super::*;

impl Endpoint {
    /// Feeds one datagram received on the main socket. Anything unauthenticated or
    /// malformed is dropped without a reply and without changing state.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.handle_datagram_on(now, MAIN_SOCKET, from, data);
    }

    /// Feeds one datagram received on `socket` (see [`Transmit::socket`]).
    pub fn handle_datagram_on(&mut self, now: Instant, socket: u16, from: SocketAddr, data: &[u8]) {
        let Ok(packet) = Packet::parse(data) else {
            return;
        };
        let hop = Hop { addr: from, socket };
        if !matches!(packet, Packet::Transport(_)) {
            self.paths_dirty = true;
        }
        match packet {
            Packet::Init(init) => self.on_init(now, Origin::Direct(hop), &init),
            Packet::Response(resp) => self.on_response(now, Origin::Direct(hop), &resp),
            Packet::Cookie(c) => self.on_cookie(now, &c),
            Packet::Transport(t) => match self.forwards.get(&t.receiver).copied() {
                Some(f) => self.forward(hop, f, data),
                None => self.on_transport(now, hop, &t),
            },
        }
        self.flush(now);
    }

    pub(super) fn on_transport(&mut self, now: Instant, from: Hop, t: &wire::Transport<'_>) {
        let challenge_retry = self.cfg.probe_interval;
        let (peer, origin) = if let Some(&peer) = self.indices.get(&t.receiver) {
            (peer, Origin::Direct(from))
        } else if let Some(&peer) = self.relay_in.get(&t.receiver) {
            let Some(via) = self.links.get(&peer).and_then(|l| l.relay).map(|r| r.via) else {
                return;
            };
            (peer, Origin::Relay(via))
        } else {
            return;
        };
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        // Sessions past reject_after are refused here too, not only for sending: the
        // timer that drops them may run after a datagram for them arrives, and the
        // previous and unconfirmed sessions have no timer of their own.
        let reject_after = self.cfg.reject_after;
        let opened = match origin {
            Origin::Direct(_) => link
                .session_mut(t.receiver)
                .filter(|(session, _)| !session.expired(now, reject_after))
                .and_then(|(session, slot)| {
                    session
                        .open(t.counter, t.ciphertext)
                        .ok()
                        .map(|p| (p, slot))
                }),
            Origin::Relay(_) => link.open_any(now, reject_after, t.counter, t.ciphertext),
        };
        let Some((plain, slot)) = opened else {
            return;
        };
        let Ok(frames) = frame::parse(&plain) else {
            return;
        };
        let mut restarted = false;
        // Whether this datagram can have changed the link's path (most audio cannot: it
        // arrives on a path already fresh, and the path sweep then has nothing to do).
        let mut moved = slot == Slot::Next || !link.reported_up;
        if slot == Slot::Next {
            if let Some(old) = link.previous.take() {
                self.indices.remove(&old.local_index);
            }
            link.promote_next();
            if let Some(inc) = link.next_incarnation.take() {
                if link.incarnation.is_some_and(|i| i != inc) {
                    // The peer restarted: its channel and chat numbering start over.
                    link.reset_channel();
                    restarted = true;
                }
                link.incarnation = Some(inc);
            }
        }
        // An authenticated datagram from an address we have not validated moves nothing
        // by itself (it may be a replay from a spoofed source): we challenge the address
        // and switch only when the answer comes back from it. The very first address of
        // a fresh session is taken as is (the handshake just ran over it).
        let mut challenge_to = None;
        if let Origin::Relay(_) = origin {
            // `direct_window`, spelled out: `link` holds `self` here.
            let window = self.cfg.keepalive * 3;
            if link.relay_recv.is_none_or(|t| now >= t + window) {
                link.relay_since = Some(now);
                moved = true;
            }
            link.relay_recv = Some(now);
        }
        if let Origin::Direct(hop) = origin {
            if link.direct_hop() == Some(hop) {
                moved |= !link.direct_fresh(now, self.cfg.keepalive * 3);
                link.direct_recv = Some(now);
            } else if link.addr.is_none() && link.relay.is_none() {
                link.set_direct(hop, now);
                moved = true;
            } else if !link
                .challenges
                .iter()
                .any(|c| c.hop == hop && now < c.sent + challenge_retry)
            {
                challenge_to = Some(hop);
            }
        }
        link.last_recv = now;
        if !link.reported_up {
            link.reported_up = true;
            self.events.push_back(Event::LinkUp(peer));
        }
        // One roster lookup per datagram: this runs for every audio frame.
        let role = self
            .room
            .as_ref()
            .filter(|r| r.phase == Phase::Open)
            .and_then(|r| r.member(&peer))
            .map(|m| m.role);
        let on_stage = role.is_some_and(Role::on_stage);
        let is_member = role.is_some();
        let report_interval = self.cfg.report_interval;
        let mut pongs = Vec::new();
        let mut report = None;
        let mut answer = None;
        let mut validated = None;
        for f in frames {
            match f {
                Frame::Audio { seq, data } => {
                    if !on_stage {
                        continue;
                    }
                    link.count_audio(now, seq, report_interval);
                    self.events.push_back(Event::Audio {
                        from: peer,
                        seq,
                        frame: data.to_vec(),
                    });
                }
                Frame::Ping(id) => pongs.push(id),
                Frame::Skipped(seq) => {
                    if on_stage {
                        link.skip_audio(now, seq, report_interval);
                    }
                }
                Frame::Report { loss_permille } => {
                    if is_member {
                        report = Some(loss_permille);
                    }
                }
                Frame::Pong { id, held_ms } => {
                    if let Some((pid, sent)) = link.ping
                        && pid == id
                    {
                        let held = Duration::from_millis(u64::from(held_ms));
                        link.rtt.update(now.saturating_duration_since(sent + held));
                        link.stats.rtt = link.rtt.srtt();
                        link.ping = None;
                    }
                }
                Frame::Channel(cf) => {
                    let _ = link.channel.handle_frame(now, &cf);
                }
                Frame::PathChallenge(token) => {
                    if let Origin::Direct(from) = origin {
                        answer = Some((from, token));
                    }
                }
                Frame::PathResponse(token) => {
                    if let Origin::Direct(from) = origin
                        && link
                            .challenges
                            .iter()
                            .any(|c| c.hop == from && c.token == token)
                    {
                        validated = Some(from);
                    }
                }
            }
        }
        let mut messages = Vec::new();
        while let Some(m) = link.channel.poll_message() {
            messages.push(m);
        }
        // At most one report per datagram is surfaced (the last one it carried).
        if let Some(loss_permille) = report {
            self.events.push_back(Event::ReceptionReport {
                from: peer,
                loss_permille,
            });
        }
        if restarted && let Some(r) = self.room.as_mut() {
            r.chat_seen.remove(&peer);
        }
        // One pong per slot however many pings came: no amplification.
        if let Some(id) = pongs.last()
            && let Some(link) = self.links.get_mut(&peer)
        {
            link.pong_owed = Some((*id, now));
        }
        if let Some((to, token)) = answer {
            // The proof of our current path rides in the next slot; an answer about
            // another address (a probe's) goes at once, to that address.
            let in_slot = self.route(now, &peer) == Some((to, None));
            match self.links.get_mut(&peer) {
                Some(link) if in_slot && link.direct_hop() == Some(to) => {
                    link.answer_wanted = Some(token);
                }
                _ => {
                    let mut plain = Vec::with_capacity(wire::AUDIO_PLAINTEXT_LEN);
                    frame::push_path(&mut plain, true, token);
                    self.send_plain_to(now, peer, &mut plain, Some((to, None)));
                }
            }
        }
        // Control messages (relay set-up among them) and a validated path can move paths.
        if moved || validated.is_some() || !messages.is_empty() {
            self.paths_dirty = true;
        }
        if let Some(addr) = validated {
            self.path_validated(now, peer, addr);
        } else if let Some(to) = challenge_to {
            self.send_challenge(now, peer, to);
        }
        for m in messages {
            if let Ok(msg) = Message::decode(&m) {
                self.on_message(now, peer, msg);
            }
        }
    }

    pub(super) fn drop_link(&mut self, peer: &PublicKey) {
        // Relays through this peer, and relaying for it, end with it.
        self.relay_halves.retain(|(a, b), _| a != peer && b != peer);
        self.forwards
            .retain(|_, f| f.from != *peer && f.to != *peer);
        for l in self.links.values_mut() {
            if l.relay.is_some_and(|r| r.via == *peer) {
                if let Some(r) = l.relay.take() {
                    self.relay_in.remove(&r.recv_index);
                }
                l.relay_tried.clear();
            }
        }
        if let Some(link) = self.links.remove(peer) {
            if let Some(r) = link.relay {
                self.relay_in.remove(&r.recv_index);
            }
            for i in link.indices() {
                self.indices.remove(&i);
            }
            if link.reported_up {
                self.events.push_back(Event::LinkDown(*peer));
            }
        }
    }

    pub(super) fn send_message(
        &mut self,
        peer: &PublicKey,
        msg: &Message,
    ) -> Result<(), CommandError> {
        let link = self
            .links
            .get_mut(peer)
            .ok_or(CommandError::UnknownMember)?;
        link.channel
            .send(&msg.encode())
            .map_err(|_| CommandError::Backlog)
    }

    /// Queues `msg` to every member but us (and `except`).
    pub(super) fn broadcast(
        &mut self,
        msg: &Message,
        except: Option<PublicKey>,
    ) -> Result<(), CommandError> {
        let me = self.me;
        let Some(room) = self.room.as_ref() else {
            return Err(CommandError::NotInRoom);
        };
        let peers = room.others(me, except);
        let bytes = msg.encode();
        let mut result = Ok(());
        for p in peers {
            if let Some(link) = self.links.get_mut(&p)
                && link.channel.send(&bytes).is_err()
            {
                result = Err(CommandError::Backlog);
            }
        }
        result
    }

    /// Pads, seals and sends a plaintext to `peer` on its current path.
    pub(super) fn send_plain(
        &mut self,
        now: Instant,
        peer: PublicKey,
        plain: &mut Vec<u8>,
    ) -> bool {
        let route = self.route(now, &peer);
        self.send_plain_to(now, peer, plain, route)
    }

    /// Pads, seals and sends a plaintext to `peer` by `route`: an address, and the relay
    /// index to write into the datagram when that address is a relay's.
    pub(super) fn send_plain_to(
        &mut self,
        now: Instant,
        peer: PublicKey,
        plain: &mut Vec<u8>,
        route: Option<(Hop, Option<u32>)>,
    ) -> bool {
        let reject_after = self.cfg.reject_after;
        if !frame::pad(plain) {
            return false;
        }
        let Some((dest, relay_index)) = route else {
            return false;
        };
        let Some(link) = self.links.get_mut(&peer) else {
            return false;
        };
        let Some(session) = link.sendable(now, reject_after) else {
            return false;
        };
        match session.seal(plain) {
            Ok(mut contents) => {
                if let Some(index) = relay_index {
                    wire::set_receiver(&mut contents, index);
                }
                link.last_send = now;
                self.transmits.push_back(Transmit {
                    destination: dest.addr,
                    contents,
                    socket: dest.socket,
                });
                true
            }
            Err(_) => false,
        }
    }

    /// The slot length of our links now (PROTOCOL §5.1).
    pub(super) fn slot_period(&self) -> Duration {
        let me = self.me;
        let full_rate = self
            .room
            .as_ref()
            .is_some_and(|r| r.uniform_now() || r.member(&me).is_some_and(|m| m.role.on_stage()));
        Schedule::period(self.cfg.slot, self.cfg.listener_slot, full_rate)
    }

    /// The timer's slot: one datagram on every link that can carry one: to each member
    /// the oldest queued audio frame when we are on stage and have one, otherwise (and
    /// to links outside the roster) whatever control the link owes, else padding.
    pub(super) fn run_slot(&mut self, now: Instant) {
        let reject_after = self.cfg.reject_after;
        let me = self.me;
        let on_stage = self.room.as_ref().is_some_and(|r| {
            r.phase == Phase::Open && r.member(&me).is_some_and(|m| m.role.on_stage())
        });
        if !on_stage {
            self.audio_queue.clear();
        }
        let audio = self.audio_queue.pop_front();
        let mut plain = Vec::new();
        if let Some((seq, frame)) = &audio {
            plain.reserve(wire::AUDIO_PLAINTEXT_LEN);
            frame::push_audio(&mut plain, *seq, frame);
            frame::pad(&mut plain);
            self.audio_slots += 1;
        }
        let peers: Vec<PublicKey> = self
            .links
            .iter()
            .filter(|(_, l)| l.is_up(now, reject_after))
            .map(|(k, _)| *k)
            .collect();
        for peer in peers {
            let Some((seq, _)) = audio.as_ref().filter(|_| self.is_other_member(&peer)) else {
                self.send_control_slot(now, peer, reject_after, None);
                continue;
            };
            // The frame fills this link's slot, unless control has waited long enough
            // for the slot to be given up to it (`STEAL_GAP`).
            let steal = self.links.get_mut(&peer).is_some_and(|l| {
                let steal = l.audio_run >= STEAL_GAP && l.control_waiting(now);
                if !steal {
                    l.audio_run = l.audio_run.saturating_add(1);
                }
                steal
            });
            if steal && self.send_control_slot(now, peer, reject_after, Some(*seq)) {
                continue;
            }
            self.send_plain(now, peer, &mut plain);
        }
    }

    /// Fills one slot to `peer` with the control it owes (a pong, a reception report, a
    /// path proof or its answer, a ping when due, channel acks and segments) and sends
    /// it, padded to the one size. Returns whether a datagram left.
    pub(super) fn send_control_slot(
        &mut self,
        now: Instant,
        peer: PublicKey,
        reject_after: Duration,
        skipped: Option<u32>,
    ) -> bool {
        let keepalive = self.cfg.keepalive;
        let route = self.route(now, &peer);
        let token = self.rng.next_u64();
        let Some(link) = self.links.get_mut(&peer) else {
            return false;
        };
        if !link.is_up(now, reject_after) {
            return false;
        }
        // Path proofs ride only on the direct path they are about.
        let direct = match route {
            Some((hop, None)) if link.direct_hop() == Some(hop) => Some(hop),
            _ => None,
        };
        if direct.is_none() {
            // Proofs of a direct path we do not use: moot (the path checks probe it).
            link.confirm_wanted = false;
            link.answer_wanted = None;
        }
        let mut plain = Vec::with_capacity(wire::AUDIO_PLAINTEXT_LEN);
        if let Some(seq) = skipped {
            frame::push_skipped(&mut plain, seq);
        }
        if let Some((id, since)) = link.pong_owed.take() {
            let held = now.saturating_duration_since(since).as_millis();
            frame::push_pong(&mut plain, id, u16::try_from(held).unwrap_or(u16::MAX));
        }
        if let Some(loss) = link.report_owed.take() {
            frame::push_report(&mut plain, loss);
        }
        if let Some(hop) = direct {
            if let Some(t) = link.answer_wanted.take() {
                frame::push_path(&mut plain, true, t);
            } else if link.confirm_wanted {
                link.confirm_wanted = false;
                link.remember_challenge(Challenge {
                    hop,
                    token,
                    sent: now,
                });
                frame::push_path(&mut plain, false, token);
            }
        }
        if now >= link.next_ping {
            let id = link.next_ping_id;
            link.next_ping_id = link.next_ping_id.wrapping_add(1);
            link.ping = Some((id, now));
            link.next_ping = now + keepalive;
            frame::push_ping(&mut plain, id);
        }
        let budget = wire::AUDIO_PLAINTEXT_LEN.saturating_sub(plain.len());
        link.channel.write_frames(now, &mut plain, budget);
        link.audio_run = 0;
        self.send_plain_to(now, peer, &mut plain, route)
    }

    /// After input or a command: nothing is sent here (everything waits for its slot);
    /// a member whose roster update did not fit its channel gets the whole roster once
    /// there is room, and paths are reported.
    pub(super) fn flush(&mut self, now: Instant) {
        let i_host = self
            .room
            .as_ref()
            .is_some_and(|r| r.host() == self.me && r.phase == Phase::Open);
        if i_host {
            let stale: Vec<PublicKey> = self
                .links
                .iter()
                .filter(|(_, l)| l.roster_resync && l.channel.queued_bytes() == 0)
                .map(|(k, _)| *k)
                .collect();
            if let Some(state) = self
                .room
                .as_ref()
                .map(|r| Message::State(r.authority.state()))
            {
                for peer in stale {
                    if self.send_message(&peer, &state).is_ok()
                        && let Some(l) = self.links.get_mut(&peer)
                    {
                        l.roster_resync = false;
                    }
                }
            }
        }
        if self.links.values().any(|l| l.current.is_some()) {
            self.schedule.start(now);
        } else {
            self.schedule.stop();
        }
        self.report_paths(now);
    }
}
