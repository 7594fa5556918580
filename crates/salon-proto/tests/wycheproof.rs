//! Wycheproof vectors (`tests/wycheproof/`, see its README) against the primitives snow
//! runs in our configuration: X25519 through snow's `Dh` (curve25519-dalek) and through
//! `CheckedDh`, the wrapper every handshake uses; ChaCha20-Poly1305 through snow's
//! `Cipher` where the vector's nonce fits Noise's layout, and through the
//! `chacha20poly1305` crate snow wraps for every vector.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use salon_proto::handshake::CheckedDh;
use salon_proto::identity::is_low_order;
use serde_json::Value;
use snow::params::{CipherChoice, DHChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::Dh;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector hex")
}

fn load(name: &str) -> Value {
    let path = format!("{}/tests/wycheproof/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every test of every group, with its group, checking the file's own count.
fn tests(file: &Value) -> Vec<(&Value, &Value)> {
    let all: Vec<(&Value, &Value)> = file["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["tests"].as_array().unwrap().iter().map(move |t| (g, t)))
        .collect();
    assert_eq!(all.len() as u64, file["numberOfTests"].as_u64().unwrap());
    all
}

fn flags(t: &Value) -> Vec<&str> {
    t["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

fn field(t: &Value, name: &str) -> Vec<u8> {
    unhex(t[name].as_str().unwrap())
}

#[test]
fn x25519_vectors_hold_for_snows_dh_and_every_zero_secret_is_refused_by_checked_dh() {
    let file = load("x25519_test.json");
    let (mut zero, mut computed) = (0, 0);
    for (g, t) in tests(&file) {
        assert_eq!(g["curve"], "curve25519");
        let id = &t["tcId"];
        let (public, private, shared) =
            (field(t, "public"), field(t, "private"), field(t, "shared"));
        let result = t["result"].as_str().unwrap();
        // This file has no "invalid" X25519 case: every input has a defined output
        // (RFC 7748), "acceptable" ones being those a library may refuse.
        assert!(
            matches!(result, "valid" | "acceptable"),
            "tcId {id}: {result}"
        );
        let zero_secret = shared.iter().all(|&b| b == 0);
        assert_eq!(
            zero_secret,
            flags(t).contains(&"ZeroSharedSecret"),
            "tcId {id}: flag"
        );

        // snow's own X25519 computes exactly the RFC 7748 function, edge cases included.
        let mut raw = DefaultResolver.resolve_dh(&DHChoice::Curve25519).unwrap();
        raw.set(&private);
        let mut out = [0u8; 32];
        raw.dh(&public, &mut out).unwrap();
        assert_eq!(out.to_vec(), shared, "tcId {id}: snow's X25519");

        // What handshakes run: the same, except that an all-zero secret is an error.
        let mut checked = CheckedDh::curve25519().unwrap();
        checked.set(&private);
        let mut out = [0u8; 32];
        let got = checked.dh(&public, &mut out);
        if zero_secret {
            assert!(got.is_err(), "tcId {id}: zero secret accepted");
            // And the key is refused before any DH, wherever it arrives.
            assert!(is_low_order(&public), "tcId {id}: not on the blocklist");
            zero += 1;
        } else {
            got.unwrap();
            assert_eq!(out.to_vec(), shared, "tcId {id}: checked X25519");
            assert!(!is_low_order(&public), "tcId {id}: wrongly blocklisted");
            computed += 1;
        }
    }
    assert_eq!((zero, computed), (31, 487));
}

/// snow's ChaChaPoly nonce is a u64 in bytes 4..12 (little-endian) of the 96-bit
/// ChaCha20-Poly1305 nonce, bytes 0..4 zero: the vectors whose nonce has that shape.
fn noise_nonce(iv: &[u8]) -> Option<u64> {
    match iv {
        [0, 0, 0, 0, rest @ ..] => Some(u64::from_le_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

#[test]
fn chacha20_poly1305_vectors_hold_for_the_crate_snow_wraps_and_for_snows_cipher() {
    let file = load("chacha20_poly1305_test.json");
    let (mut through_snow, mut valid, mut invalid) = (0, 0, 0);
    for (g, t) in tests(&file) {
        assert_eq!(g["keySize"], 256);
        assert_eq!(g["tagSize"], 128);
        let id = &t["tcId"];
        let (key, iv, aad, msg, ct, tag) = (
            field(t, "key"),
            field(t, "iv"),
            field(t, "aad"),
            field(t, "msg"),
            field(t, "ct"),
            field(t, "tag"),
        );
        let result = t["result"].as_str().unwrap();
        let mut sealed = ct.clone();
        sealed.extend_from_slice(&tag);

        let cipher = ChaCha20Poly1305::new_from_slice(&key).unwrap();
        // A nonce that is not 96 bits cannot even be expressed: that is the refusal.
        let opened = (iv.len() == 12).then(|| {
            let nonce = Nonce::from_slice(&iv);
            let mut buf = ct.clone();
            cipher
                .decrypt_in_place_detached(nonce, &aad, &mut buf, Tag::from_slice(&tag))
                .map(|()| buf)
        });
        match result {
            "valid" => {
                let nonce = Nonce::from_slice(&iv);
                let mut buf = msg.clone();
                let t2 = cipher
                    .encrypt_in_place_detached(nonce, &aad, &mut buf)
                    .unwrap();
                assert_eq!((buf, t2.to_vec()), (ct.clone(), tag.clone()), "tcId {id}");
                assert_eq!(opened.unwrap().unwrap(), msg, "tcId {id}");
                valid += 1;
            }
            "invalid" => {
                assert!(
                    opened.is_none_or(|o| o.is_err()),
                    "tcId {id}: invalid accepted"
                );
                invalid += 1;
            }
            other => panic!("tcId {id}: unexpected result {other}"),
        }

        if let Some(n) = (iv.len() == 12).then(|| noise_nonce(&iv)).flatten() {
            let mut c = DefaultResolver
                .resolve_cipher(&CipherChoice::ChaChaPoly)
                .unwrap();
            c.set(&key.clone().try_into().unwrap());
            let mut out = vec![0u8; sealed.len()];
            let got = c.decrypt(n, &aad, &sealed, &mut out);
            if result == "valid" {
                assert_eq!(got.unwrap(), msg.len(), "tcId {id}: snow");
                assert_eq!(out[..msg.len()], msg[..], "tcId {id}: snow");
                let mut enc = vec![0u8; msg.len() + 16];
                assert_eq!(c.encrypt(n, &aad, &msg, &mut enc), sealed.len());
                assert_eq!(enc, sealed, "tcId {id}: snow encrypt");
            } else {
                assert!(got.is_err(), "tcId {id}: snow accepted an invalid vector");
            }
            through_snow += 1;
        }
    }
    assert_eq!((valid, invalid), (256, 69));
    assert!(
        through_snow >= 10,
        "{through_snow} vectors through snow's Cipher"
    );
}
