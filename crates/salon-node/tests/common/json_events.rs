//! A `salon` process's `--events json` output as a stream of values. Shared by salon-node's
//! tests and the desktop app's (`src-tauri/tests/common` includes this file by path).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::ChildStdout;
use std::sync::mpsc::{Receiver, channel};

use serde_json::Value;

/// Parses each line of `stdout` as a JSON event on a thread of its own; lines that are not
/// JSON are skipped, and the channel closes when the process does.
pub fn json_events(stdout: ChildStdout) -> Receiver<Value> {
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
    events
}

/// A member of a room as a peer reports it, by display name.
pub fn member<'a>(room: &'a Value, name: &str) -> Option<&'a Value> {
    room["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}
