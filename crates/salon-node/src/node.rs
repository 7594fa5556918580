//! The engine: a tokio task that owns the UDP socket, feeds datagrams and timer deadlines
//! into the protocol state machine, moves audio frames between it and the audio engine,
//! and records history on the history thread.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use salon_audio::backend::device::{Direction, list_devices};
use salon_audio::{
    AudioEngine, AudioPacket, EngineConfig, EngineControl, EngineEvent, InputSpec, OutputSpec,
    TalkMode,
};
use salon_proto::path::MAIN_SOCKET;
use salon_proto::{
    Candidate, CandidateKind, Endpoint, Event, Invite, InviteChange, Path, PublicKey, RoomView,
};
use salon_store::{Store, Timestamp};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::api::{
    Command, DeviceList, InviteReason, LinkInfo, NodeEvent, PathKind, PeerLevel, Reply,
    SafetyNumberInfo, Settings, hex, room_info,
};
use crate::error::NodeError;
use crate::history::{self, History, Record, StoreJob};
use crate::loss_feedback::LossFeedback;
use crate::precise_timer::PreciseTimer;
use crate::profile::Profile;

/// How a node starts.
#[derive(Debug)]
pub struct NodeConfig {
    /// Local UDP address. Port 0 picks a free one.
    pub bind: SocketAddr,
    /// Microphone source.
    pub input: InputSpec,
    /// Output.
    pub output: OutputSpec,
    /// Audio settings.
    pub engine: EngineConfig,
    /// Protocol timers and limits.
    pub proto: salon_proto::Config,
    /// How often speaking levels and link figures are reported.
    pub report_every: Duration,
    /// Ask the home router (UPnP-IGD, NAT-PMP or PCP) to forward our port, so people
    /// outside can reach us. Never on a loopback socket (nothing to map).
    pub port_mapping: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            input: InputSpec::Device(None),
            output: OutputSpec::Device(None),
            engine: EngineConfig::default(),
            proto: salon_proto::Config::default(),
            report_every: Duration::from_millis(500),
            port_mapping: true,
        }
    }
}

type Answer = oneshot::Sender<Result<Reply, NodeError>>;
type Request = (Command, Answer);

/// A running node. Commands go in through [`Node::command`], events come out of
/// [`Node::next_event`].
pub struct Node {
    commands: mpsc::UnboundedSender<Request>,
    /// Sent (or dropped) to stop the driver; handles may still hold command senders.
    stop: oneshot::Sender<()>,
    events: mpsc::UnboundedReceiver<NodeEvent>,
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    /// Answered (or dropped) once the audio engine has stopped and closed its output, so
    /// a WAV file's header is final.
    audio_stopped: oneshot::Receiver<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Sends commands to a running [`Node`]; see [`Node::handle`].
#[derive(Debug, Clone)]
pub struct NodeHandle {
    commands: mpsc::UnboundedSender<Request>,
}

impl NodeHandle {
    /// Runs one command; fails with [`NodeError::Stopped`] once the node is gone.
    pub async fn command(&self, c: Command) -> Result<Reply, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send((c, tx))
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }
}

impl Node {
    /// Binds the socket, starts audio and history, and spawns the driver task.
    pub async fn start(profile: Profile, mut cfg: NodeConfig) -> Result<Node, NodeError> {
        // Saved settings pick the devices wherever the caller left the choice to the
        // system (a default device), and the microphone processing.
        let settings = profile.store.settings()?;
        // A saved device that is not plugged in now must not keep Salon from starting
        // (settings can only be changed in a running node): the default stands in, the
        // user is told, and the saved choice is kept for when it comes back.
        let mut notices = Vec::new();
        if matches!(cfg.input, InputSpec::Device(None)) {
            let name = settings.input_device.clone();
            if let Err(e) = check_device(Direction::Input, name.as_deref()) {
                notices.push(format!("{e}; using the default microphone"));
            } else {
                cfg.input = InputSpec::Device(name);
            }
        }
        if matches!(cfg.output, OutputSpec::Device(None)) {
            let name = settings.output_device.clone();
            if let Err(e) = check_device(Direction::Output, name.as_deref()) {
                notices.push(format!("{e}; using the default speakers"));
            } else {
                cfg.output = OutputSpec::Device(name);
            }
        }
        // A caller that turned processing off (tests, the command line) keeps it off. The
        // settings keep the user's saved choice, so saving other settings never rewrites it.
        cfg.engine.noise_suppression &= settings.noise_suppression;
        cfg.engine.echo_cancellation &= settings.echo_cancellation;
        // A microphone opens only while it may reach a room (on stage) or the user tests
        // it: until then the engine runs on silence, which clocks frames all the same.
        let (mic, input) = match cfg.input {
            InputSpec::Device(name) => (Some(name), InputSpec::Silence),
            other => (None, other),
        };
        let output_device = match &cfg.output {
            OutputSpec::Device(d) => Some(d.clone()),
            _ => None,
        };
        let std_socket = StdUdpSocket::bind(cfg.bind).map_err(|source| NodeError::Bind {
            addr: cfg.bind,
            source,
        })?;
        std_socket
            .set_nonblocking(true)
            .map_err(|source| NodeError::Bind {
                addr: cfg.bind,
                source,
            })?;
        let socket = UdpSocket::from_std(std_socket).map_err(|source| NodeError::Bind {
            addr: cfg.bind,
            source,
        })?;
        let local_addr = socket.local_addr().map_err(|source| NodeError::Bind {
            addr: cfg.bind,
            source,
        })?;
        // Beside an IPv4 socket on every interface, an IPv6 one (same port when free):
        // peers with global IPv6 addresses reach each other without any NAT in the way.
        let socket6 = if cfg.bind == SocketAddr::from((Ipv4Addr::UNSPECIFIED, cfg.bind.port())) {
            bind_v6(local_addr.port()).or_else(|| bind_v6(0))
        } else {
            None
        };
        let frame_ms = (cfg.engine.codec.frame.samples() / 48) as u32;
        let frame_period =
            std::time::Duration::from_micros(cfg.engine.codec.frame.samples() as u64 * 1000 / 48);
        // Listeners' reports move the encoder's loss hint; without any it stays here.
        let default_loss = cfg.engine.codec.expected_loss_pct;
        let engine = AudioEngine::<PublicKey>::start(cfg.engine, input, cfg.output)?;
        let control = engine.control();
        if settings.push_to_talk_key.is_some() {
            control.set_talk_mode(TalkMode::PushToTalk)?;
        }
        let (event_tx, events) = mpsc::unbounded_channel();
        for message in notices {
            let _ = event_tx.send(NodeEvent::Audio { message });
        }
        let (commands, command_rx) = mpsc::unbounded_channel();
        // The engine hands encoded frames over a std channel; a small thread moves them
        // into the async world so the driver never blocks on it.
        let (frame_tx, frame_rx) = mpsc::unbounded_channel::<AudioPacket>();
        let (engine_event_tx, engine_event_rx) = mpsc::unbounded_channel::<EngineEvent>();
        let me = profile.identity.public_key();
        let history = History::start(profile.store, me, event_tx.clone());
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| NodeError::Io {
            what: "no randomness from the operating system".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let now = Instant::now();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        // The slot of the constant-rate schedule is our codec's frame period, so a stage
        // member's frames and everyone else's timer slots go at one rate.
        let mut proto = cfg.proto;
        proto.slot = frame_period;
        let endpoint = Endpoint::new(proto, profile.identity, seed, now, unix);
        let _ = event_tx.send(NodeEvent::Listening {
            addr: local_addr.to_string(),
        });
        let outside = !local_addr.ip().is_loopback();
        let mapper = (cfg.port_mapping && outside)
            .then(|| PortMapper::start(local_addr.port()))
            .flatten();
        let network_changes = if outside {
            watch_network().await
        } else {
            mpsc::unbounded_channel().1
        };
        let driver = Driver {
            timer: PreciseTimer::new(),
            socket,
            socket6,
            local_addr,
            endpoint,
            engine: control,
            frame_ms,
            history,
            events: event_tx,
            name: profile.name,
            me,
            names: HashMap::new(),
            heard: std::collections::HashSet::new(),
            room_open: false,
            on_stage: false,
            loss: LossFeedback::new(default_loss),
            report_every: cfg.report_every,
            settings,
            talk_key_held: false,
            mic,
            mic_open: false,
            output_device,
            mic_test: false,
            pool: SocketPool::new(SocketAddr::new(local_addr.ip(), 0)),
            mapper,
            mapped: None,
            network_changes,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let audio_stopped = bridge(engine, frame_tx, engine_event_tx, stop.clone());
        let (stop_node, stop_rx) = oneshot::channel();
        let task = tokio::spawn(driver.run(command_rx, stop_rx, frame_rx, engine_event_rx, stop));
        Ok(Node {
            commands,
            stop: stop_node,
            events,
            local_addr,
            task,
            audio_stopped,
        })
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs one command.
    pub async fn command(&self, c: Command) -> Result<Reply, NodeError> {
        self.handle().command(c).await
    }

    /// A cloneable handle for sending commands from several tasks at once, so a slow
    /// command (a passphrase change) never holds up a quick one (the talk key).
    pub fn handle(&self) -> NodeHandle {
        NodeHandle {
            commands: self.commands.clone(),
        }
    }

    /// Takes the event stream out of the node, for a front end that reads events on one
    /// task and sends commands from others. [`Node::next_event`] returns `None` after.
    pub fn take_events(&mut self) -> mpsc::UnboundedReceiver<NodeEvent> {
        let (_, empty) = mpsc::unbounded_channel();
        std::mem::replace(&mut self.events, empty)
    }

    /// The next event; `None` once the node stopped.
    pub async fn next_event(&mut self) -> Option<NodeEvent> {
        self.events.recv().await
    }

    /// Leaves the room if in one (telling the others), waits for the goodbye to be
    /// delivered, and stops, returning once the audio output is closed (a WAV file is
    /// complete, header included, so a process may exit right after).
    pub async fn shutdown(self) {
        let _ = self.command(Command::Leave).await;
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(4), self.task).await;
        // The driver has told the audio thread to stop (even when it timed out above, the
        // task ends with the runtime); wait for the engine to finish its output.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.audio_stopped).await;
    }
}

struct Driver {
    socket: UdpSocket,
    /// The IPv6 socket, when the machine has IPv6 and the node listens everywhere.
    socket6: Option<UdpSocket>,
    local_addr: SocketAddr,
    endpoint: Endpoint,
    /// Wakes the loop for the endpoint's timers (the slot clock's among them).
    timer: PreciseTimer,
    engine: EngineControl<PublicKey>,
    frame_ms: u32,
    history: History,
    events: mpsc::UnboundedSender<NodeEvent>,
    name: String,
    me: PublicKey,
    names: HashMap<PublicKey, String>,
    heard: std::collections::HashSet<PublicKey>,
    room_open: bool,
    on_stage: bool,
    /// Listeners' reception reports, turned into the encoder's expected-loss hint.
    loss: LossFeedback<PublicKey>,
    report_every: Duration,
    /// The settings as applied now.
    settings: Settings,
    /// Whether the push-to-talk key is down (as the front end last said).
    talk_key_held: bool,
    /// The microphone device chosen (`Some(None)`: the default), when the input is a
    /// device and not a file or tone: settings may switch it, and it is open only while
    /// `mic_open`.
    mic: Option<Option<String>>,
    /// Whether the engine records from `mic` now (see `sync_mic`).
    mic_open: bool,
    /// The output device in use, when the output is one (not null or a file).
    output_device: Option<Option<String>>,
    /// Report levels outside a room too.
    mic_test: bool,
    /// Extra sockets for the birthday technique.
    pool: SocketPool,
    /// The router's port mapping, when it offers one.
    mapper: Option<PortMapper>,
    /// Our address on the router's public side, while mapped.
    mapped: Option<SocketAddr>,
    /// A tick per major change of the machine's network (interfaces, addresses, route).
    network_changes: mpsc::UnboundedReceiver<()>,
}

/// Watches the machine's interfaces and default route (netlink on Linux) and ticks on
/// each major change. Without a monitor (no netlink, a sandbox) nothing ever ticks, and
/// peers still notice a move through their path checks, only later.
async fn watch_network() -> mpsc::UnboundedReceiver<()> {
    use n0_watcher::Watcher as _;
    let (tx, rx) = mpsc::unbounded_channel();
    let Ok(monitor) = netwatch::netmon::Monitor::new().await else {
        return rx;
    };
    tokio::spawn(async move {
        let mut state = monitor.interface_state();
        let mut last = state.get();
        while let Ok(now) = state.updated().await {
            if now.is_major_change(&last) && tx.send(()).is_err() {
                break;
            }
            last = now;
        }
        drop(monitor);
    });
    rx
}

/// A port mapping on the home router (UPnP-IGD, NAT-PMP or PCP, whichever it speaks),
/// renewed before its lease runs out, released when we stop. The external address arrives
/// on a channel whenever it changes.
struct PortMapper {
    client: portmapper::Client,
    changes: mpsc::UnboundedReceiver<Option<SocketAddr>>,
}

impl PortMapper {
    /// Starts asking for a mapping of UDP `port`; `None` when the port is 0.
    fn start(port: u16) -> Option<Self> {
        let port = std::num::NonZeroU16::new(port)?;
        let client = portmapper::Client::new(portmapper::Config::default());
        // Probe first, then ask: without a probe the client only tries UPnP (a router
        // that speaks just NAT-PMP or PCP is never asked), and asking before the probe
        // returns lets it replace an in-flight UPnP request whose mapping then nobody
        // releases (a two-hour lease left open on the router).
        let asker = client.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(3), asker.probe()).await;
            asker.update_local_port(port);
        });
        let mut watch = client.watch_external_address();
        let (tx, changes) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                let addr = (*watch.borrow_and_update()).map(SocketAddr::V4);
                if tx.send(addr).is_err() {
                    break;
                }
            }
        });
        Some(Self { client, changes })
    }

    /// Releases the mapping, waiting a little (bounded) for the router to hear it. With
    /// no mapping held (`mapped` false and none arrived since) there is nothing to wait
    /// for, and leaving is not slowed down.
    async fn release(mut self, mapped: bool) {
        self.client.deactivate();
        let mut held = mapped;
        while let Ok(change) = self.changes.try_recv() {
            held = change.is_some();
        }
        if !held {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Some(_)) = self.changes.recv().await {}
        })
        .await;
        // The release request goes out after the address is cleared: let it leave.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Extra UDP sockets the protocol asks for by number ([`salon_proto::Transmit::socket`])
/// when it punches through a symmetric NAT from many ports at once. Each is opened on
/// first use and read by a small task that hands datagrams to the driver; all close when
/// the room does.
struct SocketPool {
    bind: SocketAddr,
    sockets: HashMap<u16, Arc<UdpSocket>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    tx: mpsc::UnboundedSender<(u16, SocketAddr, Vec<u8>)>,
    rx: mpsc::UnboundedReceiver<(u16, SocketAddr, Vec<u8>)>,
}

impl SocketPool {
    fn new(bind: SocketAddr) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            bind,
            sockets: HashMap::new(),
            readers: Vec::new(),
            tx,
            rx,
        }
    }

    /// Socket number `id`, opened now if need be; `None` if the OS refuses (out of file
    /// descriptors or ports): the datagram is lost, which the protocol tolerates.
    fn get(&mut self, id: u16) -> Option<Arc<UdpSocket>> {
        if let Some(s) = self.sockets.get(&id) {
            return Some(s.clone());
        }
        let std_socket = StdUdpSocket::bind(self.bind).ok()?;
        std_socket.set_nonblocking(true).ok()?;
        let socket = Arc::new(UdpSocket::from_std(std_socket).ok()?);
        let reader = socket.clone();
        let tx = self.tx.clone();
        self.readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = reader.recv_from(&mut buf).await {
                let Some(d) = buf.get(..n) else {
                    continue;
                };
                if tx.send((id, from, d.to_vec())).is_err() {
                    break;
                }
            }
        }));
        self.sockets.insert(id, socket.clone());
        Some(socket)
    }

    /// Closes every extra socket.
    fn close(&mut self) {
        for r in self.readers.drain(..) {
            r.abort();
        }
        self.sockets.clear();
    }
}

/// Owns the audio engine on a plain thread: moves encoded frames and device events into
/// the async world (the engine hands them over std channels), and stops the engine when
/// the driver ends. The returned receiver resolves once the engine has stopped.
fn bridge(
    engine: AudioEngine<PublicKey>,
    frames: mpsc::UnboundedSender<AudioPacket>,
    events: mpsc::UnboundedSender<EngineEvent>,
    stop: Arc<AtomicBool>,
) -> oneshot::Receiver<()> {
    let (stopped_tx, stopped) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("salon-audio-bridge".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // A frame arrives every frame period; the timeout only bounds how late we
                // notice `stop` when no frames flow (an audience member).
                match engine.packets().recv_timeout(Duration::from_millis(50)) {
                    Ok(p) => {
                        if frames.send(p).is_err() {
                            break;
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
                while let Ok(e) = engine.events().try_recv() {
                    let _ = events.send(e);
                }
            }
            engine.stop();
            let _ = stopped_tx.send(());
        });
    // Without the thread the node still works, just silently: nothing to send. (The
    // engine, dropped with the closure, stopped already; so did the sender.)
    drop(spawned);
    stopped
}

/// The API's view of a protocol path: its kind, and the relaying member if any.
fn path_kind(p: Path) -> (PathKind, Option<PublicKey>) {
    match p {
        Path::Direct(_) => (PathKind::Direct, None),
        Path::Relayed { via } => (PathKind::Relayed, Some(via)),
    }
}

/// What to tell the user when no connection to `name` comes up.
fn unreachable_message(name: &str, tried: &[SocketAddr], relay_asked: bool) -> String {
    let list: Vec<String> = tried.iter().map(ToString::to_string).collect();
    let relay = if relay_asked {
        "and no other member could relay between you"
    } else {
        "and there is no other member to relay between you"
    };
    format!(
        "cannot reach {name}: nothing came back from {} {relay}. Their network (or yours) \
         blocks UDP from outside; you still hear everyone else. Trying again.",
        if list.is_empty() {
            "their addresses".to_owned()
        } else {
            list.join(", ")
        }
    )
}

/// [`candidates`] as invite candidates.
fn lan_candidates(local: SocketAddr, port6: Option<u16>) -> Vec<Candidate> {
    candidates(local, port6)
        .into_iter()
        .map(|addr| Candidate {
            kind: CandidateKind::Lan,
            addr,
        })
        .collect()
}

/// Addresses to put in an invite for a socket bound to `local` (and an IPv6 socket on
/// `port6`): the LAN address towards the outside, the global IPv6 address, loopback.
fn candidates(local: SocketAddr, port6: Option<u16>) -> Vec<SocketAddr> {
    if !local.ip().is_unspecified() {
        return vec![local];
    }
    let mut out = Vec::new();
    // The address the OS would use towards the outside; `connect` on UDP sends nothing.
    if let Some(ip) = outward_ip(SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 9))) {
        out.push(SocketAddr::new(ip, local.port()));
    }
    // Only a routable IPv6 address is worth telling: link-local ones need a scope.
    if let Some(port) = port6
        && let Some(ip) = outward_ip(SocketAddr::from((
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            9,
        )))
        && let IpAddr::V6(v6) = ip
        && !v6.is_loopback()
        && !v6.is_unicast_link_local()
    {
        out.push(SocketAddr::new(ip, port));
    }
    out.push(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        local.port(),
    ));
    out
}

/// The local address the OS picks to reach `towards` (a documentation address: UDP
/// `connect` only consults the routing table and sends nothing).
fn outward_ip(towards: SocketAddr) -> Option<IpAddr> {
    let any = match towards {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let probe = StdUdpSocket::bind(any).ok()?;
    probe.connect(towards).ok()?;
    let ip = probe.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// An IPv6-only UDP socket on `port` (0: any), or `None` without IPv6.
fn bind_v6(port: u16) -> Option<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).ok()?;
    s.set_only_v6(true).ok()?;
    s.set_nonblocking(true).ok()?;
    s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())
        .ok()?;
    UdpSocket::from_std(s.into()).ok()
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Request>,
        mut stop_node: oneshot::Receiver<()>,
        mut frames: mpsc::UnboundedReceiver<AudioPacket>,
        mut engine_events: mpsc::UnboundedReceiver<EngineEvent>,
        stop: Arc<AtomicBool>,
    ) {
        let mut buf = vec![0u8; 2048];
        let mut buf6 = vec![0u8; 2048];
        let mut report = tokio::time::interval(self.report_every);
        let mut commands_open = true;
        loop {
            let deadline = self.endpoint.poll_timeout();
            let timer = &self.timer;
            let sleep = async move {
                match deadline {
                    Some(t) => timer.sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r
                        && let Some(d) = buf.get(..n) {
                            self.endpoint.handle_datagram(Instant::now(), from, d);
                        }
                }
                r = async {
                    match &self.socket6 {
                        Some(s) => s.recv_from(&mut buf6).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Ok((n, from)) = r
                        && let Some(d) = buf6.get(..n) {
                            self.endpoint.handle_datagram(Instant::now(), from, d);
                        }
                }
                c = commands.recv(), if commands_open => match c {
                    Some((cmd, reply)) => self.dispatch(cmd, reply),
                    None => commands_open = self.wind_down(),
                },
                // The node was shut down or dropped: handles left behind do not keep the
                // driver alive, and what they queue from now on is answered "stopped".
                _ = &mut stop_node, if commands_open => commands_open = self.wind_down(),
                // Every frame paces the slot clock, whatever our role; only a stage
                // member's are sent (the endpoint checks).
                Some(f) = frames.recv() => {
                    if self.room_open {
                        let _ = self.endpoint.send_audio(Instant::now(), &f.payload);
                    }
                }
                Some(e) = engine_events.recv() => {
                    tracing::info!("audio: {}", engine_event_text(&e));
                    let _ = self.events.send(NodeEvent::Audio { message: engine_event_text(&e) });
                }
                Some(mapped) = async {
                    match self.mapper.as_mut() {
                        Some(m) => m.changes.recv().await,
                        None => std::future::pending().await,
                    }
                } => self.on_port_mapping(mapped),
                Some(()) = self.network_changes.recv() => self.on_network_change(),
                Some((socket, from, d)) = self.pool.rx.recv() => {
                    self.endpoint.handle_datagram_on(Instant::now(), socket, from, &d);
                }
                _ = sleep => self.endpoint.handle_timeout(Instant::now()),
                _ = report.tick() => {
                    let changed = self.loss.refresh(Instant::now());
                    self.apply_loss(changed);
                    self.report();
                }
            }
            self.flush().await;
            if !commands_open && self.endpoint.is_idle() {
                break;
            }
        }
        if let Some(m) = self.mapper.take() {
            m.release(self.mapped.is_some()).await;
        }
        self.history.finish();
        stop.store(true, Ordering::Relaxed);
    }

    /// The router mapped our port (or the mapping went away): the room learns our new
    /// addresses, and a host's invite carries the mapped address first.
    fn on_port_mapping(&mut self, mapped: Option<SocketAddr>) {
        if self.mapped == mapped {
            return;
        }
        tracing::info!(mapped = mapped.is_some(), "router port mapping changed");
        self.mapped = mapped;
        let _ = self.events.send(NodeEvent::PortMapping {
            external: mapped.map(|a| a.to_string()),
        });
        let own: Vec<SocketAddr> = self.own_candidates().iter().map(|c| c.addr).collect();
        if self.endpoint.set_candidates(Instant::now(), own).is_ok()
            && let Some(invite) = self.invite()
        {
            let _ = self.events.send(NodeEvent::Hosting {
                invite: invite.encode(),
            });
        }
    }

    /// The machine moved to another network: tell the room our addresses, ask the
    /// (possibly new) router for a mapping, and check every path now.
    fn on_network_change(&mut self) {
        tracing::info!("network changed: checking every path");
        let now = Instant::now();
        if let Some(m) = &self.mapper {
            m.client.procure_mapping();
        }
        let own: Vec<SocketAddr> = self.own_candidates().iter().map(|c| c.addr).collect();
        let _ = self.endpoint.set_candidates(now, own);
        self.endpoint.network_changed(now);
    }

    /// Our addresses for invites and the roster: the mapped one first, then the LAN ones.
    fn own_candidates(&self) -> Vec<Candidate> {
        self.mapped
            .map(|addr| Candidate {
                kind: CandidateKind::Reflexive,
                addr,
            })
            .into_iter()
            .chain(lan_candidates(
                self.local_addr,
                self.socket6
                    .as_ref()
                    .and_then(|s| s.local_addr().ok())
                    .map(|a| a.port()),
            ))
            .collect()
    }

    /// No more commands: leave the room (telling the others); the loop ends once the
    /// endpoint is idle. Returns the new "commands open" flag (false).
    fn wind_down(&mut self) -> bool {
        if !self.endpoint.is_idle() {
            let _ = self.endpoint.leave(Instant::now());
        }
        false
    }

    /// Sends queued datagrams and turns protocol events into node events.
    async fn flush(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            // A send error (no route, buffer full) is a lost datagram, which the protocol
            // already tolerates.
            if t.socket == MAIN_SOCKET {
                // The main "socket" is a pair: IPv6 destinations leave from the IPv6 one.
                let socket = match (&self.socket6, t.destination) {
                    (Some(s6), SocketAddr::V6(_)) => s6,
                    _ => &self.socket,
                };
                let _ = socket.send_to(&t.contents, t.destination).await;
            } else if let Some(s) = self.pool.get(t.socket) {
                let _ = s.send_to(&t.contents, t.destination).await;
            }
        }
        while let Some(ev) = self.endpoint.poll_event() {
            self.on_event(ev);
        }
        // Role and room changes arrive as events: the microphone follows them.
        self.sync_mic();
    }

    fn on_event(&mut self, ev: Event) {
        let me = self.me;
        let out = match ev {
            Event::Audio { from, seq, frame } => {
                let _ = self.engine.push_packet(
                    from,
                    AudioPacket {
                        seq,
                        payload: frame,
                    },
                );
                if !self.heard.insert(from) {
                    return;
                }
                NodeEvent::FirstAudio { key: hex(&from) }
            }
            Event::Joined(v) => {
                self.room_changed(&v, true);
                NodeEvent::Joined {
                    room: room_info(&v, &me),
                }
            }
            Event::RoomChanged(v) => {
                self.room_changed(&v, false);
                NodeEvent::Room {
                    room: room_info(&v, &me),
                }
            }
            Event::JoinFailed(f) => NodeEvent::JoinFailed {
                message: f.to_string(),
            },
            Event::RoleChanged(r) => {
                self.on_stage = r.on_stage();
                NodeEvent::RoleChanged { role: r }
            }
            Event::MutedByModerator => {
                let _ = self.engine.set_muted(true);
                NodeEvent::MutedByModerator
            }
            // Only a question: `on_stage` (which lets our audio reach the room) moves on
            // the role change that follows a "yes", never on the invitation itself.
            Event::StageInvited { by } => NodeEvent::StageInvited {
                key: hex(&by),
                name: self.name_of(&by),
            },
            Event::StageInviteLapsed { by } => NodeEvent::StageInviteLapsed {
                key: hex(&by),
                name: self.name_of(&by),
            },
            Event::StageInviteUnanswered { member, by } => NodeEvent::StageInviteUnanswered {
                key: hex(&member),
                name: self.name_of(&member),
                by: hex(&by),
            },
            Event::StageInviteDeclined { member, by } => NodeEvent::StageInviteDeclined {
                key: hex(&member),
                name: self.name_of(&member),
                by: hex(&by),
            },
            Event::Chat {
                from, name, text, ..
            } => {
                self.history.record(Record::Chat {
                    from,
                    name: name.clone(),
                    text: text.clone(),
                });
                NodeEvent::Chat {
                    from: hex(&from),
                    name,
                    text,
                }
            }
            Event::ReceptionReport {
                from,
                loss_permille,
            } => {
                let changed = self.loss.record(from, loss_permille, Instant::now());
                self.apply_loss(changed);
                return;
            }
            Event::LinkUp(k) => NodeEvent::LinkUp { key: hex(&k) },
            Event::LinkPath { peer, path } => {
                let (kind, via) = path_kind(path);
                NodeEvent::LinkPath {
                    key: hex(&peer),
                    name: self.name_of(&peer),
                    path: kind,
                    via: via.map(|v| hex(&v)),
                    via_name: via.map(|v| self.name_of(&v)),
                }
            }
            Event::Unreachable {
                peer,
                tried,
                relay_asked,
            } => {
                let name = self.name_of(&peer);
                NodeEvent::Unreachable {
                    key: hex(&peer),
                    message: unreachable_message(&name, &tried, relay_asked),
                    name,
                }
            }
            Event::LinkDown(k) => {
                let changed = self.loss.forget(&k, Instant::now());
                self.apply_loss(changed);
                let _ = self.engine.remove_peer(k);
                NodeEvent::LinkDown { key: hex(&k) }
            }
            Event::HostChanged { host, invite } => {
                let invite = invite.map(|i| i.encode());
                NodeEvent::HostChanged {
                    host: hex(&host),
                    invite,
                }
            }
            Event::InviteChanged { invite, reason } => NodeEvent::InviteChanged {
                invite: invite.encode(),
                reason: match reason {
                    InviteChange::Removal => InviteReason::Removal,
                    InviteChange::Revoked => InviteReason::Revoked,
                },
            },
            Event::Left(reason) => {
                self.pool.close();
                self.room_open = false;
                self.on_stage = false;
                let changed = self.loss.clear();
                self.apply_loss(changed);
                self.history.record(Record::RoomClosed);
                NodeEvent::Left { reason }
            }
        };
        let _ = self.events.send(out);
    }

    fn room_changed(&mut self, v: &RoomView, opened: bool) {
        self.room_open = true;
        if opened {
            let hosted = v.host == self.me;
            let invite = hosted.then(|| self.invite()).flatten().map(|i| i.encode());
            self.history.record(Record::RoomOpened {
                room_id: v.room_id.0,
                hosted,
                title: v.title.clone(),
                invite,
            });
        }
        self.on_stage = v
            .members
            .iter()
            .any(|m| m.key == self.me && m.role.on_stage());
        let shown_muted = v.members.iter().any(|m| m.key == self.me && m.muted);
        self.keep_push_to_talk_muted(shown_muted);
        let gone: Vec<PublicKey> = self
            .names
            .keys()
            .filter(|k| !v.members.iter().any(|m| m.key == **k))
            .copied()
            .collect();
        for k in gone {
            let changed = self.loss.forget(&k, Instant::now());
            self.apply_loss(changed);
            self.names.remove(&k);
            // Someone who rejoins is announced as audible again.
            self.heard.remove(&k);
            let _ = self.engine.remove_peer(k);
        }
        for m in &v.members {
            self.names.insert(m.key, m.name.clone());
            if m.key != self.me && !m.role.on_stage() {
                let _ = self.engine.remove_peer(m.key);
            }
        }
        self.history.record(Record::Roster(
            v.members
                .iter()
                .map(|m| (m.key, m.name.clone(), m.role))
                .collect(),
        ));
    }

    /// Hands a changed expected-loss hint to the encoder (unchanged values are `None`, so
    /// the engine is not told the same thing every report).
    fn apply_loss(&self, changed: Option<u8>) {
        if let Some(pct) = changed {
            // The engine only fails once it has stopped, when the hint no longer matters.
            let _ = self.engine.set_expected_loss(pct);
        }
    }

    fn invite(&self) -> Option<Invite> {
        self.endpoint.invite(self.own_candidates())
    }

    fn report(&mut self) {
        if !self.room_open && !self.mic_test {
            return;
        }
        let levels = self.engine.levels();
        let peers = levels
            .peers
            .iter()
            .map(|(k, l)| PeerLevel {
                key: hex(k),
                name: self.names.get(k).cloned().unwrap_or_default(),
                rms_dbfs: l.rms_dbfs,
                speaking: l.speaking,
            })
            .collect();
        let _ = self.events.send(NodeEvent::Levels {
            input_dbfs: levels.input.rms_dbfs,
            transmitting: levels.transmitting && self.on_stage,
            peers,
        });
        if !self.room_open {
            return;
        }
        let frame_ms = self.frame_ms;
        let links = self
            .names
            .iter()
            .filter(|(k, _)| **k != self.me)
            .filter_map(|(k, name)| {
                let s = self.endpoint.link_stats(k)?;
                let jb = self
                    .engine
                    .peer_stats(*k)
                    .ok()
                    .flatten()
                    .map(|j| j.target_frames as u32 * frame_ms);
                Some(LinkInfo {
                    key: hex(k),
                    name: name.clone(),
                    rtt_ms: s.rtt.map(|d| d.as_secs_f64() * 1000.0),
                    audio_received: s.audio_received,
                    audio_lost: s.audio_lost,
                    jitter_buffer_ms: jb,
                    reported_loss_permille: self.loss.reported(k),
                    up: s.up,
                    path: s.path.map(|p| path_kind(p).0),
                    via: s.path.and_then(|p| path_kind(p).1).map(|v| hex(&v)),
                })
            })
            .collect();
        let _ = self.events.send(NodeEvent::Links { links });
    }

    /// A member's display name, or a short key when we do not know it.
    fn name_of(&self, key: &PublicKey) -> String {
        self.names
            .get(key)
            .cloned()
            .unwrap_or_else(|| hex(key).chars().take(8).collect())
    }

    /// Runs a command: store work goes to the history thread (which answers), the rest
    /// is answered here.
    fn dispatch(&mut self, cmd: Command, reply: Answer) {
        match cmd {
            Command::HistoryRooms { before, limit } => self.on_store(reply, move |s, _| {
                Ok(Reply::HistoryRooms {
                    rooms: history::rooms_page(s, before, limit)?,
                })
            }),
            Command::HistoryChat {
                room,
                before,
                limit,
            } => self.on_store(reply, move |s, me| {
                Ok(Reply::HistoryChat {
                    messages: history::chat_page(s, me, room, before, limit)?,
                })
            }),
            Command::Contacts => self.on_store(reply, |s, me| {
                Ok(Reply::Contacts {
                    contacts: history::contacts(s, me)?,
                })
            }),
            // Someone in the room, or a contact met before (the Home screen's list): the
            // number needs only the two keys.
            Command::SafetyNumber { key } => {
                let in_room = self.names.get(&key).cloned();
                self.on_store(reply, move |s, me| {
                    let contact = s.contact_by_key(&key)?;
                    let name = match (in_room, &contact) {
                        (Some(n), _) => n,
                        (None, Some(c)) => c.name.clone(),
                        (None, None) => return Err(NodeError::NoSuchMember(hex(&key))),
                    };
                    Ok(Reply::SafetyNumber(SafetyNumberInfo {
                        key: hex(&key),
                        name,
                        safety_number: salon_proto::identity::safety_number(me, &key).digits(),
                        verified: contact.is_some_and(|c| c.verified),
                    }))
                })
            }
            Command::VerifyContact { key, verified } => self.on_store(reply, move |s, _| {
                let c = s
                    .contact_by_key(&key)?
                    .ok_or_else(|| NodeError::NoSuchMember(hex(&key)))?;
                s.set_contact_verified(c.id, verified, Timestamp::now())?;
                Ok(Reply::Ok)
            }),
            Command::GetSettings => {
                let _ = reply.send(Ok(Reply::Settings(self.settings.clone())));
            }
            Command::SetSettings(new) => match self.apply_settings(&new) {
                Ok(()) => self.on_store(reply, move |s, _| {
                    s.set_settings(&new)?;
                    Ok(Reply::Settings(new))
                }),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::ChangePassphrase { old, new } => {
                // The cheap check first: no Argon2 run for a passphrase that cannot do.
                if new.chars().count() < crate::profile::MIN_PASSPHRASE_CHARS {
                    let _ = reply.send(Err(NodeError::WeakPassphrase));
                    return;
                }
                self.on_store(reply, move |s, _| {
                    s.check_passphrase(&old)?;
                    // The profile keeps the stretching cost it was created with.
                    let kdf = s.kdf_params();
                    s.change_passphrase(&new, kdf)?;
                    Ok(Reply::Ok)
                })
            }
            Command::ExportBackup { path } => self.on_store(reply, move |s, _| {
                let path = match path {
                    Some(p) => p,
                    None => crate::profile::default_backup_path(SystemTime::now()),
                };
                s.export_backup(&path)?;
                Ok(Reply::Path { path })
            }),
            // Listing opens every sound server and card: off the network loop.
            Command::Devices => {
                let spawned = std::thread::Builder::new()
                    .name("salon-devices".into())
                    .spawn(move || {
                        let list = device_names(Direction::Input).and_then(|inputs| {
                            Ok(Reply::Devices(DeviceList {
                                inputs,
                                outputs: device_names(Direction::Output)?,
                            }))
                        });
                        let _ = reply.send(list);
                    });
                // Without a thread the reply is dropped and the caller hears "stopped".
                drop(spawned);
            }
            Command::TestSound => match &self.output_device {
                Some(device) => crate::test_sound::play(device.clone(), move |r| {
                    let _ = reply.send(r.map(|()| Reply::Ok));
                }),
                None => {
                    let _ = reply.send(Err(NodeError::NoOutputDevice));
                }
            },
            other => {
                let r = self.command(other);
                let _ = reply.send(r);
            }
        }
    }

    /// Queues `job` on the history thread; it answers `reply` itself.
    fn on_store(
        &self,
        reply: Answer,
        job: impl FnOnce(&mut Store, &PublicKey) -> Result<Reply, NodeError> + Send + 'static,
    ) {
        self.history
            .record(Record::Job(StoreJob(Box::new(move |store, me| {
                let _ = reply.send(job(store, me));
            }))));
    }

    /// Applies what changed between the settings in force and `new`. A device that is
    /// not there is refused before anything changes.
    fn apply_settings(&mut self, new: &Settings) -> Result<(), NodeError> {
        let old = self.settings.clone();
        if self.mic.is_some() && new.input_device != old.input_device {
            check_device(Direction::Input, new.input_device.as_deref())?;
        }
        if self.output_device.is_some() && new.output_device != old.output_device {
            check_device(Direction::Output, new.output_device.as_deref())?;
        }
        if self.mic.is_some() && new.input_device != old.input_device {
            self.mic = Some(new.input_device.clone());
            if self.mic_open {
                self.engine
                    .set_input(InputSpec::Device(new.input_device.clone()))?;
            }
        }
        if self.output_device.is_some() && new.output_device != old.output_device {
            self.engine
                .set_output(OutputSpec::Device(new.output_device.clone()))?;
            self.output_device = Some(new.output_device.clone());
        }
        if new.noise_suppression != old.noise_suppression {
            self.engine.set_noise_suppression(new.noise_suppression)?;
        }
        if new.echo_cancellation != old.echo_cancellation {
            self.engine.set_echo_cancellation(new.echo_cancellation)?;
        }
        if new.push_to_talk_key.is_some() != old.push_to_talk_key.is_some() {
            // A press whose release never arrived must not leave the microphone open.
            self.engine.set_talk_key(false)?;
            self.talk_key_held = false;
            self.engine
                .set_talk_mode(if new.push_to_talk_key.is_some() {
                    TalkMode::PushToTalk
                } else {
                    TalkMode::Open
                })?;
        }
        self.settings = new.clone();
        let shown_muted = self
            .endpoint
            .room()
            .is_some_and(|v| v.members.iter().any(|m| m.key == self.me && m.muted));
        self.keep_push_to_talk_muted(shown_muted);
        Ok(())
    }

    /// Whether the microphone should record: on stage in an open room, or testing it.
    fn mic_wanted(&self) -> bool {
        self.mic.is_some() && ((self.room_open && self.on_stage) || self.mic_test)
    }

    /// Opens the microphone when it is wanted and closes it (silence keeps the frame
    /// clock) when not: a listener's microphone is never open, not even muted.
    fn sync_mic(&mut self) {
        let want = self.mic_wanted();
        if want == self.mic_open {
            return;
        }
        let input = match (&self.mic, want) {
            (Some(name), true) => InputSpec::Device(name.clone()),
            _ => InputSpec::Silence,
        };
        // Fails only once the engine has stopped; a device that will not open is told
        // by an engine event, and the next role change tries again.
        if self.engine.set_input(input).is_ok() {
            self.mic_open = want;
        }
    }

    /// With push-to-talk on, we are muted on stage unless the key is held: the engine's
    /// talk key gates what is sent, and the muted flag the room shows follows it (here,
    /// not in each front end). `shown_muted`: what the roster shows now.
    fn keep_push_to_talk_muted(&mut self, shown_muted: bool) {
        if self.settings.push_to_talk_key.is_none()
            || !self.on_stage
            || self.talk_key_held
            || shown_muted
        {
            return;
        }
        // Refused only when there is no room, where there is nothing to show.
        let _ = self.endpoint.set_muted(Instant::now(), true);
        let _ = self.engine.set_muted(true);
    }

    fn command(&mut self, cmd: Command) -> Result<Reply, NodeError> {
        let now = Instant::now();
        let ep = &mut self.endpoint;
        match cmd {
            Command::Host { title } => {
                let own = self.own_candidates();
                let invite = self.endpoint.host(now, &title, &self.name, own)?.encode();
                let _ = self.events.send(NodeEvent::Hosting {
                    invite: invite.clone(),
                });
                Ok(Reply::Invite { invite })
            }
            Command::Join { invite } => {
                let invite = Invite::parse(&invite)?;
                let mine = self.own_candidates().iter().map(|c| c.addr).collect();
                self.endpoint.join(now, &invite, &self.name, mine)?;
                Ok(Reply::Ok)
            }
            Command::Leave => {
                ep.leave(now)?;
                Ok(Reply::Ok)
            }
            Command::EndRoom => {
                ep.end_room(now)?;
                Ok(Reply::Ok)
            }
            Command::RevokeInvite => Ok(Reply::Invite {
                invite: ep.revoke_invite(now)?.encode(),
            }),
            Command::SetMuted(m) => {
                ep.set_muted(now, m)?;
                self.engine.set_muted(m)?;
                Ok(Reply::Ok)
            }
            Command::SetHand(up) => {
                ep.set_hand(now, up)?;
                Ok(Reply::Ok)
            }
            Command::Moderate { key, action } => {
                self.endpoint.moderate(now, key, action)?;
                Ok(Reply::Ok)
            }
            Command::AnswerStageInvite { accept } => {
                ep.answer_stage_invite(now, accept)?;
                Ok(Reply::Ok)
            }
            Command::Chat(text) => {
                ep.send_chat(now, &text)?;
                Ok(Reply::Ok)
            }
            Command::SetInput(InputSpec::Device(name)) => {
                self.mic = Some(name);
                // Whatever plays now (a tone, a file) gives way to the device or silence.
                self.mic_open = !self.mic_wanted();
                self.sync_mic();
                Ok(Reply::Ok)
            }
            Command::SetInput(i) => {
                self.mic = None;
                self.mic_open = false;
                self.engine.set_input(i)?;
                Ok(Reply::Ok)
            }
            Command::SetOutput(o) => {
                self.engine.set_output(o)?;
                Ok(Reply::Ok)
            }
            Command::SetPeerVolume { key, volume } => {
                if !self.names.contains_key(&key) {
                    return Err(NodeError::NoSuchMember(hex(&key)));
                }
                self.engine.set_peer_volume(key, volume.clamp(0.0, 2.0))?;
                Ok(Reply::Ok)
            }
            Command::Status => Ok(Reply::Room {
                room: ep.room().map(|v| room_info(&v, &self.me)),
            }),
            Command::MicTest(on) => {
                self.mic_test = on;
                self.sync_mic();
                Ok(Reply::Ok)
            }
            Command::PushToTalk(pressed) => {
                self.engine.set_talk_key(pressed)?;
                self.talk_key_held = pressed;
                // In push-to-talk mode the key is the mute switch on stage.
                if self.settings.push_to_talk_key.is_some() && self.on_stage {
                    ep.set_muted(now, !pressed)?;
                    self.engine.set_muted(!pressed)?;
                }
                Ok(Reply::Ok)
            }
            // Answered by `dispatch`.
            Command::HistoryRooms { .. }
            | Command::HistoryChat { .. }
            | Command::Contacts
            | Command::SafetyNumber { .. }
            | Command::VerifyContact { .. }
            | Command::GetSettings
            | Command::SetSettings(_)
            | Command::ChangePassphrase { .. }
            | Command::ExportBackup { .. }
            | Command::TestSound
            | Command::Devices => Err(NodeError::Stopped),
        }
    }
}

/// Device names, the default first.
fn device_names(direction: Direction) -> Result<Vec<String>, NodeError> {
    let mut list = list_devices(direction)?;
    list.sort_by_key(|d| !d.is_default);
    Ok(list.into_iter().map(|d| d.name).collect())
}

/// Refuses a device name that is not plugged in (`None`, the default, always passes).
fn check_device(direction: Direction, name: Option<&str>) -> Result<(), NodeError> {
    let Some(name) = name else { return Ok(()) };
    if device_names(direction)?.iter().any(|n| n == name) {
        Ok(())
    } else {
        Err(NodeError::NoSuchDevice {
            direction: match direction {
                Direction::Input => "input",
                Direction::Output => "output",
            },
            name: name.to_owned(),
        })
    }
}

fn engine_event_text(e: &EngineEvent) -> String {
    match e {
        EngineEvent::DeviceFallback {
            direction,
            from,
            to,
        } => {
            format!("{direction:?} device \"{from}\" failed; now using \"{to}\"")
        }
        EngineEvent::DeviceLost { direction, error } => {
            format!(
                "{direction:?} device lost ({error}); plug it back in or choose another in settings"
            )
        }
        EngineEvent::SwitchFailed { direction, error } => {
            format!(
                "could not switch the {direction:?} device ({error}); the previous one stays in use"
            )
        }
        EngineEvent::DeviceOpened { direction, name } => {
            format!("{direction:?} device \"{name}\" in use")
        }
    }
}
