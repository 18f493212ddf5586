//! The engine's clocks: reading CLOCK_MONOTONIC and CLOCK_REALTIME, sleeping until an
//! absolute CLOCK_MONOTONIC time, and converting kernel stamps from one clock to the other.
//!
//! All times are nanoseconds. CLOCK_MONOTONIC is the clock behind Node's
//! `process.hrtime.bigint()`, so a deadline computed in JavaScript means the same instant here;
//! CLOCK_REALTIME is the clock of the kernel's software timestamps. This module is a leaf: it
//! uses only rustix, so that every other module (the waiter in [`crate::clock`], the run budget
//! in [`crate::rt`], the workers) can build on it.

use rustix::thread::ClockId;
use rustix::time::Timespec;

/// Nanoseconds per second.
pub(crate) const NS_PER_SEC: u64 = 1_000_000_000;

/// Longest single sleep: a sleeping sender checks for `stop()` at least this often, which
/// keeps `stop()` well under its 100 ms promise even when the next packet is due in an hour.
pub(crate) const MAX_SLEEP_CHUNK_NS: u64 = 20_000_000;

/// Current CLOCK_MONOTONIC time in nanoseconds (a vDSO call, no system call).
#[inline]
pub fn now_ns() -> u64 {
    let ts = rustix::time::clock_gettime(ClockId::Monotonic);
    ts.tv_sec as u64 * NS_PER_SEC + ts.tv_nsec as u64
}

/// Current CLOCK_REALTIME time in nanoseconds since the Unix epoch.
#[inline]
pub fn realtime_ns() -> u64 {
    let ts = rustix::time::clock_gettime(ClockId::Realtime);
    ts.tv_sec as u64 * NS_PER_SEC + ts.tv_nsec as u64
}

/// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns` (absolute; returns at once if it passed).
pub(crate) fn sleep_until(deadline_ns: u64) {
    let request = Timespec {
        tv_sec: (deadline_ns / NS_PER_SEC) as i64,
        tv_nsec: (deadline_ns % NS_PER_SEC) as _,
    };
    // Only EINTR can interrupt an absolute sleep with a valid time; sleeping again on the same
    // absolute deadline is exactly right after a signal.
    while rustix::thread::clock_nanosleep_absolute(ClockId::Monotonic, &request) == Err(rustix::io::Errno::INTR) {}
}

/// A word a sleeping thread can be woken through before its deadline (see
/// [`sleep_until_or_woken`]): the sender sleeps on it while it waits for a stream's tick, so
/// that a packet queued meanwhile is not held back until then.
#[derive(Debug, Default)]
pub(crate) struct WakeWord(std::sync::atomic::AtomicU32);

impl WakeWord {
    /// The word's current value, to pass to [`sleep_until_or_woken`].
    #[inline]
    pub(crate) fn current(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Wakes the thread sleeping on the word, if any, and any later sleep that started from an
    /// older value.
    pub(crate) fn wake(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let _ = rustix::thread::futex::wake(&self.0, rustix::thread::futex::Flags::PRIVATE, 1);
    }
}

/// FUTEX_BITSET_MATCH_ANY: a wait any wake ends.
const MATCH_ANY: std::num::NonZeroU32 = std::num::NonZeroU32::MAX;

/// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns`, like [`sleep_until`] (a futex wait with
/// an absolute CLOCK_MONOTONIC timeout is the same hrtimer as clock_nanosleep), or until `word`
/// no longer holds `seen`. Returns true if woken through the word.
pub(crate) fn sleep_until_or_woken(deadline_ns: u64, word: &WakeWord, seen: u32) -> bool {
    use rustix::thread::futex;
    let timeout = Timespec {
        tv_sec: (deadline_ns / NS_PER_SEC) as i64,
        tv_nsec: (deadline_ns % NS_PER_SEC) as _,
    };
    loop {
        if word.current() != seen {
            return true;
        }
        // FUTEX_WAIT_BITSET takes an absolute timeout on CLOCK_MONOTONIC.
        match futex::wait_bitset(&word.0, futex::Flags::PRIVATE, seen, Some(&timeout), MATCH_ANY) {
            Err(rustix::io::Errno::INTR) => continue,
            // EAGAIN: the word changed before the wait began; woken.
            Err(rustix::io::Errno::AGAIN) => return true,
            Err(_) | Ok(()) => return word.current() != seen,
        }
    }
}

/// How often [`RealtimeToMonotonic`] measures the offset between the clocks again.
pub(crate) const OFFSET_RESAMPLE_NS: u64 = 100_000_000;

/// Converts CLOCK_REALTIME stamps (the kernel's software timestamps) to CLOCK_MONOTONIC.
///
/// The offset between the clocks moves when the realtime clock is stepped or slewed (NTP), so
/// it is measured again every [`OFFSET_RESAMPLE_NS`]. Each measurement reads monotonic,
/// realtime, monotonic five times and keeps the narrowest bracket, whose midpoint is the
/// monotonic time of the realtime read to within half the bracket (tens of ns).
#[derive(Debug)]
pub(crate) struct RealtimeToMonotonic {
    /// realtime − monotonic, ns.
    offset_ns: i128,
    sampled_at_ns: u64,
}

impl Default for RealtimeToMonotonic {
    fn default() -> Self {
        let mut converter = RealtimeToMonotonic {
            offset_ns: 0,
            sampled_at_ns: 0,
        };
        converter.resample();
        converter
    }
}

impl RealtimeToMonotonic {
    fn resample(&mut self) {
        let mut best = (u64::MAX, 0i128);
        for _ in 0..5 {
            let before = now_ns();
            let realtime = realtime_ns();
            let after = now_ns();
            if after - before < best.0 {
                best = (
                    after - before,
                    realtime as i128 - (before + (after - before) / 2) as i128,
                );
            }
        }
        self.offset_ns = best.1;
        self.sampled_at_ns = now_ns();
    }

    /// CLOCK_REALTIME − CLOCK_MONOTONIC as last measured, ns.
    pub(crate) fn offset_ns(&self) -> i128 {
        self.offset_ns
    }

    /// The CLOCK_REALTIME time of a CLOCK_MONOTONIC one (a stream's schedule in its header);
    /// `now_ns` as for [`Self::monotonic_of`].
    pub(crate) fn realtime_of(&mut self, monotonic_ns: u64, now_ns: u64) -> u64 {
        if now_ns.saturating_sub(self.sampled_at_ns) >= OFFSET_RESAMPLE_NS {
            self.resample();
        }
        (monotonic_ns as i128 + self.offset_ns).clamp(0, u64::MAX as i128) as u64
    }

    /// The CLOCK_MONOTONIC time of a CLOCK_REALTIME stamp; `now_ns` is the current monotonic
    /// time (to decide whether to measure the offset again).
    pub(crate) fn monotonic_of(&mut self, realtime_ns: u64, now_ns: u64) -> u64 {
        if now_ns.saturating_sub(self.sampled_at_ns) >= OFFSET_RESAMPLE_NS {
            self.resample();
        }
        (realtime_ns as i128 - self.offset_ns).clamp(0, u64::MAX as i128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_wake_word_sleep_ends_at_its_deadline_or_when_woken() {
        let word = std::sync::Arc::new(WakeWord::default());
        // Not woken: it sleeps until the deadline, not earlier.
        let deadline = now_ns() + 20_000_000;
        assert!(!sleep_until_or_woken(deadline, &word, word.current()));
        assert!(now_ns() >= deadline);
        // Woken from another thread long before a deadline an hour away.
        let waker = {
            let word = word.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                word.wake();
            })
        };
        let started = Instant::now();
        assert!(sleep_until_or_woken(
            now_ns() + 3_600 * NS_PER_SEC,
            &word,
            word.current()
        ));
        assert!(started.elapsed() < Duration::from_secs(10));
        waker.join().unwrap();
        // A wake before the sleep begins is not lost.
        let seen = word.current();
        word.wake();
        assert!(sleep_until_or_woken(now_ns() + 3_600 * NS_PER_SEC, &word, seen));
    }

    #[test]
    fn clock_is_monotonic_and_matches_std_instant_rate() {
        // std's Instant reads CLOCK_MONOTONIC too, so the two clocks agree exactly: an interval
        // measured with one lies between an inner and an outer interval measured with the
        // other, however long the thread is preempted between the reads (a loaded machine
        // changes the intervals, never the nesting). A unit or clock mix-up breaks it.
        let outer_start = Instant::now();
        let start_ns = now_ns();
        let inner_start = Instant::now();
        std::thread::sleep(Duration::from_millis(5));
        let inner_end = Instant::now();
        let end_ns = now_ns();
        let outer_end = Instant::now();
        let measured = end_ns - start_ns;
        let (inner, outer) = (
            (inner_end - inner_start).as_nanos() as u64,
            (outer_end - outer_start).as_nanos() as u64,
        );
        assert!(inner >= 5_000_000);
        assert!(
            inner <= measured && measured <= outer,
            "{inner} <= {measured} <= {outer}"
        );
    }

    #[test]
    fn sleep_until_never_returns_early() {
        for offset in [0, 1_000, 100_000, 1_000_000] {
            let deadline = now_ns() + offset;
            sleep_until(deadline);
            assert!(now_ns() >= deadline);
        }
        sleep_until(0); // the past returns at once
    }

    #[test]
    fn realtime_stamps_convert_monotonic_of() {
        let mut converter = RealtimeToMonotonic::default();
        let (mono_before, real, mono_after) = (now_ns(), realtime_ns(), now_ns());
        let converted = converter.monotonic_of(real, mono_after);
        // Within the bracket of the reads, plus generous slack for a VM.
        assert!(
            converted + 100_000 >= mono_before && converted <= mono_after + 100_000,
            "{converted}"
        );
    }
}
