//! Any bytes, as a datagram, plaintext or control message: the parsers never panic, and a
//! live hosting endpoint never answers garbage. The harness is
//! `salon_proto::fuzz::datagram`, shared with the stable replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| salon_proto::fuzz::datagram(data));
