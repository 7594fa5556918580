//! The microphone is a real device here (PulseAudio's default source), and what the test
//! checks is the sound server's own list of recording streams: a listener's microphone is
//! never open, an invitation alone does not open it, a "yes" does, and leaving the stage
//! closes it again. Its own test binary, so the streams of this process are only its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod in_process;

use std::time::Duration;

use in_process::{ok, start, start_with, tempdir, wait_for};
use salon_audio::InputSpec;
use salon_node::api::{Role, parse_key};
use salon_node::{Command, Node, NodeEvent, Reply};
use salon_proto::{Action, PublicKey};

/// `by` (a moderator) does `action` to the member with key `to`.
async fn moderate(by: &Node, to: PublicKey, action: Action) {
    ok(by, Command::Moderate { key: to, action }).await;
}

/// Recording streams this process holds open on the sound server, as `pactl` lists them.
fn recording_streams() -> usize {
    let out = std::process::Command::new("pactl")
        .args(["list", "source-outputs"])
        .output()
        .expect("pactl runs");
    assert!(out.status.success(), "pactl failed: {out:?}");
    let pid = format!("application.process.id = \"{}\"", std::process::id());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim() == pid)
        .count()
}

/// Polls the sound server until this process holds `n` recording streams.
async fn streams_become(n: usize, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = recording_streams();
        if now == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {now} recording streams open, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lets `node` report levels `n` times (every 100 ms): time in which an opened
/// microphone would show up on the server.
async fn reports(node: &mut Node, n: usize) {
    for _ in 0..n {
        wait_for(node, "a level report", |e| {
            matches!(e, NodeEvent::Levels { .. }).then_some(())
        })
        .await;
    }
}

fn role(e: &NodeEvent) -> Option<Role> {
    match e {
        NodeEvent::RoleChanged { role } => Some(*role),
        _ => None,
    }
}

#[tokio::test]
async fn a_listeners_microphone_opens_only_on_stage_after_saying_yes_or_in_a_mic_test() {
    if !std::env::var("SALON_AUDIO_DEVICE_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipping: set SALON_AUDIO_DEVICE_TESTS=1 with a sound server running");
        return;
    }
    let scratch = tempdir("stage");
    let root = scratch.path();
    // Ada plays a tone (not a device); Bo has the default microphone.
    let a = start(&root.join("a"), "Ada").await;
    let mut b = start_with(&root.join("b"), "Bo", InputSpec::Device(None)).await;
    // Started, outside any room: nothing records.
    streams_become(0, "Bo started, not in a room").await;

    let Reply::Invite { invite } = ok(
        &a,
        Command::Host {
            title: "Mic".into(),
        },
    )
    .await
    else {
        panic!("no invite")
    };
    ok(&b, Command::Join { invite }).await;
    let bo = wait_for(&mut b, "Bo joined", |e| match e {
        NodeEvent::Joined { room } => room.members.iter().find(|m| m.me).map(|m| m.key.clone()),
        _ => None,
    })
    .await;
    let bo = parse_key(&bo).unwrap();
    reports(&mut b, 10).await;
    assert_eq!(recording_streams(), 0, "a listener's microphone is open");

    // The mic test is the one thing that opens it off stage, and only while it runs.
    ok(&b, Command::MicTest(true)).await;
    streams_become(1, "mic test on").await;
    ok(&b, Command::MicTest(false)).await;
    streams_become(0, "mic test off").await;

    moderate(&a, bo, Action::InviteToStage).await;
    wait_for(&mut b, "the stage invitation", |e| {
        matches!(e, NodeEvent::StageInvited { .. }).then_some(())
    })
    .await;
    reports(&mut b, 10).await;
    assert_eq!(
        recording_streams(),
        0,
        "the invitation alone opened the mic"
    );

    ok(&b, Command::AnswerStageInvite { accept: true }).await;
    wait_for(&mut b, "Bo a speaker", |e| {
        (role(e) == Some(Role::Speaker)).then_some(())
    })
    .await;
    streams_become(1, "Bo on stage").await;

    moderate(&a, bo, Action::MoveToAudience).await;
    wait_for(&mut b, "Bo back in the audience", |e| {
        (role(e) == Some(Role::Listener)).then_some(())
    })
    .await;
    streams_become(0, "Bo back in the audience").await;

    a.shutdown().await;
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(root);
}
