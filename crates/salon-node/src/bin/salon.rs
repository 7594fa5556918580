//! `salon`: Salon from the command line — headless hosts, bots, scripting and tests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use salon_node::{
    Command, InviteReason, Node, NodeConfig, NodeError, NodeEvent, Reply,
    api::{MemberInfo, PathKind, find_member},
    default_data_dir, parse_input, parse_output, profile,
};
use salon_proto::Action;
use salon_store::KdfParams;

#[derive(Parser, Debug)]
#[command(
    name = "salon",
    version,
    about = "Private live audio rooms, peer to peer, end-to-end encrypted"
)]
struct Cli {
    /// Where the encrypted history lives (default: $SALON_DATA_DIR or ~/.local/share/salon).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Read the passphrase from this file (first line) instead of asking. The environment
    /// variable SALON_PASSPHRASE works too.
    #[arg(long, global = true, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Sub,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Create your identity and encrypted history.
    Init {
        /// Your display name.
        #[arg(long)]
        name: String,
        /// Argon2 memory in KiB (default 65536; lower only for tests).
        #[arg(long, hide = true)]
        kdf_memory_kib: Option<u32>,
    },
    /// Open a room and print its invite.
    Host {
        /// Room title.
        #[arg(long)]
        title: String,
        /// Rates by role: listeners send 4 datagrams a second instead of the stage's 50.
        /// Saves upload, but an observer of the traffic can tell who is on stage.
        #[arg(long)]
        by_role_rates: bool,
        #[command(flatten)]
        room: RoomArgs,
    },
    /// Join a room by its invite.
    Join {
        /// The invite string (salon:…).
        invite: String,
        #[command(flatten)]
        room: RoomArgs,
    },
    /// Show past rooms, who was there, and the chat.
    History {
        /// How many rooms, newest first.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// List audio devices.
    Devices,
}

#[derive(clap::Args, Debug)]
struct RoomArgs {
    /// Microphone: device | device:NAME | tone:HZ | silence | none | FILE.wav
    #[arg(long, default_value = "device")]
    input: String,
    /// Output: device | device:NAME | null | FILE.wav
    #[arg(long, default_value = "device")]
    output: String,
    /// Local UDP address (port 0 = any free port).
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: std::net::SocketAddr,
    /// How to print events: text for people, json for programs (one object per line).
    #[arg(long, value_enum, default_value_t = EventFormat::Text)]
    events: EventFormat,
    /// Turn off noise suppression.
    #[arg(long)]
    no_noise_suppression: bool,
    /// Turn off echo cancellation.
    #[arg(long)]
    no_echo_cancellation: bool,
    /// Opus frame length in milliseconds (20 or 10).
    #[arg(long, default_value_t = 20)]
    frame_ms: u32,
    /// Do not ask the home router to forward a port (UPnP-IGD, NAT-PMP, PCP).
    #[arg(long)]
    no_port_mapping: bool,
    /// Give up joining after this many seconds (tests shorten it).
    #[arg(long, hide = true, default_value_t = 15)]
    join_timeout_secs: u64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum EventFormat {
    Text,
    Json,
}

fn passphrase(file: Option<&Path>, confirm: bool) -> Result<String, String> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| format!("cannot read the passphrase file {}: {e}", f.display()))?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    if let Ok(p) = std::env::var("SALON_PASSPHRASE") {
        return Ok(p);
    }
    let p = rpassword::prompt_password("Passphrase: ").map_err(|e| {
        format!("cannot ask for the passphrase ({e}); use --passphrase-file or SALON_PASSPHRASE")
    })?;
    if confirm {
        let again = rpassword::prompt_password("Passphrase again: ").map_err(|e| e.to_string())?;
        if again != p {
            return Err("the passphrases differ; nothing was created".into());
        }
    }
    Ok(p)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    salon_node::logging::init();
    let dir = cli.data_dir.clone().unwrap_or_else(default_data_dir);
    let result = match cli.command {
        Sub::Init {
            name,
            kdf_memory_kib,
        } => init(&dir, cli.passphrase_file.as_deref(), &name, kdf_memory_kib),
        Sub::Host {
            title,
            by_role_rates,
            room,
        } => {
            run_room(
                &dir,
                cli.passphrase_file.as_deref(),
                Start::Host(title, by_role_rates),
                room,
            )
            .await
        }
        Sub::Join { invite, room } => {
            run_room(
                &dir,
                cli.passphrase_file.as_deref(),
                Start::Join(invite),
                room,
            )
            .await
        }
        Sub::History { limit } => history(&dir, cli.passphrase_file.as_deref(), limit),
        Sub::Devices => devices(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("salon: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init(
    dir: &Path,
    pass_file: Option<&Path>,
    name: &str,
    kdf_memory_kib: Option<u32>,
) -> Result<(), String> {
    if profile::exists(dir) {
        return Err(format!(
            "a Salon identity already exists in {}; it was left untouched",
            dir.display()
        ));
    }
    let pass = passphrase(pass_file, true)?;
    let mut kdf = KdfParams::default();
    if let Some(m) = kdf_memory_kib {
        kdf.m_cost_kib = m;
        kdf.t_cost = 1;
    }
    let p = profile::create(dir, &pass, name, kdf).map_err(|e| e.to_string())?;
    println!("Created identity for {} in {}", p.name, dir.display());
    println!("Fingerprint: {}", p.identity.public_key().fingerprint());
    Ok(())
}

enum Start {
    /// A room with this title; `true`: rates by role (no uniform-rate setting).
    Host(String, bool),
    Join(String),
}

async fn run_room(
    dir: &Path,
    pass_file: Option<&Path>,
    start: Start,
    args: RoomArgs,
) -> Result<(), String> {
    let input = parse_input(&args.input).map_err(|e| e.to_string())?;
    let output = parse_output(&args.output).map_err(|e| e.to_string())?;
    if let Start::Join(inv) = &start {
        // Check the invite before asking for a passphrase.
        salon_proto::Invite::parse(inv).map_err(|e| format!("bad invite: {e}"))?;
    }
    let pass = passphrase(pass_file, false)?;
    let prof = profile::unlock(dir, &pass).map_err(|e| e.to_string())?;
    let mut cfg = NodeConfig {
        bind: args.bind,
        input,
        output,
        port_mapping: !args.no_port_mapping,
        ..NodeConfig::default()
    };
    cfg.engine.noise_suppression = !args.no_noise_suppression;
    cfg.engine.echo_cancellation = cfg.engine.echo_cancellation && !args.no_echo_cancellation;
    // The bitrate follows the frame duration so every payload fills the datagram.
    cfg.engine.codec = salon_audio::CodecConfig::for_frame(match args.frame_ms {
        20 => salon_audio::FrameDuration::Ms20,
        10 => salon_audio::FrameDuration::Ms10,
        other => return Err(format!("--frame-ms must be 20 or 10, not {other}")),
    });
    cfg.proto.join_timeout = std::time::Duration::from_secs(args.join_timeout_secs.max(1));
    if let Start::Host(_, by_role) = &start {
        cfg.proto.uniform_rate = !by_role;
    }
    let json = args.events == EventFormat::Json;
    let mut node = Node::start(prof, cfg).await.map_err(|e| e.to_string())?;
    let started = match start {
        Start::Host(title, _) => node.command(Command::Host { title }).await,
        Start::Join(invite) => node.command(Command::Join { invite }).await,
    };
    if let Err(e) = started {
        node.shutdown().await;
        return Err(e.to_string());
    }
    // Stdin is read on a plain thread: tokio's stdin would keep the runtime (and so the
    // process) alive after the room ends until another line or EOF arrives.
    let (line_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdin_open = true;
    // The roster as last shown: typed names are resolved to keys against it.
    let mut members: Vec<MemberInfo> = Vec::new();
    let mut failure: Option<String> = None;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    loop {
        tokio::select! {
            ev = node.next_event() => {
                let Some(ev) = ev else { break };
                print_event(&ev, json);
                match ev {
                    NodeEvent::Joined { room } | NodeEvent::Room { room } => members = room.members,
                    NodeEvent::JoinFailed { message } => {
                        failure = Some(message);
                        break;
                    }
                    NodeEvent::Left { .. } => break,
                    _ => {}
                }
            }
            line = lines.recv(), if stdin_open => match line {
                Some(l) => {
                    if let Some(cmd) = parse_action(&l, &members) {
                        match cmd {
                            Ok(c) => match node.command(c).await {
                                Ok(Reply::Room { room }) => print_json_or(json, &serde_json::json!({"reply": "room", "room": room}), &format!("{room:#?}")),
                                Ok(_) => {}
                                Err(e) => report_error(&e, json),
                            },
                            Err(msg) => eprintln!("salon: {msg}"),
                        }
                    }
                }
                None => stdin_open = false,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    node.shutdown().await;
    match failure {
        Some(m) => Err(m),
        None => Ok(()),
    }
}

/// One line of stdin as a room action; names or key prefixes typed are looked up in
/// `members` (the roster as last shown) and the command carries the key.
fn parse_action(line: &str, members: &[MemberInfo]) -> Option<Result<Command, String>> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (word, rest) = line
        .split_once(' ')
        .map_or((line, ""), |(w, r)| (w, r.trim()));
    let need = |what: &str| -> Result<String, String> {
        if rest.is_empty() {
            Err(format!("{word} needs {what}"))
        } else {
            Ok(rest.to_owned())
        }
    };
    let member = |typed: &str| find_member(members, typed).map_err(|e| e.to_string());
    let moderate = |action: Action| {
        need("a name")
            .and_then(|t| member(&t))
            .map(|key| Command::Moderate { key, action })
    };
    Some(match word {
        "mute" if rest.is_empty() => Ok(Command::SetMuted(true)),
        "mute" => moderate(Action::Mute),
        "unmute" => Ok(Command::SetMuted(false)),
        "hand" => Ok(Command::SetHand(true)),
        "lower" => Ok(Command::SetHand(false)),
        "promote" => moderate(Action::InviteToStage),
        "audience" | "demote" => moderate(Action::MoveToAudience),
        "moderator" => moderate(Action::MakeModerator),
        "kick" | "remove" => moderate(Action::Remove),
        "accept" => Ok(Command::AnswerStageInvite { accept: true }),
        "decline" => Ok(Command::AnswerStageInvite { accept: false }),
        "say" => need("some text").map(Command::Chat),
        "leave" => Ok(Command::Leave),
        "end" => Ok(Command::EndRoom),
        "revoke" => Ok(Command::RevokeInvite),
        "status" => Ok(Command::Status),
        "verify" => need("a name")
            .and_then(|t| member(&t))
            .map(|key| Command::VerifyContact {
                key,
                verified: true,
            }),
        "volume" => {
            let mut it = rest.rsplitn(2, ' ');
            match (it.next().and_then(|v| v.parse::<f32>().ok()), it.next()) {
                (Some(volume), Some(target)) => {
                    member(target).map(|key| Command::SetPeerVolume { key, volume })
                }
                _ => Err("volume needs a name and a gain, e.g. `volume Ada 0.5`".into()),
            }
        }
        _ => Err(format!(
            "unknown command \"{word}\"; try mute, unmute, hand, lower, accept, decline, promote NAME, audience NAME, moderator NAME, mute NAME, kick NAME, say TEXT, volume NAME GAIN, verify NAME, status, revoke, leave, end"
        )),
    })
}

fn report_error(e: &NodeError, json: bool) {
    if json {
        out(
            &serde_json::json!({"event": "error", "code": e.code(), "message": e.to_string()})
                .to_string(),
        );
    } else {
        eprintln!("salon: {e}");
    }
}

fn print_json_or(json: bool, value: &serde_json::Value, text: &str) {
    if json {
        out(&value.to_string());
    } else {
        out(text);
    }
}

/// Prints one line; a closed stdout (the reader went away) is not worth a panic.
///
/// Names, titles and chat arrive from other people: a control character in them (an
/// escape sequence that retitles or clears the terminal, a carriage return that hides
/// text, a bidi override that reorders it) would act on the reader's terminal. Every
/// line goes out through [`terminal_safe`]; the history keeps what was received.
fn out(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{}", terminal_safe(line));
}

/// Characters that act on a terminal or on text direction instead of being shown: C0
/// (but the newline of multi-line output), DEL, C1 and the Unicode bidi controls.
fn is_unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `line` with each unsafe character written as a visible escape (`\u{1b}`). Inside a
/// JSON line such characters only occur in strings, where the same form is a valid
/// JSON escape (`\u001b`), so JSON output stays exact for programs.
fn terminal_safe(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.chars().any(is_unsafe_char) {
        return std::borrow::Cow::Borrowed(line);
    }
    let json = line.starts_with('{');
    let mut s = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        if is_unsafe_char(c) {
            if json {
                s.push_str(&format!("\\u{:04x}", u32::from(c)));
            } else {
                s.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
        } else {
            s.push(c);
        }
    }
    std::borrow::Cow::Owned(s)
}

fn print_event(ev: &NodeEvent, json: bool) {
    if json {
        if let Ok(s) = serde_json::to_string(ev) {
            out(&s);
        }
        return;
    }
    if let Some(text) = event_text(ev) {
        out(&text);
    }
}

/// The line a person reads for `ev`; `None` for the frequent figures (levels, links) and
/// link chatter, which only scripts (`--events json`) want.
fn event_text(ev: &NodeEvent) -> Option<String> {
    let text = match ev {
        NodeEvent::Listening { addr } => format!("listening on {addr}"),
        NodeEvent::Hosting { invite } => format!("invite: {invite}"),
        NodeEvent::Joined { room } => format!(
            "joined \"{}\" — safety code {} — {} here",
            room.title,
            room.safety_code,
            room.members.len()
        ),
        NodeEvent::JoinFailed { message } => format!("could not join: {message}"),
        NodeEvent::Room { room } => {
            let people: Vec<String> = room
                .members
                .iter()
                .map(|m| {
                    format!(
                        "{}{} ({}{}{})",
                        m.name,
                        if m.me { "*" } else { "" },
                        m.role,
                        if m.hand_raised { ", hand up" } else { "" },
                        if m.muted { ", muted" } else { "" }
                    )
                })
                .collect();
            format!(
                "room: {} — safety code {}",
                people.join(", "),
                room.safety_code
            )
        }
        NodeEvent::RoleChanged { role } => format!("you are now a {role}"),
        NodeEvent::MutedByModerator => "a moderator muted you; type `unmute` to speak again".into(),
        NodeEvent::StageInvited { name, .. } => {
            format!("{name} invites you to the stage: type `accept` or `decline`")
        }
        NodeEvent::StageInviteDeclined { name, .. } => {
            format!("{name} declined the invitation to the stage")
        }
        NodeEvent::StageInviteLapsed { name, .. } => {
            format!("{name}'s invitation to the stage lapsed unanswered")
        }
        NodeEvent::StageInviteUnanswered { name, .. } => {
            format!("{name} did not answer the invitation to the stage")
        }
        NodeEvent::Chat { name, text, .. } => format!("<{name}> {text}"),
        NodeEvent::HostChanged {
            invite: Some(inv), ..
        } => format!("you are the host now; new invite: {inv}"),
        NodeEvent::HostChanged { host, .. } => {
            format!("the host is now {}", &host[..host.len().min(8)])
        }
        NodeEvent::InviteChanged { invite, reason } => format!(
            "the old invite no longer admits anyone ({}); new invite: {invite}",
            match reason {
                InviteReason::Removal => "someone was removed",
                InviteReason::Revoked => "you revoked it",
            }
        ),
        NodeEvent::Left { reason } => format!("left the room ({reason})"),
        NodeEvent::Audio { message } => format!("audio: {message}"),
        NodeEvent::KeyChanged { name, key } => {
            format!(
                "warning: {name} now uses a different key ({}…); compare safety numbers before trusting it",
                &key[..key.len().min(16)]
            )
        }
        NodeEvent::Error { message, .. } => format!("error: {message}"),
        NodeEvent::LinkPath {
            name,
            path: PathKind::Direct,
            ..
        } => format!("{name}: direct"),
        NodeEvent::LinkPath { name, via_name, .. } => format!(
            "{name}: relayed via {}",
            via_name.as_deref().unwrap_or("another member")
        ),
        NodeEvent::Unreachable { message, .. } => format!("warning: {message}"),
        NodeEvent::PortMapping {
            external: Some(addr),
        } => format!("your router forwards {addr} to Salon: people outside can reach you"),
        NodeEvent::PortMapping { external: None } => "your router's port forwarding ended".into(),
        NodeEvent::Levels { .. }
        | NodeEvent::Links { .. }
        | NodeEvent::LinkUp { .. }
        | NodeEvent::LinkDown { .. }
        | NodeEvent::FirstAudio { .. } => return None,
    };
    Some(text)
}

fn history(dir: &Path, pass_file: Option<&Path>, limit: u32) -> Result<(), String> {
    let pass = passphrase(pass_file, false)?;
    let p = profile::unlock(dir, &pass).map_err(|e| e.to_string())?;
    let rooms = p.store.rooms(None, limit).map_err(|e| e.to_string())?;
    if rooms.is_empty() {
        out("no rooms yet");
    }
    for r in rooms {
        let mins = r.ended_at.map(|e| (e.0 - r.started_at.0) / 60_000);
        out(&format!(
            "{} \"{}\"{}{}",
            if r.hosted { "hosted" } else { "joined" },
            r.title,
            mins.map(|m| format!(", {m} min"))
                .unwrap_or_else(|| ", not ended".into()),
            r.invite.as_ref().map(|_| ", invite kept").unwrap_or("")
        ));
        if let Ok(ps) = p.store.participants(r.id) {
            let names: Vec<String> = ps
                .iter()
                .map(|x| format!("{} ({})", x.name, x.role.as_str()))
                .collect();
            out(&format!("  people: {}", names.join(", ")));
        }
        if let Ok(msgs) = p
            .store
            .messages(r.id, salon_store::Page::Latest { limit: 50 })
        {
            for m in msgs {
                out(&format!("  <{}> {}", m.sender_name, m.text));
            }
        }
    }
    Ok(())
}

fn devices() -> Result<(), String> {
    use salon_audio::backend::device::{Direction, list_devices};
    for (label, dir) in [("input", Direction::Input), ("output", Direction::Output)] {
        match list_devices(dir) {
            Ok(list) if list.is_empty() => println!("no {label} devices"),
            Ok(list) => {
                for d in list {
                    println!(
                        "{label}: {}{}",
                        d.name,
                        if d.is_default { " (default)" } else { "" }
                    );
                }
            }
            Err(e) => println!("{label}: {e}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_and_bidi_controls_in_text_output_are_shown_not_obeyed() {
        let evil = "<Mal\u{1b}]0;pwned\u{7}> hi\u{1b}[2J\r\u{9b}31m\u{202e}txt.exe";
        let safe = terminal_safe(evil);
        assert_eq!(
            safe,
            "<Mal\\u{1b}]0;pwned\\u{7}> hi\\u{1b}[2J\\u{d}\\u{9b}31m\\u{202e}txt.exe"
        );
        assert!(!safe.chars().any(is_unsafe_char));
        assert_eq!(
            terminal_safe("plain <Ada> héllo 👋"),
            "plain <Ada> héllo 👋"
        );
        assert_eq!(terminal_safe("two\nlines"), "two\nlines");
    }

    #[test]
    fn a_stage_invitation_is_printed_with_how_to_answer_it_and_accept_or_decline_answers() {
        let ev = NodeEvent::StageInvited {
            key: "ab".into(),
            name: "Ada".into(),
        };
        assert_eq!(
            event_text(&ev).as_deref(),
            Some("Ada invites you to the stage: type `accept` or `decline`")
        );
        assert!(matches!(
            parse_action("accept", &[]),
            Some(Ok(Command::AnswerStageInvite { accept: true }))
        ));
        assert!(matches!(
            parse_action(" decline ", &[]),
            Some(Ok(Command::AnswerStageInvite { accept: false }))
        ));
    }

    #[test]
    fn json_event_lines_escape_control_characters_and_stay_exact() {
        let ev = NodeEvent::Chat {
            name: "Mal\u{1b}[31m".into(),
            from: String::new(),
            text: "\u{9b}2J\u{202e}x\u{7f}".into(),
        };
        let line = serde_json::to_string(&ev).unwrap_or_default();
        let safe = terminal_safe(&line);
        assert!(!safe.chars().any(is_unsafe_char), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back["name"], "Mal\u{1b}[31m");
        assert_eq!(back["text"], "\u{9b}2J\u{202e}x\u{7f}");
    }
}
