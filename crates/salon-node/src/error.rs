//! The node's error type: one variant per thing a user can hit, each saying what to do.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a node command or start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The encrypted history refused (wrong passphrase, locked, corrupt, disk full, …).
    #[error("{0}")]
    Store(#[from] salon_store::StoreError),
    /// The audio device path failed.
    #[error("{0}")]
    Audio(#[from] salon_audio::AudioError),
    /// The invite text is not a valid invite.
    #[error("bad invite: {0}")]
    Invite(#[from] salon_proto::InviteError),
    /// The protocol refused the command (not in a room, not permitted, …).
    #[error("{0}")]
    Command(#[from] salon_proto::CommandError),
    /// No identity yet in this data directory.
    #[error("no Salon identity in {0}; create one with `salon init`")]
    NoIdentity(PathBuf),
    /// The UDP port is taken.
    #[error(
        "cannot listen on {addr}: {source}; choose another port with --bind or stop the other program"
    )]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// No member matches the name or key given.
    #[error("nobody called \"{0}\" is in the room")]
    NoSuchMember(String),
    /// Not a whole static key.
    #[error("\"{0}\" is not a member key (64 hex digits)")]
    BadKey(String),
    /// Several members match.
    #[error("\"{0}\" matches several people; use more of their name or key")]
    AmbiguousMember(String),
    /// The display name is unusable.
    #[error("choose a display name of 1 to 64 characters")]
    InvalidName,
    /// The passphrase is too short.
    #[error(
        "choose a passphrase of at least {} characters",
        crate::profile::MIN_PASSPHRASE_CHARS
    )]
    WeakPassphrase,
    /// A device named in the settings is not there.
    #[error("there is no {direction} device called \"{name}\"; plug it in or choose another")]
    NoSuchDevice {
        /// input or output.
        direction: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The output is a file or discarded, so a test sound has nowhere to play.
    #[error("the output is not a sound device (it is a file or muted); nothing to play")]
    NoOutputDevice,
    /// The node has stopped.
    #[error("Salon has stopped")]
    Stopped,
    /// Some other I/O failure (data directory, passphrase file).
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl NodeError {
    /// A stable machine-readable code for front ends (`{code, message}`).
    pub fn code(&self) -> &'static str {
        use salon_store::StoreError as S;
        match self {
            NodeError::Store(S::WrongPassphrase) | NodeError::Store(S::WrongKey) => {
                "wrong_passphrase"
            }
            NodeError::Store(S::Locked) => "locked",
            NodeError::Store(S::DiskFull) => "disk_full",
            NodeError::Store(S::Corrupt { .. }) => "corrupt",
            NodeError::Store(S::NewerVersion { .. }) => "newer_version",
            NodeError::Store(S::NotFound(_)) | NodeError::NoIdentity(_) => "no_identity",
            NodeError::Store(_) => "store",
            NodeError::Audio(_) | NodeError::NoSuchDevice { .. } | NodeError::NoOutputDevice => {
                "audio"
            }
            NodeError::WeakPassphrase => "weak_passphrase",
            NodeError::Invite(_) => "bad_invite",
            NodeError::Command(_) => "not_allowed",
            NodeError::Bind { .. } => "port_in_use",
            NodeError::NoSuchMember(_) | NodeError::AmbiguousMember(_) | NodeError::BadKey(_) => {
                "no_such_member"
            }
            NodeError::InvalidName => "invalid_name",
            NodeError::Stopped => "stopped",
            NodeError::Io { .. } => "io",
        }
    }
}
