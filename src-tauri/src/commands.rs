//! Tauri commands: one per node command, each a thin mapping onto `salon-node`.

use std::path::PathBuf;

use salon_node::api::{
    ContactInfo, DeviceList, HistoryMessage, HistoryRoom, SafetyNumberInfo, Settings, parse_key,
};
use salon_node::{
    Action, Command, Node, NodeConfig, NodeEvent, Reply, RoomInfo, parse_input, parse_output,
    profile,
};
use salon_store::KdfParams;
use serde::Serialize;
use tauri::{AppHandle, Emitter, State};
use tokio::sync::Mutex;

use crate::error::ApiError;
use crate::talk_key::{GlobalTalkKey, TalkKeyReach};

/// Name of the Tauri event that carries every [`NodeEvent`].
pub const EVENT: &str = "salon://event";

/// What the app holds: where the data lives and, once unlocked, the running node.
pub struct AppState {
    /// The data directory (app data folder, or `SALON_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The node, after unlock.
    pub node: Mutex<Option<Node>>,
}

/// Whether a profile exists and whether it is unlocked.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct ProfileStatus {
    /// An identity exists in the data directory.
    pub exists: bool,
    /// The node is running.
    pub unlocked: bool,
}

/// The unlocked profile.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct ProfileInfo {
    /// Display name.
    pub name: String,
    /// Fingerprint of our key, for comparing with contacts.
    pub fingerprint: String,
}

fn audio_from_env(cfg: &mut NodeConfig) -> Result<(), ApiError> {
    // Tests and headless use pick the audio ends and the socket through the environment;
    // people get the default devices (and change them in settings) and any free port.
    if let Ok(i) = std::env::var("SALON_INPUT") {
        cfg.input = parse_input(&i).map_err(|e| ApiError::new("audio", e.to_string()))?;
    }
    if let Ok(o) = std::env::var("SALON_OUTPUT") {
        cfg.output = parse_output(&o).map_err(|e| ApiError::new("audio", e.to_string()))?;
    }
    if let Ok(b) = std::env::var("SALON_BIND") {
        cfg.bind = b.parse().map_err(|_| {
            ApiError::new("bad_request", format!("SALON_BIND is not an address: {b}"))
        })?;
    }
    Ok(())
}

async fn start_node(
    app: &AppHandle,
    state: &AppState,
    prof: profile::Profile,
) -> Result<ProfileInfo, ApiError> {
    let info = ProfileInfo {
        name: prof.name.clone(),
        fingerprint: prof.identity.public_key().fingerprint().to_string(),
    };
    let mut cfg = NodeConfig::default();
    audio_from_env(&mut cfg)?;
    let mut node = Node::start(prof, cfg).await?;
    let mut events = node.take_events();
    let app = app.clone();
    // SALON_LOG_EVENTS=1 also prints the events (but the twice-a-second levels and link
    // figures) on stderr, one JSON line each: what the tests read when a window surprises.
    let log = std::env::var_os("SALON_LOG_EVENTS").is_some_and(|v| v == "1");
    tauri::async_runtime::spawn(async move {
        while let Some(ev) = events.recv().await {
            if log && !matches!(ev, NodeEvent::Levels { .. } | NodeEvent::Links { .. }) {
                let unix_ms = salon_store::Timestamp::now().0;
                if let Ok(line) = serde_json::to_string(&ev) {
                    eprintln!("salon-desktop[{}] {unix_ms} {line}", std::process::id());
                }
            }
            if matches!(
                ev,
                NodeEvent::Joined { .. } | NodeEvent::RoleChanged { .. } | NodeEvent::Left { .. }
            ) {
                // On or off stage: whether the key is taken from other windows follows.
                crate::talk_key::GlobalTalkKey::room_changed(&app);
            }
            let _ = app.emit(EVENT, &ev);
        }
    });
    *state.node.lock().await = Some(node);
    Ok(info)
}

pub(crate) async fn run(state: &AppState, c: Command) -> Result<Reply, ApiError> {
    // The lock is held only to take a handle: commands run side by side.
    let handle = state
        .node
        .lock()
        .await
        .as_ref()
        .map(Node::handle)
        .ok_or_else(|| ApiError::new("locked", "unlock Salon first"))?;
    Ok(handle.command(c).await?)
}

/// Whether a profile exists and is unlocked.
#[tauri::command]
#[specta::specta]
pub async fn profile_status(state: State<'_, AppState>) -> Result<ProfileStatus, ApiError> {
    Ok(ProfileStatus {
        exists: profile::exists(&state.data_dir),
        unlocked: state.node.lock().await.is_some(),
    })
}

/// First run: creates the identity and the encrypted history, then starts the node.
#[tauri::command]
#[specta::specta]
pub async fn create_profile(
    app: AppHandle,
    state: State<'_, AppState>,
    name: String,
    passphrase: String,
) -> Result<ProfileInfo, ApiError> {
    let dir = state.data_dir.clone();
    // Argon2id takes a good fraction of a second: off the async threads.
    let prof = tokio::task::spawn_blocking(move || {
        profile::create(&dir, &passphrase, &name, KdfParams::default())
    })
    .await
    .map_err(|e| ApiError::new("internal", e.to_string()))??;
    start_node(&app, &state, prof).await
}

/// Later starts: unlocks the history with the passphrase and starts the node.
#[tauri::command]
#[specta::specta]
pub async fn unlock(
    app: AppHandle,
    state: State<'_, AppState>,
    passphrase: String,
) -> Result<ProfileInfo, ApiError> {
    let dir = state.data_dir.clone();
    let prof = tokio::task::spawn_blocking(move || profile::unlock(&dir, &passphrase))
        .await
        .map_err(|e| ApiError::new("internal", e.to_string()))??;
    start_node(&app, &state, prof).await
}

/// Opens a room; returns its invite.
#[tauri::command]
#[specta::specta]
pub async fn host_room(state: State<'_, AppState>, title: String) -> Result<String, ApiError> {
    match run(&state, Command::Host { title }).await? {
        Reply::Invite { invite } => Ok(invite),
        _ => Err(ApiError::new("internal", "no invite came back")),
    }
}

/// Revokes the invite of the room we host (the old one admits nobody; the room goes on);
/// returns the new invite.
#[tauri::command]
#[specta::specta]
pub async fn revoke_invite(state: State<'_, AppState>) -> Result<String, ApiError> {
    match run(&state, Command::RevokeInvite).await? {
        Reply::Invite { invite } => Ok(invite),
        _ => Err(ApiError::new("internal", "no invite came back")),
    }
}

/// Joins a room by invite.
#[tauri::command]
#[specta::specta]
pub async fn join_room(state: State<'_, AppState>, invite: String) -> Result<(), ApiError> {
    run(&state, Command::Join { invite }).await.map(drop)
}

/// Leaves the room (a host hands it over).
#[tauri::command]
#[specta::specta]
pub async fn leave_room(state: State<'_, AppState>) -> Result<(), ApiError> {
    run(&state, Command::Leave).await.map(drop)
}

/// Ends the room for everyone (host).
#[tauri::command]
#[specta::specta]
pub async fn end_room(state: State<'_, AppState>) -> Result<(), ApiError> {
    run(&state, Command::EndRoom).await.map(drop)
}

/// Mutes or unmutes our microphone.
#[tauri::command]
#[specta::specta]
pub async fn set_muted(state: State<'_, AppState>, muted: bool) -> Result<(), ApiError> {
    run(&state, Command::SetMuted(muted)).await.map(drop)
}

/// Raises or lowers our hand.
#[tauri::command]
#[specta::specta]
pub async fn set_hand(state: State<'_, AppState>, raised: bool) -> Result<(), ApiError> {
    run(&state, Command::SetHand(raised)).await.map(drop)
}

/// A moderator action on someone (by hex key).
#[tauri::command]
#[specta::specta]
pub async fn moderate(
    state: State<'_, AppState>,
    target: String,
    action: Action,
) -> Result<(), ApiError> {
    let key = parse_key(&target)?;
    run(&state, Command::Moderate { key, action })
        .await
        .map(drop)
}

/// Accepts (true) or declines (false) the stage invitation we were shown.
#[tauri::command]
#[specta::specta]
pub async fn answer_stage_invite(state: State<'_, AppState>, accept: bool) -> Result<(), ApiError> {
    run(&state, Command::AnswerStageInvite { accept })
        .await
        .map(drop)
}

/// Sends a chat line.
#[tauri::command]
#[specta::specta]
pub async fn send_chat(state: State<'_, AppState>, text: String) -> Result<(), ApiError> {
    run(&state, Command::Chat(text)).await.map(drop)
}

/// Volume of one person (by hex key), 0–2.
#[tauri::command]
#[specta::specta]
pub async fn set_peer_volume(
    state: State<'_, AppState>,
    target: String,
    volume: f32,
) -> Result<(), ApiError> {
    let key = parse_key(&target)?;
    run(&state, Command::SetPeerVolume { key, volume })
        .await
        .map(drop)
}

/// Marks a contact (by hex key) verified after comparing safety numbers.
#[tauri::command]
#[specta::specta]
pub async fn verify_contact(
    state: State<'_, AppState>,
    target: String,
    verified: bool,
) -> Result<(), ApiError> {
    let key = parse_key(&target)?;
    run(&state, Command::VerifyContact { key, verified })
        .await
        .map(drop)
}

/// The current room, if any.
#[tauri::command]
#[specta::specta]
pub async fn room_status(state: State<'_, AppState>) -> Result<Option<RoomInfo>, ApiError> {
    match run(&state, Command::Status).await? {
        Reply::Room { room } => Ok(room),
        _ => Ok(None),
    }
}

fn unexpected() -> ApiError {
    ApiError::new("internal", "the node answered with something else")
}

/// A page of past rooms, newest first; `before` is the last id shown.
#[tauri::command]
#[specta::specta]
pub async fn history_rooms(
    state: State<'_, AppState>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<HistoryRoom>, ApiError> {
    match run(&state, Command::HistoryRooms { before, limit }).await? {
        Reply::HistoryRooms { rooms } => Ok(rooms),
        _ => Err(unexpected()),
    }
}

/// A page of one room's chat, newest first; `before` is the oldest message id shown.
#[tauri::command]
#[specta::specta]
pub async fn history_chat(
    state: State<'_, AppState>,
    room: i64,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<HistoryMessage>, ApiError> {
    match run(
        &state,
        Command::HistoryChat {
            room,
            before,
            limit,
        },
    )
    .await?
    {
        Reply::HistoryChat { messages } => Ok(messages),
        _ => Err(unexpected()),
    }
}

/// Everyone met, with verified marks.
#[tauri::command]
#[specta::specta]
pub async fn contacts(state: State<'_, AppState>) -> Result<Vec<ContactInfo>, ApiError> {
    match run(&state, Command::Contacts).await? {
        Reply::Contacts { contacts } => Ok(contacts),
        _ => Err(unexpected()),
    }
}

/// The safety number to compare with someone in the room or a contact (by hex key).
#[tauri::command]
#[specta::specta]
pub async fn safety_number(
    state: State<'_, AppState>,
    target: String,
) -> Result<SafetyNumberInfo, ApiError> {
    let key = parse_key(&target)?;
    match run(&state, Command::SafetyNumber { key }).await? {
        Reply::SafetyNumber(s) => Ok(s),
        _ => Err(unexpected()),
    }
}

/// Audio devices, defaults first.
#[tauri::command]
#[specta::specta]
pub async fn devices(state: State<'_, AppState>) -> Result<DeviceList, ApiError> {
    match run(&state, Command::Devices).await? {
        Reply::Devices(d) => Ok(d),
        _ => Err(unexpected()),
    }
}

/// The settings in force.
#[tauri::command]
#[specta::specta]
pub async fn get_settings(state: State<'_, AppState>) -> Result<Settings, ApiError> {
    match run(&state, Command::GetSettings).await? {
        Reply::Settings(s) => Ok(s),
        _ => Err(unexpected()),
    }
}

/// Saves and applies settings; a missing device is refused with code `audio`.
#[tauri::command]
#[specta::specta]
pub async fn set_settings(
    state: State<'_, AppState>,
    settings: Settings,
) -> Result<Settings, ApiError> {
    match run(&state, Command::SetSettings(settings)).await? {
        Reply::Settings(s) => Ok(s),
        _ => Err(unexpected()),
    }
}

/// Microphone levels outside a room (the settings meter), on or off.
#[tauri::command]
#[specta::specta]
pub async fn mic_test(state: State<'_, AppState>, on: bool) -> Result<(), ApiError> {
    run(&state, Command::MicTest(on)).await.map(drop)
}

/// Plays a short chime on the output device.
#[tauri::command]
#[specta::specta]
pub async fn test_sound(state: State<'_, AppState>) -> Result<(), ApiError> {
    run(&state, Command::TestSound).await.map(drop)
}

/// The push-to-talk key went down or up.
#[tauri::command]
#[specta::specta]
pub async fn push_to_talk(state: State<'_, AppState>, pressed: bool) -> Result<(), ApiError> {
    run(&state, Command::PushToTalk(pressed)).await.map(drop)
}

/// Where the push-to-talk key `key` (`null`: none set) works: also in other apps, or only
/// while Salon's window is focused (Wayland, and keys that cannot be taken from the
/// desktop), with a note for the settings screen.
#[tauri::command]
#[specta::specta]
pub fn push_to_talk_reach(talk: State<'_, GlobalTalkKey>, key: Option<String>) -> TalkKeyReach {
    talk.reach(key.as_deref())
}

/// Re-encrypts the history under a new passphrase (the old one is checked first).
#[tauri::command]
#[specta::specta]
pub async fn change_passphrase(
    state: State<'_, AppState>,
    old_passphrase: String,
    new_passphrase: String,
) -> Result<(), ApiError> {
    run(
        &state,
        Command::ChangePassphrase {
            old: old_passphrase,
            new: new_passphrase,
        },
    )
    .await
    .map(drop)
}

/// Writes an encrypted backup (same passphrase); returns the file written.
#[tauri::command]
#[specta::specta]
pub async fn export_backup(
    state: State<'_, AppState>,
    path: Option<String>,
) -> Result<String, ApiError> {
    let path = path
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    match run(&state, Command::ExportBackup { path }).await? {
        Reply::Path { path } => Ok(path.display().to_string()),
        _ => Err(unexpected()),
    }
}

/// Keeps the type of every event the UI receives in this crate's public API.
pub type UiEvent = NodeEvent;
