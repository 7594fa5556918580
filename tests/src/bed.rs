//! The NAT test bed: a small internet made of Linux network namespaces.
//!
//! ```text
//!  public host h5  203.0.113.5 ──┐
//!                                ├─ "internet": bridge br0 in its own namespace, 203.0.113.254
//!  home router r1  wan 203.0.113.1 ┘
//!        lan 10.1.0.1 ── member m1 10.1.0.2   (a veth, or a TAP pair through the shuttle)
//! ```
//!
//! Every namespace, link and process belongs to one [`Bed`] and goes when it is dropped,
//! also when a test panics. Names carry the process id and a counter, so beds in one test
//! binary (and in concurrent test runs) never meet: each has its own bridge, and the same
//! addresses are reused in every bed. Nothing routes off the bridge: the "internet"
//! namespace forwards nothing, so no test packet can leave the machine.
//!
//! Routers are iptables NATs ([`Nat`]). Each drops unsolicited packets addressed to itself
//! in the filter table: a dropped packet's conntrack entry is never confirmed, so it cannot
//! take the tuple that a later outgoing packet of the member needs (otherwise MASQUERADE
//! would pick another port and spoil the mapping a hole punch relies on).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Names of everything a bed creates start with this, then the process id.
const PREFIX: &str = "stb";
/// The "internet" namespace's address on its bridge; every public node's default route.
const GATEWAY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 254);
/// The impairment shuttle, written into each bed's directory when a link needs it.
const SHUTTLE: &str = include_str!("shuttle.py");

/// How a home router translates and filters (RFC 4787 terms in brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Nat {
    /// Full cone: one mapping per inside port, and anyone may send to it (endpoint-
    /// independent mapping and filtering). MASQUERADE keeps the port; a DNAT rule sends
    /// every inbound UDP packet to the member, on the same port.
    Full,
    /// Address-restricted cone: one mapping per inside port; inbound only from an IP the
    /// member has sent to, from any port (address-dependent filtering). An iptables
    /// `recent` list of contacted addresses gates the DNAT rule.
    Restricted,
    /// Port-restricted cone: one mapping per inside port; inbound only from an exact
    /// address and port the member has sent to. Plain MASQUERADE.
    Port,
    /// Symmetric: a new random outside port for each destination address and port
    /// (endpoint-dependent mapping), port-restricted filtering. MASQUERADE --random-fully.
    Symmetric,
}

impl Nat {
    /// All four, from the most open to the least.
    pub const ALL: [Nat; 4] = [Nat::Full, Nat::Restricted, Nat::Port, Nat::Symmetric];

    /// Short name for tables and test names.
    pub fn label(self) -> &'static str {
        match self {
            Nat::Full => "full",
            Nat::Restricted => "restricted",
            Nat::Port => "port",
            Nat::Symmetric => "symmetric",
        }
    }
}

/// What one direction of an impaired link does to each frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Mean one-way delay in milliseconds.
    pub delay_ms: f64,
    /// Each frame's delay varies uniformly by up to this many milliseconds either way.
    pub jitter_ms: f64,
    /// Share of frames dropped, in percent.
    pub loss_percent: f64,
    /// Share of frames sent at once, overtaking the delayed ones, in percent.
    pub reorder_percent: f64,
}

/// The impairment of a member's link to its router, per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shape {
    /// Member to router.
    pub up: Impairment,
    /// Router to member.
    pub down: Impairment,
}

impl Shape {
    /// The same impairment both ways.
    pub fn both(i: Impairment) -> Shape {
        Shape { up: i, down: i }
    }

    fn line(&self) -> String {
        let d = |i: &Impairment| {
            format!(
                "{} {} {} {}",
                i.delay_ms, i.jitter_ms, i.loss_percent, i.reorder_percent
            )
        };
        format!("{} {}\n", d(&self.up), d(&self.down))
    }
}

/// A node on the public side: one address on the bridge.
#[derive(Clone, Debug)]
pub struct Public {
    /// Its namespace.
    pub ns: String,
    /// Its address.
    pub addr: Ipv4Addr,
}

/// A home router: `wan` on the bridge, LAN 10.N.0.0/24 behind it, NAT between.
#[derive(Clone, Debug)]
pub struct Router {
    /// Its namespace.
    pub ns: String,
    /// How it translates.
    pub nat: Nat,
    /// Its public address.
    pub wan: Ipv4Addr,
    /// N in 10.N.0.0/24.
    net: u8,
}

impl Router {
    /// The router's own LAN address, the member's gateway.
    pub fn lan(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net, 0, 1)
    }

    /// The address a member behind this router gets.
    pub fn member_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net, 0, 2)
    }
}

/// A member's namespace behind a home router.
#[derive(Clone, Debug)]
pub struct Home {
    /// The member's namespace.
    pub ns: String,
    /// The router it sits behind now.
    pub router: Router,
}

impl Home {
    /// The member's address on its LAN now.
    pub fn addr(&self) -> Ipv4Addr {
        self.router.member_addr()
    }
}

struct Shuttle {
    child: Child,
    stdin: ChildStdin,
}

/// One isolated internet. See the module documentation.
pub struct Bed {
    tag: String,
    prefix: String,
    dir: PathBuf,
    /// Every namespace created, in order; deleted in reverse.
    namespaces: Vec<String>,
    /// Impairment shuttles by member namespace.
    shuttles: HashMap<String, Shuttle>,
    next_octet: u8,
}

impl Bed {
    /// A new empty internet (only the bridge), or `None` when this machine cannot make
    /// one: not root, or a tool missing. Then the test is skipped with a message, unless
    /// `SALON_CI=1`, where it fails instead.
    pub fn new(tag: &str) -> Option<Bed> {
        if !available(tag) {
            return None;
        }
        static SWEPT: OnceLock<()> = OnceLock::new();
        SWEPT.get_or_init(sweep_stale);
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "{PREFIX}{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("salon-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("bed directory");
        let mut bed = Bed {
            tag: tag.to_owned(),
            prefix,
            dir,
            namespaces: Vec::new(),
            shuttles: HashMap::new(),
            next_octet: 1,
        };
        let net = bed.namespace("net");
        ip(&["-n", &net, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &net,
            "addr",
            "add",
            &format!("{GATEWAY}/24"),
            "dev",
            "br0",
        ]);
        ip(&["-n", &net, "link", "set", "dev", "br0", "up"]);
        Some(bed)
    }

    /// A directory of this bed's own, removed with it (data dirs, recordings, logs) unless
    /// `SALON_KEEP_BED` is set.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The test's name, as given to [`Bed::new`].
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// A node with a public address on the bridge.
    pub fn public(&mut self) -> Public {
        let o = self.octet();
        let ns = self.namespace(&format!("h{o}"));
        let addr = Ipv4Addr::new(203, 0, 113, o);
        self.plug(&ns, &format!("p-h{o}"), "eth0", addr);
        Public { ns, addr }
    }

    /// A home router of the given kind, with nothing behind it yet.
    pub fn router(&mut self, nat: Nat) -> Router {
        let o = self.octet();
        let ns = self.namespace(&format!("r{o}"));
        let wan = Ipv4Addr::new(203, 0, 113, o);
        self.plug(&ns, &format!("p-r{o}"), "wan", wan);
        sh(&ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let router = Router {
            ns,
            nat,
            wan,
            net: o,
        };
        configure_nat(&router);
        router
    }

    /// A member behind a new router of the given kind; `shape` puts the impairment shuttle
    /// on the member's link to it.
    pub fn home(&mut self, nat: Nat, shape: Option<Shape>) -> Home {
        let router = self.router(nat);
        let ns = self.namespace(&format!("m{}", router.net));
        self.attach(&ns, &router, shape);
        Home { ns, router }
    }

    /// Moves a member behind another router (which must have no member yet), as a laptop
    /// moves from one network to another: its old link goes, a new one comes up with a new
    /// address and default route; sockets bound to 0.0.0.0 stay open. The new link has
    /// `shape`, as in [`Bed::home`].
    pub fn move_home(&mut self, home: &mut Home, to: &Router, shape: Option<Shape>) {
        if let Some(mut s) = self.shuttles.remove(&home.ns) {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        // A veth goes with both ends; a TAP's router end went with the shuttle.
        let _ = Command::new("ip")
            .args(["-n", &home.ns, "link", "del", "dev", "eth0"])
            .output();
        let _ = Command::new("ip")
            .args(["-n", &home.router.ns, "link", "del", "dev", "lan"])
            .output();
        self.attach(&home.ns, to, shape);
        home.router = to.clone();
    }

    /// Changes the impairment of a member's shaped link while it runs.
    pub fn reshape(&mut self, home: &Home, shape: Shape) {
        let s = self
            .shuttles
            .get_mut(&home.ns)
            .expect("reshape: this member's link has no shuttle (give it a shape)");
        s.stdin
            .write_all(shape.line().as_bytes())
            .expect("reshape: write to the shuttle");
    }

    /// `program` to run inside namespace `ns`.
    pub fn exec(&self, ns: &str, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    /// The router's UDP conntrack table, for failure messages.
    pub fn conntrack(&self, router: &Router) -> String {
        Command::new("ip")
            .args(["netns", "exec", &router.ns, "conntrack", "-L", "-p", "udp"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_else(|e| format!("conntrack: {e}"))
    }

    fn octet(&mut self) -> u8 {
        let o = self.next_octet;
        assert!(o < 250, "{}: too many nodes in one bed", self.tag);
        self.next_octet += 1;
        o
    }

    fn namespace(&mut self, role: &str) -> String {
        let ns = format!("{}-{role}", self.prefix);
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "dev", "lo", "up"]);
        ns
    }

    /// Plugs namespace `ns` into the bridge: a veth `port` on the bridge, `dev` in `ns`
    /// with `addr`, and a default route to the "internet" namespace (which forwards
    /// nothing: the route only gives programs an outward address to see).
    fn plug(&self, ns: &str, port: &str, dev: &str, addr: Ipv4Addr) {
        let net = &self.namespaces[0];
        ip(&[
            "-n", net, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", ns,
        ]);
        ip(&["-n", net, "link", "set", "dev", port, "master", "br0", "up"]);
        ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
        ip(&["-n", ns, "link", "set", "dev", dev, "up"]);
        ip(&[
            "-n",
            ns,
            "route",
            "add",
            "default",
            "via",
            &GATEWAY.to_string(),
        ]);
    }

    /// Links member namespace `ns` to `router`'s LAN: `eth0` in the member, `lan` in the
    /// router; through the shuttle when `shape` is given.
    fn attach(&mut self, ns: &str, router: &Router, shape: Option<Shape>) {
        if let Some(shape) = shape {
            let script = self.dir.join("shuttle.py");
            if !script.exists() {
                std::fs::write(&script, SHUTTLE).expect("write the shuttle script");
            }
            let log = std::fs::File::create(self.dir.join(format!("shuttle-{ns}.log")))
                .expect("shuttle log");
            let seed = u64::from(router.net) + u64::from(std::process::id()) * 1000;
            let mut child = self
                .exec(&router.ns, "python3")
                .arg(&script)
                .args(["lan", "meth", &seed.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(log)
                .spawn()
                .expect("start the impairment shuttle (python3)");
            let mut stdin = child.stdin.take().expect("shuttle stdin");
            let mut ready = String::new();
            BufReader::new(child.stdout.take().expect("shuttle stdout"))
                .read_line(&mut ready)
                .expect("shuttle output");
            assert_eq!(
                ready.trim(),
                "ready",
                "{}: the impairment shuttle did not start; see {}",
                self.tag,
                self.dir.display()
            );
            stdin
                .write_all(shape.line().as_bytes())
                .expect("shape the link");
            self.shuttles
                .insert(ns.to_owned(), Shuttle { child, stdin });
            ip(&["-n", &router.ns, "link", "set", "dev", "meth", "netns", ns]);
            ip(&["-n", ns, "link", "set", "dev", "meth", "name", "eth0"]);
        } else {
            ip(&[
                "-n", &router.ns, "link", "add", "lan", "type", "veth", "peer", "name", "eth0",
                "netns", ns,
            ]);
        }
        let gw = router.lan().to_string();
        ip(&[
            "-n",
            &router.ns,
            "addr",
            "add",
            &format!("{gw}/24"),
            "dev",
            "lan",
        ]);
        ip(&["-n", &router.ns, "link", "set", "dev", "lan", "up"]);
        let addr = format!("{}/24", router.member_addr());
        ip(&["-n", ns, "addr", "add", &addr, "dev", "eth0"]);
        ip(&["-n", ns, "link", "set", "dev", "eth0", "up"]);
        ip(&["-n", ns, "route", "add", "default", "via", &gw]);
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for (_, mut s) in self.shuttles.drain() {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            remove_namespace(ns);
        }
        if std::env::var_os("SALON_KEEP_BED").is_some() {
            eprintln!("bed {}: kept {}", self.tag, self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Ends what still runs in `ns` (processes a test started there and left behind), then
/// deletes it; its links go with it.
fn remove_namespace(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).output();
        }
    }
    match Command::new("ip").args(["netns", "del", ns]).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => eprintln!(
            "bed: could not delete namespace {ns}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => eprintln!("bed: could not delete namespace {ns}: {e}"),
    }
}

/// Deletes namespaces that beds of test processes no longer running left behind (a test
/// binary killed with SIGKILL cannot run its destructors).
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('x').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("bed: removing {name}, left behind by a test process that is gone");
            remove_namespace(name);
        }
    }
}

/// Whether this machine can make beds. When it cannot (not root, a tool missing), says why
/// and returns false so the test `tag` can skip, or fails the test if `SALON_CI=1`.
pub fn available(tag: &str) -> bool {
    let Err(why) = usable() else {
        return true;
    };
    assert!(
        std::env::var("SALON_CI").as_deref() != Ok("1"),
        "{tag}: the NAT test bed cannot run: it needs {why} (SALON_CI=1, so this fails instead of skipping)"
    );
    eprintln!("skipping {tag}: the NAT test bed needs {why}");
    false
}

/// Why this machine cannot make a bed, if it cannot.
fn usable() -> Result<(), String> {
    static USABLE: OnceLock<Result<(), String>> = OnceLock::new();
    USABLE
        .get_or_init(|| {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            // "Uid: real effective saved fs"
            let euid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned));
            if euid.as_deref() != Some("0") {
                return Err("root (network namespaces and iptables)".into());
            }
            for (tool, arg, package) in [
                ("ip", "-V", "iproute2"),
                ("iptables-restore", "--version", "iptables"),
                ("conntrack", "--version", "conntrack"),
                ("python3", "--version", "python3"),
            ] {
                if Command::new(tool).arg(arg).output().is_err() {
                    return Err(format!(
                        "`{tool}` (apt-get install {package}; scripts/deps.sh lists it)"
                    ));
                }
            }
            Ok(())
        })
        .clone()
}

/// Runs `ip ARGS`, panicking with its error output if it fails.
fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// Runs `ARGS` inside namespace `ns`.
fn sh(ns: &str, args: &[&str]) {
    run(Command::new("ip").args(["netns", "exec", ns]).args(args));
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("bed: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "bed: {cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Loads `router`'s NAT rules in one `iptables-restore`.
fn configure_nat(router: &Router) {
    let member = router.member_addr();
    let mut filter = vec![
        "-A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT".to_owned(),
        "-A INPUT -i wan -j DROP".to_owned(),
        "-A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED,DNAT -j ACCEPT".to_owned(),
        "-A FORWARD -i wan -j DROP".to_owned(),
    ];
    let mut nat = Vec::new();
    let masquerade = "-A POSTROUTING -o wan -j MASQUERADE".to_owned();
    match router.nat {
        Nat::Full => {
            nat.push(format!(
                "-A PREROUTING -i wan -p udp -j DNAT --to-destination {member}"
            ));
            nat.push(masquerade);
        }
        Nat::Restricted => {
            // Remember every address the member sends to; let in what comes from one.
            // The list forgets after the stream timeout of conntrack (120 s), as a
            // mapping would expire.
            filter.insert(
                0,
                "-A FORWARD -o wan -p udp -m recent --name contacted --rdest --set".to_owned(),
            );
            nat.push(format!(
                "-A PREROUTING -i wan -p udp -m recent --name contacted --rsource --rcheck \
                 --seconds 120 -j DNAT --to-destination {member}"
            ));
            nat.push(masquerade);
        }
        Nat::Port => nat.push(masquerade),
        Nat::Symmetric => nat.push(masquerade + " --random-fully"),
    }
    let rules = format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{}\nCOMMIT\n\
         *nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         :POSTROUTING ACCEPT [0:0]\n{}\nCOMMIT\n",
        filter.join("\n"),
        nat.join("\n")
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", &router.ns, "iptables-restore"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iptables-restore");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(rules.as_bytes())
        .expect("write rules");
    let out = child.wait_with_output().expect("iptables-restore");
    assert!(
        out.status.success(),
        "bed: iptables-restore in {} failed: {}\n{rules}",
        router.ns,
        String::from_utf8_lossy(&out.stderr)
    );
}
