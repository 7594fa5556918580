//! Salon's desktop shell: maps the `salon-node` API one-to-one onto Tauri commands and
//! forwards node events as the `salon://event` Tauri event. No app logic lives here.

pub mod commands;
pub mod error;

use std::path::PathBuf;
use std::time::Duration;

use tauri::Manager;

/// Where the history lives: `SALON_DATA_DIR`, or the platform's app-data folder. The
/// override lets several instances and tests run side by side.
fn data_dir(app: &tauri::App) -> PathBuf {
    if let Some(d) = std::env::var_os("SALON_DATA_DIR") {
        return PathBuf::from(d);
    }
    app.path()
        .app_data_dir()
        .unwrap_or_else(|_| salon_node::default_data_dir())
}

/// On the way out (the last window closed, or the app was asked to quit): leave the room
/// the way the Leave button does, so the others see us go at once (a host hands the room
/// over) instead of timing us out, and let the history record the room's end before the
/// process exits. Bounded: a stuck network cannot hold the app open.
fn shut_down_node(app: &tauri::AppHandle) {
    let Some(state) = app.try_state::<commands::AppState>() else {
        return;
    };
    tauri::async_runtime::block_on(async {
        let node = state.node.lock().await.take();
        if let Some(node) = node {
            let _ = tokio::time::timeout(Duration::from_secs(6), node.shutdown()).await;
        }
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
    });
    #[cfg(not(unix))]
    drop(app);
}

/// Starts the app.
pub fn run() {
    let built = tauri::Builder::default()
        .setup(|app| {
            let dir = data_dir(app);
            app.manage(commands::AppState {
                data_dir: dir,
                node: tokio::sync::Mutex::new(None),
            });
            quit_on_signals(app.handle().clone());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::profile_status,
            commands::create_profile,
            commands::unlock,
            commands::host_room,
            commands::join_room,
            commands::leave_room,
            commands::end_room,
            commands::set_muted,
            commands::set_hand,
            commands::moderate,
            commands::send_chat,
            commands::set_peer_volume,
            commands::verify_contact,
            commands::room_status,
        ])
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
