//! One instance's lifecycle: socket, rings, worker threads and statistics.
//!
//! [`UdpEngine`] is what the Node binding wraps, method for method. It is used from one
//! thread (the JavaScript thread): that thread is the producer of the send ring and the
//! consumer of the receive ring, and the only one that starts and stops workers. Workers talk
//! back through [`Shared`] (atomics) and wake the JavaScript thread through a [`Notify`].

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::addr::PeerAddr;
use crate::analysis::{Analyzer, AnalyzerTotals, StreamSnapshot};
use crate::capture::{ActiveCapture, CaptureAddresses, CaptureSpec, CaptureStats, CaptureTaps};
use crate::config::Config;
use crate::config::{LockMemory, TimestampMode};
use crate::error::{Error, Result};
use crate::memlock;
use crate::network::{Membership, SocketInfo};
use crate::receiver::{ReceivePath, Receiver, ReceiverParts, RecvMeta, TxStampPath};
use crate::reflect::Reflector;
use crate::replay::{ActiveReplay, ReplayDestination, ReplayShared, ReplaySpec, ReplayStats};
use crate::ring::{packet_ring, Consumer, Producer};
use crate::rt::ThreadSetup;
use crate::sender::{SendMeta, Sender};
use crate::shared::{Notify, Shared};
use crate::socket::UdpSocket;
use crate::stats::{bump, Latencies, Stats};
use crate::stream::{ActiveStream, StreamEnd, StreamSendStats, StreamShared, StreamSpec};
use crate::sys::{self, ErrQueueBatch, MembershipChange, RecvBatch};
use crate::time::now_ns;
use crate::timestamping::{self, SentLog, TimestampingInfo, TxRecord};

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Constructed; no socket yet.
    Created,
    /// initSocket() ran; workers are not running.
    Bound,
    /// start() ran.
    Running,
    /// closeSocket() ran; nothing works any more.
    Closed,
}

struct SendSide {
    producer: Producer<SendMeta>,
    /// The consumer half while no sender thread holds it.
    idle_consumer: Option<Consumer<SendMeta>>,
}

struct RecvSide {
    consumer: Consumer<RecvMeta>,
    /// The producer half and receive buffers while no receiver thread holds them.
    idle: Option<ReceivePath>,
}

/// Transmit timestamps: the key log shared with the sender, and the records for JavaScript.
struct TxStampSide {
    sent_log: Arc<SentLog>,
    records: Consumer<TxRecord>,
    /// The receiver thread's half while it is not running.
    idle: Option<TxStampPath>,
}

/// A received packet as handed to the binding.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    /// The payload, borrowed from the ring.
    pub payload: &'a [u8],
    /// Metadata the receiver stored.
    pub meta: RecvMeta,
}

/// One udpcom instance, without any JavaScript.
pub struct UdpEngine {
    config: Config,
    state: State,
    socket: Option<Arc<UdpSocket>>,
    shared: Arc<Shared>,
    send: Option<SendSide>,
    recv: Option<RecvSide>,
    tx_stamps: Option<TxStampSide>,
    sender: Option<JoinHandle<Consumer<SendMeta>>>,
    receiver: Option<JoinHandle<ReceiverParts>>,
    wake_fd: Option<Arc<OwnedFd>>,
    /// What timestamping is in use, once the socket is open.
    timestamping: Option<TimestampingInfo>,
    /// Kernel (or receiver) arrival → handed to JavaScript; recorded on the JavaScript thread.
    delivery_latencies: Latencies,
    /// Send latency of the packets the JavaScript thread sent itself (`inlineSend`).
    inline_latencies: Latencies,
    /// Every stream started on the instance, by id (their statistics outlive them).
    streams: Vec<Arc<StreamShared>>,
    /// Every replay started on the instance, by id.
    replays: Vec<Arc<ReplayShared>>,
    next_replay_id: u32,
    /// The receiver's stream analysis (`analyze`), kept across stop()/start().
    analyzer: Option<Arc<Mutex<Analyzer>>>,
    /// The id the next stream gets unless it names one.
    next_stream_id: u32,
    /// Open captures, and those closed whose statistics JavaScript may still ask for.
    captures: Vec<Arc<ActiveCapture>>,
    next_capture_id: u32,
    /// Multicast groups the socket joined, in the order it joined them.
    memberships: Vec<Membership>,
}

impl UdpEngine {
    /// An instance with a validated configuration; nothing is opened yet.
    pub fn new(config: Config) -> Self {
        let analyzer = config.analyze.map(|mode| Arc::new(Mutex::new(Analyzer::new(mode))));
        UdpEngine {
            config,
            state: State::Created,
            socket: None,
            shared: Arc::new(Shared::new()),
            send: None,
            recv: None,
            tx_stamps: None,
            sender: None,
            receiver: None,
            wake_fd: None,
            timestamping: None,
            delivery_latencies: Latencies::default(),
            inline_latencies: Latencies::default(),
            streams: Vec::new(),
            next_stream_id: 1,
            replays: Vec::new(),
            next_replay_id: 1,
            analyzer,
            captures: Vec::new(),
            next_capture_id: 1,
            memberships: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the instance is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// Fails with ERR_UDPCOM_STATE once closeSocket() ran.
    pub fn check_open(&self) -> Result<()> {
        if self.state == State::Closed {
            return Err(Error::state("the socket is closed: closeSocket() was called"));
        }
        Ok(())
    }

    /// Creates the socket, binds it and connects it (unless the remote port is 0).
    pub fn init_socket(&mut self) -> Result<()> {
        self.check_open()?;
        if self.state != State::Created {
            return Err(Error::state("initSocket() was already called"));
        }
        let socket = UdpSocket::open(self.config.local, self.config.remote, &self.config.network)?;
        self.timestamping = Some(timestamping::setup(
            &socket,
            self.config.timestamping,
            self.config.timestamping_fallback,
        )?);
        self.socket = Some(Arc::new(socket));
        self.state = State::Bound;
        Ok(())
    }

    /// The bound local port.
    pub fn local_port(&self) -> Result<u16> {
        self.check_open()?;
        match &self.socket {
            Some(socket) => Ok(socket.local_addr().port()),
            None => Err(Error::state("the socket is not bound yet: call initSocket() first")),
        }
    }

    /// The socket, once initSocket() ran and until closeSocket().
    fn bound_socket(&self) -> Result<&Arc<UdpSocket>> {
        self.check_open()?;
        self.socket
            .as_ref()
            .ok_or_else(|| Error::state("the socket is not bound yet: call initSocket() first"))
    }

    /// Joins `group` (text, IPv6 with an optional `%scope`) on `interface` (a name or an
    /// address; default: the group's scope, else the interface the socket is bound to, else
    /// the one the route to the group goes through): `addMembership`. Works before and while
    /// the workers run. Source-specific with `source`: `addSourceSpecificMembership`, which
    /// hears only that sender.
    pub fn add_membership(&mut self, source: Option<&str>, group: &str, interface: Option<&str>) -> Result<()> {
        let membership = self
            .bound_socket()?
            .membership(MembershipChange::Join, source, group, interface)?;
        self.memberships.push(membership);
        Ok(())
    }

    /// Leaves what [`add_membership`](Self::add_membership) joined with the same arguments:
    /// `dropMembership`, `dropSourceSpecificMembership`.
    pub fn drop_membership(&mut self, source: Option<&str>, group: &str, interface: Option<&str>) -> Result<()> {
        let membership = self
            .bound_socket()?
            .membership(MembershipChange::Leave, source, group, interface)?;
        self.memberships.retain(|m| *m != membership);
        Ok(())
    }

    /// What is in effect on the socket: addresses, interface, buffer sizes, TTL, DSCP,
    /// priority, multicast settings and memberships (`getSocketInfo`). Needs initSocket().
    pub fn socket_info(&self) -> Result<SocketInfo> {
        self.bound_socket()?.info(&self.memberships)
    }

    /// Starts the worker thread(s) of the configured direction. Fails, with nothing left
    /// running, if a worker cannot be pinned or made real-time as configured.
    pub fn start(&mut self, notify: Arc<dyn Notify>) -> Result<()> {
        self.check_open()?;
        match self.state {
            State::Created => return Err(Error::state("the socket is not bound yet: call initSocket() first")),
            State::Running => return Err(Error::state("already started: call stop() first")),
            _ => {}
        }
        let socket = self.socket.clone().expect("a bound instance has a socket");
        self.allocate_rings()?;
        for flag in [&self.shared.stop, &self.shared.notify_pending, &self.shared.rx_waiting] {
            flag.store(false, Ordering::SeqCst);
        }
        let priority = self.config.priority;

        if self.config.direction.sends() {
            let side = self.send.as_mut().expect("rings allocated");
            let sender = Sender {
                socket: socket.clone(),
                shared: self.shared.clone(),
                ring: side.idle_consumer.take().expect("sender ring is idle"),
                notify: notify.clone(),
                spin: self.config.spin,
                nap_ns: self.config.nap_ns,
                priority,
                sent_log: self.tx_stamps.as_ref().map(|side| side.sent_log.clone()),
                streams: Vec::new(),
                replays: Vec::new(),
                captures: CaptureTaps::default(),
            };
            let setup = ThreadSetup {
                cpu: self.config.cpu,
                priority: self.config.priority,
                lock_stack: self.config.lock_memory == LockMemory::All,
            };
            match spawn_worker("udpcom-send", setup, sender, |s| s.ring, Sender::run) {
                Ok(handle) => self.sender = Some(handle),
                Err((error, ring)) => {
                    self.send.as_mut().expect("rings allocated").idle_consumer = ring;
                    return Err(error);
                }
            }
        }
        // The receiver thread reads datagrams, and transmit stamps off the error queue.
        if self.config.direction.receives() || self.tx_stamps.is_some() {
            let wake_fd = match &self.wake_fd {
                Some(fd) => fd.clone(),
                None => {
                    let flags = rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK;
                    let fd = rustix::event::eventfd(0, flags)
                        .map_err(|e| Error::from_io("eventfd", &e.into(), ""))
                        .inspect_err(|_| self.stop_workers())?;
                    self.wake_fd.insert(Arc::new(fd)).clone()
                }
            };
            // On a send-only instance this thread only reads transmit stamps, which nothing
            // waits for: it stays under normal scheduling. Under SCHED_FIFO on the sender's
            // CPU its time would add to the sender's, and RT throttling counts the two
            // together: a sender spinning near its budget would be frozen for 50 ms a second
            // (seen in the benchmark's stamped 10 kpps rows: lateness p99 20 ms).
            let receiver_priority = if self.config.direction.receives() {
                priority
            } else {
                None
            };
            let receiver = Receiver {
                socket,
                shared: self.shared.clone(),
                notify,
                wake_fd,
                receive: self.recv.as_mut().and_then(|side| side.idle.take()),
                tx_stamps: self.tx_stamps.as_mut().and_then(|side| side.idle.take()),
                priority: receiver_priority,
                spin_ns: self.config.rx_spin_ns,
                captures: CaptureTaps::default(),
            };
            let setup = ThreadSetup {
                cpu: self.config.receiver_cpu(),
                priority: receiver_priority,
                lock_stack: self.config.lock_memory == LockMemory::All,
            };
            let parts = |r: Receiver| (r.receive, r.tx_stamps);
            match spawn_worker("udpcom-recv", setup, receiver, parts, Receiver::run) {
                Ok(handle) => self.receiver = Some(handle),
                Err((error, parts)) => {
                    self.put_back_receiver_parts(parts);
                    self.stop_workers();
                    return Err(error);
                }
            }
        }
        self.state = State::Running;
        Ok(())
    }

    /// Allocates the rings of the configured direction on first start (they are reused after
    /// stop()), and locks them into memory if configured.
    fn allocate_rings(&mut self) -> Result<()> {
        let (capacity, ring_bytes) = (self.config.capacity, self.config.ring_bytes);
        let mut regions = Vec::new();
        if self.config.direction.sends() && self.send.is_none() {
            let (producer, consumer) = packet_ring(capacity, ring_bytes);
            self.send = Some(SendSide {
                producer,
                idle_consumer: Some(consumer),
            });
        }
        if self.config.direction.receives() && self.recv.is_none() {
            let (producer, consumer) = packet_ring(capacity, ring_bytes);
            let path = ReceivePath {
                ring: producer,
                batch: RecvBatch::new(),
                analyzer: self.analyzer.clone(),
                reflector: self
                    .config
                    .reflect
                    .then(|| Reflector::new(self.config.remote.is_some())),
                deliver: self.config.deliver,
            };
            self.recv = Some(RecvSide {
                consumer,
                idle: Some(path),
            });
        }
        let stamping = self
            .timestamping
            .as_ref()
            .map_or(TimestampMode::None, |info| info.in_use);
        if stamping != TimestampMode::None && self.config.direction.sends() && self.tx_stamps.is_none() {
            // Records carry no payload; the arena only has to exist.
            let (producer, records) = packet_ring(capacity, 1);
            let sent_log = Arc::new(SentLog::default());
            let path = TxStampPath {
                sent_log: sent_log.clone(),
                records: producer,
                errqueue: ErrQueueBatch::default(),
                mode: stamping,
            };
            self.tx_stamps = Some(TxStampSide {
                sent_log,
                records,
                idle: Some(path),
            });
        }
        if self.config.lock_memory != LockMemory::None {
            if let Some(side) = &self.send {
                regions.extend(side.producer.regions());
            }
            if let Some(RecvSide { idle: Some(path), .. }) = &self.recv {
                regions.extend(path.ring.regions());
                regions.extend(path.batch.regions());
            }
            sys::lock_regions(&regions).map_err(|e| lock_error(Error::from_io("mlock", &e, "rings")))?;
        }
        if self.config.lock_memory == LockMemory::All {
            // The code and data of the process's files (see `memlock`); the workers lock their
            // own stacks (ThreadSetup::lock_stack).
            let maps = std::fs::read_to_string("/proc/self/maps")
                .map_err(|e| Error::from_io("open", &e, "/proc/self/maps"))?;
            let files: Vec<(*const u8, usize)> = memlock::file_mappings(&maps)
                .into_iter()
                .map(|(start, len)| (start as *const u8, len))
                .collect();
            sys::lock_regions(&files).map_err(|e| lock_error(Error::from_io("mlock", &e, "file mappings")))?;
        }
        Ok(())
    }

    /// Checks that sending is possible now, to the connected peer (`destination` None) or to
    /// `destination`; returns the destination to store with each packet (the empty address
    /// for the connected peer).
    fn check_can_send(&self, destination: Option<SocketAddr>) -> Result<PeerAddr> {
        self.check_open()?;
        if !self.config.direction.sends() {
            return Err(Error::state(
                "this instance only receives (direction 1): it cannot send",
            ));
        }
        match (destination, self.config.remote) {
            (None, None) => {
                return Err(Error::state(
                    "this instance is unconnected (remotePort 0): there is no peer to send to; \
                     send to an address instead",
                ))
            }
            (Some(_), Some(remote)) => return Err(Error::dgram_is_connected(&remote.to_string())),
            _ => {}
        }
        if self.state != State::Running {
            return Err(Error::state(
                "not started: call initSocket() and start() before sending",
            ));
        }
        let Some(destination) = destination else {
            return Ok(PeerAddr::default());
        };
        if destination.is_ipv4() != self.is_ipv4() {
            let family = if self.is_ipv4() { "an IPv4" } else { "an IPv6" };
            return Err(Error::invalid_arg_value(
                "The argument 'address'",
                &format!("must be {family} address, as the socket is"),
                format!("'{}'", destination.ip()),
            ));
        }
        if destination.port() == 0 {
            return Err(Error::bad_port("Port", "type number (0)"));
        }
        Ok(PeerAddr::from_socket_addr(destination))
    }

    fn check_payload(&self, len: usize) -> Result<()> {
        let max = self.config.max_payload();
        if len > max {
            return Err(Error::out_of_range(
                "the payload length",
                &format!("<= {max} bytes"),
                len,
            ));
        }
        Ok(())
    }

    /// True when the instance was created with a remote peer (remotePort ≠ 0): it sends with
    /// [`send`](Self::send) and hears only that peer. Otherwise it sends with
    /// [`send_to`](Self::send_to) and hears anyone.
    pub fn is_connected(&self) -> bool {
        self.config.remote.is_some()
    }

    /// True when the socket is IPv4 (destinations must then be IPv4 too), false for IPv6.
    pub fn is_ipv4(&self) -> bool {
        self.config.local.is_ipv4()
    }

    /// Copies one packet for the connected peer into the send ring. `deadline_ns` 0 means as
    /// soon as possible. Returns false, queuing nothing, when the ring is full.
    /// ERR_UDPCOM_STATE on an unconnected instance.
    pub fn send(&mut self, payload: &[u8], deadline_ns: u64) -> Result<bool> {
        let destination = self.check_can_send(None)?;
        self.queue(payload, deadline_ns, destination)
    }

    /// Like [`send`](Self::send), to `destination`, on an unconnected instance: the same ring,
    /// so packets leave in the order they were queued, whichever call queued them.
    /// ERR_SOCKET_DGRAM_IS_CONNECTED on a connected instance; ERR_INVALID_ARG_VALUE for a
    /// destination of the other IP family; ERR_SOCKET_BAD_PORT for port 0.
    pub fn send_to(&mut self, payload: &[u8], deadline_ns: u64, destination: SocketAddr) -> Result<bool> {
        let destination = self.check_can_send(Some(destination))?;
        self.queue(payload, deadline_ns, destination)
    }

    fn queue(&mut self, payload: &[u8], deadline_ns: u64, destination: PeerAddr) -> Result<bool> {
        self.check_payload(payload.len())?;
        let meta = send_meta(deadline_ns, destination);
        // Inline only a packet that is due: no deadline, or one that has passed. (A timed packet's
        // target is its deadline, so comparing the two would send it early.)
        let due = meta.deadline_ns == 0 || meta.deadline_ns <= now_ns();
        if self.config.inline_send && due && self.send_inline(payload, &meta) {
            return Ok(true);
        }
        let side = self.send.as_mut().expect("a running sender has rings");
        let js = &self.shared.counters.js;
        if side.producer.push(meta, payload).is_err() {
            bump(&js.send_ring_full, 1);
            return Ok(false);
        }
        bump(&js.packets_queued, 1);
        self.wake_sender();
        Ok(true)
    }

    /// Copies packets into the send ring in order, stopping at the first that does not fit;
    /// returns how many were queued. Every payload is checked before anything is queued.
    /// `destination`: None for the connected peer (as [`send`](Self::send)), else every packet
    /// goes there (as [`send_to`](Self::send_to), with its errors).
    pub fn send_batch(&mut self, packets: &[(&[u8], u64)], destination: Option<SocketAddr>) -> Result<usize> {
        let destination = self.check_can_send(destination)?;
        for (payload, _) in packets {
            self.check_payload(payload.len())?;
        }
        let side = self.send.as_mut().expect("a running sender has rings");
        let mut queued = 0;
        for &(payload, deadline_ns) in packets {
            if side
                .producer
                .stage(send_meta(deadline_ns, destination), payload)
                .is_err()
            {
                break;
            }
            queued += 1;
        }
        side.producer.publish();
        let js = &self.shared.counters.js;
        bump(&js.packets_queued, queued as u64);
        bump(&js.send_ring_full, (packets.len() - queued) as u64);
        if queued > 0 {
            self.wake_sender();
        }
        Ok(queued)
    }

    /// `inlineSend`: sends a packet that is due now from the calling thread, when nothing is
    /// queued before it (so order holds) and no transmit stamps are being matched (their keys
    /// count the sender's packets). Saves waking the sender thread, which on a VM costs tens
    /// of microseconds. Never blocks: if the socket would block, returns false and the packet
    /// goes through the ring.
    fn send_inline(&mut self, payload: &[u8], meta: &SendMeta) -> bool {
        // A capture of sent datagrams taps them on the sender thread.
        if self.tx_stamps.is_some() || self.capturing_sent() || self.queued_total() != self.completed_total() {
            return false;
        }
        let Some(socket) = &self.socket else { return false };
        let js = &self.shared.counters.js;
        let destinations = (!meta.destination.is_none()).then_some(std::slice::from_ref(&meta.destination));
        let departure_ns = now_ns();
        match sys::send_many(socket.as_fd(), &[payload], destinations, libc::MSG_DONTWAIT) {
            Ok(1) => {
                self.inline_latencies
                    .record(departure_ns.saturating_sub(meta.target_ns));
                bump(&js.inline_sent, 1);
                bump(&js.inline_bytes, payload.len() as u64);
            }
            Ok(_) => return false,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => return false,
            Err(e) => {
                bump(&js.inline_errors, 1);
                self.shared.set_last_error(Error::from_io("sendmmsg", &e, ""));
            }
        }
        bump(&js.packets_queued, 1);
        true
    }

    fn capturing_sent(&self) -> bool {
        self.captures.iter().any(|c| c.sends_tapped())
    }

    fn wake_sender(&self) {
        // Pairs with the fence in `Sender::park`.
        fence(Ordering::SeqCst);
        if self.shared.sender_idle.load(Ordering::Relaxed) {
            if let Some(handle) = &self.sender {
                handle.thread().unpark();
            }
        } else if self.shared.sender_waits_for_stream.load(Ordering::Relaxed) {
            // It sleeps until a stream's tick: this packet may be due first.
            self.shared.sender_wake.wake();
        }
    }

    /// Starts a stream: the sender generates its packets from now on, on the same timing path
    /// as queued packets. Returns its id (the udpcom header's stream id): `stream_id`, or the
    /// next free number.
    pub fn start_stream(&mut self, spec: &StreamSpec, stream_id: Option<u32>) -> Result<u32> {
        let destination = self.check_can_send(spec.destination)?;
        self.check_payload(spec.size)?;
        let id = stream_id.unwrap_or(self.next_stream_id);
        if self.streams.iter().any(|s| s.id == id && s.end() == StreamEnd::Running) {
            return Err(Error::invalid_arg_value(
                "The property 'options.streamId'",
                "is the id of a stream that is running",
                id,
            ));
        }
        let mut stream = ActiveStream::new(id, spec, crate::sys::SEND_BATCH)?;
        stream.destination = destination;
        self.next_stream_id = self.next_stream_id.max(id.wrapping_add(1));
        self.streams.push(stream.shared.clone());
        self.shared
            .stream_inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(stream);
        // Wake it wherever it is: parked, or asleep until a later deadline.
        fence(Ordering::SeqCst);
        if let Some(handle) = &self.sender {
            handle.thread().unpark();
        }
        self.shared.sender_wake.wake();
        Ok(id)
    }

    /// Asks stream `id` to stop (an iperf 2 stream still sends its final datagram); its
    /// statistics then say `Stopped`. False if there is no such stream.
    pub fn stop_stream(&self, id: u32) -> bool {
        let Some(stream) = self.streams.iter().rev().find(|s| s.id == id) else {
            return false;
        };
        stream.stop.store(true, Ordering::Release);
        self.shared.sender_wake.wake();
        true
    }

    /// Statistics of stream `id` (the latest started with that id), with the round trips of its
    /// packets a reflector sent back when this instance analyses what it receives.
    pub fn stream_stats(&self, id: u32) -> Option<StreamSendStats> {
        let mut stats = self.streams.iter().rev().find(|s| s.id == id)?.stats();
        stats.round_trip = self
            .analyzed_streams()
            .and_then(|streams| {
                streams
                    .into_iter()
                    .find(|s| s.stream_id == Some(id) && s.round_trip.is_some())
            })
            .and_then(|s| s.round_trip);
        Some(stats)
    }

    /// The analysis of every stream received so far, in order of first arrival (`analyze`);
    /// `None` without it.
    pub fn analyzed_streams(&self) -> Option<Vec<StreamSnapshot>> {
        let analyzer = self.analyzer.as_ref()?;
        Some(analyzer.lock().unwrap_or_else(|p| p.into_inner()).streams())
    }

    /// Datagrams the analysis could not read (not of its header) and beyond its stream limit.
    pub fn analysis_totals(&self) -> Option<AnalyzerTotals> {
        let analyzer = self.analyzer.as_ref()?;
        Some(analyzer.lock().unwrap_or_else(|p| p.into_inner()).totals())
    }

    /// Starts replaying a capture file (see [`crate::replay`]); returns its id. A file that is
    /// not a capture fails here (ERR_UDPCOM_PCAP), one that is corrupt further on ends the
    /// replay with that error (in its statistics) after sending what came before.
    pub fn start_replay(&mut self, spec: ReplaySpec) -> Result<u32> {
        let destination = match spec.destination {
            ReplayDestination::Connected => None,
            ReplayDestination::Fixed(address) => Some(address),
            // Checked like a destination, with the socket's own family as a stand-in.
            ReplayDestination::Original => Some(SocketAddr::new(self.config.local.ip(), 9)),
        };
        self.check_can_send(destination)?;
        let id = self.next_replay_id;
        let replay = ActiveReplay::start(id, spec, self.is_ipv4(), self.shared.sender_wake.clone())?;
        self.next_replay_id += 1;
        self.replays.push(replay.shared.clone());
        self.shared
            .replay_inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(replay);
        fence(Ordering::SeqCst);
        if let Some(handle) = &self.sender {
            handle.thread().unpark();
        }
        self.shared.sender_wake.wake();
        Ok(id)
    }

    /// Asks replay `id` to stop; false if there is no such replay.
    pub fn stop_replay(&self, id: u32) -> bool {
        let Some(replay) = self.replays.iter().find(|r| r.id == id) else {
            return false;
        };
        replay.stop.store(true, Ordering::Release);
        self.shared.sender_wake.wake();
        true
    }

    /// Statistics of replay `id`.
    pub fn replay_stats(&self, id: u32) -> Option<ReplayStats> {
        self.replays.iter().find(|r| r.id == id).map(|r| r.stats())
    }

    /// Starts capture `spec`: from now on every datagram the instance receives (and with
    /// `sent`, sends) is copied to the capture's writer thread. Works on a bound instance too
    /// (the workers take the capture over when they start). Turns on kernel receive stamps if
    /// timestamping is off, so that received datagrams have the kernel's time; they stay on.
    pub fn start_capture(&mut self, spec: &CaptureSpec) -> Result<u32> {
        self.check_open()?;
        let Some(socket) = self.socket.clone() else {
            return Err(Error::state("the socket is not bound yet: call initSocket() first"));
        };
        let stamping = self
            .timestamping
            .as_ref()
            .map_or(TimestampMode::None, |info| info.in_use);
        if stamping == TimestampMode::None && self.config.direction.receives() {
            timestamping::enable_receive_stamps(&socket)?;
        }
        let addresses = CaptureAddresses {
            local: PeerAddr::from_socket_addr(socket.local_addr()),
            remote: socket.remote_addr().map(PeerAddr::from_socket_addr).unwrap_or_default(),
        };
        let id = self.next_capture_id;
        let (capture, receiver_tap, sender_tap) = ActiveCapture::start(id, spec, self.tx_stamps.is_some(), addresses)?;
        self.next_capture_id += 1;
        self.captures.retain(|c| !c.shared.stats().closed);
        self.captures.push(Arc::new(capture));
        let inbox = &self.shared.capture_inbox;
        inbox
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(receiver_tap);
        inbox.sender.lock().unwrap_or_else(|p| p.into_inner()).push(sender_tap);
        self.capture_changed();
        Ok(id)
    }

    /// Asks capture `id` to close and returns at once; [`CaptureCloser::wait`] waits for its
    /// file to be complete (call it off the JavaScript thread). None if there is no such capture.
    pub fn close_capture(&self, id: u32) -> Option<CaptureCloser> {
        let capture = self.captures.iter().find(|c| c.shared.id == id)?.clone();
        capture.request_close();
        self.shared.capture_inbox.discard(id);
        self.capture_changed();
        Some(CaptureCloser(capture))
    }

    /// Statistics of capture `id`.
    pub fn capture_stats(&self, id: u32) -> Option<CaptureStats> {
        self.captures
            .iter()
            .find(|c| c.shared.id == id)
            .map(|c| c.shared.stats())
    }

    /// What memory capture `id` wrote since the last call (empty for a file capture).
    pub fn take_capture_bytes(&self, id: u32) -> Option<Vec<u8>> {
        self.captures
            .iter()
            .find(|c| c.shared.id == id)
            .map(|c| c.shared.take_memory())
    }

    /// Closes every capture and waits for their files.
    fn close_captures(&mut self) {
        for capture in &self.captures {
            capture.request_close();
            self.shared.capture_inbox.discard(capture.shared.id);
        }
        self.capture_changed();
        for capture in &self.captures {
            capture.wait_closed();
        }
    }

    /// Tells both workers to look at their captures, wherever they wait.
    fn capture_changed(&self) {
        self.shared.capture_inbox.changed();
        fence(Ordering::SeqCst);
        if let Some(handle) = &self.sender {
            handle.thread().unpark();
        }
        self.shared.sender_wake.wake();
        self.wake_receiver();
    }

    /// True once after a stream ended: JavaScript looks at its streams then.
    pub fn take_streams_ended(&self) -> bool {
        self.shared.streams_ended.swap(false, Ordering::AcqRel)
    }

    /// Checks that receiving is possible now.
    pub fn check_can_receive(&self) -> Result<()> {
        self.check_open()?;
        if !self.config.direction.receives() {
            return Err(Error::state(
                "this instance only sends (direction 0): it cannot receive",
            ));
        }
        if self.state != State::Running {
            return Err(Error::state(
                "not started: call initSocket() and start() before receiving",
            ));
        }
        Ok(())
    }

    /// Packets waiting in the receive ring.
    pub fn received_count(&mut self) -> usize {
        self.recv.as_mut().map_or(0, |side| side.consumer.available())
    }

    /// Hands received packets, in arrival order, to `deliver`, and removes them from the ring:
    /// as many as are there, while fewer than `max` were taken and the payload bytes taken
    /// plus the next packet's length stay within `max_bytes` (so a packet longer than
    /// `max_bytes` is never taken: pass at least 65,535 to take any). Returns how many.
    pub fn receive(&mut self, max: usize, max_bytes: usize, mut deliver: impl FnMut(Received<'_>)) -> usize {
        let Some(side) = self.recv.as_mut() else { return 0 };
        let available = side.consumer.available().min(max);
        let now = now_ns();
        let (mut count, mut bytes) = (0, 0usize);
        while count < available {
            let packet = side.consumer.peek(count).expect("counted as available");
            if bytes + packet.payload.len() > max_bytes {
                break;
            }
            bytes += packet.payload.len();
            self.delivery_latencies
                .record(now.saturating_sub(packet.meta.arrival_ns));
            deliver(Received {
                payload: packet.payload,
                meta: packet.meta,
            });
            count += 1;
        }
        side.consumer.release(count);
        bump(&self.shared.counters.js.packets_delivered, count as u64);
        count
    }

    /// Asks the receiver to wake JavaScript when a packet arrives, and, with a deadline, when
    /// that time passes. Afterwards check [`received_count`](Self::received_count) again: a
    /// packet may have arrived just before the request.
    pub fn wait_for_receive(&self, deadline_ns: Option<u64>) {
        self.shared.rx_waiting.store(true, Ordering::SeqCst);
        // Pairs with the fence in `Receiver::run`.
        fence(Ordering::SeqCst);
        if let Some(deadline_ns) = deadline_ns {
            let previous = self.shared.rx_deadline_ns.fetch_min(deadline_ns, Ordering::AcqRel);
            if deadline_ns < previous {
                self.wake_receiver();
            }
        }
    }

    /// Nobody waits for packets any more.
    pub fn stop_waiting_for_receive(&self) {
        self.shared.rx_waiting.store(false, Ordering::SeqCst);
    }

    fn wake_receiver(&self) {
        if let Some(fd) = &self.wake_fd {
            // The eventfd is non-blocking; a full counter (never reached) would only mean the
            // receiver is already due to wake.
            let _ = rustix::io::write(&**fd, &1u64.to_ne_bytes());
        }
    }

    /// Packets queued so far (the target of a `drain()` called now).
    pub fn queued_total(&self) -> u64 {
        self.send.as_ref().map_or(0, |side| side.producer.pushed())
    }

    /// Packets that left the send ring so far (sent, failed, or discarded by stop()).
    pub fn completed_total(&self) -> u64 {
        self.shared.send_completed.load(Ordering::SeqCst)
    }

    /// Asks the sender to wake JavaScript once `completed_total()` reaches `target`
    /// (`u64::MAX`: nobody waits). Afterwards check `completed_total()` again.
    pub fn set_drain_target(&self, target: u64) {
        self.shared.drain_target.store(target, Ordering::SeqCst);
    }

    /// Called by the JavaScript thread when a notification arrives, before it looks at the
    /// engine: later events notify again.
    pub fn begin_notification(&self) {
        self.shared.notify_pending.store(false, Ordering::SeqCst);
    }

    /// True while workers run.
    pub fn is_running(&self) -> bool {
        self.state == State::Running
    }

    /// Stops the workers (within ~20 ms, whatever is queued), joins them, and discards what
    /// is left in the rings, counting it. A no-op unless running.
    pub fn stop(&mut self) {
        if self.state != State::Running {
            return;
        }
        self.stop_workers();
        self.state = State::Bound;
    }

    fn stop_workers(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.sender_wake.wake();
        if let Some(handle) = self.sender.take() {
            handle.thread().unpark();
            let joined = handle.join();
            let side = self.send.as_mut().expect("a sender has rings");
            match joined {
                Ok(mut consumer) => {
                    let discarded = consumer.discard_all() as u64;
                    bump(&self.shared.counters.js.packets_discarded, discarded);
                    self.shared.send_completed.fetch_add(discarded, Ordering::SeqCst);
                    side.idle_consumer = Some(consumer);
                }
                Err(_) => self.worker_panicked("sender"),
            }
        }
        if let Some(handle) = self.receiver.take() {
            self.wake_receiver();
            match handle.join() {
                Ok(parts) => self.put_back_receiver_parts(Some(parts)),
                Err(_) => self.worker_panicked("receiver"),
            }
            if let Some(side) = self.recv.as_mut() {
                let discarded = side.consumer.discard_all() as u64;
                bump(&self.shared.counters.js.recv_discarded, discarded);
            }
        }
        self.shared.rx_waiting.store(false, Ordering::SeqCst);
        self.shared.rx_deadline_ns.store(u64::MAX, Ordering::SeqCst);
        self.shared.drain_target.store(u64::MAX, Ordering::SeqCst);
        // Streams the sender never took over, and any it left running, end with the instance.
        self.shared
            .stream_inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        for stream in &self.streams {
            stream.set_end(StreamEnd::InstanceStopped);
        }
        // Dropping a replay the sender never took over stops and joins its reader.
        self.shared
            .replay_inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        for replay in &self.replays {
            replay.finish(StreamEnd::InstanceStopped);
        }
        self.shared.streams_ended.store(true, Ordering::SeqCst);
        // The workers let go of their taps as they ended: the files can be finished.
        self.close_captures();
    }

    /// Gives the receiver thread's rings and buffers back to their idle slots.
    fn put_back_receiver_parts(&mut self, parts: Option<ReceiverParts>) {
        let Some((receive, tx_stamps)) = parts else { return };
        if let Some(side) = self.recv.as_mut() {
            side.idle = receive;
        }
        if let Some(side) = self.tx_stamps.as_mut() {
            side.idle = tx_stamps;
        }
    }

    /// A worker panicked (a bug): its ring half is gone, so drop both halves and allocate
    /// fresh rings on the next start; report it in the statistics.
    fn worker_panicked(&mut self, which: &str) {
        if which == "sender" {
            self.send = None;
        } else {
            self.recv = None;
            self.tx_stamps = None;
        }
        self.shared
            .set_last_error(Error::internal(format!("the {which} thread panicked; see stderr")));
    }

    /// Stops if needed and closes the socket. Every later call fails with ERR_UDPCOM_STATE.
    pub fn close(&mut self) -> Result<()> {
        self.check_open()?;
        self.stop();
        // Captures started on a bound instance that never ran.
        self.close_captures();
        self.socket = None;
        self.memberships.clear();
        self.send = None;
        self.recv = None;
        self.tx_stamps = None;
        // The receiver's eventfd too: a closed instance that JavaScript still references
        // (or that is not collected yet) must not hold a file descriptor.
        self.wake_fd = None;
        self.state = State::Closed;
        Ok(())
    }

    /// All statistics, as of now.
    pub fn stats(&self) -> Result<Stats> {
        self.check_open()?;
        let latency = match self.inline_latencies.count() {
            0 => self.shared.latencies.summary(),
            _ => {
                let mut latencies = self.shared.latencies.get();
                latencies.add(&self.inline_latencies);
                latencies.summary()
            }
        };
        let mut stats = self.shared.counters.snapshot(latency);
        stats.wire_latency = self.shared.wire_latencies.summary();
        stats.delivery_latency = self.delivery_latencies.summary();
        if let Some(socket) = &self.socket {
            stats.kernel_drops = stats.kernel_drops.max(socket.kernel_drops());
        }
        stats.last_error = self.shared.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(stats)
    }

    /// Native memory this instance holds for its rings and buffers (so that the binding can
    /// tell the JavaScript garbage collector about it).
    pub fn memory_bytes(&self) -> usize {
        const RECV_BUFFERS: usize = crate::sys::RECV_BATCH * crate::sys::RECV_BUFFER;
        let send = self.send.as_ref().map_or(0, |side| side.producer.memory_bytes());
        let recv = self
            .recv
            .as_ref()
            .map_or(0, |side| side.consumer.memory_bytes() + RECV_BUFFERS);
        send + recv
    }

    /// What timestamping is asked for, possible and in use; fails before initSocket().
    pub fn timestamping_info(&self) -> Result<TimestampingInfo> {
        self.check_open()?;
        self.timestamping
            .clone()
            .ok_or_else(|| Error::state("the socket is not bound yet: call initSocket() first"))
    }

    /// Hands up to `max` transmit stamps, in the order they were read, to `deliver`.
    pub fn take_tx_records(&mut self, max: usize, mut deliver: impl FnMut(TxRecord)) -> usize {
        let Some(side) = self.tx_stamps.as_mut() else { return 0 };
        let count = side.records.available().min(max);
        for i in 0..count {
            deliver(side.records.peek(i).expect("counted as available").meta);
        }
        side.records.release(count);
        count
    }

    /// Timestamp of now on the engine's clock (CLOCK_MONOTONIC ns).
    pub fn now_ns(&self) -> u64 {
        now_ns()
    }
}

impl Drop for UdpEngine {
    fn drop(&mut self) {
        self.stop();
        self.close_captures();
    }
}

/// A capture asked to close ([`UdpEngine::close_capture`]).
pub struct CaptureCloser(Arc<ActiveCapture>);

impl CaptureCloser {
    /// Waits for the capture's writer to write what is queued and finish the file (this can
    /// take as long as the disk needs); returns its final statistics.
    pub fn wait(&self) -> CaptureStats {
        self.0.wait_closed()
    }
}

fn lock_error(error: Error) -> Error {
    crate::rt::lock_hint(error)
}

fn send_meta(deadline_ns: u64, destination: PeerAddr) -> SendMeta {
    // Without a deadline, latency counts from the moment the packet was handed over.
    let target_ns = if deadline_ns == 0 { now_ns() } else { deadline_ns };
    SendMeta {
        deadline_ns,
        target_ns,
        destination,
    }
}

/// Spawns a worker that applies `setup` to itself first and reports the result; on failure
/// the worker's parts come back with the error.
#[allow(clippy::type_complexity)]
fn spawn_worker<W: Send + 'static, Parts: Send + 'static>(
    name: &str,
    setup: ThreadSetup,
    worker: W,
    into_parts: fn(W) -> Parts,
    run: fn(W) -> Parts,
) -> std::result::Result<JoinHandle<Parts>, (Error, Option<Parts>)> {
    let (ready_tx, ready_rx) = crossbeam::channel::bounded(1);
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let result = setup.apply();
            let ok = result.is_ok();
            let _ = ready_tx.send(result);
            if ok {
                run(worker)
            } else {
                into_parts(worker)
            }
        })
        .map_err(|e| (Error::from_io("pthread_create", &e, name), None))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(error)) => Err((error, handle.join().ok())),
        Err(_) => Err((
            Error::internal(format!("the {name} thread died during set-up")),
            handle.join().ok(),
        )),
    }
}
