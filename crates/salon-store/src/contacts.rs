//! Contacts: peers met in rooms, with a verified flag and key-change detection.
//!
//! Peers are known by their static public key; the name is whatever they call
//! themselves. A name that looks like a known contact's (compared by
//! [`names_look_alike`]: NFKC, look-alike letters folded) but arrives with a different key is
//! reported ([`Observation::KeyChanged`]) and nothing is stored until the user decides:
//! the key may have changed, or someone else may be using the name.

use rusqlite::{OptionalExtension, Row};
use salon_proto::roster::names_look_alike;

use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::types::{PublicKey, Timestamp, key_from_sql};

/// Local row id of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactId(pub i64);

/// A known peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Local id.
    pub id: ContactId,
    /// Their static public key.
    pub public_key: PublicKey,
    /// The name they last gave.
    pub name: String,
    /// Whether the user compared safety numbers with them for this key.
    pub verified: bool,
    /// When the user verified them, if they did.
    pub verified_at: Option<Timestamp>,
    /// When they were first met.
    pub first_seen: Timestamp,
    /// When they were last met.
    pub last_seen: Timestamp,
}

/// What [`Store::observe_peer`] found out about a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A key never seen before, under a name no contact uses: added, unverified.
    New(Contact),
    /// A known key: last-seen (and the name, if it changed) updated.
    Known {
        /// The contact after the update.
        contact: Contact,
        /// The name it had before, if the peer now uses another one.
        previous_name: Option<String>,
    },
    /// An unknown key under the name of one or more known contacts. Nothing was stored:
    /// call [`Store::accept_key_change`] or [`Store::add_contact`] once the user decides.
    KeyChanged {
        /// The known contacts using this name (verified ones first).
        known: Vec<Contact>,
        /// The key the peer presented.
        presented_key: PublicKey,
    },
}

/// The result of checking a presented key against a specific contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// The contact's key.
    Matches,
    /// Not the contact's key: the contact's key changed, or this is someone else.
    Changed {
        /// The key on record.
        expected: PublicKey,
        /// Whether the key on record was verified.
        was_verified: bool,
    },
}

/// A key a contact used before a key change was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousKey {
    /// The old key.
    pub public_key: PublicKey,
    /// Whether the old key had been verified.
    pub was_verified: bool,
    /// When it was replaced.
    pub replaced_at: Timestamp,
}

const CONTACT_COLUMNS: &str = "id, public_key, name, verified, verified_at, first_seen, last_seen";

fn contact_from_row(r: &Row<'_>) -> rusqlite::Result<Contact> {
    Ok(Contact {
        id: ContactId(r.get(0)?),
        public_key: key_from_sql(r.get(1)?)?,
        name: r.get(2)?,
        verified: r.get(3)?,
        verified_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
        first_seen: Timestamp(r.get(5)?),
        last_seen: Timestamp(r.get(6)?),
    })
}

impl Store {
    /// Records that a peer with `public_key` calling itself `name` was met at `at`.
    /// Never silently accepts a new key for a known name.
    pub fn observe_peer(
        &mut self,
        public_key: &PublicKey,
        name: &str,
        at: Timestamp,
    ) -> Result<Observation> {
        let tx = self.conn.transaction()?;
        let existing = tx
            .query_row(
                &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE public_key = ?1"),
                [&public_key.0[..]],
                contact_from_row,
            )
            .optional()?;
        let outcome = if let Some(old) = existing {
            tx.execute(
                "UPDATE contacts SET name = ?2, last_seen = max(last_seen, ?3) WHERE id = ?1",
                rusqlite::params![old.id.0, name, at.0],
            )?;
            let contact = tx.query_row(
                &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1"),
                [old.id.0],
                contact_from_row,
            )?;
            let previous_name = (old.name != name).then_some(old.name);
            Observation::Known {
                contact,
                previous_name,
            }
        } else {
            // Names are compared as a person sees them (NFKC, look-alike letters folded,
            // case and spacing ignored), so "Аlice" with a Cyrillic А is Alice's name.
            // Contact lists are small: folding each name here is cheap.
            let known = {
                let mut stmt = tx.prepare(&format!(
                    "SELECT {CONTACT_COLUMNS} FROM contacts
                     ORDER BY verified DESC, last_seen DESC"
                ))?;
                stmt.query_map([], contact_from_row)?
                    .filter(|c| c.as_ref().map_or(true, |c| names_look_alike(&c.name, name)))
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            if known.is_empty() {
                Observation::New(insert_contact(&tx, public_key, name, at)?)
            } else {
                Observation::KeyChanged {
                    known,
                    presented_key: *public_key,
                }
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Adds a contact explicitly (e.g. the user says a same-named peer is someone else).
    pub fn add_contact(
        &mut self,
        public_key: &PublicKey,
        name: &str,
        at: Timestamp,
    ) -> Result<Contact> {
        let tx = self.conn.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM contacts WHERE public_key = ?1)",
            [&public_key.0[..]],
            |r| r.get(0),
        )?;
        if exists {
            return Err(StoreError::InvalidInput(
                "a contact with this key already exists".into(),
            ));
        }
        let c = insert_contact(&tx, public_key, name, at)?;
        tx.commit()?;
        Ok(c)
    }

    /// Checks a key presented by someone claiming to be contact `id`.
    pub fn check_contact_key(&self, id: ContactId, presented: &PublicKey) -> Result<KeyCheck> {
        let c = self.contact(id)?;
        if &c.public_key == presented {
            Ok(KeyCheck::Matches)
        } else {
            Ok(KeyCheck::Changed {
                expected: c.public_key,
                was_verified: c.verified,
            })
        }
    }

    /// The user accepts `new_key` as contact `id`'s key: the old key goes to the
    /// history and the contact becomes unverified (safety numbers must be compared again).
    pub fn accept_key_change(
        &mut self,
        id: ContactId,
        new_key: &PublicKey,
        at: Timestamp,
    ) -> Result<Contact> {
        let tx = self.conn.transaction()?;
        let old = tx
            .query_row(
                &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1"),
                [id.0],
                contact_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NoSuchRecord(format!("contact {}", id.0)))?;
        tx.execute(
            "INSERT INTO contact_key_history (contact, public_key, was_verified, replaced_at)
             VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id.0, &old.public_key.0[..], old.verified, at.0],
        )?;
        tx.execute(
            "UPDATE contacts SET public_key = ?2, verified = 0, verified_at = NULL,
             last_seen = max(last_seen, ?3) WHERE id = ?1",
            rusqlite::params![id.0, &new_key.0[..], at.0],
        )?;
        let c = tx.query_row(
            &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1"),
            [id.0],
            contact_from_row,
        )?;
        tx.commit()?;
        Ok(c)
    }

    /// Sets or clears the verified flag (after comparing safety numbers).
    pub fn set_contact_verified(
        &mut self,
        id: ContactId,
        verified: bool,
        at: Timestamp,
    ) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE contacts SET verified = ?2, verified_at = CASE WHEN ?2 THEN ?3 ELSE NULL END
             WHERE id = ?1",
            rusqlite::params![id.0, verified, at.0],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchRecord(format!("contact {}", id.0)));
        }
        Ok(())
    }

    /// One contact.
    pub fn contact(&self, id: ContactId) -> Result<Contact> {
        self.conn
            .query_row(
                &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1"),
                [id.0],
                contact_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NoSuchRecord(format!("contact {}", id.0)))
    }

    /// The contact with this key, if any.
    pub fn contact_by_key(&self, public_key: &PublicKey) -> Result<Option<Contact>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE public_key = ?1"),
                [&public_key.0[..]],
                contact_from_row,
            )
            .optional()?)
    }

    /// All contacts, by name.
    pub fn contacts(&self) -> Result<Vec<Contact>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY name, id"
        ))?;
        let rows = stmt.query_map([], contact_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Keys contact `id` used before, oldest first.
    pub fn contact_key_history(&self, id: ContactId) -> Result<Vec<PreviousKey>> {
        let mut stmt = self.conn.prepare(
            "SELECT public_key, was_verified, replaced_at FROM contact_key_history
             WHERE contact = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id.0], |r| {
            Ok(PreviousKey {
                public_key: key_from_sql(r.get(0)?)?,
                was_verified: r.get(1)?,
                replaced_at: Timestamp(r.get(2)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Forgets a contact (and its key history).
    pub fn remove_contact(&mut self, id: ContactId) -> Result<()> {
        let n = self
            .conn
            .execute("DELETE FROM contacts WHERE id = ?1", [id.0])?;
        if n == 0 {
            return Err(StoreError::NoSuchRecord(format!("contact {}", id.0)));
        }
        Ok(())
    }
}

fn insert_contact(
    tx: &rusqlite::Transaction<'_>,
    public_key: &PublicKey,
    name: &str,
    at: Timestamp,
) -> Result<Contact> {
    tx.execute(
        "INSERT INTO contacts (public_key, name, verified, first_seen, last_seen)
         VALUES (?1, ?2, 0, ?3, ?3)",
        rusqlite::params![&public_key.0[..], name, at.0],
    )?;
    Ok(Contact {
        id: ContactId(tx.last_insert_rowid()),
        public_key: *public_key,
        name: name.to_owned(),
        verified: false,
        verified_at: None,
        first_seen: at,
        last_seen: at,
    })
}
