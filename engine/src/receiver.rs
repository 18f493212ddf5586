//! The receiver worker: reads datagrams off the socket into the receive ring, reads transmit
//! timestamps off the socket's error queue, and wakes JavaScript when someone is waiting.
//!
//! It reads with `recvmmsg(MSG_DONTWAIT)` until the socket is empty, then blocks in `poll` on
//! the socket and on an eventfd that `stop()` and JavaScript use to wake it. The poll timeout
//! is the earliest `receiveData` timeout, so timeouts are served from here too and JavaScript
//! never polls. A datagram that finds the ring full is dropped and counted; datagrams the
//! kernel dropped because the socket buffer was full are counted from `SO_RXQ_OVFL`.
//!
//! With timestamping, the same thread owns the socket's error queue (`poll` reports it as
//! POLLERR to whoever waits on the socket): it matches each transmit stamp to its packet
//! through the sender's [`SentLog`] and records wire latency. A send-only instance with
//! timestamping runs this thread for the error queue alone.

use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex};

use rustix::event::{PollFd, PollFlags};
use rustix::time::Timespec;

use crate::addr::PeerAddr;
use crate::analysis::Analyzer;
use crate::capture::CaptureTaps;
use crate::config::TimestampMode;
use crate::error::Error;
use crate::reflect::Reflector;
use crate::ring::Producer;
use crate::rt::RunBudget;
use crate::shared::{Notify, Shared};
use crate::socket::UdpSocket;
use crate::stats::{bump, LatencyRecorder};
use crate::sys::{Datagram, ErrQueueBatch, RecvBatch, RECV_BATCH};
use crate::time::{now_ns, RealtimeToMonotonic, NS_PER_SEC};
use crate::timestamping::{SentLog, TxRecord, GENERATED_PACKET};

/// Where a received packet's `arrival_ns` comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StampSource {
    /// The receiver thread's clock read after `recvmmsg`.
    #[default]
    User,
    /// The kernel's software receive stamp.
    Kernel,
    /// The NIC's hardware stamp is present (`hardware_ns`); `arrival_ns` is the kernel's.
    Hardware,
}

/// What the receive ring stores beside each payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecvMeta {
    /// CLOCK_MONOTONIC arrival time: the kernel's stamp when there is one, else the receiver
    /// thread's clock read.
    pub arrival_ns: u64,
    /// Where `arrival_ns` comes from.
    pub source: StampSource,
    /// The NIC's raw hardware stamp; 0 if none.
    pub hardware_ns: u64,
    /// Who sent it, as `recvmmsg` reported (on connected instances too); the empty address
    /// only if the kernel named no IPv4 or IPv6 sender.
    pub peer: PeerAddr,
    /// With `packetInfo`: the destination address of the datagram (the group, the broadcast
    /// address or the unicast address of this host it was sent to; on an IPv6 socket an IPv4
    /// datagram's is v4-mapped), from `IP_PKTINFO` / `IPV6_PKTINFO`. `None` without.
    pub destination: Option<IpAddr>,
    /// With `packetInfo`: the index of the interface the datagram arrived on; 0 without.
    pub interface_index: u32,
}

// A receive ring slot is this plus 16 bytes; the packet information fits in what was padding
// and 16 bytes more (README, Memory).
const _: () = assert!(std::mem::size_of::<RecvMeta>() == 64);

/// The receive half: ring, `recvmmsg` buffers, and the stages every datagram goes through
/// before the ring.
pub(crate) struct ReceivePath {
    pub ring: Producer<RecvMeta>,
    pub batch: RecvBatch,
    /// Stream analysis (`analyze`), shared with the JavaScript thread's getStreamStats.
    pub analyzer: Option<Arc<Mutex<Analyzer>>>,
    /// The native reflector (`reflect`).
    pub reflector: Option<Reflector>,
    /// Datagrams go into the ring for JavaScript (`deliver`).
    pub deliver: bool,
}

/// The transmit-stamp half: what the error queue needs.
pub(crate) struct TxStampPath {
    pub sent_log: Arc<SentLog>,
    pub records: Producer<TxRecord>,
    pub errqueue: ErrQueueBatch,
    pub mode: TimestampMode,
}

/// Everything the receiver thread owns.
pub(crate) struct Receiver {
    pub socket: Arc<UdpSocket>,
    pub shared: Arc<Shared>,
    pub notify: Arc<dyn Notify>,
    pub wake_fd: Arc<OwnedFd>,
    /// Datagrams to read, unless this is a send-only instance.
    pub receive: Option<ReceivePath>,
    /// Transmit stamps to read, when timestamping is on.
    pub tx_stamps: Option<TxStampPath>,
    /// SCHED_FIFO priority, for the run budget.
    pub priority: Option<i32>,
    /// Keep polling this long after a datagram before blocking (`rxSpinNs`).
    pub spin_ns: u64,
    /// Captures' taps: received datagrams, reflected replies, transmit stamps.
    pub captures: CaptureTaps,
}

/// What [`Receiver::run`] gives back for the next start.
pub(crate) type ReceiverParts = (Option<ReceivePath>, Option<TxStampPath>);

impl Receiver {
    /// Runs until `shared.stop` is set; gives the rings and buffers back for the next start.
    pub(crate) fn run(mut self) -> ReceiverParts {
        let shared = self.shared.clone();
        let mut budget = RunBudget::new(self.priority);
        let mut clock = RealtimeToMonotonic::default();
        let mut wire = LatencyRecorder::default();
        let mut stamps_seen = 0u64;
        let mut last_datagram_ns = 0;

        while !shared.stop.load(Ordering::Relaxed) {
            let inbox = &shared.capture_inbox;
            self.captures.update(&inbox.generation, &inbox.receiver);
            if self.receive.is_some() {
                match self.read_datagrams(&mut clock) {
                    Ok(count) => {
                        last_datagram_ns = now_ns();
                        if budget.check(now_ns()) {
                            shared
                                .counters
                                .receiver
                                .rt_demotions
                                .store(budget.demotions(), Ordering::Relaxed);
                        }
                        // A short batch means the socket was empty when recvmmsg returned:
                        // unless told to poll on, sleep now instead of asking again only to
                        // hear EAGAIN. On one CPU that extra system call delays the JavaScript
                        // thread just woken; poll() is level-triggered, so a datagram that
                        // arrived meanwhile ends the sleep at once.
                        if count == RECV_BATCH || self.spin_ns > 0 {
                            if self.tx_stamps_outstanding(stamps_seen) {
                                stamps_seen += self.read_tx_stamps(&mut clock, &mut wire);
                            }
                            continue;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        // rxSpinNs: poll on for a while after the last datagram, unless a
                        // receive timeout is due (wait() serves those).
                        let now = now_ns();
                        let timeout_due = shared.rx_deadline_ns.load(Ordering::Relaxed) <= now;
                        if now.saturating_sub(last_datagram_ns) < self.spin_ns && !timeout_due {
                            if self.tx_stamps_outstanding(stamps_seen) {
                                stamps_seen += self.read_tx_stamps(&mut clock, &mut wire);
                            }
                            budget.check(now);
                            std::hint::spin_loop();
                            continue;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // A connected socket reports ICMP errors caused by our own sends here too
                    // (ECONNREFUSED): remember it and go on.
                    Err(e) => {
                        shared.set_last_error(Error::from_io("recvmmsg", &e, ""));
                        if e.raw_os_error() != Some(libc::ECONNREFUSED) {
                            // Unexpected; do not spin on an error that repeats.
                            crate::time::sleep_until(now_ns() + 1_000_000);
                        }
                        continue;
                    }
                }
            }
            if self.tx_stamps_outstanding(stamps_seen) {
                stamps_seen += self.read_tx_stamps(&mut clock, &mut wire);
            }
            wire.publish(&shared.wire_latencies, now_ns());
            if self.wait(&mut budget) {
                // POLLERR: transmit stamps, or a pending socket error (an ICMP error caused by
                // our own sends) that nobody else will collect on a send-only socket.
                stamps_seen += self.read_tx_stamps(&mut clock, &mut wire);
                if self.receive.is_none() {
                    if let Ok(Some(error)) = socket2::SockRef::from(&*self.socket).take_error() {
                        shared.set_last_error(Error::from_io("poll", &error, "socket error"));
                    }
                }
            }
        }
        wire.publish(&shared.wire_latencies, now_ns());
        (self.receive, self.tx_stamps)
    }

    /// Reads one batch of datagrams into the ring; returns how many buffers `recvmmsg` filled (at
    /// least one; with GRO a buffer may hold several datagrams).
    fn read_datagrams(&mut self, clock: &mut RealtimeToMonotonic) -> std::io::Result<usize> {
        let shared = &*self.shared;
        let counters = &shared.counters.receiver;
        let path = self.receive.as_mut().expect("receiving");
        let count = path.batch.recv(self.socket.as_fd())?;
        let now = now_ns();
        let (mut bytes, mut overflow, mut dropped_total, mut control_truncated) = (0, 0, None, 0);
        // The stages: analysis, reflection, delivery to the ring. One lock per batch.
        let mut analyzer = path
            .analyzer
            .as_ref()
            .map(|a| a.lock().unwrap_or_else(|p| p.into_inner()));
        let capturing = !self.captures.is_empty();
        let realtime_now = (analyzer.is_some() || path.reflector.is_some() || capturing).then(crate::time::realtime_ns);
        let mut datagrams = 0u64;
        for i in 0..count {
            let buffer = path.batch.datagram(i);
            // A datagram whose control data was cut short is still delivered (it may lack its
            // kernel stamp or the drop count); the truncation is counted.
            control_truncated += u64::from(buffer.ancillary.control_truncated);
            let meta = recv_meta(&buffer, now, clock);
            dropped_total = buffer.ancillary.dropped_total.or(dropped_total);
            // With GRO one buffer may hold several datagrams: each is handled on its own, all
            // with the buffer's sender, stamp and control data.
            for payload in gro_segments(buffer.payload, buffer.ancillary.gro_segment) {
                let datagram = Datagram { payload, ..buffer };
                datagrams += 1;
                bytes += payload.len() as u64;
                if let Some(realtime_now) = realtime_now {
                    // The header's times are CLOCK_REALTIME: the kernel's stamp as it came, else now.
                    let arrival_realtime = datagram.ancillary.software_ns.unwrap_or(realtime_now);
                    if let Some(analyzer) = analyzer.as_mut() {
                        if let Some(source) = datagram.peer.to_socket_addr() {
                            analyzer.analyze(meta.arrival_ns, arrival_realtime, source, datagram.payload);
                        }
                    }
                    if let Some(reflector) = path.reflector.as_mut() {
                        if reflector.is_full() {
                            flush_reflector(reflector, &self.socket, &mut self.captures, shared);
                        }
                        reflector.add(datagram.payload, datagram.peer, arrival_realtime);
                    }
                    if capturing {
                        let stamp = match datagram.ancillary.software_ns {
                            Some(_) => crate::pcap::StampSource::Kernel,
                            None => crate::pcap::StampSource::User,
                        };
                        // With packetInfo, the address it was sent to (a group, say) rather
                        // than the socket's own.
                        let to = meta.destination;
                        self.captures
                            .received(datagram.payload, arrival_realtime, datagram.peer, to, stamp);
                    }
                }
                if path.deliver && path.ring.stage(meta, datagram.payload).is_err() {
                    overflow += 1;
                }
            }
        }
        drop(analyzer);
        if let Some(reflector) = path.reflector.as_mut() {
            flush_reflector(reflector, &self.socket, &mut self.captures, shared);
        }
        if !path.deliver {
            bump(&counters.not_delivered, datagrams);
        }
        // Count before publishing: the JavaScript thread acquires the ring's head before it
        // delivers a packet, so whatever it has delivered is already counted as received.
        bump(&counters.packets_received, datagrams);
        bump(&counters.bytes_received, bytes);
        bump(&counters.control_truncated, control_truncated);
        // Release: a reader that sees this overflow also sees the received count above.
        let overflowed = counters.recv_ring_overflow.load(Ordering::Relaxed) + overflow;
        counters.recv_ring_overflow.store(overflowed, Ordering::Release);
        if let Some(total) = dropped_total {
            counters.kernel_drops.store(total as u64, Ordering::Relaxed);
        }
        path.ring.publish();
        // Pairs with the fence in `UdpEngine::wait_for_receive`.
        fence(Ordering::SeqCst);
        if shared.rx_waiting.load(Ordering::Relaxed) {
            shared.wake_js(&*self.notify);
        }
        Ok(count)
    }

    /// True when the sender sent datagrams whose transmit stamps have not been read yet.
    fn tx_stamps_outstanding(&self, stamps_seen: u64) -> bool {
        self.tx_stamps.is_some() && self.shared.counters.sender.datagrams_sent.load(Ordering::Relaxed) > stamps_seen
    }

    /// Reads every transmit stamp waiting in the error queue; returns how many it read.
    fn read_tx_stamps(&mut self, clock: &mut RealtimeToMonotonic, wire: &mut LatencyRecorder) -> u64 {
        let Some(path) = self.tx_stamps.as_mut() else { return 0 };
        let counters = &self.shared.counters.receiver;
        let mut read = 0;
        while let Ok((stamps, control_truncated)) = path.errqueue.recv(self.socket.as_fd()) {
            bump(&counters.control_truncated, control_truncated as u64);
            if stamps.is_empty() {
                break;
            }
            let now = now_ns();
            let (mut matched, mut dropped) = (0, 0);
            for stamp in stamps {
                read += 1;
                if let Some(realtime) = stamp.software_ns {
                    match (path.mode, stamp.hardware_ns) {
                        (TimestampMode::Hardware, Some(hardware)) => {
                            self.captures.transmit_stamp(stamp.key, hardware, true)
                        }
                        _ => self.captures.transmit_stamp(stamp.key, realtime, false),
                    }
                }
                let Some((target_ns, queue_id)) = path.sent_log.lookup(stamp.key) else {
                    continue;
                };
                matched += 1;
                let tx_ns = stamp
                    .software_ns
                    .map_or(0, |realtime| clock.monotonic_of(realtime, now));
                // A hardware stamp is on the NIC's clock; it is comparable with the target only
                // if that clock follows the system clock (phc2sys), which is assumed here.
                let departure = match (path.mode, stamp.hardware_ns) {
                    (TimestampMode::Hardware, Some(hardware)) => clock.monotonic_of(hardware, now),
                    _ => tx_ns,
                };
                if departure != 0 {
                    wire.record(departure.saturating_sub(target_ns));
                }
                // A stream's packets were never queued: they have no queue id to report.
                if queue_id == GENERATED_PACKET {
                    continue;
                }
                let record = TxRecord {
                    queue_id,
                    tx_ns,
                    hardware_ns: stamp.hardware_ns.unwrap_or(0),
                };
                if path.records.stage(record, &[]).is_err() {
                    dropped += 1;
                }
            }
            path.records.publish();
            bump(&counters.tx_timestamps, matched);
            bump(&counters.tx_records_dropped, dropped);
        }
        read
    }

    /// Blocks until a datagram arrives, the error queue has something, the wake fd is
    /// written, or the earliest receive timeout passes (then wakes JavaScript to resolve it).
    /// Returns true if the socket reported POLLERR.
    fn wait(&mut self, budget: &mut RunBudget) -> bool {
        let shared = &self.shared;
        let now = now_ns();
        let deadline_ns = shared.rx_deadline_ns.load(Ordering::Acquire);
        if deadline_ns <= now {
            // Hand the expiry to JavaScript; if JavaScript moved the deadline meanwhile, the
            // exchange fails and the next round looks again.
            if shared
                .rx_deadline_ns
                .compare_exchange(deadline_ns, u64::MAX, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                shared.wake_js(&*self.notify);
            }
            return false;
        }
        let timeout = (deadline_ns != u64::MAX).then(|| {
            let wait = deadline_ns - now;
            Timespec {
                tv_sec: (wait / NS_PER_SEC) as i64,
                tv_nsec: (wait % NS_PER_SEC) as _,
            }
        });
        // A send-only socket asks for nothing: poll still reports POLLERR (the error queue).
        let socket_events = if self.receive.is_some() {
            PollFlags::IN
        } else {
            PollFlags::empty()
        };
        budget.before_sleep(deadline_ns.saturating_sub(now));
        let mut fds = [
            PollFd::new(&*self.socket, socket_events),
            PollFd::new(&*self.wake_fd, PollFlags::IN),
        ];
        let _ = rustix::event::poll(&mut fds, timeout.as_ref());
        let error = fds[0].revents().contains(PollFlags::ERR);
        let woken = !fds[1].revents().is_empty();
        budget.slept(now_ns() - now);
        if woken {
            let mut counter = [0u8; 8];
            let _ = rustix::io::read(&*self.wake_fd, &mut counter);
        }
        error
    }
}

/// Sends the reflector's queued replies, counted; the captures see them.
fn flush_reflector(reflector: &mut Reflector, socket: &UdpSocket, captures: &mut CaptureTaps, shared: &Shared) {
    let flushed = reflector.flush(socket.as_fd(), |reply, destination, send_ns| {
        captures.sent(reply, send_ns, destination, None);
    });
    crate::reflect::count(flushed, &shared.counters.receiver);
    if let Some(errno) = flushed.error {
        shared.set_last_error(Error::os("sendmmsg", errno, "reflected reply"));
    }
}

/// The datagrams of one received buffer: with a `UDP_GRO` segment size, the buffer cut every
/// `segment` bytes (the last may be shorter); else the buffer itself (an empty datagram too).
fn gro_segments(buffer: &[u8], segment: Option<u32>) -> impl Iterator<Item = &[u8]> {
    let size = segment.map_or(buffer.len(), |s| s as usize).max(1);
    let whole = buffer.is_empty().then_some(buffer);
    whole.into_iter().chain(buffer.chunks(size))
}

/// What the ring stores with a datagram: its arrival stamp (the kernel's, converted to
/// CLOCK_MONOTONIC, when there is one; else the receiver's own clock read) and its sender.
fn recv_meta(datagram: &Datagram<'_>, now: u64, clock: &mut RealtimeToMonotonic) -> RecvMeta {
    let ancillary = &datagram.ancillary;
    let (arrival_ns, source) = match ancillary.software_ns {
        Some(realtime) => (clock.monotonic_of(realtime, now), StampSource::Kernel),
        None => (now, StampSource::User),
    };
    let (source, hardware_ns) = match ancillary.hardware_ns {
        Some(hardware_ns) => (StampSource::Hardware, hardware_ns),
        None => (source, 0),
    };
    let (destination, interface_index) = ancillary.packet_info.unzip();
    RecvMeta {
        arrival_ns,
        source,
        hardware_ns,
        peer: datagram.peer,
        destination,
        interface_index: interface_index.unwrap_or(0),
    }
}

#[cfg(test)]
mod gro_tests {
    use super::gro_segments;

    #[test]
    fn a_coalesced_buffer_is_cut_at_its_segment_size() {
        let buffer: Vec<u8> = (0..10).collect();
        let cut: Vec<&[u8]> = gro_segments(&buffer, Some(4)).collect();
        assert_eq!(cut, [&[0, 1, 2, 3][..], &[4, 5, 6, 7], &[8, 9]]);
        let cut: Vec<&[u8]> = gro_segments(&buffer, Some(5)).collect();
        assert_eq!(cut, [&[0, 1, 2, 3, 4][..], &[5, 6, 7, 8, 9]]);
        // No segment size, or one at least the buffer: one datagram; an empty one counts too.
        assert_eq!(gro_segments(&buffer, None).count(), 1);
        assert_eq!(gro_segments(&buffer, Some(64)).count(), 1);
        assert_eq!(gro_segments(&[], None).collect::<Vec<_>>(), [&[][..]]);
        assert_eq!(gro_segments(&[], Some(3)).count(), 1);
    }
}
