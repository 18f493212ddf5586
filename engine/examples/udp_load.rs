//! The benchmark's load generator and pinger: plain sockets, no udpcom code in the path.
//!
//! ```text
//! udp_load blast --port P --rate PPS --count N [--cpu C] [--size 64]
//! udp_load ping  --port P --count N [--cpu C] [--gap-us 200] [--timeout-ms 200] [--size 64]
//!                [--local-port L]
//! udp_load gso   --port P --count N [--rate PPS] [--seconds S] [--cpu C] [--size 64] [--segments 64]
//! ```
//!
//! - `blast` sends `count` datagrams to 127.0.0.1:port at a fixed offered rate: batches of
//!   `rate / 50_000` (1..32) datagrams with `sendmmsg`, each batch at its absolute time on
//!   CLOCK_MONOTONIC (sleep with 1 ns timer slack; a late batch leaves at once, so the average
//!   rate holds). Payload: bytes 0..8 the departure time, 8..12 the sequence number.
//! - `ping` sends one datagram, waits for it to come back, and records the round trip; then
//!   waits `gap-us` and sends the next. Lost pings (no echo within the timeout) are counted.
//!
//! - `gso` sends `count` datagrams as UDP GSO messages (`UDP_SEGMENT`) of `segments` datagrams
//!   each, one `sendmsg` per message: paced at `rate` (a message at its absolute time), or as
//!   fast as it can without `--rate` (for at most `--seconds`). Payload: bytes 8..12 the
//!   sequence number. The C-level ceiling of the benchmark's GSO rows.
//!
//! Each prints `READY <local port>` first and one JSON line with its result at the end.

mod common;

use std::io::Write;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use common::{now_ns, percentile, sleep_until};

/// Pins the thread and sets its timer slack to 1 ns, so paced sleeps are not rounded up.
fn pin(cpu: usize) {
    common::pin(cpu);
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1) };
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let args = common::args(2);
    let get = |k: &str, d: &str| args.get(k).cloned().unwrap_or_else(|| d.to_string());
    if let Some(cpu) = args.get("cpu") {
        pin(cpu.parse().unwrap());
    }
    let size: usize = get("size", "64").parse().unwrap();
    let count: u64 = get("count", "1000").parse().unwrap();
    let socket = UdpSocket::bind(("127.0.0.1", get("local-port", "0").parse::<u16>().unwrap())).unwrap();
    socket
        .connect(("127.0.0.1", get("port", "9").parse::<u16>().unwrap()))
        .unwrap();
    println!("READY {}", socket.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    let result = match mode.as_str() {
        "blast" => blast(&socket, get("rate", "10000").parse().unwrap(), count, size),
        "ping" => ping(
            &socket,
            count,
            size,
            get("gap-us", "200").parse::<u64>().unwrap() * 1000,
            get("timeout-ms", "200").parse::<i32>().unwrap(),
        ),
        "gso" => gso(
            &socket,
            args.get("rate").map(|r| r.parse().unwrap()),
            count,
            get("seconds", "3600").parse().unwrap(),
            size,
            get("segments", "64").parse().unwrap(),
        ),
        _ => panic!("usage: udp_load blast|ping|gso --port P ..."),
    };
    println!("{result}");
}

fn blast(socket: &UdpSocket, rate: f64, count: u64, size: usize) -> String {
    let batch = ((rate / 50_000.0) as u64).clamp(1, 32);
    let period_ns = batch as f64 * 1e9 / rate;
    let mut payloads = vec![vec![0u8; size.max(12)]; batch as usize];
    let start = now_ns() + 1_000_000;
    let (mut sent, mut errors, mut k) = (0u64, 0u64, 0u64);
    while sent < count {
        let due = start + (k as f64 * period_ns) as u64;
        k += 1;
        if due > now_ns() {
            sleep_until(due);
        }
        let n = batch.min(count - sent) as usize;
        let departure = now_ns();
        let mut iovecs: Vec<libc::iovec> = Vec::with_capacity(n);
        for (i, p) in payloads.iter_mut().take(n).enumerate() {
            p[..8].copy_from_slice(&departure.to_le_bytes());
            p[8..12].copy_from_slice(&((sent + i as u64) as u32).to_le_bytes());
            iovecs.push(libc::iovec {
                iov_base: p.as_mut_ptr().cast(),
                iov_len: p.len(),
            });
        }
        let mut headers: Vec<libc::mmsghdr> = (0..n)
            .map(|i| {
                // SAFETY: an all-zero mmsghdr is valid.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = &mut iovecs[i];
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        let mut done = 0;
        while done < n {
            // SAFETY: the headers point at live payloads for the call.
            let r = unsafe { libc::sendmmsg(socket.as_raw_fd(), headers[done..].as_mut_ptr(), (n - done) as u32, 0) };
            if r < 0 {
                errors += 1;
                if errors > 1_000_000 {
                    panic!("sendmmsg: {}", std::io::Error::last_os_error());
                }
                continue;
            }
            done += r as usize;
        }
        sent += n as u64;
    }
    let span = now_ns() - start;
    format!(
        "{{\"sent\":{sent},\"spanNs\":{span},\"offeredPps\":{rate},\"achievedPps\":{:.0},\"batch\":{batch},\"errors\":{errors}}}",
        sent as f64 * 1e9 / span as f64
    )
}

fn ping(socket: &UdpSocket, count: u64, size: usize, gap_ns: u64, timeout_ms: i32) -> String {
    let mut payload = vec![0u8; size.max(12)];
    let mut back = vec![0u8; 65_536];
    let mut rtts = Vec::with_capacity(count as usize);
    let mut lost = 0u64;
    socket.set_nonblocking(true).unwrap();
    for seq in 0..count {
        let sent_at = now_ns();
        payload[..8].copy_from_slice(&sent_at.to_le_bytes());
        payload[8..12].copy_from_slice(&(seq as u32).to_le_bytes());
        if socket.send(&payload).is_err() {
            lost += 1;
            continue;
        }
        loop {
            match socket.recv(&mut back) {
                Ok(n) if n >= 12 && back[8..12] == payload[8..12] => {
                    rtts.push(now_ns() - sent_at);
                    break;
                }
                Ok(_) => continue, // a late echo of an earlier ping
                Err(_) => {
                    let waited = (now_ns() - sent_at) / 1_000_000;
                    if waited >= timeout_ms as u64 {
                        lost += 1;
                        break;
                    }
                    let mut pfd = libc::pollfd {
                        fd: socket.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut pfd, 1, timeout_ms - waited as i32) };
                }
            }
        }
        sleep_until(now_ns() + gap_ns);
    }
    rtts.sort_unstable();
    format!(
        "{{\"count\":{},\"lost\":{lost},\"minNs\":{},\"p50Ns\":{},\"p99Ns\":{},\"p999Ns\":{},\"maxNs\":{}}}",
        rtts.len(),
        rtts.first().copied().unwrap_or(0),
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.99),
        percentile(&rtts, 0.999),
        rtts.last().copied().unwrap_or(0)
    )
}

fn gso(socket: &UdpSocket, rate: Option<f64>, count: u64, seconds: f64, size: usize, segments: usize) -> String {
    let size = size.max(12);
    let mut message = vec![0u8; size * segments];
    // A control buffer for one UDP_SEGMENT (a u16), aligned for cmsghdr.
    let mut control = [0u64; 4];
    let period_ns = rate.map(|r| segments as f64 * 1e9 / r);
    let start = now_ns() + 1_000_000;
    let end = start + (seconds * 1e9) as u64;
    let (mut sent, mut errors, mut k) = (0u64, 0u64, 0u64);
    while sent < count && now_ns() < end {
        if let Some(period) = period_ns {
            let due = start + (k as f64 * period) as u64;
            k += 1;
            if due > now_ns() {
                sleep_until(due);
            }
        }
        let n = (segments as u64).min(count - sent) as usize;
        for i in 0..n {
            message[i * size + 8..i * size + 12].copy_from_slice(&((sent + i as u64) as u32).to_le_bytes());
        }
        let mut iov = libc::iovec {
            iov_base: message.as_mut_ptr().cast(),
            iov_len: n * size,
        };
        // SAFETY: an all-zero msghdr is valid; it points at `iov` and `control`, which live for
        // the call; CMSG_* stay inside `control`, which has room for one cmsg of a u16.
        let r = unsafe {
            let mut header: libc::msghdr = std::mem::zeroed();
            header.msg_iov = &mut iov;
            header.msg_iovlen = 1;
            header.msg_control = control.as_mut_ptr().cast();
            header.msg_controllen = libc::CMSG_SPACE(2) as usize;
            let cmsg = libc::CMSG_FIRSTHDR(&header);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(2) as usize;
            libc::CMSG_DATA(cmsg).cast::<u16>().write_unaligned(size as u16);
            libc::sendmsg(socket.as_raw_fd(), &header, 0)
        };
        if r < 0 {
            errors += 1;
            if errors > 1_000_000 {
                panic!("sendmsg: {}", std::io::Error::last_os_error());
            }
            continue;
        }
        sent += n as u64;
    }
    let span = now_ns() - start;
    format!(
        "{{\"sent\":{sent},\"spanNs\":{span},\"offeredPps\":{},\"achievedPps\":{:.0},\"segments\":{segments},\"errors\":{errors}}}",
        rate.unwrap_or(0.0),
        sent as f64 * 1e9 / span as f64
    )
}
