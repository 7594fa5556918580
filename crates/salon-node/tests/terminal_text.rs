//! Text that other people choose (chat) reaches a terminal as visible escapes, never as
//! control sequences the terminal would obey: in live events and in `salon history`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const EVIL: &str = "\u{1b}]0;pwned\u{7}hi\u{1b}[2J\u{9b}31m\u{202e}gnp.exe";
const SHOWN: &str = "\\u{1b}]0;pwned\\u{7}hi\\u{1b}[2J\\u{9b}31m\\u{202e}gnp.exe";

fn is_control(c: char) -> bool {
    (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c)
}

#[test]
fn chat_with_terminal_escapes_is_shown_escaped_in_text_events_and_history() {
    let scratch = tempdir("escapes");
    let root = scratch.path();
    let host_dir = init(root, "Tess");
    init(root, "Mal");
    let pass = root.join("pass");
    let mut host = Command::new(BIN)
        .args(["--data-dir", host_dir.to_str().unwrap()])
        .args(["--passphrase-file", pass.to_str().unwrap()])
        .args(["host", "--title", "Safe", "--bind", "127.0.0.1:0"])
        .args(["--input", "none", "--output", "null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = host.stdout.take().unwrap();
    std::thread::spawn(move || {
        // Raw bytes, so an escape byte cannot hide in a lossy conversion.
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            if tx.send(String::from_utf8(line).unwrap()).is_err() {
                break;
            }
        }
    });
    let next_with = |what: &str| -> String {
        loop {
            let l = lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no line with {what}"));
            assert!(!l.chars().any(is_control), "control character in {l:?}");
            if l.contains(what) {
                return l;
            }
        }
    };
    let invite = next_with("invite: ")
        .trim_start_matches("invite: ")
        .to_owned();
    let mut mal = spawn(root, "Mal", &["join", &invite], "none");
    mal.wait("joined", Duration::from_secs(10), |v| {
        v["event"] == "joined"
    });
    mal.say(&format!("say {EVIL}"));
    let line = next_with("<Mal>");
    assert_eq!(line, format!("<Mal> {SHOWN}"));
    // Programs reading JSON get the exact text back.
    mal.say("leave");
    mal.wait("left", Duration::from_secs(5), |v| v["event"] == "left");
    assert!(mal.child.wait().unwrap().success());
    let mut stdin = host.stdin.take().unwrap();
    writeln!(stdin, "leave").unwrap();
    assert!(host.wait().unwrap().success());

    let hist = Command::new(BIN)
        .args(["--data-dir", host_dir.to_str().unwrap()])
        .args(["--passphrase-file", pass.to_str().unwrap()])
        .arg("history")
        .output()
        .unwrap();
    assert!(hist.status.success());
    let text = String::from_utf8(hist.stdout).unwrap();
    assert!(!text.chars().any(is_control), "{text:?}");
    // The history keeps what was received; only its display is escaped.
    assert!(text.contains(&format!("<Mal> {SHOWN}")), "{text}");
}
