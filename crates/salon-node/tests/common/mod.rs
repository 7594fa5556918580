//! Helpers for tests that run real `salon` processes on loopback.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;

mod json_events;
#[allow(unused_imports)] // not every test binary uses both
pub use json_events::{json_events, member};

pub const BIN: &str = env!("CARGO_BIN_EXE_salon");

/// Progress lines in the test log, so a hang shows where it is.
#[macro_export]
macro_rules! step {
    ($($t:tt)*) => { eprintln!("[cli test] {}", format!($($t)*)) };
}

pub struct Peer {
    pub name: String,
    pub child: Child,
    pub stdin: ChildStdin,
    pub events: Receiver<Value>,
    pub seen: Vec<Value>,
    /// The latest room state this peer reported.
    pub room: Option<Value>,
    pub out: PathBuf,
}

pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("salon-cli-{tag}-"))
        .tempdir()
        .unwrap()
}

pub fn init(root: &Path, name: &str) -> PathBuf {
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
        .env("SALON_INSECURE_KDF_FOR_TESTS", "1")
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "init: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    dir
}

pub fn spawn(root: &Path, name: &str, args: &[&str], input: &str) -> Peer {
    spawn_opts(root, name, args, input, false)
}

/// Like [`spawn`]; with `dsp` the node runs noise suppression and echo cancellation (off
/// in tests so tones pass untouched).
pub fn spawn_opts(root: &Path, name: &str, args: &[&str], input: &str, dsp: bool) -> Peer {
    let mut cmd = command(root, name, args, input, dsp);
    cmd.stderr(Stdio::inherit());
    start(cmd, root, name)
}

/// Like [`spawn`], logging everything (`SALON_LOG=trace`) into `root/NAME.log`.
pub fn spawn_logged(root: &Path, name: &str, args: &[&str], input: &str) -> (Peer, PathBuf) {
    let log = root.join(format!("{name}.log"));
    let mut cmd = command(root, name, args, input, false);
    cmd.env("SALON_LOG", "trace")
        .stderr(std::fs::File::create(&log).unwrap());
    (start(cmd, root, name), log)
}

/// The `salon` command line of peer `name` under `root`, events as JSON on stdout.
fn command(root: &Path, name: &str, args: &[&str], input: &str, dsp: bool) -> Command {
    let dir = root.join(name);
    let out = root.join(format!("{name}.wav"));
    let mut cmd = Command::new(BIN);
    cmd.args([
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
    .args(if dsp {
        &[][..]
    } else {
        &["--no-noise-suppression", "--no-echo-cancellation"][..]
    })
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    cmd
}

fn start(mut cmd: Command, root: &Path, name: &str) -> Peer {
    let mut child = cmd.spawn().unwrap();
    let events = json_events(child.stdout.take().unwrap());
    let stdin = child.stdin.take().unwrap();
    Peer {
        name: name.into(),
        child,
        stdin,
        events,
        seen: Vec::new(),
        room: None,
        out: root.join(format!("{name}.wav")),
    }
}

impl Peer {
    /// The invite a hosting peer printed.
    pub fn invite(&mut self) -> String {
        self.wait("invite", Duration::from_secs(10), |v| {
            v["event"] == "hosting"
        })["invite"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for an event matching `pred`, keeping everything seen.
    pub fn wait(&mut self, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
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

    /// Waits for a stage invitation (a moderator's `promote NAME` asks first) and
    /// accepts it, as someone pressing "Accept" at once would.
    pub fn accept_stage_invite(&mut self) {
        self.wait("a stage invitation", Duration::from_secs(10), |v| {
            v["event"] == "stage_invited"
        });
        self.say("accept");
    }

    /// Waits until the latest room state (not any earlier one) satisfies `pred`.
    pub fn room_has(&mut self, what: &str, pred: impl Fn(&Value) -> bool) {
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

/// Goertzel power of `hz` relative to total power, over 16-bit mono samples at 48 kHz.
pub fn tone_share(samples: &[i16], hz: f64) -> f64 {
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

/// Seconds of `samples` (in 100 ms blocks) in which `hz` carries at least 5% of the power:
/// robust to a speaker who talked only part of the time.
pub fn tone_seconds(samples: &[i16], hz: f64) -> f64 {
    samples
        .chunks_exact(4800)
        .filter(|b| tone_share(b, hz) > 0.05)
        .count() as f64
        / 10.0
}

pub fn read_wav(p: &Path) -> Vec<i16> {
    let bytes = std::fs::read(p).unwrap();
    // Canonical 44-byte header of a 16-bit mono WAV as written by salon-audio (hound).
    bytes[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}
