//! Helpers for tests that drive a [`Node`] in-process on loopback (api.rs, mic.rs).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use salon_audio::{EngineConfig, InputSpec, OutputSpec};
use salon_node::{Command, Node, NodeConfig, NodeEvent, Reply, profile};
use salon_store::KdfParams;

pub const PASS: &str = "correct horse battery staple";

/// A fresh folder for this test process.
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("salon-api-{tag}-"))
        .tempdir()
        .unwrap()
}

/// Loopback, no audio processing, levels every 100 ms, a 440 Hz tone for a microphone.
pub fn config() -> NodeConfig {
    NodeConfig {
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        input: InputSpec::Tone(440.0, 0.3),
        output: OutputSpec::Null,
        engine: EngineConfig {
            noise_suppression: false,
            echo_cancellation: false,
            ..EngineConfig::default()
        },
        report_every: Duration::from_millis(100),
        ..NodeConfig::default()
    }
}

/// A new profile called `name` in `dir`, started with `input` as its microphone.
pub async fn start_with(dir: &Path, name: &str, input: InputSpec) -> Node {
    let p = profile::create_unchecked_kdf(dir, PASS, name, KdfParams::INSECURE_FAST).unwrap();
    Node::start(p, NodeConfig { input, ..config() })
        .await
        .unwrap()
}

/// A new profile called `name` in `dir`, started with the tone microphone.
pub async fn start(dir: &Path, name: &str) -> Node {
    start_with(dir, name, InputSpec::Tone(440.0, 0.3)).await
}

/// Waits for the first event `f` accepts.
pub async fn wait_for<T>(
    node: &mut Node,
    what: &str,
    mut f: impl FnMut(&NodeEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ev = tokio::time::timeout_at(deadline, node.next_event())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("node stopped while waiting for {what}"));
        if let Some(t) = f(&ev) {
            return t;
        }
    }
}

/// Runs `c`, which must succeed.
pub async fn ok(node: &Node, c: Command) -> Reply {
    node.command(c).await.unwrap()
}
