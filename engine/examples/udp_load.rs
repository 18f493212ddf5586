//! The benchmark's load generator and pinger: plain sockets, no udpcom code in the path.
//!
//! ```text
//! udp_load blast --port P --rate PPS --count N [--cpu C] [--size 64]
//! udp_load ping  --port P --count N [--cpu C] [--gap-us 200] [--timeout-ms 200] [--size 64]
//!                [--local-port L]
//! ```
//!
//! - `blast` sends `count` datagrams to 127.0.0.1:port at a fixed offered rate: batches of
//!   `rate / 50_000` (1..32) datagrams with `sendmmsg`, each batch at its absolute time on
//!   CLOCK_MONOTONIC (sleep with 1 ns timer slack; a late batch leaves at once, so the average
//!   rate holds). Payload: bytes 0..8 the departure time, 8..12 the sequence number.
//! - `ping` sends one datagram, waits for it to come back, and records the round trip; then
//!   waits `gap-us` and sends the next. Lost pings (no echo within the timeout) are counted.
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
        _ => panic!("usage: udp_load blast|ping --port P ..."),
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
