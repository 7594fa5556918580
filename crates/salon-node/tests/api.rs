//! The node API behind the desktop app's History and Settings screens, driven in-process
//! on loopback: history and chat pages, contacts and safety numbers, settings, mic test,
//! passphrase change and backup.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod in_process;

use std::time::Duration;

use in_process::{PASS, config, ok, start, tempdir, wait_for};
use salon_audio::{InputSpec, OutputSpec};
use salon_node::api::{Role, Settings, Theme, parse_key};
use salon_node::{Command, Node, NodeConfig, NodeError, NodeEvent, Reply, profile};
use salon_proto::PublicKey;
use salon_store::Store;

/// The key of the member called `name` in `node`'s room.
async fn key_of(node: &Node, name: &str) -> PublicKey {
    let Reply::Room { room: Some(room) } = ok(node, Command::Status).await else {
        panic!("not in a room")
    };
    let m = room
        .members
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} is not in the room"));
    parse_key(&m.key).unwrap()
}

fn members(ev: &NodeEvent) -> Option<usize> {
    match ev {
        NodeEvent::Joined { room } | NodeEvent::Room { room } => Some(room.members.len()),
        _ => None,
    }
}

/// Ada hosts `title` and Bo joins through her invite; returns both, once each sees two
/// members, and their data folder (removed when it is dropped).
async fn ada_hosts_bo_joins(tag: &str, title: &str) -> (Node, Node, tempfile::TempDir) {
    let scratch = tempdir(tag);
    let root = scratch.path();
    let mut a = start(&root.join("a"), "Ada").await;
    let mut b = start(&root.join("b"), "Bo").await;
    let Reply::Invite { invite } = ok(
        &a,
        Command::Host {
            title: title.into(),
        },
    )
    .await
    else {
        panic!("no invite")
    };
    ok(&b, Command::Join { invite }).await;
    wait_for(&mut a, "Bo in Ada's room", |e| {
        (members(e) == Some(2)).then_some(())
    })
    .await;
    wait_for(&mut b, "Bo joined", |e| {
        (members(e) == Some(2)).then_some(())
    })
    .await;
    (a, b, scratch)
}

#[tokio::test]
async fn a_room_with_chat_lands_in_history_contacts_and_safety_numbers_match() {
    let (mut a, mut b, root) = ada_hosts_bo_joins("history", "Tea").await;

    ok(&b, Command::Chat("hello from Bo".into())).await;
    wait_for(&mut a, "Bo's line", |e| match e {
        NodeEvent::Chat { text, .. } if text == "hello from Bo" => Some(()),
        _ => None,
    })
    .await;
    ok(&a, Command::Chat("hi Bo".into())).await;
    wait_for(&mut b, "Ada's line", |e| match e {
        NodeEvent::Chat { text, .. } if text == "hi Bo" => Some(()),
        _ => None,
    })
    .await;

    // Both sides read the same 60 digits for the pair.
    let (ka, kb) = (key_of(&a, "Ada").await, key_of(&a, "Bo").await);
    let Reply::SafetyNumber(sa) = ok(&a, Command::SafetyNumber { key: kb }).await else {
        panic!("no safety number")
    };
    let Reply::SafetyNumber(sb) = ok(&b, Command::SafetyNumber { key: ka }).await else {
        panic!("no safety number")
    };
    assert_eq!(sa.safety_number.len(), 60);
    assert!(sa.safety_number.bytes().all(|c| c.is_ascii_digit()));
    assert_eq!(sa.safety_number, sb.safety_number);
    assert_eq!(sa.name, "Bo");
    assert!(!sa.verified);
    // Someone never met: neither in the room nor a contact.
    let stranger = PublicKey([7; 32]);
    let e = a
        .command(Command::SafetyNumber { key: stranger })
        .await
        .unwrap_err();
    assert_eq!(e.code(), "no_such_member");
    let e = a
        .command(Command::VerifyContact {
            key: stranger,
            verified: true,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), "no_such_member");

    ok(
        &a,
        Command::VerifyContact {
            key: kb,
            verified: true,
        },
    )
    .await;
    let Reply::SafetyNumber(sa2) = ok(&a, Command::SafetyNumber { key: kb }).await else {
        panic!("no safety number")
    };
    assert!(sa2.verified, "verification is remembered");

    ok(&b, Command::Leave).await;
    wait_for(&mut a, "Bo gone", |e| (members(e) == Some(1)).then_some(())).await;

    // The Home screen compares numbers with contacts who are not in the room: Bo has
    // left, and his number, name and mark are still there.
    let Reply::SafetyNumber(gone) = ok(&a, Command::SafetyNumber { key: kb }).await else {
        panic!("no safety number for a contact outside the room")
    };
    assert_eq!(gone.safety_number, sa.safety_number);
    assert_eq!(gone.name, "Bo");
    assert!(gone.verified);

    let Reply::Contacts { contacts } = ok(&a, Command::Contacts).await else {
        panic!("no contacts")
    };
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].name, "Bo");
    assert!(contacts[0].verified);
    assert!(!contacts[0].key_changed);
    assert_eq!(contacts[0].safety_number, sa.safety_number);

    let Reply::HistoryRooms { rooms } = ok(
        &a,
        Command::HistoryRooms {
            before: None,
            limit: 10,
        },
    )
    .await
    else {
        panic!("no rooms")
    };
    assert_eq!(rooms.len(), 1);
    let r = &rooms[0];
    assert_eq!(r.title, "Tea");
    assert!(r.hosted);
    assert_eq!(r.message_count, 2);
    let names: Vec<&str> = r.participants.iter().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"Ada") && names.contains(&"Bo"), "{names:?}");
    let bo = r.participants.iter().find(|p| p.name == "Bo").unwrap();
    assert!(bo.left_at.is_some(), "Bo's leaving is recorded");

    let Reply::HistoryChat { messages } = ok(
        &a,
        Command::HistoryChat {
            room: r.id,
            before: None,
            limit: 50,
        },
    )
    .await
    else {
        panic!("no chat")
    };
    let lines: Vec<(&str, bool)> = messages.iter().map(|m| (m.text.as_str(), m.mine)).collect();
    assert_eq!(
        lines,
        [("hi Bo", true), ("hello from Bo", false)],
        "newest first"
    );
    // Paging back from the newest gives the older line only.
    let Reply::HistoryChat { messages: older } = ok(
        &a,
        Command::HistoryChat {
            room: r.id,
            before: Some(messages[0].id),
            limit: 50,
        },
    )
    .await
    else {
        panic!("no chat")
    };
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].text, "hello from Bo");
    // Paging past the only room is empty, not an error.
    let Reply::HistoryRooms { rooms: none } = ok(
        &a,
        Command::HistoryRooms {
            before: Some(r.id),
            limit: 10,
        },
    )
    .await
    else {
        panic!("no rooms")
    };
    assert!(none.is_empty());

    a.shutdown().await;
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn settings_are_saved_applied_and_survive_a_restart() {
    let scratch = tempdir("settings");
    let root = scratch.path();
    let dir = root.join("a");
    let a = start(&dir, "Ada").await;
    let Reply::Settings(s) = ok(&a, Command::GetSettings).await else {
        panic!()
    };
    assert_eq!(s.theme, Theme::System);
    assert_eq!(s.push_to_talk_key, None);
    // The saved choice is reported (and so kept by the next save), even though this
    // node runs with processing off.
    assert!(s.noise_suppression && s.echo_cancellation);
    let wanted = Settings {
        theme: Theme::Dark,
        push_to_talk_key: Some("Space".into()),
        ..s
    };
    let Reply::Settings(saved) = ok(&a, Command::SetSettings(wanted.clone())).await else {
        panic!()
    };
    assert_eq!(saved, wanted);
    // The talk key is accepted (its effect on sending is pinned in salon-audio's sender).
    ok(&a, Command::PushToTalk(true)).await;
    ok(&a, Command::PushToTalk(false)).await;
    a.shutdown().await;

    let p = profile::unlock(&dir, PASS).unwrap();
    let a = Node::start(p, config()).await.unwrap();
    let Reply::Settings(again) = ok(&a, Command::GetSettings).await else {
        panic!()
    };
    assert_eq!(again, wanted);
    a.shutdown().await;
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn the_mic_test_reports_levels_outside_a_room_until_stopped() {
    let scratch = tempdir("mic");
    let root = scratch.path();
    let mut a = start(&root.join("a"), "Ada").await;
    ok(&a, Command::MicTest(true)).await;
    // A 0.3-peak tone is about -13.5 dBFS RMS (the first reports may come before the
    // engine measured a frame).
    wait_for(&mut a, "a level report with the tone", |e| match e {
        NodeEvent::Levels { input_dbfs, .. } if *input_dbfs > -20.0 => Some(()),
        _ => None,
    })
    .await;
    ok(&a, Command::MicTest(false)).await;
    // Drain what was queued before the stop, then nothing more comes for several periods.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut events = a.take_events();
    while events.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut levels = 0;
    while let Ok(e) = events.try_recv() {
        levels += usize::from(matches!(e, NodeEvent::Levels { .. }));
    }
    assert_eq!(levels, 0, "no level reports after the mic test stopped");
    // A null output has nowhere to play a test sound, and says so.
    let e = a.command(Command::TestSound).await.unwrap_err();
    assert!(matches!(e, NodeError::NoOutputDevice), "{e}");
    assert_eq!(e.code(), "audio");
    a.shutdown().await;
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn a_passphrase_change_needs_the_old_one_and_a_backup_opens_with_it() {
    let scratch = tempdir("rekey");
    let root = scratch.path();
    let dir = root.join("a");
    let a = start(&dir, "Ada").await;
    ok(
        &a,
        Command::Host {
            title: "Kept".into(),
        },
    )
    .await;
    ok(&a, Command::EndRoom).await;

    let e = a
        .command(Command::ChangePassphrase {
            old: "wrong".into(),
            new: "a new passphrase".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), "wrong_passphrase");
    let e = a
        .command(Command::ChangePassphrase {
            old: PASS.into(),
            new: "short".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), "weak_passphrase");
    ok(
        &a,
        Command::ChangePassphrase {
            old: PASS.into(),
            new: "a new passphrase".into(),
        },
    )
    .await;

    let dest = root.join("backup.db");
    let Reply::Path { path } = ok(
        &a,
        Command::ExportBackup {
            path: Some(dest.clone()),
        },
    )
    .await
    else {
        panic!()
    };
    assert_eq!(path, dest);
    // The same file again is refused rather than overwritten.
    let e = a
        .command(Command::ExportBackup {
            path: Some(dest.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), "store");
    a.shutdown().await;

    let backup = Store::open(&dest, "a new passphrase").unwrap();
    let rooms = backup.rooms(None, 10).unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].title, "Kept");
    drop(backup);
    assert_eq!(
        profile::unlock(&dir, PASS).unwrap_err().code(),
        "wrong_passphrase"
    );
    profile::unlock(&dir, "a new passphrase").unwrap();
    let _ = std::fs::remove_dir_all(root);
}

/// A microphone chosen in settings and unplugged since must not keep Salon from starting:
/// the default stands in, the user is told, and the choice stays saved.
#[tokio::test]
async fn a_saved_device_that_is_gone_falls_back_to_the_default_at_start() {
    if !std::env::var("SALON_AUDIO_DEVICE_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipping: set SALON_AUDIO_DEVICE_TESTS=1 with a sound server running");
        return;
    }
    let scratch = tempdir("gone");
    let root = scratch.path();
    let dir = root.join("a");
    let a = start(&dir, "Ada").await;
    let Reply::Settings(s) = ok(&a, Command::GetSettings).await else {
        panic!()
    };
    // Saved directly: the tone input is not a device, so the node would not check it.
    a.shutdown().await;
    let mut p = profile::unlock(&dir, PASS).unwrap();
    let gone = Settings {
        input_device: Some("Unplugged USB Mic".into()),
        ..s
    };
    p.store.set_settings(&gone).unwrap();
    let cfg = NodeConfig {
        input: InputSpec::Device(None),
        output: OutputSpec::Null,
        ..config()
    };
    let mut a = Node::start(p, cfg)
        .await
        .expect("starts with the default microphone");
    let told = wait_for(&mut a, "the notice", |e| match e {
        NodeEvent::Audio { message } if message.contains("Unplugged USB Mic") => {
            Some(message.clone())
        }
        _ => None,
    })
    .await;
    assert!(told.contains("default microphone"), "{told}");
    let Reply::Settings(kept) = ok(&a, Command::GetSettings).await else {
        panic!()
    };
    assert_eq!(kept.input_device.as_deref(), Some("Unplugged USB Mic"));
    a.shutdown().await;
    let _ = std::fs::remove_dir_all(root);
}

/// The desktop shell sends through handles so that a slow command does not hold up
/// others; a handle outliving its node says the node stopped.
#[tokio::test]
async fn a_handle_runs_commands_until_its_node_stops() {
    let scratch = tempdir("handle");
    let root = scratch.path();
    let a = start(&root.join("a"), "Ada").await;
    let h = a.handle();
    let h2 = h.clone();
    let (first, second) =
        tokio::join!(h.command(Command::GetSettings), h2.command(Command::Status));
    assert!(matches!(first, Ok(Reply::Settings(_))));
    assert!(matches!(second, Ok(Reply::Room { room: None })));
    a.shutdown().await;
    let e = h.command(Command::Status).await.unwrap_err();
    assert_eq!(e.code(), "stopped");
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn a_listener_reports_what_it_loses_of_the_speakers_audio_over_real_udp() {
    let (mut a, mut b, root) = ada_hosts_bo_joins("reports", "Loss").await;
    // Ada hosts, so she is on stage and Bo hears her tone: Bo's reports (every 2 s) reach
    // Ada's link list. Loopback loses nothing.
    let reported = wait_for(&mut a, "Bo's reception report", |e| match e {
        NodeEvent::Links { links } => links
            .iter()
            .find(|l| l.name == "Bo")
            .and_then(|l| l.reported_loss_permille),
        _ => None,
    })
    .await;
    assert_eq!(reported, 0);
    // Bo is in the audience: nobody hears him, so nobody reports to him. Checked after
    // 7 s of Ada's audio: more than three report intervals.
    let to_bo = wait_for(&mut b, "Bo's link list", |e| match e {
        NodeEvent::Links { links } if links.iter().any(|l| l.up && l.audio_received > 350) => Some(
            links
                .iter()
                .find(|l| l.name == "Ada")
                .map(|l| l.reported_loss_permille),
        ),
        _ => None,
    })
    .await;
    assert_eq!(to_bo, Some(None));
    a.shutdown().await;
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

/// Whether the room event shows this node's own member muted.
fn me_muted(ev: &NodeEvent) -> Option<bool> {
    match ev {
        NodeEvent::Joined { room } | NodeEvent::Room { room } => {
            room.members.iter().find(|m| m.me).map(|m| m.muted)
        }
        _ => None,
    }
}

#[tokio::test]
async fn with_push_to_talk_the_room_sees_a_speaker_muted_unless_the_key_is_held() {
    let scratch = tempdir("ptt");
    let root = scratch.path();
    let mut a = start(&root.join("a"), "Ada").await;
    ok(
        &a,
        Command::Host {
            title: "Talk".into(),
        },
    )
    .await;
    wait_for(&mut a, "Ada on stage, unmuted", |e| {
        (me_muted(e) == Some(false)).then_some(())
    })
    .await;
    let Reply::Settings(s) = ok(&a, Command::GetSettings).await else {
        panic!()
    };
    let ptt = Settings {
        push_to_talk_key: Some("KeyT".into()),
        ..s
    };
    // Turning push-to-talk on mutes the host on stage, with no front end asking.
    ok(&a, Command::SetSettings(ptt)).await;
    wait_for(&mut a, "muted by push-to-talk", |e| {
        (me_muted(e) == Some(true)).then_some(())
    })
    .await;
    ok(&a, Command::PushToTalk(true)).await;
    wait_for(&mut a, "unmuted while the key is held", |e| {
        (me_muted(e) == Some(false)).then_some(())
    })
    .await;
    ok(&a, Command::PushToTalk(false)).await;
    wait_for(&mut a, "muted again on release", |e| {
        (me_muted(e) == Some(true)).then_some(())
    })
    .await;
    a.shutdown().await;
    let _ = std::fs::remove_dir_all(root);
}

/// Whether a levels report says our microphone reaches the room.
fn transmitting(ev: &NodeEvent) -> Option<bool> {
    match ev {
        NodeEvent::Levels { transmitting, .. } => Some(*transmitting),
        _ => None,
    }
}

/// Ada invites Bo (whose hand is down) on stage; returns the inviter's name Bo was shown.
async fn ada_invites_bo(a: &Node, b: &mut Node) -> String {
    let key = key_of(a, "Bo").await;
    ok(
        a,
        Command::Moderate {
            key,
            action: salon_proto::Action::InviteToStage,
        },
    )
    .await;
    wait_for(b, "the stage invitation", |e| match e {
        NodeEvent::StageInvited { name, .. } => Some(name.clone()),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn an_invited_listener_is_not_on_the_air_until_it_accepts() {
    let (mut a, mut b, root) = ada_hosts_bo_joins("stage-accept", "Stage").await;
    assert_eq!(ada_invites_bo(&a, &mut b).await, "Ada");
    // A second of level reports (every 100 ms) after the invitation: Bo's tone never
    // reaches the room, and Ada hears nothing from him.
    for _ in 0..10 {
        let on_air = wait_for(&mut b, "Bo's levels", transmitting).await;
        assert!(!on_air, "transmitting on the invitation alone");
    }
    let heard = wait_for(&mut a, "Ada's link to Bo", |e| match e {
        NodeEvent::Links { links } => links
            .iter()
            .find(|l| l.name == "Bo")
            .map(|l| l.audio_received),
        _ => None,
    })
    .await;
    assert_eq!(heard, 0);
    ok(&b, Command::AnswerStageInvite { accept: true }).await;
    wait_for(&mut b, "Bo a speaker", |e| {
        matches!(
            e,
            NodeEvent::RoleChanged {
                role: Role::Speaker
            }
        )
        .then_some(())
    })
    .await;
    wait_for(&mut b, "Bo on the air", |e| {
        (transmitting(e) == Some(true)).then_some(())
    })
    .await;
    wait_for(&mut a, "Bo audible", |e| {
        matches!(e, NodeEvent::FirstAudio { .. }).then_some(())
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_listener_who_declines_stays_in_the_audience_and_the_host_hears_of_it() {
    let (mut a, mut b, root) = ada_hosts_bo_joins("stage-decline", "Stage").await;
    ada_invites_bo(&a, &mut b).await;
    ok(&b, Command::AnswerStageInvite { accept: false }).await;
    let who = wait_for(&mut a, "the decline", |e| match e {
        NodeEvent::StageInviteDeclined { name, .. } => Some(name.clone()),
        _ => None,
    })
    .await;
    assert_eq!(who, "Bo");
    for _ in 0..10 {
        let on_air = wait_for(&mut b, "Bo's levels", transmitting).await;
        assert!(!on_air, "transmitting after declining");
    }
    let Reply::Room { room: Some(room) } = ok(&b, Command::Status).await else {
        panic!("no room")
    };
    let me = room.members.iter().find(|m| m.me).expect("Bo in his room");
    assert_eq!(me.role, Role::Listener);
    // The invitation is used up: a late "yes" is refused.
    let e = b
        .command(Command::AnswerStageInvite { accept: true })
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_allowed");
    a.shutdown().await;
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}
