//! A room over IPv6 alone: a host with no IPv4 address at all invites over its global
//! IPv6 address, and a member joins and hears it through the node's IPv6 socket. Needs
//! root; skips otherwise (fails with `SALON_CI=1`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::net::IpAddr;
use std::time::Duration;

use salon_tests::bed::Bed;
use salon_tests::room::{all_hear_all, pump_all};
use salon_tests::salon::{leave_all, salon_binary};
use salon_tests::{RoomSlot, Salon};

/// Gives namespace `ns` the documentation-prefix address `2001:db8::N` on its `eth0`
/// (the bridge carries it on-link), and, with `drop_v4`, takes its IPv4 address away.
fn ipv6_only(bed: &Bed, ns: &str, n: u8, drop_v4: bool) {
    let run = |args: &[&str]| {
        let st = bed.exec(ns, "ip").args(args).status().unwrap();
        assert!(st.success(), "ip {args:?} in {ns}");
    };
    run(&[
        "-6",
        "addr",
        "add",
        &format!("2001:db8::{n}/64"),
        "dev",
        "eth0",
        "nodad",
    ]);
    if drop_v4 {
        run(&["-4", "addr", "flush", "dev", "eth0"]);
    }
}

#[test]
fn a_host_with_only_ipv6_is_joined_and_heard_over_its_global_ipv6_address() {
    let Some(mut bed) = Bed::new("ipv6") else {
        return;
    };
    salon_binary();
    let _slot = RoomSlot::take();
    let host_ns = bed.public().ns;
    let member_ns = bed.public().ns;
    ipv6_only(&bed, &host_ns, 5, true);
    ipv6_only(&bed, &member_ns, 6, false);
    let root = bed.dir().to_path_buf();
    let mut host = Salon::host(&bed, &host_ns, &root, "Hana", "Over six", "tone:440");
    let invite = host.invite();
    // The invite names the global IPv6 address; the only IPv4 one is loopback, which a
    // member elsewhere cannot use.
    let inv = salon_proto::Invite::parse(&invite).unwrap();
    let ips: Vec<IpAddr> = inv.candidates.iter().map(|c| c.addr.ip()).collect();
    assert!(
        ips.contains(&"2001:db8::5".parse::<IpAddr>().unwrap()),
        "invite names {ips:?}"
    );
    assert!(
        ips.iter().all(|ip| ip.is_ipv6() || ip.is_loopback()),
        "invite names {ips:?}"
    );
    let mut member = Salon::join(&bed, &member_ns, &root, "Ivo", &invite, "tone:660");
    member.wait_until("in the room", Duration::from_secs(15), |s| {
        s.joined_at().is_some()
    });
    host.say("promote Ivo");
    member.accept_stage_invite(Duration::from_secs(15));
    let mut nodes = [&mut host, &mut member];
    let heard = pump_all(&mut nodes, Duration::from_secs(15), all_hear_all);
    assert!(
        heard,
        "not heard over IPv6: host {}, member {}",
        nodes[0].report(),
        nodes[1].report()
    );
    leave_all(&mut nodes);
}
