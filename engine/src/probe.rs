//! What the machine does to a timed thread: how late it wakes up from a sleep to an absolute
//! deadline, and how often it loses the CPU while it runs.
//!
//! [`probe_wakeups`] runs two phases on a thread of its own, set up like udpcom's sender
//! (timer slack 1 ns, pinned to `cpu`, SCHED_FIFO at `priority`), and joins it:
//!
//! 1. **Timed wake-ups** for `duration_ns`: waits for deadlines `period_ns` apart with the
//!    engine's own [`DeadlineWaiter`], spin window 0 (so that nothing hides a late wake-up),
//!    napping at most `nap_ns` in the last 5 ms before each deadline (0: one sleep per
//!    deadline, as with `napNs: 0`), and records how late each wake-up is.
//! 2. **CPU loss** for `spin_ns`: reads the clock in a tight loop and records every gap of more
//!    than [`GAP_NS`] between two reads: time the thread did not run although it never blocked
//!    (interrupts, other threads of higher priority, and on a virtual machine the host taking
//!    the CPU). A packet due inside such a gap leaves late whatever the sender does, so these
//!    gaps set the floor of the p99 lateness on the machine.
//!
//! The thread that calls it is not touched (its scheduling, affinity and slack stay as they
//! are), so it can be called from a Node.js worker pool thread.

use std::sync::atomic::AtomicBool;

use crate::clock::{DeadlineWaiter, SpinPolicy};
use crate::config::{format_number, DEFAULT_NAP_NS, MAX_CPU, MAX_NAP_NS, MAX_PRIORITY};
use crate::error::{Error, Result};
use crate::rt::{RunBudget, ThreadSetup};
use crate::time::now_ns;

/// A gap between two clock reads of the spin loop longer than this counts as CPU lost (ns):
/// well above the ~20-50 ns a clock read takes, below the shortest interrupt seen on the VMs.
pub(crate) const GAP_NS: u64 = 5_000;
/// Longest timed wake-up phase (ns).
pub(crate) const MAX_PROBE_DURATION_NS: u64 = 60_000_000_000;
/// Most wake-ups one probe records (duration / period), so that its memory stays bounded (8 MB).
pub(crate) const MAX_WAKEUPS: u64 = 1_000_000;
/// Longest CPU-loss phase (ns).
pub(crate) const MAX_SPIN_NS: u64 = 2_000_000_000;
/// Longest CPU-loss phase under SCHED_FIFO (ns): the kernel's RT throttling stops a SCHED_FIFO
/// thread that runs for more than `sched_rt_runtime_us` (950 ms by default) of every second,
/// which the probe would report as one 50 ms gap.
pub(crate) const MAX_FIFO_SPIN_NS: u64 = 900_000_000;

/// What [`probe_wakeups`] measures and how its thread is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WakeProbeOptions {
    /// Length of the timed wake-up phase, ns (0: skip it; at most [`MAX_PROBE_DURATION_NS`]).
    pub duration_ns: u64,
    /// Time between deadlines, ns (10 µs..1 s).
    pub period_ns: u64,
    /// Longest nap in the last 5 ms before a deadline, ns (0..20 ms; 0: one sleep per deadline).
    pub nap_ns: u64,
    /// Length of the CPU-loss phase, ns (0: skip it; at most [`MAX_SPIN_NS`], and
    /// [`MAX_FIFO_SPIN_NS`] under SCHED_FIFO).
    pub spin_ns: u64,
    /// CPU to pin the probe thread to (0..=1023); `None`: not pinned.
    pub cpu: Option<usize>,
    /// SCHED_FIFO priority 1..=99; `None`: normal scheduling.
    pub priority: Option<i32>,
}

impl Default for WakeProbeOptions {
    /// One second of wake-ups 1 ms apart with the sender's default naps (150 µs), then half a
    /// second of spinning; not pinned, normal scheduling.
    fn default() -> Self {
        WakeProbeOptions {
            duration_ns: 1_000_000_000,
            period_ns: 1_000_000,
            nap_ns: DEFAULT_NAP_NS,
            spin_ns: 500_000_000,
            cpu: None,
            priority: None,
        }
    }
}

impl WakeProbeOptions {
    /// Checks the values (ERR_OUT_OF_RANGE naming the field and its range).
    pub fn validate(&self) -> Result<()> {
        let range = |name: &str, value: i128, min: i128, max: i128| -> Result<()> {
            if value < min || value > max {
                let range = format!(">= {} && <= {}", format_number(min as f64), format_number(max as f64));
                return Err(Error::out_of_range(
                    &format!("\"options.{name}\""),
                    &range,
                    format_number(value as f64),
                ));
            }
            Ok(())
        };
        range("durationNs", self.duration_ns.into(), 0, MAX_PROBE_DURATION_NS.into())?;
        range("periodNs", self.period_ns.into(), 10_000, 1_000_000_000)?;
        range("napNs", self.nap_ns.into(), 0, MAX_NAP_NS.into())?;
        if let Some(cpu) = self.cpu {
            // Beyond a cpu_set_t, pinning would not even reach the kernel.
            range("cpu", cpu as i128, 0, MAX_CPU as i128)?;
        }
        if let Some(priority) = self.priority {
            range("priority", priority.into(), 1, MAX_PRIORITY.into())?;
        }
        let max_spin = if self.priority.is_some() {
            MAX_FIFO_SPIN_NS
        } else {
            MAX_SPIN_NS
        };
        range("spinNs", self.spin_ns.into(), 0, max_spin.into())?;
        let wakeups = self.duration_ns / self.period_ns;
        if wakeups > MAX_WAKEUPS {
            return Err(Error::out_of_range(
                "\"options.durationNs / options.periodNs\"",
                &format!("<= {}", format_number(MAX_WAKEUPS as f64)),
                format_number(wakeups as f64),
            ));
        }
        Ok(())
    }
}

/// How late timed wake-ups were (wake-up time − deadline, CLOCK_MONOTONIC ns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WakeLateness {
    /// Deadlines waited for.
    pub count: u64,
    /// Sleep system calls taken, naps included.
    pub sleeps: u64,
    /// Median lateness, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// Largest lateness, ns.
    pub max_ns: u64,
    /// Wake-ups more than 1 ms late.
    pub over_1ms: u64,
}

/// How often and for how long a running thread lost the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuLoss {
    /// How long the thread spun, ns.
    pub spin_ns: u64,
    /// Gaps of more than [`GAP_NS`] between two clock reads.
    pub gaps: u64,
    /// Median gap length, ns (0 without gaps).
    pub gap_p50_ns: u64,
    /// 99th percentile gap length, ns.
    pub gap_p99_ns: u64,
    /// Longest gap, ns.
    pub gap_max_ns: u64,
    /// Sum of all gaps: CPU time the thread lost, ns.
    pub lost_ns: u64,
    /// Median time from the start of one gap to the start of the next, ns (0 with fewer than
    /// two gaps): the period of whatever takes the CPU (1 ms for a 1000 Hz host tick).
    pub interval_p50_ns: u64,
}

/// The result of [`probe_wakeups`]: a phase whose length was 0 is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WakeProbe {
    /// The timed wake-up phase.
    pub wakeups: Option<WakeLateness>,
    /// The CPU-loss phase.
    pub cpu_loss: Option<CpuLoss>,
}

/// Runs the probe on a thread of its own (see the module docs) and returns what it measured.
/// Fails with ERR_OUT_OF_RANGE for bad options, and with the OS error (EPERM from
/// sched_setscheduler, EINVAL from sched_setaffinity, with a hint) when the thread cannot be
/// set up as asked.
pub fn probe_wakeups(options: &WakeProbeOptions) -> Result<WakeProbe> {
    options.validate()?;
    let options = *options;
    let probe = std::thread::Builder::new()
        .name("udpcom-probe".into())
        .spawn(move || -> Result<WakeProbe> {
            ThreadSetup {
                cpu: options.cpu,
                priority: options.priority,
                lock_stack: false,
            }
            .apply()?;
            Ok(WakeProbe {
                wakeups: (options.duration_ns > 0).then(|| timed_wakeups(&options)),
                cpu_loss: (options.spin_ns > 0).then(|| spin(options.spin_ns)),
            })
        })
        .map_err(|err| Error::from_io("pthread_create", &err, "probe thread"))?;
    probe
        .join()
        .unwrap_or_else(|_| Err(Error::internal("the wake-up probe thread panicked")))
}

fn timed_wakeups(options: &WakeProbeOptions) -> WakeLateness {
    let mut waiter = DeadlineWaiter::new(SpinPolicy::Fixed(0), options.nap_ns);
    let mut budget = RunBudget::new(options.priority);
    let never_stop = AtomicBool::new(false);
    let start_ns = now_ns();
    let count = options.duration_ns / options.period_ns;
    let mut lateness_ns: Vec<u64> = Vec::with_capacity(count as usize);
    for tick in 1..=count {
        // From the start and the tick number, never accumulated: a late wake-up does not move
        // the deadlines after it.
        let deadline_ns = start_ns + tick * options.period_ns;
        waiter.wait_until(deadline_ns, &never_stop, &mut budget);
        lateness_ns.push(now_ns().saturating_sub(deadline_ns));
    }
    lateness_ns.sort_unstable();
    WakeLateness {
        count,
        sleeps: waiter.sleeps(),
        p50_ns: percentile(&lateness_ns, 0.5),
        p99_ns: percentile(&lateness_ns, 0.99),
        p999_ns: percentile(&lateness_ns, 0.999),
        max_ns: lateness_ns.last().copied().unwrap_or(0),
        over_1ms: lateness_ns.iter().filter(|&&ns| ns > 1_000_000).count() as u64,
    }
}

fn spin(spin_ns: u64) -> CpuLoss {
    let start_ns = now_ns();
    let mut gaps = GapRecorder::new(start_ns);
    while gaps.last_ns < start_ns + spin_ns {
        gaps.observe(now_ns());
    }
    gaps.summary(spin_ns)
}

/// The gaps in a sequence of clock reads: the pure part of the CPU-loss phase.
#[derive(Debug)]
struct GapRecorder {
    last_ns: u64,
    /// Lengths of the gaps, ns.
    gaps_ns: Vec<u64>,
    /// Where each gap began (the read before it), ns.
    starts_ns: Vec<u64>,
}

impl GapRecorder {
    fn new(start_ns: u64) -> Self {
        GapRecorder {
            last_ns: start_ns,
            gaps_ns: Vec::new(),
            starts_ns: Vec::new(),
        }
    }

    fn observe(&mut self, now_ns: u64) {
        let gap_ns = now_ns.saturating_sub(self.last_ns);
        if gap_ns > GAP_NS {
            self.gaps_ns.push(gap_ns);
            self.starts_ns.push(self.last_ns);
        }
        self.last_ns = now_ns;
    }

    fn summary(mut self, spin_ns: u64) -> CpuLoss {
        let mut intervals_ns: Vec<u64> = self.starts_ns.windows(2).map(|w| w[1] - w[0]).collect();
        intervals_ns.sort_unstable();
        let lost_ns = self.gaps_ns.iter().sum();
        self.gaps_ns.sort_unstable();
        CpuLoss {
            spin_ns,
            gaps: self.gaps_ns.len() as u64,
            gap_p50_ns: percentile(&self.gaps_ns, 0.5),
            gap_p99_ns: percentile(&self.gaps_ns, 0.99),
            gap_max_ns: self.gaps_ns.last().copied().unwrap_or(0),
            lost_ns,
            interval_p50_ns: percentile(&intervals_ns, 0.5),
        }
    }
}

/// The `quantile` of sorted values: the element at rank ⌊(n − 1) × q⌋ (0 for none).
fn percentile(sorted: &[u64], quantile: f64) -> u64 {
    match sorted.len() {
        0 => 0,
        n => sorted[((n - 1) as f64 * quantile) as usize],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_takes_the_element_at_the_floor_rank() {
        assert_eq!(percentile(&[], 0.99), 0);
        assert_eq!(percentile(&[7], 0.5), 7);
        let values: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&values, 0.5), 500);
        assert_eq!(percentile(&values, 0.99), 990);
        assert_eq!(percentile(&values, 1.0), 1000);
    }

    #[test]
    fn gaps_are_the_reads_more_than_5_us_apart() {
        // Reads every 100 ns, with a 12 µs gap at 1 ms and a 30 µs gap at 2 ms, and one of
        // exactly 5 µs (not a gap).
        let mut recorder = GapRecorder::new(0);
        let mut now = 0;
        let mut step = |recorder: &mut GapRecorder, by: u64| {
            now += by;
            recorder.observe(now);
        };
        for _ in 0..10_000 {
            step(&mut recorder, 100);
        }
        step(&mut recorder, 12_000);
        for _ in 0..9_880 {
            step(&mut recorder, 100);
        }
        step(&mut recorder, 30_000);
        step(&mut recorder, GAP_NS);
        let loss = recorder.summary(3_000_000);
        assert_eq!(loss.gaps, 2);
        assert_eq!(loss.lost_ns, 42_000);
        assert_eq!((loss.gap_p50_ns, loss.gap_max_ns), (12_000, 30_000));
        assert_eq!(loss.interval_p50_ns, 12_000 + 9_880 * 100);
    }

    #[test]
    fn no_gaps_summarise_to_zeros() {
        let loss = GapRecorder::new(5).summary(1_000);
        assert_eq!(
            loss,
            CpuLoss {
                spin_ns: 1_000,
                ..CpuLoss::default()
            }
        );
    }

    #[test]
    fn options_out_of_range_are_refused_by_name() {
        let bad = |options: WakeProbeOptions, name: &str| {
            let err = probe_wakeups(&options).unwrap_err();
            assert_eq!(err.code, "ERR_OUT_OF_RANGE");
            assert!(err.message.contains(name), "{}", err.message);
        };
        let ok = WakeProbeOptions::default();
        bad(WakeProbeOptions { period_ns: 1_000, ..ok }, "periodNs");
        bad(
            WakeProbeOptions {
                nap_ns: 30_000_000,
                ..ok
            },
            "napNs",
        );
        bad(
            WakeProbeOptions {
                duration_ns: MAX_PROBE_DURATION_NS + 1,
                ..ok
            },
            "durationNs",
        );
        bad(
            WakeProbeOptions {
                priority: Some(100),
                ..ok
            },
            "priority",
        );
        bad(
            WakeProbeOptions {
                priority: Some(-1),
                ..ok
            },
            "priority",
        );
        bad(
            WakeProbeOptions {
                cpu: Some(MAX_CPU + 1),
                ..ok
            },
            "cpu",
        );
        bad(
            WakeProbeOptions {
                spin_ns: MAX_FIFO_SPIN_NS + 1,
                priority: Some(10),
                ..ok
            },
            "spinNs",
        );
        bad(
            WakeProbeOptions {
                duration_ns: 20_000_000_000,
                period_ns: 10_000,
                ..ok
            },
            "durationNs / options.periodNs",
        );
        assert!(WakeProbeOptions {
            spin_ns: MAX_SPIN_NS,
            ..ok
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn a_short_probe_counts_every_deadline_and_spins_as_long_as_asked() {
        let probe = probe_wakeups(&WakeProbeOptions {
            duration_ns: 50_000_000,
            period_ns: 1_000_000,
            spin_ns: 20_000_000,
            ..WakeProbeOptions::default()
        })
        .unwrap();
        let wakeups = probe.wakeups.unwrap();
        assert_eq!(wakeups.count, 50);
        assert!(wakeups.sleeps >= 50, "at least one sleep per deadline: {wakeups:?}");
        assert!(wakeups.p50_ns <= wakeups.p99_ns && wakeups.p99_ns <= wakeups.max_ns);
        let loss = probe.cpu_loss.unwrap();
        assert_eq!(loss.spin_ns, 20_000_000);
        assert!(loss.lost_ns <= 20_000_000 + loss.gap_max_ns, "{loss:?}");
    }

    #[test]
    fn phases_of_length_zero_are_skipped() {
        let probe = probe_wakeups(&WakeProbeOptions {
            duration_ns: 0,
            spin_ns: 0,
            ..WakeProbeOptions::default()
        })
        .unwrap();
        assert_eq!(probe, WakeProbe::default());
    }

    #[test]
    fn a_cpu_that_does_not_exist_fails_with_einval_and_leaves_the_caller_alone() {
        let before = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let err = probe_wakeups(&WakeProbeOptions {
            cpu: Some(MAX_CPU),
            ..WakeProbeOptions::default()
        })
        .unwrap_err();
        assert_eq!(err.code, "EINVAL");
        let after = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let allowed = |status: &str| {
            status
                .lines()
                .find(|l| l.starts_with("Cpus_allowed_list"))
                .map(String::from)
        };
        assert_eq!(allowed(&before), allowed(&after));
    }
}
