//! The real app window driven through WebDriver (`tauri-driver` + `WebKitWebDriver`)
//! under Xvfb, with assertions on the DOM. Each test is one scenario of the desktop
//! issue; they run one at a time (see [`common::one_test`]).
//!
//! Run: a display (`Xvfb :77 & export DISPLAY=:77`), tauri-driver on PATH, the UI built
//! (`npm --prefix ui run build`), the `salon` binary built
//! (`cargo build -p salon-node --bin salon`), then
//! `cargo test -p salon-desktop --test webdriver -- --nocapture`.
//! Screenshots go to `$SALON_ARTIFACTS` or `<target>/webdriver-artifacts/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use common::{
    App, CliPeer, bursts_wav, create_identity, history, host_room, member, one_test, person,
    showing_windows_on_failure, tempdir,
};

/// Scenario 1: first run → create an identity → restart the app → a wrong passphrase is
/// explained → the right one unlocks → host a room. Screenshots of each screen in both
/// themes on the way.
#[test]
fn first_run_creates_identity_then_restart_unlocks_and_wrong_passphrase_is_explained() {
    let _one = one_test();
    let root = tempdir("first-run");
    let dir = root.join("app");
    let Some(app) = App::launch(&dir, "silence") else {
        return;
    };

    let d = app.open("first start");
    d.wait_for("form[data-form=create]");
    d.wait_text("Welcome to Salon");
    d.screenshots("create");
    create_identity(&d, "Ada Lovelace", "correct horse battery");
    d.quit();
    step!("session closed: the app must exit by itself");
    // Closing the window ends the app by itself, which also frees the history for the
    // next start.
    app.wait_exited("after its window closed");
    assert!(
        dir.join("salon.db").exists(),
        "the encrypted history was created"
    );

    step!("Restart: the app now asks to unlock");
    let d = app.open("restart");
    d.wait_for("form[data-form=unlock]");
    d.wait_text("Unlock Salon");
    d.screenshots("unlock");
    d.type_into(
        "form[data-form=unlock] input[name=passphrase]",
        "not my passphrase",
    );
    d.submit("form[data-form=unlock]");
    let alert = d.wait_until("the wrong-passphrase alert", || {
        d.text_of("form[data-form=unlock] [role=alert]")
            .filter(|t| t.contains("wrong passphrase"))
    });
    assert!(
        alert.contains("try again"),
        "the alert says what to do: {alert}"
    );
    assert!(
        d.exists("form[data-form=unlock]"),
        "a wrong passphrase keeps the unlock screen"
    );
    d.type_into(
        "form[data-form=unlock] input[name=passphrase]",
        "correct horse battery",
    );
    d.submit("form[data-form=unlock]");
    d.wait_for("form[data-form=host]");
    let home = d.wait_text("Signed in as");
    assert!(home.contains("Ada Lovelace"), "{home}");
    assert!(!d.exists("[role=alert]"), "the old error is gone: {home}");
    d.screenshots("home");

    step!("host a room");
    // Host a room: the room screen shows the title, the safety code and the invite.
    let invite = host_room(&d, "Night owls");
    assert!(invite.len() > 20, "{invite}");
    let room = d.wait_text("Safety code");
    assert!(room.contains("Night owls"), "{room}");
    let code = d.text_of("[data-testid=safety-code]").unwrap_or_default();
    assert!(!code.trim().is_empty(), "a safety code shows");
    d.wait_for(&person("stage", "Ada Lovelace (you)"));
    d.screenshots("room");
    d.type_into("#chat-text", "first line of the night");
    d.submit("form[data-form=chat]");
    d.wait_until("the line in the chat", || {
        d.text_of("[data-testid=chat]")
            .filter(|t| t.contains("first line of the night"))
    });
    step!("quit in a room (SIGTERM)");
    // Quitting the app in a room (here by SIGTERM, as a logout does) leaves the room
    // properly: the history records its end, with the chat.
    app.terminate("quit in a room");
    drop(d);
    let h = history(&dir, "correct horse battery");
    assert!(
        h.contains("hosted \"Night owls\"") && !h.contains("not ended"),
        "the room is in the history, ended: {h}"
    );
    assert!(h.contains("first line of the night"), "with its chat: {h}");
}

/// Scenario 2: the app hosts; a command-line peer joins with the invite read from the
/// window, is promoted from its person card, its speaking ring lights, chat goes both
/// ways, and when it leaves the roster updates.
#[test]
fn app_hosts_a_cli_peer_promotes_it_sees_it_speak_and_chats_both_ways() {
    let _one = one_test();
    let root = tempdir("host");
    let Some(app) = App::launch(&root.join("app"), "silence") else {
        return;
    };
    let d = app.open("app");
    create_identity(&d, "Grace", "another good passphrase");
    let invite = host_room(&d, "Loopback salon");

    step!("a CLI peer joins");
    // A command-line peer joins with the invite read from the window, talking in
    // bursts of a tone.
    let talk = root.join("bursts.wav");
    bursts_wav(&talk, 120);
    let mut peer = CliPeer::join(&root, "Cli-Hopper", &invite, talk.to_str().unwrap());
    peer.wait("joined", |v| v["event"] == "joined");
    d.wait_for(&person("audience", "Cli-Hopper"));

    step!("promote the peer");
    // Promote it from its person card; its speaking ring lights up from live levels.
    d.click(&format!(
        "{} button[data-op=invite_to_stage]",
        person("audience", "Cli-Hopper")
    ));
    // The peer's hand is down, so it is asked first; it says yes.
    peer.wait("the stage invitation", |v| v["event"] == "stage_invited");
    peer.say("accept");
    peer.wait("promotion", |v| {
        v["event"] == "role_changed" && v["role"] == "speaker"
    });
    d.wait_for(&person("stage", "Cli-Hopper"));
    d.wait_for("[data-testid=stage] .person.speaking[aria-label=Cli-Hopper]");

    step!("mute the peer with a held press");
    // Mute it with a press held while its ring goes on and off (the view redraws under
    // the pointer): the click still counts. It can unmute itself.
    let card = person("stage", "Cli-Hopper");
    let key = d.script(
        "return document.querySelector(arguments[0]).dataset.key",
        serde_json::json!([card]),
    );
    let key = key.as_str().expect("the card has a key");
    d.click(&format!("[data-action=menu][data-target=\"{key}\"]"));
    d.press_across_redraw(&format!(
        "[data-menu=\"{key}\"] [data-action=moderate][data-op=mute]"
    ));
    peer.wait("the moderator's mute", |v| {
        v["event"] == "muted_by_moderator"
    });
    d.wait_for(&format!("{card} .badge.muted"));
    peer.say("unmute");
    d.wait_gone(&format!("{card} .badge.muted"));

    step!("Chat both ways");
    d.type_into("#chat-text", "hello from the app");
    d.submit("form[data-form=chat]");
    peer.wait("the app's chat line", |v| {
        v["event"] == "chat" && v["text"] == "hello from the app"
    });
    d.wait_until("the chat field to empty after sending", || {
        let v = d.script(
            "const f = document.querySelector('#chat-text'); return f ? f.value : null",
            serde_json::json!([]),
        );
        (v == "").then_some(())
    });
    peer.say("say hello from the terminal");
    d.wait_until("the peer's chat line", || {
        d.text_of("[data-testid=chat]")
            .filter(|t| t.contains("hello from the terminal"))
    });

    step!("The peer leaves; the roster updates");
    peer.say("leave");
    peer.wait("left", |v| v["event"] == "left");
    peer.wait_exit();
    d.wait_gone("[aria-label=Cli-Hopper]");
    d.quit();
    app.wait_exited("after its window closed");
}

/// Scenario 3: a command-line peer hosts; the app joins with the invite the peer
/// printed, raises its hand, is promoted by the host, mutes and unmutes (the host sees
/// both), chats both ways and leaves; the room is then in History with its chat.
#[test]
fn app_joins_a_cli_host_raises_hand_is_promoted_mutes_chats_and_leaves() {
    let _one = one_test();
    let root = tempdir("join");
    let Some(app) = App::launch(&root.join("app"), "silence") else {
        return;
    };
    let mut host = CliPeer::host(&root, "Cli-Host", "Terminal salon", "tone:330");
    let invite = host.invite();
    let d = app.open("app");
    create_identity(&d, "Lin", "a third good passphrase");

    step!("Join with the invite the terminal printed");
    d.type_into("form[data-form=join] textarea[name=invite]", &invite);
    d.submit("form[data-form=join]");
    d.wait_for(&person("audience", "Lin (you)"));
    d.wait_for(&person("stage", "Cli-Host"));
    let room = d.wait_text("Terminal salon");
    assert!(room.contains("Safety code"), "{room}");
    host.room_has("the app in the audience", |r| {
        member(r, "Lin").is_some_and(|m| m["role"] == "listener")
    });

    step!("Raise the hand; the host sees it and promotes the app");
    d.click("button[data-action=hand]");
    d.wait_for("button[data-action=hand][aria-pressed=true]");
    host.room_has("the app's raised hand", |r| {
        member(r, "Lin").is_some_and(|m| m["hand_raised"] == true)
    });
    host.say("promote Lin");
    d.wait_for(&person("stage", "Lin (you)"));
    d.wait_gone("button[data-action=hand]");
    d.wait_for("button[data-action=mute][aria-pressed=false]");
    host.room_has("the app on stage", |r| {
        member(r, "Lin").is_some_and(|m| m["role"] == "speaker" && m["hand_raised"] == false)
    });

    step!("Mute and unmute from the app; the host sees both");
    d.click("button[data-action=mute]");
    d.wait_for("button[data-action=mute][aria-pressed=true]");
    host.room_has("the app muted", |r| {
        member(r, "Lin").is_some_and(|m| m["muted"] == true)
    });
    d.wait_for(&format!("{} .badge.muted", person("stage", "Lin (you)")));
    d.click("button[data-action=mute]");
    d.wait_for("button[data-action=mute][aria-pressed=false]");
    host.room_has("the app unmuted", |r| {
        member(r, "Lin").is_some_and(|m| m["muted"] == false)
    });

    step!("Chat both ways");
    d.type_into("#chat-text", "hi from the window");
    d.submit("form[data-form=chat]");
    host.wait("the app's chat line", |v| {
        v["event"] == "chat" && v["text"] == "hi from the window" && v["name"] == "Lin"
    });
    host.say("say welcome, Lin");
    d.wait_until("the host's chat line", || {
        d.text_of("[data-testid=chat]")
            .filter(|t| t.contains("welcome, Lin"))
    });

    step!("Leave: the app is back home; the host's roster loses it");
    d.click("button[data-action=leave]");
    d.wait_for("form[data-form=join]");
    host.room_has("the app gone", |r| member(r, "Lin").is_none());

    step!("the room is in History, with its chat");
    d.click("nav [data-nav=history]");
    d.wait_for("[data-screen=history]");
    let row = d.wait_until("the room's row in History", || {
        d.script(
            "const r = [...document.querySelectorAll('[data-history-room]')].find(r => r.querySelector('.h-title')?.textContent === arguments[0]); return r ? r.dataset.historyRoom : null",
            serde_json::json!(["Terminal salon"]),
        )
        .as_str()
        .map(str::to_owned)
    });
    d.click(&format!("[data-history-room=\"{row}\"]"));
    d.wait_until("the room's chat in History", || {
        d.text_of("[data-testid=history-chat]")
            .filter(|t| t.contains("hi from the window") && t.contains("welcome, Lin"))
    });
    d.screenshots("history");

    step!("Settings shows the devices and the theme choice");
    d.click("nav [data-nav=settings]");
    d.wait_for("[data-screen=settings]");
    d.wait_for("[data-testid=mic-meter]");
    d.screenshots("settings");

    host.say("end");
    host.wait_exit();
    d.quit();
    app.wait_exited("after its window closed");
}

/// Scenario 4: two app instances in one room. A hosts; B joins with the invite read from
/// A's window; both see each other; chat both ways; A promotes B; B's speaking ring
/// lights (B plays a tone); B leaves.
#[test]
fn two_apps_share_a_room_chat_promote_speak_and_leave() {
    let _one = one_test();
    let root = tempdir("two-apps");
    let Some(app_a) = App::launch(&root.join("a"), "silence") else {
        return;
    };
    let Some(app_b) = App::launch(&root.join("b"), "tone:440") else {
        return;
    };
    let a = app_a.open("app A");
    create_identity(&a, "Ada", "passphrase of app A");
    let invite = host_room(&a, "Two windows");
    let b = app_b.open("app B");
    create_identity(&b, "Bea", "passphrase of app B");

    showing_windows_on_failure(&[&a, &b], || {
        step!("B joins with the invite from A's window");
        b.type_into("form[data-form=join] textarea[name=invite]", &invite);
        b.submit("form[data-form=join]");
        b.wait_for(&person("audience", "Bea (you)"));
        b.wait_for(&person("stage", "Ada"));
        a.wait_for(&person("audience", "Bea"));
        a.wait_for(&person("stage", "Ada (you)"));
        let code_a = a.text_of("[data-testid=safety-code]");
        b.wait_until("B's safety code to match A's", || {
            (b.text_of("[data-testid=safety-code]") == code_a).then_some(())
        });

        step!("Chat both ways");
        a.type_into("#chat-text", "welcome, Bea");
        a.submit("form[data-form=chat]");
        b.wait_until("A's line in B's chat", || {
            b.text_of("[data-testid=chat]")
                .filter(|t| t.contains("welcome, Bea"))
        });
        b.type_into("#chat-text", "thanks, Ada");
        b.submit("form[data-form=chat]");
        a.wait_until("B's line in A's chat", || {
            a.text_of("[data-testid=chat]")
                .filter(|t| t.contains("thanks, Ada"))
        });

        step!("A invites B; B accepts in its prompt, and B's tone lights B's ring in A's window");
        a.click(&format!(
            "{} button[data-op=invite_to_stage]",
            person("audience", "Bea")
        ));
        b.wait_for("[data-dialog=stage_invite]");
        b.click("[data-action=stage-answer][data-accept=true]");
        b.wait_for(&person("stage", "Bea (you)"));
        b.wait_for("button[data-action=mute][aria-pressed=false]");
        a.wait_for(&person("stage", "Bea"));
        a.wait_for("[data-testid=stage] .person.speaking[aria-label=Bea]");

        step!("B leaves: B is back home, A's roster loses B");
        b.click("button[data-action=leave]");
        b.wait_for("form[data-form=join]");
        a.wait_gone("[aria-label=Bea]");
    });
    b.quit();
    a.quit();
    app_b.wait_exited("B after its window closed");
    app_a.wait_exited("A after its window closed");
}

/// Runs `xdotool` with these arguments on the test display; false when it is missing or
/// fails.
fn xdotool(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("xdotool")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Scenario 5: push-to-talk from another window (X11). The app hosts (on stage) with F8
/// as its push-to-talk key; settings say the key works in other apps; the keyboard focus
/// moves off the window, and F8 pressed on the X server (xdotool, as a keyboard would)
/// opens the microphone until it is released.
#[test]
fn push_to_talk_works_while_another_window_has_the_focus() {
    let _one = one_test();
    if xdotool(&["version"]).is_none() {
        assert!(
            std::env::var_os("SALON_CI").is_none(),
            "xdotool is needed in CI (scripts/deps.sh)"
        );
        eprintln!("skipping: xdotool not installed");
        return;
    }
    let root = tempdir("ptt-global");
    let Some(app) = App::launch(&root.join("app"), "silence") else {
        return;
    };
    let d = app.open("app");
    create_identity(&d, "Pat", "push to talk passphrase");
    host_room(&d, "Hold to talk");
    let me = person("stage", "Pat (you)");
    d.wait_for(&me);

    step!("F8 becomes the push-to-talk key; settings say it works in other apps");
    d.click("[data-nav=settings]");
    d.click("[data-action=ptt-capture]");
    d.script(
        "document.dispatchEvent(new KeyboardEvent('keydown', {code: 'F8', key: 'F8', bubbles: true}))",
        serde_json::json!([]),
    );
    d.wait_until("the key's reach", || {
        d.text_of("[data-testid=ptt-reach]")
            .filter(|t| t.contains("other apps"))
    });
    d.click("[data-nav=room]");
    // Push-to-talk: muted until the key is held.
    d.wait_for(&format!("{me} .badge.muted"));

    step!("The keyboard focus leaves the window");
    let window = xdotool(&["search", "--name", "^Salon$"]).expect("the app's window");
    let window = window.lines().last().unwrap_or_default().to_owned();
    xdotool(&["windowfocus", "--sync", &window]).expect("focus the window");
    // The root window takes the focus, with the pointer off the app's window (else the
    // root passes the keys to the window under the pointer): the app's window is then
    // not focused, as when another app's window is.
    xdotool(&["mousemove", "--sync", "1270", "850"]).expect("move the pointer away");
    let root_window = xdotool(&["search", "--maxdepth", "0", ""]).expect("the root window");
    xdotool(&["windowfocus", &root_window]).expect("focus the root window");
    // So what follows is the global key, not the window's own key handling.
    d.wait_until("the window to lose the focus", || {
        (d.script("return document.hasFocus()", serde_json::json!([])) == false).then_some(())
    });

    step!("F8 held on the X server opens the microphone; released, it closes");
    d.wait_until("the key taken from the desktop", || {
        xdotool(&["keydown", "F8"])?;
        std::thread::sleep(std::time::Duration::from_millis(300));
        let open = !d.exists(&format!("{me} .badge.muted"));
        xdotool(&["keyup", "F8"])?;
        open.then_some(())
    });
    d.wait_for(&format!("{me} .badge.muted"));
    xdotool(&["keydown", "F8"]).expect("press F8");
    d.wait_gone(&format!("{me} .badge.muted"));
    xdotool(&["keyup", "F8"]).expect("release F8");
    d.wait_for(&format!("{me} .badge.muted"));

    d.quit();
    app.wait_exited("after its window closed");
}
