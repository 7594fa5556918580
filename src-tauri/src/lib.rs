//! Salon's desktop shell: maps the `salon-node` API one-to-one onto Tauri commands and
//! forwards node events as the `salon://event` Tauri event. No app logic lives here.

pub mod commands;
pub mod error;
pub mod talk_key;
pub mod webview_env;

use std::path::PathBuf;
use std::time::Duration;

use tauri::Manager;

/// Where the history lives: `SALON_DATA_DIR` (several instances and tests side by side),
/// or the folder the command line uses too, so both are one identity. A history an
/// older version kept in the app-data folder moves there once.
fn data_dir(app: &tauri::App) -> PathBuf {
    if let Some(d) = std::env::var_os("SALON_DATA_DIR") {
        return PathBuf::from(d);
    }
    let shared = salon_node::default_data_dir();
    match app.path().app_data_dir() {
        Ok(legacy) => salon_node::profile::adopt_legacy_dir(&shared, &legacy),
        Err(_) => shared,
    }
}

/// Every command and the event type, for Tauri's invoke handler and for the generated
/// TypeScript bindings (`ui/src/bindings.ts`), so the UI cannot drift from the commands.
pub fn bindings() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(tauri_specta::collect_commands![
            commands::profile_status,
            commands::create_profile,
            commands::unlock,
            commands::host_room,
            commands::revoke_invite,
            commands::join_room,
            commands::leave_room,
            commands::end_room,
            commands::set_muted,
            commands::set_hand,
            commands::moderate,
            commands::answer_stage_invite,
            commands::send_chat,
            commands::set_peer_volume,
            commands::verify_contact,
            commands::room_status,
            commands::history_rooms,
            commands::history_chat,
            commands::contacts,
            commands::safety_number,
            commands::devices,
            commands::get_settings,
            commands::set_settings,
            commands::mic_test,
            commands::test_sound,
            commands::push_to_talk,
            commands::push_to_talk_reach,
            commands::change_passphrase,
            commands::export_backup,
        ])
        .typ::<commands::UiEvent>()
        .constant("EVENT", commands::EVENT)
        // Commands reject with `ApiError` as plain Tauri commands do; the UI catches.
        .error_handling(tauri_specta::ErrorHandlingMode::Throw)
        // Ids and Unix milliseconds stay far below 2^53.
        .dangerously_cast_bigints_to_number()
        // One type per Rust type: the UI only reads what the node writes.
        .disable_serde_phases()
}

/// Why the bindings could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum BindingsError {
    /// The scratch file could not be written or read.
    #[error("bindings scratch file: {0}")]
    Io(#[from] std::io::Error),
    /// specta refused a type.
    #[error("generating the TypeScript bindings: {0}")]
    Export(#[from] specta_typescript::Error),
}

/// The bindings' text as generated now.
pub fn bindings_typescript() -> Result<String, BindingsError> {
    let dir = std::env::temp_dir().join(format!("salon-bindings-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bindings.ts");
    let r = bindings()
        .export(
            specta_typescript::Typescript::default()
                .header("// Generated from the Rust commands by src-tauri (`bindings()`); do not edit.\n// Regenerate: SALON_UPDATE_BINDINGS=1 cargo test -p salon-desktop --test bindings"),
            &path,
        )
        .map_err(BindingsError::from)
        .and_then(|()| Ok(std::fs::read_to_string(&path)?));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// On the way out (the last window closed, or the app was asked to quit): leave the room
/// the way the Leave button does, so the others see us go at once (a host hands the room
/// over) instead of timing us out, and let the history record the room's end before the
/// process exits. Bounded: a stuck network cannot hold the app open.
fn shut_down_node(app: &tauri::AppHandle) {
    let Some(state) = app.try_state::<commands::AppState>() else {
        return;
    };
    // Bounded as a whole, the lock included.
    tauri::async_runtime::block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(6), async {
            let node = state.node.lock().await.take();
            if let Some(node) = node {
                node.shutdown().await;
            }
        })
        .await;
    });
}

/// SIGTERM (logout, shutdown, `kill`) and SIGINT (Ctrl+C in the terminal that started
/// the app) quit the app the normal way, through [`shut_down_node`], instead of ending the
/// process on the spot.
fn quit_on_signals(app: tauri::AppHandle) {
    #[cfg(unix)]
    tauri::async_runtime::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        app.exit(0);
        // Asked twice: the user means now.
        tokio::select! {
            _ = term.recv() => std::process::exit(143),
            _ = int.recv() => std::process::exit(130),
        }
    });
    #[cfg(not(unix))]
    drop(app);
}

/// Keeps the window's WebKit lean: this UI is a few hundred DOM nodes, so it needs neither
/// GPU compositing nor WebKit's browser-sized caches. `SALON_WEBVIEW_GPU=1` keeps the
/// defaults. The choices WebKit reads only at start are made in [`webview_env`].
fn lighten_webview(app: &tauri::App) {
    #[cfg(target_os = "linux")]
    if std::env::var_os("SALON_WEBVIEW_GPU").is_none_or(|v| v != "1")
        && let Some(window) = app.get_webview_window("main")
    {
        let _ = window.with_webview(|webview| {
            use webkit2gtk::{SettingsExt, WebContextExt, WebViewExt};
            let view = webview.inner();
            if let Some(settings) = WebViewExt::settings(&view) {
                settings.set_hardware_acceleration_policy(
                    webkit2gtk::HardwareAccelerationPolicy::Never,
                );
            }
            if let Some(context) = view.context() {
                context.set_cache_model(webkit2gtk::CacheModel::DocumentViewer);
            }
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}

/// Starts the app.
pub fn run() {
    // First of all: WebKit reads these once, and its processes inherit them.
    webview_env::apply();
    let builder = bindings();
    let built = tauri::Builder::default()
        .setup(|app| {
            let dir = data_dir(app);
            app.manage(commands::AppState {
                data_dir: dir,
                node: tokio::sync::Mutex::new(None),
            });
            talk_key::GlobalTalkKey::install(app);
            quit_on_signals(app.handle().clone());
            lighten_webview(app);
            Ok(())
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::Focused(focused) = event {
                talk_key::GlobalTalkKey::focus_changed(window.app_handle(), *focused);
            }
        })
        .invoke_handler(builder.invoke_handler())
        .build(tauri::generate_context!());
    match built {
        Ok(app) => app.run(|app, event| {
            if let tauri::RunEvent::Exit = event {
                shut_down_node(app);
            }
        }),
        Err(e) => {
            eprintln!("salon: the app could not start: {e}");
            std::process::exit(1);
        }
    }
}
