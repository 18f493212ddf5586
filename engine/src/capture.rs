//! Capture of what an instance receives (and, with `sent`, sends) into a pcap or pcapng file
//! that Wireshark, tshark and tcpdump read: a tap in each worker, and a writer thread of its
//! own.
//!
//! The workers never wait for the disk. Each worker owns one tap per capture and puts a copy
//! of every datagram, with its time and addresses, into that tap's bounded ring; a datagram
//! that finds the ring full is dropped from the capture and counted (`dropped`), never from
//! delivery. The writer thread writes whole blocks ([`crate::pcap::PcapWriter`]) and flushes
//! them at least every 100 ms, so the file is complete after `close()` (and after the instance
//! stops), and readable up to the last complete block after a crash.
//!
//! Times are CLOCK_REALTIME ns, as capture files have them. A received datagram has the
//! kernel's receive stamp (a capture turns kernel receive stamps on when timestamping is off),
//! or the receiver thread's clock read after `recvmmsg`, noted `user`. A sent datagram has its
//! transmit stamp when the instance has timestamping on (matched by the kernel's datagram
//! number, waiting up to 50 ms for it), else the time read right before the send system call,
//! noted `departure`. Datagrams are written in the order the writer gets them, which for sent
//! datagrams waiting for their stamps is not strictly the order of their times.
//!
//! Closing is exact: `close` asks the workers to let go of their taps, and the writer ends only
//! when no tap is left and the rings are empty, so every datagram a worker tapped is written or
//! counted as dropped.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::addr::PeerAddr;
use crate::error::{Error, Result};
use crate::pcap::{CaptureFormat, LinkType, PacketMeta, PcapWriter, StampSource};
use crate::ring::{packet_ring, Consumer, Producer};
use crate::shared::Notify;
use crate::stats::bump;
use crate::time::now_ns;

/// Where a capture writes.
#[derive(Clone)]
pub enum CaptureSink {
    /// A file (created, or truncated).
    Path(PathBuf),
    /// Memory the caller takes in chunks ([`crate::UdpEngine::take_capture_bytes`]); `notify`
    /// is called (from the writer thread) when there are bytes to take.
    Memory(Arc<dyn Notify>),
}

impl fmt::Debug for CaptureSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureSink::Path(path) => f.debug_tuple("Path").field(path).finish(),
            CaptureSink::Memory(_) => f.write_str("Memory"),
        }
    }
}

/// What `capture()` asks for.
#[derive(Clone, Debug)]
pub struct CaptureSpec {
    pub sink: CaptureSink,
    pub format: CaptureFormat,
    pub link: LinkType,
    /// Longest frame kept whole, bytes (≥ 1); longer frames are cut, their length kept.
    pub snaplen: u32,
    /// Also the datagrams the instance sends (queued, streams, replays, reflected replies).
    pub sent: bool,
}

/// A capture's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub id: u32,
    /// Datagrams written.
    pub written: u64,
    /// Datagrams the capture could not keep: a tap's ring was full (the disk, or the
    /// JavaScript stream behind a memory capture, did not keep up), or the writer had failed.
    pub dropped: u64,
    /// The capture is closed and its file complete.
    pub closed: bool,
    /// The error that stopped the writer (the disk full, ...), if any.
    pub error: Option<Error>,
}

/// What a tap's ring holds beside each copied datagram.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CaptureMeta {
    kind: Kind,
    /// CLOCK_REALTIME ns.
    timestamp_ns: u64,
    source: PeerAddr,
    destination: PeerAddr,
    stamp: Stamp,
    /// A sent datagram whose transmit stamp will follow, or a transmit stamp: the kernel's
    /// datagram number + 1 (0: none).
    stamp_key: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    Received,
    Sent,
    /// A transmit stamp for a sent datagram (no payload).
    TransmitStamp,
}

/// [`StampSource`] in a form the ring can hold (`Copy + Default`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stamp {
    #[default]
    Kernel,
    Hardware,
    User,
    Departure,
}

impl From<Stamp> for StampSource {
    fn from(stamp: Stamp) -> StampSource {
        match stamp {
            Stamp::Kernel => StampSource::Kernel,
            Stamp::Hardware => StampSource::Hardware,
            Stamp::User => StampSource::User,
            Stamp::Departure => StampSource::Departure,
        }
    }
}

/// Datagrams a tap's ring holds ahead of the writer, and their bytes.
const RING_PACKETS: usize = 16_384;
const RING_BYTES: usize = 16 << 20;
/// The writer flushes at least this often.
const FLUSH_INTERVAL_NS: u64 = 100_000_000;
/// A sent datagram waits this long for its transmit stamp before it is written with its
/// departure time (and a stamp this long for its datagram).
const STAMP_WAIT_NS: u64 = 50_000_000;
/// The writer sleeps this long when there is nothing to write.
const IDLE_SLEEP: Duration = Duration::from_millis(2);
/// A memory capture holds at most this many bytes not taken yet; datagrams beyond are dropped.
const MEMORY_LIMIT: usize = 64 << 20;

/// What the engine, the workers' taps and the writer share.
pub(crate) struct CaptureShared {
    pub(crate) id: u32,
    close: AtomicBool,
    closed: AtomicBool,
    /// Taps not let go of yet: the writer ends when this is 0 and the rings are empty.
    taps: AtomicUsize,
    written: AtomicU64,
    dropped: AtomicU64,
    error: Mutex<Option<Error>>,
    /// A memory capture's bytes not taken yet.
    memory: Mutex<Vec<u8>>,
    memory_len: AtomicUsize,
}

impl CaptureShared {
    pub(crate) fn stats(&self) -> CaptureStats {
        CaptureStats {
            id: self.id,
            written: self.written.load(Ordering::Acquire),
            dropped: self.dropped.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Acquire),
            error: self.error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.close.load(Ordering::Acquire)
    }

    /// What a memory capture wrote and nobody took yet.
    pub(crate) fn take_memory(&self) -> Vec<u8> {
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        self.memory_len.store(0, Ordering::Relaxed);
        std::mem::take(&mut *memory)
    }

    fn fail(&self, error: Error) {
        self.error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(error);
    }
}

/// A running capture, as the engine holds it: its writer thread.
pub(crate) struct ActiveCapture {
    pub(crate) shared: Arc<CaptureShared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    sent: bool,
}

/// A worker's tap into one capture.
pub(crate) struct CaptureTap {
    shared: Arc<CaptureShared>,
    ring: Producer<CaptureMeta>,
    /// It takes received datagrams (the receiver's tap) and sent ones (`sent`).
    received: bool,
    sent: bool,
    /// The socket's own address and its peer's (connected instances), for the headers.
    local: PeerAddr,
    remote: PeerAddr,
}

impl Drop for CaptureTap {
    fn drop(&mut self) {
        self.shared.taps.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The socket's addresses, as the taps write them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CaptureAddresses {
    pub(crate) local: PeerAddr,
    pub(crate) remote: PeerAddr,
}

impl ActiveCapture {
    /// Creates the file (or memory sink), writes its header, and starts the writer thread.
    /// Returns the taps for the receiver thread and for the sender thread. `stamped`: the
    /// instance reads transmit stamps, so sent datagrams wait for theirs.
    pub(crate) fn start(
        id: u32,
        spec: &CaptureSpec,
        stamped: bool,
        addresses: CaptureAddresses,
    ) -> Result<(ActiveCapture, CaptureTap, CaptureTap)> {
        if spec.snaplen == 0 {
            return Err(Error::out_of_range("\"options.snaplen\"", ">= 1", 0));
        }
        let shared = Arc::new(CaptureShared {
            id,
            close: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            taps: AtomicUsize::new(2),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            error: Mutex::new(None),
            memory: Mutex::new(Vec::new()),
            memory_len: AtomicUsize::new(0),
        });
        let (sink, notify) = match &spec.sink {
            CaptureSink::Path(path) => {
                let file = File::create(path).map_err(|e| Error::from_io("open", &e, &path.display().to_string()))?;
                (Sink::File(file), None)
            }
            CaptureSink::Memory(notify) => (Sink::Memory(shared.clone()), Some(notify.clone())),
        };
        let writer = PcapWriter::new(sink, spec.format, spec.link, spec.snaplen)
            .map_err(|e| Error::from_io("write", &e, "capture file header"))?;
        let (receiver_producer, receiver_consumer) = packet_ring(RING_PACKETS, RING_BYTES);
        let (sender_producer, sender_consumer) = if spec.sent {
            packet_ring(RING_PACKETS, RING_BYTES)
        } else {
            // The sender's tap takes nothing; it still exists so that both workers are alike.
            packet_ring(1, 1)
        };
        let tap = |ring, received, sent| CaptureTap {
            shared: shared.clone(),
            ring,
            received,
            sent,
            local: addresses.local,
            remote: addresses.remote,
        };
        let receiver_tap = tap(receiver_producer, true, spec.sent);
        let sender_tap = tap(sender_producer, false, spec.sent);
        let writer_side = CaptureWriter {
            writer: Some(writer),
            rings: [receiver_consumer, sender_consumer],
            shared: shared.clone(),
            notify,
            stamped,
            waiting_sent: HashMap::new(),
            early_stamps: HashMap::new(),
        };
        let handle = std::thread::Builder::new()
            .name("udpcom-capture".into())
            .spawn(move || writer_side.run())
            .map_err(|e| Error::from_io("pthread_create", &e, "udpcom-capture"))?;
        let capture = ActiveCapture {
            shared,
            writer: Mutex::new(Some(handle)),
            sent: spec.sent,
        };
        Ok((capture, receiver_tap, sender_tap))
    }

    /// It taps sent datagrams and is not closing.
    pub(crate) fn sends_tapped(&self) -> bool {
        self.sent && !self.shared.is_closing()
    }

    /// Asks the workers to let go of their taps and the writer to finish the file. Returns at
    /// once; [`wait_closed`](Self::wait_closed) waits for the file to be complete.
    pub(crate) fn request_close(&self) {
        self.shared.close.store(true, Ordering::Release);
    }

    /// Waits for the writer to write what is queued and finish the file.
    pub(crate) fn wait_closed(&self) -> CaptureStats {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                self.shared.fail(Error::state("the capture's writer thread panicked"));
                self.shared.closed.store(true, Ordering::Release);
            }
        }
        self.shared.stats()
    }
}

/// The taps one worker holds, one per open capture.
#[derive(Default)]
pub(crate) struct CaptureTaps {
    taps: Vec<CaptureTap>,
    generation: u64,
}

/// Where the engine hands new taps to the workers.
#[derive(Default)]
pub(crate) struct CaptureInbox {
    /// Bumped whenever a tap is added or a capture is asked to close.
    pub(crate) generation: AtomicU64,
    pub(crate) receiver: Mutex<Vec<CaptureTap>>,
    pub(crate) sender: Mutex<Vec<CaptureTap>>,
}

impl fmt::Debug for CaptureInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureInbox")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl CaptureInbox {
    /// Tells the workers to look (after adding taps or asking a capture to close).
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops the taps of capture `id` no worker took (the worker is not running).
    pub(crate) fn discard(&self, id: u32) {
        for inbox in [&self.receiver, &self.sender] {
            inbox
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|tap| tap.shared.id != id);
        }
    }
}

impl CaptureTaps {
    /// Takes new taps out of `inbox` and lets go of those whose capture is closing. Cheap when
    /// nothing changed: one atomic load.
    #[inline]
    pub(crate) fn update(&mut self, generation: &AtomicU64, inbox: &Mutex<Vec<CaptureTap>>) {
        let current = generation.load(Ordering::Acquire);
        if current == self.generation {
            return;
        }
        self.generation = current;
        self.taps.append(&mut inbox.lock().unwrap_or_else(|p| p.into_inner()));
        self.taps.retain(|tap| !tap.shared.is_closing());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.taps.is_empty()
    }

    /// Some tap takes sent datagrams.
    pub(crate) fn wants_sent(&self) -> bool {
        self.taps.iter().any(|tap| tap.sent)
    }

    /// A received datagram from `source`, stamped at `realtime_ns`; `local_ip` is the address
    /// it was sent to when the kernel said so (packet info), else the socket's own is written.
    pub(crate) fn received(
        &mut self,
        payload: &[u8],
        realtime_ns: u64,
        source: PeerAddr,
        local_ip: Option<IpAddr>,
        stamp: StampSource,
    ) {
        for tap in self.taps.iter_mut().filter(|tap| tap.received) {
            let destination = match (local_ip, tap.local.to_socket_addr()) {
                (Some(ip), Some(local)) => PeerAddr::from_socket_addr(SocketAddr::new(ip, local.port())),
                _ => tap.local,
            };
            let meta = CaptureMeta {
                kind: Kind::Received,
                timestamp_ns: realtime_ns,
                source,
                destination,
                stamp: stamp_of(stamp),
                stamp_key: 0,
            };
            tap.push(meta, payload);
        }
    }

    /// A sent datagram, left at `departure_realtime_ns`, to `destination` (none: the
    /// connected peer). `datagram`: the kernel's number of it when its transmit stamp will
    /// follow.
    pub(crate) fn sent(
        &mut self,
        payload: &[u8],
        departure_realtime_ns: u64,
        destination: PeerAddr,
        datagram: Option<u32>,
    ) {
        for tap in self.taps.iter_mut().filter(|tap| tap.sent) {
            let meta = CaptureMeta {
                kind: Kind::Sent,
                timestamp_ns: departure_realtime_ns,
                source: tap.local,
                destination: if destination.is_none() { tap.remote } else { destination },
                stamp: Stamp::Departure,
                stamp_key: datagram.map_or(0, |d| d as u64 + 1),
            };
            tap.push(meta, payload);
        }
    }

    /// Datagram number `datagram` left at `realtime_ns` by the kernel's (or the NIC's) stamp.
    pub(crate) fn transmit_stamp(&mut self, datagram: u32, realtime_ns: u64, hardware: bool) {
        for tap in self.taps.iter_mut().filter(|tap| tap.sent) {
            let meta = CaptureMeta {
                kind: Kind::TransmitStamp,
                timestamp_ns: realtime_ns,
                stamp: if hardware { Stamp::Hardware } else { Stamp::Kernel },
                stamp_key: datagram as u64 + 1,
                ..Default::default()
            };
            // Without room the datagram keeps its departure time: nothing is lost.
            let _ = tap.ring.push(meta, &[]);
        }
    }
}

impl CaptureTap {
    fn push(&mut self, meta: CaptureMeta, payload: &[u8]) {
        if self.ring.push(meta, payload).is_err() {
            bump(&self.shared.dropped, 1);
        }
    }
}

fn stamp_of(source: StampSource) -> Stamp {
    match source {
        StampSource::Kernel => Stamp::Kernel,
        StampSource::Hardware => Stamp::Hardware,
        StampSource::User => Stamp::User,
        StampSource::Departure => Stamp::Departure,
    }
}

/// What the writer thread writes to: a file, or memory.
enum Sink {
    File(File),
    Memory(Arc<CaptureShared>),
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(file) => file.write(bytes),
            Sink::Memory(shared) => {
                let mut memory = shared.memory.lock().unwrap_or_else(|p| p.into_inner());
                memory.extend_from_slice(bytes);
                shared.memory_len.store(memory.len(), Ordering::Relaxed);
                Ok(bytes.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(file) => file.flush(),
            Sink::Memory(_) => Ok(()),
        }
    }
}

/// A sent datagram waiting for its transmit stamp.
struct WaitingSent {
    meta: CaptureMeta,
    payload: Vec<u8>,
    since_ns: u64,
}

/// The writer thread's state.
struct CaptureWriter {
    /// `None` once it failed: what comes after is counted as dropped.
    writer: Option<PcapWriter<Sink>>,
    /// The receiver's tap's ring, and the sender's.
    rings: [Consumer<CaptureMeta>; 2],
    shared: Arc<CaptureShared>,
    notify: Option<Arc<dyn Notify>>,
    stamped: bool,
    waiting_sent: HashMap<u64, WaitingSent>,
    /// Transmit stamps read before their datagram: (time, source, since).
    early_stamps: HashMap<u64, (u64, Stamp, u64)>,
}

impl CaptureWriter {
    /// Writes whatever the rings hold until the capture closes and no tap is left.
    fn run(mut self) {
        let mut last_flush = now_ns();
        loop {
            // Read before draining: a tap let go of after this had its last datagrams in the
            // ring before, so the drain below writes them.
            let taps_left = self.shared.taps.load(Ordering::Acquire);
            let closing = self.shared.is_closing();
            let moved = self.drain();
            let now = now_ns();
            self.expire(now, closing && taps_left == 0);
            if now - last_flush >= FLUSH_INTERVAL_NS || (moved == 0 && closing) {
                self.flush();
                last_flush = now;
            }
            if closing && taps_left == 0 && moved == 0 && self.waiting_sent.is_empty() {
                break;
            }
            if moved == 0 {
                std::thread::sleep(IDLE_SLEEP);
            }
        }
        if let Some(writer) = self.writer.take() {
            if let Err(e) = writer.finish() {
                self.shared.fail(Error::from_io("write", &e, "capture file"));
            }
        }
        self.notify_memory();
        self.shared.closed.store(true, Ordering::Release);
    }

    /// Moves what the rings hold into the file; returns how many entries it took.
    fn drain(&mut self) -> usize {
        let mut moved = 0;
        for ring in 0..self.rings.len() {
            let available = self.rings[ring].available();
            for i in 0..available {
                let packet = self.rings[ring].peek(i).expect("available");
                let (meta, payload) = (packet.meta, packet.payload.to_vec());
                self.take(meta, &payload);
            }
            self.rings[ring].release(available);
            moved += available;
        }
        moved
    }

    fn take(&mut self, meta: CaptureMeta, payload: &[u8]) {
        let now = now_ns();
        match meta.kind {
            Kind::Received => self.write(&meta, payload),
            Kind::Sent if self.stamped && meta.stamp_key != 0 => match self.early_stamps.remove(&meta.stamp_key) {
                Some((timestamp_ns, stamp, _)) => self.write(
                    &CaptureMeta {
                        timestamp_ns,
                        stamp,
                        ..meta
                    },
                    payload,
                ),
                None => {
                    let waiting = WaitingSent {
                        meta,
                        payload: payload.to_vec(),
                        since_ns: now,
                    };
                    self.waiting_sent.insert(meta.stamp_key, waiting);
                }
            },
            Kind::Sent => self.write(&meta, payload),
            Kind::TransmitStamp => match self.waiting_sent.remove(&meta.stamp_key) {
                Some(waiting) => {
                    let stamped = CaptureMeta {
                        timestamp_ns: meta.timestamp_ns,
                        stamp: meta.stamp,
                        ..waiting.meta
                    };
                    self.write(&stamped, &waiting.payload);
                }
                None => {
                    self.early_stamps
                        .insert(meta.stamp_key, (meta.timestamp_ns, meta.stamp, now));
                }
            },
        }
    }

    /// Writes sent datagrams whose stamp did not come in time with their departure time (all
    /// of them when `all`), and forgets stamps whose datagram never came.
    fn expire(&mut self, now: u64, all: bool) {
        if !self.waiting_sent.is_empty() {
            let expired: Vec<u64> = self
                .waiting_sent
                .iter()
                .filter(|(_, w)| all || now - w.since_ns > STAMP_WAIT_NS)
                .map(|(&key, _)| key)
                .collect();
            let mut expired: Vec<WaitingSent> =
                expired.iter().filter_map(|key| self.waiting_sent.remove(key)).collect();
            expired.sort_by_key(|w| w.meta.stamp_key);
            for waiting in expired {
                self.write(&waiting.meta, &waiting.payload);
            }
        }
        self.early_stamps
            .retain(|_, (_, _, since)| now - *since <= STAMP_WAIT_NS);
    }

    fn write(&mut self, meta: &CaptureMeta, payload: &[u8]) {
        let memory_full = self.notify.is_some() && self.shared.memory_len.load(Ordering::Relaxed) >= MEMORY_LIMIT;
        let (Some(writer), false) = (self.writer.as_mut(), memory_full) else {
            bump(&self.shared.dropped, 1);
            return;
        };
        let (Some(source), Some(destination)) = (meta.source.to_socket_addr(), meta.destination.to_socket_addr())
        else {
            // Only a datagram from a sender the kernel did not name: nothing to build headers
            // from.
            bump(&self.shared.dropped, 1);
            return;
        };
        let packet_meta = match meta.kind {
            Kind::Received => PacketMeta::received(meta.stamp.into()),
            _ => PacketMeta::sent(meta.stamp.into()),
        };
        match writer.write_datagram(meta.timestamp_ns, source, destination, payload, packet_meta) {
            Ok(()) => bump(&self.shared.written, 1),
            // A datagram the format cannot hold (a pcap time past 2106): not written.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => bump(&self.shared.dropped, 1),
            Err(e) => {
                self.shared.fail(Error::from_io("write", &e, "capture file"));
                self.writer = None;
                bump(&self.shared.dropped, 1);
            }
        }
    }

    fn flush(&mut self) {
        if let Some(writer) = self.writer.as_mut() {
            if let Err(e) = writer.flush() {
                self.shared.fail(Error::from_io("write", &e, "capture file"));
                self.writer = None;
            }
        }
        self.notify_memory();
    }

    fn notify_memory(&self) {
        if let Some(notify) = &self.notify {
            if self.shared.memory_len.load(Ordering::Relaxed) > 0 || self.shared.closed.load(Ordering::Relaxed) {
                notify.notify();
            }
        }
    }
}
