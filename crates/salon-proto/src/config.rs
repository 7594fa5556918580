//! Timer values and limits, each with the reason for its value.

use std::time::Duration;

/// Tunables of an [`crate::Endpoint`]. `Default` is what Salon ships with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest room the host admits. Full mesh: each speaker sends every frame to every
    /// member, so upload grows with the room; 16 keeps a 3-speaker room under ~1 Mb/s.
    pub max_members: usize,
    /// Send something on an idle link this often (a ping): keeps NAT bindings open and
    /// measures RTT. One 189-byte datagram a second per link is cheap.
    pub keepalive: Duration,
    /// A link that has received nothing authenticated for this long is down; a member the
    /// host has not heard from for this long leaves the roster. Five missed keepalives.
    pub peer_timeout: Duration,
    /// Start a new handshake when the session is this old (WireGuard's REKEY_AFTER_TIME).
    pub rekey_after: Duration,
    /// Never use a session older than this (WireGuard's REJECT_AFTER_TIME).
    pub reject_after: Duration,
    /// First handshake retry delay; doubles per attempt up to `handshake_retry_max`.
    /// Shorter than WireGuard's 5 s because a person is waiting to join.
    pub handshake_retry: Duration,
    /// Cap of the retry delay.
    pub handshake_retry_max: Duration,
    /// Random extra delay up to this much on every retry, so peers that failed together
    /// do not retry in lockstep.
    pub handshake_jitter: Duration,
    /// Give up joining after this long and report which addresses were tried.
    pub join_timeout: Duration,
    /// After sending `Removed` or leaving, keep the link this long so the message is
    /// delivered, then drop it.
    pub linger: Duration,
    /// More valid-mac1 handshake initiations than this in one second means "under load":
    /// initiations must then carry a cookie (mac2) and each source IP is rate limited
    /// (WireGuard section 5.3).
    pub handshake_load_threshold: u32,
    /// Each member tells each peer it heard audio from how much of that audio it lost,
    /// this often, so the speaker's encoder can add redundancy. Two seconds holds about
    /// a hundred 20 ms frames (a loss figure to ±4 % at 20 % loss) and, being twice the
    /// keepalive, lets a listener's reports and pings alternate at one datagram a second.
    pub report_interval: Duration,
    /// A new link with no session after this long also goes through a relay (another
    /// member). Long enough for hole punching from both sides (the initiations cross in
    /// one round trip; a lost one is retried after 0.5 s), short enough that someone who
    /// joins hears everyone within about two seconds either way.
    pub relay_after: Duration,
    /// While a link has no fresh direct path, send a probe straight to each of the peer's
    /// addresses this often: it keeps punched holes open and finds a direct path that
    /// appears later (the peer answers with a path challenge).
    pub probe_interval: Duration,
    /// A relay that has not confirmed within this long is replaced by the next candidate.
    pub relay_ready_timeout: Duration,
    /// A peer we have had no session with for this long is reported unreachable (once per
    /// outage), with the addresses tried.
    pub unreachable_after: Duration,
    /// The slot of the constant-rate schedule: the codec frame period. Every link of a
    /// stage member (and, in a uniform-rate room, of every member) sends exactly one
    /// 189-byte datagram per slot, carrying audio, control or padding, so an observer
    /// sees one size at one rate whatever happens in the room (PROTOCOL §5.1).
    pub slot: Duration,
    /// The slot of a listener's links in a room without uniform rates: four datagrams a
    /// second carry its acks, chat and hand raises without a burst that shows when.
    pub listener_slot: Duration,
    /// Whether a room we host asks every member to send at the stage rate (`slot`), so a
    /// capture cannot tell speakers from listeners. Members follow the host's setting;
    /// it applies while the room has at most [`UNIFORM_RATE_MAX_MEMBERS`] members.
    pub uniform_rate: bool,
}

/// Largest room in which the uniform-rate setting applies: every member then uploads
/// about 86.8 kb/s to each other member (one 189-byte datagram per 20 ms, with IPv4 and
/// UDP headers), 1.3 Mb/s in a room of 16.
pub const UNIFORM_RATE_MAX_MEMBERS: usize = 16;

impl Default for Config {
    fn default() -> Self {
        Self {
            max_members: 16,
            keepalive: Duration::from_secs(1),
            peer_timeout: Duration::from_secs(5),
            rekey_after: Duration::from_secs(120),
            reject_after: Duration::from_secs(180),
            handshake_retry: Duration::from_millis(500),
            handshake_retry_max: Duration::from_secs(5),
            handshake_jitter: Duration::from_millis(250),
            join_timeout: Duration::from_secs(15),
            linger: Duration::from_secs(2),
            handshake_load_threshold: 64,
            report_interval: Duration::from_secs(2),
            relay_after: Duration::from_millis(1500),
            probe_interval: Duration::from_secs(1),
            relay_ready_timeout: Duration::from_secs(3),
            unreachable_after: Duration::from_secs(10),
            slot: Duration::from_millis(20),
            listener_slot: Duration::from_millis(250),
            uniform_rate: true,
        }
    }
}
