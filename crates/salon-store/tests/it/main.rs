//! Integration tests of salon-store, in one test binary (one link of SQLCipher).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api;
mod canaries;
mod common;
mod crash;
mod errors;
mod migrations;
mod rekey_backup;
mod sqlcipher_shell;
