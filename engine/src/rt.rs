//! Real-time set-up of a worker thread, and the budget that keeps a SCHED_FIFO thread clear of
//! the kernel's RT throttling.
//!
//! A worker calls [`ThreadSetup::apply`] on itself before it touches a packet: timer slack
//! 1 ns (so an absolute sleep is not rounded up by the default 50 µs slack), CPU affinity,
//! then SCHED_FIFO. If the OS refuses affinity or priority, the worker reports the error and
//! exits, and `start()` throws it: a lab run never silently falls back to normal scheduling.

use std::num::NonZeroU64;

use crate::clock::{now_ns, sleep_until};
use crate::error::{Error, Result};
use crate::sys;

/// How a worker thread should be scheduled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadSetup {
    /// CPU to pin the thread to.
    pub cpu: Option<usize>,
    /// SCHED_FIFO priority (1..=99), or `None` for normal scheduling.
    pub priority: Option<i32>,
}

impl ThreadSetup {
    /// Applies the set-up to the calling thread.
    pub fn apply(&self) -> Result<()> {
        // Timer slack is a per-thread hint; failing to lower it only costs precision, and
        // PR_SET_TIMERSLACK cannot fail for a valid value, so the result is not fatal.
        let _ = rustix::thread::set_current_timer_slack(NonZeroU64::new(1));
        if let Some(cpu) = self.cpu {
            pin_to_cpu(cpu)?;
        }
        if let Some(priority) = self.priority {
            sys::set_fifo_priority(priority).map_err(|err| {
                let error = Error::from_io("sched_setscheduler", &err, &format!("SCHED_FIFO priority {priority}"));
                if err.raw_os_error() == Some(libc::EPERM) {
                    error.with_hint(
                        "this process may not use real-time scheduling. Grant it CAP_SYS_NICE \
                         (sudo setcap cap_sys_nice+ep \"$(readlink -f \"$(which node)\")\"), or raise \
                         the RT priority limit (ulimit -r 99 in the shell that starts node, or a \
                         line '<user> - rtprio 99' in /etc/security/limits.conf), or run as root",
                    )
                } else {
                    error
                }
            })?;
        }
        Ok(())
    }
}

fn pin_to_cpu(cpu: usize) -> Result<()> {
    // core_affinity reports only success or failure; the errno of its sched_setaffinity call
    // is still in place right after it returns.
    if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    let online = std::thread::available_parallelism().map_or(0, |n| n.get());
    let error = Error::from_io("sched_setaffinity", &err, &format!("cpu {cpu}"));
    Err(if err.raw_os_error() == Some(libc::EINVAL) {
        error.with_hint(&format!(
            "CPU {cpu} does not exist or is not in this process's allowed set (this machine has {online} CPUs: 0..{})",
            online.saturating_sub(1)
        ))
    } else {
        error
    })
}

/// Length of the window over which the budget is kept.
pub const BUDGET_WINDOW_NS: u64 = 10_000_000;
/// Running time after which, within one window, the thread must pause.
pub const BUDGET_RUN_LIMIT_NS: u64 = 9_000_000;
/// Length of a forced pause.
pub const BUDGET_PAUSE_NS: u64 = 1_000_000;

/// Keeps a SCHED_FIFO thread from running more than 90% of any 10 ms.
///
/// Linux stops SCHED_FIFO threads that use more than `sched_rt_runtime_us` (950 ms) of every
/// `sched_rt_period_us` (1 s): a sender that spins from packet to packet would be frozen for
/// 50 ms every second, and nothing would say so. The budget counts the time the thread spends
/// asleep; when it has run for 9 ms of the current 10 ms window without sleeping enough, the
/// next [`check`](Self::check) sleeps 1 ms and counts a pause, which the statistics report.
/// For threads under normal scheduling the budget is disabled and costs nothing.
#[derive(Debug)]
pub struct RunBudget {
    enabled: bool,
    window_start_ns: u64,
    slept_ns: u64,
    pauses: u64,
}

impl RunBudget {
    /// A budget; `enabled` when the thread runs under SCHED_FIFO.
    pub fn new(enabled: bool) -> Self {
        RunBudget {
            enabled,
            window_start_ns: now_ns(),
            slept_ns: 0,
            pauses: 0,
        }
    }

    /// Records time the thread spent blocked or asleep.
    pub fn slept(&mut self, ns: u64) {
        self.slept_ns += ns;
    }

    /// Pauses the thread if it used up its running time in this window. Returns true if it
    /// paused.
    pub fn check(&mut self, now: u64) -> bool {
        if !self.enabled {
            return false;
        }
        let elapsed = now.saturating_sub(self.window_start_ns);
        let ran = elapsed.saturating_sub(self.slept_ns);
        if ran >= BUDGET_RUN_LIMIT_NS {
            sleep_until(now + BUDGET_PAUSE_NS);
            self.pauses += 1;
            self.window_start_ns = now_ns();
            self.slept_ns = 0;
            return true;
        }
        if elapsed >= BUDGET_WINDOW_NS {
            self.window_start_ns = now;
            self.slept_ns = 0;
        }
        false
    }

    /// Pauses taken so far.
    pub fn pauses(&self) -> u64 {
        self.pauses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_budget_never_pauses() {
        let mut budget = RunBudget::new(false);
        assert!(!budget.check(now_ns() + 60_000_000_000));
        assert_eq!(budget.pauses(), 0);
    }

    #[test]
    fn busy_thread_pauses_and_sleeping_thread_does_not() {
        let mut budget = RunBudget::new(true);
        let start = budget.window_start_ns;
        // 9.5 ms of running without sleep: must pause for about 1 ms.
        let before = now_ns();
        assert!(budget.check(start + 9_500_000));
        assert!(now_ns() - before >= BUDGET_PAUSE_NS);
        assert_eq!(budget.pauses(), 1);

        // A thread that slept most of the window keeps going, and a new window starts.
        let mut budget = RunBudget::new(true);
        let start = budget.window_start_ns;
        budget.slept(6_000_000);
        assert!(!budget.check(start + 10_500_000));
        assert_eq!(budget.window_start_ns, start + 10_500_000);
        assert_eq!(budget.slept_ns, 0);
    }

    #[test]
    fn empty_setup_applies() {
        ThreadSetup::default().apply().unwrap();
        assert_eq!(rustix::thread::current_timer_slack().unwrap(), 1);
    }

    #[test]
    fn pinning_to_a_missing_cpu_is_einval_with_a_hint() {
        let err = std::thread::spawn(|| {
            ThreadSetup {
                cpu: Some(1023),
                priority: None,
            }
            .apply()
        })
        .join()
        .unwrap()
        .unwrap_err();
        assert_eq!(err.code, "EINVAL");
        assert_eq!(err.os.unwrap().syscall, "sched_setaffinity");
        assert!(err.message.contains("does not exist"), "{}", err.message);
    }

    #[test]
    fn pinning_to_cpu_zero_works() {
        std::thread::spawn(|| {
            ThreadSetup {
                cpu: Some(0),
                priority: None,
            }
            .apply()
        })
        .join()
        .unwrap()
        .unwrap();
    }
}
