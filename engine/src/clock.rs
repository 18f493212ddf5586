//! Waiting for an absolute CLOCK_MONOTONIC deadline: sleep, then spin.
//!
//! Times are nanoseconds of CLOCK_MONOTONIC, read through [`crate::time`].
//!
//! [`DeadlineWaiter::wait_until`] sleeps with `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`
//! until a *spin window* before the deadline and busy-waits the rest. Sleeping on an absolute
//! time (never on a delta) means time lost to a late wake-up is not added to the next wait.
//! The spin window is the trade between CPU and precision: it must cover the thread's wake-up
//! lateness, which depends on the machine, the scheduler class and the load. Unless a fixed
//! window is configured, [`SpinWindow`] learns it: it keeps the last 256 wake-up latenesses
//! and sets the window above the latest of them.
//!
//! On a virtual machine a long sleep has a second cost: once a virtual CPU has been halted
//! (idle) for longer than the host polls for it (KVM's `halt_poll_ns`, 200 µs by default),
//! the host schedules it out, and waking it again takes the host's scheduler: tens of µs
//! typically and milliseconds at times, far more than any spin window should cover. Measured
//! on the development VMs with `examples/wake_probe.rs` (SCHED_FIFO on an otherwise idle CPU,
//! deadlines 1 ms apart): sleeping straight to each deadline woke p50 ~30 µs / p99 ~70 µs /
//! max 1-3 ms late; sleeping in naps of at most 150 µs, ~6 µs / ~10-20 µs / ~0.3 ms. So within [`NAP_HORIZON_NS`] of
//! its wake-up point the waiter sleeps in naps of at most `nap_ns` (the `napNs` option; 0
//! turns naps off), a few thousand cheap wake-ups a second while a deadline is near and none
//! while nothing is queued.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::rt::RunBudget;
use crate::time::{now_ns, sleep_until, sleep_until_or_woken, WakeWord, MAX_SLEEP_CHUNK_NS};

/// How long the sender busy-waits before each deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpinPolicy {
    /// A fixed window in nanoseconds (`spinNs` given).
    Fixed(u64),
    /// Learned from the measured wake-up lateness of this thread (`spinNs` not given).
    Adaptive,
}

/// How long before its wake-up point the waiter starts napping (see the module docs): more
/// than the slowest wake-up from a long sleep seen on the development VMs (~4 ms).
pub(crate) const NAP_HORIZON_NS: u64 = 5_000_000;

/// Under SCHED_FIFO, a wait at least this long always includes some sleep (see
/// [`DeadlineWaiter::wait_until`]).
pub(crate) const MIN_GAP_TO_SLEEP_NS: u64 = 50_000;

/// A gap this long between two clock reads of a spin loop means the thread was not running
/// (preempted, throttled, or the VM was descheduled); such gaps are counted as stalls.
pub(crate) const STALL_NS: u64 = 200_000;

/// Initial adaptive window, before any wake-up has been measured.
pub(crate) const ADAPTIVE_INITIAL_NS: u64 = 50_000;
/// Smallest adaptive window: measured on the development VMs, sleeping until 20 µs before a
/// deadline and spinning the rest leaves a p99 of tens of ns; a shorter spin saves little CPU
/// and makes every slow wake-up (a VM exit, a cold cache) a late packet.
pub(crate) const ADAPTIVE_MIN_NS: u64 = 20_000;
/// Largest adaptive window: beyond this the machine is too noisy for spinning to help, and
/// a longer spin only burns the CPU.
pub(crate) const ADAPTIVE_MAX_NS: u64 = 500_000;
const SAMPLES: usize = 256;
/// Recompute the adaptive window after this many new samples.
const RECOMPUTE_EVERY: usize = 32;

/// The busy-wait window before a deadline: fixed, or learned from measured wake-ups.
#[derive(Clone, Debug)]
pub(crate) struct SpinWindow {
    adaptive: bool,
    window_ns: u64,
    /// Recent wake-up latenesses (ns, saturated at u32::MAX), a circular buffer.
    samples: [u32; SAMPLES],
    next: usize,
    filled: usize,
    since_recompute: usize,
}

impl SpinWindow {
    /// A window following `policy`.
    pub(crate) fn new(policy: SpinPolicy) -> Self {
        let (adaptive, window_ns) = match policy {
            SpinPolicy::Fixed(ns) => (false, ns),
            SpinPolicy::Adaptive => (true, ADAPTIVE_INITIAL_NS),
        };
        SpinWindow {
            adaptive,
            window_ns,
            samples: [0; SAMPLES],
            next: 0,
            filled: 0,
            since_recompute: 0,
        }
    }

    /// Current window in nanoseconds.
    #[inline]
    pub(crate) fn window_ns(&self) -> u64 {
        self.window_ns
    }

    /// Records how late a sleep woke up (actual wake time minus requested time).
    pub(crate) fn record_wakeup(&mut self, lateness_ns: u64) {
        self.samples[self.next] = lateness_ns.min(u32::MAX as u64) as u32;
        self.next = (self.next + 1) % SAMPLES;
        self.filled = (self.filled + 1).min(SAMPLES);
        self.since_recompute += 1;
    }

    /// True when enough new samples arrived to recompute the window.
    pub(crate) fn wants_recompute(&self) -> bool {
        self.adaptive && self.since_recompute >= RECOMPUTE_EVERY
    }

    /// Aims the window at 1.25 × the latest of the recent wake-ups + 2 µs
    /// (within [`ADAPTIVE_MIN_NS`]..=[`ADAPTIVE_MAX_NS`]): it grows to that at once, and
    /// shrinks towards it by at most an eighth per recomputation, because a quiet spell says
    /// little about the next slow wake-up. Costs about a microsecond; the waiter calls it only
    /// while spinning with time to spare.
    pub(crate) fn recompute(&mut self) {
        self.since_recompute = 0;
        if !self.adaptive || self.filled == 0 {
            return;
        }
        let recent = &self.samples[..self.filled];
        let quantile = recent.iter().copied().max().unwrap_or(0) as u64;
        let target = (quantile + quantile / 4 + 2_000).clamp(ADAPTIVE_MIN_NS, ADAPTIVE_MAX_NS);
        self.window_ns = target.max(self.window_ns - self.window_ns / 8);
    }
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The deadline was reached.
    Reached,
    /// The stop flag was raised first.
    Stopped,
    /// The wake word changed first (`wait_until_or_woken`).
    Woken,
}

/// Waits for absolute deadlines: sleep until the spin window, then spin.
#[derive(Debug)]
pub struct DeadlineWaiter {
    /// The spin window in use.
    pub(crate) spin: SpinWindow,
    /// Spin loops in which the clock jumped by more than [`STALL_NS`] between two reads.
    pub(crate) stalls: u64,
    /// Sleeps taken (system calls), naps included.
    pub(crate) sleeps: u64,
    /// Longest sleep within [`NAP_HORIZON_NS`] of a wake-up point; 0: sleep in one go.
    nap_ns: u64,
}

impl DeadlineWaiter {
    /// A waiter with the given spin policy that naps for at most `nap_ns` near a deadline.
    pub fn new(policy: SpinPolicy, nap_ns: u64) -> Self {
        DeadlineWaiter {
            spin: SpinWindow::new(policy),
            stalls: 0,
            sleeps: 0,
            nap_ns,
        }
    }

    /// Where the next sleep from `now` towards `wake_at` ends: at most [`MAX_SLEEP_CHUNK_NS`]
    /// ahead; far from `wake_at`, at the start of the nap horizon; within it, one nap ahead.
    fn next_sleep_end(&self, now: u64, wake_at: u64) -> u64 {
        let chunk_end = wake_at.min(now + MAX_SLEEP_CHUNK_NS);
        if self.nap_ns == 0 || wake_at - now <= self.nap_ns {
            return chunk_end;
        }
        let naps_from = wake_at.saturating_sub(NAP_HORIZON_NS);
        if now < naps_from {
            chunk_end.min(naps_from)
        } else {
            now + self.nap_ns
        }
    }

    /// Sleeps taken so far (system calls), naps included.
    pub fn sleeps(&self) -> u64 {
        self.sleeps
    }

    /// Spin loops so far in which the clock jumped by more than 200 µs between two reads.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    /// Returns at `deadline_ns` or later, or early with [`Wait::Stopped`] once `stop` is set
    /// (checked at least every 20 ms while sleeping). Sleeping and spinning
    /// are reported to `budget`, which keeps a SCHED_FIFO thread clear of RT throttling.
    pub fn wait_until(&mut self, deadline_ns: u64, stop: &AtomicBool, budget: &mut RunBudget) -> Wait {
        self.wait(deadline_ns, stop, None, budget)
    }

    /// Like [`Self::wait_until`], and returns early with [`Wait::Woken`] once `word` no longer
    /// holds `seen` (the sender waiting for a stream's tick when a packet is queued).
    pub(crate) fn wait_until_or_woken(
        &mut self,
        deadline_ns: u64,
        stop: &AtomicBool,
        word: &WakeWord,
        seen: u32,
        budget: &mut RunBudget,
    ) -> Wait {
        self.wait(deadline_ns, stop, Some((word, seen)), budget)
    }

    fn wait(
        &mut self,
        deadline_ns: u64,
        stop: &AtomicBool,
        wake: Option<(&WakeWord, u32)>,
        budget: &mut RunBudget,
    ) -> Wait {
        let woken = || wake.is_some_and(|(word, seen)| word.current() != seen);
        let mut now = now_ns();
        // A SCHED_FIFO thread must sleep some of the time or the kernel throttles it; spinning
        // through every gap would leave it nothing but normal scheduling (see RunBudget). So
        // under SCHED_FIFO a gap long enough to sleep in is slept for at least a fifth of it,
        // even when the learned window is longer: a rare late wake-up costs less than
        // competing for the CPU under normal scheduling.
        let gap_ns = deadline_ns.saturating_sub(now);
        let window_ns = match budget.is_fifo() && gap_ns >= MIN_GAP_TO_SLEEP_NS {
            true => self.spin.window_ns().min(gap_ns / 5 * 4),
            false => self.spin.window_ns(),
        };
        loop {
            if stop.load(Ordering::Relaxed) {
                return Wait::Stopped;
            }
            let wake_at = deadline_ns.saturating_sub(window_ns);
            if now >= wake_at {
                break;
            }
            let sleep_to = self.next_sleep_end(now, wake_at);
            budget.before_sleep(sleep_to - now);
            match wake {
                Some((word, seen)) => {
                    if sleep_until_or_woken(sleep_to, word, seen) {
                        budget.slept(now_ns() - now);
                        return Wait::Woken;
                    }
                }
                None => sleep_until(sleep_to),
            }
            self.sleeps += 1;
            let woke = now_ns();
            budget.slept(woke - now);
            if sleep_to == wake_at {
                self.spin.record_wakeup(woke.saturating_sub(sleep_to));
            }
            now = woke;
        }
        budget.check(now);
        // Spin. Recompute the adaptive window here, where waiting costs nothing, as long as
        // there are a few microseconds to spare.
        if self.spin.wants_recompute() && now + 5_000 < deadline_ns {
            self.spin.recompute();
            now = now_ns();
        }
        while now < deadline_ns {
            if woken() {
                return Wait::Woken;
            }
            std::hint::spin_loop();
            let next = now_ns();
            if next - now > STALL_NS {
                self.stalls += 1;
            }
            now = next;
        }
        Wait::Reached
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NS_PER_SEC;

    #[test]
    fn sleeps_end_at_the_nap_horizon_then_nap_by_nap() {
        let waiter = DeadlineWaiter::new(SpinPolicy::Fixed(0), 150_000);
        let wake_at = 100 * NS_PER_SEC;
        // Far away: one chunk at a time, never past the start of the horizon.
        assert_eq!(
            waiter.next_sleep_end(wake_at - NS_PER_SEC, wake_at),
            wake_at - NS_PER_SEC + MAX_SLEEP_CHUNK_NS
        );
        assert_eq!(
            waiter.next_sleep_end(wake_at - 8_000_000, wake_at),
            wake_at - NAP_HORIZON_NS
        );
        // Inside the horizon: naps, and the last one ends exactly at the wake-up point.
        assert_eq!(
            waiter.next_sleep_end(wake_at - NAP_HORIZON_NS, wake_at),
            wake_at - NAP_HORIZON_NS + 150_000
        );
        assert_eq!(waiter.next_sleep_end(wake_at - 100_000, wake_at), wake_at);
        // Deadlines near the clock's origin do not underflow.
        assert_eq!(waiter.next_sleep_end(0, 1_000_000), 150_000);
        // napNs 0: one sleep (in chunks of at most MAX_SLEEP_CHUNK_NS).
        let no_naps = DeadlineWaiter::new(SpinPolicy::Fixed(0), 0);
        assert_eq!(no_naps.next_sleep_end(wake_at - 8_000_000, wake_at), wake_at);
    }

    #[test]
    fn napping_waiter_reaches_deadline_not_before_it() {
        let stop = AtomicBool::new(false);
        let mut budget = RunBudget::new(None);
        // ~2 ms in naps of 100 µs is ~20 sleeps; a slow machine (valgrind) oversleeps each nap
        // and takes fewer, but always more than the one sleep without naps.
        for (nap_ns, sleeps) in [(100_000, 2..100), (0, 1..2)] {
            let mut waiter = DeadlineWaiter::new(SpinPolicy::Fixed(20_000), nap_ns);
            let deadline = now_ns() + 2_000_000;
            assert_eq!(waiter.wait_until(deadline, &stop, &mut budget), Wait::Reached);
            assert!(now_ns() >= deadline);
            assert!(
                sleeps.contains(&waiter.sleeps),
                "napNs {nap_ns}: {} sleeps",
                waiter.sleeps
            );
        }
    }

    #[test]
    fn waiter_reaches_deadline_not_before_it() {
        let stop = AtomicBool::new(false);
        let mut budget = RunBudget::new(None);
        let mut waiter = DeadlineWaiter::new(SpinPolicy::Fixed(20_000), 0);
        let mut lateness = Vec::new();
        for _ in 0..20 {
            let deadline = now_ns() + 300_000;
            assert_eq!(waiter.wait_until(deadline, &stop, &mut budget), Wait::Reached);
            lateness.push(now_ns() - deadline);
        }
        // Never early (above); each wait ends within a second, so a waiter that hangs or mixes
        // up ns and µs (300 ms late) fails; and the best of the twenty is within 5 ms, so one
        // that always oversleeps (a whole 20 ms chunk, say) fails too. A loaded machine can
        // make any single wait late, but not every one of twenty: spinning makes them tens of
        // ns late on an idle machine.
        let (best, worst) = (lateness.iter().min().unwrap(), lateness.iter().max().unwrap());
        assert!(*worst < NS_PER_SEC, "late by {worst} ns");
        assert!(*best < 5_000_000, "every wait late, the best by {best} ns");
    }

    #[test]
    fn waiter_stops_within_a_chunk_even_for_far_deadlines() {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut budget = RunBudget::new(None);
            let wait = DeadlineWaiter::new(SpinPolicy::Adaptive, 150_000).wait_until(
                now_ns() + 3600 * NS_PER_SEC,
                &flag,
                &mut budget,
            );
            let _ = done_tx.send(wait);
        });
        std::thread::sleep(std::time::Duration::from_millis(10));
        stop.store(true, Ordering::Relaxed);
        // The waiter checks the flag every 20 ms (MAX_SLEEP_CHUNK_NS); one that never looks
        // would sleep the hour out. 10 s tells the two apart on any machine.
        let wait = done_rx.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(wait, Ok(Wait::Stopped), "the waiter did not see the stop flag");
    }

    #[test]
    fn adaptive_window_follows_measured_lateness() {
        let mut window = SpinWindow::new(SpinPolicy::Adaptive);
        assert_eq!(window.window_ns(), ADAPTIVE_INITIAL_NS);
        for i in 0..256 {
            window.record_wakeup(if i == 0 { 100_000 } else { 10_000 });
        }
        assert!(window.wants_recompute());
        window.recompute();
        // Even one slow wake-up in 256 is covered: 100 µs × 1.25 + 2 µs.
        assert_eq!(window.window_ns(), 127_000);
        for _ in 0..256 {
            window.record_wakeup(10);
        }
        window.recompute();
        assert_eq!(
            window.window_ns(),
            127_000 - 127_000 / 8,
            "shrinks by an eighth at most"
        );
        for _ in 0..30 {
            window.recompute();
        }
        assert_eq!(window.window_ns(), ADAPTIVE_MIN_NS);
        for _ in 0..256 {
            window.record_wakeup(10_000_000);
        }
        window.recompute();
        assert_eq!(window.window_ns(), ADAPTIVE_MAX_NS);
    }

    #[test]
    fn fixed_window_never_moves() {
        let mut window = SpinWindow::new(SpinPolicy::Fixed(7_000));
        for _ in 0..1000 {
            window.record_wakeup(1_000_000);
        }
        assert!(!window.wants_recompute());
        window.recompute();
        assert_eq!(window.window_ns(), 7_000);
    }
}
