//! The user's own identity (long-term X25519 static key) and profile.

use rusqlite::OptionalExtension;
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::types::{Timestamp, key_from_sql};

/// The user's long-term static key pair: the protocol's type (its secret is wiped from
/// memory on drop), stored with when it was made.
pub use salon_proto::Identity;

impl Store {
    /// The stored identity, if one was set.
    pub fn identity(&self) -> Result<Option<Identity>> {
        let row = self
            .conn
            .query_row(
                "SELECT secret_key, public_key FROM identity WHERE id = 1",
                [],
                |r| {
                    let secret: Zeroizing<Vec<u8>> = Zeroizing::new(r.get(0)?);
                    Ok((secret, key_from_sql(r.get(1)?)?))
                },
            )
            .optional()?;
        let Some((secret, public_key)) = row else {
            return Ok(None);
        };
        if secret.len() != 32 {
            return Err(StoreError::corrupt(
                "stored identity secret is not 32 bytes",
            ));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&secret);
        let identity = Identity::from_secret_bytes(*bytes);
        // The key column is what rooms and chat refer to; it must be this secret's key.
        if identity.public_key() != public_key {
            return Err(StoreError::corrupt(
                "stored identity key does not match its secret",
            ));
        }
        Ok(Some(identity))
    }

    /// Stores the identity. Refuses to replace an existing one ([`StoreError::IdentityExists`]):
    /// losing the static key would change the user's safety number for every contact.
    pub fn set_identity(&mut self, identity: &Identity, created_at: Timestamp) -> Result<()> {
        let tx = self.conn.transaction()?;
        let exists: bool =
            tx.query_row("SELECT EXISTS(SELECT 1 FROM identity)", [], |r| r.get(0))?;
        if exists {
            return Err(StoreError::IdentityExists);
        }
        tx.execute(
            "INSERT INTO identity (id, secret_key, public_key, created_at) VALUES (1, ?1, ?2, ?3)",
            rusqlite::params![
                &identity.secret_bytes()[..],
                &identity.public_key().0[..],
                created_at.0
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The display name the user shows to others, if set.
    pub fn display_name(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT display_name FROM profile WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Sets the user's display name.
    pub fn set_display_name(&mut self, name: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO profile (id, display_name) VALUES (1, ?1)
             ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name",
            [name],
        )?;
        Ok(())
    }
}
