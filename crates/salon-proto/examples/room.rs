//! A room on a simulated lossy network, narrated: a host opens a room, people join by the
//! invite, someone raises a hand and is invited on stage, speakers talk, people chat, the
//! host hands over and leaves. Everything runs through the real protocol state machine.
//!
//! `cargo run -p salon-proto --example room -- [members] [loss-percent] [seed]`

use std::time::Duration;

use salon_proto::sim::Net;
use salon_proto::{Action, Event};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let members = arg(0, 6).clamp(2, 16) as usize;
    let loss = arg(1, 10).min(50) as f64 / 100.0;
    let seed = arg(2, 1);
    println!(
        "Salon protocol demo: {members} members, {:.0}% loss, reordering, 5% duplicates (seed {seed})",
        loss * 100.0
    );
    let names = [
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Leslie", "Frances",
    ];
    let mut net = Net::new(seed).lossy(loss, 0.05, 40);
    let ids: Vec<usize> = (0..members)
        .map(|i| net.add(names[i % names.len()]))
        .collect();
    let invite = match net.host(ids[0], "Late night radio") {
        Ok(inv) => inv,
        Err(e) => return eprintln!("could not host: {e}"),
    };
    println!("invite: {invite}");
    for &i in &ids[1..] {
        if let Err(e) = net.join(i, &invite) {
            return eprintln!("could not join: {e}");
        }
    }
    let ok = net.run_until(Duration::from_secs(30), |n| {
        n.rosters_agree(&ids) && n.mesh_up(&ids)
    });
    report(&mut net, &ids);
    if !ok {
        return eprintln!("the room did not converge in 30 s of simulated time");
    }
    let speaker = ids[1];
    let key = net.key(speaker);
    let _ = net.with(speaker, |ep, now| ep.set_hand(now, true));
    net.run_for(Duration::from_millis(500));
    let _ = net.with(ids[0], |ep, now| {
        ep.moderate(now, key, Action::InviteToStage)
    });
    net.run_for(Duration::from_millis(500));
    net.nodes[ids[0]].speaking = true;
    net.nodes[speaker].speaking = true;
    let _ = net.with(ids[members - 1], |ep, now| {
        ep.send_chat(now, "hello from the back row")
    });
    net.run_for(Duration::from_secs(3));
    let _ = net.with(ids[0], |ep, now| ep.leave(now));
    net.run_for(Duration::from_secs(8));
    report(&mut net, &ids);
    let frames: usize = ids[2..].iter().map(|&i| net.audio_from(i, speaker)).sum();
    println!(
        "audio frames from {} heard by the audience: {frames}",
        names[1]
    );
    println!("datagrams on the wire: {}", net.captured.len());
}

fn report(net: &mut Net, ids: &[usize]) {
    let t = |net: &Net| (net.now - net.start).as_secs_f64();
    for &i in ids {
        let name = net.nodes[i].name.clone();
        for ev in std::mem::take(&mut net.nodes[i].events) {
            let line = match ev {
                Event::Joined(v) => format!(
                    "joined \"{}\" ({} members, safety code {})",
                    v.title,
                    v.members.len(),
                    v.safety_code
                ),
                Event::RoomChanged(v) => format!(
                    "room: epoch {}, {} members, safety code {}",
                    v.epoch,
                    v.members.len(),
                    v.safety_code
                ),
                Event::RoleChanged(r) => format!("my role is now {r:?}"),
                Event::Chat {
                    name: from, text, ..
                } => format!("chat <{from}> {text}"),
                Event::HostChanged { invite, .. } => format!(
                    "host changed{}",
                    if invite.is_some() { " to me" } else { "" }
                ),
                Event::InviteChanged { reason, .. } => format!("new invite ({reason:?})"),
                Event::Left(r) => format!("left: {r:?}"),
                Event::StageInvited { .. } => "invited on stage".to_owned(),
                Event::StageInviteDeclined { .. } => "a stage invitation was declined".to_owned(),
                Event::StageInviteLapsed { .. } => "a stage invitation to us lapsed".to_owned(),
                Event::StageInviteUnanswered { .. } => {
                    "a stage invitation went unanswered".to_owned()
                }
                Event::JoinFailed(f) => format!("join failed: {f}"),
                Event::LinkUp(_)
                | Event::LinkDown(_)
                | Event::LinkPath { .. }
                | Event::Unreachable { .. }
                | Event::Audio { .. }
                | Event::ReceptionReport { .. }
                | Event::MutedByModerator => continue,
            };
            println!("[{:7.3}s] {name:>8}: {line}", t(net));
        }
    }
}
