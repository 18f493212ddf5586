//! The best native timed sender, written the obvious way: the reference that udpcom's timed
//! sending is compared with (benchmark section 3). Plain std and libc, no udpcom code.
//!
//! ```text
//! timed_sender --port P --rate PPS --count N [--cpu C] [--priority 80] [--spin-us 20]
//!              [--size 64] [--start-ms 50]
//! ```
//!
//! Sends `count` datagrams to 127.0.0.1:port, packet i due at start + i / rate (start is
//! `start-ms` after the program is ready). Each packet is prepared (bytes 0..8 its target time,
//! u64 little-endian CLOCK_MONOTONIC ns; 8..12 its sequence number), then the thread sleeps with
//! `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)` until `spin-us` before the target, spins on
//! the clock to the target and sends it with one `send()`. The thread is set up as a real-time
//! programmer would: memory locked (`mlockall`, reported as `memoryLocked`), pinned to `cpu`,
//! SCHED_FIFO at `priority` (0: normal scheduling, then with 1 ns timer slack). A target
//! already past is sent at once. It sleeps before each packet, which keeps it clear of RT
//! throttling (a SCHED_FIFO loop that never sleeps is stopped once it used its share).
//!
//! Prints `READY <local port>` once set up, then one JSON line at the end: packets sent, send
//! errors, its own lateness (the clock read right before `send()` − target) percentiles, and
//! the CPU time it used while sending.

mod common;

use std::io::Write;
use std::net::UdpSocket;

use common::{now_ns, percentile, process_cpu_ns, sleep_until};

/// mlockall (returns whether it worked: without the privilege the sender still runs), then
/// SCHED_FIFO at `priority`, or 1 ns timer slack for normal scheduling.
fn real_time(priority: i32) -> bool {
    // SAFETY: plain flags.
    let locked = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0;
    if priority > 0 {
        let param = libc::sched_param {
            sched_priority: priority,
        };
        // SAFETY: pid 0 is the calling thread; `param` lives for the call.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
            panic!(
                "sched_setscheduler(SCHED_FIFO, {priority}): {}",
                std::io::Error::last_os_error()
            );
        }
    } else {
        // SAFETY: PR_SET_TIMERSLACK takes a plain integer.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1) };
    }
    locked
}

fn main() {
    let args = common::args(1);
    let get = |k: &str, d: &str| -> u64 {
        args.get(k)
            .map_or(d, String::as_str)
            .parse()
            .unwrap_or_else(|_| panic!("--{k} takes an integer"))
    };
    let (rate, count, spin_ns) = (get("rate", "10000"), get("count", "1000"), get("spin-us", "20") * 1000);
    let period_ns = 1_000_000_000 / rate.max(1);
    if let Some(cpu) = args.get("cpu") {
        common::pin(cpu.parse().expect("--cpu takes a CPU number"));
    }
    let locked = real_time(get("priority", "80") as i32);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.connect(("127.0.0.1", get("port", "9") as u16)).expect("connect");
    let mut payload = vec![0u8; (get("size", "64") as usize).max(12)];
    println!("READY {}", socket.local_addr().expect("local address").port());
    std::io::stdout().flush().expect("stdout");

    let cpu_start = process_cpu_ns();
    let start_ns = now_ns() + get("start-ms", "50") * 1_000_000;
    let mut lateness = Vec::with_capacity(count as usize);
    let (mut sent, mut errors) = (0u64, 0u64);
    for seq in 0..count {
        let target_ns = start_ns + seq * period_ns;
        payload[..8].copy_from_slice(&target_ns.to_le_bytes());
        payload[8..12].copy_from_slice(&(seq as u32).to_le_bytes());
        if target_ns > now_ns() + spin_ns {
            sleep_until(target_ns - spin_ns);
        }
        let mut departure_ns = now_ns();
        while departure_ns < target_ns {
            departure_ns = now_ns();
        }
        match socket.send(&payload) {
            Ok(_) => sent += 1,
            Err(_) => errors += 1,
        }
        lateness.push(departure_ns - target_ns);
    }
    let cpu_used = process_cpu_ns() - cpu_start;
    lateness.sort_unstable();
    println!(
        "{{\"sent\":{sent},\"errors\":{errors},\"periodNs\":{period_ns},\"spinNs\":{spin_ns},\"cpuNs\":{cpu_used},\
         \"memoryLocked\":{locked},\"senderP50Ns\":{},\"senderP99Ns\":{},\"senderMaxNs\":{}}}",
        percentile(&lateness, 0.5),
        percentile(&lateness, 0.99),
        lateness.last().copied().unwrap_or(0)
    );
}
