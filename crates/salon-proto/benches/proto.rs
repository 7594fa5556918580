//! Handshake rate, per-datagram crypto cost, and what relaying costs a member.
//!
//! `cargo bench -p salon-proto --bench proto`

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use salon_proto::handshake::{self, InitPayload, Keys, Kind, ResponsePayload, Status};
use salon_proto::session::Session;
use salon_proto::sim::{NatKind, Net};
use salon_proto::wire::{AUDIO_PLAINTEXT_LEN, Packet};
use salon_proto::{Identity, Path};

fn ident(n: u8) -> Identity {
    Identity::generate(&mut ChaCha20Rng::from_seed([n; 32]))
}

fn full_handshake(kind: Kind, a: &Identity, b: &Identity, seed: u8) -> (Session, Session) {
    let psk = [7u8; 32];
    let prologue = handshake::join_prologue(&[1; 16]);
    let payload = InitPayload {
        timestamp: 1,
        incarnation: 2,
    };
    let ka = Keys {
        local: a,
        psk: &psk,
        prologue: &prologue,
    };
    let kb = Keys {
        local: b,
        psk: &psk,
        prologue: &prologue,
    };
    let Ok((hs, m1)) = handshake::initiate(kind, &ka, &b.public_key(), &payload, [seed; 32]) else {
        panic!("initiate")
    };
    let known = (kind == Kind::Link).then(|| a.public_key());
    let Ok((rhs, _, _)) = handshake::accept(kind, &kb, known.as_ref(), &m1, [seed ^ 1; 32]) else {
        panic!("accept")
    };
    let resp = ResponsePayload {
        status: Status::Accepted,
        incarnation: 3,
        timestamp: 4,
    };
    let Ok((rt, m2)) = handshake::respond(rhs, &resp) else {
        panic!("respond")
    };
    let Ok((it, _)) = handshake::complete(hs, &m2) else {
        panic!("complete")
    };
    let now = Instant::now();
    (
        Session::new(it, 1, 2, true, now),
        Session::new(rt, 2, 1, false, now),
    )
}

fn handshakes(c: &mut Criterion) {
    let (a, b) = (ident(1), ident(2));
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("join IKpsk1 (both sides)", |bench| {
        bench.iter(|| black_box(full_handshake(Kind::Join, &a, &b, 5)))
    });
    g.bench_function("link KKpsk0 (both sides)", |bench| {
        bench.iter(|| black_box(full_handshake(Kind::Link, &a, &b, 5)))
    });
    g.finish();
}

fn audio_datagram(c: &mut Criterion) {
    let (a, b) = (ident(1), ident(2));
    let (mut tx, mut rx) = full_handshake(Kind::Join, &a, &b, 9);
    let plain = [0x01u8; AUDIO_PLAINTEXT_LEN];
    let mut g = c.benchmark_group("audio datagram");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal + open (160 B plaintext)", |bench| {
        bench.iter(|| {
            let Ok(d) = tx.seal(black_box(&plain)) else {
                panic!("seal")
            };
            let Ok(Packet::Transport(t)) = Packet::parse(&d) else {
                panic!("parse")
            };
            let Ok(p) = rx.open(t.counter, t.ciphertext) else {
                panic!("open")
            };
            black_box(p)
        })
    });
    g.finish();

    // Whole endpoint path: send_audio on the host, handle_datagram on a listener.
    let mut net = Net::new(3);
    let h = net.add("Host");
    let l = net.add("Listener");
    let Ok(inv) = net.host(h, "Bench") else {
        panic!("host")
    };
    let _ = net.join(l, &inv);
    net.run_for(std::time::Duration::from_secs(2));
    let _ = net.bring_on_stage(h, l);
    net.run_for(std::time::Duration::from_secs(1));
    let from = net.nodes[h].addr;
    let frame = [3u8; 120];
    let mut g = c.benchmark_group("endpoint");
    g.throughput(Throughput::Elements(1));
    g.bench_function("send_audio + handle_datagram, one peer", |bench| {
        bench.iter(|| {
            let now = net.now;
            let _ = net.nodes[h].ep.send_audio(now, &frame);
            while let Some(t) = net.nodes[h].ep.poll_transmit() {
                net.nodes[l].ep.handle_datagram(now, from, &t.contents);
            }
            while net.nodes[l].ep.poll_event().is_some() {}
            while net.nodes[l].ep.poll_transmit().is_some() {}
        })
    });
    g.finish();
}

/// What relaying costs the relaying member: one relayed audio datagram in, out again.
fn relay(c: &mut Criterion) {
    let mut net = Net::new(5);
    let h = net.add("Host");
    let a = net.add("A");
    let b = net.add("B");
    net.put_behind_nat(a, NatKind::Symmetric);
    net.put_behind_nat(b, NatKind::Symmetric);
    let Ok(inv) = net.host(h, "Bench") else {
        panic!("host")
    };
    let _ = net.join(a, &inv);
    let _ = net.join(b, &inv);
    net.run_for(std::time::Duration::from_secs(2));
    let ka = net.key(a);
    let _ = net.bring_on_stage(h, a);
    net.run_for(std::time::Duration::from_secs(6));
    let Some(Path::Direct(from)) = net.nodes[h].ep.link_stats(&ka).and_then(|s| s.path) else {
        panic!("host to A not direct")
    };
    // A's next audio frame: one datagram for the host, one for B through the host.
    let now = net.now;
    let _ = net.nodes[a].ep.send_audio(now, &[3u8; 120]);
    let mut relayed = None;
    while let Some(t) = net.nodes[a].ep.poll_transmit() {
        net.nodes[h].ep.handle_datagram(now, from, &t.contents);
        while let Some(out) = net.nodes[h].ep.poll_transmit() {
            if out.contents.len() == t.contents.len() && out.contents[5..] == t.contents[5..] {
                relayed = Some(t.contents.clone());
            }
        }
    }
    let Some(relayed) = relayed else {
        panic!("A's audio to B did not go through the host")
    };
    let mut g = c.benchmark_group("relay");
    g.throughput(Throughput::Bytes(relayed.len() as u64));
    g.bench_function("forward one audio datagram", |bench| {
        bench.iter(|| {
            net.nodes[h]
                .ep
                .handle_datagram(now, from, black_box(&relayed));
            black_box(net.nodes[h].ep.poll_transmit())
        })
    });
    g.finish();
}

criterion_group!(benches, handshakes, audio_datagram, relay);
criterion_main!(benches);
