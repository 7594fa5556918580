//! The commands a person gives (host, join, hand, mute, moderation, chat, leave, …):
//! each checks the room and its rules, queues messages, and flushes.

use super::*;

impl Endpoint {
    /// Opens a new room with us as host and returns its invite. `candidates` are the
    /// addresses joiners should try (the driver knows its socket's addresses).
    pub fn host(
        &mut self,
        now: Instant,
        title: &str,
        name: &str,
        candidates: Vec<Candidate>,
    ) -> Result<Invite, CommandError> {
        if self.room.is_some() {
            return Err(CommandError::AlreadyInRoom);
        }
        if !valid_title(title) {
            return Err(CommandError::InvalidTitle);
        }
        if !valid_name(name) {
            return Err(CommandError::InvalidName);
        }
        let mut id = [0u8; 16];
        self.rng.fill_bytes(&mut id);
        let secret = Secret32::generate(&mut self.rng);
        let epoch_secret = Secret32::generate(&mut self.rng);
        let my_candidates: Vec<SocketAddr> = candidates.iter().map(|c| c.addr).collect();
        let me = Member {
            key: self.me,
            name: name.trim().to_owned(),
            role: Role::Host,
            hand_raised: false,
            muted: false,
            candidates: my_candidates.clone(),
            joined: 0,
        };
        let authority = Authority::hosted(
            me,
            title.trim().to_owned(),
            epoch_secret,
            self.cfg.uniform_rate,
        );
        let room = Room::new(
            RoomId(id),
            secret,
            authority,
            name,
            my_candidates,
            Phase::Open,
        );
        self.events.push_back(Event::Joined(room.view()));
        self.room = Some(room);
        let _ = now;
        self.invite(candidates).ok_or(CommandError::NotInRoom)
    }

    /// Starts joining the room of `invite`. `candidates` are our own addresses to tell
    /// other members (LAN addresses of our socket).
    pub fn join(
        &mut self,
        now: Instant,
        invite: &Invite,
        name: &str,
        candidates: Vec<SocketAddr>,
    ) -> Result<(), CommandError> {
        if self.room.is_some() {
            return Err(CommandError::AlreadyInRoom);
        }
        if !valid_name(name) {
            return Err(CommandError::InvalidName);
        }
        if invite.host.is_low_order() {
            return Err(CommandError::WeakHostKey);
        }
        self.room = Some(Room::new(
            invite.room_id,
            invite.secret().clone(),
            Authority::awaiting(invite.host),
            name,
            candidates,
            Phase::Joining {
                deadline: now + self.cfg.join_timeout,
                tried: Vec::new(),
            },
        ));
        let mut link = Link::new(now);
        link.candidates = invite.candidates.iter().map(|c| c.addr).collect();
        link.retry = Some(Retry {
            attempts: 0,
            next: now,
        });
        self.links.insert(invite.host, link);
        self.start_handshake(now, invite.host);
        Ok(())
    }

    /// Our own addresses changed (a port mapping came or went, the network changed): the
    /// room learns the new list, so members punch towards it. A member tells the host (a
    /// repeated Hello); the host updates its own entry and sends the roster.
    pub fn set_candidates(
        &mut self,
        now: Instant,
        candidates: Vec<SocketAddr>,
    ) -> Result<(), CommandError> {
        let me = self.me;
        let room = self.room.as_mut().ok_or(CommandError::NotInRoom)?;
        room.my_candidates = candidates.clone();
        if room.phase != Phase::Open {
            return Ok(());
        }
        if room.host() == me {
            room.authority.set_own_candidates(candidates);
            self.broadcast_state();
            self.emit_room_changed();
        } else {
            let host = room.host();
            let hello = Message::Hello {
                name: room.my_name.clone(),
                candidates,
            };
            self.send_message(&host, &hello)?;
        }
        self.flush(now);
        Ok(())
    }

    /// Our network changed (another Wi-Fi, a cable, tethering): look at every path now
    /// instead of waiting for it to go stale. Links probe and challenge at once, and links
    /// without a session retry their handshakes (punching from the new address).
    pub fn network_changed(&mut self, now: Instant) {
        for link in self.links.values_mut() {
            link.path_check = Some(now);
            link.challenges.clear();
            link.last_probe = None;
            if link.current.is_none() && link.closing.is_none() {
                link.retry = Some(Retry {
                    attempts: 0,
                    next: now,
                });
            }
        }
        // Our next slot tells everyone where we are: the host's challenge moves our
        // roster entry, the others follow it. It carries a ping, so the answer shows
        // whether the path still works.
        for link in self.links.values_mut() {
            link.next_ping = now;
        }
        self.flush(now);
    }

    /// Raises (true) or lowers (false) our hand.
    pub fn set_hand(&mut self, now: Instant, raised: bool) -> Result<(), CommandError> {
        self.request(now, Message::SetHand(raised))
    }

    /// Mutes or unmutes our microphone as shown to others. The application keeps sending
    /// audio frames (encoded silence) while muted, so the network cannot tell.
    pub fn set_muted(&mut self, now: Instant, muted: bool) -> Result<(), CommandError> {
        if let Some(r) = self.room.as_mut() {
            r.want_muted = muted;
        }
        self.request(now, Message::SetMuted(muted))
    }

    /// A moderator action on another member.
    pub fn moderate(
        &mut self,
        now: Instant,
        target: PublicKey,
        action: Action,
    ) -> Result<(), CommandError> {
        let room = self.open_room()?;
        let my_role = room.member(&self.me).map(|m| m.role);
        if !my_role.is_some_and(Role::can_moderate) {
            return Err(CommandError::NotPermitted);
        }
        if action == Action::MakeModerator && my_role != Some(Role::Host) {
            return Err(CommandError::NotHost);
        }
        if room.member(&target).is_none() || target == self.me {
            return Err(CommandError::UnknownMember);
        }
        self.request(now, Message::Moderate { target, action })
    }

    /// Answers the stage invitation of the last [`Event::StageInvited`]: `accept` tells the
    /// host to make us a speaker ([`Event::RoleChanged`] follows, and only then may the
    /// application open the microphone); `false` declines and we stay in the audience.
    /// Either way the invitation is used up. Fails with [`CommandError::NoStageInvite`]
    /// when there is none to answer, or it is older than [`STAGE_ANSWER_BY`].
    pub fn answer_stage_invite(&mut self, now: Instant, accept: bool) -> Result<(), CommandError> {
        let room = self.open_room_mut()?;
        match room.stage_invited.take() {
            Some((_, at)) if now < at + STAGE_ANSWER_BY => {}
            _ => return Err(CommandError::NoStageInvite),
        }
        self.request(now, Message::StageAnswer { accept })
    }

    /// Sends a chat line to everyone in the room.
    pub fn send_chat(&mut self, now: Instant, text: &str) -> Result<(), CommandError> {
        if text.trim().is_empty() || text.len() > MAX_CHAT_LEN {
            return Err(CommandError::InvalidChat);
        }
        let me = self.me;
        let room = self.open_room_mut()?;
        // The allowance every receiver holds us to: over it, receivers would drop the
        // line, so it is refused here with a message instead.
        if !room
            .chat_allowance
            .entry(me)
            .or_insert_with(|| Allowance::new(now, CHAT_BURST, CHAT_EVERY))
            .take(now)
        {
            return Err(CommandError::ChatTooFast);
        }
        room.chat_sent += 1;
        let seq = room.chat_sent;
        let name = room.my_name.clone();
        let msg = Message::Chat {
            seq,
            text: text.to_owned(),
        };
        self.broadcast(&msg, None)?;
        self.events.push_back(Event::Chat {
            from: me,
            name,
            seq,
            text: text.to_owned(),
        });
        self.flush(now);
        Ok(())
    }

    /// Hands over one codec frame, as the audio engine makes one every frame period (on
    /// stage or not, muted or not). The frame paces the slot clock (PROTOCOL §5.1: slots
    /// leave a fixed margin after frames arrive, whatever our role, so a capture cannot
    /// tell a stage member from a listener by timing), and, when we are on stage, goes
    /// to every member in the next slot. Fails with [`CommandError::NotOnStage`] when
    /// the frame only paced the clock.
    pub fn send_audio(&mut self, now: Instant, codec_frame: &[u8]) -> Result<(), CommandError> {
        if codec_frame.len() > MAX_AUDIO_FRAME {
            return Err(CommandError::AudioFrameTooLarge(codec_frame.len()));
        }
        let period = self.slot_period();
        self.schedule.frame_arrived(now, period);
        let me = self.me;
        let room = self.open_room_mut()?;
        if !room.member(&me).is_some_and(|m| m.role.on_stage()) {
            return Err(CommandError::NotOnStage);
        }
        room.audio_seq = room.audio_seq.wrapping_add(1);
        let seq = room.audio_seq;
        // A frame pushed out unsent is a gap in the sequence: receivers count it lost
        // and restore it from the next frame's forward error correction.
        if self.audio_queue.len() >= AUDIO_QUEUE {
            self.audio_queue.pop_front();
        }
        self.audio_queue.push_back((seq, codec_frame.to_vec()));
        Ok(())
    }

    /// How many slots have carried our audio so far.
    pub fn audio_slots(&self) -> u64 {
        self.audio_slots
    }

    /// Leaves the room. A leaving host hands the room to its successor first.
    pub fn leave(&mut self, now: Instant) -> Result<(), CommandError> {
        let me = self.me;
        let room = self.room.as_mut().ok_or(CommandError::NotInRoom)?;
        match room.phase {
            Phase::Closing { .. } => return Err(CommandError::NotInRoom),
            Phase::Joining { .. } => {
                self.close_now(LeftReason::Left);
                return Ok(());
            }
            Phase::Open => {}
        }
        if room.host() == me && room.authority.hand_over().is_some() {
            self.new_epoch();
            self.broadcast_state();
        }
        self.say_goodbye(now, &Message::Leave, LeftReason::Left);
        Ok(())
    }

    /// Sends a last message to everyone, then lingers so it is delivered.
    pub(super) fn say_goodbye(&mut self, now: Instant, msg: &Message, reason: LeftReason) {
        let linger = self.cfg.linger;
        let _ = self.broadcast(msg, None);
        if let Some(room) = self.room.as_mut() {
            room.phase = Phase::Closing {
                until: now + linger,
            };
        }
        self.events.push_back(Event::Left(reason));
        self.flush(now);
    }

    /// Revokes the current invite (host only): draws a fresh room secret, so the host no
    /// longer answers anyone who holds the old invite, and returns the new invite (also
    /// announced as [`Event::InviteChanged`]). The room goes on untouched: members keep
    /// their seats, links and epoch, and learn nothing of it.
    pub fn revoke_invite(&mut self, now: Instant) -> Result<Invite, CommandError> {
        let me = self.me;
        if self.open_room()?.host() != me {
            return Err(CommandError::NotHost);
        }
        let _ = now;
        self.rotate_room_secret(InviteChange::Revoked)
            .ok_or(CommandError::NotInRoom)
    }

    /// Ends the room for everyone (host only).
    pub fn end_room(&mut self, now: Instant) -> Result<(), CommandError> {
        let me = self.me;
        let room = self.open_room()?;
        if room.host() != me {
            return Err(CommandError::NotHost);
        }
        self.say_goodbye(now, &Message::Ended, LeftReason::Ended);
        Ok(())
    }

    pub(super) fn open_room(&self) -> Result<&Room, CommandError> {
        match &self.room {
            None => Err(CommandError::NotInRoom),
            Some(r) => match r.phase {
                Phase::Open => Ok(r),
                Phase::Joining { .. } => Err(CommandError::StillJoining),
                Phase::Closing { .. } => Err(CommandError::NotInRoom),
            },
        }
    }

    pub(super) fn open_room_mut(&mut self) -> Result<&mut Room, CommandError> {
        match &mut self.room {
            None => Err(CommandError::NotInRoom),
            Some(r) => match r.phase {
                Phase::Open => Ok(r),
                Phase::Joining { .. } => Err(CommandError::StillJoining),
                Phase::Closing { .. } => Err(CommandError::NotInRoom),
            },
        }
    }

    /// Sends a request to the host, or applies it directly when we are the host.
    pub(super) fn request(&mut self, now: Instant, msg: Message) -> Result<(), CommandError> {
        let host = self.open_room()?.host();
        if host == self.me {
            let me = self.me;
            self.host_handle(now, me, msg);
        } else {
            self.send_message(&host, &msg)?;
        }
        self.flush(now);
        Ok(())
    }
}
