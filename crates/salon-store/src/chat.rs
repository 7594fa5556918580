//! Room chat messages, kept in arrival order, read a page at a time.
//!
//! Order is the order messages reached this node (the control channel delivers a
//! room's chat in order), not the senders' clocks, which may disagree. Paging is by
//! keyset (message id), so a page costs the same at any depth of a long history.

use rusqlite::Row;

use crate::error::{Result, StoreError};
use crate::rooms::RoomId;
use crate::store::Store;
use crate::types::{PublicKey, Timestamp, key_from_sql};

/// Local id of a chat message; ids grow in arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub i64);

/// A message to record.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// The room it was said in.
    pub room: RoomId,
    /// The sender's static public key.
    pub sender_key: &'a PublicKey,
    /// The sender's name at the time.
    pub sender_name: &'a str,
    /// When it was sent.
    pub sent_at: Timestamp,
    /// The text.
    pub text: &'a str,
}

/// A recorded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Local id.
    pub id: MessageId,
    /// The room.
    pub room: RoomId,
    /// The sender's static public key.
    pub sender_key: PublicKey,
    /// The sender's name at the time.
    pub sender_name: String,
    /// When it was sent.
    pub sent_at: Timestamp,
    /// The text.
    pub text: String,
}

/// Which page of a room's history to read. Pages come back oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The newest `limit` messages.
    Latest {
        /// Page size.
        limit: u32,
    },
    /// Up to `limit` messages just older than `before` (scrolling back).
    Before {
        /// The oldest message currently shown.
        before: MessageId,
        /// Page size.
        limit: u32,
    },
    /// Up to `limit` messages just newer than `after` (scrolling forward, or catching up).
    After {
        /// The newest message currently shown.
        after: MessageId,
        /// Page size.
        limit: u32,
    },
}

/// Longest chat message accepted, in bytes: bounds what a peer can make us store.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

fn message_from_row(r: &Row<'_>) -> rusqlite::Result<ChatMessage> {
    Ok(ChatMessage {
        id: MessageId(r.get(0)?),
        room: RoomId(r.get(1)?),
        sender_key: key_from_sql(r.get(2)?)?,
        sender_name: r.get(3)?,
        sent_at: Timestamp(r.get(4)?),
        text: r.get(5)?,
    })
}

const INSERT_SQL: &str = "INSERT INTO chat_messages (room, sender_key, sender_name, sent_at, body)
     VALUES (?1, ?2, ?3, ?4, ?5)";

impl Store {
    /// Records one message; durable when this returns.
    pub fn add_message(&mut self, m: &NewMessage<'_>) -> Result<MessageId> {
        self.add_messages(std::slice::from_ref(m))?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::InvalidInput("no message recorded".into()))
    }

    /// Records several messages in one transaction (one disk sync for all of them).
    pub fn add_messages(&mut self, ms: &[NewMessage<'_>]) -> Result<Vec<MessageId>> {
        if let Some(m) = ms.iter().find(|m| m.text.len() > MAX_MESSAGE_BYTES) {
            return Err(StoreError::InvalidInput(format!(
                "a chat message of {} bytes is over the {MAX_MESSAGE_BYTES}-byte limit",
                m.text.len()
            )));
        }
        let tx = self.conn.transaction()?;
        let mut ids = Vec::with_capacity(ms.len());
        {
            let mut stmt = tx.prepare_cached(INSERT_SQL)?;
            for m in ms {
                stmt.execute(rusqlite::params![
                    m.room.0,
                    &m.sender_key.0[..],
                    m.sender_name,
                    m.sent_at.0,
                    m.text
                ])?;
                ids.push(MessageId(tx.last_insert_rowid()));
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// A page of a room's chat, oldest first.
    pub fn messages(&self, room: RoomId, page: Page) -> Result<Vec<ChatMessage>> {
        const COLS: &str = "id, room, sender_key, sender_name, sent_at, body";
        let (sql, bound, limit, newest_first) = match page {
            Page::Latest { limit } => (
                format!(
                    "SELECT {COLS} FROM chat_messages WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
                ),
                i64::MAX,
                limit,
                true,
            ),
            Page::Before { before, limit } => (
                format!(
                    "SELECT {COLS} FROM chat_messages WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
                ),
                before.0,
                limit,
                true,
            ),
            Page::After { after, limit } => (
                format!(
                    "SELECT {COLS} FROM chat_messages WHERE room = ?1 AND id > ?2 ORDER BY id ASC LIMIT ?3"
                ),
                after.0,
                limit,
                false,
            ),
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params![room.0, bound, limit], message_from_row)?;
        let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        if newest_first {
            out.reverse();
        }
        Ok(out)
    }

    /// How many messages a room has.
    pub fn message_count(&self, room: RoomId) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM chat_messages WHERE room = ?1",
            [room.0],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
