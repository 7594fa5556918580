//! Versioned schema migrations, run inside one transaction on open.
//!
//! The schema version lives in SQLite's `user_version`. `MIGRATIONS[i]` takes a database
//! from version `i` to `i + 1`; entries are never edited once released, only appended.
//! The SQL stays within what SQLite 3.15 parses (no STRICT tables, no generated columns)
//! so the stock Debian 12 `sqlcipher` shell can still read the file.

use rusqlite::Connection;

use crate::error::{Result, StoreError};

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// Migration steps: index `i` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the first released schema.
    "
    CREATE TABLE identity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        secret_key BLOB NOT NULL CHECK (length(secret_key) = 32),
        public_key BLOB NOT NULL CHECK (length(public_key) = 32),
        created_at INTEGER NOT NULL
    );
    CREATE TABLE profile (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        display_name TEXT NOT NULL
    );
    CREATE TABLE contacts (
        id INTEGER PRIMARY KEY,
        public_key BLOB NOT NULL UNIQUE CHECK (length(public_key) = 32),
        name TEXT NOT NULL,
        verified INTEGER NOT NULL DEFAULT 0,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
    );
    CREATE INDEX contacts_by_name ON contacts(name);
    CREATE TABLE rooms (
        id INTEGER PRIMARY KEY,
        protocol_id BLOB NOT NULL UNIQUE,
        hosted INTEGER NOT NULL,
        title TEXT NOT NULL,
        invite TEXT,
        started_at INTEGER NOT NULL,
        ended_at INTEGER
    );
    CREATE TABLE participants (
        id INTEGER PRIMARY KEY,
        room INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        public_key BLOB NOT NULL CHECK (length(public_key) = 32),
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        joined_at INTEGER NOT NULL,
        left_at INTEGER
    );
    CREATE INDEX participants_by_room ON participants(room, joined_at);
    CREATE TABLE role_changes (
        id INTEGER PRIMARY KEY,
        room INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        public_key BLOB NOT NULL CHECK (length(public_key) = 32),
        role TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX role_changes_by_member ON role_changes(room, public_key, id);
    CREATE TABLE chat_messages (
        id INTEGER PRIMARY KEY,
        room INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        sender_key BLOB NOT NULL CHECK (length(sender_key) = 32),
        sender_name TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX chat_by_room ON chat_messages(room, id);
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    ",
    // 2: keep a contact's replaced keys, and when a contact was verified.
    "
    CREATE TABLE contact_key_history (
        id INTEGER PRIMARY KEY,
        contact INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
        public_key BLOB NOT NULL CHECK (length(public_key) = 32),
        was_verified INTEGER NOT NULL,
        replaced_at INTEGER NOT NULL
    );
    CREATE INDEX contact_key_history_by_contact ON contact_key_history(contact, id);
    ALTER TABLE contacts ADD COLUMN verified_at INTEGER;
    -- Version 1 did not record when; last_seen is the best bound known (verified by then).
    UPDATE contacts SET verified_at = last_seen WHERE verified = 1;
    ",
];

/// Reads the schema version of an open database.
pub(crate) fn schema_version(conn: &Connection) -> Result<u32> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::corrupt(format!("schema version {v}")))
}

/// Upgrades the database to `target` (at most [`CURRENT_VERSION`]) in one transaction.
pub(crate) fn migrate_to(conn: &mut Connection, target: u32) -> Result<()> {
    let found = schema_version(conn)?;
    if found > CURRENT_VERSION {
        return Err(StoreError::NewerVersion {
            found,
            supported: CURRENT_VERSION,
        });
    }
    if found >= target {
        return Ok(());
    }
    let steps = MIGRATIONS
        .get(found as usize..target as usize)
        .ok_or_else(|| StoreError::InvalidInput(format!("no schema version {target}")))?;
    let tx = conn.transaction()?;
    for step in steps {
        tx.execute_batch(step)?;
    }
    // user_version cannot take a bound parameter; `target` is our own integer.
    tx.execute_batch(&format!("PRAGMA user_version = {target}"))?;
    tx.commit()?;
    Ok(())
}
