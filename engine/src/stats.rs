//! Packet counters and latency histograms.
//!
//! Counters are atomics grouped by the one thread that writes them (the JavaScript thread, the
//! sender, the receiver), each group on its own cache line; a single writer can update them
//! with a plain load and store, and readers see every update within nanoseconds.
//!
//! Latency goes into an HDR histogram (2 significant digits: every value is exact to within
//! 1%, with exact minimum, maximum and mean kept beside it). The sender records into a
//! histogram of its own, which no other thread touches, and *publishes* it (adds it to a
//! shared one behind a mutex) only when it has time to spare: before it goes idle, or when the
//! next deadline is far enough away, at most every [`PUBLISH_INTERVAL_NS`]. So the packet path
//! takes no lock, statistics are exact whenever the sender is idle (after `drain()`), and
//! otherwise at most a few milliseconds old.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crossbeam::utils::CachePadded;
use hdrhistogram::Histogram;

/// Adds to a counter that has a single writer: a plain load and store, no locked instruction.
#[inline]
pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

#[inline]
fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Counters written by the JavaScript thread.
#[derive(Debug, Default)]
pub(crate) struct JsCounters {
    /// Packets queued into the send ring.
    pub packets_queued: AtomicU64,
    /// sendData/sendBatch packets refused because the send ring was full.
    pub send_ring_full: AtomicU64,
    /// Queued packets thrown away by stop().
    pub packets_discarded: AtomicU64,
    /// Received packets handed to JavaScript.
    pub packets_delivered: AtomicU64,
    /// Received packets still in the receive ring when stop() ran, thrown away.
    pub recv_discarded: AtomicU64,
    /// Packets sent from the JavaScript thread itself (`inlineSend`).
    pub inline_sent: AtomicU64,
    /// Their payload bytes.
    pub inline_bytes: AtomicU64,
    /// Packets whose send from the JavaScript thread failed.
    pub inline_errors: AtomicU64,
}

/// Counters written by the sender thread.
#[derive(Debug, Default)]
pub(crate) struct SenderCounters {
    /// Packets of the send ring the kernel accepted.
    pub packets_sent: AtomicU64,
    /// Their payload bytes.
    pub bytes_sent: AtomicU64,
    /// Packets of the send ring whose send call failed.
    pub send_errors: AtomicU64,
    /// Packets of streams and replays the kernel accepted (generated packets count as queued and
    /// sent at once).
    pub generated_sent: AtomicU64,
    /// Their payload bytes.
    pub generated_bytes: AtomicU64,
    /// Packets of streams and replays whose send call failed.
    pub generated_errors: AtomicU64,
    /// Datagrams handed to the kernel in all (ring, streams, replays): the kernel's count of sent
    /// datagrams, which transmit-stamp keys follow.
    pub datagrams_sent: AtomicU64,
    /// Packets that left more than the spin window after their time.
    pub late_packets: AtomicU64,
    /// Times the sender left SCHED_FIFO to stay clear of RT throttling.
    pub rt_demotions: AtomicU64,
    /// Spin loops interrupted for longer than [`crate::clock::STALL_NS`].
    pub stalls: AtomicU64,
    /// The spin window currently in use, in ns.
    pub spin_window_ns: AtomicU64,
    /// GSO sends the kernel refused (`EIO`, `EINVAL`, `EMSGSIZE`); their datagrams were sent again
    /// without GSO, which the socket then stops using.
    pub gso_fallbacks: AtomicU64,
}

/// Counters written by the receiver thread.
#[derive(Debug, Default)]
pub(crate) struct ReceiverCounters {
    /// Datagrams read off the socket.
    pub packets_received: AtomicU64,
    /// Payload bytes read off the socket.
    pub bytes_received: AtomicU64,
    /// Datagrams dropped because the receive ring was full.
    pub recv_ring_overflow: AtomicU64,
    /// Datagrams the kernel dropped on this socket (SO_RXQ_OVFL), as last reported.
    pub kernel_drops: AtomicU64,
    /// Transmit timestamps read from the error queue and matched to a packet.
    pub tx_timestamps: AtomicU64,
    /// Transmit stamps not kept for `getTxTimestamps` because that queue was full.
    pub tx_records_dropped: AtomicU64,
    /// Times the receiver left SCHED_FIFO to stay clear of RT throttling.
    pub rt_demotions: AtomicU64,
    /// Datagrams analysed or reflected and not handed to JavaScript (`deliver: false`).
    pub not_delivered: AtomicU64,
    /// Replies the reflector sent.
    pub reflected: AtomicU64,
    /// Replies the reflector could not send.
    pub reflect_errors: AtomicU64,
    /// Received datagrams and error-queue entries whose control data did not fit its buffer
    /// (`MSG_CTRUNC`).
    pub control_truncated: AtomicU64,
}

/// All counters of one instance.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Written by the JavaScript thread.
    pub js: CachePadded<JsCounters>,
    /// Written by the sender.
    pub sender: CachePadded<SenderCounters>,
    /// Written by the receiver.
    pub receiver: CachePadded<ReceiverCounters>,
}

/// Highest latency the histogram resolves (60 s); larger values are clamped there, while
/// the exact maximum is kept separately.
pub(crate) const HISTOGRAM_MAX_NS: u64 = 60_000_000_000;
/// How often a sender with time to spare publishes its latencies at most (a publication costs
/// a few microseconds).
pub(crate) const PUBLISH_INTERVAL_NS: u64 = 1_000_000;
/// How stale the published latencies may get while the sender has no time to spare.
pub(crate) const PUBLISH_MAX_AGE_NS: u64 = 20_000_000;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 2).expect("valid histogram bounds")
}

/// A histogram with exact count, sum, minimum and maximum beside it.
#[derive(Clone, Debug)]
pub(crate) struct Latencies {
    /// Allocated at the first record (about 30 KB): most instances never use some of their
    /// histograms (wire latency without timestamps, delivery latency when only sending).
    histogram: Option<Box<Histogram<u64>>>,
    count: u64,
    sum_ns: u128,
    min_ns: u64,
    max_ns: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            histogram: None,
            count: 0,
            sum_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }
}

impl Latencies {
    /// Records one latency.
    #[inline]
    pub(crate) fn record(&mut self, latency_ns: u64) {
        let histogram = self.histogram.get_or_insert_with(|| Box::new(new_histogram()));
        histogram.saturating_record(latency_ns.min(HISTOGRAM_MAX_NS));
        self.count += 1;
        self.sum_ns += latency_ns as u128;
        self.min_ns = self.min_ns.min(latency_ns);
        self.max_ns = self.max_ns.max(latency_ns);
    }

    /// Number of recorded latencies.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Adds everything `other` recorded.
    pub(crate) fn add(&mut self, other: &Latencies) {
        let Some(theirs) = other.histogram.as_deref().filter(|_| other.count > 0) else {
            return;
        };
        let ours = self.histogram.get_or_insert_with(|| Box::new(new_histogram()));
        ours.add(theirs).expect("histograms have the same bounds");
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// Forgets everything, keeping the histogram's memory for reuse.
    pub(crate) fn clear(&mut self) {
        if let Some(histogram) = self.histogram.as_deref_mut() {
            histogram.reset();
        }
        self.count = 0;
        self.sum_ns = 0;
        self.min_ns = u64::MAX;
        self.max_ns = 0;
    }

    /// Percentiles and buckets, ready to report.
    pub(crate) fn summary(&self) -> LatencySummary {
        let Some(h) = self.histogram.as_deref().filter(|_| self.count > 0) else {
            return LatencySummary::default();
        };
        // Buckets double from 16 ns (a spinning sender is tens of ns late) to the maximum. A
        // recorded value counts in the first bucket whose bound is at least the highest value
        // it may stand for, so `upToNs` is a true upper bound.
        let mut buckets: Vec<Bucket> = Vec::new();
        for step in h.iter_recorded() {
            let index = bucket_index(step.value_iterated_to());
            while buckets.len() <= index {
                buckets.push(Bucket {
                    up_to_ns: FIRST_BUCKET_NS << buckets.len(),
                    count: 0,
                });
            }
            buckets[index].count += step.count_at_value();
        }
        // Percentiles come from the histogram (within 1%) but never outside the exact range.
        let at = |q: f64| h.value_at_quantile(q).clamp(self.min_ns, self.max_ns);
        LatencySummary {
            count: self.count,
            min_ns: self.min_ns,
            max_ns: self.max_ns,
            mean_ns: self.sum_ns as f64 / self.count as f64,
            p50_ns: at(0.50),
            p90_ns: at(0.90),
            p99_ns: at(0.99),
            p999_ns: at(0.999),
            buckets,
        }
    }
}

/// Upper bound of the first histogram bucket.
const FIRST_BUCKET_NS: u64 = 16;

/// Index of the doubling bucket `(16 << (k - 1), 16 << k]` that holds `value`.
fn bucket_index(value: u64) -> usize {
    let sixteenths = value.div_ceil(FIRST_BUCKET_NS);
    if sixteenths <= 1 {
        0
    } else {
        (64 - (sixteenths - 1).leading_zeros()) as usize
    }
}

/// One histogram bucket: latencies above the previous bucket's bound, up to `up_to_ns`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Upper bound of the bucket, in ns.
    pub up_to_ns: u64,
    /// Latencies in the bucket.
    pub count: u64,
}

/// A latency distribution, summarized. All zero when nothing was recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencySummary {
    /// Number of latencies.
    pub count: u64,
    /// Smallest latency, exact.
    pub min_ns: u64,
    /// Largest latency, exact.
    pub max_ns: u64,
    /// Mean latency, exact.
    pub mean_ns: f64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Doubling buckets from 16 ns up to the maximum.
    pub buckets: Vec<Bucket>,
}

/// The latencies a worker has published, readable from any thread.
#[derive(Debug, Default)]
pub(crate) struct SharedLatencies(Mutex<Latencies>);

impl SharedLatencies {
    /// Summary of everything published so far.
    pub(crate) fn summary(&self) -> LatencySummary {
        self.lock().summary()
    }

    /// A copy of everything published so far.
    pub(crate) fn get(&self) -> Latencies {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Latencies> {
        // A panic while holding this lock could only come from hdrhistogram; the data is
        // still a valid histogram, so keep using it.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A worker's private latency recorder that publishes into a [`SharedLatencies`].
#[derive(Debug, Default)]
pub(crate) struct LatencyRecorder {
    local: Latencies,
    last_publish_ns: u64,
}

impl LatencyRecorder {
    /// Records one latency (no lock, no allocation).
    #[inline]
    pub(crate) fn record(&mut self, latency_ns: u64) {
        self.local.record(latency_ns);
    }

    /// Publishes if the last publication is at least `interval_ns` old.
    pub(crate) fn publish_if_older(&mut self, shared: &SharedLatencies, now_ns: u64, interval_ns: u64) {
        if now_ns.saturating_sub(self.last_publish_ns) >= interval_ns {
            self.publish(shared, now_ns);
        }
    }

    /// Adds the private latencies to the shared ones and starts afresh.
    pub(crate) fn publish(&mut self, shared: &SharedLatencies, now_ns: u64) {
        self.last_publish_ns = now_ns;
        if self.local.count() == 0 {
            return;
        }
        shared.lock().add(&self.local);
        self.local.clear();
    }
}

/// A snapshot of every statistic of one instance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Packets the kernel accepted for sending.
    pub packets_sent: u64,
    /// Payload bytes the kernel accepted for sending.
    pub bytes_sent: u64,
    /// Datagrams the receiver read off the socket.
    pub packets_received: u64,
    /// Datagrams analysed or reflected and, with `deliver: false`, not handed to JavaScript.
    pub recv_not_delivered: u64,
    /// Replies the reflector sent.
    pub reflected: u64,
    /// Replies the reflector could not send.
    pub reflect_errors: u64,
    /// Payload bytes the receiver read off the socket.
    pub bytes_received: u64,
    /// Send calls refused because the send ring was full.
    pub send_ring_full: u64,
    /// Received datagrams dropped because the receive ring was full.
    pub recv_ring_overflow: u64,
    /// Datagrams the kernel dropped on the socket (receive buffer full).
    pub kernel_drops: u64,
    /// Queued packets thrown away by stop().
    pub packets_discarded: u64,
    /// Packets whose send call failed.
    pub send_errors: u64,
    /// Packets that left more than the spin window after their time.
    pub late_packets: u64,
    /// Packets ever queued for sending.
    pub packets_queued: u64,
    /// Packets in the send ring now.
    pub send_queue_length: u64,
    /// Received packets handed to JavaScript.
    pub packets_delivered: u64,
    /// Received packets in the receive ring now.
    pub recv_queue_length: u64,
    /// Received packets thrown away by stop() before JavaScript read them.
    pub recv_discarded: u64,
    /// Times SCHED_FIFO workers left SCHED_FIFO for a while to stay clear of RT throttling.
    pub rt_demotions: u64,
    /// Sender spin loops that were interrupted for more than 200 µs.
    pub stalls: u64,
    /// Received datagrams (and error-queue entries with transmit stamps) whose control data
    /// did not fit its buffer (`MSG_CTRUNC`): a kernel stamp or drop count of theirs may be
    /// missing. The datagrams themselves are delivered as usual.
    pub control_truncated: u64,
    /// Spin window in use by the sender, in ns.
    pub spin_window_ns: u64,
    /// GSO sends the kernel refused (`EIO`, `EINVAL`, `EMSGSIZE`: see the sender):
    /// their datagrams were sent again one by one, and the socket stopped using GSO.
    pub gso_fallbacks: u64,
    /// Send latency (departure − target).
    pub latency: LatencySummary,
    /// Transmit timestamps matched to packets.
    pub tx_timestamps: u64,
    /// Transmit stamps dropped because nobody read them with getTxTimestamps.
    pub tx_records_dropped: u64,
    /// Wire latency: kernel (or NIC) transmit stamp − target.
    pub wire_latency: LatencySummary,
    /// Delivery latency: kernel arrival stamp (or the receiver's clock read) → handed to
    /// JavaScript.
    pub delivery_latency: LatencySummary,
    /// The last error a worker saw (a failed send, an ICMP error), if any.
    pub last_error: Option<crate::error::Error>,
}

impl Counters {
    /// Fills the counter fields of a [`Stats`] (the latency summaries other than send
    /// latency are left empty for the caller).
    pub(crate) fn snapshot(&self, latency: LatencySummary) -> Stats {
        let (js, tx, rx) = (&self.js, &self.sender, &self.receiver);
        // A stream's packets are queued and sent (or failed) in the same moment: each counter is
        // read once, so the identities hold whatever the streams do meanwhile.
        let (stream_sent, stream_errors) = (read(&tx.generated_sent), read(&tx.generated_errors));
        let packets_queued = read(&js.packets_queued) + stream_sent + stream_errors;
        let packets_sent = read(&tx.packets_sent) + read(&js.inline_sent) + stream_sent;
        let send_errors = read(&tx.send_errors) + read(&js.inline_errors) + stream_errors;
        let packets_discarded = read(&js.packets_discarded);
        // Overflow before received (Acquire, pairing with the receiver's Release): every
        // overflowed or delivered datagram is then already in the received count.
        let recv_ring_overflow = rx.recv_ring_overflow.load(Ordering::Acquire);
        let packets_received = read(&rx.packets_received);
        let packets_delivered = read(&js.packets_delivered);
        let recv_discarded = read(&js.recv_discarded);
        let recv_not_delivered = read(&rx.not_delivered);
        Stats {
            packets_sent,
            bytes_sent: read(&tx.bytes_sent) + read(&js.inline_bytes) + read(&tx.generated_bytes),
            packets_received,
            bytes_received: read(&rx.bytes_received),
            send_ring_full: read(&js.send_ring_full),
            recv_ring_overflow,
            kernel_drops: read(&rx.kernel_drops),
            packets_discarded,
            send_errors,
            late_packets: read(&tx.late_packets),
            packets_queued,
            send_queue_length: packets_queued.saturating_sub(packets_sent + send_errors + packets_discarded),
            packets_delivered,
            recv_queue_length: packets_received
                .saturating_sub(recv_ring_overflow + packets_delivered + recv_discarded + recv_not_delivered),
            recv_not_delivered,
            reflected: read(&rx.reflected),
            reflect_errors: read(&rx.reflect_errors),
            recv_discarded,
            rt_demotions: read(&tx.rt_demotions) + read(&rx.rt_demotions),
            stalls: read(&tx.stalls),
            control_truncated: read(&rx.control_truncated),
            spin_window_ns: read(&tx.spin_window_ns),
            gso_fallbacks: read(&tx.gso_fallbacks),
            latency,
            tx_timestamps: read(&rx.tx_timestamps),
            tx_records_dropped: read(&rx.tx_records_dropped),
            wire_latency: LatencySummary::default(),
            delivery_latency: LatencySummary::default(),
            last_error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_exact_where_it_can_be_and_within_one_percent_elsewhere() {
        // Values spread over six orders of magnitude (1 µs to ~1 s, a fixed pseudo-random
        // sequence), so that the histogram's relative precision is what is tested.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut values: Vec<u64> = (0..10_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let exponent = (state % 6_000) as f64 / 1_000.0; // 10^0 .. 10^6
                (1_000.0 * 10f64.powf(exponent)) as u64
            })
            .collect();
        let mut l = Latencies::default();
        for &v in &values {
            l.record(v);
        }
        values.sort_unstable();
        let s = l.summary();
        // Exact: count, minimum, maximum, mean.
        assert_eq!(s.count, 10_000);
        assert_eq!(s.min_ns, values[0]);
        assert_eq!(s.max_ns, values[9_999]);
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / 10_000.0;
        assert!((s.mean_ns - mean).abs() <= mean * 1e-12, "{} vs {mean}", s.mean_ns);
        // Within 1%: every percentile, against the exact value of that rank.
        for (q, reported) in [(0.50, s.p50_ns), (0.90, s.p90_ns), (0.99, s.p99_ns), (0.999, s.p999_ns)] {
            let exact = values[((q * 10_000.0) as usize).saturating_sub(1)] as f64;
            let error = (reported as f64 - exact).abs() / exact;
            assert!(
                error <= 0.01,
                "p{}: {reported} vs exact {exact} ({:.3}% off)",
                q * 100.0,
                error * 100.0
            );
        }
        // Buckets: every value counted once, bounds doubling from 16 ns, each bucket holding
        // exactly the values in its range (to within the histogram's 1%).
        assert_eq!(s.buckets.iter().map(|b| b.count).sum::<u64>(), 10_000);
        assert_eq!(s.buckets[0].up_to_ns, 16);
        assert!(s.buckets.windows(2).all(|w| w[1].up_to_ns == w[0].up_to_ns * 2));
        for bucket in s.buckets.iter().filter(|b| b.count > 0) {
            let below = bucket.up_to_ns / 2;
            let exact = values.iter().filter(|&&v| v > below && v <= bucket.up_to_ns).count() as u64;
            let near_bounds = values
                .iter()
                .filter(|&&v| {
                    (v as f64 - below as f64).abs() <= below as f64 * 0.01
                        || (v as f64 - bucket.up_to_ns as f64).abs() <= bucket.up_to_ns as f64 * 0.01
                })
                .count() as u64;
            assert!(
                bucket.count.abs_diff(exact) <= near_bounds,
                "bucket up to {}: {} vs {exact}",
                bucket.up_to_ns,
                bucket.count
            );
        }
    }

    #[test]
    fn bucket_bounds_are_inclusive_powers_of_two_from_16() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(16), 0);
        assert_eq!(bucket_index(17), 1);
        assert_eq!(bucket_index(32), 1);
        assert_eq!(bucket_index(33), 2);
        assert_eq!(bucket_index(1 << 30), 26);
    }

    #[test]
    fn huge_latencies_are_clamped_in_the_histogram_but_exact_in_max() {
        let hour = 3_600_000_000_000;
        let mut l = Latencies::default();
        l.record(hour);
        l.record(0);
        let s = l.summary();
        // Exact where kept beside the histogram.
        assert_eq!((s.max_ns, s.min_ns, s.count), (hour, 0, 2));
        assert_eq!(s.mean_ns, hour as f64 / 2.0);
        // The histogram holds the hour at its ceiling: the top percentiles say 60 s (within
        // the histogram's 1%), not an hour...
        for p in [s.p99_ns, s.p999_ns] {
            let error = p.abs_diff(HISTOGRAM_MAX_NS) as f64 / HISTOGRAM_MAX_NS as f64;
            assert!(error <= 0.01, "{p}");
        }
        // ...and the hour counts in the bucket that holds 60 s, the last one.
        let last = s.buckets.last().unwrap();
        assert_eq!(
            (last.up_to_ns, last.count),
            (FIRST_BUCKET_NS << bucket_index(HISTOGRAM_MAX_NS), 1)
        );
        assert!(last.up_to_ns < hour);
        assert_eq!((s.buckets[0].up_to_ns, s.buckets[0].count), (16, 1), "the zero");
        assert_eq!(s.buckets.iter().map(|b| b.count).sum::<u64>(), 2);
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(Latencies::default().summary(), LatencySummary::default());
    }

    #[test]
    fn recorder_publishes_only_when_due_and_always_on_demand() {
        let shared = SharedLatencies::default();
        let mut recorder = LatencyRecorder::default();
        recorder.record(5);
        recorder.publish_if_older(&shared, PUBLISH_INTERVAL_NS, PUBLISH_INTERVAL_NS);
        assert_eq!(shared.summary().count, 1);
        recorder.record(7);
        recorder.publish_if_older(&shared, PUBLISH_INTERVAL_NS + 1, PUBLISH_INTERVAL_NS);
        assert_eq!(shared.summary().count, 1, "published again too soon");
        recorder.publish(&shared, PUBLISH_INTERVAL_NS + 2);
        let s = shared.summary();
        assert_eq!((s.count, s.min_ns, s.max_ns), (2, 5, 7));
    }

    #[test]
    fn queue_lengths_follow_from_the_counters() {
        let c = Counters::default();
        bump(&c.js.packets_queued, 10);
        bump(&c.sender.packets_sent, 6);
        bump(&c.sender.send_errors, 1);
        bump(&c.receiver.packets_received, 5);
        bump(&c.js.packets_delivered, 2);
        bump(&c.receiver.recv_ring_overflow, 1);
        let s = c.snapshot(LatencySummary::default());
        assert_eq!(s.send_queue_length, 3);
        assert_eq!(s.recv_queue_length, 2);
    }
}
