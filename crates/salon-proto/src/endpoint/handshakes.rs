//! Noise handshakes: joining a room (IKpsk1 with the invite's secret) and the links
//! between members (KKpsk2 under the epoch secret), with cookies under load and
//! timestamps against replay (PROTOCOL §3).

use super::*;

impl Endpoint {
    /// Whether `peer`'s initiation timestamp is newer than any we accepted; records it.
    pub(super) fn fresh_timestamp(&mut self, peer: PublicKey, ts: u64) -> bool {
        if self.seen_timestamps.len() >= MAX_SEEN_TIMESTAMPS {
            // Bounded memory: keep only keys that are (or were banned from) the room.
            if let Some(room) = self.room.as_ref() {
                self.seen_timestamps
                    .retain(|k, _| room.member(k).is_some() || room.authority.banned.contains(k));
            }
        }
        match self.seen_timestamps.get(&peer) {
            Some(&last) if ts <= last => false,
            _ => {
                self.seen_timestamps.insert(peer, ts);
                true
            }
        }
    }

    pub(super) fn start_handshake(&mut self, now: Instant, peer: PublicKey) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        let joining = matches!(room.phase, Phase::Joining { .. });
        let kind = if joining && peer == room.host() {
            Kind::Join
        } else {
            Kind::Link
        };
        let (psk, prologue, mac1_key) = match kind {
            Kind::Join => (
                room.secret.clone(),
                join_prologue(&room.id.0),
                join_mac1_key(&peer, room.secret.as_bytes()),
            ),
            Kind::Link => (
                room.authority.epoch_secret.clone(),
                link_prologue(&room.id.0, room.authority.epoch),
                link_mac1_key(&peer, room.authority.epoch_secret.as_bytes()),
            ),
        };
        let epoch = room.authority.epoch;
        let payload = InitPayload {
            timestamp: self.timestamp(now),
            incarnation: self.incarnation,
        };
        let seed = self.random32();
        let keys = Keys {
            local: &self.identity,
            psk: psk.as_bytes(),
            prologue: &prologue,
        };
        let Ok((state, noise)) = handshake::initiate(kind, &keys, &peer, &payload, seed) else {
            return;
        };
        let hint: [u8; MAC_LEN] = match kind {
            Kind::Join => {
                let mut h = [0u8; MAC_LEN];
                self.rng.fill_bytes(&mut h);
                h
            }
            Kind::Link => link_hint(psk.as_bytes(), &self.me, &noise[..32]),
        };
        let index = self.new_index();
        let Some(mut packet) = wire::encode_init(index, &hint, &noise) else {
            return;
        };
        let mac1 = mac(&mac1_key, &packet[..INIT_MAC1_OFFSET]);
        packet[INIT_MAC1_OFFSET..INIT_MAC2_OFFSET].copy_from_slice(&mac1);
        let retry_base = self.cfg.handshake_retry;
        let retry_max = self.cfg.handshake_retry_max;
        let jitter = self.jitter();
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if let Some((cookie, at)) = link.cookie
            && now.saturating_duration_since(at) < COOKIE_LIFETIME
        {
            let mac2 = mac2(&cookie, &packet[..INIT_MAC2_OFFSET]);
            packet[INIT_MAC2_OFFSET..].copy_from_slice(&mac2);
        }
        if let Some(old) = link.pending.take() {
            self.indices.remove(&old.local_index);
        }
        link.pending = Some(Pending {
            kind,
            state,
            local_index: index,
            mac1_key,
            mac1,
            epoch,
            rebuild: Rebuild {
                seed: Secret32::from_bytes(seed),
                payload,
                psk,
                prologue,
            },
            packet: packet.clone(),
        });
        self.indices.insert(index, peer);
        let attempts = link.retry.map_or(0, |r| r.attempts) + 1;
        let backoff = retry_base
            .saturating_mul(1u32 << (attempts - 1).min(8))
            .min(retry_max);
        link.retry = Some(Retry {
            attempts,
            next: now + backoff + jitter,
        });
        let dests = link.direct_hops();
        link.last_send = now;
        let via = link.relay.map(|r| r.via).filter(|_| kind == Kind::Link);
        for d in &dests {
            self.transmits.push_back(Transmit {
                destination: d.addr,
                contents: packet.clone(),
                socket: d.socket,
            });
        }
        if let Some(via) = via {
            let _ = self.send_message(
                &via,
                &Message::RelayTo {
                    peer,
                    datagram: packet,
                },
            );
        }
        if let Some(Room {
            phase: Phase::Joining { tried, .. },
            ..
        }) = self.room.as_mut()
        {
            for d in dests {
                if !tried.contains(&d.addr) {
                    tried.push(d.addr);
                }
            }
        }
    }

    pub(super) fn on_init(&mut self, now: Instant, origin: Origin, init: &wire::Init<'_>) {
        // A small-order ephemeral would make `es` (and `ee`) all zeros: drop it before it
        // touches the mac1 memory, the load count or a DH.
        if init.noise.get(..32).is_none_or(is_low_order) {
            return;
        }
        let Some(room) = self.room.as_ref() else {
            return;
        };
        if room.phase != Phase::Open {
            return;
        }
        let mut keys: Vec<(Kind, [u8; 32])> = Vec::with_capacity(2);
        // Joins come straight from the invite holder, never through a member.
        if room.host() == self.me && matches!(origin, Origin::Direct(_)) {
            keys.push((Kind::Join, join_mac1_key(&self.me, room.secret.as_bytes())));
        }
        keys.push((
            Kind::Link,
            link_mac1_key(&self.me, room.authority.epoch_secret.as_bytes()),
        ));
        let covered = &init.raw[..INIT_MAC1_OFFSET];
        let Some(&(kind, mac1_key)) = keys
            .iter()
            .find(|(_, k)| ct_eq(&mac(k, covered), init.mac1))
        else {
            return;
        };
        if self.recent_mac1.1.contains(init.mac1) {
            return;
        }
        if self.recent_mac1.0.len() >= RECENT_MAC1
            && let Some(old) = self.recent_mac1.0.pop_front()
        {
            self.recent_mac1.1.remove(&old);
        }
        self.recent_mac1.0.push_back(*init.mac1);
        self.recent_mac1.1.insert(*init.mac1);
        // Only now, with a valid mac1 (the sender holds the invite or the epoch secret),
        // does the datagram count towards load and possibly earn a cookie reply. Through a
        // relay it came over a member's authenticated channel: no cookie round.
        if matches!(origin, Origin::Direct(_)) {
            self.load.record(now);
        }
        if let Origin::Direct(Hop { addr: from, socket }) = origin
            && self.load.under_load(now)
        {
            let rng = &mut self.rng;
            if !self
                .cookies
                .check_mac2(now, rng, from, &init.raw[..INIT_MAC2_OFFSET], init.mac2)
            {
                let cookie = self.cookies.cookie(now, &mut self.rng, from);
                let (nonce, sealed) = self.cookies.seal_reply(
                    &cookie_key(&mac1_key),
                    &cookie,
                    init.mac1,
                    &mut self.rng,
                );
                self.transmits.push_back(Transmit {
                    destination: from,
                    contents: wire::encode_cookie(init.sender, &nonce, &sealed),
                    socket,
                });
                return;
            }
            if !self.rate.allow(now, from.ip()) {
                return;
            }
        }
        let (room_id, room_secret, epoch, epoch_secret) = (
            room.id,
            room.secret.clone(),
            room.authority.epoch,
            room.authority.epoch_secret.clone(),
        );
        let seed = self.random32();
        let (state, remote, payload, status) = match kind {
            Kind::Join => {
                let prologue = join_prologue(&room_id.0);
                let keys = Keys {
                    local: &self.identity,
                    psk: room_secret.as_bytes(),
                    prologue: &prologue,
                };
                let Ok((state, remote, payload)) =
                    handshake::accept(kind, &keys, None, init.noise, seed)
                else {
                    return;
                };
                let Some(room) = self.room.as_ref() else {
                    return;
                };
                let seatless = self
                    .links
                    .keys()
                    .filter(|k| room.member(k).is_none())
                    .count();
                let status = if room.authority.banned.contains(&remote) {
                    Status::Removed
                } else if room.member(&remote).is_none()
                    && (room.authority.members.len() >= self.cfg.max_members
                        || seatless >= self.cfg.max_members)
                {
                    Status::Full
                } else {
                    Status::Accepted
                };
                (state, remote, payload, status)
            }
            Kind::Link => {
                let e = &init.noise[..32];
                let Some(initiator) = self.room.as_ref().and_then(|r| {
                    r.authority.members.iter().map(|m| m.key).find(|k| {
                        *k != self.me && ct_eq(&link_hint(epoch_secret.as_bytes(), k, e), init.hint)
                    })
                }) else {
                    return;
                };
                // Simultaneous open (both sides punch at once): the lower key's handshake
                // wins. The lower side does not answer; the initiation proves a path, so
                // it resends its own initiation there at once. The higher side answers
                // and drops its own attempt.
                if let Some(link) = self.links.get(&initiator)
                    && link.current.is_none()
                    && let Some(p) = link.pending.as_ref()
                    && p.kind == Kind::Link
                    && self.me < initiator
                {
                    let packet = p.packet.clone();
                    self.send_handshake(origin, initiator, packet);
                    return;
                }
                let prologue = link_prologue(&room_id.0, epoch);
                let keys = Keys {
                    local: &self.identity,
                    psk: epoch_secret.as_bytes(),
                    prologue: &prologue,
                };
                let Ok((state, remote, payload)) =
                    handshake::accept(kind, &keys, Some(&initiator), init.noise, seed)
                else {
                    return;
                };
                (state, remote, payload, Status::Accepted)
            }
        };
        if remote == self.me || !self.fresh_timestamp(remote, payload.timestamp) {
            return;
        }
        let reply = ResponsePayload {
            status,
            incarnation: self.incarnation,
            timestamp: self.timestamp(now),
        };
        let Ok((transport, noise)) = handshake::respond(state, &reply) else {
            return;
        };
        let index = self.new_index();
        let Some(packet) = wire::encode_response(index, init.sender, &noise) else {
            return;
        };
        self.send_handshake(origin, remote, packet);
        if status != Status::Accepted {
            return;
        }
        let link = self.links.entry(remote).or_insert_with(|| Link::new(now));
        if link.current.is_none()
            && let Some(mine) = link.pending.take()
        {
            // We are the higher key of a simultaneous open: theirs wins.
            self.indices.remove(&mine.local_index);
            link.retry = None;
        }
        // Nothing from message 1 takes effect until the peer confirms the session.
        link.next_incarnation = Some(payload.incarnation);
        if let Some(old) = link.next.take() {
            self.indices.remove(&old.local_index);
        }
        link.next = Some(Session::new(transport, index, init.sender, false, now));
        self.indices.insert(index, remote);
    }

    pub(super) fn on_response(&mut self, now: Instant, origin: Origin, resp: &wire::Response<'_>) {
        // Refused before the pending handshake is touched (no rebuild needed).
        if resp.noise.get(..32).is_none_or(is_low_order) {
            return;
        }
        let Some(&peer) = self.indices.get(&resp.receiver) else {
            return;
        };
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if link.pending.as_ref().map(|p| p.local_index) != Some(resp.receiver) {
            return;
        }
        let Some(pending) = link.pending.take() else {
            return;
        };
        let Pending {
            kind,
            state,
            local_index,
            mac1_key,
            mac1,
            epoch,
            rebuild,
            packet,
        } = pending;
        let (transport, payload) = match handshake::complete(state, resp.noise) {
            Ok(done) => done,
            Err(_) => {
                // A forged or corrupt response consumed the Noise state: recreate it
                // exactly (same seed and inputs) so the genuine response still works.
                let keys = Keys {
                    local: &self.identity,
                    psk: rebuild.psk.as_bytes(),
                    prologue: &rebuild.prologue,
                };
                if let Ok((state, _)) = handshake::initiate(
                    kind,
                    &keys,
                    &peer,
                    &rebuild.payload,
                    *rebuild.seed.as_bytes(),
                ) {
                    link.pending = Some(Pending {
                        kind,
                        state,
                        local_index,
                        mac1_key,
                        mac1,
                        epoch,
                        rebuild,
                        packet,
                    });
                } else {
                    self.indices.remove(&resp.receiver);
                }
                return;
            }
        };
        // Authenticated: the peer's clock as it answered. (A field, not `timestamp_floor`,
        // because `link` still borrows `self.links`.)
        let floor = self.seen_timestamps.entry(peer).or_insert(0);
        *floor = (*floor).max(payload.timestamp);
        let pending_kind = kind;
        let current_epoch = self.room.as_ref().map(|r| r.authority.epoch);
        if kind == Kind::Link && current_epoch != Some(epoch) {
            // Keyed for an epoch that has ended: start over with the current one.
            self.indices.remove(&resp.receiver);
            link.retry = Some(Retry {
                attempts: 0,
                next: now,
            });
            return;
        }
        if payload.status != Status::Accepted {
            self.indices.remove(&resp.receiver);
            if pending_kind == Kind::Join {
                let failure = match payload.status {
                    Status::Removed => JoinFailure::Removed,
                    Status::Full => JoinFailure::Full,
                    _ => JoinFailure::Ended,
                };
                self.events.push_back(Event::JoinFailed(failure));
                self.drop_room();
            }
            return;
        }
        let restarted = link.incarnation.is_some_and(|i| i != payload.incarnation);
        if restarted {
            link.reset_channel();
        }
        link.incarnation = Some(payload.incarnation);
        if let Some(old) = link.previous.take() {
            self.indices.remove(&old.local_index);
        }
        link.install_initiated(Session::new(transport, local_index, resp.sender, true, now));
        if let Origin::Direct(hop) = origin {
            // The response answers our fresh initiation: the path it came by works.
            link.set_direct(hop, now);
        }
        link.last_recv = now;
        link.retry = None;
        if !link.reported_up {
            link.reported_up = true;
            self.events.push_back(Event::LinkUp(peer));
        }
        if restarted && let Some(r) = self.room.as_mut() {
            r.chat_seen.remove(&peer);
        }
        if pending_kind == Kind::Join
            && let Some(room) = self.room.as_ref()
        {
            let hello = Message::Hello {
                name: room.my_name.clone(),
                candidates: room.my_candidates.clone(),
            };
            let _ = self.send_message(&peer, &hello);
        }
        // The next slot confirms the session to the responder, even with nothing to say.
        self.schedule.start(now);
    }

    pub(super) fn on_cookie(&mut self, now: Instant, c: &wire::CookieReply<'_>) {
        let Some(&peer) = self.indices.get(&c.receiver) else {
            return;
        };
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let Some(p) = link
            .pending
            .as_ref()
            .filter(|p| p.local_index == c.receiver)
        else {
            return;
        };
        if let Some(cookie) = open_reply(&cookie_key(&p.mac1_key), c.nonce, c.sealed, &p.mac1) {
            link.cookie = Some((cookie, now));
        }
    }

    /// Sends a handshake datagram back the way its counterpart came.
    pub(super) fn send_handshake(&mut self, origin: Origin, peer: PublicKey, packet: Vec<u8>) {
        match origin {
            Origin::Direct(to) => self.transmits.push_back(Transmit {
                destination: to.addr,
                contents: packet,
                socket: to.socket,
            }),
            Origin::Relay(via) => {
                let _ = self.send_message(
                    &via,
                    &Message::RelayTo {
                        peer,
                        datagram: packet,
                    },
                );
            }
        }
    }
}
