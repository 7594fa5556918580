//! The user's own identity (long-term X25519 static key) and profile.

use rusqlite::OptionalExtension;
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::types::{PublicKey, Timestamp, key_from_sql};

/// The user's long-term static key pair. The secret is wiped from memory on drop.
pub struct Identity {
    /// The X25519 static secret.
    pub secret_key: Zeroizing<[u8; 32]>,
    /// The matching public key.
    pub public_key: PublicKey,
    /// When the identity was created.
    pub created_at: Timestamp,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public_key", &self.public_key)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The stored identity, if one was set.
    pub fn identity(&self) -> Result<Option<Identity>> {
        let row = self
            .conn
            .query_row(
                "SELECT secret_key, public_key, created_at FROM identity WHERE id = 1",
                [],
                |r| {
                    let secret: Zeroizing<Vec<u8>> = Zeroizing::new(r.get(0)?);
                    let public = key_from_sql(r.get(1)?)?;
                    Ok((secret, public, r.get::<_, i64>(2)?))
                },
            )
            .optional()?;
        let Some((secret, public_key, created_at)) = row else {
            return Ok(None);
        };
        let mut secret_key = Zeroizing::new([0u8; 32]);
        if secret.len() != 32 {
            return Err(StoreError::corrupt(
                "stored identity secret is not 32 bytes",
            ));
        }
        secret_key.copy_from_slice(&secret);
        Ok(Some(Identity {
            secret_key,
            public_key,
            created_at: Timestamp(created_at),
        }))
    }

    /// Stores the identity. Refuses to replace an existing one ([`StoreError::IdentityExists`]):
    /// losing the static key would change the user's safety number for every contact.
    pub fn set_identity(
        &mut self,
        secret_key: &[u8; 32],
        public_key: &PublicKey,
        created_at: Timestamp,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let exists: bool =
            tx.query_row("SELECT EXISTS(SELECT 1 FROM identity)", [], |r| r.get(0))?;
        if exists {
            return Err(StoreError::IdentityExists);
        }
        tx.execute(
            "INSERT INTO identity (id, secret_key, public_key, created_at) VALUES (1, ?1, ?2, ?3)",
            rusqlite::params![&secret_key[..], &public_key.0[..], created_at.0],
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
