//! Any bytes, as a datagram, plaintext or control message: the parsers never panic, and a
//! live hosting endpoint never answers garbage.
#![no_main]

use std::cell::RefCell;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use salon_proto::{Config, Endpoint, Identity};

thread_local! {
    static HOST: RefCell<(Endpoint, Instant)> = RefCell::new({
        let now = Instant::now();
        let id = Identity::generate(&mut ChaCha20Rng::from_seed([1; 32]));
        let mut ep = Endpoint::new(Config::default(), id, [2; 32], now, 0);
        let cand = vec![salon_proto::Candidate {
            kind: salon_proto::CandidateKind::Lan,
            addr: "127.0.0.1:4000".parse().expect("address"),
        }];
        ep.host(now, "fuzz", "host", cand).expect("host");
        while ep.poll_event().is_some() {}
        (ep, now)
    });
}

fuzz_target!(|data: &[u8]| {
    let _ = salon_proto::wire::Packet::parse(data);
    let _ = salon_proto::frame::parse(data);
    let _ = salon_proto::message::Message::decode(data);
    let _ = salon_proto::channel::Frame::decode(data);
    HOST.with(|h| {
        let (ep, now) = &mut *h.borrow_mut();
        ep.handle_datagram(*now, "127.0.0.2:5000".parse().expect("address"), data);
        assert!(ep.poll_transmit().is_none(), "answered garbage");
    });
});
