//! The room state machine after decryption: a live room (host and member, sessions up)
//! fed plaintexts sealed under the real sessions and raw control messages, between time
//! steps; nothing panics and the rosters stay sound. The harness (and the input format)
//! is `salon_proto::fuzz::room`, shared with the stable replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| salon_proto::fuzz::room(data));
