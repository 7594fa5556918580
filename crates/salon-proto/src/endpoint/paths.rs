//! Paths to each peer: direct addresses validated by challenges, relays through other
//! members, and the birthday technique for two symmetric NATs (PROTOCOL §7).

use super::*;

impl Endpoint {
    /// How datagrams reach `peer` now: straight to its validated address while that path
    /// is fresh, else through a ready relay, else the validated address or the first
    /// candidate (a handshake in flight, or a path we still hope for).
    pub(super) fn route(&self, now: Instant, peer: &PublicKey) -> Option<(Hop, Option<u32>)> {
        let link = self.links.get(peer)?;
        let window = self.direct_window();
        // Something arrived straight lately. Whether the peer hears us is its own
        // judgement: if it does not, it goes to the relay, and we follow it there.
        let healthy = link.direct_fresh(now, window);
        // A peer that sends through the relay does not hear us directly (or thinks so):
        // meet it there. The higher key follows the lower key's choice; the lower key
        // follows only until a round trip on the direct path proves it works again, so
        // the two cannot hold each other on the relay. Challenges and probes always go
        // straight, which is how both find their way back.
        let peer_relays = link.relay_recv.is_some_and(|t| now < t + window);
        let follow = peer_relays
            && (*peer < self.me
                || link
                    .relay_since
                    .is_some_and(|s| link.direct_confirmed.is_none_or(|c| c <= s)));
        if (!healthy || follow)
            && let Some(r) = link.relay
            && let Some(index) = r.send_index
            && let Some(via) = self.links.get(&r.via).and_then(Link::direct_hop)
        {
            return Some((via, Some(index)));
        }
        link.direct_hop()
            .or_else(|| link.candidates.first().copied().map(Hop::main))
            .map(|h| (h, None))
    }

    /// How long a direct path counts as working after its last authenticated datagram:
    /// three keepalives, so a lost one or two must not flip a link to the relay.
    pub(super) fn direct_window(&self) -> Duration {
        self.cfg.keepalive * 3
    }

    /// The path a link uses now, if it has a session.
    pub(super) fn path_of(&self, now: Instant, peer: &PublicKey) -> Option<Path> {
        let link = self.links.get(peer)?;
        link.current.as_ref()?;
        match self.route(now, peer)? {
            (_, Some(_)) => link.relay.map(|r| Path::Relayed { via: r.via }),
            (hop, None) => (link.direct_hop() == Some(hop)).then_some(Path::Direct(hop.addr)),
        }
    }

    /// As a relay: passes a transport datagram on, with the receiver's index written in.
    /// Only the member the index was given to may use it, from its validated address, so
    /// nobody can bounce traffic off us.
    pub(super) fn forward(&mut self, from: Hop, f: Forward, data: &[u8]) {
        let source = self.links.get(&f.from).and_then(Link::direct_hop);
        let Some(dest) = self.links.get(&f.to).and_then(Link::direct_hop) else {
            return;
        };
        if source != Some(from) {
            return;
        }
        let mut contents = data.to_vec();
        wire::set_receiver(&mut contents, f.rewrite);
        self.relayed.0 += 1;
        self.relayed.1 += contents.len() as u64;
        self.transmits.push_back(Transmit {
            destination: dest.addr,
            contents,
            socket: dest.socket,
        });
    }

    /// Whether `key` is in the room with us (and is not us).
    pub(super) fn is_other_member(&self, key: &PublicKey) -> bool {
        *key != self.me
            && self
                .room
                .as_ref()
                .is_some_and(|r| r.phase == Phase::Open && r.member(key).is_some())
    }

    /// As a relay: `from` wants to reach `peer` through us. When both sides asked, each
    /// gets an index for the other; until then the other side is asked.
    pub(super) fn on_relay_open(&mut self, from: PublicKey, peer: PublicKey, index: u32) {
        if from == peer || !self.is_other_member(&from) || !self.is_other_member(&peer) {
            return;
        }
        let peer_reachable = self.links.get(&peer).is_some_and(|l| l.current.is_some());
        if !peer_reachable {
            return;
        }
        self.relay_halves.insert((from, peer), index);
        let Some(&theirs) = self.relay_halves.get(&(peer, from)) else {
            let _ = self.send_message(&peer, &Message::RelayAsk { peer: from });
            return;
        };
        self.forwards
            .retain(|_, f| !(f.from == from && f.to == peer || f.from == peer && f.to == from));
        let to_peer = self.new_index();
        self.forwards.insert(
            to_peer,
            Forward {
                from,
                to: peer,
                rewrite: theirs,
            },
        );
        let to_from = self.new_index();
        self.forwards.insert(
            to_from,
            Forward {
                from: peer,
                to: from,
                rewrite: index,
            },
        );
        let _ = self.send_message(
            &from,
            &Message::RelayReady {
                peer,
                index: to_peer,
            },
        );
        let _ = self.send_message(
            &peer,
            &Message::RelayReady {
                peer: from,
                index: to_from,
            },
        );
    }

    /// `peer` could not reach us directly and asked `via` to relay: open our side there.
    pub(super) fn on_relay_ask(&mut self, now: Instant, via: PublicKey, peer: PublicKey) {
        if !self.is_other_member(&via) || !self.is_other_member(&peer) {
            return;
        }
        let Some(link) = self.links.get(&peer) else {
            return;
        };
        // Already relaying through `via` and ready: nothing to do. Otherwise (re)open.
        if link
            .relay
            .is_some_and(|r| r.via == via && r.send_index.is_some())
        {
            return;
        }
        self.open_relay(now, peer, via);
    }

    /// As a relay: passes a handshake datagram from one member to another.
    pub(super) fn on_relay_to(&mut self, from: PublicKey, peer: PublicKey, datagram: Vec<u8>) {
        if from == peer || !self.is_other_member(&from) || !self.is_other_member(&peer) {
            return;
        }
        if !matches!(
            Packet::parse(&datagram),
            Ok(Packet::Init(_) | Packet::Response(_))
        ) {
            return;
        }
        let _ = self.send_message(
            &peer,
            &Message::RelayFrom {
                peer: from,
                datagram,
            },
        );
    }

    /// Asks `via` to relay between us and `peer`.
    pub(super) fn open_relay(&mut self, now: Instant, peer: PublicKey, via: PublicKey) {
        let index = self.new_index();
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if let Some(old) = link.relay.take() {
            self.relay_in.remove(&old.recv_index);
        }
        link.relay = Some(RelayPath {
            via,
            recv_index: index,
            send_index: None,
            opened: now,
        });
        // A link still without a session sends its next initiation through the relay at
        // once instead of at the next retry (up to seconds away).
        if link.current.is_none() && link.closing.is_none() {
            link.retry = Some(Retry {
                attempts: link.retry.map_or(0, |r| r.attempts),
                next: now,
            });
        }
        self.relay_in.insert(index, peer);
        let _ = self.send_message(&via, &Message::RelayOpen { peer, index });
    }

    /// The member to ask to relay to `peer`: the host first, then others in join order,
    /// among those we have a working direct link to, skipping ones that did not answer.
    pub(super) fn pick_relay(&self, now: Instant, peer: &PublicKey) -> Option<PublicKey> {
        let room = self.room.as_ref()?;
        let tried = &self.links.get(peer)?.relay_tried;
        let mut members: Vec<&Member> = room
            .authority
            .members
            .iter()
            .filter(|m| m.key != self.me && m.key != *peer)
            .collect();
        members.sort_by_key(|m| (m.role != Role::Host, m.joined));
        let usable = |k: &PublicKey| {
            self.links
                .get(k)
                .is_some_and(|l| l.current.is_some() && l.direct_fresh(now, self.direct_window()))
        };
        members
            .iter()
            .map(|m| m.key)
            .find(|k| usable(k) && !tried.contains(k))
            .or_else(|| members.iter().map(|m| m.key).find(|k| usable(k)))
    }

    /// Sends a path challenge straight to `to`.
    pub(super) fn send_challenge(&mut self, now: Instant, peer: PublicKey, to: Hop) {
        // A challenge to where our slots go anyway rides in the next slot: an extra
        // datagram on the flow would show on the wire.
        if self.route(now, &peer) == Some((to, None))
            && let Some(link) = self.links.get_mut(&peer)
            && link.direct_hop() == Some(to)
        {
            link.confirm_wanted = true;
            return;
        }
        let token = self.rng.next_u64();
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        link.remember_challenge(Challenge {
            hop: to,
            token,
            sent: now,
        });
        let mut plain = Vec::with_capacity(wire::AUDIO_PLAINTEXT_LEN);
        frame::push_path(&mut plain, false, token);
        self.send_plain_to(now, peer, &mut plain, Some((to, None)));
    }

    /// The peer answered a challenge from `addr`: that is its direct path from now on.
    /// The host also puts it first among the member's candidates (it is where others
    /// should punch) and tells the member.
    pub(super) fn path_validated(&mut self, now: Instant, peer: PublicKey, hop: Hop) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        link.set_direct(hop, now);
        link.challenges.clear();
        let addr = hop.addr;
        let me = self.me;
        let Some(room) = self.room.as_mut() else {
            return;
        };
        if room.host() != me || room.phase != Phase::Open || !room.authority.moved(&peer, addr) {
            return;
        }
        let _ = self.send_message(&peer, &Message::Observed(addr));
        self.broadcast_update(peer, false);
        self.emit_room_changed();
    }

    /// Looks after one link's path: opens or replaces a relay when the direct path has
    /// failed, probes the peer's addresses straight so a direct path can (re)appear, and
    /// reports a peer nobody can reach.
    pub(super) fn maintain_path(&mut self, now: Instant, peer: PublicKey) {
        let window = self.direct_window();
        let cfg = self.cfg.clone();
        let member = self.is_other_member(&peer);
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if link.closing.is_some() || !member {
            link.path_check = Some(now + cfg.probe_interval);
            return;
        }
        let has_session = link.current.is_some();
        if has_session && link.direct_fresh(now, window) {
            // Healthy. Prove the round trip now and then: receiving alone does not show
            // that the peer hears us (a one-way break leaves us sending into nothing).
            link.path_check = Some(now + cfg.probe_interval);
            link.birthday = None;
            // Due every few seconds; every second while the peer sends through the relay
            // (it does not hear us directly, it seems: the answer tells when it does).
            let peer_relays = link.relay_recv.is_some_and(|t| now < t + window);
            let due = link
                .direct_confirmed
                .is_none_or(|t| now >= t + CONFIRM_EVERY)
                || peer_relays;
            let recent = link
                .challenges
                .back()
                .is_some_and(|c| now < c.sent + cfg.probe_interval);
            if due && !recent {
                // The next slot carries it (a stage member's link gives up an audio
                // frame for it).
                if link.direct_hop().is_some() {
                    link.confirm_wanted = true;
                }
            }
            return;
        }
        link.path_check = Some(now + cfg.probe_interval);
        let failed = if has_session {
            true
        } else {
            link.down_since.is_some_and(|d| now >= d + cfg.relay_after)
        };
        let relay = link.relay;
        let unreachable = !has_session
            && !link.unreachable_reported
            && link
                .down_since
                .is_some_and(|d| now >= d + cfg.unreachable_after);
        if failed {
            match relay {
                None => {
                    if let Some(via) = self.pick_relay(now, &peer) {
                        self.open_relay(now, peer, via);
                    }
                }
                Some(r) if r.send_index.is_none() && now >= r.opened + cfg.relay_ready_timeout => {
                    if let Some(l) = self.links.get_mut(&peer) {
                        l.relay_tried.push(r.via);
                        l.relay_tried.dedup();
                    }
                    if let Some(via) = self.pick_relay(now, &peer) {
                        self.open_relay(now, peer, via);
                    }
                }
                Some(_) => {}
            }
        }
        if unreachable {
            let Some(link) = self.links.get_mut(&peer) else {
                return;
            };
            link.unreachable_reported = true;
            let tried = link.candidates.clone();
            let relayed = link.relay.is_some();
            self.events.push_back(Event::Unreachable {
                peer,
                tried,
                relay_asked: relayed,
            });
        }
        if has_session {
            self.maybe_start_birthday(now, peer);
            // Probes straight to every address the peer may have: they keep our side of
            // punched holes open, and the peer answers one that arrives with a challenge.
            // Every second at first; once the direct path has been gone a while (two
            // strict NATs), every few seconds: a path that appears later still shows up.
            let Some(link) = self.links.get_mut(&peer) else {
                return;
            };
            let since = link
                .direct_recv
                .or(link.current.as_ref().map(|s| s.created));
            let long_gone = since.is_some_and(|t| now >= t + PROBE_BACKOFF_AFTER);
            if long_gone
                && link
                    .last_probe
                    .is_some_and(|t| now < t + PROBE_SLOW_INTERVAL)
            {
                return;
            }
            link.last_probe = Some(now);
            // Each probe is a path challenge: the answer proves the round trip, the
            // arrival shows the peer a path (it challenges back).
            for d in link.direct_hops() {
                self.send_challenge(now, peer, d);
            }
        }
    }

    /// Starts a birthday attempt on a relayed link when exactly one side sits behind a
    /// port-translating NAT (both would need ~2^16 tries; neither means simultaneous open
    /// should have worked and a firewall is in the way).
    pub(super) fn maybe_start_birthday(&mut self, now: Instant, peer: PublicKey) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let (Some(mine), Some(theirs)) = (room.member(&self.me), room.member(&peer)) else {
            return;
        };
        let role = match (mine.port_translated(), theirs.port_translated()) {
            (true, false) => BirthdayRole::Spray,
            (false, true) => BirthdayRole::Probe,
            _ => return,
        };
        let Some(&target) = theirs.candidates.first() else {
            return;
        };
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let ready = link.relay.is_some_and(|r| r.send_index.is_some());
        let attempts = match link.birthday {
            None => 0,
            Some(b) if b.attempts < BIRTHDAY_ATTEMPTS && now >= b.started + BIRTHDAY_RETRY => {
                b.attempts
            }
            Some(_) => return,
        };
        if !ready {
            return;
        }
        // The prober waits a moment so the sprayer's mappings exist when probes arrive.
        let first = match role {
            BirthdayRole::Spray => now,
            BirthdayRole::Probe => now + BIRTHDAY_TICK * 10,
        };
        link.birthday = Some(Birthday {
            role,
            target,
            started: now,
            next: first,
            sent: 0,
            attempts: attempts + 1,
        });
    }

    /// One step of a birthday attempt: a spray from every extra socket, or a burst of
    /// probes at random ports. Each datagram is an ordinary audio-sized ping in the link
    /// session; whichever one gets through draws a path challenge and the link goes direct.
    pub(super) fn step_birthday(&mut self, now: Instant, peer: PublicKey) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let Some(mut b) = link.birthday else {
            return;
        };
        if now >= b.started + BIRTHDAY_WINDOW || link.current.is_none() {
            // Done: the next attempt (if any) starts from `maintain_path`.
            b.next = b.started + BIRTHDAY_RETRY;
            link.birthday = Some(b);
            return;
        }
        let hops: Vec<Hop> = match b.role {
            BirthdayRole::Spray => {
                b.next = now + BIRTHDAY_SPRAY_EVERY;
                (1..=BIRTHDAY_SOCKETS)
                    .map(|socket| Hop {
                        addr: b.target,
                        socket,
                    })
                    .collect()
            }
            BirthdayRole::Probe => {
                let n = BIRTHDAY_BURST.min(BIRTHDAY_PROBES.saturating_sub(b.sent));
                b.sent += n;
                b.next = if b.sent >= BIRTHDAY_PROBES {
                    b.started + BIRTHDAY_WINDOW
                } else {
                    now + BIRTHDAY_TICK
                };
                let span = u32::from(u16::MAX - BIRTHDAY_LOW_PORT) + 1;
                (0..n)
                    .map(|_| {
                        let port = BIRTHDAY_LOW_PORT + (self.rng.next_u32() % span) as u16;
                        Hop::main(SocketAddr::new(b.target.ip(), port))
                    })
                    .collect()
            }
        };
        if let Some(link) = self.links.get_mut(&peer) {
            link.birthday = Some(b);
        }
        for hop in hops {
            let mut plain = Vec::with_capacity(wire::AUDIO_PLAINTEXT_LEN);
            let Some(link) = self.links.get_mut(&peer) else {
                return;
            };
            let id = link.next_ping_id;
            link.next_ping_id = link.next_ping_id.wrapping_add(1);
            frame::push_ping(&mut plain, id);
            self.send_plain_to(now, peer, &mut plain, Some((hop, None)));
        }
    }

    /// Tells the application about every link whose path changed (once in the room: the
    /// host link's path is told after `Joined`, when the application knows the names).
    /// Only when something that moves paths happened since the last sweep: a flush
    /// follows every audio datagram, and those almost never do.
    pub(super) fn report_paths(&mut self, now: Instant) {
        if !std::mem::take(&mut self.paths_dirty)
            || self.room.as_ref().is_none_or(|r| r.phase != Phase::Open)
        {
            return;
        }
        let peers: Vec<PublicKey> = self.links.keys().copied().collect();
        for peer in peers {
            let path = self.path_of(now, &peer);
            let Some(link) = self.links.get_mut(&peer) else {
                continue;
            };
            if link.reported_path != path {
                link.reported_path = path;
                if let Some(path) = path {
                    self.events.push_back(Event::LinkPath { peer, path });
                }
            }
        }
    }
}
