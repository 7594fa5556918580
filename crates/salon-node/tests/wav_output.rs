//! `--output FILE.wav` is a complete WAV file however the process ends: a standard reader
//! takes it, and its RIFF and data sizes match the file's length.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Reads `path` back with `hound` (and with Python's `wave` where python3 is installed) and
/// checks that the header's sizes describe the whole file.
fn assert_standard_wav(path: &Path, min_seconds: f64) {
    let bytes = std::fs::read(path).unwrap();
    let len = bytes.len();
    assert!(len > 44, "{}: only {len} bytes", path.display());
    let le32 = |at: usize| {
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
    };
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(le32(4), len - 8, "RIFF size of {}", path.display());
    let reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 48_000, 16)
    );
    let samples = reader.len() as usize;
    assert_eq!(44 + 2 * samples, len, "data size of {}", path.display());
    assert!(
        samples as f64 >= min_seconds * 48_000.0,
        "{}: {samples} samples",
        path.display()
    );
    let py = Command::new("python3")
        .args([
            "-c",
            "import sys, wave\nw = wave.open(sys.argv[1])\nprint(w.getnframes())",
            path.to_str().unwrap(),
        ])
        .output();
    if let Ok(out) = py {
        assert!(
            out.status.success(),
            "python's wave refuses {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let frames: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(frames, samples, "python's wave reads another length");
    }
}

/// Sends `sig` (`-TERM`, `-INT`) to the peer's process.
fn signal(p: &Peer, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig}");
}

/// A host that has written at least a second of output.
fn host(root: &Path, name: &str) -> Peer {
    init(root, name);
    let mut p = spawn(root, name, &["host", "--title", "Tape"], "tone:440");
    p.invite();
    std::thread::sleep(Duration::from_millis(1200));
    p
}

#[test]
fn wav_output_is_complete_after_leave_end_sigterm_sigint_and_closed_stdin() {
    let scratch = tempdir("wav-exits");
    let root = scratch.path();
    let mut leave = host(root, "Leave");
    leave.say("leave");
    let mut end = host(root, "End");
    end.say("end");
    let term = host(root, "Term");
    signal(&term, "-TERM");
    let int = host(root, "Int");
    signal(&int, "-INT");
    // Stdin closed: the node keeps running (a bot without a terminal) until told to stop.
    let Peer {
        mut child,
        stdin,
        events: _events,
        out,
        ..
    } = host(root, "Eof");
    drop(stdin);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "closed stdin ends nothing"
    );
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());
    assert_standard_wav(&out, 1.0);
    for mut p in [leave, end, term, int] {
        let st = p.child.wait().unwrap();
        assert!(st.success(), "{} exited with {st}", p.name);
        assert_standard_wav(&p.out, 1.0);
    }
}

#[test]
fn wav_output_is_complete_after_being_removed_from_the_room() {
    let scratch = tempdir("wav-removed");
    let root = scratch.path();
    let mut h = host(root, "Host");
    let invite = h.invite();
    init(root, "Gone");
    let mut gone = spawn(root, "Gone", &["join", &invite], "tone:660");
    gone.wait("joined", Duration::from_secs(10), |v| {
        v["event"] == "joined"
    });
    std::thread::sleep(Duration::from_millis(1200));
    h.say("kick Gone");
    gone.wait("removed", Duration::from_secs(5), |v| {
        v["event"] == "left" && v["reason"] == "removed"
    });
    assert!(gone.child.wait().unwrap().success());
    assert_standard_wav(&gone.out, 1.0);
    h.say("end");
    assert!(h.child.wait().unwrap().success());
    assert_standard_wav(&h.out, 2.0);
}
