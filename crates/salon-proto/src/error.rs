//! Errors returned to the application for commands it gives the endpoint. Network input
//! never produces an error: bad datagrams are dropped silently.

/// Why a command was refused. Each message tells the user what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The command needs a room and there is none.
    #[error("you are not in a room; join or start one first")]
    NotInRoom,
    /// Hosting or joining while already in a room.
    #[error("you are already in a room; leave it first")]
    AlreadyInRoom,
    /// Only the host can do this.
    #[error("only the host can do this")]
    NotHost,
    /// The member's role does not allow this.
    #[error("only the host or a moderator can do this")]
    NotPermitted,
    /// Sending audio from the audience.
    #[error("you are in the audience; raise your hand to be invited on stage")]
    NotOnStage,
    /// The target is not in the room.
    #[error("that person is no longer in the room")]
    UnknownMember,
    /// The display name is empty, too long or has control characters.
    #[error("choose a display name of 1 to 64 characters")]
    InvalidName,
    /// The title is empty, too long or has control characters.
    #[error("choose a room title of 1 to 128 characters")]
    InvalidTitle,
    /// Chat text empty or longer than the limit.
    #[error("a chat message must have 1 to 2000 bytes of text")]
    InvalidChat,
    /// An audio frame larger than an audio datagram carries.
    #[error("audio frame of {0} bytes is larger than the {max} allowed", max = crate::frame::MAX_AUDIO_FRAME)]
    AudioFrameTooLarge(usize),
    /// More chat messages than the room allows in a short time (`allowance::CHAT_BURST`,
    /// then one every `allowance::CHAT_EVERY`): the others would drop them.
    #[error("you are sending chat messages too fast; wait a moment and send again")]
    ChatTooFast,
    /// The reliable channel to a peer is full (the peer is not acknowledging).
    #[error("too much unsent data to a member; the connection may be failing")]
    Backlog,
    /// Answering a stage invitation when there is none (never sent, already answered,
    /// lapsed, or void because our role or the host changed).
    #[error("nobody is inviting you on stage now (the invitation may have lapsed)")]
    NoStageInvite,
    /// The invite's host key is a small-order X25519 point (see
    /// [`crate::invite::InviteError::WeakHostKey`]).
    #[error("the invite's host key is invalid; ask the host for a new invite")]
    WeakHostKey,
    /// The room is still being joined.
    #[error("still joining the room; wait until it opens")]
    StillJoining,
}
