//! Real `salon` processes in a room on loopback: tones in, WAV files out, commands on
//! stdin, JSON events on stdout.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_salon");

/// Progress lines in the test log, so a hang shows where it is.
macro_rules! step {
    ($($t:tt)*) => { eprintln!("[cli test] {}", format!($($t)*)) };
}

struct Peer {
    name: String,
    child: Child,
    stdin: ChildStdin,
    events: Receiver<Value>,
    seen: Vec<Value>,
    /// The latest room state this peer reported.
    room: Option<Value>,
    out: PathBuf,
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("salon-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn init(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let pass = root.join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let st = Command::new(BIN)
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ])
        .args(["init", "--name", name, "--kdf-memory-kib", "256"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "init: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    dir
}

fn spawn(root: &Path, name: &str, args: &[&str], input: &str) -> Peer {
    let dir = root.join(name);
    let out = root.join(format!("{name}.wav"));
    let mut child = Command::new(BIN)
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--passphrase-file",
            root.join("pass").to_str().unwrap(),
        ])
        .args(args)
        .args([
            "--bind",
            "127.0.0.1:0",
            "--events",
            "json",
            "--input",
            input,
            "--output",
            out.to_str().unwrap(),
        ])
        .args(["--no-noise-suppression", "--no-echo-cancellation"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stdin = child.stdin.take().unwrap();
    let (tx, events) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    Peer {
        name: name.into(),
        child,
        stdin,
        events,
        seen: Vec::new(),
        room: None,
        out,
    }
}

impl Peer {
    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for an event matching `pred`, keeping everything seen.
    fn wait(&mut self, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let end = Instant::now() + limit;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    if v["event"] == "room" || v["event"] == "joined" {
                        self.room = Some(v["room"].clone());
                    }
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "{}: no {what} within {limit:?}; saw {:#?}",
            self.name,
            self.seen
                .iter()
                .filter(|v| v["event"] != "levels" && v["event"] != "links")
                .collect::<Vec<_>>()
        );
    }

    /// Waits until the latest room state (not any earlier one) satisfies `pred`.
    fn room_has(&mut self, what: &str, pred: impl Fn(&Value) -> bool) {
        if self.room.as_ref().is_some_and(&pred) {
            return;
        }
        let end = Instant::now() + Duration::from_secs(15);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Ok(v) = self.events.recv_timeout(left) else {
                break;
            };
            if v["event"] == "room" || v["event"] == "joined" {
                self.room = Some(v["room"].clone());
            }
            self.seen.push(v);
            if self.room.as_ref().is_some_and(&pred) {
                return;
            }
        }
        panic!(
            "{}: room never had {what}; last room {:#?}",
            self.name, self.room
        );
    }
}

fn member<'a>(room: &'a Value, name: &str) -> Option<&'a Value> {
    room["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}

/// Goertzel power of `hz` relative to total power, over 16-bit mono samples at 48 kHz.
fn tone_share(samples: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2, mut total) = (0.0f64, 0.0f64, 0.0f64);
    for &x in samples {
        let x = f64::from(x) / 32768.0;
        total += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A pure tone of amplitude A over N samples gives power (A·N/2)² and total A²·N/2.
    if total == 0.0 {
        0.0
    } else {
        power / (total * samples.len() as f64 / 2.0)
    }
}

fn read_wav(p: &Path) -> Vec<i16> {
    let bytes = std::fs::read(p).unwrap();
    // Canonical 44-byte header of a 16-bit mono WAV as written by salon-audio (hound).
    bytes[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

#[test]
fn host_and_three_joiners_hear_each_other_chat_moderate_and_survive_a_kill_and_host_leaving() {
    let root = tempdir("room");
    for n in ["Hana", "Ivo", "Juno", "Kai"] {
        init(&root, n);
    }
    let mut host = spawn(
        &root,
        "Hana",
        &["host", "--title", "Loopback jazz"],
        "tone:440",
    );
    step!("host started");
    let invite = host.wait("invite", Duration::from_secs(10), |v| {
        v["event"] == "hosting"
    })["invite"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ivo = spawn(&root, "Ivo", &["join", &invite], "tone:660");
    let mut juno = spawn(&root, "Juno", &["join", &invite], "tone:880");
    let mut kai = spawn(&root, "Kai", &["join", &invite], "tone:1100");
    for p in [&mut ivo, &mut juno, &mut kai] {
        p.wait("joined", Duration::from_secs(10), |v| {
            v["event"] == "joined"
        });
    }
    step!("joiners started");
    host.room_has("four members", |r| {
        r["members"].as_array().is_some_and(|m| m.len() == 4)
    });

    step!("four in the room");
    // Ivo raises a hand; the host invites Ivo and Juno on stage; Kai stays in the audience.
    ivo.say("hand");
    host.room_has("Ivo's hand", |r| {
        member(r, "Ivo").is_some_and(|m| m["hand_raised"] == true)
    });
    host.say("promote Ivo");
    host.say("promote Juno");
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
    let _ = k;
    for (who, w) in [("host", &h), ("ivo", &i), ("juno", &j)] {
        let shares: Vec<String> = [440.0, 660.0, 880.0, 1100.0]
            .iter()
            .map(|f| format!("{f}: {:.4}", tone_share(w, *f)))
            .collect();
        step!(
            "{who} output {} samples, tone shares {}",
            w.len(),
            shares.join(", ")
        );
    }
    assert!(h.len() > 48_000 * 3, "host output too short: {}", h.len());
    assert!(
        tone_share(&h, 660.0) > 0.01,
        "host hears Ivo: {}",
        tone_share(&h, 660.0)
    );
    assert!(
        tone_share(&h, 880.0) > 0.01,
        "host hears Juno: {}",
        tone_share(&h, 880.0)
    );
    assert!(
        tone_share(&h, 440.0) < 0.001,
        "host does not hear itself: {}",
        tone_share(&h, 440.0)
    );
    assert!(
        tone_share(&i, 440.0) > 0.01
            && tone_share(&i, 880.0) > 0.01
            && tone_share(&i, 660.0) < 0.001
    );
    assert!(tone_share(&j, 440.0) > 0.01 && tone_share(&j, 660.0) > 0.01);
    assert!(
        tone_share(&i, 1100.0) < 0.001,
        "nobody hears the audience member Kai"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bad_invite_and_wrong_passphrase_give_clear_errors() {
    let root = tempdir("errors");
    let dir = init(&root, "Lea");
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
    let _ = std::fs::remove_dir_all(&root);
}
