//! What the machine does to a timed thread: how late it wakes up from a sleep to an absolute
//! deadline (with and without naps), and how often it loses the CPU while it runs. A thin
//! caller of the engine's [`probe_wakeups`] (`engine/src/probe.rs`, which says what each phase
//! measures); `udpcom doctor` runs the same probe.
//!
//! ```text
//! wake_probe [--seconds 5] [--period-us 1000] [--nap-us 150] [--cpu 1] [--priority 80]
//! wake_probe --spin-ms 900 [--cpu 1] [--priority 80]
//! ```
//!
//! Without `--spin-ms`: timed wake-ups `period-us` apart for `seconds`, napping at most
//! `nap-us` in the last 5 ms before each deadline (`--nap-us 0`: one sleep per deadline, as with
//! `napNs: 0`); prints one JSON line of wake-up lateness percentiles in ns. This is the
//! measurement behind the `napNs` default (README, Timing).
//!
//! With `--spin-ms`: spins for that long (under SCHED_FIFO at most 900 ms, or RT throttling
//! would show up as a 50 ms gap) and prints the gaps of more than 5 µs between two clock reads:
//! time the thread did not run although it never blocked.

mod common;

use udpcom_engine::{probe_wakeups, WakeProbeOptions};

fn main() {
    let args = common::args(1);
    let get = |name: &str, default: u64| {
        args.get(name)
            .map_or(default, |v| v.parse().expect("usage: --name <integer> ..."))
    };
    let spin_ms = args.contains_key("spin-ms").then(|| get("spin-ms", 0));
    let options = WakeProbeOptions {
        duration_ns: if spin_ms.is_some() {
            0
        } else {
            get("seconds", 5) * 1_000_000_000
        },
        period_ns: get("period-us", 1000) * 1000,
        nap_ns: get("nap-us", 150) * 1000,
        spin_ns: spin_ms.unwrap_or(0) * 1_000_000,
        cpu: Some(get("cpu", 1) as usize),
        priority: Some(get("priority", 80) as i32).filter(|&p| p > 0),
    };
    let probe = probe_wakeups(&options).unwrap_or_else(|err| panic!("wake_probe: {err}"));
    if let Some(w) = probe.wakeups {
        println!(
            "{{\"periodNs\":{},\"napNs\":{},\"count\":{},\"sleeps\":{},\"p50Ns\":{},\"p99Ns\":{},\"p999Ns\":{},\"maxNs\":{},\"over1ms\":{}}}",
            options.period_ns, options.nap_ns, w.count, w.sleeps, w.p50_ns, w.p99_ns, w.p999_ns, w.max_ns, w.over_1ms
        );
    }
    if let Some(c) = probe.cpu_loss {
        println!(
            "{{\"spinNs\":{},\"gaps\":{},\"gapP50Ns\":{},\"gapP99Ns\":{},\"gapMaxNs\":{},\"lostNs\":{},\"intervalP50Ns\":{}}}",
            c.spin_ns, c.gaps, c.gap_p50_ns, c.gap_p99_ns, c.gap_max_ns, c.lost_ns, c.interval_p50_ns
        );
    }
}
