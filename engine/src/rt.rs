//! Real-time set-up of a worker thread, and the budget that keeps a SCHED_FIFO thread clear of
//! the kernel's RT throttling.
//!
//! A worker calls [`ThreadSetup::apply`] on itself before it touches a packet: timer slack
//! 1 ns (so an absolute sleep is not rounded up by the default 50 µs slack), CPU affinity,
//! then SCHED_FIFO. If the OS refuses affinity or priority, the worker reports the error and
//! exits, and `start()` throws it: a lab run never silently falls back to normal scheduling.

use std::num::NonZeroU64;

use crate::error::{Error, Result};
use crate::sys;
use crate::time::{now_ns, sleep_until};

/// How a worker thread should be scheduled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadSetup {
    /// CPU to pin the thread to.
    pub cpu: Option<usize>,
    /// SCHED_FIFO priority (1..=99), or `None` for normal scheduling.
    pub priority: Option<i32>,
    /// Lock the thread's stack into RAM (`lockMemory: 'all'`).
    pub lock_stack: bool,
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
        if self.lock_stack {
            sys::lock_current_stack().map_err(|e| lock_hint(Error::from_io("mlock", &e, "thread stack")))?;
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

/// An mlock error with how to make locking possible.
pub(crate) fn lock_hint(error: Error) -> Error {
    error.with_hint(
        "memory could not be locked. Raise the locked-memory limit (ulimit -l, or 'memlock' in \
         /etc/security/limits.conf), grant CAP_IPC_LOCK, or start without lockMemory",
    )
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
pub(crate) const BUDGET_WINDOW_NS: u64 = 10_000_000;
/// Running time after which, within one window, a SCHED_FIFO thread leaves SCHED_FIFO.
pub(crate) const BUDGET_RUN_LIMIT_NS: u64 = 9_000_000;
/// A demoted thread returns to SCHED_FIFO before a sleep at least this long (or one without
/// end): it is no longer running continuously, and wakes up faster under SCHED_FIFO.
pub(crate) const PROMOTE_MIN_SLEEP_NS: u64 = 1_000_000;
/// Length of the pause taken if leaving SCHED_FIFO were ever refused.
pub(crate) const BUDGET_PAUSE_NS: u64 = 1_000_000;

/// Keeps a SCHED_FIFO thread clear of the kernel's RT throttling without pausing it.
///
/// Linux stops SCHED_FIFO threads that use more than `sched_rt_runtime_us` (950 ms) of every
/// `sched_rt_period_us` (1 s): a sender that spins from packet to packet (because packets are
/// closer together than its spin window) would be frozen for 50 ms every second, and nothing
/// would say so. The budget counts the time the thread spends asleep; when it has run for 9 ms
/// of a 10 ms window, [`check`](Self::check) moves it to normal scheduling (SCHED_OTHER), where
/// it keeps spinning — throttling does not apply there — and counts a *demotion*. Before the
/// next sleep of at least 1 ms ([`before_sleep`](Self::before_sleep)) it
/// returns to SCHED_FIFO. Pausing instead, as a simpler guard would, makes every packet due
/// during the pause late by up to the pause. For threads under normal scheduling the budget is
/// disabled and costs nothing.
#[derive(Debug)]
pub struct RunBudget {
    /// SCHED_FIFO priority of the thread, or None under normal scheduling.
    priority: Option<i32>,
    /// Under SCHED_OTHER for now because it ran out of budget.
    demoted: bool,
    window_start_ns: u64,
    slept_ns: u64,
    demotions: u64,
}

impl RunBudget {
    /// A budget for a thread running under SCHED_FIFO at `priority` (None: disabled).
    pub fn new(priority: Option<i32>) -> Self {
        RunBudget {
            priority,
            demoted: false,
            window_start_ns: now_ns(),
            slept_ns: 0,
            demotions: 0,
        }
    }

    /// Records time the thread spent blocked or asleep.
    pub fn slept(&mut self, ns: u64) {
        self.slept_ns += ns;
    }

    /// Leaves SCHED_FIFO if the thread used up its running time in this window. Returns true
    /// if it did.
    pub fn check(&mut self, now: u64) -> bool {
        if self.priority.is_none() || self.demoted {
            return false;
        }
        let elapsed = now.saturating_sub(self.window_start_ns);
        let ran = elapsed.saturating_sub(self.slept_ns);
        if ran >= BUDGET_RUN_LIMIT_NS {
            self.demotions += 1;
            if sys::set_normal_scheduling().is_ok() {
                self.demoted = true;
            } else {
                // Lowering one's own policy is always allowed; should it ever fail, pausing
                // still keeps the thread clear of throttling.
                sleep_until(now + BUDGET_PAUSE_NS);
                self.restart_window();
            }
            return true;
        }
        if elapsed >= BUDGET_WINDOW_NS {
            self.window_start_ns = now;
            self.slept_ns = 0;
        }
        false
    }

    /// Called before the thread sleeps or blocks for about `expected_ns` (`u64::MAX`: until
    /// woken): a demoted thread goes back to SCHED_FIFO and starts a new window.
    pub fn before_sleep(&mut self, expected_ns: u64) {
        if let (true, Some(priority)) = (self.demoted, self.priority) {
            if expected_ns >= PROMOTE_MIN_SLEEP_NS && sys::set_fifo_priority(priority).is_ok() {
                self.demoted = false;
                self.restart_window();
            }
        }
    }

    fn restart_window(&mut self) {
        self.window_start_ns = now_ns();
        self.slept_ns = 0;
    }

    /// Times the thread left SCHED_FIFO to stay clear of throttling.
    pub fn demotions(&self) -> u64 {
        self.demotions
    }

    /// True when the thread is meant to run under SCHED_FIFO (even if demoted for now).
    pub fn is_fifo(&self) -> bool {
        self.priority.is_some()
    }

    /// True while the thread runs under normal scheduling after a demotion.
    pub fn demoted(&self) -> bool {
        self.demoted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_budget_never_demotes() {
        let mut budget = RunBudget::new(None);
        assert!(!budget.check(now_ns() + 60_000_000_000));
        assert_eq!(budget.demotions(), 0);
    }

    #[test]
    fn busy_fifo_thread_is_demoted_and_promoted_again_before_a_long_sleep() {
        let result = std::thread::spawn(|| {
            // Priority 1 needs CAP_SYS_NICE (or an RLIMIT_RTPRIO): root has it, so there a
            // refusal is a broken set_fifo_priority; anyone else skips the scheduling part.
            if let Err(e) = sys::set_fifo_priority(1) {
                assert!(!rustix::process::geteuid().is_root(), "SCHED_FIFO refused to root: {e}");
                eprintln!("skipped: SCHED_FIFO is not permitted here ({e}); run as root to test it");
                return None;
            }
            assert_eq!(sys::current_scheduling().unwrap(), (libc::SCHED_FIFO, 1));
            let mut budget = RunBudget::new(Some(1));
            let start = budget.window_start_ns;
            assert!(budget.check(start + 9_500_000), "9.5 ms of running");
            let demoted = (budget.demoted(), sys::current_scheduling().unwrap().0);
            budget.before_sleep(100_000); // too short to matter
            let still = sys::current_scheduling().unwrap().0;
            budget.before_sleep(u64::MAX);
            let promoted = sys::current_scheduling().unwrap();
            Some((demoted, still, promoted, budget.demotions()))
        })
        .join()
        .unwrap();
        if let Some((demoted, still, promoted, demotions)) = result {
            assert_eq!(demoted, (true, libc::SCHED_OTHER));
            assert_eq!(still, libc::SCHED_OTHER);
            assert_eq!(promoted, (libc::SCHED_FIFO, 1));
            assert_eq!(demotions, 1);
        }
    }

    #[test]
    fn sleeping_thread_keeps_its_budget() {
        let mut budget = RunBudget::new(Some(1));
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
                lock_stack: false,
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
                lock_stack: false,
            }
            .apply()
        })
        .join()
        .unwrap()
        .unwrap();
    }
}
