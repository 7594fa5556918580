//! Salon's desktop app entry point: everything lives in the library.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // The same log as the command line's: stderr, filtered by SALON_LOG.
    salon_node::logging::init();
    salon_desktop::run();
}
