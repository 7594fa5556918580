//! Fuzzes the invite parser: any text must give `Ok` or an `InviteError`, never a
//! panic, and whatever parses must survive an encode/parse round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salon_proto::invite::Invite;

fuzz_target!(|text: &str| {
    if let Ok(invite) = Invite::parse(text) {
        let again = Invite::parse(&invite.encode());
        assert_eq!(again, Ok(invite), "re-encoded invite did not round-trip");
    }
});
