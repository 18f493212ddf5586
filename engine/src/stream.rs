//! Test streams generated on the sender thread: a schedule of ticks computed from the tick's
//! index (never accumulated), and the packets written for each tick.
//!
//! Tick i leaves at `start + floor(i × period)`, the period being a fraction kept exactly as
//! numerator and denominator (1 s / 3 is not rounded to 333,333,333 ns and summed): an hour of
//! ticks has no drift, and a tick that leaves late does not move the ones after it, the two bugs
//! users report most of replay and traffic tools (gaps measured from the previous packet, 1 ms
//! pacing timers). A tick carries `burst` packets, back to back.
//!
//! Packet `n` of a stream (0-based) is packet `n % burst` of tick `n / burst`. Its payload is the
//! stream's template with a header written over its start: the udpcom header (stream id,
//! sequence `n`, target and departure time), the iperf 2 header (sequence `n + 1`, departure
//! time), or none. Header times are CLOCK_REALTIME: the schedule's CLOCK_MONOTONIC times
//! converted with the offset the receive path uses for kernel stamps.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use crate::addr::PeerAddr;
use crate::analysis::RoundTripSnapshot;
use crate::error::{Error, Result};
use crate::header::{Iperf2Header, UdpcomHeader, IPERF2_FIRST_SEQUENCE, IPERF2_HEADER_LEN, UDPCOM_HEADER_LEN};
use crate::stats::{bump, LatencyRecorder, LatencySummary, SharedLatencies};
use crate::time::RealtimeToMonotonic;
use crate::time::NS_PER_SEC;

/// Which header a stream writes into its packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamHeader {
    /// The udpcom test header (see [`crate::header`]).
    Udpcom,
    /// The iperf 2 UDP datagram header, so that `iperf -s -u` measures the stream.
    Iperf2,
    /// The template as it is.
    None,
}

impl StreamHeader {
    /// The JavaScript name: 'udpcom', 'iperf2' or 'none'.
    pub(crate) fn name(self) -> &'static str {
        match self {
            StreamHeader::Udpcom => "udpcom",
            StreamHeader::Iperf2 => "iperf2",
            StreamHeader::None => "none",
        }
    }

    /// Bytes the header needs at the start of each packet.
    pub(crate) fn len(self) -> usize {
        match self {
            StreamHeader::Udpcom => UDPCOM_HEADER_LEN,
            StreamHeader::Iperf2 => IPERF2_HEADER_LEN,
            StreamHeader::None => 0,
        }
    }

    /// Parses the JavaScript name.
    pub fn parse(text: &str) -> Result<StreamHeader> {
        [StreamHeader::Udpcom, StreamHeader::Iperf2, StreamHeader::None]
            .into_iter()
            .find(|h| h.name() == text)
            .ok_or_else(|| {
                Error::invalid_arg_value(
                    "The property 'options.header'",
                    "must be one of 'udpcom', 'iperf2', 'none'",
                    format!("'{text}'"),
                )
            })
    }
}

/// How fast a stream goes: exactly one of these (`ratePps`, `periodNs`, `bitsPerSecond`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StreamRate {
    /// Packets per second (a tick of `burst` packets every `burst / rate` s).
    PacketsPerSecond(f64),
    /// Nanoseconds from one tick to the next.
    PeriodNs(u64),
    /// Payload bits per second (a tick every `burst × size × 8 / rate` s).
    BitsPerSecond(f64),
}

/// How long a stream goes: a number of packets, a duration, or until stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamLength {
    /// This many packets.
    Count(u64),
    /// The ticks that start within this many ns of the first.
    DurationNs(u64),
    /// Until stop().
    Unbounded,
}

/// Rates are turned into fractions with this many parts per unit, so that a rate of 2.5 pps is
/// exact and 1/3 pps is within a millionth.
const RATE_SCALE: f64 = 1e6;

/// The ticks of a stream: when each packet is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// CLOCK_MONOTONIC ns of tick 0.
    pub(crate) start_ns: u64,
    /// The period is `period_num / period_den` ns.
    period_num: u128,
    period_den: u128,
    /// Packets per tick.
    pub(crate) burst: u64,
    /// Packets in all; `None` until stopped.
    pub(crate) total: Option<u64>,
}

impl Schedule {
    /// The schedule of a stream of `size`-byte packets; checks every value.
    pub(crate) fn new(
        start_ns: u64,
        rate: StreamRate,
        burst: u64,
        size: usize,
        length: StreamLength,
    ) -> Result<Schedule> {
        if burst == 0 || burst > 1 << 20 {
            return Err(Error::out_of_range("\"options.burst\"", ">= 1 && <= 1048576", burst));
        }
        let positive = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(value)
            } else {
                Err(Error::out_of_range(
                    name,
                    "> 0 and finite",
                    crate::config::format_number(value),
                ))
            }
        };
        let (period_num, period_den) = match rate {
            StreamRate::PeriodNs(0) => return Err(Error::out_of_range("\"options.periodNs\"", ">= 1", 0)),
            StreamRate::PeriodNs(ns) => (ns as u128, 1),
            StreamRate::PacketsPerSecond(pps) => {
                let pps = positive("\"options.ratePps\"", pps)?;
                // A tick of `burst` packets every burst / pps seconds.
                (
                    burst as u128 * NS_PER_SEC as u128 * RATE_SCALE as u128,
                    (pps * RATE_SCALE).round().max(1.0) as u128,
                )
            }
            StreamRate::BitsPerSecond(bps) => {
                let bps = positive("\"options.bitsPerSecond\"", bps)?;
                if size == 0 {
                    return Err(Error::out_of_range("\"options.size\"", ">= 1 with bitsPerSecond", 0));
                }
                let bits_per_tick = burst as u128 * size as u128 * 8;
                (
                    bits_per_tick * NS_PER_SEC as u128 * RATE_SCALE as u128,
                    (bps * RATE_SCALE).round().max(1.0) as u128,
                )
            }
        };
        let mut schedule = Schedule {
            start_ns,
            period_num,
            period_den,
            burst,
            total: None,
        };
        schedule.total = match length {
            StreamLength::Count(count) => Some(count),
            StreamLength::Unbounded => None,
            // Ticks i with i × period < duration: i < duration / period.
            StreamLength::DurationNs(duration) => {
                let ticks = (duration as u128 * period_den).div_ceil(period_num);
                Some(u64::try_from(ticks.saturating_mul(burst as u128)).unwrap_or(u64::MAX))
            }
        };
        Ok(schedule)
    }

    /// CLOCK_MONOTONIC ns at which packet `n` is due: `start + floor(tick × period)`, from the
    /// tick's index alone.
    #[inline]
    pub(crate) fn target_ns(&self, n: u64) -> u64 {
        let tick = (n / self.burst) as u128;
        let offset = tick * self.period_num / self.period_den;
        self.start_ns.saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    /// The period in ns (rounded; for reports).
    pub(crate) fn period_ns(&self) -> f64 {
        self.period_num as f64 / self.period_den as f64
    }

    /// Whether packet `n` is the stream's last (a count or duration is known).
    #[inline]
    pub(crate) fn is_last(&self, n: u64) -> bool {
        self.total == Some(n + 1)
    }

    /// Whether the stream has packet `n`.
    #[inline]
    pub(crate) fn has(&self, n: u64) -> bool {
        self.total.is_none_or(|total| n < total)
    }
}

/// Writes a stream's packets: the template with the stream's header over its start.
#[derive(Clone, Debug)]
pub(crate) struct PacketWriter {
    /// The header written.
    pub(crate) header: StreamHeader,
    /// Every packet's bytes before its header fields are written (header encoded once).
    template: Vec<u8>,
}

impl PacketWriter {
    /// A writer of `size`-byte packets made of `payload` (cut or padded with zeros to `size`).
    pub(crate) fn new(stream_id: u32, header: StreamHeader, payload: &[u8], size: usize) -> Result<PacketWriter> {
        if size < header.len() {
            return Err(Error::out_of_range(
                "\"options.size\"",
                &format!(">= {} with header '{}'", header.len(), header.name()),
                size,
            ));
        }
        let mut template = vec![0; size];
        let copied = payload.len().min(size);
        template[..copied].copy_from_slice(&payload[..copied]);
        if header == StreamHeader::Udpcom {
            let fields = UdpcomHeader {
                stream_id,
                ..Default::default()
            };
            fields.encode(&mut template).map_err(Error::from)?;
        }
        Ok(PacketWriter { header, template })
    }

    /// Packet size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.template.len()
    }

    /// Writes packet `n` into `out` (exactly `size()` bytes): its header's sequence, target
    /// and last flag; the departure time is written later by [`Self::write_departure`].
    #[inline]
    pub(crate) fn write(&self, out: &mut [u8], n: u64, target_realtime_ns: u64, last: bool) {
        out.copy_from_slice(&self.template);
        // The template has room for the header (checked in `new`), so these cannot fail.
        match self.header {
            StreamHeader::Udpcom => {
                let _ = UdpcomHeader::write_sequence_and_target(out, n, target_realtime_ns);
                let _ = UdpcomHeader::set_last(out, last);
            }
            StreamHeader::Iperf2 => {
                let header = Iperf2Header {
                    sequence: n + IPERF2_FIRST_SEQUENCE,
                    last,
                    departure_ns: 0,
                };
                let _ = header.encode(out);
            }
            StreamHeader::None => {}
        }
    }

    /// Right before the send system call: the departure time, CLOCK_REALTIME ns.
    #[inline]
    pub(crate) fn write_departure(&self, out: &mut [u8], departure_realtime_ns: u64) {
        match self.header {
            StreamHeader::Udpcom => {
                let _ = UdpcomHeader::write_departure(out, departure_realtime_ns);
            }
            StreamHeader::Iperf2 => {
                let _ = Iperf2Header::write_departure(out, departure_realtime_ns);
            }
            StreamHeader::None => {}
        }
    }
}

/// A stream to start, as `startStream` asks for it (values already checked).
#[derive(Clone, Debug)]
pub struct StreamSpec {
    /// When tick 0 is due, CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    /// How fast.
    pub rate: StreamRate,
    /// How long.
    pub length: StreamLength,
    /// Packets per tick, back to back.
    pub burst: u64,
    /// Payload bytes per packet.
    pub size: usize,
    /// Bytes the header is written over (cut or padded with zeros to `size`).
    pub payload: Vec<u8>,
    /// The header written into each packet.
    pub header: StreamHeader,
    /// Where the packets go on an unconnected instance; `None`: the connected peer.
    pub destination: Option<std::net::SocketAddr>,
}

/// How a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Still running.
    Running,
    /// Every packet of its count or duration left (or failed).
    Completed,
    /// stop() was called on it.
    Stopped,
    /// The instance stopped (stop(), closeSocket(), garbage collection).
    InstanceStopped,
}

/// What the JavaScript thread and the sender share about one stream.
#[derive(Debug)]
pub(crate) struct StreamShared {
    pub(crate) id: u32,
    /// Raised by the stream's stop().
    pub(crate) stop: AtomicBool,
    /// Set by the sender when it is done with the stream (its `StreamEnd` code).
    pub(crate) end: AtomicU8,
    /// Packets the kernel accepted.
    pub(crate) sent: AtomicU64,
    /// Payload bytes the kernel accepted.
    pub(crate) bytes: AtomicU64,
    /// Packets whose send failed.
    pub(crate) errors: AtomicU64,
    /// Packets that left more than the spin window after their time.
    pub(crate) late: AtomicU64,
    /// CLOCK_MONOTONIC ns of the first and the last departure (0: none yet).
    pub(crate) first_departure_ns: AtomicU64,
    pub(crate) last_departure_ns: AtomicU64,
    /// Lateness (departure − target), published by the sender.
    pub(crate) lateness: SharedLatencies,
    /// When tick 0 was due, and the schedule's period (for reports).
    pub(crate) start_ns: u64,
    pub(crate) period_ns: f64,
}

impl StreamShared {
    /// How the stream ended, or `Running`.
    pub(crate) fn end(&self) -> StreamEnd {
        match self.end.load(Ordering::Acquire) {
            1 => StreamEnd::Completed,
            2 => StreamEnd::Stopped,
            3 => StreamEnd::InstanceStopped,
            _ => StreamEnd::Running,
        }
    }

    pub(crate) fn set_end(&self, end: StreamEnd) {
        let code = match end {
            StreamEnd::Running => 0,
            StreamEnd::Completed => 1,
            StreamEnd::Stopped => 2,
            StreamEnd::InstanceStopped => 3,
        };
        // Only the first end counts (a stream stopped by the instance after it completed).
        let _ = self.end.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
    }

    /// A snapshot of the stream's statistics.
    pub(crate) fn stats(&self) -> StreamSendStats {
        StreamSendStats {
            id: self.id,
            end: self.end(),
            sent: self.sent.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            first_departure_ns: self.first_departure_ns.load(Ordering::Relaxed),
            last_departure_ns: self.last_departure_ns.load(Ordering::Relaxed),
            start_ns: self.start_ns,
            period_ns: self.period_ns,
            lateness: self.lateness.summary(),
            round_trip: None,
        }
    }
}

/// A stream's send statistics, as of now.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSendStats {
    /// The stream's id (its udpcom header carries it).
    pub id: u32,
    /// How it ended, or `Running`.
    pub end: StreamEnd,
    /// Packets the kernel accepted.
    pub sent: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Packets whose send failed.
    pub errors: u64,
    /// Packets that left more than the spin window after their time.
    pub late: u64,
    /// CLOCK_MONOTONIC ns of the first and last departure, 0 before any.
    pub first_departure_ns: u64,
    pub last_departure_ns: u64,
    /// When tick 0 was due, CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    /// The schedule's period, ns (fractional for rates such as 3 pps).
    pub period_ns: f64,
    /// Lateness of each packet (departure − target).
    pub lateness: LatencySummary,
    /// Round trips through a reflector, when the instance analyses its replies.
    pub round_trip: Option<RoundTripSnapshot>,
}

/// A stream as the sender thread runs it.
#[derive(Debug)]
pub(crate) struct ActiveStream {
    pub(crate) shared: Arc<StreamShared>,
    schedule: Schedule,
    writer: PacketWriter,
    /// The destination of every packet (the empty address: the connected peer).
    pub(crate) destination: PeerAddr,
    /// The next packet's index.
    next: u64,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC when the stream started: its target times in the header
    /// are the schedule converted with this one offset, so that they are exactly
    /// `start + i × period` on the realtime clock too (departure times use the current offset).
    target_offset_ns: i128,
    /// The packets of the batch being built, one slot of `writer.size()` bytes each.
    slots: Vec<u8>,
    /// Packets of this stream in the batch being built.
    in_batch: usize,
    /// An iperf 2 stream stopped early still owes iperf its final (negative) datagram.
    owes_final: bool,
    /// Its packets of the batch just sent that are done (left or failed), and that left.
    batch_done: usize,
    batch_sent: usize,
    pub(crate) lateness: LatencyRecorder,
}

impl ActiveStream {
    /// A stream with id `id` following `spec`; `slots` is how many of its packets one batch can
    /// hold. Checks the values that depend on each other (size, header, rate).
    pub(crate) fn new(id: u32, spec: &StreamSpec, slots: usize) -> Result<ActiveStream> {
        let schedule = Schedule::new(spec.start_ns, spec.rate, spec.burst, spec.size, spec.length)?;
        let writer = PacketWriter::new(id, spec.header, &spec.payload, spec.size)?;
        Ok(ActiveStream {
            shared: Arc::new(StreamShared {
                id,
                stop: AtomicBool::new(false),
                end: AtomicU8::new(0),
                sent: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                late: AtomicU64::new(0),
                first_departure_ns: AtomicU64::new(0),
                last_departure_ns: AtomicU64::new(0),
                lateness: SharedLatencies::default(),
                start_ns: spec.start_ns,
                period_ns: schedule.period_ns(),
            }),
            destination: spec
                .destination
                .map_or_else(PeerAddr::default, PeerAddr::from_socket_addr),
            slots: vec![0; slots * writer.size()],
            target_offset_ns: RealtimeToMonotonic::default().offset_ns(),
            schedule,
            writer,
            next: 0,
            in_batch: 0,
            owes_final: false,
            batch_done: 0,
            batch_sent: 0,
            lateness: LatencyRecorder::default(),
        })
    }

    /// When its next packet is due (CLOCK_MONOTONIC ns); `None` when it has no more.
    #[inline]
    pub(crate) fn next_due_ns(&self) -> Option<u64> {
        let n = self.next + self.in_batch as u64;
        if self.owes_final {
            return (self.in_batch == 0).then_some(0);
        }
        (self.schedule.has(n) && self.in_batch * self.writer.size() < self.slots.len())
            .then(|| self.schedule.target_ns(n))
    }

    /// Whether the stream is over: every packet left, or stop() was asked (an iperf 2 stream
    /// then still sends its final datagram).
    pub(crate) fn finished(&mut self) -> bool {
        if self.shared.stop.load(Ordering::Acquire) && !self.owes_final && self.shared.end() == StreamEnd::Running {
            if self.writer.header == StreamHeader::Iperf2
                && self.next > 0
                && self.schedule.total.is_none_or(|t| self.next < t)
            {
                // It ends once that datagram is done (`complete`): a reader that sees the end
                // sees it counted.
                self.owes_final = true;
                return false;
            }
            self.shared.set_end(StreamEnd::Stopped);
            return true;
        }
        if self.owes_final {
            return false;
        }
        if self.shared.end() != StreamEnd::Running {
            return true;
        }
        if !self.schedule.has(self.next) {
            self.shared.set_end(StreamEnd::Completed);
            return true;
        }
        false
    }

    /// Writes its next packet into the batch; returns its target time (monotonic) and its
    /// index in the batch.
    pub(crate) fn take_next(&mut self, now_ns: u64) -> (u64, usize) {
        let n = self.next + self.in_batch as u64;
        let size = self.writer.size();
        let slot = self.in_batch * size;
        let (target_ns, last) = if self.owes_final {
            // The datagram that ends an iperf 2 test, right away.
            (now_ns, true)
        } else {
            (self.schedule.target_ns(n), self.schedule.is_last(n))
        };
        let target_realtime = (target_ns as i128 + self.target_offset_ns).max(0) as u64;
        self.writer
            .write(&mut self.slots[slot..slot + size], n, target_realtime, last);
        self.in_batch += 1;
        (target_ns, self.in_batch - 1)
    }

    /// Right before the send system call: the departure time into every packet of the batch.
    pub(crate) fn stamp_departures(&mut self, departure_realtime_ns: u64) {
        let size = self.writer.size();
        for slot in self.slots.chunks_exact_mut(size).take(self.in_batch) {
            self.writer.write_departure(slot, departure_realtime_ns);
        }
    }

    /// The packets of the batch as payload slices.
    pub(crate) fn batch_packet(&self, index: usize) -> &[u8] {
        let size = self.writer.size();
        &self.slots[index * size..(index + 1) * size]
    }

    /// Before the send's accounting: nothing of this batch is counted yet.
    pub(crate) fn begin_accounting(&mut self) {
        self.batch_done = 0;
        self.batch_sent = 0;
    }

    /// One of its packets of the batch left (or failed), `lateness_ns` after its time.
    pub(crate) fn account_packet(&mut self, failed: bool, lateness_ns: u64, late_after_ns: u64) {
        self.batch_done += 1;
        let shared = &self.shared;
        if failed {
            bump(&shared.errors, 1);
            return;
        }
        self.batch_sent += 1;
        self.lateness.record(lateness_ns);
        if lateness_ns > late_after_ns {
            bump(&shared.late, 1);
        }
    }

    /// After the send: its packets that left or failed are done (they were a prefix of its
    /// packets in the batch); the rest are built again next time.
    pub(crate) fn complete(&mut self, departure_ns: u64) {
        let shared = &self.shared;
        let sent = self.batch_sent as u64;
        if sent > 0 {
            bump(&shared.sent, sent);
            bump(&shared.bytes, sent * self.writer.size() as u64);
            if shared.first_departure_ns.load(Ordering::Relaxed) == 0 {
                shared.first_departure_ns.store(departure_ns, Ordering::Relaxed);
            }
            shared.last_departure_ns.store(departure_ns, Ordering::Relaxed);
        }
        let done = self.batch_done;
        if self.owes_final && done > 0 {
            self.owes_final = false;
            self.shared.set_end(StreamEnd::Stopped);
        } else {
            self.next += done as u64;
        }
        self.in_batch = 0;
    }

    /// Packets of this stream in the batch being built.
    pub(crate) fn in_batch(&self) -> usize {
        self.in_batch
    }

    /// Publishes its lateness so that stats() sees it.
    pub(crate) fn publish(&mut self, now_ns: u64) {
        self.lateness.publish(&self.shared.lateness, now_ns);
    }

    /// Publishes its lateness if the last publication is `interval_ns` old (a sender with no
    /// time to spare: the live statistics stay at most that stale).
    pub(crate) fn publish_if_older(&mut self, now_ns: u64, interval_ns: u64) {
        self.lateness
            .publish_if_older(&self.shared.lateness, now_ns, interval_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;

    #[test]
    fn ticks_are_computed_from_their_index_and_never_drift() {
        // 3 pps: 333,333,333.33 ns apart. Summing a rounded period drifts a third of a ns per
        // tick; from the index, tick 10,800 (one hour) is exactly 3,600 s in.
        let s = Schedule::new(1_000, StreamRate::PacketsPerSecond(3.0), 1, 64, StreamLength::Unbounded).unwrap();
        assert_eq!(s.target_ns(0), 1_000);
        assert_eq!(s.target_ns(1), 1_000 + 333_333_333);
        assert_eq!(s.target_ns(2), 1_000 + 666_666_666);
        assert_eq!(s.target_ns(10_800), 1_000 + 3_600 * NS_PER_SEC);
        let p = Schedule::new(0, StreamRate::PeriodNs(100_000), 1, 64, StreamLength::Count(36_000_000)).unwrap();
        assert_eq!(p.target_ns(35_999_999), 35_999_999 * 100_000);
        assert!(p.is_last(35_999_999) && p.has(35_999_999) && !p.has(36_000_000));
    }

    #[test]
    fn bursts_share_their_tick() {
        // 10,000 pps in bursts of 8: a tick every 800 µs.
        let s = Schedule::new(
            0,
            StreamRate::PacketsPerSecond(10_000.0),
            8,
            64,
            StreamLength::Count(20),
        )
        .unwrap();
        assert_eq!((0..8).map(|n| s.target_ns(n)).collect::<Vec<_>>(), [0; 8]);
        assert_eq!(s.target_ns(8), 800_000);
        assert_eq!(s.target_ns(19), 1_600_000);
        assert!(s.is_last(19));
        // 50 Mbit/s of 1,000-byte payloads in bursts of 8: 6,250 pps, a tick every 1.28 ms.
        let b = Schedule::new(0, StreamRate::BitsPerSecond(50e6), 8, 1000, StreamLength::Unbounded).unwrap();
        assert_eq!(b.target_ns(8), 1_280_000);
        assert_eq!(b.period_ns(), 1_280_000.0);
    }

    #[test]
    fn a_duration_is_the_ticks_that_start_within_it() {
        let s = Schedule::new(0, StreamRate::PeriodNs(100), 2, 64, StreamLength::DurationNs(1_000)).unwrap();
        assert_eq!(s.total, Some(20));
        let s = Schedule::new(0, StreamRate::PeriodNs(100), 1, 64, StreamLength::DurationNs(1_001)).unwrap();
        assert_eq!(s.total, Some(11));
    }

    #[test]
    fn bad_values_are_coded_errors() {
        let bad = [
            Schedule::new(0, StreamRate::PacketsPerSecond(0.0), 1, 64, StreamLength::Unbounded),
            Schedule::new(
                0,
                StreamRate::PacketsPerSecond(f64::NAN),
                1,
                64,
                StreamLength::Unbounded,
            ),
            Schedule::new(0, StreamRate::BitsPerSecond(-1.0), 1, 64, StreamLength::Unbounded),
            Schedule::new(0, StreamRate::PeriodNs(0), 1, 64, StreamLength::Unbounded),
            Schedule::new(0, StreamRate::PeriodNs(1), 0, 64, StreamLength::Unbounded),
            Schedule::new(0, StreamRate::BitsPerSecond(1.0), 1, 0, StreamLength::Unbounded),
        ];
        for result in bad {
            assert_eq!(result.unwrap_err().code, code::OUT_OF_RANGE);
        }
        assert_eq!(
            PacketWriter::new(1, StreamHeader::Udpcom, &[], 55).unwrap_err().code,
            code::OUT_OF_RANGE
        );
        assert_eq!(StreamHeader::parse("tcp").unwrap_err().code, code::INVALID_ARG_VALUE);
    }

    #[test]
    fn packets_carry_their_header_over_the_template() {
        let template: Vec<u8> = (0..100).collect();
        let writer = PacketWriter::new(7, StreamHeader::Udpcom, &template, 80).unwrap();
        let mut packet = vec![0; 80];
        writer.write(&mut packet, 41, 5_000, true);
        writer.write_departure(&mut packet, 5_123);
        let header = UdpcomHeader::decode(&packet).unwrap();
        assert_eq!(
            (header.stream_id, header.sequence, header.target_ns, header.departure_ns),
            (7, 41, 5_000, 5_123)
        );
        assert!(header.is_last());
        assert_eq!(&packet[56..], &template[56..80], "the rest is the template");

        let iperf = PacketWriter::new(0, StreamHeader::Iperf2, &[], 64).unwrap();
        iperf.write(&mut packet[..64], 0, 0, false);
        iperf.write_departure(&mut packet[..64], 1_700_000_000_123_456_000);
        let header = Iperf2Header::decode(&packet[..64]).unwrap();
        assert_eq!(
            (header.sequence, header.last, header.departure_ns),
            (1, false, 1_700_000_000_123_456_000)
        );

        let plain = PacketWriter::new(0, StreamHeader::None, b"abc", 5).unwrap();
        plain.write(&mut packet[..5], 9, 9, true);
        assert_eq!(&packet[..5], b"abc\0\0");
    }
}
