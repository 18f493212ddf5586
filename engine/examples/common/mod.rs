//! What the example programs share: their `--name value` arguments, pinning to a CPU, the
//! clocks they read and the absolute sleep they pace themselves with.
//! Plain std and libc, no udpcom code, so the instruments stay independent of what they
//! measure. Each program uses part of it.
#![allow(dead_code)]

use std::collections::HashMap;

/// The `--name value` pairs after the first `skip` arguments (the program, and a mode word
/// for programs that have one). A name without a value maps to "".
pub fn args(skip: usize) -> HashMap<String, String> {
    let argv: Vec<String> = std::env::args().skip(skip).collect();
    argv.chunks(2)
        .map(|kv| {
            (
                kv[0].trim_start_matches("--").to_string(),
                kv.get(1).cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// Pins the calling thread to `cpu`; panics with the OS error if it cannot.
pub fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays inside it; pid 0 is this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            panic!("sched_setaffinity({cpu}): {}", std::io::Error::last_os_error());
        }
    }
}

const NS: u64 = 1_000_000_000;

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer for the call.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * NS + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC in ns (the clock udpcom's targets and node's process.hrtime use).
pub fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time this process has used so far, every thread (ended ones included), in ns.
pub fn process_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Sleeps until `deadline_ns` on CLOCK_MONOTONIC (an absolute deadline, so that lateness does
/// not add up). An interrupted sleep returns early: callers that need the deadline spin after.
pub fn sleep_until(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / NS) as i64,
        tv_nsec: (deadline_ns % NS) as i64,
    };
    // SAFETY: a valid timespec; a null remainder is allowed for absolute sleeps.
    unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut()) };
}

/// Nearest-rank percentile `q` (0..=1) of sorted values; 0 for none.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}
