//! What the machine does to a timed thread: how late it wakes up from a sleep to an absolute
//! deadline (with and without naps), and how often it loses the CPU while it runs.
//!
//! ```text
//! wake_probe [--seconds 5] [--period-us 1000] [--nap-us 150] [--cpu 1] [--priority 80]
//! wake_probe --spin-ms 900 [--cpu 1] [--priority 80]
//! ```
//!
//! Without `--spin-ms`: waits for deadlines `period-us` apart with the engine's own
//! [`DeadlineWaiter`], spin window 0 (so nothing hides a late wake-up), napping at most `nap-us` in the last 5 ms before each
//! deadline (`--nap-us 0`: one sleep per deadline, as with `napNs: 0`). Prints one JSON line:
//! wake-up lateness percentiles in ns. The thread is set up like udpcom's sender (timer slack
//! 1 ns, pinned, SCHED_FIFO when `--priority` is above 0). This is the measurement behind the
//! `napNs` default (README, Timing).
//!
//! With `--spin-ms`: reads the clock in a tight loop for that long (under SCHED_FIFO keep it
//! below 950 ms, or RT throttling shows up as a 50 ms gap) and reports every gap of more than
//! 5 µs between two reads: time the thread did not run although it never blocked
//! (interrupts, and on a VM the host taking the CPU). A packet due inside such a gap leaves
//! late whatever the sender does.

mod common;

use std::sync::atomic::AtomicBool;

use udpcom_engine::{now_ns, DeadlineWaiter, RunBudget, SpinPolicy, ThreadSetup};

fn main() {
    let args = common::args(1);
    let get = |name: &str, default: u64| {
        args.get(name)
            .map_or(default, |v| v.parse().expect("usage: --name <integer> ..."))
    };
    let (seconds, period_ns, nap_ns) = (
        get("seconds", 5),
        get("period-us", 1000) * 1000,
        get("nap-us", 150) * 1000,
    );
    let priority = Some(get("priority", 80) as i32).filter(|&p| p > 0);
    ThreadSetup {
        cpu: Some(get("cpu", 1) as usize),
        priority,
        lock_stack: false,
    }
    .apply()
    .expect("thread set-up (pinning, SCHED_FIFO) failed");

    if args.contains_key("spin-ms") {
        return spin(get("spin-ms", 0));
    }
    let mut waiter = DeadlineWaiter::new(SpinPolicy::Fixed(0), nap_ns);
    let mut budget = RunBudget::new(priority);
    let stop = AtomicBool::new(false);
    let start = now_ns();
    let mut lateness: Vec<u64> = Vec::new();
    let mut deadline_ns = start;
    while deadline_ns - start < seconds * 1_000_000_000 {
        deadline_ns += period_ns;
        waiter.wait_until(deadline_ns, &stop, &mut budget);
        lateness.push(now_ns() - deadline_ns);
    }
    lateness.sort_unstable();
    let at = |q: f64| lateness[((lateness.len() - 1) as f64 * q) as usize];
    println!(
        "{{\"periodNs\":{period_ns},\"napNs\":{nap_ns},\"count\":{},\"sleeps\":{},\"p50Ns\":{},\"p99Ns\":{},\"p999Ns\":{},\"maxNs\":{},\"over1ms\":{}}}",
        lateness.len(),
        waiter.sleeps(),
        at(0.5),
        at(0.99),
        at(0.999),
        lateness[lateness.len() - 1],
        lateness.iter().filter(|&&ns| ns > 1_000_000).count()
    );
}

/// Spins for `spin_ms` and prints the gaps between clock reads longer than 5 µs.
fn spin(spin_ms: u64) {
    const GAP_NS: u64 = 5_000;
    let start = now_ns();
    let end = start + spin_ms * 1_000_000;
    let (mut last, mut gaps, mut gap_starts) = (start, Vec::new(), Vec::new());
    while last < end {
        let now = now_ns();
        if now - last > GAP_NS {
            gaps.push(now - last);
            gap_starts.push(last);
        }
        last = now;
    }
    let mut intervals: Vec<u64> = gap_starts.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    intervals.sort_unstable();
    let at = |v: &[u64], q: f64| v.get(((v.len().max(1) - 1) as f64 * q) as usize).copied().unwrap_or(0);
    println!(
        "{{\"spinNs\":{},\"gaps\":{},\"gapP50Ns\":{},\"gapP99Ns\":{},\"gapMaxNs\":{},\"lostNs\":{},\"intervalP50Ns\":{}}}",
        spin_ms * 1_000_000,
        gaps.len(),
        at(&gaps, 0.5),
        at(&gaps, 0.99),
        gaps.last().copied().unwrap_or(0),
        gaps.iter().sum::<u64>(),
        at(&intervals, 0.5)
    );
}
