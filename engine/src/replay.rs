//! Replay of a capture file (pcap or pcapng) with its original timing, as one more source of
//! the sender's scheduler.
//!
//! A reader thread of its own streams the file ([`crate::pcap::PcapReader`]: bounded memory,
//! whatever the file's size) and puts each UDP datagram, with the time it is due, into a
//! bounded ring; the sender takes them from there like queued packets, so file I/O never sits
//! on the timing path. Datagram *i* of pass *k* is due at
//! `start + k × (span + gap) + (tsᵢ − ts₀) / speed`, computed from its own capture time and one
//! absolute start (never from the previous packet's time), so a replay does not drift;
//! `span` is the file's first-to-last time and `gap` the mean gap between its datagrams. With
//! speed 0 every datagram is due at once (as fast as possible, in order).
//!
//! What is not a replayable UDP datagram is skipped and counted by reason (the reader's
//! [`SkipCounts`]), and so are the datagrams the filter leaves out and those of the other
//! address family than the socket's. A corrupt or truncated file ends the replay with
//! `ERR_UDPCOM_PCAP` (its byte offset and reason) after everything before it was sent.

use std::fs::File;
use std::io::{Cursor, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::addr::PeerAddr;
use crate::error::{Error, Result};
use crate::pcap::{PcapReader, SkipCounts};
use crate::ring::{packet_ring, Consumer, Producer};
use crate::stats::{bump, LatencyRecorder, LatencySummary, SharedLatencies};
use crate::stream::StreamEnd;
use crate::time::WakeWord;

/// Where a replay reads from.
#[derive(Clone, Debug)]
pub enum ReplayInput {
    /// A file, streamed.
    Path(PathBuf),
    /// A whole file in memory.
    Bytes(Arc<Vec<u8>>),
}

/// Where a replayed datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayDestination {
    /// The connected peer.
    Connected,
    /// Its captured destination (an unconnected instance).
    Original,
    /// One address for all (an unconnected instance).
    Fixed(SocketAddr),
}

/// What `replay()` asks for (values checked by [`UdpEngine::start_replay`](crate::UdpEngine)).
#[derive(Clone, Debug)]
pub struct ReplaySpec {
    pub input: ReplayInput,
    /// 1: the original timing; 2: twice as fast; 0: as fast as possible.
    pub speed: f64,
    /// CLOCK_MONOTONIC ns at which the first datagram leaves.
    pub start_ns: u64,
    /// Passes through the file, at least 1.
    pub loops: u64,
    /// Only datagrams to this destination port.
    pub filter_port: Option<u16>,
    /// Only datagrams from this source address.
    pub filter_address: Option<IpAddr>,
    pub destination: ReplayDestination,
}

/// Datagrams of the file the replay leaves out, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplaySkips {
    /// What the file holds that is not a replayable UDP datagram (the reader's reasons).
    pub file: SkipCounts,
    /// UDP datagrams the filter left out.
    pub filtered: u64,
    /// UDP datagrams of the other address family than the socket's (with destination 'original').
    pub other_family: u64,
}

/// What a replay's statistics say.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayStats {
    pub id: u32,
    pub end: StreamEnd,
    /// Datagrams the kernel accepted.
    pub sent: u64,
    pub bytes: u64,
    /// Datagrams whose send failed.
    pub errors: u64,
    /// Datagrams that left more than the spin window after their time.
    pub late: u64,
    /// Datagrams read from the file and queued for sending, all passes.
    pub read: u64,
    /// Passes completed.
    pub passes: u64,
    pub skipped: ReplaySkips,
    /// Lateness (departure − due time).
    pub lateness: LatencySummary,
    /// The error that ended the file early (ERR_UDPCOM_PCAP, or the OS error of reading it).
    pub error: Option<Error>,
}

/// What the JavaScript thread, the reader thread and the sender share about one replay.
#[derive(Debug)]
pub(crate) struct ReplayShared {
    pub(crate) id: u32,
    pub(crate) stop: AtomicBool,
    pub(crate) end: AtomicU8,
    /// The reader has put its last datagram into the ring (or failed).
    pub(crate) reader_done: AtomicBool,
    pub(crate) sent: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) late: AtomicU64,
    pub(crate) read: AtomicU64,
    pub(crate) passes: AtomicU64,
    pub(crate) skipped: Mutex<ReplaySkips>,
    pub(crate) error: Mutex<Option<Error>>,
    pub(crate) lateness: SharedLatencies,
}

impl ReplayShared {
    fn set_end(&self, end: StreamEnd) {
        let code = match end {
            StreamEnd::Running => 0,
            StreamEnd::Completed => 1,
            StreamEnd::Stopped => 2,
            StreamEnd::InstanceStopped => 3,
        };
        let _ = self.end.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
    }

    pub(crate) fn end(&self) -> StreamEnd {
        match self.end.load(Ordering::Acquire) {
            1 => StreamEnd::Completed,
            2 => StreamEnd::Stopped,
            3 => StreamEnd::InstanceStopped,
            _ => StreamEnd::Running,
        }
    }

    /// Ends the replay with `end` unless it already ended.
    pub(crate) fn finish(&self, end: StreamEnd) {
        self.set_end(end);
    }

    pub(crate) fn stats(&self) -> ReplayStats {
        ReplayStats {
            id: self.id,
            end: self.end(),
            sent: self.sent.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            read: self.read.load(Ordering::Relaxed),
            passes: self.passes.load(Ordering::Relaxed),
            skipped: *self.skipped.lock().unwrap_or_else(|p| p.into_inner()),
            lateness: self.lateness.summary(),
            error: self.error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// What the ring holds beside each datagram.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReplayMeta {
    /// When it is due, CLOCK_MONOTONIC ns (0: at once).
    deadline_ns: u64,
    destination: PeerAddr,
}

/// Datagrams read ahead of the sender.
const RING_PACKETS: usize = 4096;
/// Their payload bytes (at least twice the largest datagram).
const RING_BYTES: usize = 4 << 20;
/// Speeds become fractions with this many parts per unit (so 1.5 is exact).
const SPEED_SCALE: f64 = 1e6;

/// Opens `input` and reads its file header; a file that is no capture fails here, at once.
fn open(input: &ReplayInput) -> Result<PcapReader<Box<dyn Read + Send>>> {
    let source: Box<dyn Read + Send> = match input {
        ReplayInput::Path(path) => {
            Box::new(File::open(path).map_err(|e| Error::from_io("open", &e, &path.display().to_string()))?)
        }
        ReplayInput::Bytes(bytes) => Box::new(Cursor::new(SharedBytes(bytes.clone()))),
    };
    PcapReader::new(source)
}

/// A file in memory, shared by the passes of a replay.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A replay as the sender runs it: the reader thread and the ring it fills.
pub(crate) struct ActiveReplay {
    pub(crate) shared: Arc<ReplayShared>,
    ring: Consumer<ReplayMeta>,
    reader: Option<JoinHandle<()>>,
    in_batch: usize,
    batch_done: usize,
    batch_sent: usize,
    pub(crate) lateness: LatencyRecorder,
}

impl std::fmt::Debug for ActiveReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveReplay").field("id", &self.shared.id).finish()
    }
}

impl ActiveReplay {
    /// Opens the file, checks `spec`, and starts the reader thread,
    /// which wakes the sender through `wake` when it has queued datagrams. `ipv4`: the socket's
    /// family.
    pub(crate) fn start(id: u32, spec: ReplaySpec, ipv4: bool, wake: Arc<WakeWord>) -> Result<ActiveReplay> {
        if !(spec.speed.is_finite() && spec.speed >= 0.0) {
            return Err(Error::out_of_range(
                "\"options.speed\"",
                ">= 0 and finite",
                crate::config::format_number(spec.speed),
            ));
        }
        if spec.loops == 0 {
            return Err(Error::out_of_range("\"options.loop\"", ">= 1", 0));
        }
        // A file that cannot be opened fails here; one whose content is bad from its first
        // byte on ends the replay at once with ERR_UDPCOM_PCAP, as a later corruption does.
        let reader = match open(&spec.input) {
            Err(error) if error.code != crate::error::code::PCAP => return Err(error),
            opened => opened,
        };
        let shared = Arc::new(ReplayShared {
            id,
            stop: AtomicBool::new(false),
            end: AtomicU8::new(0),
            reader_done: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            late: AtomicU64::new(0),
            read: AtomicU64::new(0),
            passes: AtomicU64::new(0),
            skipped: Mutex::new(ReplaySkips::default()),
            error: Mutex::new(None),
            lateness: SharedLatencies::default(),
        });
        let reader = match reader {
            Ok(reader) => reader,
            Err(error) => {
                *shared.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
                shared.reader_done.store(true, Ordering::Release);
                return Ok(ActiveReplay::new(shared, packet_ring(1, 1).1, None));
            }
        };
        let (producer, consumer) = packet_ring(RING_PACKETS, RING_BYTES);
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("udpcom-replay".into())
            .spawn(move || read_file(reader, spec, ipv4, producer, &thread_shared, &wake))
            .map_err(|e| Error::from_io("pthread_create", &e, "udpcom-replay"))?;
        Ok(ActiveReplay::new(shared, consumer, Some(handle)))
    }

    fn new(shared: Arc<ReplayShared>, ring: Consumer<ReplayMeta>, reader: Option<JoinHandle<()>>) -> ActiveReplay {
        ActiveReplay {
            shared,
            ring,
            reader,
            in_batch: 0,
            batch_done: 0,
            batch_sent: 0,
            lateness: LatencyRecorder::default(),
        }
    }

    /// When its next datagram is due (0: at once); `None` when none is waiting in the ring.
    #[inline]
    pub(crate) fn next_due_ns(&mut self) -> Option<u64> {
        if self.shared.stop.load(Ordering::Relaxed) || self.in_batch >= self.ring.available() {
            return None;
        }
        self.ring.peek(self.in_batch).map(|p| p.meta.deadline_ns)
    }

    /// Takes its next datagram into the batch: its due time, index and destination.
    pub(crate) fn take_next(&mut self, now_ns: u64) -> (u64, usize, PeerAddr) {
        let meta = self.ring.peek(self.in_batch).map(|p| p.meta).unwrap_or_default();
        self.in_batch += 1;
        let target = if meta.deadline_ns == 0 {
            now_ns
        } else {
            meta.deadline_ns
        };
        (target, self.in_batch - 1, meta.destination)
    }

    /// A datagram of the batch.
    pub(crate) fn batch_packet(&self, index: usize) -> &[u8] {
        self.ring.peek(index).map_or(&[][..], |p| p.payload)
    }

    pub(crate) fn in_batch(&self) -> usize {
        self.in_batch
    }

    pub(crate) fn begin_accounting(&mut self) {
        self.batch_done = 0;
        self.batch_sent = 0;
    }

    pub(crate) fn account_packet(&mut self, failed: bool, bytes: usize, lateness_ns: u64, late_after_ns: u64) {
        self.batch_done += 1;
        if failed {
            bump(&self.shared.errors, 1);
            return;
        }
        self.batch_sent += 1;
        bump(&self.shared.bytes, bytes as u64);
        self.lateness.record(lateness_ns);
        if lateness_ns > late_after_ns {
            bump(&self.shared.late, 1);
        }
    }

    /// After the send: the datagrams that left or failed leave the ring.
    pub(crate) fn complete(&mut self) {
        bump(&self.shared.sent, self.batch_sent as u64);
        self.ring.release(self.batch_done);
        self.in_batch = 0;
    }

    /// Whether it is over: stopped, or the reader is done and everything it read has left.
    pub(crate) fn finished(&mut self) -> bool {
        if self.shared.stop.load(Ordering::Acquire) {
            self.shared.set_end(StreamEnd::Stopped);
            return true;
        }
        if self.shared.reader_done.load(Ordering::Acquire) && self.ring.available() == 0 {
            self.shared.set_end(StreamEnd::Completed);
            return true;
        }
        false
    }

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

impl Drop for ActiveReplay {
    fn drop(&mut self) {
        // The reader stops at its next datagram (or wait for room) once it sees `stop`.
        self.shared.stop.store(true, Ordering::Release);
        if let Some(handle) = self.reader.take() {
            // Its ring half goes with it: dropping the consumer first would leave it waiting
            // for room that never comes, so it polls `stop` while it waits.
            let _ = handle.join();
        }
    }
}

/// The reader thread: every pass through the file into the ring, then `reader_done`.
fn read_file(
    mut reader: PcapReader<Box<dyn Read + Send>>,
    spec: ReplaySpec,
    ipv4: bool,
    mut ring: Producer<ReplayMeta>,
    shared: &ReplayShared,
    wake: &WakeWord,
) {
    let speed_den = (spec.speed * SPEED_SCALE).round() as u128;
    // The first pass's first and last capture time and datagram count give the next passes'
    // offsets.
    let (mut first_ts, mut last_ts, mut first_pass_count) = (None::<u64>, 0u64, 0u64);
    let mut pass_offset_ns = 0u128;
    // Skips of the passes read to the end, and the replay's own (filter, family).
    let mut file_skips = SkipCounts::default();
    let (mut filtered, mut other_family) = (0u64, 0u64);
    let publish_skips = |file_skips: &SkipCounts, current: &SkipCounts, filtered, other_family| {
        *shared.skipped.lock().unwrap_or_else(|p| p.into_inner()) = ReplaySkips {
            file: add(file_skips, current),
            filtered,
            other_family,
        };
    };
    let mut pass = 0u64;
    'passes: loop {
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                break 'passes;
            }
            let datagram = match reader.next_datagram() {
                Ok(Some(datagram)) => datagram,
                Ok(None) => break,
                Err(error) => {
                    *shared.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
                    break 'passes;
                }
            };
            if spec.filter_port.is_some_and(|port| datagram.destination.port() != port)
                || spec
                    .filter_address
                    .is_some_and(|address| datagram.source.ip() != address)
            {
                filtered += 1;
                continue;
            }
            let destination = match spec.destination {
                ReplayDestination::Connected => PeerAddr::default(),
                ReplayDestination::Fixed(address) => PeerAddr::from_socket_addr(address),
                ReplayDestination::Original => {
                    if datagram.destination.is_ipv4() != ipv4 {
                        other_family += 1;
                        continue;
                    }
                    PeerAddr::from_socket_addr(datagram.destination)
                }
            };
            let ts0 = *first_ts.get_or_insert(datagram.timestamp_ns);
            if pass == 0 {
                last_ts = last_ts.max(datagram.timestamp_ns);
                first_pass_count += 1;
            }
            // From the file's first capture time and one absolute start: no drift. Speed 0
            // (as fast as possible) has no deadlines.
            let since_first = datagram.timestamp_ns.saturating_sub(ts0) as u128;
            let deadline_ns = (since_first * SPEED_SCALE as u128)
                .checked_div(speed_den)
                .map_or(0, |scaled| {
                    let scaled = scaled + pass_offset_ns;
                    spec.start_ns
                        .saturating_add(u64::try_from(scaled).unwrap_or(u64::MAX))
                        .max(1)
                });
            let meta = ReplayMeta {
                deadline_ns,
                destination,
            };
            // Wait for room: the sender frees it as the datagrams leave.
            while ring.push(meta, datagram.payload).is_err() {
                if shared.stop.load(Ordering::Relaxed) {
                    break 'passes;
                }
                wake.wake();
                std::thread::sleep(Duration::from_micros(500));
            }
            bump(&shared.read, 1);
            wake.wake();
            if shared.read.load(Ordering::Relaxed) % 1024 == 0 {
                publish_skips(&file_skips, reader.skipped(), filtered, other_family);
            }
        }
        pass += 1;
        bump(&shared.passes, 1);
        if pass >= spec.loops || first_pass_count == 0 {
            break;
        }
        // The next pass starts one (mean) gap after the last datagram of this one.
        let span = last_ts.saturating_sub(first_ts.unwrap_or(last_ts)) as u128;
        let gap = if first_pass_count > 1 {
            span / (first_pass_count as u128 - 1)
        } else {
            0
        };
        pass_offset_ns += (span + gap) * SPEED_SCALE as u128 / speed_den.max(1);
        file_skips = add(&file_skips, reader.skipped());
        reader = match open(&spec.input) {
            Ok(next) => next,
            Err(error) => {
                *shared.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
                publish_skips(&file_skips, &SkipCounts::default(), filtered, other_family);
                shared.reader_done.store(true, Ordering::Release);
                wake.wake();
                return;
            }
        };
    }
    publish_skips(&file_skips, reader.skipped(), filtered, other_family);
    shared.reader_done.store(true, Ordering::Release);
    wake.wake();
}

/// The sum of two skip counts.
fn add(a: &SkipCounts, b: &SkipCounts) -> SkipCounts {
    SkipCounts {
        unsupported_link_type: a.unsupported_link_type + b.unsupported_link_type,
        not_ip: a.not_ip + b.not_ip,
        not_udp: a.not_udp + b.not_udp,
        ip_fragment: a.ip_fragment + b.ip_fragment,
        truncated: a.truncated + b.truncated,
        bad_header: a.bad_header + b.bad_header,
        timestamp_out_of_range: a.timestamp_out_of_range + b.timestamp_out_of_range,
        unsupported_block: a.unsupported_block + b.unsupported_block,
    }
}
