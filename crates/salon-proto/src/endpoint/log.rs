//! What the endpoint tells the log: one line per protocol event, as it leaves through
//! [`Endpoint::poll_event`]. Never a name, a title, chat, a secret, an invite or an
//! address: a log may be pasted into a bug report, so it names peers only by the first
//! four bytes of their key, and says what happened, not what was said.

use std::fmt;

use super::*;

/// The first four bytes of a key in hex: enough to tell peers apart in one log.
pub(super) struct Short<'a>(pub(super) &'a PublicKey);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0.as_bytes()[..4] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Logs `e` (audio frames and reception reports only at trace level: they come every
/// frame and every few seconds).
pub(super) fn event(e: &Event) {
    match e {
        Event::Joined(v) => tracing::info!(
            members = v.members.len(),
            epoch = v.epoch,
            "joined the room"
        ),
        Event::JoinFailed(f) => {
            let why = match f {
                JoinFailure::Unreachable { tried } => {
                    tracing::warn!(addresses = tried.len(), "join failed: host unreachable");
                    return;
                }
                JoinFailure::Removed => "removed earlier",
                JoinFailure::Full => "room full",
                JoinFailure::Ended => "room ended",
            };
            tracing::warn!(why, "join failed");
        }
        Event::RoomChanged(v) => {
            tracing::debug!(members = v.members.len(), epoch = v.epoch, "room changed");
        }
        Event::RoleChanged(r) => tracing::info!(role = %r, "our role changed"),
        Event::MutedByModerator => tracing::info!("muted by a moderator"),
        Event::StageInvited { by } => tracing::info!(by = %Short(by), "invited on stage"),
        Event::StageInviteDeclined { member, by } => {
            tracing::info!(member = %Short(member), by = %Short(by), "stage invitation declined");
        }
        Event::StageInviteLapsed { by } => {
            tracing::info!(by = %Short(by), "stage invitation lapsed unanswered");
        }
        Event::StageInviteUnanswered { member, by } => {
            tracing::info!(member = %Short(member), by = %Short(by), "stage invitation unanswered");
        }
        Event::Chat { from, seq, .. } => tracing::debug!(from = %Short(from), seq, "chat message"),
        Event::Audio { from, seq, .. } => tracing::trace!(from = %Short(from), seq, "audio frame"),
        Event::ReceptionReport {
            from,
            loss_permille,
        } => tracing::trace!(from = %Short(from), loss_permille, "reception report"),
        Event::LinkUp(peer) => tracing::info!(peer = %Short(peer), "link up"),
        Event::LinkDown(peer) => tracing::info!(peer = %Short(peer), "link down"),
        Event::LinkPath { peer, path } => {
            tracing::debug!(peer = %Short(peer), path = ?path, "link path");
        }
        Event::Unreachable {
            peer,
            tried,
            relay_asked,
        } => tracing::warn!(
            peer = %Short(peer),
            addresses = tried.len(),
            relay_asked,
            "peer unreachable"
        ),
        Event::HostChanged { host, .. } => tracing::info!(host = %Short(host), "host changed"),
        Event::InviteChanged { reason, .. } => {
            tracing::info!(reason = ?reason, "the room's invite changed");
        }
        Event::Left(reason) => tracing::info!(reason = %reason, "left the room"),
    }
}
