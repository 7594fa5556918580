//! Real `salon` processes in a room on loopback: tones in, WAV files out, commands on
//! stdin, JSON events on stdout.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// The invite the host printed when its invite changed for `reason`.
fn new_invite(host: &mut Peer, reason: &str) -> String {
    host.wait("a new invite", Duration::from_secs(5), |v| {
        v["event"] == "invite_changed" && v["reason"] == reason
    })["invite"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn host_and_three_joiners_hear_each_other_chat_moderate_and_survive_a_kill_and_host_leaving() {
    let scratch = tempdir("room");
    let root = scratch.path();
    for n in ["Hana", "Ivo", "Juno", "Kai", "Lev"] {
        init(root, n);
    }
    let mut host = spawn(
        root,
        "Hana",
        &["host", "--title", "Loopback jazz"],
        "tone:440",
    );
    step!("host started");
    let invite = host.invite();
    let mut ivo = spawn(root, "Ivo", &["join", &invite], "tone:660");
    let mut juno = spawn(root, "Juno", &["join", &invite], "tone:880");
    let mut kai = spawn(root, "Kai", &["join", &invite], "tone:1100");
    let mut lev = spawn(root, "Lev", &["join", &invite], "none");
    for p in [&mut ivo, &mut juno, &mut kai, &mut lev] {
        p.wait("joined", Duration::from_secs(10), |v| {
            v["event"] == "joined"
        });
    }
    step!("joiners started");
    host.room_has("five members", |r| {
        r["members"].as_array().is_some_and(|m| m.len() == 5)
    });
    // Lev is removed: told so, gone from every roster, and the invite no longer admits Lev
    // nor anyone else: the host has a new one.
    host.say("kick Lev");
    lev.wait("removed", Duration::from_secs(5), |v| {
        v["event"] == "left" && v["reason"] == "removed"
    });
    assert!(lev.child.wait().unwrap().success());
    for p in [&mut host, &mut ivo, &mut juno, &mut kai] {
        p.room_has("Lev gone", |r| {
            member(r, "Lev").is_none() && r["members"].as_array().is_some_and(|m| m.len() == 4)
        });
    }
    step!("four in the room");
    // Ivo raises a hand; the host invites Ivo and Juno on stage (Ivo asked, so goes up at
    // once; Juno is asked and accepts); Kai stays in the audience.
    ivo.say("hand");
    host.room_has("Ivo's hand", |r| {
        member(r, "Ivo").is_some_and(|m| m["hand_raised"] == true)
    });
    host.say("promote Ivo");
    host.say("promote Juno");
    juno.accept_stage_invite();
    for p in [&mut ivo, &mut juno, &mut kai] {
        p.room_has("Ivo and Juno on stage", |r| {
            member(r, "Ivo").is_some_and(|m| m["role"] == "speaker")
                && member(r, "Juno").is_some_and(|m| m["role"] == "speaker")
        });
    }
    step!("on stage");
    // Chat from everyone reaches everyone.
    host.say("say welcome all");
    kai.say("say hello from the back");
    for p in [&mut host, &mut ivo, &mut juno, &mut kai] {
        p.wait("host chat", Duration::from_secs(5), |v| {
            v["event"] == "chat" && v["text"] == "welcome all"
        });
        p.wait("kai chat", Duration::from_secs(5), |v| {
            v["event"] == "chat" && v["text"] == "hello from the back"
        });
    }
    step!("chat delivered");
    // Let the speakers talk, then check levels say who speaks.
    std::thread::sleep(Duration::from_secs(3));
    kai.wait("speaking levels", Duration::from_secs(5), |v| {
        v["event"] == "levels"
            && v["peers"]
                .as_array()
                .is_some_and(|p| p.iter().filter(|x| x["speaking"] == true).count() >= 3)
    });
    step!("levels seen");
    let renewed = new_invite(&mut host, "removal");
    assert_ne!(renewed, invite);
    // (Checked only now: a tone heard for long enough becomes the noise floor of the
    // speaking detector, and these joins take a few seconds.)
    // With the old invite, Lev and Lev's new identity (`salon init` in a fresh folder) get
    // no answer at all, as a stranger would.
    init(root, "Lev2");
    let quick = ["--join-timeout-secs", "3"];
    let silent = |v: &serde_json::Value| {
        v["event"] == "join_failed"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("did not answer"))
    };
    let mut lev = spawn(root, "Lev", &["join", &invite, quick[0], quick[1]], "none");
    let mut lev2 = spawn(root, "Lev2", &["join", &invite, quick[0], quick[1]], "none");
    for p in [&mut lev, &mut lev2] {
        p.wait("no answer", Duration::from_secs(10), silent);
        assert!(
            !p.child.wait().unwrap().success(),
            "a failed join exits with failure"
        );
    }
    // With the new invite (say it leaked), Lev's key is still refused, and told so.
    let mut lev = spawn(root, "Lev", &["join", &renewed], "none");
    lev.wait("refused", Duration::from_secs(10), |v| {
        v["event"] == "join_failed" && v["message"].as_str().is_some_and(|m| m.contains("removed"))
    });
    assert!(
        !lev.child.wait().unwrap().success(),
        "a refused join exits with failure"
    );
    // The host revokes that invite too: it admits nobody now, and the room goes on.
    host.say("revoke");
    let third = new_invite(&mut host, "revoked");
    assert_ne!(third, renewed);
    let mut lev2 = spawn(
        root,
        "Lev2",
        &["join", &renewed, quick[0], quick[1]],
        "none",
    );
    lev2.wait("no answer", Duration::from_secs(10), silent);
    assert!(!lev2.child.wait().unwrap().success());
    for p in [&mut host, &mut ivo, &mut juno, &mut kai] {
        p.room_has("still four", |r| {
            r["members"].as_array().is_some_and(|m| m.len() == 4)
        });
    }
    // The host mutes Juno; Juno is told.
    host.say("mute Juno");
    juno.wait("muted by moderator", Duration::from_secs(5), |v| {
        v["event"] == "muted_by_moderator"
    });
    step!("mute seen");
    // Kai is killed: everyone drops Kai within the timeout and the room goes on.
    kai.child.kill().unwrap();
    let killed_at = Instant::now();
    for p in [&mut host, &mut ivo, &mut juno] {
        p.room_has("Kai gone", |r| member(r, "Kai").is_none());
    }
    assert!(killed_at.elapsed() < Duration::from_secs(12));
    step!("kill noticed after {:?}", killed_at.elapsed());
    // Move Juno back to the audience.
    host.say("audience Juno");
    juno.wait("demoted", Duration::from_secs(5), |v| {
        v["event"] == "role_changed" && v["role"] == "listener"
    });
    step!("demoted");
    // The host leaves: the earliest speaker (Ivo) carries the room on.
    host.say("leave");
    host.wait("left", Duration::from_secs(5), |v| v["event"] == "left");
    ivo.wait("new host", Duration::from_secs(10), |v| {
        v["event"] == "host_changed" && !v["invite"].is_null()
    });
    juno.room_has("Ivo hosts", |r| {
        member(r, "Ivo").is_some_and(|m| m["role"] == "host") && member(r, "Hana").is_none()
    });
    ivo.say("say still here");
    juno.wait("chat after hand-over", Duration::from_secs(5), |v| {
        v["event"] == "chat" && v["text"] == "still here"
    });
    for p in [&mut ivo, &mut juno] {
        p.say("leave");
        p.wait("left", Duration::from_secs(5), |v| v["event"] == "left");
    }
    step!("all left");
    for p in [&mut host, &mut ivo, &mut juno] {
        let st = p.child.wait().unwrap();
        assert!(st.success(), "{} exited with {st}", p.name);
    }
    // Each output has the other speakers' tones and not its own.
    let h = read_wav(&host.out);
    let i = read_wav(&ivo.out);
    let j = read_wav(&juno.out);
    let k = read_wav(&kai.out);
    for (who, w) in [("host", &h), ("ivo", &i), ("juno", &j)] {
        let secs: Vec<String> = [440.0, 660.0, 880.0, 1100.0]
            .iter()
            .map(|f| format!("{f} Hz {:.1} s", tone_seconds(w, *f)))
            .collect();
        step!("{who} output {} samples: {}", w.len(), secs.join(", "));
    }
    let _ = k;
    // Each hears the others who were on stage, for seconds, and never itself or the
    // audience member.
    let heard = |w: &[i16], hz: f64| tone_seconds(w, hz) >= 1.0;
    let never = |w: &[i16], hz: f64| tone_seconds(w, hz) == 0.0;
    assert!(h.len() > 48_000 * 3, "host output too short: {}", h.len());
    assert!(
        heard(&h, 660.0) && heard(&h, 880.0),
        "host hears Ivo and Juno"
    );
    assert!(
        heard(&i, 440.0) && heard(&i, 880.0),
        "Ivo hears the host and Juno"
    );
    assert!(
        heard(&j, 440.0) && heard(&j, 660.0),
        "Juno hears the host and Ivo"
    );
    assert!(
        never(&h, 440.0) && never(&i, 660.0) && never(&j, 880.0),
        "nobody hears themselves"
    );
    for w in [&h, &i, &j] {
        assert!(never(w, 1100.0), "nobody hears the audience member Kai");
    }
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn unreachable_host_names_the_addresses_tried_and_a_taken_port_says_so() {
    let scratch = tempdir("unreachable");
    let root = scratch.path();
    let dir = init(root, "Max");
    let pass = root.join("pass");
    init(root, "Host");
    // A real invite whose host is gone: its port no longer answers.
    let mut host = spawn(root, "Host", &["host", "--title", "Gone"], "none");
    let invite = host.invite();
    let addr = host.wait("listening", Duration::from_secs(10), |v| {
        v["event"] == "listening"
    })["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    host.child.kill().unwrap();
    let _ = host.child.wait();
    let out = Command::new(BIN)
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ])
        .args([
            "join",
            &invite,
            "--input",
            "none",
            "--output",
            "null",
            "--join-timeout-secs",
            "2",
            "--bind",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("did not answer") && text.contains(&addr),
        "{text}"
    );
    // Binding a port that is taken.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ])
        .args([
            "host", "--title", "T", "--input", "none", "--output", "null", "--bind", &port,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot listen on") && err.contains("--bind"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn bad_invite_and_wrong_passphrase_give_clear_errors() {
    let scratch = tempdir("errors");
    let root = scratch.path();
    let dir = init(root, "Lea");
    let out = Command::new(BIN)
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--passphrase-file",
            root.join("pass").to_str().unwrap(),
        ])
        .args([
            "join",
            "salon:notaninvite",
            "--input",
            "silence",
            "--output",
            "null",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad invite"), "{err}");
    let wrong = root.join("wrong");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let out = Command::new(BIN)
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--passphrase-file",
            wrong.to_str().unwrap(),
        ])
        .args(["history"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong passphrase"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}
