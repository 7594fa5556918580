//! What crosses an interface of the bed: `tcpdump` inside a namespace writing a pcap file,
//! read back as the UDP datagrams it holds, with their addresses.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use crate::bed::Bed;

/// Now, in seconds since the Unix epoch: the clock of [`Datagram::at`].
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One captured IPv4/UDP datagram.
#[derive(Clone, Debug)]
pub struct Datagram {
    /// When it was captured, in seconds since the Unix epoch.
    pub at: f64,
    /// Where it came from.
    pub src: SocketAddrV4,
    /// Where it went.
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// The UDP datagrams in a classic pcap file (Ethernet or Linux-cooked framing); other
/// packets are skipped, and a record cut short at the end (a capture still being written)
/// ends the list.
pub fn read_pcap(path: &Path) -> Vec<Datagram> {
    let b = std::fs::read(path).unwrap_or_default();
    if b.len() < 24 {
        return Vec::new();
    }
    let swapped = b[0..4] == [0xd4, 0xc3, 0xb2, 0xa1];
    let word = |i: usize| -> u32 {
        let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if swapped {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let header = match word(20) {
        1 => 14,   // Ethernet
        113 => 16, // Linux cooked
        276 => 20, // Linux cooked v2
        other => panic!("{}: link type {other} is not read here", path.display()),
    };
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let at = f64::from(word(i)) + f64::from(word(i + 4)) / 1e6;
        let len = word(i + 8) as usize;
        let Some(frame) = b.get(i + 16..i + 16 + len) else {
            break;
        };
        i += 16 + len;
        if let Some(d) = udp(frame.get(header..).unwrap_or_default(), at) {
            out.push(d);
        }
    }
    out
}

/// The UDP datagram in IPv4 packet `ip`, if it is one.
fn udp(ip: &[u8], at: f64) -> Option<Datagram> {
    if ip.first()? >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    let body = ip.get(usize::from(ip[0] & 0x0f) * 4..)?;
    let addr = |a: &[u8], p: &[u8]| {
        SocketAddrV4::new(
            Ipv4Addr::new(a[0], a[1], a[2], a[3]),
            u16::from_be_bytes([p[0], p[1]]),
        )
    };
    Some(Datagram {
        at,
        src: addr(ip.get(12..16)?, body.get(0..2)?),
        dst: addr(ip.get(16..20)?, body.get(2..4)?),
        payload: body.get(8..)?.to_vec(),
    })
}

/// `tcpdump` on one interface of a namespace, writing every packet as it comes; stopped
/// when dropped.
pub struct Capture {
    child: Option<Child>,
    path: PathBuf,
}

impl Capture {
    /// Starts capturing `filter` (a pcap filter, e.g. `udp`) on `dev` in `ns` into
    /// `NAME.pcap` in the bed's directory, and returns once tcpdump is listening.
    pub fn start(bed: &Bed, ns: &str, dev: &str, filter: &str, name: &str) -> Capture {
        let path = bed.dir().join(format!("{name}.pcap"));
        let mut child = bed
            .exec(ns, "tcpdump")
            .args([
                "-i",
                dev,
                "-U",
                "--immediate-mode",
                "-n",
                "-s",
                "0",
                "-Z",
                "root",
                "-w",
            ])
            .arg(&path)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump (apt-get install tcpdump)");
        let (tx, rx) = channel();
        let stderr = child.stderr.take().expect("tcpdump stderr");
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut said = Vec::new();
        while let Ok(l) = rx.recv_timeout(Duration::from_secs(10)) {
            if l.contains("listening on") {
                return Capture {
                    child: Some(child),
                    path,
                };
            }
            said.push(l);
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{}: tcpdump on {dev} in {ns} did not start: {}",
            bed.tag(),
            said.join("\n")
        );
    }

    /// What has been captured so far.
    pub fn so_far(&self) -> Vec<Datagram> {
        read_pcap(&self.path)
    }

    /// Stops the capture and returns all of it.
    pub fn stop(mut self) -> Vec<Datagram> {
        self.end();
        read_pcap(&self.path)
    }

    fn end(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: tcpdump flushes and closes the file.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.end();
    }
}
