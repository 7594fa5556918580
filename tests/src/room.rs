//! Rooms of three across the bed: a host and two members, Ada and Bo, all on stage, each
//! sending a tone of its own; who hears whom, on which path, how soon. The NAT matrix and
//! the tests of hosts behind routers run [`Cell`]s; tests that watch the wire start their
//! own rooms with [`gather`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::bed::{Bed, Nat, Protocols, Router, Shape};
use crate::{Recording, RoomSlot, Salon};

/// The host's display name and tone.
pub const HOST: (&str, f64) = ("Host", 440.0);
/// Ada's.
pub const ADA: (&str, f64) = ("Ada", 660.0);
/// Bo's.
pub const BO: (&str, f64) = ("Bo", 880.0);
/// From a member's join (or promotion) to hearing every speaker; the targets are
/// 2 s direct and 4 s relayed, this only bounds a hang (a loaded 2-core machine).
pub const HEAR_LIMIT: Duration = Duration::from_secs(20);
/// How long everyone listens once everyone hears everyone.
const LISTEN: Duration = Duration::from_secs(4);
/// Seconds of a speaker's tone a recording must hold to count as heard.
const HEARD: f64 = 2.0;
/// The longest a member who moves may go unheard. Its first datagram from the new address
/// moves the link after a path check (a round trip), so this is generous.
const ROAM_GAP: f64 = 5.0;

/// Progress lines, so a hang shows where it is: `step!(tag, "format", args…)`.
#[macro_export]
macro_rules! step {
    ($tag:expr, $($t:tt)*) => { eprintln!("[{}] {}", $tag, format!($($t)*)) };
}

/// Where a room's host sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// On the public side, with an address of its own.
    Public,
    /// Behind a home router of this kind that grants it a port mapping (miniupnpd) over
    /// these protocols.
    Mapped(Nat, Protocols),
}

/// One room to run: where the host sits, which NATs Ada and Bo sit behind.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Its name in tables and logs.
    pub name: String,
    /// Where the host sits.
    pub host: Site,
    /// Ada's NAT.
    pub a: Nat,
    /// Bo's NAT.
    pub b: Nat,
    /// An impairment of Ada's link to its router.
    pub shape: Option<Shape>,
    /// Moves Ada behind a third router of this kind once everyone hears everyone (the
    /// host must be public).
    pub roam: Option<Nat>,
    /// How long everyone listens once everyone hears everyone (before a move, and after).
    pub listen: Duration,
}

impl Cell {
    /// A public host, Ada behind `a` and Bo behind `b`, nothing else.
    pub fn new(name: impl Into<String>, a: Nat, b: Nat) -> Cell {
        Cell {
            name: name.into(),
            host: Site::Public,
            a,
            b,
            shape: None,
            roam: None,
            listen: LISTEN,
        }
    }
}

/// One room of the host and two members, and what came of it.
pub struct Outcome {
    /// The cell's name.
    pub cell: String,
    /// Ada's and Bo's view of their link ("direct", "relayed via Host", "?").
    pub path: [String; 2],
    /// Ada's and Bo's view of their link to the host.
    pub host_path: [String; 2],
    /// Every path Ada's link to Bo had.
    pub history: Vec<String>,
    /// Whether both ends saw the Ada–Bo link direct at the end.
    pub direct: bool,
    /// Bo's join to Bo hearing the host and Ada.
    pub join_to_hear: Option<Duration>,
    /// Bo's promotion to the host and Ada hearing Bo.
    pub stage_to_heard: Option<Duration>,
    /// Bo's join to both ends of the Ada–Bo link last turning direct, when they end so.
    pub join_to_direct: Option<Duration>,
    /// The address the host's router mapped for it, when it sits behind one.
    pub mapped: Option<SocketAddr>,
    /// From the host's start to its router's mapping.
    pub mapped_after: Option<Duration>,
    /// What fell short ("Ada hears Bo 0.0 s", …).
    pub problems: Vec<String>,
    /// Each recording's seconds of each tone, and notes.
    pub heard: Vec<String>,
    /// The host's and Bo's last reports of their links to Ada (rtt, audio received and
    /// lost, path).
    pub links_to_ada: [serde_json::Value; 2],
    /// What failed outside hearing (a panic in the room's set-up).
    pub error: Option<String>,
}

impl Outcome {
    fn failed(cell: &str, error: String) -> Outcome {
        Outcome {
            cell: cell.to_owned(),
            path: ["-".into(), "-".into()],
            host_path: ["-".into(), "-".into()],
            history: Vec::new(),
            direct: false,
            join_to_hear: None,
            stage_to_heard: None,
            join_to_direct: None,
            mapped: None,
            mapped_after: None,
            problems: Vec::new(),
            heard: Vec::new(),
            links_to_ada: Default::default(),
            error: Some(error),
        }
    }

    /// Whether the room came up and everyone heard everyone, with nothing amiss.
    pub fn hears_everyone(&self) -> bool {
        self.error.is_none() && self.problems.is_empty()
    }
}

/// Takes in every node's events until `done` holds or `limit` passes.
pub fn pump_all(
    nodes: &mut [&mut Salon],
    limit: Duration,
    done: impl Fn(&[&mut Salon]) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    loop {
        for n in nodes.iter_mut() {
            n.drain();
        }
        if done(nodes) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether every node has had first audio from every other speaker.
pub fn all_hear_all(nodes: &[&mut Salon]) -> bool {
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    nodes.iter().all(|n| {
        names
            .iter()
            .filter(|o| **o != n.name)
            .all(|o| n.first_audio_from(o).is_some())
    })
}

/// `node`'s link to `peer` in words: "direct", "relayed via Host", or "?".
pub fn describe(node: &Salon, peer: &str) -> String {
    match node.path_to(peer) {
        None => "?".into(),
        Some(p) => match &p.via {
            Some(via) => format!(
                "{} via {}",
                p.path,
                node.name_of(via)
                    .unwrap_or_else(|| via[..8.min(via.len())].to_owned())
            ),
            None => p.path.clone(),
        },
    }
}

/// A room that has gathered: the host, Ada and Bo, all three on stage.
pub struct Trio {
    /// The host.
    pub host: Salon,
    /// The first member.
    pub ada: Salon,
    /// The second member.
    pub bo: Salon,
    /// The invite the members joined with.
    pub invite: String,
    /// The address the host's router mapped, when the members joined with an invite
    /// printed after the mapping.
    pub mapped: Option<SocketAddr>,
    /// From the host's start to its `port_mapping` event, when it waited for one.
    pub mapped_after: Option<Duration>,
    /// When the host promoted Bo.
    pub promoted: Instant,
    /// Whether everyone heard everyone within [`HEAR_LIMIT`] of Bo's promotion.
    pub everyone: bool,
}

impl Trio {
    /// All three, for [`pump_all`] and [`crate::salon::leave_all`].
    pub fn all(&mut self) -> [&mut Salon; 3] {
        [&mut self.host, &mut self.ada, &mut self.bo]
    }
}

/// Starts a room titled `title`: `cast[0]` hosts from namespace `ns[0]`, `cast[1]` joins
/// from `ns[1]` and is promoted, then `cast[2]` from `ns[2]`; each sends the tone of its
/// cast entry. With `mapped`, the members join with the invite the host prints once its
/// router has mapped its port. Returns once everyone hears everyone, or after
/// [`HEAR_LIMIT`].
pub fn gather(bed: &Bed, ns: [&str; 3], cast: [(&str, f64); 3], title: &str, mapped: bool) -> Trio {
    let root = bed.dir().to_path_buf();
    let tag = bed.tag().to_owned();
    let t0 = Instant::now();
    let tone = |i: usize| format!("tone:{}", cast[i].1);
    let mut host = Salon::host(bed, ns[0], &root, cast[0].0, title, &tone(0));
    let (mapped, invite) = if mapped {
        let (at, invite) = host.mapped_invite(HEAR_LIMIT);
        (Some(at), invite)
    } else {
        (None, host.invite())
    };
    let mapped_after = host
        .log
        .iter()
        .find(|(_, v)| v["event"] == "port_mapping" && v["external"].is_string())
        .map(|(t, _)| t.duration_since(host.started));
    let mut ada = Salon::join(bed, ns[1], &root, cast[1].0, &invite, &tone(1));
    ada.wait("joined", HEAR_LIMIT, |v| v["event"] == "joined");
    host.say(&format!("promote {}", cast[1].0));
    ada.accept_stage_invite(HEAR_LIMIT);
    ada.wait_until("on stage", HEAR_LIMIT, |s| s.on_stage(cast[1].0));
    step!(
        tag,
        "{} in and on stage after {:.1?}",
        cast[1].0,
        t0.elapsed()
    );
    let mut bo = Salon::join(bed, ns[2], &root, cast[2].0, &invite, &tone(2));
    bo.wait("joined", HEAR_LIMIT, |v| v["event"] == "joined");
    host.say(&format!("promote {}", cast[2].0));
    let promoted = Instant::now();
    // Bo says yes at once; the time to hear everyone counts from the host's action.
    bo.accept_stage_invite(HEAR_LIMIT);
    let everyone = pump_all(
        &mut [&mut host, &mut ada, &mut bo],
        HEAR_LIMIT,
        all_hear_all,
    );
    step!(
        tag,
        "{} after {:.1?}",
        if everyone {
            "everyone hears everyone"
        } else {
            "NOT everyone hears everyone"
        },
        t0.elapsed()
    );
    Trio {
        host,
        ada,
        bo,
        invite,
        mapped,
        mapped_after,
        promoted,
        everyone,
    }
}

/// The port the node says it listens on (its `listening` event).
pub fn listening_port(node: &mut Salon) -> u16 {
    node.wait("listening", HEAR_LIMIT, |v| v["event"] == "listening")
        .1["addr"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("listening names an address")
}

/// Checks, while the host is in the room, that its router maps exactly the address the
/// host announced to the host's port, and that the invite names it first.
fn check_mapping(bed: &Bed, router: &Router, trio: &mut Trio, problems: &mut Vec<String>) {
    let Some(mapped) = trio.mapped else {
        return;
    };
    let port = listening_port(&mut trio.host);
    let inside = std::net::SocketAddrV4::new(router.member_addr(), port);
    let maps = bed.port_mappings(router);
    if mapped.ip() != std::net::IpAddr::V4(router.wan) || maps != [(mapped.port(), inside)] {
        problems.push(format!(
            "the host announced {mapped}; {} maps {maps:?} (wan {}, host at {inside})",
            router.ns, router.wan
        ));
    }
    let first = salon_proto::Invite::parse(&trio.invite)
        .ok()
        .and_then(|i| i.candidates.first().map(|c| c.addr));
    if first != Some(mapped) {
        problems.push(format!(
            "the invite after the mapping names {first:?} first, not {mapped}"
        ));
    }
}

/// Runs one cell: see [`Cell`]. All three on stage, each sending its tone; then each
/// recording must hold the two others for seconds.
pub fn room(cell: &Cell) -> Outcome {
    let _slot = RoomSlot::take();
    let name = cell.name.as_str();
    let t0 = Instant::now();
    let mut bed = Bed::new(name).expect("bed availability was checked");
    let (host_ns, public, host_router) = match cell.host {
        Site::Public => {
            let p = bed.public();
            (p.ns.clone(), Some(p), None)
        }
        Site::Mapped(nat, protocols) => {
            let h = bed.mapping_home(nat, protocols);
            (h.ns, None, Some(h.router))
        }
    };
    let mut home_a = bed.home(cell.a, cell.shape);
    let home_b = bed.home(cell.b, None);
    let spare = cell.roam.map(|n| bed.router(n));
    let mut trio = gather(
        &bed,
        [&host_ns, &home_a.ns, &home_b.ns],
        [HOST, ADA, BO],
        "NAT bed",
        host_router.is_some(),
    );
    let mut problems = Vec::new();
    if let Some(r) = &host_router {
        check_mapping(&bed, r, &mut trio, &mut problems);
    }
    let joined = trio.bo.joined_at().unwrap();
    let join_to_hear = [HOST.0, ADA.0]
        .iter()
        .map(|n| trio.bo.first_audio_from(n))
        .collect::<Option<Vec<_>>>()
        .and_then(|ts| ts.into_iter().max())
        .map(|t| t.duration_since(joined));
    let stage_to_heard = [
        trio.host.first_audio_from(BO.0),
        trio.ada.first_audio_from(BO.0),
    ]
    .into_iter()
    .collect::<Option<Vec<_>>>()
    .and_then(|ts| ts.into_iter().max())
    .map(|t| t.duration_since(trio.promoted));
    let mut notes = Vec::new();
    if trio.everyone {
        pump_all(&mut trio.all(), cell.listen, |_| false);
        if let Some(to) = &spare {
            let public = public.as_ref().expect("a roaming cell has a public host");
            let before = [
                trio.host.audio_received_from(ADA.0),
                trio.bo.audio_received_from(ADA.0),
            ];
            bed.move_home(&mut home_a, to, None);
            let moved = Instant::now();
            step!(
                name,
                "Ada moved behind a {} NAT ({})",
                to.nat.label(),
                to.wan
            );
            // Back when both have had two more seconds (100 frames) of Ada's audio.
            let more = |n: &Salon, b: Option<u64>| {
                n.audio_received_from(ADA.0).unwrap_or(0) >= b.unwrap_or(0) + 100
            };
            let back = pump_all(&mut trio.all(), HEAR_LIMIT, |ns| {
                more(ns[0], before[0]) && more(ns[2], before[1])
            });
            notes.push(format!(
                "2 s of Ada's audio after the move {} {:.1?}",
                if back { "within" } else { "NOT within" },
                moved.elapsed()
            ));
            pump_all(&mut trio.all(), cell.listen, |_| false);
            let via = format!("src={} dst={}", to.member_addr(), public.addr);
            if !bed.conntrack(to).contains(&via) {
                problems.push(format!(
                    "Ada's traffic to the host does not cross {}",
                    to.ns
                ));
            }
        }
    }
    let Trio {
        mut host,
        mut ada,
        mut bo,
        mapped,
        mapped_after,
        ..
    } = trio;
    let path = [describe(&ada, BO.0), describe(&bo, ADA.0)];
    let host_path = [describe(&ada, HOST.0), describe(&bo, HOST.0)];
    let history = ada
        .path_history(BO.0)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let direct = path.iter().all(|p| p == "direct");
    let turned =
        |n: &Salon, peer: &str| n.path_to(peer).filter(|p| p.path == "direct").map(|p| p.at);
    let join_to_direct = turned(&ada, BO.0)
        .zip(turned(&bo, ADA.0))
        .map(|(a, b)| a.max(b).saturating_duration_since(joined));
    let links_to_ada = [&host, &bo].map(|n| {
        n.links
            .iter()
            .find(|l| l["name"] == ADA.0)
            .cloned()
            .unwrap_or_default()
    });
    crate::salon::leave_all(&mut [&mut host, &mut ada, &mut bo]);
    if let Some(r) = &host_router {
        // The host released its mapping on the way out: miniupnpd forwards nothing now.
        let left = bed.port_mappings(r);
        if !left.is_empty() {
            problems.push(format!("{} still maps {left:?} after the host left", r.ns));
        }
    }
    // Each hears the two others for seconds; after a move, Ada again at the end.
    let mut heard = Vec::new();
    for n in [&host, &ada, &bo] {
        let r = Recording::read(&n.out);
        let mut parts = Vec::new();
        for (who, hz) in [HOST, ADA, BO] {
            if who == n.name {
                continue;
            }
            let secs = r.tone_seconds(hz);
            parts.push(format!("{who} {secs:.1}"));
            if secs < HEARD {
                problems.push(format!("{} hears {who} {secs:.1} s", n.name));
            }
            if spare.is_some() && who == ADA.0 {
                // Heard again after the move: up to the end, as the third speaker is,
                // and never problems for long.
                let third = if n.name == HOST.0 { BO } else { HOST };
                let end = r.last_heard(hz).unwrap_or(0.0);
                let third_end = r.last_heard(third.1).unwrap_or(0.0);
                let gap = r.longest_gap(hz);
                parts.push(format!(
                    "(Ada last at {end:.1} s, {} at {third_end:.1} s; longest gap {gap:.1} s)",
                    third.0
                ));
                if end + 1.0 < third_end {
                    problems.push(format!(
                        "{} stops hearing Ada at {end:.1} s, {} at {third_end:.1} s",
                        n.name, third.0
                    ));
                }
                if gap > ROAM_GAP {
                    problems.push(format!("{} did not hear Ada for {gap:.1} s", n.name));
                }
            }
        }
        heard.push(format!(
            "{}: {} of {:.1} s",
            n.name,
            parts.join(", "),
            r.seconds()
        ));
    }
    if !problems.is_empty() {
        let mut routers = vec![&home_a.router, &home_b.router];
        routers.extend(host_router.as_ref());
        let tables: Vec<String> = routers
            .iter()
            .map(|r| format!("conntrack {}:\n{}", r.ns, bed.conntrack(r)))
            .collect();
        eprintln!(
            "[{name}] problems: {problems:?}\n{}\n{}\n{}\n{}",
            host.report(),
            ada.report(),
            bo.report(),
            tables.join("")
        );
    }
    step!(
        name,
        "done after {:.1?}; {}",
        t0.elapsed(),
        heard.join("; ")
    );
    heard.extend(notes);
    Outcome {
        cell: name.to_owned(),
        path,
        host_path,
        history,
        direct,
        join_to_hear,
        stage_to_heard,
        join_to_direct,
        mapped,
        mapped_after,
        problems,
        heard,
        links_to_ada,
        error: None,
    }
}

/// Runs [`room`] on a thread of its own and turns a panic into a failed outcome.
pub fn run_room(cell: Cell) -> Outcome {
    let name = cell.name.clone();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || room(&cell))
        .unwrap()
        .join()
        .unwrap_or_else(|e| Outcome::failed(&name, panic_text(&*e)))
}

/// Runs every cell, a few at a time ([`RoomSlot`]), each on a thread of its own.
pub fn run_rooms(cells: Vec<Cell>) -> Vec<Outcome> {
    std::thread::scope(|s| {
        let handles: Vec<_> = cells
            .into_iter()
            .map(|c| s.spawn(move || run_room(c)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The text of a panic's payload.
pub fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panicked".into())
}

/// The cells of `outcomes` where not everyone heard everyone (or the room failed).
pub fn deaf(outcomes: &[Outcome]) -> Vec<&str> {
    outcomes
        .iter()
        .filter(|o| !o.hears_everyone())
        .map(|o| o.cell.as_str())
        .collect()
}

/// `1.23 s`, or `never`.
pub fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

/// Prints the outcomes as a table under `title`, then each cell's failures and what each
/// recording held.
pub fn table(title: &str, outcomes: &[Outcome]) {
    eprintln!("\n{title}");
    let w = outcomes
        .iter()
        .map(|o| o.cell.len())
        .max()
        .unwrap_or(0)
        .max(15);
    eprintln!(
        "{:<w$} {:<6} {:<36} {:<22} {:<10} {:<10} {:<10}",
        "cell (Ada x Bo)",
        "hears",
        "Ada-Bo path (Ada / Bo)",
        "history (Ada's view)",
        "join->all",
        "stage->all",
        "join->direct"
    );
    for o in outcomes {
        eprintln!(
            "{:<w$} {:<6} {:<36} {:<22} {:<10} {:<10} {:<10}",
            o.cell,
            if o.hears_everyone() { "all" } else { "NO" },
            format!("{} / {}", o.path[0], o.path[1]),
            if o.history.is_empty() {
                "-".into()
            } else {
                o.history.join(">")
            },
            secs(o.join_to_hear),
            secs(o.stage_to_heard),
            if o.direct {
                secs(o.join_to_direct)
            } else {
                "-".into()
            },
        );
    }
    eprintln!(
        "join->all: from Bo's join to Bo hearing the host and Ada; stage->all: from Bo's \
         promotion to the host and Ada hearing Bo; join->direct: from Bo's join to both ends \
         of the Ada-Bo link direct for good"
    );
    for o in outcomes {
        if let Some(e) = &o.error {
            eprintln!("  {}: failed: {e}", o.cell);
        }
        if !o.problems.is_empty() {
            eprintln!("  {}: {}", o.cell, o.problems.join("; "));
        }
        if let Some(m) = o.mapped {
            eprintln!(
                "  {}: host mapped at {m} {} after it started; Ada-Host {}, Bo-Host {}",
                o.cell,
                secs(o.mapped_after),
                o.host_path[0],
                o.host_path[1]
            );
        }
        eprintln!("  {}: heard {}", o.cell, o.heard.join("; "));
    }
    eprintln!();
}
