//! What the WebDriver tests share: a synchronous facade over the `fantoccini` WebDriver
//! client, the app under `tauri-driver`, `salon` command-line peers, and a look at
//! processes through /proc.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::future::Future;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

// The `salon` peers' event stream is read the same way in salon-node's own tests.
#[path = "../../../crates/salon-node/tests/common/json_events.rs"]
mod json_events;
#[allow(unused_imports)] // not every test binary uses both
pub use json_events::{json_events, member};

pub const APP: &str = env!("CARGO_BIN_EXE_salon-desktop");

/// How long any wait may last before the test fails. A guard against hangs, not a speed
/// requirement: a loaded 2-core machine running two WebKit windows is slow.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How long one WebDriver command may go unanswered: a guard against a hung driver.
/// Longer than [`PATIENCE`], as starting the app (a new session) can be slow.
const ANSWER_WAIT: Duration = Duration::from_secs(120);

/// The same guard while a test is already failing: what the window shows is worth a
/// short wait, not another two minutes on top of the failure.
const FAILING_ANSWER_WAIT: Duration = Duration::from_secs(10);

/// Progress lines in the test log, so a failure or a hang shows where it was.
#[macro_export]
macro_rules! step {
    ($($t:tt)*) => {
        eprintln!(
            "[webdriver] {} {}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            format!($($t)*)
        )
    };
}

/// One app window at a time: each runs WebKit and real Argon2 unlocks, and tests that
/// start windows at once on a 2-core machine starve each other.
pub static ONE_TEST: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn one_test() -> std::sync::MutexGuard<'static, ()> {
    ONE_TEST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// -------------------------------------------------------------------------- WebDriver

/// WebDriver errors that mean "the element changed under us; find it again".
const RETRY_ELEMENT: [ErrorStatus; 4] = [
    ErrorStatus::StaleElementReference,
    ErrorStatus::ElementNotInteractable,
    ErrorStatus::ElementClickIntercepted,
    ErrorStatus::NoSuchElement,
];

/// Whether the driver answered with one of these WebDriver errors.
fn is_one_of(e: &CmdError, errors: &[ErrorStatus]) -> bool {
    matches!(e, CmdError::Standard(w) if errors.contains(&w.error))
}

/// One WebDriver session, that is one app window, driven synchronously: the tests are
/// plain threads, so each command runs to its end on the driver's own runtime.
pub struct Driver {
    /// Current-thread: fantoccini's session task and its connection only need to run
    /// while a command is awaited.
    rt: tokio::runtime::Runtime,
    /// `None` once the session is closed.
    client: Option<Client>,
    /// Whether the failure artifacts were saved: a second screenshot right after the
    /// first one tends to get no answer.
    failure_saved: std::cell::Cell<bool>,
    /// Names the window in failure messages (two apps run in one test).
    pub label: String,
}

impl Driver {
    /// Opens a session: tauri-driver starts the app.
    pub fn start(port: u16, label: &str) -> Driver {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the WebDriver client");
        // SALON_APP picks another build of the app (the memory figure of a release build).
        let app = std::env::var("SALON_APP").unwrap_or_else(|_| APP.to_owned());
        let mut caps = fantoccini::wd::Capabilities::new();
        caps.insert("tauri:options".into(), json!({ "application": app }));
        // Plain http: the driver listens on loopback, so no TLS connector.
        let connect = async {
            ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
        };
        // The timer must be made inside the runtime, hence the async block.
        let client = rt
            .block_on(async { tokio::time::timeout(ANSWER_WAIT, connect).await })
            .unwrap_or_else(|_| panic!("{label}: no session within {ANSWER_WAIT:?}"))
            .unwrap_or_else(|e| panic!("{label}: no session: {e}"));
        Driver {
            rt,
            client: Some(client),
            failure_saved: std::cell::Cell::new(false),
            label: label.to_owned(),
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("session is open")
    }

    /// Runs one command to its end. No answer within [`ANSWER_WAIT`] counts as a lost
    /// connection, so a hung driver fails the test instead of hanging it.
    fn run<T>(&self, command: impl Future<Output = Result<T, CmdError>>) -> Result<T, CmdError> {
        self.run_within(ANSWER_WAIT, command)
    }

    /// [`Self::run`] with its own limit. After a command runs out of time, fantoccini
    /// still waits for its answer before it sends the next one.
    fn run_within<T>(
        &self,
        limit: Duration,
        command: impl Future<Output = Result<T, CmdError>>,
    ) -> Result<T, CmdError> {
        // The timer must be made inside the runtime, hence the async block.
        self.rt
            .block_on(async { tokio::time::timeout(limit, command).await })
            .unwrap_or_else(|_| {
                Err(CmdError::Lost(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {limit:?}"),
                )))
            })
    }

    /// A command that must succeed.
    fn must<T>(&self, what: &str, command: impl Future<Output = Result<T, CmdError>>) -> T {
        self.run(command)
            .unwrap_or_else(|e| panic!("{}: {what}: {e:?}", self.label))
    }

    /// Runs a script in the window and returns its result; `args` is a JSON array.
    pub fn script(&self, js: &str, args: Value) -> Value {
        let Value::Array(args) = args else {
            panic!("{}: script arguments must be an array: {args}", self.label);
        };
        self.must("script", self.client().execute(js, args))
    }

    /// The element matching `css` now, if any.
    pub fn find(&self, css: &str) -> Option<Element> {
        match self.run(self.client().find(Locator::Css(css))) {
            Ok(e) => Some(e),
            // WebKit also answers "stale" when a redraw replaced the element between
            // finding it and handing it out: not there now, look again.
            Err(e)
                if is_one_of(
                    &e,
                    &[
                        ErrorStatus::NoSuchElement,
                        ErrorStatus::StaleElementReference,
                    ],
                ) =>
            {
                None
            }
            Err(e) => panic!("{}: find {css}: {e:?}", self.label),
        }
    }

    pub fn exists(&self, css: &str) -> bool {
        self.script(
            "return document.querySelector(arguments[0]) !== null",
            json!([css]),
        ) == json!(true)
    }

    /// Polls `check` until it gives something; fails with `what` and the page text (and
    /// leaves the window's screenshot and source in the artifacts folder).
    pub fn wait_until<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let end = Instant::now() + PATIENCE;
        loop {
            if let Some(v) = check() {
                return v;
            }
            if Instant::now() >= end {
                let text = self.body_text();
                self.save_failure_artifacts();
                panic!(
                    "{}: {what} did not happen within {PATIENCE:?}; the window says:\n{text}",
                    self.label
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_for(&self, css: &str) -> Element {
        self.wait_until(&format!("{css} to appear"), || self.find(css))
    }

    pub fn wait_gone(&self, css: &str) {
        self.wait_until(&format!("{css} to go"), || {
            (!self.exists(css)).then_some(())
        });
    }

    /// Clicks an element the way a person does (WebDriver element click). The view is
    /// redrawn whenever the room changes, so the element found may be replaced before the
    /// click reaches it; then it is found again and clicked again.
    pub fn click(&self, css: &str) {
        self.wait_until(&format!("a click on {css}"), || {
            let e = self.find(css)?;
            match self.run(e.click()) {
                Ok(()) => Some(()),
                Err(e) if is_one_of(&e, &RETRY_ELEMENT) => None,
                Err(e) => panic!("{}: click {css}: {e:?}", self.label),
            }
        });
    }

    /// Presses the mouse on an element, holds it until the view has redrawn (a level or
    /// link event; a person's click easily spans one), and releases: one click, as a
    /// person makes it.
    pub fn press_across_redraw(&self, css: &str) {
        self.script(
            // Held by `window`: WebKit may collect an observer nothing refers to.
            "window.__salonRedraws = 0; window.__salonObserver?.disconnect(); window.__salonObserver = new MutationObserver(() => window.__salonRedraws++); window.__salonObserver.observe(document.getElementById('app'), {subtree: true, childList: true, characterData: true, attributes: true}); return true",
            json!([]),
        );
        self.wait_until(&format!("a press on {css}"), || {
            let element = self.find(css)?;
            let press = MouseActions::new("mouse".into())
                .then(PointerAction::MoveToElement {
                    element,
                    duration: Some(Duration::ZERO),
                    x: 0.0,
                    y: 0.0,
                })
                .then(PointerAction::Down {
                    button: MOUSE_BUTTON_LEFT,
                });
            match self.run(self.client().perform_actions(press)) {
                Ok(()) => Some(()),
                Err(e) if is_one_of(&e, &RETRY_ELEMENT) => None,
                Err(e) => panic!("{}: press {css}: {e:?}", self.label),
            }
        });
        self.wait_until("the view to redraw while the button is held", || {
            let n = self.script("return window.__salonRedraws", json!([]));
            (n.as_u64().unwrap_or(0) > 0).then_some(())
        });
        let release = MouseActions::new("mouse".into()).then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
        self.must("release", self.client().perform_actions(release));
        self.must("release actions", self.client().release_actions());
    }

    /// Types into a field (WebDriver send keys) until the field holds exactly the text: a
    /// redraw can replace the field while the keys go in.
    pub fn type_into(&self, css: &str, text: &str) {
        self.wait_until(&format!("typing into {css}"), || {
            let e = self.find(css)?;
            match self
                .run(e.clear())
                .and_then(|()| self.run(e.send_keys(text)))
            {
                Ok(()) => {}
                Err(e) if is_one_of(&e, &RETRY_ELEMENT) => return None,
                Err(e) => panic!("{}: type into {css}: {e:?}", self.label),
            }
            let now = self.script(
                "const f = document.querySelector(arguments[0]); return f ? f.value : null",
                json!([css]),
            );
            (now == text).then_some(())
        });
    }

    /// Submits a form the way pressing Enter in it would.
    pub fn submit(&self, form_css: &str) {
        self.wait_for(form_css);
        let sent = self.script(
            "const f = document.querySelector(arguments[0]); if (!f) return false; f.requestSubmit(); return true",
            json!([form_css]),
        );
        assert_eq!(sent, json!(true), "{}: no {form_css} to submit", self.label);
    }

    /// The page's text; never fails, as failure messages use it.
    pub fn body_text(&self) -> String {
        match self.run(
            self.client()
                .execute("return document.body.innerText", vec![]),
        ) {
            Ok(v) => v.as_str().unwrap_or_default().to_owned(),
            Err(e) => format!("(no page text: {e:?})"),
        }
    }

    /// Waits until the page shows `needle`; returns the page text.
    pub fn wait_text(&self, needle: &str) -> String {
        self.wait_until(&format!("\"{needle}\" to show"), || {
            let t = self.body_text();
            t.contains(needle).then_some(t)
        })
    }

    /// Text of the first element matching `css`, if any.
    pub fn text_of(&self, css: &str) -> Option<String> {
        self.script(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null",
            json!([css]),
        )
        .as_str()
        .map(str::to_owned)
    }

    /// Waits for the next two animation frames: WebKit can otherwise show the frame before
    /// the last change.
    pub fn two_frames(&self) {
        self.must(
            "two frames",
            self.client().execute_async(
                "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)))",
                vec![],
            ),
        );
    }

    /// The window as a PNG.
    pub fn screenshot(&self) -> Vec<u8> {
        let png = self.must("screenshot", self.client().screenshot());
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{}: the screenshot is not a PNG",
            self.label
        );
        png
    }

    /// Saves `<screen>-dark.png` and `<screen>-light.png` into the artifacts folder,
    /// switching the theme through the UI's contract (`data-theme` on the root element),
    /// then puts the theme back as it was.
    pub fn screenshots(&self, screen: &str) {
        let dir = artifacts_dir();
        let before = self.script(
            "return document.documentElement.dataset.theme ?? null",
            json!([]),
        );
        for theme in ["dark", "light"] {
            self.script(
                "document.documentElement.dataset.theme = arguments[0]",
                json!([theme]),
            );
            self.two_frames();
            let png = self.screenshot();
            let path = dir.join(format!("{screen}-{theme}.png"));
            std::fs::write(&path, png).unwrap();
            step!("screenshot {}", path.display());
        }
        self.script(
            "const t = arguments[0]; if (t === null) delete document.documentElement.dataset.theme; else document.documentElement.dataset.theme = t",
            json!([before]),
        );
    }

    /// Saves the window's page source (`failed-<label>.html`) and what it shows
    /// (`failed-<label>.png`) into the artifacts folder, once. Never fails: it runs while a
    /// test is already failing. The screenshot is best effort.
    pub fn save_failure_artifacts(&self) {
        if self.failure_saved.replace(true) {
            return;
        }
        let name: String = self
            .label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = artifacts_dir().join(format!("failed-{name}"));
        let source = self.run_within(FAILING_ANSWER_WAIT, self.client().source());
        self.save_artifact(&path.with_extension("html"), source.map(String::into_bytes));
        // Last: WebKit answers a screenshot only once the page paints again (an idle page
        // can keep it waiting for ever), so make it paint first.
        self.flip_theme_and_back();
        let png = self.run_within(FAILING_ANSWER_WAIT, self.client().screenshot());
        self.save_artifact(&path.with_extension("png"), png);
    }

    fn save_artifact(&self, path: &Path, got: Result<Vec<u8>, CmdError>) {
        match got.map(|bytes| std::fs::write(path, bytes)) {
            Ok(Ok(())) => eprintln!("{}: saved {}", self.label, path.display()),
            Ok(Err(e)) => eprintln!("{}: could not save {}: {e}", self.label, path.display()),
            Err(e) => eprintln!("{}: no {}: {e:?}", self.label, path.display()),
        }
    }

    /// Makes the page paint twice without a lasting change: the other theme for two
    /// frames, then its own again for two. Errors are ignored: only used while failing.
    fn flip_theme_and_back(&self) {
        let flip = "const done = arguments[arguments.length - 1]; const r = document.documentElement; const t = r.dataset.theme; const frames = (f) => requestAnimationFrame(() => requestAnimationFrame(f)); r.dataset.theme = t === 'light' ? 'dark' : 'light'; frames(() => { if (t === undefined) delete r.dataset.theme; else r.dataset.theme = t; frames(() => done(true)); })";
        let _ = self.run_within(
            FAILING_ANSWER_WAIT,
            self.client().execute_async(flip, vec![]),
        );
    }

    /// Ends the session: the window closes, and with it the app.
    pub fn quit(mut self) {
        if let Some(client) = self.client.take() {
            let r = self.run(client.close());
            assert!(
                r.is_ok(),
                "{}: the session did not close: {r:?}",
                self.label
            );
        }
    }
}

impl Drop for Driver {
    /// A test that failed mid-way still closes its window: tauri-driver, when stopped,
    /// kills WebKitWebDriver outright, which would orphan the app. (fantoccini would close
    /// it when the last client goes, but only on a runtime that still runs.)
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let limit = if std::thread::panicking() {
                FAILING_ANSWER_WAIT
            } else {
                ANSWER_WAIT
            };
            let _ = self.run_within(limit, client.close());
        }
    }
}

/// Runs a scenario; if it fails, prints what each window shows and saves its screenshot
/// and page source before failing (a failure in one window is often explained by the
/// other).
pub fn showing_windows_on_failure(windows: &[&Driver], scenario: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(scenario)) {
        for w in windows {
            eprintln!("---- {} shows:\n{}\n----", w.label, w.body_text());
            w.save_failure_artifacts();
        }
        std::panic::resume_unwind(panic);
    }
}

/// `$SALON_ARTIFACTS`, or `webdriver-artifacts` in the cargo target folder.
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("SALON_ARTIFACTS").map_or_else(
        || {
            // APP is <target>/<profile>/salon-desktop.
            Path::new(APP)
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("."))
                .join("webdriver-artifacts")
        },
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ------------------------------------------------------------------------ the app

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// PIDs of running app instances with this data directory.
pub fn app_pids(data_dir: &Path) -> Vec<u32> {
    let needle = format!("SALON_DATA_DIR={}", data_dir.display());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| {
            let pid = p.file_name().to_string_lossy().parse::<u32>().ok()?;
            let exe = std::fs::read_link(p.path().join("exe")).ok()?;
            let env = std::fs::read(p.path().join("environ")).ok()?;
            (exe.ends_with("salon-desktop")
                && env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
            .then_some(pid)
        })
        .collect()
}

/// `tauri-driver` on its own ports, starting the app with its own data directory and
/// audio: one per app instance.
pub struct App {
    driver: Child,
    pub port: u16,
    pub data_dir: PathBuf,
}

impl App {
    /// Starts tauri-driver for an app with this data directory and microphone
    /// (`silence`, `tone:440`, …). `None` (the test skips) without a display or
    /// tauri-driver, except in CI.
    pub fn launch(data_dir: &Path, input: &str) -> Option<App> {
        if std::env::var_os("DISPLAY").is_none() {
            assert!(
                std::env::var_os("SALON_CI").is_none(),
                "CI must provide a display (Xvfb)"
            );
            eprintln!("skipping: no DISPLAY");
            return None;
        }
        let (port, native) = (free_port(), free_port());
        let driver = match Command::new("tauri-driver")
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .env("SALON_DATA_DIR", data_dir)
            .env("SALON_INPUT", input)
            .env("SALON_OUTPUT", "null")
            .env("SALON_BIND", "127.0.0.1:0")
            .env("SALON_LOG_EVENTS", "1")
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var_os("SALON_CI").is_none(),
                    "tauri-driver is needed in CI: {e}"
                );
                eprintln!("skipping: tauri-driver not installed ({e})");
                return None;
            }
        };
        let app = App {
            driver,
            port,
            data_dir: data_dir.to_owned(),
        };
        // Ready when both tauri-driver and the WebKitWebDriver it starts listen: a
        // session asked for before the latter is up fails.
        let end = Instant::now() + PATIENCE;
        for p in [port, native] {
            while TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(Instant::now() < end, "tauri-driver did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(app)
    }

    /// A new session: starts the app and opens its window.
    pub fn open(&self, label: &str) -> Driver {
        assert!(
            app_pids(&self.data_dir).is_empty(),
            "{label}: an app with this data directory is already running"
        );
        let d = Driver::start(self.port, label);
        step!(
            "{label}: window open, app pid {:?}",
            app_pids(&self.data_dir)
        );
        d
    }

    /// Asks the running app to quit with SIGTERM, as a logout does, and waits until it
    /// has. (Closing a WebDriver session cannot show a normal quit: WebKitWebDriver ends
    /// the app it started with SIGKILL.)
    pub fn terminate(&self, what: &str) {
        let pids = app_pids(&self.data_dir);
        assert!(!pids.is_empty(), "{what}: no app is running");
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        self.wait_exited(what);
    }

    /// Waits until no app with this data directory runs.
    pub fn wait_exited(&self, what: &str) {
        let end = Instant::now() + PATIENCE;
        while !app_pids(&self.data_dir).is_empty() {
            assert!(Instant::now() < end, "{what}: the app is still running");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // Only after a failure is an app left: end it so it does not hold the history.
        for pid in app_pids(&self.data_dir) {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        // SIGTERM, not SIGKILL: tauri-driver then stops its WebKitWebDriver child too.
        let _ = Command::new("kill")
            .args(["-TERM", &self.driver.id().to_string()])
            .status();
        let _ = self.driver.wait();
    }
}

/// Fills in the first-run form and waits for the home screen.
pub fn create_identity(d: &Driver, name: &str, passphrase: &str) {
    d.wait_for("form[data-form=create]");
    d.type_into("form[data-form=create] input[name=name]", name);
    d.type_into("form[data-form=create] input[name=passphrase]", passphrase);
    d.type_into("form[data-form=create] input[name=confirm]", passphrase);
    d.submit("form[data-form=create]");
    d.wait_for("form[data-form=host]");
    let home = d.wait_text("Signed in as");
    assert!(
        home.contains(name),
        "{}: home names the user: {home}",
        d.label
    );
}

/// Hosts a room from the home screen; returns the invite the room screen shows.
pub fn host_room(d: &Driver, title: &str) -> String {
    d.type_into("form[data-form=host] input[name=title]", title);
    d.submit("form[data-form=host]");
    d.wait_until("the invite to show", || {
        d.text_of("[data-testid=invite]")
            .map(|t| t.trim().to_owned())
            .filter(|t| t.starts_with("salon:"))
    })
}

/// CSS for a person in the stage or the audience (`(you)` is part of one's own label).
pub fn person(list: &str, label: &str) -> String {
    format!("[data-testid={list}] .person[aria-label=\"{label}\"]")
}

// ---------------------------------------------------------------- command-line peers

/// A `salon` command-line peer: JSON events out, room actions in (one per stdin line).
pub struct CliPeer {
    pub name: String,
    child: Child,
    stdin: ChildStdin,
    events: Receiver<Value>,
    /// Everything seen so far but levels and links, for failure messages.
    seen: Vec<Value>,
    /// The latest room this peer reported.
    pub room: Option<Value>,
}

impl CliPeer {
    fn salon() -> PathBuf {
        // Built alongside: `cargo test --workspace` builds salon-node's binary for its own
        // tests; with `-p salon-desktop` build it first (`cargo build -p salon-node --bin salon`).
        let p = Path::new(APP).with_file_name("salon");
        assert!(
            p.exists(),
            "no {}: run `cargo build -p salon-node --bin salon` first",
            p.display()
        );
        p
    }

    fn common(root: &Path, name: &str) -> Vec<String> {
        let pass = root.join("pass");
        if !pass.exists() {
            std::fs::write(&pass, "cli peer passphrase\n").unwrap();
        }
        vec![
            "--data-dir".into(),
            root.join(name).display().to_string(),
            "--passphrase-file".into(),
            pass.display().to_string(),
        ]
    }

    fn start(root: &Path, name: &str, args: &[&str], input: &str) -> CliPeer {
        let common = Self::common(root, name);
        let st = Command::new(Self::salon())
            .args(&common)
            .args(["init", "--name", name, "--kdf-memory-kib", "256"])
            .env("SALON_INSECURE_KDF_FOR_TESTS", "1")
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "init: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let mut child = Command::new(Self::salon())
            .args(&common)
            .args(args)
            .args([
                "--bind",
                "127.0.0.1:0",
                "--events",
                "json",
                "--input",
                input,
                "--output",
                "null",
                "--no-noise-suppression",
                "--no-echo-cancellation",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let events = json_events(child.stdout.take().unwrap());
        let stdin = child.stdin.take().unwrap();
        CliPeer {
            name: name.to_owned(),
            child,
            stdin,
            events,
            seen: Vec::new(),
            room: None,
        }
    }

    /// A peer that joins with `invite`.
    pub fn join(root: &Path, name: &str, invite: &str, input: &str) -> CliPeer {
        Self::start(root, name, &["join", invite], input)
    }

    /// A peer that hosts a room.
    pub fn host(root: &Path, name: &str, title: &str, input: &str) -> CliPeer {
        Self::start(root, name, &["host", "--title", title], input)
    }

    /// The invite a hosting peer printed.
    pub fn invite(&mut self) -> String {
        self.wait("its invite", |v| v["event"] == "hosting")["invite"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Types a line on the peer's stdin (`say hi`, `promote Ada`, `leave`, …).
    pub fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn next(&mut self, end: Instant) -> Option<Value> {
        let left = end.checked_duration_since(Instant::now())?;
        let v = self.events.recv_timeout(left).ok()?;
        if v["event"] == "room" || v["event"] == "joined" {
            self.room = Some(v["room"].clone());
        }
        if v["event"] != "levels" && v["event"] != "links" {
            self.seen.push(v.clone());
        }
        Some(v)
    }

    fn failed(&self, what: &str) -> ! {
        panic!(
            "{}: no {what} within {PATIENCE:?}; it saw {:#?}",
            self.name, self.seen
        );
    }

    /// Waits for the next event (from now on) that matches `pred`.
    pub fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + PATIENCE;
        while let Some(v) = self.next(end) {
            if pred(&v) {
                return v;
            }
        }
        self.failed(what)
    }

    /// Waits until the latest room this peer knows satisfies `pred`.
    pub fn room_has(&mut self, what: &str, pred: impl Fn(&Value) -> bool) {
        let end = Instant::now() + PATIENCE;
        while !self.room.as_ref().is_some_and(&pred) {
            if self.next(end).is_none() {
                self.failed(what);
            }
        }
    }

    /// Waits for the process to end by itself.
    pub fn wait_exit(&mut self) {
        let end = Instant::now() + PATIENCE;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < end, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for CliPeer {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// What `salon history` prints for a data directory (the app's, once it has exited).
pub fn history(data_dir: &Path, passphrase: &str) -> String {
    let pass = data_dir.with_extension("pass");
    std::fs::write(&pass, format!("{passphrase}\n")).unwrap();
    let out = Command::new(CliPeer::salon())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--passphrase-file")
        .arg(&pass)
        .args(["history", "--limit", "5"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "salon history: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a 48 kHz mono WAV of `secs` seconds: 440 Hz bursts of 0.4 s every 1.3 s, so a
/// peer playing it starts and stops speaking all the time (the view redraws with it).
/// The period is not a multiple of the 0.5 s between level reports: with a 1 s period
/// the reports could keep sampling the same phase (always within a burst and its voice
/// detector's hangover) and the view would show no change for as long as that lasts.
pub fn bursts_wav(path: &Path, secs: u32) {
    use salon_audio::backend::AudioSink;
    let samples: Vec<f32> = (0..48_000 * secs)
        .map(|i| {
            let on = i % 62_400 < 19_200;
            let x = (f64::from(i) * 2.0 * std::f64::consts::PI * 440.0 / 48_000.0).sin();
            if on { (x * 0.4) as f32 } else { 0.0 }
        })
        .collect();
    let mut wav = salon_audio::backend::file::WavSink::create(path).unwrap();
    wav.write(&samples).unwrap();
    wav.finish().unwrap();
}

/// One test's data folder: removed when the test passes; kept when it fails, for a look
/// at what the app and the peers left there.
pub struct TestDir(tempfile::TempDir);

impl std::ops::Deref for TestDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.disable_cleanup(true);
            eprintln!("test data kept in {}", self.0.path().display());
        }
    }
}

/// A fresh folder for one test's data (`salon-webdriver-<tag>-…` in the temp folder).
pub fn tempdir(tag: &str) -> TestDir {
    TestDir(
        tempfile::Builder::new()
            .prefix(&format!("salon-webdriver-{tag}-"))
            .tempdir()
            .expect("a temporary folder"),
    )
}
