//! The sender worker: one scheduler over every source of packets — the send ring (sendData,
//! sendTo, sendBatch: FIFO among themselves) and the streams started on the instance (each
//! computes its next packet's time from the packet's index).
//!
//! It waits (sleep, naps, then spin) until the earliest packet any source has is due, then
//! collects everything due across sources into one batch, earliest first (the ring before a
//! stream at the same time, the ring's own order kept), writes the streams' departure times
//! into their headers from one clock read right before the system call, and sends the batch
//! with one `sendmmsg`: with GSO on the socket (and no transmit stamps), runs of packets of one
//! size for one destination in it go as one `UDP_SEGMENT` message each (up to 256 packets per
//! batch then), else one datagram per message. A packet whose time has passed leaves at once. Latency (departure −
//! target) is taken from that clock read. With nothing queued and no stream running the
//! thread parks, costing no CPU, until `sendData` or `startStream` unparks it; while it waits
//! for a stream's tick, a packet queued meanwhile wakes it (through `Shared::sender_wake`).

use std::os::fd::AsFd;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use crate::addr::PeerAddr;
use crate::capture::CaptureTaps;
use crate::clock::{DeadlineWaiter, SpinPolicy, Wait};
use crate::error::Error;
use crate::replay::ActiveReplay;
use crate::ring::Consumer;
use crate::rt::RunBudget;
use crate::shared::{Notify, Shared};
use crate::socket::UdpSocket;
use crate::stats::{bump, LatencyRecorder, PUBLISH_INTERVAL_NS, PUBLISH_MAX_AGE_NS};
use crate::stream::{ActiveStream, StreamEnd};
use crate::sys::{self, Segmented, GSO_BATCH, SEND_BATCH};
use crate::time::{now_ns, RealtimeToMonotonic};
use crate::timestamping::{SentLog, GENERATED_PACKET};

/// What the send ring stores beside each payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SendMeta {
    /// Not before this CLOCK_MONOTONIC time; 0 means as soon as possible.
    pub deadline_ns: u64,
    /// The time latency is measured from: the deadline, or when sendData was called.
    pub target_ns: u64,
    /// Where to send it; the empty address on a connected socket (its peer).
    pub destination: PeerAddr,
}

/// Everything the sender thread owns.
pub(crate) struct Sender {
    pub socket: Arc<UdpSocket>,
    pub shared: Arc<Shared>,
    pub ring: Consumer<SendMeta>,
    pub notify: Arc<dyn Notify>,
    pub spin: SpinPolicy,
    /// Longest sleep close to a deadline (`napNs`).
    pub nap_ns: u64,
    /// SCHED_FIFO priority, for the run budget.
    pub priority: Option<i32>,
    /// Where to note which packet gets which transmit-timestamp key, when timestamping is on.
    pub sent_log: Option<Arc<SentLog>>,
    /// The streams it runs, in the order they were started.
    pub streams: Vec<ActiveStream>,
    /// The replays it runs.
    pub replays: Vec<ActiveReplay>,
    /// Captures' taps of sent datagrams.
    pub captures: CaptureTaps,
}

/// Where a packet of the batch comes from.
#[derive(Clone, Copy, Debug)]
enum Origin {
    /// The ring (its packets are the batch's ring packets in order).
    Ring,
    /// Stream `stream` (an index into `Sender::streams`), its packet `slot` of the batch.
    Stream { stream: usize, slot: usize },
    /// Replay `replay` (an index into `Sender::replays`), its datagram `index` of the batch.
    Replay { replay: usize, index: usize },
}

/// One packet of the batch being sent.
#[derive(Clone, Copy, Debug)]
struct Entry {
    origin: Origin,
    /// When it was due (latency is measured from it).
    target_ns: u64,
    destination: PeerAddr,
}

/// Publish latencies before a wait only if the deadline is at least this far away, so that
/// publishing (a few µs) never delays a packet.
const PUBLISH_HEADROOM_NS: u64 = 100_000;

impl Sender {
    /// Runs until `shared.stop` is set; gives the ring back for the next start. Streams still
    /// running then end as `InstanceStopped`.
    pub(crate) fn run(mut self) -> Consumer<SendMeta> {
        let shared = self.shared.clone();
        let mut waiter = DeadlineWaiter::new(self.spin, self.nap_ns);
        let mut budget = RunBudget::new(self.priority);
        let mut latencies = LatencyRecorder::default();
        let mut realtime = RealtimeToMonotonic::default();
        let counters = &shared.counters.sender;
        counters
            .spin_window_ns
            .store(waiter.spin.window_ns(), Ordering::Relaxed);

        while !shared.stop.load(Ordering::Relaxed) {
            self.adopt_and_retire_streams();
            let inbox = &shared.capture_inbox;
            self.captures.update(&inbox.generation, &inbox.sender);
            // Read the wake word before looking at the sources: a packet queued after this
            // read changes it, so the wait below cannot miss it.
            let seen = shared.sender_wake.current();
            let ring_due = self.ring_head_due();
            let stream_due = self.streams.iter().filter_map(ActiveStream::next_due_ns).min();
            let replay_due = self.replays.iter_mut().filter_map(ActiveReplay::next_due_ns).min();
            let Some(deadline_ns) = [ring_due, stream_due, replay_due].into_iter().flatten().min() else {
                latencies.publish(&shared.latencies, now_ns());
                self.notify_drain();
                if self.replays.is_empty() {
                    self.park(&mut budget);
                } else {
                    // A replay's reader is behind: it wakes us through the word when it has
                    // read more.
                    let chunk_end = now_ns() + crate::time::MAX_SLEEP_CHUNK_NS;
                    crate::time::sleep_until_or_woken(chunk_end, &shared.sender_wake, seen);
                }
                continue;
            };
            let now = now_ns();
            if deadline_ns > now {
                if deadline_ns - now > PUBLISH_HEADROOM_NS + waiter.spin.window_ns() {
                    latencies.publish_if_older(&shared.latencies, now, PUBLISH_INTERVAL_NS);
                    for stream in &mut self.streams {
                        stream.publish(now);
                    }
                    for replay in &mut self.replays {
                        replay.publish_if_older(now, PUBLISH_INTERVAL_NS);
                    }
                }
                // Waiting for a stream's tick, a packet queued now could be due first.
                let for_stream = ring_due != Some(deadline_ns);
                shared.sender_waits_for_stream.store(for_stream, Ordering::SeqCst);
                let wait =
                    waiter.wait_until_or_woken(deadline_ns, &shared.stop, &shared.sender_wake, seen, &mut budget);
                shared.sender_waits_for_stream.store(false, Ordering::Relaxed);
                counters
                    .spin_window_ns
                    .store(waiter.spin.window_ns(), Ordering::Relaxed);
                counters.stalls.store(waiter.stalls(), Ordering::Relaxed);
                match wait {
                    Wait::Stopped => break,
                    // Something changed (a packet queued, a stream started or stopped): look again.
                    Wait::Woken => continue,
                    Wait::Reached => {}
                }
            }
            self.send_due(&mut latencies, &mut realtime, waiter.spin.window_ns());
            let now = now_ns();
            latencies.publish_if_older(&shared.latencies, now, PUBLISH_MAX_AGE_NS);
            // Streams and replays too, or one that never leaves time to spare (a high rate,
            // a replay at speed 0) would show no lateness until it ends.
            for stream in &mut self.streams {
                stream.publish_if_older(now, PUBLISH_MAX_AGE_NS);
            }
            for replay in &mut self.replays {
                replay.publish_if_older(now, PUBLISH_MAX_AGE_NS);
            }
            if budget.check(now) {
                counters.rt_demotions.store(budget.demotions(), Ordering::Relaxed);
            }
        }
        latencies.publish(&shared.latencies, now_ns());
        for mut stream in self.streams.drain(..) {
            stream.publish(now_ns());
            stream.shared.set_end(StreamEnd::InstanceStopped);
        }
        for mut replay in self.replays.drain(..) {
            replay.publish(now_ns());
            replay.shared.finish(StreamEnd::InstanceStopped);
        }
        self.ring
    }

    /// When the head of the ring is due (`Some(0)`: at once); `None` when the ring is empty.
    fn ring_head_due(&mut self) -> Option<u64> {
        (self.ring.available() > 0).then(|| self.ring.peek(0).map_or(0, |p| p.meta.deadline_ns))
    }

    /// Takes over newly started streams and lets go of those that are over, telling
    /// JavaScript.
    fn adopt_and_retire_streams(&mut self) {
        let shared = &*self.shared;
        {
            let mut inbox = shared.stream_inbox.lock().unwrap_or_else(|p| p.into_inner());
            self.streams.append(&mut inbox);
        }
        {
            let mut inbox = shared.replay_inbox.lock().unwrap_or_else(|p| p.into_inner());
            self.replays.append(&mut inbox);
        }
        let before = self.streams.len() + self.replays.len();
        let now = now_ns();
        self.streams.retain_mut(|stream| {
            let over = stream.finished();
            if over {
                stream.publish(now);
            }
            !over
        });
        self.replays.retain_mut(|replay| {
            let over = replay.finished();
            if over {
                replay.publish(now);
            }
            !over
        });
        if self.streams.len() + self.replays.len() != before {
            shared.streams_ended.store(true, Ordering::SeqCst);
            shared.wake_js(&*self.notify);
        }
    }

    /// Collects every packet that is due across the sources, earliest first, and sends them
    /// with one `sendmmsg`.
    fn send_due(&mut self, latencies: &mut LatencyRecorder, realtime: &mut RealtimeToMonotonic, late_after_ns: u64) {
        let shared = self.shared.clone();
        let counters = &shared.counters.sender;
        let connected = self.socket.remote_addr().is_some();
        let now = now_ns();
        // With transmit stamps the kernel would stamp only a GSO message's first datagram:
        // those go one by one, each with its stamp.
        let gso = self.sent_log.is_none() && self.socket.gso_active();
        let limit = if gso { GSO_BATCH } else { SEND_BATCH };
        let mut entries = [Entry {
            origin: Origin::Ring,
            target_ns: 0,
            destination: PeerAddr::default(),
        }; GSO_BATCH];
        let (mut count, mut ring_taken) = (0, 0);
        let ring_available = self.ring.available();
        while count < limit {
            // The ring's next packet, if due: ordered by its target (its deadline, or without
            // one the moment it was queued).
            let ring = (ring_taken < ring_available)
                .then(|| self.ring.peek(ring_taken))
                .flatten()
                .filter(|p| p.meta.deadline_ns <= now)
                .map(|p| (p.meta.target_ns, p.meta));
            // The generated sources' next due packets: (due, 0 for a stream / 1 for a replay, index).
            let stream = self
                .streams
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.next_due_ns().filter(|&due| due <= now).map(|due| (due, 0, i)))
                .min();
            let replay = self
                .replays
                .iter_mut()
                .enumerate()
                .filter_map(|(i, r)| r.next_due_ns().filter(|&due| due <= now).map(|due| (due, 1, i)))
                .min();
            let generated = stream.into_iter().chain(replay).min();
            let entry = match (ring, generated) {
                (Some((ring_key, meta)), Some((due, _, _))) if ring_key <= due => {
                    Some(self.ring_entry(meta, &mut ring_taken))
                }
                (Some((_, meta)), None) => Some(self.ring_entry(meta, &mut ring_taken)),
                (_, Some((_, 0, i))) => {
                    let stream = &mut self.streams[i];
                    let (target_ns, slot) = stream.take_next(now);
                    Some(Entry {
                        origin: Origin::Stream { stream: i, slot },
                        target_ns,
                        destination: stream.destination,
                    })
                }
                (_, Some((_, _, i))) => {
                    let (target_ns, index, destination) = self.replays[i].take_next(now);
                    Some(Entry {
                        origin: Origin::Replay { replay: i, index },
                        target_ns,
                        destination,
                    })
                }
                (None, None) => None,
            };
            let Some(entry) = entry else { break };
            entries[count] = entry;
            count += 1;
        }
        if count == 0 {
            return;
        }

        let depart_ns = now_ns();
        // The streams' headers carry the departure time, CLOCK_REALTIME.
        if self.streams.iter().any(|s| s.in_batch() > 0) {
            let depart_realtime = realtime.realtime_of(depart_ns, depart_ns);
            for stream in self.streams.iter_mut().filter(|s| s.in_batch() > 0) {
                stream.stamp_departures(depart_realtime);
            }
        }
        let mut payloads: [&[u8]; GSO_BATCH] = [&[]; GSO_BATCH];
        let mut ring_index = 0;
        for (payload, entry) in payloads.iter_mut().zip(&entries[..count]) {
            *payload = match entry.origin {
                Origin::Ring => {
                    ring_index += 1;
                    self.ring.peek(ring_index - 1).map_or(&[][..], |p| p.payload)
                }
                Origin::Stream { stream, slot } => self.streams[stream].batch_packet(slot),
                Origin::Replay { replay, index } => self.replays[replay].batch_packet(index),
            };
        }
        if let Some(log) = &self.sent_log {
            // The kernel numbers sent datagrams from 0 (SOF_TIMESTAMPING_OPT_ID), and a
            // transmit stamp can be read before the send call returns: note the keys first.
            // Keys of packets that end up not sent are noted again next time.
            let (sent_before, queued_before) = (counters.datagrams_sent.load(Ordering::Relaxed), self.ring.released());
            let mut ring_index = 0;
            for (i, entry) in entries[..count].iter().enumerate() {
                let queue_id = match entry.origin {
                    Origin::Ring => {
                        ring_index += 1;
                        queued_before + ring_index - 1
                    }
                    Origin::Stream { .. } | Origin::Replay { .. } => GENERATED_PACKET,
                };
                log.record((sent_before + i as u64) as u32, entry.target_ns, queue_id);
            }
        }
        let sent_before = counters.datagrams_sent.load(Ordering::Relaxed);
        // Unconnected: each packet names its destination, and one batch may go to several.
        // The connected path never looks at addresses.
        let mut destinations = [PeerAddr::default(); GSO_BATCH];
        if !connected {
            for (destination, entry) in destinations.iter_mut().zip(&entries[..count]) {
                *destination = entry.destination;
            }
        }
        let destinations = (!connected).then_some(&destinations[..count]);
        let (done, failed) = if gso {
            self.send_segmented(&payloads[..count], destinations)
        } else {
            match sys::send_many(self.socket.as_fd(), &payloads[..count], destinations, 0) {
                Ok(sent) => (sent, 0),
                Err(e) => self.send_error(e, 1),
            }
        };
        bump(&counters.datagrams_sent, (done - failed) as u64);
        if failed == 0 && self.captures.wants_sent() {
            let depart_realtime = realtime.realtime_of(depart_ns, depart_ns);
            let stamped = self.sent_log.is_some();
            for (i, (payload, entry)) in payloads.iter().zip(&entries[..done]).enumerate() {
                let datagram = stamped.then_some((sent_before + i as u64) as u32);
                self.captures
                    .sent(payload, depart_realtime, entry.destination, datagram);
            }
        }
        self.account(&entries[..count], done, failed, depart_ns, latencies, late_after_ns);
    }

    /// Sends the batch as GSO messages (runs of one size for one destination, see
    /// [`sys::group_segments`]) with one `sendmmsg`; returns (datagrams done, of which failed)
    /// as [`Sender::account`] takes them. A GSO message the kernel refuses (`EIO`: the device
    /// cannot checksum, on kernels before 6.12, or IPsec; `EMSGSIZE` on 6.x, `EINVAL` before:
    /// a segment larger than the route's MTU allows; `EINVAL`: a socket without UDP checksums)
    /// turns GSO off on the socket, counted: nothing of it was sent, so the next round sends
    /// the same datagrams one by one (which the kernel may fragment, or refuse one by one).
    fn send_segmented(&self, payloads: &[&[u8]], destinations: Option<&[PeerAddr]>) -> (usize, usize) {
        let mut lengths = [0usize; GSO_BATCH];
        for (length, payload) in lengths.iter_mut().zip(payloads) {
            *length = payload.len();
        }
        let mut messages = [Segmented::default(); GSO_BATCH];
        let count = sys::group_segments(&lengths[..payloads.len()], destinations, &mut messages);
        let messages = &messages[..count];
        match sys::send_segmented(self.socket.as_fd(), payloads, messages, destinations, 0) {
            Ok(sent) => (messages[..sent].iter().map(|m| m.count).sum(), 0),
            Err(e)
                if messages[0].count > 1
                    && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL | libc::EMSGSIZE)) =>
            {
                self.socket.stop_gso();
                bump(&self.shared.counters.sender.gso_fallbacks, 1);
                (0, 0)
            }
            Err(e) => self.send_error(e, messages[0].count),
        }
    }

    /// (done, failed) after a send whose first message (of `datagrams` datagrams) failed.
    fn send_error(&self, e: std::io::Error, datagrams: usize) -> (usize, usize) {
        match e.raw_os_error() {
            // SO_SNDTIMEO expired on a full send buffer, or a signal: nothing was sent, try
            // again (after checking for stop).
            Some(libc::EAGAIN | libc::EINTR) => (0, 0),
            // The first message failed (ECONNREFUSED after an ICMP port unreachable,
            // ENETUNREACH, EMSGSIZE, ...): count its datagrams, remember why, go on with the next.
            _ => {
                self.shared.set_last_error(Error::from_io("sendmmsg", &e, ""));
                (datagrams, datagrams)
            }
        }
    }

    fn ring_entry(&self, meta: SendMeta, ring_taken: &mut usize) -> Entry {
        *ring_taken += 1;
        Entry {
            origin: Origin::Ring,
            target_ns: meta.target_ns,
            destination: meta.destination,
        }
    }

    /// Counts what the send did: the first `done` entries left or (the first, if `failed`)
    /// failed; the rest are collected again next time.
    fn account(
        &mut self,
        entries: &[Entry],
        done: usize,
        failed: usize,
        depart_ns: u64,
        latencies: &mut LatencyRecorder,
        late_after_ns: u64,
    ) {
        let shared = self.shared.clone();
        let counters = &shared.counters.sender;
        let (mut ring_done, mut ring_failed, mut ring_bytes, mut late) = (0usize, 0u64, 0u64, 0u64);
        let (mut stream_sent, mut stream_failed, mut stream_bytes) = (0u64, 0u64, 0u64);
        for stream in &mut self.streams {
            stream.begin_accounting();
        }
        for replay in &mut self.replays {
            replay.begin_accounting();
        }
        for (i, entry) in entries[..done].iter().enumerate() {
            let is_failure = i < failed;
            let latency = depart_ns.saturating_sub(entry.target_ns);
            if !is_failure {
                latencies.record(latency);
                late += u64::from(latency > late_after_ns);
            }
            match entry.origin {
                Origin::Ring => {
                    let bytes = self.ring.peek(ring_done).map_or(0, |p| p.payload.len() as u64);
                    ring_done += 1;
                    if is_failure {
                        ring_failed += 1;
                    } else {
                        ring_bytes += bytes;
                    }
                }
                Origin::Stream { stream, slot } => {
                    let stream = &mut self.streams[stream];
                    if is_failure {
                        stream_failed += 1;
                    } else {
                        stream_sent += 1;
                        stream_bytes += stream.batch_packet(slot).len() as u64;
                    }
                    stream.account_packet(is_failure, latency, late_after_ns);
                }
                Origin::Replay { replay, index } => {
                    let replay = &mut self.replays[replay];
                    let bytes = replay.batch_packet(index).len();
                    if is_failure {
                        stream_failed += 1;
                    } else {
                        stream_sent += 1;
                        stream_bytes += bytes as u64;
                    }
                    replay.account_packet(is_failure, bytes, latency, late_after_ns);
                }
            }
        }
        bump(&counters.packets_sent, ring_done as u64 - ring_failed);
        bump(&counters.bytes_sent, ring_bytes);
        bump(&counters.send_errors, ring_failed);
        bump(&counters.generated_sent, stream_sent);
        bump(&counters.generated_bytes, stream_bytes);
        bump(&counters.generated_errors, stream_failed);
        bump(&counters.late_packets, late);
        for stream in self.streams.iter_mut().filter(|s| s.in_batch() > 0) {
            stream.complete(depart_ns);
        }
        for replay in self.replays.iter_mut().filter(|r| r.in_batch() > 0) {
            replay.complete();
        }
        if ring_done > 0 {
            self.ring.release(ring_done);
            let completed = shared.send_completed.load(Ordering::Relaxed) + ring_done as u64;
            shared.send_completed.store(completed, Ordering::SeqCst);
            if completed >= shared.drain_target.load(Ordering::SeqCst) {
                // drain() promises complete statistics: publish before it resolves.
                latencies.publish(&shared.latencies, now_ns());
                shared.wake_js(&*self.notify);
            }
        }
    }

    fn notify_drain(&self) {
        if self.shared.drain_target.load(Ordering::SeqCst) != u64::MAX {
            self.shared.wake_js(&*self.notify);
        }
    }

    /// Blocks until `sendData`, `startStream` or `stop()` unparks the thread.
    fn park(&mut self, budget: &mut RunBudget) {
        let shared = &self.shared;
        shared.sender_idle.store(true, Ordering::SeqCst);
        // Pairs with the fence in `UdpEngine::wake_sender`: either the producer sees
        // `sender_idle` and unparks us, or we see its packet (or stream) here and do not park.
        fence(Ordering::SeqCst);
        let stream_waiting = !shared.stream_inbox.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
            || !shared.replay_inbox.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
        if self.ring.available() == 0 && !stream_waiting && !shared.stop.load(Ordering::SeqCst) {
            budget.before_sleep(u64::MAX);
            let parked_at = now_ns();
            std::thread::park();
            budget.slept(now_ns() - parked_at);
        }
        shared.sender_idle.store(false, Ordering::Relaxed);
    }
}
