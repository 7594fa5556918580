//! Real `salon` processes inside the bed's namespaces: tones in, WAV files out, room
//! commands on stdin, JSON events on stdout, each event stamped with when it arrived.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bed::Bed;

#[path = "../../crates/salon-node/tests/common/json_events.rs"]
mod json_events;
use json_events::json_events;
pub use json_events::member;

/// Whether [`salon_binary`] picks the release build (see [`use_release_salon`]).
static RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on this test process runs the release build of `salon` (what users run):
/// for tests that time the datagrams, where a debug build's slow code (ten times the
/// CPU per frame on two cores) is a different program.
pub fn use_release_salon() {
    RELEASE.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// The `salon` binary: `$SALON_BIN`, or the one cargo built next to this test executable
/// (`cargo test --workspace` builds it; `-p salon-tests` alone does not), or after
/// [`use_release_salon`] the one in the release folder beside it.
pub fn salon_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SALON_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/nat-HASH -> target/debug/salon
    let mut dir = exe
        .parent()
        .expect("test executable directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let release = RELEASE.load(std::sync::atomic::Ordering::SeqCst);
    if release {
        dir.pop();
        dir.push("release");
    }
    let p = dir.join("salon");
    let build = if release {
        "cargo build --release -p salon-node --bin salon"
    } else {
        "cargo build -p salon-node --bin salon"
    };
    assert!(
        p.exists(),
        "no salon binary at {}: build it: {build} (or set SALON_BIN)",
        p.display()
    );
    p
}

/// The path a link runs on, as the node reports it (`link_path` events, `links` entries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPath {
    /// When the test saw it.
    pub at: Instant,
    /// "direct" or "relayed".
    pub path: String,
    /// Hex key of the relaying member, when relayed.
    pub via: Option<String>,
}

/// One running `salon host` or `salon join`, killed when dropped.
pub struct Salon {
    /// Display name.
    pub name: String,
    child: Child,
    stdin: ChildStdin,
    events: Receiver<Value>,
    /// When the process started.
    pub started: Instant,
    /// Every event but the frequent `levels` and `links`, with when it arrived.
    pub log: Vec<(Instant, Value)>,
    /// The latest `links` event's entries.
    pub links: Vec<Value>,
    /// Path changes per peer display name, in order.
    pub paths: Vec<(String, LinkPath)>,
    /// The latest room state.
    pub room: Option<Value>,
    /// The recording of what this node played.
    pub out: PathBuf,
    stderr: PathBuf,
    exited: bool,
    /// Stage invitations answered so far ([`Salon::accept_stage_invite`]).
    invitations_answered: usize,
}

/// Creates `name`'s identity and history under `root` (fast KDF parameters).
pub fn init(root: &Path, name: &str) {
    let out = Command::new(salon_binary())
        .args(common_args(root, name))
        .args(["init", "--name", name, "--kdf-memory-kib", "256"])
        .env("SALON_INSECURE_KDF_FOR_TESTS", "1")
        .output()
        .expect("run salon init");
    assert!(
        out.status.success(),
        "salon init {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn common_args(root: &Path, name: &str) -> Vec<String> {
    let pass = root.join("pass");
    if !pass.exists() {
        std::fs::write(&pass, "nat bed passphrase\n").expect("passphrase file");
    }
    vec![
        "--data-dir".into(),
        root.join(name).display().to_string(),
        "--passphrase-file".into(),
        pass.display().to_string(),
    ]
}

impl Salon {
    /// `name` hosts a room titled `title` from namespace `ns`, sending `input`
    /// (e.g. `tone:440`).
    pub fn host(bed: &Bed, ns: &str, root: &Path, name: &str, title: &str, input: &str) -> Salon {
        Salon::start(bed, ns, root, name, &["host", "--title", title], input)
    }

    /// `name` joins with `invite` from namespace `ns`.
    pub fn join(bed: &Bed, ns: &str, root: &Path, name: &str, invite: &str, input: &str) -> Salon {
        Salon::start(bed, ns, root, name, &["join", invite], input)
    }

    /// `salon ARGS` (`host --title T …`, `join INVITE …`) as `name` from namespace `ns`,
    /// bound to any port, events in JSON, sending `input`, recording what it plays.
    pub fn start(
        bed: &Bed,
        ns: &str,
        root: &Path,
        name: &str,
        args: &[&str],
        input: &str,
    ) -> Salon {
        init(root, name);
        let out = root.join(format!("{name}.wav"));
        let stderr = root.join(format!("{name}.log"));
        let mut child = bed
            .exec(ns, salon_binary())
            .args(common_args(root, name))
            .args(args)
            .args(["--bind", "0.0.0.0:0", "--events", "json", "--input", input])
            .arg("--output")
            .arg(&out)
            .args(["--no-noise-suppression", "--no-echo-cancellation"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("salon log file"))
            .spawn()
            .expect("start salon");
        let events = json_events(child.stdout.take().expect("stdout"));
        let stdin = child.stdin.take().expect("stdin");
        Salon {
            name: name.to_owned(),
            child,
            stdin,
            events,
            started: Instant::now(),
            log: Vec::new(),
            links: Vec::new(),
            paths: Vec::new(),
            room: None,
            out,
            stderr,
            exited: false,
            invitations_answered: 0,
        }
    }

    /// Types a room command (`promote Ada`, `status`, `leave`, …).
    pub fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to salon");
        self.stdin.flush().expect("flush salon stdin");
    }

    /// Waits for a stage invitation (`promote NAME` on a moderator asks first) and
    /// accepts it, as someone pressing "Accept" at once would.
    /// Only an invitation not answered yet counts: the n-th call answers the n-th.
    pub fn accept_stage_invite(&mut self, limit: Duration) {
        let answered = self.invitations_answered;
        let invited = |s: &Salon| {
            s.log
                .iter()
                .filter(|(_, v)| v["event"] == "stage_invited")
                .count()
        };
        self.wait_until("a stage invitation", limit, |s| invited(s) > answered);
        self.invitations_answered += 1;
        self.say("accept");
    }

    /// The invite a hosting node printed.
    pub fn invite(&mut self) -> String {
        self.wait("its invite", Duration::from_secs(15), |v| {
            v["event"] == "hosting"
        })
        .1["invite"]
            .as_str()
            .expect("invite text")
            .to_owned()
    }

    /// The invite a hosting node printed once its router mapped its port, and the mapped
    /// address (`port_mapping`, then `hosting` again with that address first).
    pub fn mapped_invite(&mut self, limit: Duration) -> (SocketAddr, String) {
        let (at, v) = self.wait("a port mapping", limit, |v| {
            v["event"] == "port_mapping" && v["external"].is_string()
        });
        let external = v["external"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("port_mapping names an address");
        let after = |s: &Salon| {
            s.log
                .iter()
                .find(|(t, v)| *t >= at && v["event"] == "hosting")
                .map(|(_, v)| v["invite"].as_str().expect("invite text").to_owned())
        };
        self.wait_until("the invite after the port mapping", limit, |s| {
            after(s).is_some()
        });
        (external, after(self).expect("just seen"))
    }

    /// The process id (`ip netns exec` runs the program in its own place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the process has used so far, user and system, in seconds
    /// (`/proc/PID/stat`).
    pub fn cpu_seconds(&self) -> f64 {
        static TICK: OnceLock<f64> = OnceLock::new();
        let hz = *TICK.get_or_init(|| {
            Command::new("getconf")
                .arg("CLK_TCK")
                .output()
                .ok()
                .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
                .unwrap_or(100.0)
        });
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .unwrap_or_else(|e| panic!("{}: /proc/PID/stat: {e}", self.name));
        // After "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')').expect("stat has (comm)") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f[i - 3].parse::<f64>().expect("a tick count");
        (ticks(14) + ticks(15)) / hz
    }

    /// Waits up to `limit` for the process to end by itself, taking in its last events;
    /// its exit status, or `None` if it still runs.
    pub fn exit_status(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            self.drain();
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exited = true;
                self.pump(Instant::now() + Duration::from_millis(200), |_| false);
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Takes in the events that arrived until `until`, or until `done` holds.
    /// Returns whether `done` held.
    pub fn pump(&mut self, until: Instant, done: impl Fn(&Salon) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                return false;
            };
            match self.events.recv_timeout(left) {
                Ok(v) => self.take(v),
                Err(RecvTimeoutError::Timeout) => return done(self),
                // The process closed its output: nothing more will come.
                Err(RecvTimeoutError::Disconnected) => return done(self),
            }
        }
    }

    /// Takes in every event that has arrived, without waiting.
    pub fn drain(&mut self) {
        loop {
            match self.events.try_recv() {
                Ok(v) => self.take(v),
                Err(_) => return,
            }
        }
    }

    /// Waits until `done` holds, or panics after `limit` saying `what` never happened.
    pub fn wait_until(&mut self, what: &str, limit: Duration, done: impl Fn(&Salon) -> bool) {
        if !self.pump(Instant::now() + limit, done) {
            panic!(
                "{}: {what} not within {limit:?}\n{}",
                self.name,
                self.report()
            );
        }
    }

    /// The first logged event matching `pred` (waiting up to `limit` for it), with when
    /// it arrived.
    pub fn wait(
        &mut self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> (Instant, Value) {
        self.wait_until(what, limit, |s| s.log.iter().any(|(_, v)| pred(v)));
        self.log
            .iter()
            .find(|(_, v)| pred(v))
            .cloned()
            .expect("just seen")
    }

    fn take(&mut self, v: Value) {
        let now = Instant::now();
        match v["event"].as_str() {
            Some("levels") => {}
            Some("links") => {
                let links = v["links"].as_array().cloned().unwrap_or_default();
                for l in &links {
                    self.note_path(now, l);
                }
                self.links = links;
            }
            other => {
                if matches!(other, Some("room" | "joined")) {
                    self.room = Some(v["room"].clone());
                }
                if other == Some("link_path") {
                    self.note_path(now, &v);
                }
                self.log.push((now, v));
            }
        }
    }

    /// Records a path from a `link_path` event or a `links` entry, if it changed.
    fn note_path(&mut self, at: Instant, v: &Value) {
        let (Some(name), Some(path)) = (v["name"].as_str(), v["path"].as_str()) else {
            return;
        };
        let via = v["via"].as_str().map(str::to_owned);
        if self
            .path_to(name)
            .is_some_and(|p| p.path == path && p.via == via)
        {
            return;
        }
        let path = LinkPath {
            at,
            path: path.to_owned(),
            via,
        };
        self.paths.push((name.to_owned(), path));
    }

    /// The path of the link to `name` now, if the node said.
    pub fn path_to(&self, name: &str) -> Option<&LinkPath> {
        self.paths
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
    }

    /// Every path the link to `name` has had, in order ("relayed", "direct", …).
    pub fn path_history(&self, name: &str) -> Vec<&str> {
        self.paths
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, p)| p.path.as_str())
            .collect()
    }

    /// The hex key of room member `name`.
    pub fn key_of(&self, name: &str) -> Option<String> {
        let room = self.room.as_ref()?;
        member(room, name)?["key"].as_str().map(str::to_owned)
    }

    /// The display name of room member with hex key `key`.
    pub fn name_of(&self, key: &str) -> Option<String> {
        let room = self.room.as_ref()?;
        room["members"]
            .as_array()?
            .iter()
            .find(|m| m["key"] == key)?["name"]
            .as_str()
            .map(str::to_owned)
    }

    /// Whether `name` is in the room as a speaker (or host) in the latest room state.
    pub fn on_stage(&self, name: &str) -> bool {
        self.room
            .as_ref()
            .and_then(|r| member(r, name))
            .is_some_and(|m| m["role"] == "speaker" || m["role"] == "host")
    }

    /// When the first audio from `name` arrived.
    pub fn first_audio_from(&self, name: &str) -> Option<Instant> {
        let key = self.key_of(name)?;
        self.log
            .iter()
            .find(|(_, v)| v["event"] == "first_audio" && v["key"] == key.as_str())
            .map(|(t, _)| *t)
    }

    /// Audio frames received from `name` so far (latest `links` event).
    pub fn audio_received_from(&self, name: &str) -> Option<u64> {
        self.links
            .iter()
            .find(|l| l["name"] == name)
            .and_then(|l| l["audio_received"].as_u64())
    }

    /// When the node joined (its `joined` event).
    pub fn joined_at(&self) -> Option<Instant> {
        self.log
            .iter()
            .find(|(_, v)| v["event"] == "joined")
            .map(|(t, _)| *t)
    }

    /// Leaves the room and waits for the process to end, so its recording is complete.
    pub fn leave(&mut self) {
        leave_all(&mut [self]);
    }

    /// Waits up to 10 s for the process to end, then kills it.
    fn wait_exit(&mut self) {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.exited = true;
                self.drain();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{}: did not exit within 10 s of leave; killed", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exited = true;
    }

    /// What happened, for failure messages: the logged events and the end of stderr.
    pub fn report(&self) -> String {
        let events: Vec<String> = self
            .log
            .iter()
            .map(|(t, v)| {
                format!(
                    "  +{:.2}s {v}",
                    t.duration_since(self.started).as_secs_f64()
                )
            })
            .collect();
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        format!(
            "{} events:\n{}\n{} links: {}\n{} stderr (last lines):\n  {}",
            self.name,
            events.join("\n"),
            self.name,
            Value::Array(self.links.clone()),
            self.name,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
        )
    }
}

/// All of `nodes` leave at one moment (so each recording ends with everyone still
/// talking), and their processes end.
pub fn leave_all(nodes: &mut [&mut Salon]) {
    for n in nodes.iter_mut().filter(|n| !n.exited) {
        let _ = writeln!(n.stdin, "leave").and_then(|()| n.stdin.flush());
    }
    for n in nodes.iter_mut().filter(|n| !n.exited) {
        n.wait_exit();
    }
}

impl Drop for Salon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
