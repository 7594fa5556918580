//! A session logged at the most verbose level (`SALON_LOG=trace`) shows what happened
//! (links up, joins, role changes, chat arriving) and none of what people said or who
//! they are: no display name, room title, chat text, invite or passphrase appears in
//! either process's log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::*;

const HOST: &str = "CanaryHostZq7";
const GUEST: &str = "CanaryGuestXw4";
const TITLE: &str = "Canary-Title-Lm3";
const CHAT: &str = "Canary-Chat-Vb8";

#[test]
fn a_trace_log_of_a_session_holds_no_names_titles_chat_invite_or_passphrase() {
    let scratch = tempdir("logs");
    let root = scratch.path();
    init(root, HOST);
    init(root, GUEST);
    let (mut host, host_log) = spawn_logged(root, HOST, &["host", "--title", TITLE], "tone:440");
    let invite = host.invite();
    let (mut guest, guest_log) = spawn_logged(root, GUEST, &["join", &invite], "none");
    guest.wait("joined", Duration::from_secs(10), |v| {
        v["event"] == "joined"
    });
    host.say(&format!("promote {GUEST}"));
    guest.accept_stage_invite();
    guest.wait("on stage", Duration::from_secs(10), |v| {
        v["event"] == "role_changed" && v["role"] == "speaker"
    });
    guest.say(&format!("say {CHAT}"));
    host.wait("chat", Duration::from_secs(10), |v| {
        v["event"] == "chat" && v["text"] == CHAT
    });
    guest.say("leave");
    host.say("leave");
    assert!(guest.child.wait().unwrap().success());
    assert!(host.child.wait().unwrap().success());

    let pass = std::fs::read_to_string(root.join("pass")).unwrap();
    let canaries = [HOST, GUEST, TITLE, CHAT, invite.as_str(), pass.trim()];
    for (who, log) in [("host", &host_log), ("guest", &guest_log)] {
        let text = std::fs::read_to_string(log).unwrap();
        // The log is not empty: it tells the session's story.
        for said in [
            "link up",
            "our role changed",
            "chat message",
            "left the room",
        ] {
            assert!(
                text.contains(said) || who == "host" && said == "our role changed",
                "{who}'s log lacks {said:?}:\n{text}"
            );
        }
        for c in canaries {
            assert!(!text.contains(c), "{who}'s log holds {c:?}:\n{text}");
        }
    }
}
