//! Fuzzes the invite parser: any text must give `Ok` or an `InviteError`, never a
//! panic, and whatever parses must survive an encode/parse round trip unchanged.
//! The harness is `salon_proto::fuzz::invite`, shared with the stable replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| salon_proto::fuzz::invite(data));
