//! `nat-probe`: the UDP tool the bed's own tests run inside namespaces to see how a NAT
//! maps and filters (a STUN server and client in miniature, in plain text).
//!
//! ```text
//! nat-probe reflect PORT...            answer each datagram with "seen ADDR" (the source
//!                                       address it came from) from the socket it reached,
//!                                       and send "also ADDR" from every other port; until
//!                                       stdin closes
//! nat-probe listen PORT SECS [DEST...]  bind PORT, send "hello" to each DEST, and print
//!                                       "FROM TEXT" for every datagram received for SECS
//! nat-probe send PORT DEST TEXT         send TEXT to DEST from PORT (0: any)
//! nat-probe ping DEST COUNT             send COUNT numbered pings to a reflector, 5 ms
//!                                       apart, and print "sent N received M rtt_ms
//!                                       MIN MEDIAN MAX" (what an impaired link does)
//! nat-probe spoof SRC DEST FILE         send each payload of FILE (one in hex a line) to
//!                                       DEST as a UDP datagram that claims to come from
//!                                       SRC (any address: a raw socket writes the IP
//!                                       header), 5 ms apart; print "sent N"
//! ```
//!
//! `listen` and `send` send each datagram three times, 50 ms apart: the bed loses none,
//! but a reply racing the conntrack entry of its request should not decide a test. A
//! reflector echoes pings back as they are, every one.

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("reflect") => reflect(&args[1..]),
        Some("listen") => listen(&args[1..]),
        Some("send") => send(&args[1..]),
        Some("ping") => ping(&args[1..]),
        Some("spoof") => spoof(&args[1..]),
        _ => Err(
            "usage: nat-probe reflect PORT... | listen PORT SECS [DEST...] \
                  | send PORT DEST TEXT | ping DEST COUNT | spoof SRC DEST FILE"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nat-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn bind(port: &str) -> Result<UdpSocket> {
    let port: u16 = port.parse().map_err(|e| format!("port {port}: {e}"))?;
    UdpSocket::bind(("0.0.0.0", port)).map_err(|e| format!("bind {port}: {e}"))
}

fn addr(s: &str) -> Result<SocketAddr> {
    s.parse().map_err(|e| format!("address {s}: {e}"))
}

fn send_thrice(sock: &UdpSocket, to: SocketAddr, text: &str) -> Result<()> {
    for _ in 0..3 {
        sock.send_to(text.as_bytes(), to)
            .map_err(|e| format!("send to {to}: {e}"))?;
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn reflect(ports: &[String]) -> Result<()> {
    let socks = ports.iter().map(|p| bind(p)).collect::<Result<Vec<_>>>()?;
    for (i, sock) in socks.iter().enumerate() {
        let sock = sock.try_clone().map_err(|e| e.to_string())?;
        let others = socks
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, s)| s.try_clone())
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let mut answered = Vec::new();
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                if buf.starts_with(b"ping ") {
                    let _ = sock.send_to(&buf[..n], from);
                    continue;
                }
                // Answer each source once: the prober sends each hello three times.
                if answered.contains(&from) {
                    continue;
                }
                answered.push(from);
                let _ = sock.send_to(format!("seen {from}").as_bytes(), from);
                for o in &others {
                    let _ = o.send_to(format!("also {from}").as_bytes(), from);
                }
            }
        });
    }
    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    // Serve until the test closes our stdin (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}

fn listen(args: &[String]) -> Result<()> {
    let [port, secs, dests @ ..] = args else {
        return Err("listen PORT SECS [DEST...]".into());
    };
    let sock = bind(port)?;
    let secs: f64 = secs.parse().map_err(|e| format!("seconds {secs}: {e}"))?;
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let dests = dests.iter().map(|d| addr(d)).collect::<Result<Vec<_>>>()?;
    {
        let sock = sock.try_clone().map_err(|e| e.to_string())?;
        std::thread::spawn(move || {
            for d in dests {
                let _ = send_thrice(&sock, d, "hello");
            }
        });
    }
    println!("ready");
    let mut out = std::io::stdout();
    let mut buf = [0u8; 1500];
    let mut printed = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let line = format!("{from} {}", String::from_utf8_lossy(&buf[..n]));
        if !printed.contains(&line) {
            writeln!(out, "{line}").map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
            printed.push(line);
        }
    }
    Ok(())
}

fn send(args: &[String]) -> Result<()> {
    let [port, dest, text] = args else {
        return Err("send PORT DEST TEXT".into());
    };
    send_thrice(&bind(port)?, addr(dest)?, text)
}

fn ping(args: &[String]) -> Result<()> {
    let [dest, count] = args else {
        return Err("ping DEST COUNT".into());
    };
    let dest = addr(dest)?;
    let count: usize = count.parse().map_err(|e| format!("count {count}: {e}"))?;
    let sock = bind("0")?;
    let start = Instant::now();
    let sender = sock.try_clone().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        for i in 0..count {
            let at = start.elapsed().as_micros();
            let _ = sender.send_to(format!("ping {i} {at}").as_bytes(), dest);
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    // Replies to the last ping may take the longest delay the tests use, and then some.
    let end = start + Duration::from_millis(5 * count as u64) + Duration::from_secs(1);
    let mut rtts = Vec::new();
    let mut seen = vec![false; count];
    let mut buf = [0u8; 1500];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        let mut f = text.split(' ').skip(1).map(|x| x.parse::<u128>().ok());
        if let (Some(Some(i)), Some(Some(at))) = (f.next(), f.next())
            && let Some(s) = seen.get_mut(i as usize)
            && !*s
        {
            *s = true;
            rtts.push((start.elapsed().as_micros() - at) as f64 / 1000.0);
        }
    }
    rtts.sort_by(f64::total_cmp);
    let pick = |q: f64| rtts.get(((rtts.len() as f64 - 1.0) * q) as usize).copied();
    let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    println!(
        "sent {count} received {} rtt_ms {} {} {}",
        rtts.len(),
        show(pick(0.0)),
        show(pick(0.5)),
        show(pick(1.0))
    );
    Ok(())
}

fn spoof(args: &[String]) -> Result<()> {
    let [src, dest, file] = args else {
        return Err("spoof SRC DEST FILE".into());
    };
    let (SocketAddr::V4(src), SocketAddr::V4(dest)) = (addr(src)?, addr(dest)?) else {
        return Err("spoof: IPv4 addresses only".into());
    };
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let payloads = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| unhex(l.trim()))
        .collect::<Result<Vec<_>>>()?;
    // IPPROTO_RAW: the IP header is ours to write (the kernel fills in its checksum).
    let sock = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(255)),
    )
    .map_err(|e| format!("raw socket: {e}"))?;
    let to = socket2::SockAddr::from(SocketAddr::V4(dest));
    for (i, p) in payloads.iter().enumerate() {
        let packet = udp_packet(src, dest, p, i as u16);
        sock.send_to(&packet, &to)
            .map_err(|e| format!("send to {dest}: {e}"))?;
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("sent {}", payloads.len());
    Ok(())
}

fn unhex(h: &str) -> Result<Vec<u8>> {
    hex::decode(h).map_err(|e| format!("hex: {e}"))
}

/// An IPv4 packet carrying `payload` in a UDP datagram from `src` to `dest`.
fn udp_packet(
    src: std::net::SocketAddrV4,
    dest: std::net::SocketAddrV4,
    payload: &[u8],
    id: u16,
) -> Vec<u8> {
    let udp_len = 8 + payload.len() as u16;
    let mut p = Vec::with_capacity(20 + usize::from(udp_len));
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(20 + udp_len).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]); // don't fragment, TTL, UDP, checksum
    p.extend_from_slice(&src.ip().octets());
    p.extend_from_slice(&dest.ip().octets());
    let mut udp = Vec::with_capacity(usize::from(udp_len));
    udp.extend_from_slice(&src.port().to_be_bytes());
    udp.extend_from_slice(&dest.port().to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    // The UDP checksum covers a pseudo-header of both addresses, the protocol and length.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.ip().octets());
    pseudo.extend_from_slice(&dest.ip().octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&udp_len.to_be_bytes());
    pseudo.extend_from_slice(&udp);
    let sum = match checksum(&pseudo) {
        0 => 0xffff,
        s => s,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&udp);
    p
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
