//! Records rooms, participants, chat and contacts in the encrypted store, on its own
//! thread: the network and audio paths only push a message onto a channel.

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread::JoinHandle;

use salon_proto::{PublicKey, Role};
use salon_store::{NewMessage, NewRoom, Observation, ParticipantId, Store, Timestamp};
use tokio::sync::mpsc::UnboundedSender;

use crate::api::{ContactInfo, HistoryMessage, HistoryParticipant, HistoryRoom, NodeEvent, hex};

/// Work to run on the history thread with the store (a query, a passphrase change),
/// queued behind every record before it so it sees them.
pub struct StoreJob(pub Box<JobFn>);

/// What a [`StoreJob`] runs: the store and our own key.
pub type JobFn = dyn FnOnce(&mut Store, &PublicKey) + Send;

impl std::fmt::Debug for StoreJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreJob(..)")
    }
}

/// One thing to remember.
#[derive(Debug)]
pub enum Record {
    /// We entered a room.
    RoomOpened {
        /// Protocol room id.
        room_id: [u8; 16],
        /// We host it.
        hosted: bool,
        /// Title.
        title: String,
        /// Invite (host).
        invite: Option<String>,
    },
    /// The roster now (the thread works out joins, leaves and role changes).
    Roster(Vec<(PublicKey, String, Role)>),
    /// A chat line.
    Chat {
        /// Sender.
        from: PublicKey,
        /// Sender's name.
        name: String,
        /// Text.
        text: String,
    },
    /// We left the room.
    RoomClosed,
    /// Run this with the store.
    Job(StoreJob),
}

/// The history writer thread.
pub struct History {
    tx: mpsc::Sender<Record>,
    thread: Option<JoinHandle<Store>>,
}

struct Writer {
    store: Store,
    me: PublicKey,
    room: Option<salon_store::RoomId>,
    present: HashMap<PublicKey, (ParticipantId, Role)>,
    events: UnboundedSender<NodeEvent>,
}

impl Writer {
    fn report(&self, e: salon_store::StoreError) {
        let e = crate::error::NodeError::from(e);
        tracing::warn!(code = e.code(), "history not saved: {e}");
        let _ = self.events.send(NodeEvent::Error {
            code: e.code(),
            message: format!("history not saved: {e}"),
        });
    }

    fn apply(&mut self, rec: Record) -> Result<(), salon_store::StoreError> {
        let now = Timestamp::now();
        match rec {
            Record::RoomOpened {
                room_id,
                hosted,
                title,
                invite,
            } => {
                let id = match self.store.room_by_protocol_id(&room_id)? {
                    Some(r) => {
                        self.store.reopen_room(r.id)?;
                        r.id
                    }
                    None => self.store.add_room(&NewRoom {
                        protocol_id: &room_id,
                        hosted,
                        title: &title,
                        invite: invite.as_deref(),
                        started_at: now,
                    })?,
                };
                self.store.set_room_title(id, &title)?;
                self.room = Some(id);
                self.present.clear();
            }
            Record::Roster(members) => {
                let Some(room) = self.room else { return Ok(()) };
                for (key, name, role) in &members {
                    match self.present.get(key).copied() {
                        None => {
                            let pid = self.store.participant_joined(room, key, name, *role, now)?;
                            self.present.insert(*key, (pid, *role));
                            if *key == self.me {
                                self.store.record_role(room, key, *role, now)?;
                            } else if let Observation::KeyChanged { .. } =
                                self.store.observe_peer(key, name, now)?
                            {
                                let _ = self.events.send(NodeEvent::KeyChanged {
                                    name: name.clone(),
                                    key: hex(key),
                                });
                            }
                        }
                        Some((pid, old)) if old != *role => {
                            self.store.participant_role_changed(pid, *role, now)?;
                            self.present.insert(*key, (pid, *role));
                            if *key == self.me {
                                self.store.record_role(room, key, *role, now)?;
                            }
                        }
                        Some(_) => {}
                    }
                }
                let gone: Vec<PublicKey> = self
                    .present
                    .keys()
                    .filter(|k| !members.iter().any(|(m, ..)| m == *k))
                    .copied()
                    .collect();
                for k in gone {
                    if let Some((pid, _)) = self.present.remove(&k) {
                        self.store.participant_left(pid, now)?;
                    }
                }
            }
            Record::Chat { from, name, text } => {
                let Some(room) = self.room else { return Ok(()) };
                self.store.add_message(&NewMessage {
                    room,
                    sender_key: &from,
                    sender_name: &name,
                    sent_at: now,
                    text: &text,
                })?;
            }
            Record::Job(StoreJob(job)) => job(&mut self.store, &self.me),
            Record::RoomClosed => {
                if let Some(room) = self.room.take() {
                    for (_, (pid, _)) in self.present.drain() {
                        self.store.participant_left(pid, now)?;
                    }
                    self.store.end_room(room, now)?;
                }
            }
        }
        Ok(())
    }
}

impl History {
    /// Starts the writer thread; store errors are reported as [`NodeEvent::Error`].
    pub fn start(store: Store, me: PublicKey, events: UnboundedSender<NodeEvent>) -> Self {
        let (tx, rx) = mpsc::channel::<Record>();
        let thread = std::thread::Builder::new()
            .name("salon-history".into())
            .spawn(move || {
                let mut w = Writer {
                    store,
                    me,
                    room: None,
                    present: HashMap::new(),
                    events,
                };
                while let Ok(rec) = rx.recv() {
                    if let Err(e) = w.apply(rec) {
                        w.report(e);
                    }
                }
                w.store
            })
            .ok();
        Self { tx, thread }
    }

    /// Queues a record; never blocks.
    pub fn record(&self, rec: Record) {
        let _ = self.tx.send(rec);
    }

    /// Stops the thread after it wrote everything queued, returning the store.
    pub fn finish(mut self) -> Option<Store> {
        let (dead_tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, dead_tx));
        self.thread.take().and_then(|t| t.join().ok())
    }
}

/// Largest page of rooms a front end may ask for.
const MAX_ROOMS_PAGE: u32 = 200;
/// Largest page of chat a front end may ask for.
const MAX_CHAT_PAGE: u32 = 500;

/// A page of past rooms, newest first, with who was there.
pub fn rooms_page(
    store: &Store,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<HistoryRoom>, salon_store::StoreError> {
    let rooms = store.rooms(
        before.map(salon_store::RoomId),
        limit.clamp(1, MAX_ROOMS_PAGE),
    )?;
    rooms
        .into_iter()
        .map(|r| {
            let participants = store
                .participants(r.id)?
                .into_iter()
                .map(|p| HistoryParticipant {
                    key: hex(&p.public_key),
                    name: p.name,
                    role: p.role,
                    joined_at: p.joined_at.0,
                    left_at: p.left_at.map(|t| t.0),
                })
                .collect();
            Ok(HistoryRoom {
                id: r.id.0,
                title: r.title,
                hosted: r.hosted,
                started_at: r.started_at.0,
                ended_at: r.ended_at.map(|t| t.0),
                participants,
                message_count: store.message_count(r.id)?,
            })
        })
        .collect()
}

/// A page of one room's chat, newest first.
pub fn chat_page(
    store: &Store,
    me: &PublicKey,
    room: i64,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<HistoryMessage>, salon_store::StoreError> {
    let limit = limit.clamp(1, MAX_CHAT_PAGE);
    let page = match before {
        Some(b) => salon_store::Page::Before {
            before: salon_store::MessageId(b),
            limit,
        },
        None => salon_store::Page::Latest { limit },
    };
    // The store pages oldest first.
    let mut out: Vec<HistoryMessage> = store
        .messages(salon_store::RoomId(room), page)?
        .into_iter()
        .map(|m| HistoryMessage {
            id: m.id.0,
            at: m.sent_at.0,
            mine: m.sender_key == *me,
            from: hex(&m.sender_key),
            name: m.sender_name,
            text: m.text,
        })
        .collect();
    out.reverse();
    Ok(out)
}

/// Everyone we have met, most recently seen first.
pub fn contacts(
    store: &Store,
    me: &PublicKey,
) -> Result<Vec<ContactInfo>, salon_store::StoreError> {
    let mine = me.fingerprint();
    let mut out = Vec::new();
    for c in store.contacts()? {
        let theirs = Some(c.public_key.fingerprint());
        let safety_number = theirs
            .map(|k| salon_proto::identity::safety_number_from(mine, k).digits())
            .unwrap_or_default();
        out.push(ContactInfo {
            key: hex(&c.public_key),
            key_changed: !store.contact_key_history(c.id)?.is_empty(),
            name: c.name,
            verified: c.verified,
            safety_number,
            last_seen: Some(c.last_seen.0),
        });
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.last_seen));
    Ok(out)
}
