//! Push-to-talk while Salon's window is not focused.
//!
//! In the window, the web view handles the push-to-talk key (`ui/src/ptt.ts`). Once the
//! window loses focus, and only while we are on stage with a key set, the shell takes the
//! same key from the whole desktop with the global-shortcut plugin and sends the same
//! pressed/released commands; when the window is focused again it gives the key back, so
//! the key still types into Salon's own text fields.
//!
//! Where the platform allows it: on X11 a grab takes the key from every other window (so
//! the key is Salon's alone while it is held that way); Wayland gives apps no global keys
//! at all (a grab through XWayland would only see other X11 windows' keys), so there the
//! key works only while the window is focused, and the settings say so.

use std::ffi::OsString;
use std::sync::Mutex;

use salon_node::Command;
use salon_node::api::Role;
use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_global_shortcut::{GlobalShortcut, GlobalShortcutExt, ShortcutState};

use crate::commands::{AppState, run};
use crate::error::ApiError;

/// The kind of desktop session, which decides whether an app may take a key from other
/// windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// An X11 session: a key grab on the root window reaches every window.
    X11,
    /// A Wayland session: only the focused window gets keys.
    Wayland,
    /// Linux without any display named (nothing to grab on).
    NoDisplay,
    /// Windows or macOS, where the plugin's shortcuts are system-wide.
    Other,
}

impl Session {
    /// The session this process runs in, from its environment.
    pub fn current() -> Session {
        if cfg!(target_os = "linux") {
            Session::from_env(|name| std::env::var_os(name))
        } else {
            Session::Other
        }
    }

    /// A Linux session from these environment variables. A Wayland session is Wayland
    /// even when XWayland's `DISPLAY` is set too: a grab there sees X11 windows only.
    pub fn from_env(var: impl Fn(&str) -> Option<OsString>) -> Session {
        let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
        let wayland_type =
            var("XDG_SESSION_TYPE").is_some_and(|v| v.eq_ignore_ascii_case("wayland"));
        if set("WAYLAND_DISPLAY") || wayland_type {
            Session::Wayland
        } else if set("DISPLAY") {
            Session::X11
        } else {
            Session::NoDisplay
        }
    }

    fn grabs_keys(self) -> bool {
        matches!(self, Session::X11 | Session::Other)
    }
}

/// Keys (as the UI stores them: `KeyboardEvent.code`) that the plugin can take from
/// other windows, each under the accelerator the plugin parses. The X11 backend maps a
/// fixed set of keys; those it maps wrongly (`NumLock` to F1, `Quote` to a keysym no
/// keyboard has) and those it cannot map (modifier keys alone, `IntlBackslash`, …) are
/// left out, so they stay window-only instead of grabbing some other key.
const GLOBAL_KEYS: &[&str] = &[
    "KeyA",
    "KeyB",
    "KeyC",
    "KeyD",
    "KeyE",
    "KeyF",
    "KeyG",
    "KeyH",
    "KeyI",
    "KeyJ",
    "KeyK",
    "KeyL",
    "KeyM",
    "KeyN",
    "KeyO",
    "KeyP",
    "KeyQ",
    "KeyR",
    "KeyS",
    "KeyT",
    "KeyU",
    "KeyV",
    "KeyW",
    "KeyX",
    "KeyY",
    "KeyZ",
    "Digit0",
    "Digit1",
    "Digit2",
    "Digit3",
    "Digit4",
    "Digit5",
    "Digit6",
    "Digit7",
    "Digit8",
    "Digit9",
    "F1",
    "F2",
    "F3",
    "F4",
    "F5",
    "F6",
    "F7",
    "F8",
    "F9",
    "F10",
    "F11",
    "F12",
    "F13",
    "F14",
    "F15",
    "F16",
    "F17",
    "F18",
    "F19",
    "F20",
    "F21",
    "F22",
    "F23",
    "F24",
    "Space",
    "Backquote",
    "Backslash",
    "BracketLeft",
    "BracketRight",
    "Comma",
    "Equal",
    "Minus",
    "Period",
    "Semicolon",
    "Slash",
    "Backspace",
    "CapsLock",
    "Enter",
    "Delete",
    "End",
    "Home",
    "Insert",
    "PageDown",
    "PageUp",
    "ArrowDown",
    "ArrowLeft",
    "ArrowRight",
    "ArrowUp",
    "Numpad0",
    "Numpad1",
    "Numpad2",
    "Numpad3",
    "Numpad4",
    "Numpad5",
    "Numpad6",
    "Numpad7",
    "Numpad8",
    "Numpad9",
    "NumpadAdd",
    "NumpadDecimal",
    "NumpadDivide",
    "NumpadMultiply",
    "NumpadSubtract",
    "PrintScreen",
    "ScrollLock",
    "Pause",
];

/// The accelerator for the push-to-talk key setting, if the key can work outside the
/// window. Accelerators name keys by their `KeyboardEvent.code` (`Space`, `KeyT`, `F13`),
/// the same names the setting holds, without modifiers: the UI's key is a single key.
pub fn accelerator(key: &str) -> Option<&'static str> {
    GLOBAL_KEYS.iter().copied().find(|k| *k == key)
}

/// Where the push-to-talk key works, for the settings screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct TalkKeyReach {
    /// The key also works while another window is focused.
    pub everywhere: bool,
    /// One or two sentences for the settings screen saying where the key works.
    pub note: String,
}

/// Where a push-to-talk key (`None`: none set) works in this session.
pub fn reach(session: Session, key: Option<&str>) -> TalkKeyReach {
    let focused_only = |note: String| TalkKeyReach {
        everywhere: false,
        note,
    };
    match (session, key) {
        (Session::Wayland, _) => focused_only(
            "On Wayland, apps cannot watch keys pressed in other windows: push to talk \
             works only while Salon's window is focused."
                .into(),
        ),
        (Session::NoDisplay, _) => {
            focused_only("Push to talk works only while Salon's window is focused.".into())
        }
        (_, None) => TalkKeyReach {
            everywhere: true,
            note: "Once set, the key works in other apps too while you are on stage.".into(),
        },
        (_, Some(k)) if accelerator(k).is_some() => TalkKeyReach {
            everywhere: true,
            note: "The key works in other apps too: while you are on stage and another \
                   window is focused, Salon keeps it for itself, so it does not type there."
                .into(),
        },
        (_, Some(_)) => focused_only(
            "This key works only while Salon's window is focused. To talk from other \
             apps too, choose a letter, digit, function key or Space."
                .into(),
        ),
    }
}

/// The global key's state: whether the window has focus, which accelerator is taken from
/// the desktop, and whether it is held down now.
#[derive(Debug, Default)]
struct Grab {
    focused: bool,
    taken: Option<&'static str>,
    held: bool,
    /// Bumped on every focus change, so a check that started before one does not act
    /// after it.
    generation: u64,
}

/// Push-to-talk from outside the window, managed as Tauri state.
pub struct GlobalTalkKey {
    session: Session,
    grab: Mutex<Grab>,
    /// Presses and releases in order, to the task that sends them to the node (a quick
    /// tap must not end unmuted).
    presses: tokio::sync::mpsc::UnboundedSender<bool>,
}

impl GlobalTalkKey {
    /// Sets up global push-to-talk: its state and the task that forwards presses to the
    /// node. The plugin itself comes on first use (see [`Self::take`]).
    pub fn install<R: Runtime>(app: &tauri::App<R>) {
        let (presses, mut rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
        let handle = app.handle().clone();
        tauri::async_runtime::spawn(async move {
            while let Some(pressed) = rx.recv().await {
                if let Some(state) = handle.try_state::<AppState>() {
                    // Not in a room, or the node is gone: nothing to open.
                    let _ = run(&state, Command::PushToTalk(pressed)).await;
                }
            }
        });
        app.manage(GlobalTalkKey {
            session: Session::current(),
            grab: Mutex::new(Grab {
                focused: true,
                ..Grab::default()
            }),
            presses,
        });
    }

    /// Where the key works in this session.
    pub fn reach(&self, key: Option<&str>) -> TalkKeyReach {
        reach(self.session, key)
    }

    fn key_event(&self, pressed: bool) {
        let Ok(mut g) = self.grab.lock() else { return };
        // X11 repeats presses while a key is held; the node needs the first only.
        if g.taken.is_none() || g.held == pressed {
            return;
        }
        g.held = pressed;
        let _ = self.presses.send(pressed);
    }

    /// The main window gained or lost focus. Runs on the main thread, as the plugin's
    /// register and unregister do.
    pub fn focus_changed<R: Runtime>(app: &AppHandle<R>, focused: bool) {
        let Some(me) = app.try_state::<GlobalTalkKey>() else {
            return;
        };
        let generation = {
            let Ok(mut g) = me.grab.lock() else { return };
            g.focused = focused;
            g.generation += 1;
            g.generation
        };
        if focused {
            // The window's own key handling takes over (and the key types there again).
            me.release(app);
        } else {
            Self::check(app, generation);
        }
    }

    /// Something that decides whether the key is wanted changed (we joined, left, or
    /// moved on or off stage): check again while the window is not focused.
    pub fn room_changed<R: Runtime>(app: &AppHandle<R>) {
        let Some(me) = app.try_state::<GlobalTalkKey>() else {
            return;
        };
        let generation = match me.grab.lock() {
            Ok(g) if !g.focused => g.generation,
            _ => return,
        };
        Self::check(app, generation);
    }

    /// Asks the node whether the key is wanted (a key set that can be taken, and we are
    /// on stage), then takes or releases it on the main thread, unless the focus changed
    /// meanwhile.
    fn check<R: Runtime>(app: &AppHandle<R>, generation: u64) {
        let Some(me) = app.try_state::<GlobalTalkKey>() else {
            return;
        };
        if !me.session.grabs_keys() {
            return;
        }
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            let wanted = match app.try_state::<AppState>() {
                Some(state) => wanted_key(&state).await.ok().flatten(),
                None => None,
            };
            let main = app.clone();
            let _ = app.run_on_main_thread(move || {
                let Some(me) = main.try_state::<GlobalTalkKey>() else {
                    return;
                };
                if !me.grab.lock().is_ok_and(|g| g.generation == generation) {
                    return;
                }
                match wanted {
                    Some(accelerator) => me.take(&main, accelerator),
                    None => me.release(&main),
                }
            });
        });
    }

    /// Takes `accelerator` from the desktop (main thread).
    fn take<R: Runtime>(&self, app: &AppHandle<R>, accelerator: &'static str) {
        let taken = self.grab.lock().ok().and_then(|g| g.taken);
        if taken == Some(accelerator) {
            return;
        }
        self.release(app);
        // Installed on first use, not at start: on X11 its thread wakes twenty times a
        // second for as long as the app runs, which nobody without a key needs.
        if app.try_state::<GlobalShortcut<R>>().is_none() && app.plugin(plugin()).is_err() {
            return;
        }
        // Another app holding the key refuses the grab: the key then works in the window
        // only, as before.
        if app.global_shortcut().register(accelerator).is_ok()
            && let Ok(mut g) = self.grab.lock()
        {
            g.taken = Some(accelerator);
        }
    }

    /// Gives the key back to the desktop (main thread); a press whose release we will no
    /// longer see ends now, so the microphone does not stay open.
    fn release<R: Runtime>(&self, app: &AppHandle<R>) {
        let (taken, held) = match self.grab.lock() {
            Ok(mut g) => (g.taken.take(), std::mem::take(&mut g.held)),
            Err(_) => return,
        };
        if let Some(accelerator) = taken {
            let _ = app.global_shortcut().unregister(accelerator);
        }
        if held {
            let _ = self.presses.send(false);
        }
    }
}

/// The global-shortcut plugin, sending the key's presses and releases to
/// [`GlobalTalkKey`].
fn plugin<R: Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri_plugin_global_shortcut::Builder::new()
        .with_handler(|app, _shortcut, event| {
            if let Some(me) = app.try_state::<GlobalTalkKey>() {
                me.key_event(event.state == ShortcutState::Pressed);
            }
        })
        .build()
}

/// The accelerator to take now: the push-to-talk key, if one is set, can be taken, and
/// we are on stage in a room.
async fn wanted_key(state: &AppState) -> Result<Option<&'static str>, ApiError> {
    let settings = match run(state, Command::GetSettings).await? {
        salon_node::Reply::Settings(s) => s,
        _ => return Ok(None),
    };
    let Some(accelerator) = settings.push_to_talk_key.as_deref().and_then(accelerator) else {
        return Ok(None);
    };
    let on_stage = match run(state, Command::Status).await? {
        salon_node::Reply::Room { room: Some(room) } => room
            .members
            .iter()
            .any(|m| m.me && m.role != Role::Listener),
        _ => false,
    };
    Ok(on_stage.then_some(accelerator))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_ui_key_names_are_the_accelerators() {
        for key in [
            "Space", "KeyT", "F13", "Digit1", "Numpad0", "ArrowUp", "Pause",
        ] {
            let acc = accelerator(key).unwrap_or_else(|| panic!("{key} has no accelerator"));
            let parsed: Result<tauri_plugin_global_shortcut::Shortcut, _> = acc.parse();
            assert!(parsed.is_ok(), "the plugin does not parse {acc}");
        }
    }

    #[test]
    fn every_global_key_parses_as_a_plain_shortcut() {
        for key in GLOBAL_KEYS {
            let parsed: tauri_plugin_global_shortcut::Shortcut = key
                .parse()
                .unwrap_or_else(|e| panic!("{key} does not parse: {e}"));
            assert!(parsed.mods.is_empty(), "{key} has modifiers");
            assert_eq!(parsed.key.to_string(), *key, "{key} parses as another key");
        }
    }

    #[test]
    fn keys_the_x11_backend_maps_wrongly_or_not_at_all_stay_in_the_window() {
        for key in [
            "NumLock",
            "Quote",
            "ShiftLeft",
            "ControlRight",
            "AltLeft",
            "MetaLeft",
            "IntlBackslash",
            "NumpadEnter",
            "Escape",
            "",
            "space",
            "Ctrl+KeyT",
        ] {
            assert_eq!(accelerator(key), None, "{key}");
        }
    }

    #[test]
    fn a_wayland_session_is_wayland_even_with_xwayland() {
        let s = Session::from_env(env(&[("WAYLAND_DISPLAY", "wayland-0"), ("DISPLAY", ":0")]));
        assert_eq!(s, Session::Wayland);
        let s = Session::from_env(env(&[("XDG_SESSION_TYPE", "wayland"), ("DISPLAY", ":0")]));
        assert_eq!(s, Session::Wayland);
        assert_eq!(Session::from_env(env(&[("DISPLAY", ":99")])), Session::X11);
        let s = Session::from_env(env(&[("DISPLAY", ":0"), ("XDG_SESSION_TYPE", "x11")]));
        assert_eq!(s, Session::X11);
        // Set but empty names nothing.
        let s = Session::from_env(env(&[("WAYLAND_DISPLAY", ""), ("DISPLAY", ":0")]));
        assert_eq!(s, Session::X11);
        assert_eq!(Session::from_env(env(&[])), Session::NoDisplay);
    }

    #[test]
    fn wayland_says_push_to_talk_needs_the_window_focused() {
        for key in [None, Some("Space"), Some("ShiftLeft")] {
            let r = reach(Session::Wayland, key);
            assert!(!r.everywhere);
            assert!(r.note.contains("Wayland"), "{}", r.note);
            assert!(r.note.contains("only while Salon's window is focused"));
        }
    }

    #[test]
    fn x11_takes_a_mappable_key_and_says_so() {
        let r = reach(Session::X11, Some("Space"));
        assert!(r.everywhere);
        assert!(r.note.contains("other apps"), "{}", r.note);
        let r = reach(Session::X11, Some("ShiftLeft"));
        assert!(!r.everywhere);
        assert!(r.note.contains("only while Salon's window is focused"));
        assert!(reach(Session::X11, None).everywhere);
        assert!(!reach(Session::NoDisplay, Some("Space")).everywhere);
    }
}
