//! Per-stream analysis of received test datagrams: loss, duplication, reordering, jitter,
//! delay variation, one-way latency, lateness and round trips.
//!
//! The receive thread hands every datagram to an [`Analyzer`] with its arrival times; the
//! analyzer reads the datagram's header ([`crate::header`]: udpcom's or iperf 2's, chosen by
//! [`AnalyzeMode`]), finds its stream and updates the stream's counters and histograms.
//! [`Analyzer::streams`] gives a [`StreamSnapshot`] per stream, in order of first arrival.
//!
//! # Streams
//!
//! - `udpcom` mode: a stream is (stream id in the header, source address and port). Its first
//!   sequence number is 0.
//! - `iperf2` mode: a stream is (source address and port). Its first sequence number is 1.
//!   A datagram with a negative sequence number ends the stream and counts as the datagram
//!   numbered with its absolute value, as iperf 2's server counts it; every later
//!   negative-sequence datagram of the stream repeats that end (the iperf 2 client repeats it
//!   every 10 ms until a server answers) and is counted in `end_repeats`, nothing else.
//!   Datagrams with sequence number 0 are not analysed (iperf 2 ignores them too).
//!
//! A datagram that does not carry the mode's header (too short, wrong magic or version, an
//! iperf 2 tv_usec of 10^6 or more, sequence 0) is counted in
//! [`AnalyzerTotals::unrecognized`]. Past [`Analyzer::max_streams`] streams, datagrams of new
//! streams are counted in [`AnalyzerTotals::beyond_stream_limit`]. So every datagram is
//! counted once: `datagrams = unrecognized + beyond_stream_limit + Σ (received + end_repeats)`.
//!
//! # Metrics
//!
//! All times are in nanoseconds. Header times are CLOCK_REALTIME. *D(i)*, the one-way delay
//! of the datagram with sequence number *i*, is its arrival time (CLOCK_REALTIME) minus the
//! departure time in its header; it is signed, since the clocks of two hosts may disagree.
//! Differences of delays (jitter, IPDV) use the CLOCK_MONOTONIC arrival time instead, so that
//! a step of the receiver's realtime clock does not show up as delay variation.
//!
//! - **received**: datagrams of the stream, duplicates included.
//! - **duplicates**: datagrams whose sequence number had already been received.
//! - **expected** = highest sequence number seen − first sequence number + 1.
//! - **lost** = expected − distinct sequence numbers received. A datagram that arrives late
//!   fills in its loss: lost decreases.
//! - **lossRuns**: the number of maximal runs of consecutive missing sequence numbers between
//!   the first sequence number and the highest seen (0, 1, 4, 5 received: one run, {2, 3}).
//! - **reordered** (RFC 4737 §3, Type-P-Reordered): a datagram is reordered if its sequence
//!   number is lower than NextExp, the highest sequence number received before it + 1.
//!   Duplicates are not reordered: as RFC 4737 says, only the first copy of a sequence number
//!   takes part in the analysis.
//! - **maxReorderExtent** (RFC 4737 §4.2): number the non-duplicate arrivals 1, 2, 3, ...;
//!   for a reordered datagram at arrival position *i*, its extent is *e = i − j*, with *j* the
//!   earliest arrival position holding a sequence number greater than its own. The maximum
//!   over the stream's reordered datagrams.
//! - **jitterNs** (RFC 3550 §6.4.1 and A.8, interarrival jitter): for consecutive arrivals
//!   *i − 1*, *i* (arrival order, duplicates left out), *D(i−1, i)* = (arrival *i* − arrival
//!   *i − 1*) − (departure *i* − departure *i − 1*), and *J += (|D(i−1, i)| − J) / 16*,
//!   starting from *J = 0*; in ns (the RFC uses RTP timestamp units), as a float.
//! - **IPDV** (RFC 5481 §4.1, with the "consecutive packets" selection): *IPDV(i) = D(i) −
//!   D(i − 1)* for every pair of consecutive sequence numbers *i − 1*, *i* that were both
//!   received, whatever their arrival order; signed. **ipdvP50Ns**, **ipdvP99Ns**: percentiles
//!   of that signed distribution.
//! - **PDV** (RFC 5481 §4.2): *PDV(i) = D(i) − D_min*, with *D_min* the smallest delay of the
//!   stream. **pdvP99Ns** = 99th percentile of *D* − *D_min*.
//! - **oneWayLatency** p50/p99/p999/max: of *D*; meaningful when the two clocks are one (one
//!   host, or hosts under PTP). For an iperf 2 datagram the departure has microsecond
//!   resolution.
//! - **lateness** p50/p99/max (`udpcom` only, 0 for `iperf2`): arrival (CLOCK_REALTIME) −
//!   target time in the header; signed.
//! - **firstArrivalNs**, **lastArrivalNs**: CLOCK_MONOTONIC arrival of the stream's first and
//!   last datagram (duplicates included). **ratePps** = (received − 1) / (last − first
//!   arrival, in s); 0 with fewer than two datagrams.
//! - **Round trip** (udpcom datagrams with the `REFLECTED` flag, i.e. replies of a
//!   reflector, analysed on the original sender): round-trip time = arrival − departure −
//!   (reflector send − reflector receive); forward = reflector receive − departure; backward =
//!   arrival − reflector send (forward and backward compare two hosts' clocks). Kept in
//!   [`StreamSnapshot::round_trip`]. The other metrics of such a stream measure the whole
//!   round trip: its one-way latency is arrival − original departure.
//!
//! Percentiles are nearest-rank (the smallest value with at least *q* of the values at or
//! below it) over HDR histograms of 2 significant digits: each is an upper bound within 1% of
//! the true value, and never outside the exact minimum and maximum, which are kept beside.
//! Signed values keep their negative and non-negative magnitudes in two histograms, joined for
//! the quantile. Magnitudes beyond 60 s are clamped in the histograms (the maximum stays
//! exact). A datagram whose header has no departure time (0) takes no part in jitter, IPDV,
//! PDV, latency or round trip; one without a target time takes no part in lateness.
//!
//! # Bounded memory, and what happens beyond the windows
//!
//! Each stream remembers which of the last [`SEQUENCE_WINDOW`] (65,536) sequence numbers below
//! the highest it has received (8 KiB), so duplicates, late fills, loss runs and reordering
//! extents are exact for datagrams that arrive at most that far behind. A datagram further
//! behind is **too old** to check: it counts as received and reordered and in `too_old`, but
//! cannot be told from a duplicate, so it does not fill in a loss (its sequence number stays
//! counted in `lost`) and takes no part in the other metrics. IPDV pairs are found for
//! sequence numbers within [`IPDV_WINDOW`] (1,024) of the highest; a pair further behind is
//! counted in `ipdv_pairs_beyond_window`. Reordering extents need the arrival positions of
//! past record-setting datagrams, kept as up to [`MAX_RECORD_RUNS`] runs of consecutive
//! in-order arrivals (one run per loss or reordering event in the window); when more are
//! needed the oldest are forgotten, and a reordered datagram whose extent would need them is
//! counted in `reorder_extent_unknown` instead.
//!
//! A stream costs about 17 KiB, plus about 30 KiB for each histogram it fills (one-way
//! latency, IPDV and lateness, each with a second one for negative values when there are
//! any, and three more for round trips), plus up to 24 KiB of reordering records under heavy
//! loss or reordering. Per datagram nothing is allocated, except when a stream's histogram
//! takes its first value or its records outgrow their room (a few times per stream at most).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::{SocketAddr, SocketAddrV6};

use hdrhistogram::Histogram;

use crate::header::{Iperf2Header, UdpcomHeader, IPERF2_FIRST_SEQUENCE};
use crate::stats::HISTOGRAM_MAX_NS;

/// Which header the analyzed datagrams carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnalyzeMode {
    /// The udpcom header ([`UdpcomHeader`]); streams by stream id and source.
    Udpcom,
    /// The iperf 2 UDP header ([`Iperf2Header`]); streams by source.
    Iperf2,
}

impl AnalyzeMode {
    /// The sequence number of a stream's first datagram.
    pub fn first_sequence(self) -> u64 {
        match self {
            AnalyzeMode::Udpcom => 0,
            AnalyzeMode::Iperf2 => IPERF2_FIRST_SEQUENCE,
        }
    }
}

/// Streams an [`Analyzer`] keeps by default.
pub const DEFAULT_MAX_STREAMS: usize = 1024;
/// Sequence numbers below the highest for which a stream remembers what it received.
pub const SEQUENCE_WINDOW: u64 = 65_536;
/// Sequence numbers below the highest for which a stream remembers delays, for IPDV pairs.
pub const IPDV_WINDOW: u64 = 1_024;
/// Runs of record-setting arrivals a stream keeps for reordering extents.
pub const MAX_RECORD_RUNS: usize = 1_024;

/// What became of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A sequence number above every one before it in the stream.
    InOrder,
    /// A sequence number below NextExp, received for the first time (it filled in a loss).
    Reordered,
    /// A sequence number already received.
    Duplicate,
    /// Reordered, and too far behind the highest sequence number to be checked.
    TooOld,
    /// An iperf 2 end-of-test datagram after the first.
    EndRepeat,
    /// Not the mode's header.
    Unrecognized,
    /// A new stream when [`Analyzer::max_streams`] streams exist already.
    BeyondStreamLimit,
}

/// Counts over all datagrams given to an [`Analyzer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnalyzerTotals {
    /// Datagrams given to [`Analyzer::analyze`].
    pub datagrams: u64,
    /// Datagrams that belong to a stream (each stream's `received + end_repeats`).
    pub analysed: u64,
    /// Datagrams that did not carry the mode's header.
    pub unrecognized: u64,
    /// Datagrams of new streams refused because the stream limit was reached.
    pub beyond_stream_limit: u64,
    /// Streams seen.
    pub streams: u64,
}

/// Round-trip statistics of a stream of reflected datagrams (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundTripSnapshot {
    /// Reflected datagrams with all four times.
    pub count: u64,
    /// Round-trip time, median.
    pub rtt_p50_ns: i64,
    /// Round-trip time, 99th percentile.
    pub rtt_p99_ns: i64,
    /// Round-trip time, largest.
    pub rtt_max_ns: i64,
    /// Reflector receive − departure, median.
    pub forward_p50_ns: i64,
    /// Arrival − reflector send, median.
    pub backward_p50_ns: i64,
}

/// Everything known about one stream (see the module doc for the definitions).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamSnapshot {
    /// The header's stream id (`udpcom`), None for `iperf2`.
    pub stream_id: Option<u32>,
    /// Where the stream's datagrams come from.
    pub source: SocketAddr,
    /// Datagrams received, duplicates included.
    pub received: u64,
    /// Highest sequence number − first sequence number + 1 (0 before any datagram).
    pub expected: u64,
    /// Expected − distinct sequence numbers received.
    pub lost: u64,
    /// Maximal runs of consecutive missing sequence numbers.
    pub loss_runs: u64,
    /// Datagrams whose sequence number had been received before.
    pub duplicates: u64,
    /// Datagrams below NextExp (RFC 4737), too-old ones included.
    pub reordered: u64,
    /// Largest RFC 4737 reordering extent, in arrival positions.
    pub max_reorder_extent: u64,
    /// RFC 3550 interarrival jitter, ns.
    pub jitter_ns: f64,
    /// Median IPDV, ns (signed).
    pub ipdv_p50_ns: i64,
    /// 99th percentile of IPDV, ns (signed).
    pub ipdv_p99_ns: i64,
    /// IPDV pairs measured.
    pub ipdv_pairs: u64,
    /// 99th percentile of the one-way delay − its minimum, ns.
    pub pdv_p99_ns: u64,
    /// One-way latency, median, ns (signed).
    pub one_way_latency_p50_ns: i64,
    /// One-way latency, 99th percentile, ns.
    pub one_way_latency_p99_ns: i64,
    /// One-way latency, 99.9th percentile, ns.
    pub one_way_latency_p999_ns: i64,
    /// One-way latency, largest, ns.
    pub one_way_latency_max_ns: i64,
    /// One-way latency, smallest, ns.
    pub one_way_latency_min_ns: i64,
    /// Datagrams with a departure time that took part in the latency metrics.
    pub timed: u64,
    /// Arrival − target, median, ns (signed; 0 without targets).
    pub lateness_p50_ns: i64,
    /// Arrival − target, 99th percentile, ns.
    pub lateness_p99_ns: i64,
    /// Arrival − target, largest, ns.
    pub lateness_max_ns: i64,
    /// CLOCK_MONOTONIC arrival of the first datagram, ns.
    pub first_arrival_ns: u64,
    /// CLOCK_MONOTONIC arrival of the last datagram, ns.
    pub last_arrival_ns: u64,
    /// (received − 1) / (last − first arrival), datagrams per second.
    pub rate_pps: f64,
    /// Reordered datagrams too far behind to be checked (see the module doc).
    pub too_old: u64,
    /// Reordered datagrams whose extent could not be computed (see the module doc).
    pub reorder_extent_unknown: u64,
    /// IPDV pairs not measured because they were too far behind (see the module doc).
    pub ipdv_pairs_beyond_window: u64,
    /// iperf 2 end-of-test datagrams after the first.
    pub end_repeats: u64,
    /// The stream's end was seen (udpcom `LAST` flag, iperf 2 negative sequence number).
    pub ended: bool,
    /// Round-trip statistics, when the stream's datagrams are reflector replies.
    pub round_trip: Option<RoundTripSnapshot>,
}

/// Analyses received datagrams per stream; one per receiving socket, used by one thread.
#[derive(Debug)]
pub struct Analyzer {
    mode: AnalyzeMode,
    max_streams: usize,
    streams: Vec<StreamState>,
    index: HashMap<StreamKey, usize>,
    /// The stream of the previous datagram: consecutive datagrams mostly share one.
    last: Option<(StreamKey, usize)>,
    datagrams: u64,
    unrecognized: u64,
    beyond_stream_limit: u64,
}

impl Analyzer {
    /// An analyzer that keeps up to [`DEFAULT_MAX_STREAMS`] streams.
    pub fn new(mode: AnalyzeMode) -> Analyzer {
        Analyzer::with_max_streams(mode, DEFAULT_MAX_STREAMS)
    }

    /// An analyzer that keeps up to `max_streams` streams.
    pub fn with_max_streams(mode: AnalyzeMode, max_streams: usize) -> Analyzer {
        Analyzer {
            mode,
            max_streams,
            streams: Vec::new(),
            index: HashMap::new(),
            last: None,
            datagrams: 0,
            unrecognized: 0,
            beyond_stream_limit: 0,
        }
    }

    /// The header this analyzer reads.
    pub fn mode(&self) -> AnalyzeMode {
        self.mode
    }

    /// The most streams it keeps.
    pub fn max_streams(&self) -> usize {
        self.max_streams
    }

    /// Analyses one datagram. `arrival_mono_ns` is its arrival on CLOCK_MONOTONIC,
    /// `arrival_realtime_ns` the same instant on CLOCK_REALTIME (ns since the Unix epoch),
    /// `payload` the UDP payload.
    pub fn analyze(
        &mut self,
        arrival_mono_ns: u64,
        arrival_realtime_ns: u64,
        source: SocketAddr,
        payload: &[u8],
    ) -> Outcome {
        self.datagrams += 1;
        let Some(datagram) = parse(self.mode, payload) else {
            self.unrecognized += 1;
            return Outcome::Unrecognized;
        };
        let key = StreamKey::new(datagram.stream_id, source);
        let index = match self.last {
            Some((last_key, index)) if last_key == key => index,
            _ => match self.find_or_add(key, arrival_mono_ns) {
                Some(index) => {
                    self.last = Some((key, index));
                    index
                }
                None => {
                    self.beyond_stream_limit += 1;
                    return Outcome::BeyondStreamLimit;
                }
            },
        };
        self.streams[index].on_datagram(&datagram, arrival_mono_ns, arrival_realtime_ns)
    }

    fn find_or_add(&mut self, key: StreamKey, arrival_mono_ns: u64) -> Option<usize> {
        if let Some(&index) = self.index.get(&key) {
            return Some(index);
        }
        if self.streams.len() >= self.max_streams {
            return None;
        }
        let index = self.streams.len();
        self.streams
            .push(StreamState::new(key, self.mode.first_sequence(), arrival_mono_ns));
        self.index.insert(key, index);
        Some(index)
    }

    /// A snapshot of every stream, in order of first arrival.
    pub fn streams(&self) -> Vec<StreamSnapshot> {
        self.streams.iter().map(StreamState::snapshot).collect()
    }

    /// Counts over all datagrams.
    pub fn totals(&self) -> AnalyzerTotals {
        AnalyzerTotals {
            datagrams: self.datagrams,
            analysed: self.streams.iter().map(|s| s.received + s.end_repeats).sum(),
            unrecognized: self.unrecognized,
            beyond_stream_limit: self.beyond_stream_limit,
            streams: self.streams.len() as u64,
        }
    }
}

/// What names a stream. The IPv6 flow label is not part of it (it is zeroed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StreamKey {
    stream_id: Option<u32>,
    source: SocketAddr,
}

impl StreamKey {
    fn new(stream_id: Option<u32>, source: SocketAddr) -> StreamKey {
        let source = match source {
            SocketAddr::V6(v6) if v6.flowinfo() != 0 => {
                SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, v6.scope_id()))
            }
            other => other,
        };
        StreamKey { stream_id, source }
    }
}

impl Hash for StreamKey {
    /// Feeds the hasher one or two 128-bit words rather than field by field: the derived
    /// hash made SipHash a quarter of the cost of a datagram that changes streams.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let id = self.stream_id.map_or(0, |id| (1u128 << 32) | id as u128);
        match self.source {
            SocketAddr::V4(v4) => state.write_u128(id << 64 | (u32::from(*v4.ip()) as u128) << 16 | v4.port() as u128),
            SocketAddr::V6(v6) => {
                state.write_u128(u128::from(*v6.ip()));
                state.write_u128(id << 64 | (v6.scope_id() as u128) << 16 | v6.port() as u128 | 1 << 63);
            }
        }
    }
}

/// What the analysis needs from a header, whichever format it came in.
#[derive(Clone, Copy, Debug)]
struct Datagram {
    stream_id: Option<u32>,
    sequence: u64,
    /// 0: absent.
    departure_ns: u64,
    /// 0: absent.
    target_ns: u64,
    last: bool,
    /// iperf 2: a later end-of-test datagram repeats the first.
    end_repeats: bool,
    /// Reflector receive and send times, for a reflected datagram that has both.
    reflector: Option<(u64, u64)>,
}

#[inline]
fn parse(mode: AnalyzeMode, payload: &[u8]) -> Option<Datagram> {
    match mode {
        AnalyzeMode::Udpcom => {
            let header = UdpcomHeader::decode(payload).ok()?;
            let (receive_ns, send_ns) = (header.reflector_receive_ns, header.reflector_send_ns);
            Some(Datagram {
                stream_id: Some(header.stream_id),
                sequence: header.sequence,
                departure_ns: header.departure_ns,
                target_ns: header.target_ns,
                last: header.is_last(),
                end_repeats: false,
                reflector: (header.is_reflected() && receive_ns != 0 && send_ns != 0).then_some((receive_ns, send_ns)),
            })
        }
        AnalyzeMode::Iperf2 => {
            let header = Iperf2Header::decode(payload).ok()?;
            if header.sequence == 0 {
                return None;
            }
            Some(Datagram {
                stream_id: None,
                sequence: header.sequence,
                departure_ns: header.departure_ns,
                target_ns: 0,
                last: header.last,
                end_repeats: true,
                reflector: None,
            })
        }
    }
}

/// `a − b` as a signed number, saturated to `i64` (and never `i64::MIN`, which marks an
/// absent delay in the IPDV ring).
#[inline]
fn signed_diff(a: u64, b: u64) -> i64 {
    (a as i128 - b as i128).clamp(i64::MIN as i128 + 1, i64::MAX as i128) as i64
}

/// Marks "no delay known" in the IPDV ring.
const NO_TRANSIT: i64 = i64::MIN;

/// Record-setting arrivals (new highest sequence numbers) with consecutive sequence numbers
/// at consecutive arrival positions: `first_sequence + k` arrived at `first_arrival + k` for
/// every `k < len`.
#[derive(Clone, Copy, Debug)]
struct RecordRun {
    first_sequence: u64,
    first_arrival: u64,
    len: u64,
}

impl RecordRun {
    fn last_sequence(&self) -> u64 {
        self.first_sequence + (self.len - 1)
    }
}

#[derive(Debug)]
struct StreamState {
    key: StreamKey,
    first_sequence: u64,
    received: u64,
    /// Sequence numbers received (first copies, too-old ones excluded).
    distinct: u64,
    duplicates: u64,
    reordered: u64,
    too_old: u64,
    loss_runs: u64,
    max_reorder_extent: u64,
    reorder_extent_unknown: u64,
    ipdv_pairs_beyond_window: u64,
    end_repeats: u64,
    ended: bool,
    /// Whether any sequence number was received (then `highest` is meaningful).
    started: bool,
    highest: u64,
    /// Non-duplicate arrivals so far: the arrival position of the latest.
    arrivals: u64,
    /// Bit `s % SEQUENCE_WINDOW`: sequence number `s` received, for `s` in the window.
    seen: Box<[u64]>,
    /// Slot `s % IPDV_WINDOW`: arrival (monotonic) − departure of sequence number `s`.
    transit: Box<[i64]>,
    records: VecDeque<RecordRun>,
    /// The highest sequence number of the record runs dropped to stay within
    /// [`MAX_RECORD_RUNS`].
    forgotten_records_up_to: Option<u64>,
    previous_transit: Option<i64>,
    jitter_ns: f64,
    latency: SignedHistogram,
    ipdv: SignedHistogram,
    lateness: SignedHistogram,
    rtt: SignedHistogram,
    forward: SignedHistogram,
    backward: SignedHistogram,
    first_arrival_ns: u64,
    last_arrival_ns: u64,
}

impl StreamState {
    fn new(key: StreamKey, first_sequence: u64, arrival_mono_ns: u64) -> StreamState {
        StreamState {
            key,
            first_sequence,
            received: 0,
            distinct: 0,
            duplicates: 0,
            reordered: 0,
            too_old: 0,
            loss_runs: 0,
            max_reorder_extent: 0,
            reorder_extent_unknown: 0,
            ipdv_pairs_beyond_window: 0,
            end_repeats: 0,
            ended: false,
            started: false,
            highest: 0,
            arrivals: 0,
            seen: vec![0u64; (SEQUENCE_WINDOW / 64) as usize].into_boxed_slice(),
            transit: vec![NO_TRANSIT; IPDV_WINDOW as usize].into_boxed_slice(),
            records: VecDeque::with_capacity(16),
            forgotten_records_up_to: None,
            previous_transit: None,
            jitter_ns: 0.0,
            latency: SignedHistogram::default(),
            ipdv: SignedHistogram::default(),
            lateness: SignedHistogram::default(),
            rtt: SignedHistogram::default(),
            forward: SignedHistogram::default(),
            backward: SignedHistogram::default(),
            first_arrival_ns: arrival_mono_ns,
            last_arrival_ns: arrival_mono_ns,
        }
    }

    #[inline]
    fn is_seen(&self, sequence: u64) -> bool {
        let slot = sequence % SEQUENCE_WINDOW;
        self.seen[(slot / 64) as usize] & (1 << (slot % 64)) != 0
    }

    #[inline]
    fn mark_seen(&mut self, sequence: u64) {
        let slot = sequence % SEQUENCE_WINDOW;
        self.seen[(slot / 64) as usize] |= 1 << (slot % 64);
    }

    /// Clears the window's bits for the sequence numbers `from..to`.
    fn clear_seen(&mut self, from: u64, to: u64) {
        let mut count = to - from;
        if count >= SEQUENCE_WINDOW {
            self.seen.fill(0);
            return;
        }
        let mut slot = from % SEQUENCE_WINDOW;
        while count > 0 {
            let bit = slot % 64;
            let bits = (64 - bit).min(count);
            let mask = if bits == 64 {
                u64::MAX
            } else {
                ((1u64 << bits) - 1) << bit
            };
            self.seen[(slot / 64) as usize] &= !mask;
            count -= bits;
            slot = (slot + bits) % SEQUENCE_WINDOW;
        }
    }

    fn on_datagram(&mut self, datagram: &Datagram, arrival_mono_ns: u64, arrival_realtime_ns: u64) -> Outcome {
        if datagram.last && datagram.end_repeats && self.ended {
            self.end_repeats += 1;
            return Outcome::EndRepeat;
        }
        self.received += 1;
        self.last_arrival_ns = arrival_mono_ns;
        self.ended |= datagram.last;
        let sequence = datagram.sequence;
        let outcome = if !self.started || sequence > self.highest {
            self.advance_to(sequence);
            Outcome::InOrder
        } else {
            match self.fill_in(sequence) {
                Outcome::Reordered => Outcome::Reordered,
                other => return other,
            }
        };
        self.record_times(datagram, arrival_mono_ns, arrival_realtime_ns);
        outcome
    }

    /// A new highest sequence number.
    #[inline]
    fn advance_to(&mut self, sequence: u64) {
        // Sequence numbers gap_start..sequence are missing: a new run of losses, bounded
        // below by a received datagram (or the stream's start) and above by this one.
        let gap_start = if self.started {
            self.highest + 1
        } else {
            self.first_sequence
        };
        if sequence > gap_start {
            self.loss_runs += 1;
            self.clear_seen(gap_start, sequence);
        }
        self.mark_seen(sequence);
        self.started = true;
        self.highest = sequence;
        self.distinct += 1;
        self.arrivals += 1;

        let arrival = self.arrivals;
        match self.records.back_mut() {
            Some(run) if run.last_sequence() + 1 == sequence && run.first_arrival + run.len == arrival => run.len += 1,
            _ => {
                if self.records.len() == MAX_RECORD_RUNS {
                    let dropped = self.records.pop_front().map(|run| run.last_sequence());
                    self.forgotten_records_up_to = dropped;
                }
                self.records.push_back(RecordRun {
                    first_sequence: sequence,
                    first_arrival: arrival,
                    len: 1,
                });
            }
        }
        // Runs that ended below the window are never looked up again.
        let window_low = sequence.saturating_sub(SEQUENCE_WINDOW - 1);
        while self.records.front().is_some_and(|run| run.last_sequence() < window_low) {
            self.records.pop_front();
        }
    }

    /// A sequence number at or below the highest: a duplicate, a late arrival that fills in a
    /// loss (returns [`Outcome::Reordered`]), or one too old to check.
    fn fill_in(&mut self, sequence: u64) -> Outcome {
        // The window holds window_low..=highest. A late arrival also needs to know whether
        // sequence − 1 was received (for loss runs), so it must be above window_low unless
        // it is the stream's first sequence number.
        let window_low = self.highest.saturating_sub(SEQUENCE_WINDOW - 1);
        let checkable = sequence > window_low || (sequence == window_low && sequence == self.first_sequence);
        if !checkable {
            self.arrivals += 1;
            self.reordered += 1;
            self.too_old += 1;
            return Outcome::TooOld;
        }
        if self.is_seen(sequence) {
            self.duplicates += 1;
            return Outcome::Duplicate;
        }
        self.mark_seen(sequence);
        self.distinct += 1;
        self.arrivals += 1;
        self.reordered += 1;

        // It sits inside a run of losses (sequence + 1 <= highest exists): the run loses an
        // end, vanishes, or splits in two.
        let previous_missing = sequence > self.first_sequence && !self.is_seen(sequence - 1);
        let next_missing = !self.is_seen(sequence + 1);
        match (previous_missing, next_missing) {
            (false, false) => self.loss_runs -= 1,
            (true, true) => self.loss_runs += 1,
            _ => {}
        }

        // RFC 4737 extent: the earliest arrival with a greater sequence number is the
        // record-setter that first reached sequence + 1 or more.
        let wanted = sequence + 1;
        let at = self.records.partition_point(|run| run.last_sequence() < wanted);
        let forgotten = self.forgotten_records_up_to.is_some_and(|up_to| wanted <= up_to);
        match self.records.get(at) {
            Some(run) if !forgotten => {
                let earliest = if wanted >= run.first_sequence {
                    run.first_arrival + (wanted - run.first_sequence)
                } else {
                    run.first_arrival
                };
                self.max_reorder_extent = self.max_reorder_extent.max(self.arrivals - earliest);
            }
            _ => self.reorder_extent_unknown += 1,
        }
        Outcome::Reordered
    }

    /// Timing metrics of a datagram that is neither a duplicate nor too old.
    #[inline]
    fn record_times(&mut self, datagram: &Datagram, arrival_mono_ns: u64, arrival_realtime_ns: u64) {
        let sequence = datagram.sequence;
        if datagram.target_ns != 0 {
            self.lateness
                .record(signed_diff(arrival_realtime_ns, datagram.target_ns));
        }
        if datagram.departure_ns == 0 {
            self.store_transit(sequence, NO_TRANSIT);
            return;
        }
        let departure_ns = datagram.departure_ns;
        self.latency.record(signed_diff(arrival_realtime_ns, departure_ns));

        // Differences of delays on the monotonic arrival clock (the offset between the two
        // clocks cancels out).
        let transit = signed_diff(arrival_mono_ns, departure_ns);
        if let Some(previous) = self.previous_transit {
            let difference = transit.saturating_sub(previous);
            self.jitter_ns += (difference.unsigned_abs() as f64 - self.jitter_ns) / 16.0;
        }
        self.previous_transit = Some(transit);
        self.store_transit(sequence, transit);

        if let Some((receive_ns, send_ns)) = datagram.reflector {
            let hold = signed_diff(send_ns, receive_ns);
            self.rtt
                .record(signed_diff(arrival_realtime_ns, departure_ns).saturating_sub(hold));
            self.forward.record(signed_diff(receive_ns, departure_ns));
            self.backward.record(signed_diff(arrival_realtime_ns, send_ns));
        }
    }

    /// Keeps the delay of `sequence` for IPDV and measures the pairs it completes.
    #[inline]
    fn store_transit(&mut self, sequence: u64, transit: i64) {
        let ipdv_low = self.highest.saturating_sub(IPDV_WINDOW - 1);
        let has_previous = sequence > self.first_sequence && self.is_seen(sequence - 1);
        let has_next = sequence < self.highest && self.is_seen(sequence + 1);
        if sequence < ipdv_low {
            self.ipdv_pairs_beyond_window += has_previous as u64 + has_next as u64;
            return;
        }
        self.transit[(sequence % IPDV_WINDOW) as usize] = transit;
        if transit == NO_TRANSIT {
            return;
        }
        if has_previous && sequence > ipdv_low {
            let previous = self.transit[((sequence - 1) % IPDV_WINDOW) as usize];
            if previous != NO_TRANSIT {
                self.ipdv.record(transit.saturating_sub(previous));
            }
        }
        if has_next {
            let next = self.transit[((sequence + 1) % IPDV_WINDOW) as usize];
            if next != NO_TRANSIT {
                self.ipdv.record(next.saturating_sub(transit));
            }
        }
    }

    fn expected(&self) -> u64 {
        if self.started {
            (self.highest - self.first_sequence).saturating_add(1)
        } else {
            0
        }
    }

    fn snapshot(&self) -> StreamSnapshot {
        let expected = self.expected();
        let span_ns = self.last_arrival_ns.saturating_sub(self.first_arrival_ns);
        let rate_pps = if self.received >= 2 && span_ns > 0 {
            (self.received - 1) as f64 / (span_ns as f64 / 1e9)
        } else {
            0.0
        };
        let latency_p99 = self.latency.quantile(P99);
        let round_trip = (self.rtt.count > 0).then(|| RoundTripSnapshot {
            count: self.rtt.count,
            rtt_p50_ns: self.rtt.quantile(P50),
            rtt_p99_ns: self.rtt.quantile(P99),
            rtt_max_ns: self.rtt.max(),
            forward_p50_ns: self.forward.quantile(P50),
            backward_p50_ns: self.backward.quantile(P50),
        });
        StreamSnapshot {
            stream_id: self.key.stream_id,
            source: self.key.source,
            received: self.received,
            expected,
            lost: expected.saturating_sub(self.distinct),
            loss_runs: self.loss_runs,
            duplicates: self.duplicates,
            reordered: self.reordered,
            max_reorder_extent: self.max_reorder_extent,
            jitter_ns: self.jitter_ns,
            ipdv_p50_ns: self.ipdv.quantile(P50),
            ipdv_p99_ns: self.ipdv.quantile(P99),
            ipdv_pairs: self.ipdv.count,
            pdv_p99_ns: (latency_p99 as i128 - self.latency.min() as i128).clamp(0, u64::MAX as i128) as u64,
            one_way_latency_p50_ns: self.latency.quantile(P50),
            one_way_latency_p99_ns: latency_p99,
            one_way_latency_p999_ns: self.latency.quantile(P999),
            one_way_latency_max_ns: self.latency.max(),
            one_way_latency_min_ns: self.latency.min(),
            timed: self.latency.count,
            lateness_p50_ns: self.lateness.quantile(P50),
            lateness_p99_ns: self.lateness.quantile(P99),
            lateness_max_ns: self.lateness.max(),
            first_arrival_ns: self.first_arrival_ns,
            last_arrival_ns: self.last_arrival_ns,
            rate_pps,
            too_old: self.too_old,
            reorder_extent_unknown: self.reorder_extent_unknown,
            ipdv_pairs_beyond_window: self.ipdv_pairs_beyond_window,
            end_repeats: self.end_repeats,
            ended: self.ended,
            round_trip,
        }
    }
}

/// A quantile as an exact fraction, so that ranks are computed without rounding.
#[derive(Clone, Copy, Debug)]
struct Quantile {
    numerator: u64,
    denominator: u64,
}

const P50: Quantile = Quantile {
    numerator: 1,
    denominator: 2,
};
const P99: Quantile = Quantile {
    numerator: 99,
    denominator: 100,
};
const P999: Quantile = Quantile {
    numerator: 999,
    denominator: 1000,
};

#[cold]
#[inline(never)]
fn new_histogram() -> Box<Histogram<u64>> {
    Box::new(Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 2).expect("valid histogram bounds"))
}

/// Signed values: magnitudes of the negative ones and the non-negative ones in two HDR
/// histograms (each allocated at its first value), exact count, minimum and maximum beside.
#[derive(Debug)]
struct SignedHistogram {
    negative: Option<Box<Histogram<u64>>>,
    non_negative: Option<Box<Histogram<u64>>>,
    count: u64,
    min: i64,
    max: i64,
}

impl Default for SignedHistogram {
    fn default() -> Self {
        SignedHistogram {
            negative: None,
            non_negative: None,
            count: 0,
            min: i64::MAX,
            max: i64::MIN,
        }
    }
}

impl SignedHistogram {
    #[inline]
    fn record(&mut self, value: i64) {
        let part = if value < 0 {
            &mut self.negative
        } else {
            &mut self.non_negative
        };
        part.get_or_insert_with(new_histogram)
            .saturating_record(value.unsigned_abs().min(HISTOGRAM_MAX_NS));
        self.count += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Smallest value, 0 when empty.
    fn min(&self) -> i64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// Largest value, 0 when empty.
    fn max(&self) -> i64 {
        if self.count == 0 {
            0
        } else {
            self.max
        }
    }

    /// The nearest-rank quantile: the value of rank ⌈q × count⌉ in ascending order; 0 when
    /// empty. An upper bound within the histogram's precision, clamped to the exact range.
    fn quantile(&self, q: Quantile) -> i64 {
        if self.count == 0 {
            return 0;
        }
        let rank = (q.numerator as u128 * self.count as u128).div_ceil(q.denominator as u128) as u64;
        let rank = rank.clamp(1, self.count);
        let negatives = self.negative.as_deref().map_or(0, |h| h.len());
        let value = if rank <= negatives {
            // Ascending values run through the negative magnitudes from the largest down:
            // rank r is the (negatives − r + 1)-th smallest magnitude. Its bucket's lowest
            // magnitude gives the upper bound of the value.
            let histogram = self.negative.as_deref().expect("negatives were recorded");
            let magnitude = magnitude_at_rank(histogram, negatives - rank + 1);
            -(histogram.lowest_equivalent(magnitude).min(i64::MAX as u64) as i64)
        } else {
            let histogram = self.non_negative.as_deref().expect("non-negatives were recorded");
            magnitude_at_rank(histogram, rank - negatives).min(i64::MAX as u64) as i64
        };
        value.clamp(self.min, self.max)
    }
}

/// The highest value equivalent to the `rank`-th smallest recorded value (1-based).
///
/// hdrhistogram finds the value of rank ⌈q × len⌉ with a vectorized scan, far faster than
/// walking its iterator; asking for q = (rank − ½) / len puts q × len half-way between two
/// integers, so that floating-point rounding cannot move the ceiling to a neighbouring rank.
fn magnitude_at_rank(histogram: &Histogram<u64>, rank: u64) -> u64 {
    histogram.value_at_quantile((rank as f64 - 0.5) / histogram.len() as f64)
}

#[cfg(test)]
mod tests;
