//! Rooms hosted and joined, the user's roles over time, and participants.

use rusqlite::{OptionalExtension, Row};

use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::types::{PublicKey, Timestamp, key_from_sql};

/// Local row id of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub i64);

/// Local row id of one participation (one join..leave interval) in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub i64);

/// A member's role in a room: the protocol's, recorded by [`Role::as_str`]'s spelling.
pub use salon_proto::Role;

fn role_from_sql(s: String) -> rusqlite::Result<Role> {
    Role::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown role {s:?}").into(),
        )
    })
}

/// A room to record.
#[derive(Debug, Clone)]
pub struct NewRoom<'a> {
    /// The protocol's room id (opaque bytes).
    pub protocol_id: &'a [u8],
    /// Whether the user hosts it.
    pub hosted: bool,
    /// Its title.
    pub title: &'a str,
    /// The invite string (the host needs it to reopen the room).
    pub invite: Option<&'a str>,
    /// When the user entered it.
    pub started_at: Timestamp,
}

/// A recorded room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// Local id.
    pub id: RoomId,
    /// The protocol's room id.
    pub protocol_id: Vec<u8>,
    /// Whether the user hosts it.
    pub hosted: bool,
    /// Its title.
    pub title: String,
    /// The invite string, if known.
    pub invite: Option<String>,
    /// When it started (for the user).
    pub started_at: Timestamp,
    /// When it ended (for the user), if it did.
    pub ended_at: Option<Timestamp>,
}

/// One role change of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleChange {
    /// The new role.
    pub role: Role,
    /// When it took effect.
    pub at: Timestamp,
}

/// One participation of a member in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Local id.
    pub id: ParticipantId,
    /// The room.
    pub room: RoomId,
    /// The member's static public key.
    pub public_key: PublicKey,
    /// The name they gave.
    pub name: String,
    /// Their current (or last) role.
    pub role: Role,
    /// When they joined.
    pub joined_at: Timestamp,
    /// When they left, if they did.
    pub left_at: Option<Timestamp>,
}

const ROOM_COLUMNS: &str = "id, protocol_id, hosted, title, invite, started_at, ended_at";

fn room_from_row(r: &Row<'_>) -> rusqlite::Result<Room> {
    Ok(Room {
        id: RoomId(r.get(0)?),
        protocol_id: r.get(1)?,
        hosted: r.get(2)?,
        title: r.get(3)?,
        invite: r.get(4)?,
        started_at: Timestamp(r.get(5)?),
        ended_at: r.get::<_, Option<i64>>(6)?.map(Timestamp),
    })
}

const PARTICIPANT_COLUMNS: &str = "id, room, public_key, name, role, joined_at, left_at";

fn participant_from_row(r: &Row<'_>) -> rusqlite::Result<Participant> {
    Ok(Participant {
        id: ParticipantId(r.get(0)?),
        room: RoomId(r.get(1)?),
        public_key: key_from_sql(r.get(2)?)?,
        name: r.get(3)?,
        role: role_from_sql(r.get(4)?)?,
        joined_at: Timestamp(r.get(5)?),
        left_at: r.get::<_, Option<i64>>(6)?.map(Timestamp),
    })
}

impl Store {
    /// Records a room; refuses a protocol id already recorded (see [`Store::room_by_protocol_id`]).
    pub fn add_room(&mut self, room: &NewRoom<'_>) -> Result<RoomId> {
        if self.room_by_protocol_id(room.protocol_id)?.is_some() {
            return Err(StoreError::InvalidInput(
                "this room is already recorded".into(),
            ));
        }
        self.conn.execute(
            "INSERT INTO rooms (protocol_id, hosted, title, invite, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                room.protocol_id,
                room.hosted,
                room.title,
                room.invite,
                room.started_at.0
            ],
        )?;
        Ok(RoomId(self.conn.last_insert_rowid()))
    }

    /// One room.
    pub fn room(&self, id: RoomId) -> Result<Room> {
        self.conn
            .query_row(
                &format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?1"),
                [id.0],
                room_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NoSuchRecord(format!("room {}", id.0)))
    }

    /// The room with this protocol id, if recorded.
    pub fn room_by_protocol_id(&self, protocol_id: &[u8]) -> Result<Option<Room>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE protocol_id = ?1"),
                [protocol_id],
                room_from_row,
            )
            .optional()?)
    }

    /// Rooms, most recently recorded first; `before` continues after the last one shown.
    pub fn rooms(&self, before: Option<RoomId>, limit: u32) -> Result<Vec<Room>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ROOM_COLUMNS} FROM rooms WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            rusqlite::params![before.map_or(i64::MAX, |r| r.0), limit],
            room_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Changes a room's title.
    pub fn set_room_title(&mut self, id: RoomId, title: &str) -> Result<()> {
        self.update_room(id, "UPDATE rooms SET title = ?2 WHERE id = ?1", title)
    }

    /// Stores a new invite for a room (a new epoch may change it).
    pub fn set_room_invite(&mut self, id: RoomId, invite: &str) -> Result<()> {
        self.update_room(id, "UPDATE rooms SET invite = ?2 WHERE id = ?1", invite)
    }

    /// Marks a room ended (for the user).
    pub fn end_room(&mut self, id: RoomId, at: Timestamp) -> Result<()> {
        self.update_room(id, "UPDATE rooms SET ended_at = ?2 WHERE id = ?1", at.0)
    }

    /// A host reopens a room it ended: it counts as running again.
    pub fn reopen_room(&mut self, id: RoomId) -> Result<()> {
        let n = self
            .conn
            .execute("UPDATE rooms SET ended_at = NULL WHERE id = ?1", [id.0])?;
        if n == 0 {
            return Err(StoreError::NoSuchRecord(format!("room {}", id.0)));
        }
        Ok(())
    }

    fn update_room(&mut self, id: RoomId, sql: &str, value: impl rusqlite::ToSql) -> Result<()> {
        let n = self.conn.execute(sql, rusqlite::params![id.0, value])?;
        if n == 0 {
            return Err(StoreError::NoSuchRecord(format!("room {}", id.0)));
        }
        Ok(())
    }

    /// Forgets a room with its participants, roles and chat. Call [`Store::compact`]
    /// afterwards to shrink the file.
    pub fn delete_room(&mut self, id: RoomId) -> Result<()> {
        let n = self
            .conn
            .execute("DELETE FROM rooms WHERE id = ?1", [id.0])?;
        if n == 0 {
            return Err(StoreError::NoSuchRecord(format!("room {}", id.0)));
        }
        Ok(())
    }

    /// Records that a member's role became `role` at `at` (the user's own roles are
    /// recorded the same way, under the identity's public key).
    pub fn record_role(
        &mut self,
        room: RoomId,
        public_key: &PublicKey,
        role: Role,
        at: Timestamp,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO role_changes (room, public_key, role, at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![room.0, &public_key.0[..], role.as_str(), at.0],
        )?;
        Ok(())
    }

    /// A member's roles in a room over time, oldest first.
    pub fn role_history(&self, room: RoomId, public_key: &PublicKey) -> Result<Vec<RoleChange>> {
        let mut stmt = self.conn.prepare(
            "SELECT role, at FROM role_changes WHERE room = ?1 AND public_key = ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(rusqlite::params![room.0, &public_key.0[..]], |r| {
            Ok(RoleChange {
                role: role_from_sql(r.get(0)?)?,
                at: Timestamp(r.get(1)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The user's own roles in a room over time (empty until an identity is set).
    pub fn my_roles(&self, room: RoomId) -> Result<Vec<RoleChange>> {
        match self.identity()? {
            Some(me) => self.role_history(room, &me.public_key()),
            None => Ok(Vec::new()),
        }
    }

    /// A member joined a room with `role`; also starts their role history.
    pub fn participant_joined(
        &mut self,
        room: RoomId,
        public_key: &PublicKey,
        name: &str,
        role: Role,
        at: Timestamp,
    ) -> Result<ParticipantId> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO participants (room, public_key, name, role, joined_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![room.0, &public_key.0[..], name, role.as_str(), at.0],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO role_changes (room, public_key, role, at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![room.0, &public_key.0[..], role.as_str(), at.0],
        )?;
        tx.commit()?;
        Ok(ParticipantId(id))
    }

    /// A participant's role changed; also appended to their role history.
    pub fn participant_role_changed(
        &mut self,
        id: ParticipantId,
        role: Role,
        at: Timestamp,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let (room, key): (i64, Vec<u8>) = tx
            .query_row(
                "SELECT room, public_key FROM participants WHERE id = ?1",
                [id.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::NoSuchRecord(format!("participant {}", id.0)))?;
        tx.execute(
            "UPDATE participants SET role = ?2 WHERE id = ?1",
            rusqlite::params![id.0, role.as_str()],
        )?;
        tx.execute(
            "INSERT INTO role_changes (room, public_key, role, at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![room, key, role.as_str(), at.0],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A participant left (or was removed).
    pub fn participant_left(&mut self, id: ParticipantId, at: Timestamp) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE participants SET left_at = ?2 WHERE id = ?1",
            rusqlite::params![id.0, at.0],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchRecord(format!("participant {}", id.0)));
        }
        Ok(())
    }

    /// Everyone who took part in a room, in joining order.
    pub fn participants(&self, room: RoomId) -> Result<Vec<Participant>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE room = ?1 ORDER BY joined_at, id"
        ))?;
        let rows = stmt.query_map([room.0], participant_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
