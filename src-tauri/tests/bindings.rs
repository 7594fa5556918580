//! The UI's TypeScript bindings are generated from the Rust commands and types: this test
//! fails when `ui/src/bindings.ts` is not what the commands generate now.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::path::Path;

#[test]
fn ui_bindings_match_the_rust_commands() {
    let generated = salon_desktop::bindings_typescript().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
    if std::env::var_os("SALON_UPDATE_BINDINGS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ui/src/bindings.ts is stale; regenerate it with \
         SALON_UPDATE_BINDINGS=1 cargo test -p salon-desktop --test bindings"
    );
    // Registration and bindings come from one `collect_commands!` list (`run` installs
    // `bindings().invoke_handler()`), so no registered command can be missing from the
    // file; this only checks that commands the UI calls are spelled as it calls them.
    for cmd in [
        "history_rooms",
        "set_settings",
        "export_backup",
        "join_room",
    ] {
        assert!(generated.contains(&format!("\"{cmd}\"")), "{cmd} missing");
    }
}
