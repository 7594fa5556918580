//! The node's typed API: commands in, events out. Every front end (the `salon` command
//! line, the desktop app) uses exactly this.

use salon_audio::{InputSpec, OutputSpec};
use std::path::PathBuf;

pub use salon_proto::{Action, LeftReason, Role};
pub use salon_store::{Settings, Theme};

use salon_proto::{PublicKey, RoomView};

use crate::error::NodeError;
use serde::Serialize;

/// Something to do.
#[derive(Debug)]
pub enum Command {
    /// Open a room with us as host; replies with the invite.
    Host {
        /// Room title.
        title: String,
    },
    /// Join the room of an invite string.
    Join {
        /// The invite text.
        invite: String,
    },
    /// Leave the room (a host hands it over).
    Leave,
    /// End the room for everyone (host).
    EndRoom,
    /// Revoke the invite of the room we host: the old one admits nobody from now on; the
    /// room goes on. Replies with the new invite (also sent as
    /// [`NodeEvent::InviteChanged`]).
    RevokeInvite,
    /// Mute or unmute our microphone.
    SetMuted(bool),
    /// Raise or lower our hand.
    SetHand(bool),
    /// A moderator action on someone. By key, never by name: a name is whatever its
    /// owner chose, even someone else's key (front ends that take typed names resolve
    /// them with [`find_member`] first).
    Moderate {
        /// The member's static key.
        key: PublicKey,
        /// What to do.
        action: Action,
    },
    /// Answer the stage invitation of the last [`NodeEvent::StageInvited`]: `true` goes on
    /// stage (the microphone reaches the room once the host has made us a speaker, with
    /// [`NodeEvent::RoleChanged`]), `false` stays in the audience.
    AnswerStageInvite {
        /// Accept (true) or decline (false).
        accept: bool,
    },
    /// Send a chat line.
    Chat(String),
    /// Switch the microphone source.
    SetInput(InputSpec),
    /// Switch the output.
    SetOutput(OutputSpec),
    /// Volume of one speaker, 0.0–2.0.
    SetPeerVolume {
        /// The speaker's static key.
        key: PublicKey,
        /// Gain.
        volume: f32,
    },
    /// Mark a contact as verified (safety numbers compared) or not.
    VerifyContact {
        /// Their static key.
        key: PublicKey,
        /// Verified or not.
        verified: bool,
    },
    /// The current room.
    Status,
    /// A page of past rooms, newest first.
    HistoryRooms {
        /// Only rooms with a smaller id (the last one shown), for paging.
        before: Option<i64>,
        /// Page size (at most 200).
        limit: u32,
    },
    /// A page of one past room's chat, newest first.
    HistoryChat {
        /// The room's history id.
        room: i64,
        /// Only messages with a smaller id, for paging.
        before: Option<i64>,
        /// Page size (at most 500).
        limit: u32,
    },
    /// Everyone we have met, with verified marks.
    Contacts,
    /// The safety number to compare with someone: in the room, or a contact met before.
    SafetyNumber {
        /// Their static key.
        key: PublicKey,
    },
    /// The audio devices present.
    Devices,
    /// The saved settings.
    GetSettings,
    /// Saves settings and applies them now (devices, noise suppression, echo
    /// cancellation, push-to-talk).
    SetSettings(Settings),
    /// Reports microphone levels outside a room too (the settings screen's meter).
    MicTest(bool),
    /// Plays a short chime on the output device.
    TestSound,
    /// Push-to-talk key pressed or released (only matters while push-to-talk is set).
    PushToTalk(bool),
    /// Re-encrypts the history under a new passphrase.
    ChangePassphrase {
        /// The current passphrase, checked first.
        old: String,
        /// The new one.
        new: String,
    },
    /// Writes an encrypted backup of the history (same passphrase).
    ExportBackup {
        /// Where; `None` picks a dated file in the documents folder.
        path: Option<PathBuf>,
    },
}

/// The answer to a command.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Done.
    Ok,
    /// The invite of the room we host.
    Invite {
        /// Invite text.
        invite: String,
    },
    /// The room, if any.
    Room {
        /// The room.
        room: Option<RoomInfo>,
    },
    /// A page of past rooms.
    HistoryRooms {
        /// Newest first.
        rooms: Vec<HistoryRoom>,
    },
    /// A page of chat.
    HistoryChat {
        /// Newest first.
        messages: Vec<HistoryMessage>,
    },
    /// Contacts.
    Contacts {
        /// Most recently seen first.
        contacts: Vec<ContactInfo>,
    },
    /// A safety number.
    SafetyNumber(SafetyNumberInfo),
    /// Audio devices.
    Devices(DeviceList),
    /// Settings (as saved).
    Settings(Settings),
    /// A file written.
    Path {
        /// Where.
        path: PathBuf,
    },
}

/// One stay of one person in a past room.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryParticipant {
    /// Hex static key.
    pub key: String,
    /// The name they gave.
    pub name: String,
    /// Their last role in that stay.
    pub role: Role,
    /// Unix milliseconds.
    pub joined_at: i64,
    /// Unix milliseconds; `None` while still there.
    pub left_at: Option<i64>,
}

/// A past (or current) room.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRoom {
    /// History id, for [`Command::HistoryChat`] and paging.
    pub id: i64,
    /// Title.
    pub title: String,
    /// We hosted it.
    pub hosted: bool,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Unix milliseconds; `None` while open.
    pub ended_at: Option<i64>,
    /// Who was there, in order of arrival (one entry per stay).
    pub participants: Vec<HistoryParticipant>,
    /// Chat lines kept.
    pub message_count: u64,
}

/// A chat line from history.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryMessage {
    /// History id, for paging.
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// Sender's hex key.
    pub from: String,
    /// Sender's name then.
    pub name: String,
    /// The text.
    pub text: String,
    /// We sent it.
    pub mine: bool,
}

/// Someone we have met.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactInfo {
    /// Hex static key.
    pub key: String,
    /// The name they last gave.
    pub name: String,
    /// Safety numbers compared for this key.
    pub verified: bool,
    /// They came with another key before (a new device, or someone else).
    pub key_changed: bool,
    /// 60 digits, no separators.
    pub safety_number: String,
    /// Unix milliseconds.
    pub last_seen: Option<i64>,
}

/// The number two people compare to know no one sits between them.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SafetyNumberInfo {
    /// Their hex key.
    pub key: String,
    /// Their name.
    pub name: String,
    /// 60 digits, no separators.
    pub safety_number: String,
    /// Already marked verified.
    pub verified: bool,
}

/// Audio devices by name.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceList {
    /// Capture devices; the default first.
    pub inputs: Vec<String>,
    /// Playback devices; the default first.
    pub outputs: Vec<String>,
}

/// A member as front ends show it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberInfo {
    /// Hex static key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// host, moderator, speaker or listener.
    pub role: Role,
    /// Hand raised.
    pub hand_raised: bool,
    /// Microphone muted.
    pub muted: bool,
    /// This is us.
    pub me: bool,
}

/// A room as front ends show it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomInfo {
    /// Title.
    pub title: String,
    /// Epoch (changes on every leave/removal/host change).
    pub epoch: u64,
    /// The code members read aloud to each other.
    pub safety_code: String,
    /// Hex key of the host.
    pub host: String,
    /// Everyone.
    pub members: Vec<MemberInfo>,
}

/// Speaking level of one person.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerLevel {
    /// Hex key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// RMS level in dBFS.
    pub rms_dbfs: f32,
    /// Voice activity.
    pub speaking: bool,
}

/// Link quality to one person.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkInfo {
    /// Hex key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Round-trip time in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Audio frames received.
    pub audio_received: u64,
    /// Audio frames lost on the way.
    pub audio_lost: u64,
    /// Jitter-buffer target delay in milliseconds.
    pub jitter_buffer_ms: Option<u32>,
    /// Share of *our* audio this member loses, per thousand: its reception reports
    /// smoothed (`loss_feedback`: the first counts half, then a quarter each). `None`
    /// until it reports, i.e. while we are not on stage. Our encoder protects the worst.
    pub reported_loss_permille: Option<u16>,
    /// Whether an encrypted session is up.
    pub up: bool,
    /// How datagrams reach them while up: straight, or relayed by another member.
    pub path: Option<PathKind>,
    /// Hex key of the member relaying, when relayed.
    pub via: Option<String>,
}

/// How datagrams reach a member.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    /// Straight between the two of us (through any NATs, hole punched).
    Direct,
    /// Through another member, who forwards the encrypted datagrams unread.
    Relayed,
}

/// Something front ends should know.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NodeEvent {
    /// The node listens on this address.
    Listening {
        /// Local socket address.
        addr: String,
    },
    /// We host a room; share this invite.
    Hosting {
        /// Invite text.
        invite: String,
    },
    /// We are in the room.
    Joined {
        /// The room.
        room: RoomInfo,
    },
    /// Joining failed.
    JoinFailed {
        /// What happened and what to do.
        message: String,
    },
    /// The room changed.
    Room {
        /// The room now.
        room: RoomInfo,
    },
    /// Our role changed.
    RoleChanged {
        /// The new role.
        role: Role,
    },
    /// A moderator muted us.
    MutedByModerator,
    /// A moderator invites us on stage. Nothing changes until we answer with
    /// [`Command::AnswerStageInvite`] (within a minute): the microphone stays off the air.
    StageInvited {
        /// Hex key of the moderator who invited us.
        key: String,
        /// Their display name.
        name: String,
    },
    /// We host the room and a listener declined a stage invitation (ours or a
    /// moderator's).
    StageInviteDeclined {
        /// Hex key of the listener who declined.
        key: String,
        /// Their display name.
        name: String,
        /// Hex key of whoever sent the invitation.
        by: String,
    },
    /// The stage invitation we were shown lapsed unanswered: the prompt goes.
    StageInviteLapsed {
        /// Hex key of the moderator who had invited us.
        key: String,
        /// Their display name.
        name: String,
    },
    /// We host the room and a listener did not answer a stage invitation (ours or a
    /// moderator's) within a minute; it is void.
    StageInviteUnanswered {
        /// Hex key of the listener.
        key: String,
        /// Their display name.
        name: String,
        /// Hex key of whoever sent the invitation.
        by: String,
    },
    /// A chat line.
    Chat {
        /// Sender's hex key.
        from: String,
        /// Sender's name.
        name: String,
        /// The text.
        text: String,
    },
    /// Speaking levels.
    Levels {
        /// Our microphone.
        input_dbfs: f32,
        /// Whether our microphone reaches the room.
        transmitting: bool,
        /// Everyone we hear.
        peers: Vec<PeerLevel>,
    },
    /// Link quality per person.
    Links {
        /// One entry per person.
        links: Vec<LinkInfo>,
    },
    /// The first audio frame from this person arrived (they are audible from now on).
    FirstAudio {
        /// Hex key.
        key: String,
    },
    /// A link came up.
    LinkUp {
        /// Hex key.
        key: String,
    },
    /// A link went down.
    LinkDown {
        /// Hex key.
        key: String,
    },
    /// The path to a member changed.
    LinkPath {
        /// Hex key.
        key: String,
        /// Display name.
        name: String,
        /// Direct or relayed.
        path: PathKind,
        /// Hex key of the relaying member, when relayed.
        via: Option<String>,
        /// Display name of the relaying member, when relayed.
        via_name: Option<String>,
    },
    /// The home router forwards our port (UPnP-IGD, NAT-PMP or PCP): people outside can
    /// reach us at `external`; `None` when a mapping went away.
    PortMapping {
        /// Our public address and port, while mapped.
        external: Option<String>,
    },
    /// No connection to a member could be made for a while (attempts go on).
    Unreachable {
        /// Hex key.
        key: String,
        /// Display name.
        name: String,
        /// Why, and what can be done.
        message: String,
    },
    /// The host changed; `invite` is set when we are the new host.
    HostChanged {
        /// Hex key of the new host.
        host: String,
        /// Our new invite.
        invite: Option<String>,
    },
    /// We host the room and its invite changed: the old one admits nobody any more (the
    /// host does not answer it), so share this one instead. Members are not affected.
    InviteChanged {
        /// The new invite text.
        invite: String,
        /// Why it changed.
        reason: InviteReason,
    },
    /// We are out of the room.
    Left {
        /// Why.
        reason: LeftReason,
    },
    /// An audio device changed or failed.
    Audio {
        /// What happened.
        message: String,
    },
    /// A contact's key changed since we last met them: never accepted silently.
    KeyChanged {
        /// Their name.
        name: String,
        /// Hex of the new key.
        key: String,
    },
    /// Something went wrong in the background.
    Error {
        /// Stable code.
        code: &'static str,
        /// What happened and what to do.
        message: String,
    },
}

/// A static key from its 64 hex digits, as events and contacts give it.
pub fn parse_key(text: &str) -> Result<PublicKey, NodeError> {
    let t = text.trim();
    let bad = || NodeError::BadKey(t.to_owned());
    let mut key = [0u8; 32];
    hex::decode_to_slice(t, &mut key).map_err(|_| bad())?;
    Ok(PublicKey(key))
}

/// The member of `members` someone typed: a whole key first (a name can never stand in
/// for another member's key), else a name as a person reads it (look-alikes folded),
/// else a key prefix of at least 4 hex digits. A text that fits several members, by
/// name and prefix together, is ambiguous.
pub fn find_member(members: &[MemberInfo], typed: &str) -> Result<PublicKey, NodeError> {
    let t = typed.trim();
    let keys = || members.iter().filter_map(|m| parse_key(&m.key).ok());
    if let Ok(k) = parse_key(t) {
        return keys()
            .find(|m| *m == k)
            .ok_or_else(|| NodeError::NoSuchMember(t.to_owned()));
    }
    let lower = t.to_ascii_lowercase();
    let mut found: Vec<PublicKey> = members
        .iter()
        .filter(|m| salon_proto::roster::names_look_alike(&m.name, t))
        .filter_map(|m| parse_key(&m.key).ok())
        .collect();
    if t.len() >= 4 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        found.extend(keys().filter(|k| hex(k).starts_with(&lower)));
    }
    found.sort_unstable();
    found.dedup();
    match found.as_slice() {
        [k] => Ok(*k),
        [] => Err(NodeError::NoSuchMember(t.to_owned())),
        _ => Err(NodeError::AmbiguousMember(t.to_owned())),
    }
}

/// A key as front ends spell it: 64 lower-case hex digits.
pub fn hex(key: &PublicKey) -> String {
    hex::encode(key.as_bytes())
}

/// Why the invite of the room we host changed.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteReason {
    /// Someone was removed: they held the old invite.
    Removal,
    /// We revoked it.
    Revoked,
}

/// Converts the protocol's room view for front ends.
pub fn room_info(v: &RoomView, me: &PublicKey) -> RoomInfo {
    RoomInfo {
        title: v.title.clone(),
        epoch: v.epoch,
        safety_code: v.safety_code.to_string(),
        host: hex(&v.host),
        members: v
            .members
            .iter()
            .map(|m| MemberInfo {
                key: hex(&m.key),
                name: m.name.clone(),
                role: m.role,
                hand_raised: m.hand_raised,
                muted: m.muted,
                me: m.key == *me,
            })
            .collect(),
    }
}

/// Why an `--input` or `--output` text names no audio source or sink.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioSpecError {
    /// `tone:` followed by something that is not a positive frequency.
    #[error("bad tone frequency in \"{0}\"; try tone:440")]
    BadTone(String),
    /// `device:` with no name after it.
    #[error("\"{0}\" names no device; use device for the default or device:NAME")]
    NoDeviceName(String),
    /// Not a source this build knows.
    #[error(
        "unknown input \"{0}\"; use device, device:NAME, tone:HZ, silence, none or a .wav file"
    )]
    UnknownInput(String),
    /// Not a sink this build knows.
    #[error("unknown output \"{0}\"; use device, device:NAME, null or a .wav file")]
    UnknownOutput(String),
}

/// The device `device:NAME` names; `None` when `s` is not of that form.
fn device_name(s: &str) -> Option<Result<String, AudioSpecError>> {
    let name = s.strip_prefix("device:")?;
    Some(if name.trim().is_empty() {
        Err(AudioSpecError::NoDeviceName(s.to_owned()))
    } else {
        Ok(name.to_owned())
    })
}

/// Parses an audio source: `device`, `device:NAME`, `tone:HZ`, `silence`, `none` or a
/// path ending in `.wav`.
pub fn parse_input(s: &str) -> Result<InputSpec, AudioSpecError> {
    if let Some(name) = device_name(s) {
        return Ok(InputSpec::Device(Some(name?)));
    }
    Ok(match s {
        "device" => InputSpec::Device(None),
        "silence" => InputSpec::Silence,
        "none" => InputSpec::None,
        _ if s.starts_with("tone:") => {
            let hz: f32 = s["tone:".len()..]
                .parse()
                .ok()
                .filter(|hz: &f32| hz.is_finite() && *hz > 0.0)
                .ok_or_else(|| AudioSpecError::BadTone(s.to_owned()))?;
            InputSpec::Tone(hz, 0.3)
        }
        _ if s.ends_with(".wav") => InputSpec::Wav(std::path::PathBuf::from(s)),
        _ => return Err(AudioSpecError::UnknownInput(s.to_owned())),
    })
}

/// Parses an audio output: `device`, `device:NAME`, `null` or a path ending in `.wav`.
pub fn parse_output(s: &str) -> Result<OutputSpec, AudioSpecError> {
    if let Some(name) = device_name(s) {
        return Ok(OutputSpec::Device(Some(name?)));
    }
    Ok(match s {
        "device" => OutputSpec::Device(None),
        "null" => OutputSpec::Null,
        _ if s.ends_with(".wav") => OutputSpec::Wav(std::path::PathBuf::from(s)),
        _ => return Err(AudioSpecError::UnknownOutput(s.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(key: [u8; 32], name: &str) -> MemberInfo {
        MemberInfo {
            key: hex(&PublicKey(key)),
            name: name.into(),
            role: Role::Listener,
            hand_raised: false,
            muted: false,
            me: false,
        }
    }

    /// Before, names were looked up first: a member who took another member's key as
    /// display name captured every command typed with that key.
    #[test]
    fn a_name_that_spells_another_members_key_does_not_capture_it() {
        let victim = [0xab; 32];
        let members = [
            member(victim, "Ada"),
            member([0x11; 32], &hex(&PublicKey(victim))),
        ];
        assert_eq!(
            find_member(&members, &hex(&PublicKey(victim))).unwrap(),
            PublicKey(victim)
        );
        // Upper case and spaces around are the same key.
        let upper = format!("  {}  ", hex(&PublicKey(victim)).to_uppercase());
        assert_eq!(find_member(&members, &upper).unwrap(), PublicKey(victim));
        // A name that is a prefix of someone's key is ambiguous, not the name's owner.
        let members = [member(victim, "Ada"), member([0x11; 32], "abab")];
        assert!(matches!(
            find_member(&members, "abab"),
            Err(NodeError::AmbiguousMember(_))
        ));
    }

    #[test]
    fn typed_names_fold_look_alikes_and_key_prefixes_need_four_digits() {
        let members = [member([0xab; 32], "Ada"), member([0x11; 32], "Bo")];
        assert_eq!(find_member(&members, "ada").unwrap(), PublicKey([0xab; 32]));
        assert_eq!(
            find_member(&members, "1111").unwrap(),
            PublicKey([0x11; 32])
        );
        assert!(matches!(
            find_member(&members, "111"),
            Err(NodeError::NoSuchMember(_))
        ));
        // A whole key of someone not in the room is not someone else.
        assert!(matches!(
            find_member(&members, &hex(&PublicKey([0x22; 32]))),
            Err(NodeError::NoSuchMember(_))
        ));
    }

    #[test]
    fn audio_specs_parse_or_say_which_part_is_wrong() {
        assert!(matches!(parse_input("tone:440"), Ok(InputSpec::Tone(hz, _)) if hz == 440.0));
        assert!(matches!(
            parse_input("device:USB Mic"),
            Ok(InputSpec::Device(Some(n))) if n == "USB Mic"
        ));
        assert!(matches!(parse_output("null"), Ok(OutputSpec::Null)));
        for bad in ["tone:loud", "tone:-5", "tone:NaN"] {
            assert_eq!(
                parse_input(bad).err(),
                Some(AudioSpecError::BadTone(bad.into()))
            );
        }
        // Before, an empty name became a device called "".
        assert_eq!(
            parse_input("device:").err(),
            Some(AudioSpecError::NoDeviceName("device:".into()))
        );
        assert_eq!(
            parse_output("device: ").err(),
            Some(AudioSpecError::NoDeviceName("device: ".into()))
        );
        assert_eq!(
            parse_input("mic").err(),
            Some(AudioSpecError::UnknownInput("mic".into()))
        );
        assert_eq!(
            parse_output("speakers").err(),
            Some(AudioSpecError::UnknownOutput("speakers".into()))
        );
    }

    #[test]
    fn a_key_is_exactly_64_hex_digits() {
        assert_eq!(parse_key(&"0f".repeat(32)).unwrap(), PublicKey([0x0f; 32]));
        for bad in [
            "",
            "0f",
            &"0f".repeat(31),
            &format!("+f{}", "0f".repeat(31)),
            &"zz".repeat(32),
        ] {
            assert!(matches!(parse_key(bad), Err(NodeError::BadKey(_))), "{bad}");
        }
    }
}
