//! What the endpoint tells the application.

use std::net::SocketAddr;
use std::time::Duration;

use crate::identity::PublicKey;
use crate::invite::{Invite, RoomId};
use crate::path::Path;
use crate::roster::{Member, Role};
use crate::safety_code::SafetyCode;

/// A snapshot of the room for display.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomView {
    /// Room id (from the invite).
    pub room_id: RoomId,
    /// Room title.
    pub title: String,
    /// Current epoch.
    pub epoch: u64,
    /// The current host.
    pub host: PublicKey,
    /// Everyone in the room.
    pub members: Vec<Member>,
    /// The code every member can read aloud to check nobody's key was substituted.
    pub safety_code: SafetyCode,
}

/// Why joining failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinFailure {
    /// No answer from any of the host's addresses.
    Unreachable {
        /// Every address a handshake was sent to.
        tried: Vec<SocketAddr>,
    },
    /// The host removed us earlier; the invite no longer admits us.
    Removed,
    /// The room is full.
    Full,
    /// The room has ended.
    Ended,
}

impl std::fmt::Display for JoinFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinFailure::Unreachable { tried } => {
                let list: Vec<String> = tried.iter().map(ToString::to_string).collect();
                if !tried.is_empty() && tried.iter().all(|a| !is_public(a.ip())) {
                    // Only addresses inside the host's own network: from anywhere else
                    // nothing can work, and saying so beats "check the invite".
                    write!(
                        f,
                        "the host did not answer at {}, which are addresses on the host's own network only: \
                         their router opened no port for Salon (or the host replaced this invite: ask for \
                         the current one). Unless you are on that network, ask the host to turn on UPnP \
                         or NAT-PMP on their router, or to forward a UDP port to Salon",
                        list.join(", ")
                    )
                } else {
                    write!(
                        f,
                        "the host did not answer at {}; check the invite is current and the host is online",
                        list.join(", ")
                    )
                }
            }
            JoinFailure::Removed => {
                write!(f, "you were removed from this room and cannot rejoin it")
            }
            JoinFailure::Full => write!(f, "the room is full"),
            JoinFailure::Ended => write!(f, "the room has ended"),
        }
    }
}

/// Why the host's invite changed (the old one admits nobody from now on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteChange {
    /// A member was removed: they (or anyone they gave it to) held the old invite.
    Removal,
    /// The host revoked the invite (it leaked, or the room should close its doors).
    Revoked,
}

/// Whether `ip` can be reached from the internet at large (not loopback, private,
/// shared carrier-grade NAT, link-local or unique-local space).
fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (a == 100 && (64..128).contains(&b)))
        }
        std::net::IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unicast_link_local()
                || (first & 0xfe00) == 0xfc00)
        }
    }
}

/// Why we are no longer in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum LeftReason {
    /// We left.
    Left,
    /// A moderator removed us.
    Removed,
    /// The host ended the room.
    Ended,
    /// Lost contact with everyone.
    TimedOut,
}

impl std::fmt::Display for LeftReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LeftReason::Left => "left",
            LeftReason::Removed => "removed",
            LeftReason::Ended => "ended",
            LeftReason::TimedOut => "timed_out",
        })
    }
}

/// Quality figures of the link to one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// Round-trip time from pings, smoothed as RFC 6298's SRTT.
    pub rtt: Option<Duration>,
    /// Audio frames received from the peer.
    pub audio_received: u64,
    /// Audio frames the peer sent that never arrived (from sequence gaps).
    pub audio_lost: u64,
    /// Audio frames the peer did not send us because their slot carried control
    /// (PROTOCOL §5.1): concealed by the receiver, not counted as lost.
    pub audio_skipped: u64,
    /// Reliable-channel retransmissions towards the peer.
    pub retransmissions: u64,
    /// Whether a session is up.
    pub up: bool,
    /// How datagrams reach the peer, while a session is up.
    pub path: Option<Path>,
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// We are in the room (host: the room is open; joiner: the host admitted us).
    Joined(RoomView),
    /// Joining failed.
    JoinFailed(JoinFailure),
    /// The roster, a role, a hand or a mute changed, or the epoch moved on.
    RoomChanged(RoomView),
    /// Our own role changed.
    RoleChanged(Role),
    /// A moderator muted our microphone (the application mutes capture; we may unmute).
    MutedByModerator,
    /// A moderator (`by`, possibly the host) invites us on stage. Nothing changes yet: the
    /// application asks the user and answers with
    /// [`Endpoint::answer_stage_invite`](crate::Endpoint::answer_stage_invite); we become a
    /// speaker (and [`Event::RoleChanged`] follows) only if the user accepts within
    /// [`STAGE_INVITE_LIFETIME`](crate::authority::STAGE_INVITE_LIFETIME).
    StageInvited {
        /// The moderator who invited us.
        by: PublicKey,
    },
    /// We host the room and `member` said no to the stage invitation `by` sent. Only the
    /// host learns this: a moderator other than the host is not told over the wire (they
    /// see the member still in the audience).
    StageInviteDeclined {
        /// The listener who declined.
        member: PublicKey,
        /// The moderator (or the host) who had invited them.
        by: PublicKey,
    },
    /// The stage invitation of `by` lapsed before we answered it (the prompt should go):
    /// at [`STAGE_ANSWER_BY`](crate::endpoint::STAGE_ANSWER_BY) after it arrived, a
    /// little before the host's deadline, so a "yes" given until then still reaches the
    /// host in time.
    StageInviteLapsed {
        /// The moderator who had invited us.
        by: PublicKey,
    },
    /// We host the room and `member` did not answer the stage invitation `by` sent within
    /// [`STAGE_INVITE_LIFETIME`](crate::authority::STAGE_INVITE_LIFETIME); it is void.
    StageInviteUnanswered {
        /// The listener who did not answer.
        member: PublicKey,
        /// The moderator (or the host) who had invited them.
        by: PublicKey,
    },
    /// A chat line, delivered once and in order per sender.
    Chat {
        /// Sender's key.
        from: PublicKey,
        /// Sender's display name at the time.
        name: String,
        /// Per-sender sequence number.
        seq: u64,
        /// The text.
        text: String,
    },
    /// An audio frame from a stage member.
    Audio {
        /// Sender's key.
        from: PublicKey,
        /// Sender's sequence number (for the jitter buffer).
        seq: u32,
        /// Opaque codec bytes.
        frame: Vec<u8>,
    },
    /// A member told us how much of our audio it lost over its last report interval
    /// (`Config::report_interval`). Only peers that expected audio from us report.
    ReceptionReport {
        /// The member who measured.
        from: PublicKey,
        /// Lost frames per thousand expected (0..=1000).
        loss_permille: u16,
    },
    /// An encrypted session with this peer is up.
    LinkUp(PublicKey),
    /// The link to this peer timed out.
    LinkDown(PublicKey),
    /// The path to this peer changed: direct, or through another member.
    LinkPath {
        /// The peer.
        peer: PublicKey,
        /// The path now.
        path: Path,
    },
    /// No session with this peer could be set up for a while (reported once per outage;
    /// attempts go on, and `LinkUp` follows if one succeeds).
    Unreachable {
        /// The peer.
        peer: PublicKey,
        /// The peer's addresses we tried directly.
        tried: Vec<SocketAddr>,
        /// Whether a member was asked to relay (none answering means no member reaches
        /// both of us).
        relay_asked: bool,
    },
    /// The host changed. `invite` is set when we are the new host: the old invite named
    /// the old host, so share this one with new people.
    HostChanged {
        /// The new host.
        host: PublicKey,
        /// Our new invite, if we are the new host.
        invite: Option<Invite>,
    },
    /// We host the room and drew a fresh room secret: the old invite admits nobody (the
    /// host does not answer it), so share this one with people who should still be able
    /// to join. Members already in the room are not affected.
    InviteChanged {
        /// The new invite.
        invite: Invite,
        /// Why it changed.
        reason: InviteChange,
    },
    /// We are out of the room.
    Left(LeftReason),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

    use super::*;

    fn message(tried: &[&str]) -> String {
        JoinFailure::Unreachable {
            tried: tried.iter().map(|a| a.parse().unwrap()).collect(),
        }
        .to_string()
    }

    #[test]
    fn an_invite_with_only_the_hosts_own_network_addresses_says_the_router_opened_no_port() {
        for tried in [
            &["10.1.0.2:4000", "127.0.0.1:4000"][..],
            &["192.168.1.20:4000"],
            &["172.20.0.5:4000", "[fd00::5]:4000"],
            &["100.72.1.1:4000"],
        ] {
            let m = message(tried);
            assert!(m.contains("router opened no port"), "{tried:?}: {m}");
            assert!(m.contains(tried[0]), "{m}");
        }
    }

    #[test]
    fn an_invite_with_a_public_address_asks_to_check_the_invite_and_the_host() {
        for tried in [
            &["203.0.113.7:4000", "10.1.0.2:4000"][..],
            &["[2001:db8::7]:4000"],
        ] {
            let m = message(tried);
            assert!(m.contains("check the invite is current"), "{tried:?}: {m}");
            assert!(!m.contains("router opened no port"), "{m}");
        }
    }
}
