//! Salon's encrypted local history.
//!
//! Everything Salon remembers — the user's identity and profile, contacts, rooms,
//! participants, chat and settings — lives in one SQLCipher database on the user's
//! machine. The database key is derived from the passphrase with Argon2id (parameters
//! and salt in a small header file beside the database) and handed to SQLCipher as a raw
//! key. The file stays a plain SQLCipher file that the stock `sqlcipher` shell opens
//! given that raw key (see [`CIPHER_SETTINGS`]).
//!
//! # Files
//!
//! For a database at `salon.db`: `salon.db` (SQLCipher), `salon.db-wal` and
//! `salon.db-shm` (SQLite's log, encrypted, and its index), `salon.db.header` (Argon2id
//! parameters, salt, key-check value, checksum; text) and `salon.db.lock` (held while a
//! Salon has the history open). A passphrase change briefly adds `salon.db.rekey-tmp`
//! and `salon.db.header-next`. Back up the database and its header together.
//!
//! # Telling errors apart
//!
//! The header's key-check value tells a wrong passphrase ([`StoreError::WrongPassphrase`],
//! found before the database is read) from a damaged file ([`StoreError::Corrupt`]: the
//! key is right but SQLCipher cannot authenticate a page). A damaged header fails its
//! checksum and is also `Corrupt`. On open every page's HMAC is checked
//! ([`OpenOptions::verify_on_open`]), so damage anywhere is found at once.
//!
//! The API is synchronous: the node owns a [`Store`] on a dedicated thread, never on the
//! audio callback or the network path.
//!
//! ```no_run
//! use salon_store::{KdfParams, Store};
//! # fn main() -> Result<(), salon_store::StoreError> {
//! let path = std::path::Path::new("salon.db");
//! let mut store = Store::create(path, "correct horse battery staple", KdfParams::default())?;
//! store.set_display_name("Ada")?;
//! drop(store);
//! let store = Store::open(path, "correct horse battery staple")?;
//! assert_eq!(store.display_name()?.as_deref(), Some("Ada"));
//! # Ok(()) }
//! ```

mod chat;
mod contacts;
mod error;
mod identity;
mod key;
pub mod keychain;
mod lock;
pub mod migrations;
mod rooms;
mod settings;
mod store;
mod types;

pub use chat::{ChatMessage, MAX_MESSAGE_BYTES, MessageId, NewMessage, Page};
pub use contacts::{Contact, ContactId, KeyCheck, Observation, PreviousKey};
pub use error::{Result, StoreError};
pub use identity::Identity;
pub use key::{HEADER_VERSION, Header, KEY_LEN, KdfParams, RawKey, SALT_LEN};
pub use rooms::{NewRoom, Participant, ParticipantId, Role, RoleChange, Room, RoomId};
pub use settings::{Settings, Theme};
pub use store::{CIPHER_SETTINGS, OpenOptions, Store, StoreFiles, Unlock};
pub use types::{PublicKey, Timestamp};
