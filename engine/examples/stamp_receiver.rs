//! The benchmark's independent receiver: a separate process, with no udpcom code in its path,
//! that stamps every arriving datagram with the kernel's software RX timestamp.
//!
//! ```text
//! stamp_receiver [--port 0] [--bind 127.0.0.1] [--join GROUP --join-on ADDRESS] [--cpu N]
//!                [--mode stamp|count] [--gro 0|1] [--payload plain|udpcom] [--idle-ms 1000] [--max-s 600]
//! ```
//!
//! It binds `--bind`:port (an IPv4 address; `0.0.0.0` to hear a group), joins the IPv4
//! multicast group `--join` on the interface that has the address `--join-on` if asked, prints
//! `READY <port>` and then reads datagrams whose payload starts
//! with the sender's target time (u64 little-endian CLOCK_MONOTONIC ns, 0 for none) and a
//! sequence number (u32 little-endian at byte 8).
//!
//! - `stamp`: every datagram carries `SO_TIMESTAMPING` software RX stamps (taken by the kernel
//!   when the packet enters the receive path, so they do not depend on when this process runs).
//!   The stamps are CLOCK_REALTIME; they are converted to CLOCK_MONOTONIC with an offset that
//!   is re-sampled every 10 ms from the narrowest of 7 (monotonic, realtime, monotonic) read
//!   triples. Lateness = arrival − target; `early` and `over1ms` count the datagrams that
//!   arrived before their target and more than 1 ms after it.
//! - `count`: counts datagrams (recvmmsg, no stamps) for throughput measurements. With
//!   `--gro 1` the socket has UDP_GRO on and each coalesced buffer is counted as the datagrams
//!   it holds (cut at the size its UDP_GRO control message gives), so that it can count GSO
//!   senders at millions of datagrams per second.
//!
//! Commands on stdin, one per line: `report` prints the result so far as one JSON line and
//! starts a new measurement; `peek` prints it and goes on with the same measurement; `quit`
//! (or end of input) prints it and exits. Without commands it also finishes by itself
//! `--idle-ms` after the last datagram, or after `--max-s`.

mod common;

use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// `SO_TIMESTAMPING` (= `SCM_TIMESTAMPING`) on x86-64 with 64-bit time_t.
const SO_TIMESTAMPING: libc::c_int = 37;
const BATCH: usize = 64;
const BUFFER: usize = 2048;
/// Receive buffer per message with UDP_GRO: a coalesced buffer is up to 64 KiB.
const GRO_BUFFER: usize = 65_536;
const CONTROL: usize = 128;
const NS: i128 = 1_000_000_000;

fn clock(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as i128 * NS + ts.tv_nsec as i128
}

/// realtime − monotonic, from the narrowest of several read triples; returns (offset, width).
fn sample_offset() -> (i128, i128) {
    let mut best = (0, i128::MAX);
    for _ in 0..7 {
        let a = clock(libc::CLOCK_MONOTONIC);
        let r = clock(libc::CLOCK_REALTIME);
        let b = clock(libc::CLOCK_MONOTONIC);
        if b - a < best.1 {
            best = (r - (a + b) / 2, b - a);
        }
    }
    best
}

fn set_int(fd: i32, level: i32, name: i32, value: i32) -> std::io::Result<()> {
    // SAFETY: `value` lives for the call and its size is passed.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[derive(Default)]
struct Measurement {
    count: u64,
    bytes: u64,
    first_ns: i128,
    last_ns: i128,
    lateness: Vec<i64>,
    max_seq: Option<u32>,
    out_of_order: u64,
    offset_width_max: i128,
    offset_drift_max: i128,
}

impl Measurement {
    fn arrive(&mut self, at_ns: i128, payload: &[u8], target_ns: Option<i128>, seq: Option<u32>) {
        if self.count == 0 {
            self.first_ns = at_ns;
        }
        self.last_ns = at_ns;
        self.count += 1;
        self.bytes += payload.len() as u64;
        if let Some(seq) = seq {
            match self.max_seq {
                Some(max) if seq <= max => self.out_of_order += 1,
                _ => self.max_seq = Some(seq),
            }
        }
        if let Some(target) = target_ns {
            self.lateness.push((at_ns - target) as i64);
        }
    }

    fn json(&mut self, mode: &str) -> String {
        let mut l = std::mem::take(&mut self.lateness);
        l.sort_unstable();
        let pct = |q: f64| -> String {
            if l.is_empty() {
                return "null".into();
            }
            let rank = ((q * l.len() as f64).ceil() as usize).clamp(1, l.len());
            l[rank - 1].to_string()
        };
        let span = (self.last_ns - self.first_ns).max(0);
        let rate = if self.count > 1 && span > 0 {
            (self.count - 1) as f64 * 1e9 / span as f64
        } else {
            0.0
        };
        format!(
            "{{\"mode\":\"{mode}\",\"count\":{},\"bytes\":{},\"spanNs\":{span},\"ratePps\":{rate:.0},\
             \"maxSeq\":{},\"outOfOrder\":{},\"stamped\":{},\"early\":{},\"over1ms\":{},\
             \"minNs\":{},\"p50Ns\":{},\"p99Ns\":{},\"p999Ns\":{},\"maxNs\":{},\
             \"offsetWidthMaxNs\":{},\"offsetDriftMaxNs\":{}}}",
            self.count,
            self.bytes,
            self.max_seq.map_or("null".into(), |s| s.to_string()),
            self.out_of_order,
            l.len(),
            l.iter().filter(|&&x| x < 0).count(),
            l.iter().filter(|&&x| x > 1_000_000).count(),
            l.first().map_or("null".into(), |x| x.to_string()),
            pct(0.5),
            pct(0.99),
            pct(0.999),
            l.last().map_or("null".into(), |x| x.to_string()),
            self.offset_width_max,
            self.offset_drift_max,
        )
    }
}

fn main() {
    let args = common::args(1);
    let get = |k: &str, d: &str| args.get(k).cloned().unwrap_or_else(|| d.to_string());
    let mode = get("mode", "stamp");
    let stamp = mode == "stamp";
    let gro = get("gro", "0") == "1";
    // --payload udpcom: the datagrams carry udpcom's stream header (a native stream): the
    // target is its CLOCK_REALTIME target time (big-endian at byte 24), compared with the
    // kernel's realtime stamp as it is; the sequence number is at byte 16.
    let udpcom_header = get("payload", "plain") == "udpcom";
    let idle_ns = get("idle-ms", "1000").parse::<i128>().unwrap() * 1_000_000;
    let max_ns = get("max-s", "600").parse::<i128>().unwrap() * NS;
    if let Some(cpu) = args.get("cpu") {
        common::pin(cpu.parse().unwrap());
    }

    let bind: std::net::Ipv4Addr = get("bind", "127.0.0.1").parse().expect("--bind: an IPv4 address");
    let socket = std::net::UdpSocket::bind((bind, get("port", "0").parse::<u16>().unwrap())).unwrap();
    if let Some(group) = args.get("join") {
        let group: std::net::Ipv4Addr = group.parse().expect("--join: an IPv4 group");
        let on: std::net::Ipv4Addr = get("join-on", "0.0.0.0").parse().expect("--join-on: an IPv4 address");
        socket.join_multicast_v4(&group, &on).expect("IP_ADD_MEMBERSHIP");
    }
    let fd = socket.as_raw_fd();
    // A 64 MiB receive buffer (as root, past rmem_max) so that the instrument never drops.
    if set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 64 << 20).is_err() {
        let _ = set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 64 << 20);
    }
    if stamp {
        let flags = libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
        set_int(fd, libc::SOL_SOCKET, SO_TIMESTAMPING, flags as i32).expect("SO_TIMESTAMPING");
    }
    if gro {
        set_int(fd, libc::SOL_UDP, libc::UDP_GRO, 1).expect("UDP_GRO");
    }
    socket.set_nonblocking(true).unwrap();
    println!("READY {}", socket.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();

    // Commands from stdin, on a thread of their own.
    let (commands, inbox) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if commands.send(line.trim().to_string()).is_err() {
                return;
            }
        }
        let _ = commands.send("quit".into());
    });

    let buffer_size = if gro { GRO_BUFFER } else { BUFFER };
    let mut buffers = vec![vec![0u8; buffer_size]; BATCH];
    let mut control = vec![[0u64; CONTROL / 8]; BATCH];
    let mut m = Measurement::default();
    let started = clock(libc::CLOCK_MONOTONIC);
    let (mut offset, mut width) = sample_offset();
    let mut sampled_at = started;
    loop {
        let now = clock(libc::CLOCK_MONOTONIC);
        if now - sampled_at >= 10_000_000 {
            let (o, w) = sample_offset();
            m.offset_drift_max = m.offset_drift_max.max((o - offset).abs());
            (offset, width, sampled_at) = (o, w, now);
        }
        m.offset_width_max = m.offset_width_max.max(width);
        match inbox.try_recv() {
            Ok(cmd) if cmd == "report" => {
                println!("{}", m.json(&mode));
                std::io::stdout().flush().unwrap();
                m = Measurement::default();
            }
            Ok(cmd) if cmd == "peek" => {
                let lateness = m.lateness.clone();
                println!("{}", m.json(&mode));
                std::io::stdout().flush().unwrap();
                m.lateness = lateness;
            }
            Ok(cmd) if cmd == "quit" => break,
            _ => {}
        }
        if (m.count > 0 && now - m.last_ns > idle_ns) || now - started > max_ns {
            break;
        }

        let mut iovecs: Vec<libc::iovec> = buffers
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: buffer_size,
            })
            .collect();
        let mut headers: Vec<libc::mmsghdr> = (0..BATCH)
            .map(|i| {
                // SAFETY: an all-zero mmsghdr is valid.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = &mut iovecs[i];
                h.msg_hdr.msg_iovlen = 1;
                if stamp || gro {
                    h.msg_hdr.msg_control = control[i].as_mut_ptr().cast();
                    h.msg_hdr.msg_controllen = CONTROL;
                }
                h
            })
            .collect();
        // SAFETY: headers point at live buffers for the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd. Wake at least every 5 ms to re-sample the offset and
            // look at the commands.
            unsafe { libc::poll(&mut pfd, 1, 5) };
            continue;
        }
        let read_at = clock(libc::CLOCK_MONOTONIC);
        for (i, h) in headers.iter().take(n as usize).enumerate() {
            let buffer = &buffers[i][..h.msg_len as usize];
            let segment = if gro { gro_segment(&h.msg_hdr) } else { None };
            let size = segment.unwrap_or(buffer.len()).max(1);
            for payload in buffer.chunks(size) {
                let be_u64 = |at: usize| u64::from_be_bytes(payload[at..at + 8].try_into().unwrap()) as i128;
                let is_udpcom = udpcom_header && payload.len() >= 56 && &payload[..4] == b"UDPC";
                let (target, seq) = if is_udpcom {
                    (Some(be_u64(24)).filter(|&t| t > 0), Some(be_u64(16) as u32))
                } else {
                    (
                        (payload.len() >= 8)
                            .then(|| u64::from_le_bytes(payload[..8].try_into().unwrap()) as i128)
                            .filter(|&t| t > 0),
                        (payload.len() >= 12).then(|| u32::from_le_bytes(payload[8..12].try_into().unwrap())),
                    )
                };
                let mut at = read_at;
                if stamp {
                    match kernel_stamp(&h.msg_hdr) {
                        // A udpcom header's target is on the realtime clock, as the stamp is.
                        Some(realtime) => at = if is_udpcom { realtime } else { realtime - offset },
                        None => panic!("a datagram without SO_TIMESTAMPING software stamp"),
                    }
                }
                m.arrive(at, payload, if stamp { target } else { None }, seq);
            }
        }
    }
    println!("{}", m.json(&mode));
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_millis(1));
}

/// The segment size of a coalesced buffer (`UDP_GRO` control message), if it is one.
fn gro_segment(header: &libc::msghdr) -> Option<usize> {
    // SAFETY: as in kernel_stamp; the payload of UDP_GRO is an int.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size = libc::CMSG_DATA(cmsg).cast::<i32>().read_unaligned();
                return usize::try_from(size).ok().filter(|&s| s > 0);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// The software RX stamp (CLOCK_REALTIME ns) of a received datagram.
fn kernel_stamp(header: &libc::msghdr) -> Option<i128> {
    // SAFETY: the header was filled by recvmmsg; CMSG_* stay inside its control buffer, and
    // the payload of SCM_TIMESTAMPING is three timespecs (software, legacy, hardware).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == SO_TIMESTAMPING {
                let ts = libc::CMSG_DATA(cmsg).cast::<libc::timespec>().read_unaligned();
                if ts.tv_sec != 0 || ts.tv_nsec != 0 {
                    return Some(ts.tv_sec as i128 * NS + ts.tv_nsec as i128);
                }
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}
