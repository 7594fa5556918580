//! The NAT test bed: a small internet made of Linux network namespaces.
//!
//! ```text
//!  public host h5  203.0.113.5 ──┐
//!                                ├─ "internet": bridge br0 in its own namespace, 203.0.113.254
//!  home router r1  wan 203.0.113.1 ┘
//!        lan 10.1.0.1 ── member m1 10.1.0.2   (a veth, or a TAP pair through the shuttle)
//!  home router r2  wan 198.20.0.2  (grants port mappings: miniupnpd on its LAN side)
//!        lan 10.2.0.1 ── member m2 10.2.0.2
//! ```
//!
//! The bridge carries two /24 blocks, each on-link for every node: 203.0.113.0/24 (RFC 5737
//! TEST-NET-3) for most, and 198.20.0.0/24 for the WAN of a router that grants port
//! mappings ([`Bed::mapping_home`]): miniupnpd refuses to map anything while its WAN address
//! is in a reserved block, and TEST-NET-3 is one. 198.20.0.0/24 is the first block past
//! RFC 2544's benchmarking 198.18.0.0/15; like the rest, it never leaves the bridge.
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
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Names of everything a bed creates start with this, then the process id.
const PREFIX: &str = "stb";
/// The "internet" namespace's address on its bridge; every public node's default route.
const GATEWAY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 254);
/// Public addresses are 203.0.113.N ...
const INTERNET: [u8; 3] = [203, 0, 113];
/// ... but a router granting port mappings has 198.20.0.N (see the module documentation).
const MAPPING_NET: [u8; 3] = [198, 20, 0];
/// The impairment shuttle, written into each bed's directory when a link needs it.
const SHUTTLE: &str = include_str!("shuttle.py");
/// The nftables table (family inet) a mapping router's miniupnpd fills.
const MAPPER_TABLE: &str = "miniupnpd";

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

/// Which port mapping protocols a mapping router ([`Bed::mapping_home`]) speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocols {
    /// UPnP-IGD, NAT-PMP and PCP, as most home routers with UPnP on.
    All,
    /// NAT-PMP and PCP only (UPnP off), as Apple's routers and some OpenWrt set-ups.
    NatPmpAndPcp,
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

/// An interface's counters ([`Bed::counters`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
}

impl std::ops::Sub for Counters {
    type Output = Counters;
    fn sub(self, o: Counters) -> Counters {
        Counters {
            rx_bytes: self.rx_bytes - o.rx_bytes,
            rx_packets: self.rx_packets - o.rx_packets,
            tx_bytes: self.tx_bytes - o.tx_bytes,
            tx_packets: self.tx_packets - o.tx_packets,
        }
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
    /// miniupnpd by router namespace.
    mappers: HashMap<String, Child>,
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
            mappers: HashMap::new(),
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
        ip(&[
            "-n",
            &net,
            "route",
            "add",
            &block(MAPPING_NET),
            "dev",
            "br0",
        ]);
        Some(bed)
    }

    /// A directory of this bed's own, removed with it (data dirs, recordings, logs) unless
    /// `SALON_KEEP_BED` is set.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The "internet" namespace, whose bridge `br0` carries every datagram between the
    /// public nodes and the routers: where an observer in the network core would listen.
    pub fn internet(&self) -> String {
        format!("{}-net", self.prefix)
    }

    /// The test's name, as given to [`Bed::new`].
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// A node with a public address on the bridge.
    pub fn public(&mut self) -> Public {
        let o = self.octet();
        let ns = self.namespace(&format!("h{o}"));
        let [a, b, c] = INTERNET;
        let addr = Ipv4Addr::new(a, b, c, o);
        self.plug(&ns, &format!("p-h{o}"), "eth0", addr);
        Public { ns, addr }
    }

    /// A home router of the given kind, with nothing behind it yet.
    pub fn router(&mut self, nat: Nat) -> Router {
        self.router_in(nat, INTERNET)
    }

    /// A home router whose WAN address is in `net`.x.
    fn router_in(&mut self, nat: Nat, [a, b, c]: [u8; 3]) -> Router {
        let o = self.octet();
        let ns = self.namespace(&format!("r{o}"));
        let wan = Ipv4Addr::new(a, b, c, o);
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

    /// A member behind a new router of the given kind that also grants port mappings to
    /// its LAN, as a home router with UPnP switched on does: miniupnpd answers the
    /// `protocols` there and forwards each mapped port (an nftables DNAT rule in a table
    /// of its own, before the router's NAT). Needs `miniupnpd` (the nftables build) and
    /// `nft`: check [`mapping_available`] first.
    pub fn mapping_home(&mut self, nat: Nat, protocols: Protocols) -> Home {
        let router = self.router_in(nat, MAPPING_NET);
        let ns = self.namespace(&format!("m{}", router.net));
        self.attach(&ns, &router, None);
        self.start_miniupnpd(&router, protocols);
        Home { ns, router }
    }

    /// The UDP port mappings `router`'s miniupnpd has in force now: (outside port, inside
    /// address), read from its DNAT rules.
    pub fn port_mappings(&self, router: &Router) -> Vec<(u16, SocketAddrV4)> {
        assert!(
            self.mappers.contains_key(&router.ns),
            "{}: {} grants no port mappings (make it with Bed::mapping_home)",
            self.tag,
            router.ns
        );
        let out = Command::new("ip")
            .args(["netns", "exec", &router.ns, "nft", "list", "chain"])
            .args(["inet", MAPPER_TABLE, "prerouting_miniupnpd"])
            .output()
            .expect("nft list chain");
        assert!(
            out.status.success(),
            "{}: nft list chain in {}: {}",
            self.tag,
            router.ns,
            String::from_utf8_lossy(&out.stderr)
        );
        // `iif "wan" @nh,72,8 0x11 th dport 33194 dnat ip to 10.2.0.2:59479`
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let at = |key: &str| w.iter().position(|x| *x == key).and_then(|i| w.get(i + 1));
                Some((at("dport")?.parse().ok()?, at("to")?.parse().ok()?))
            })
            .collect()
    }

    /// Starts miniupnpd in `router`, in the foreground, until the bed goes.
    fn start_miniupnpd(&mut self, router: &Router, protocols: Protocols) {
        // The chains miniupnpd fills (its nftables build expects them to exist): a
        // forward chain that accepts what it maps (the router's own filter lets DNATed
        // flows through too) and a DNAT chain ahead of the router's NAT.
        let table = format!(
            "table inet {MAPPER_TABLE} {{\n\
             chain forward {{ type filter hook forward priority 0; policy accept; jump miniupnpd; }}\n\
             chain miniupnpd {{ }}\n\
             chain prerouting {{ type nat hook prerouting priority -101; policy accept; jump prerouting_miniupnpd; }}\n\
             chain postrouting {{ type nat hook postrouting priority 99; policy accept; jump postrouting_miniupnpd; }}\n\
             chain prerouting_miniupnpd {{ }}\n\
             chain postrouting_miniupnpd {{ }}\n\
             }}\n"
        );
        feed(
            Command::new("ip").args(["netns", "exec", &router.ns, "nft", "-f", "-"]),
            &table,
        );
        let lan = Ipv4Addr::new(10, router.net, 0, 0);
        let conf = format!(
            "ext_ifname=wan\nlistening_ip=lan\nport=0\nenable_natpmp=yes\nenable_upnp={}\n\
             secure_mode=yes\nsystem_uptime=yes\nupnp_table_name={MAPPER_TABLE}\n\
             upnp_nat_table_name={MAPPER_TABLE}\nuuid=5a1f0000-0000-4000-8000-{:012x}\n\
             allow 1024-65535 {lan}/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n",
            if protocols == Protocols::All {
                "yes"
            } else {
                "no"
            },
            router.net
        );
        let conf_path = self.dir.join(format!("miniupnpd-{}.conf", router.ns));
        std::fs::write(&conf_path, conf).expect("write miniupnpd.conf");
        let log_path = self.dir.join(format!("miniupnpd-{}.log", router.ns));
        let log = std::fs::File::create(&log_path).expect("miniupnpd log");
        let child = self
            .exec(&router.ns, "miniupnpd")
            .arg("-d")
            .arg("-f")
            .arg(&conf_path)
            .arg("-P")
            .arg(self.dir.join(format!("miniupnpd-{}.pid", router.ns)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("miniupnpd log"))
            .stderr(log)
            .spawn()
            .expect("start miniupnpd");
        self.mappers.insert(router.ns.clone(), child);
        // It says so once it serves all three protocols.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if text.contains("Listening for NAT-PMP/PCP traffic") {
                return;
            }
            let gone = self
                .mappers
                .get_mut(&router.ns)
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            assert!(
                !gone && Instant::now() < end,
                "{}: miniupnpd in {} did not start:\n{text}",
                self.tag,
                router.ns
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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

    /// What interface `dev` of namespace `ns` has received and sent so far (bytes count
    /// whole Ethernet frames).
    pub fn counters(&self, ns: &str, dev: &str) -> Counters {
        let out = Command::new("ip")
            .args(["-j", "-s", "-n", ns, "link", "show", "dev", dev])
            .output()
            .expect("ip -s link");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: ip -s link show {dev} in {ns}: {e}", self.tag));
        let stats = &v[0]["stats64"];
        let n = |dir: &str, what: &str| stats[dir][what].as_u64().expect("a counter");
        Counters {
            rx_bytes: n("rx", "bytes"),
            rx_packets: n("rx", "packets"),
            tx_bytes: n("tx", "bytes"),
            tx_packets: n("tx", "packets"),
        }
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
    /// with `addr`, both address blocks on-link, and a default route to the "internet"
    /// namespace (which forwards nothing: the route only gives programs an outward
    /// address to see).
    fn plug(&self, ns: &str, port: &str, dev: &str, addr: Ipv4Addr) {
        let net = &self.namespaces[0];
        ip(&[
            "-n", net, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", ns,
        ]);
        ip(&["-n", net, "link", "set", "dev", port, "master", "br0", "up"]);
        ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
        ip(&["-n", ns, "link", "set", "dev", dev, "up"]);
        for b in [INTERNET, MAPPING_NET] {
            if addr.octets()[..3] != b {
                ip(&["-n", ns, "route", "add", &block(b), "dev", dev]);
            }
        }
        let gw = GATEWAY.to_string();
        ip(&[
            "-n", ns, "route", "add", "default", "via", &gw, "dev", dev, "onlink",
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
        for (_, mut m) in self.mappers.drain() {
            let _ = m.kill();
            let _ = m.wait();
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
    verdict(tag, "run", usable())
}

/// Whether this machine can also capture what crosses the bed's interfaces
/// ([`crate::capture::Capture`]): a bed and `tcpdump`. Skips (or fails, with
/// `SALON_CI=1`) as [`available`] does.
pub fn capture_available(tag: &str) -> bool {
    let tcpdump = Command::new("tcpdump")
        .arg("--version")
        .output()
        .map(drop)
        .map_err(|_| "`tcpdump` (apt-get install tcpdump; scripts/deps.sh lists it)".into());
    available(tag) && verdict(tag, "capture", tcpdump)
}

/// Whether this machine can also make routers that grant port mappings
/// ([`Bed::mapping_home`]): a bed, `miniupnpd` built for nftables, and `nft`. Skips (or
/// fails, with `SALON_CI=1`) as [`available`] does.
pub fn mapping_available(tag: &str) -> bool {
    available(tag) && verdict(tag, "grant port mappings", mapping_usable())
}

/// True when `need` is met; otherwise says what the bed cannot `what` without and
/// returns false, or panics if `SALON_CI=1`.
fn verdict(tag: &str, what: &str, need: Result<(), String>) -> bool {
    let Err(why) = need else {
        return true;
    };
    assert!(
        std::env::var("SALON_CI").as_deref() != Ok("1"),
        "{tag}: the NAT test bed cannot {what}: it needs {why} (SALON_CI=1, so this fails instead of skipping)"
    );
    eprintln!("skipping {tag}: the NAT test bed cannot {what}: it needs {why}");
    false
}

fn mapping_usable() -> Result<(), String> {
    let version = Command::new("miniupnpd")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .map_err(
            |_| "`miniupnpd` (apt-get install miniupnpd-nftables; scripts/deps.sh lists it)",
        )?;
    if !version.contains("nftables") {
        return Err(format!(
            "the nftables build of miniupnpd (apt-get install miniupnpd-nftables), not: {}",
            version.trim()
        ));
    }
    Command::new("nft")
        .arg("--version")
        .output()
        .map_err(|_| "`nft` (apt-get install nftables; scripts/deps.sh lists it)")?;
    Ok(())
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

/// `a.b.c.0/24`.
fn block([a, b, c]: [u8; 3]) -> String {
    format!("{a}.{b}.{c}.0/24")
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

/// Runs `cmd` with `input` on its standard input, panicking with its error output if it
/// fails.
fn feed(cmd: &mut Command, input: &str) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("bed: cannot run {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "bed: {cmd:?} failed: {}\n{input}",
        String::from_utf8_lossy(&out.stderr)
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
    feed(
        Command::new("ip").args(["netns", "exec", &router.ns, "iptables-restore"]),
        &rules,
    );
}
