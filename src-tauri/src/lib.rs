//! Salon's desktop shell: maps the `salon-node` API one-to-one onto Tauri commands and
//! forwards node events as the `salon://event` Tauri event. No app logic lives here.

pub mod commands;
pub mod error;

use std::path::PathBuf;

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

/// Starts the app.
pub fn run() {
    let result = tauri::Builder::default()
        .setup(|app| {
            let dir = data_dir(app);
            app.manage(commands::AppState {
                data_dir: dir,
                node: tokio::sync::Mutex::new(None),
            });
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
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("salon: the app could not start: {e}");
        std::process::exit(1);
    }
}
