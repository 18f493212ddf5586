//! The sender worker: takes packets from the send ring in order and sends each at its time.
//!
//! For the packet at the head of the ring it waits (sleep, then spin) until the packet's
//! deadline, then sends it together with every following packet that is also due, in one
//! `sendmmsg`. A packet whose time has passed leaves at once. Latency (departure − target) is
//! taken from one clock read right before the system call. With nothing queued the thread
//! parks, costing no CPU, until `sendData` unparks it.

use std::os::fd::AsFd;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use crate::addr::PeerAddr;
use crate::clock::{DeadlineWaiter, SpinPolicy, Wait};
use crate::error::Error;
use crate::ring::Consumer;
use crate::rt::RunBudget;
use crate::shared::{Notify, Shared};
use crate::socket::UdpSocket;
use crate::stats::{bump, LatencyRecorder, PUBLISH_INTERVAL_NS, PUBLISH_MAX_AGE_NS};
use crate::sys::{self, SEND_BATCH};
use crate::time::now_ns;
use crate::timestamping::SentLog;

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
}

/// Publish latencies before a wait only if the deadline is at least this far away, so that
/// publishing (a few µs) never delays a packet.
const PUBLISH_HEADROOM_NS: u64 = 100_000;

impl Sender {
    /// Runs until `shared.stop` is set; gives the ring back for the next start.
    pub(crate) fn run(mut self) -> Consumer<SendMeta> {
        let shared = self.shared.clone();
        let mut waiter = DeadlineWaiter::new(self.spin, self.nap_ns);
        let mut budget = RunBudget::new(self.priority);
        let mut latencies = LatencyRecorder::default();
        let counters = &shared.counters.sender;
        let connected = self.socket.remote_addr().is_some();
        counters
            .spin_window_ns
            .store(waiter.spin.window_ns(), Ordering::Relaxed);

        while !shared.stop.load(Ordering::Relaxed) {
            let ready = self.ring.available();
            if ready == 0 {
                latencies.publish(&shared.latencies, now_ns());
                self.notify_drain();
                self.park(&mut budget);
                continue;
            }
            let deadline_ns = self.ring.peek(0).map_or(0, |p| p.meta.deadline_ns);
            let now = now_ns();
            if deadline_ns > now {
                if deadline_ns - now > PUBLISH_HEADROOM_NS + waiter.spin.window_ns() {
                    latencies.publish_if_older(&shared.latencies, now, PUBLISH_INTERVAL_NS);
                }
                if waiter.wait_until(deadline_ns, &shared.stop, &mut budget) == Wait::Stopped {
                    break;
                }
                counters
                    .spin_window_ns
                    .store(waiter.spin.window_ns(), Ordering::Relaxed);
                counters.stalls.store(waiter.stalls, Ordering::Relaxed);
            }

            // Everything at the head of the ring that is due now goes in one system call.
            let mut payloads: [&[u8]; SEND_BATCH] = [&[]; SEND_BATCH];
            let mut due = 0;
            let depart_ns = now_ns();
            while due < ready.min(SEND_BATCH) {
                match self.ring.peek(due) {
                    Some(p) if p.meta.deadline_ns <= depart_ns => payloads[due] = p.payload,
                    _ => break,
                }
                due += 1;
            }
            if let Some(log) = &self.sent_log {
                // The kernel numbers sent datagrams from 0 (SOF_TIMESTAMPING_OPT_ID), and a
                // transmit stamp can be read before the send call returns: note the keys
                // first. Keys of packets that end up not sent are noted again next time.
                let (sent_before, queued_before) =
                    (counters.packets_sent.load(Ordering::Relaxed), self.ring.released());
                for i in 0..due {
                    let target_ns = self.ring.peek(i).map_or(0, |p| p.meta.target_ns);
                    log.record((sent_before + i as u64) as u32, target_ns, queued_before + i as u64);
                }
            }
            let result = if connected {
                sys::send_many(self.socket.as_fd(), &payloads[..due], None, 0)
            } else {
                // Unconnected: each packet names its destination, and one batch may go to
                // several. The connected path above never looks at addresses.
                let mut destinations = [PeerAddr::default(); SEND_BATCH];
                for (i, destination) in destinations.iter_mut().enumerate().take(due) {
                    *destination = self.ring.peek(i).map_or_else(PeerAddr::default, |p| p.meta.destination);
                }
                sys::send_many(self.socket.as_fd(), &payloads[..due], Some(&destinations[..due]), 0)
            };

            let done = match result {
                Ok(sent) => {
                    let late_after = waiter.spin.window_ns();
                    let (mut bytes, mut late) = (0, 0);
                    for i in 0..sent {
                        let p = self.ring.peek(i).expect("sent packets are in the ring");
                        let latency = depart_ns.saturating_sub(p.meta.target_ns);
                        latencies.record(latency);
                        bytes += p.payload.len() as u64;
                        late += u64::from(latency > late_after);
                    }
                    bump(&counters.packets_sent, sent as u64);
                    bump(&counters.bytes_sent, bytes);
                    bump(&counters.late_packets, late);
                    sent
                }
                // SO_SNDTIMEO expired on a full send buffer, or a signal: nothing was sent,
                // try again (after checking for stop).
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => 0,
                // The first packet failed (ECONNREFUSED after an ICMP port unreachable,
                // ENETUNREACH, EMSGSIZE, ...): count it, remember why, go on with the next.
                Err(e) => {
                    bump(&counters.send_errors, 1);
                    shared.set_last_error(Error::from_io("sendmmsg", &e, ""));
                    1
                }
            };
            if done > 0 {
                self.ring.release(done);
                let completed = shared.send_completed.load(Ordering::Relaxed) + done as u64;
                shared.send_completed.store(completed, Ordering::SeqCst);
                if completed >= shared.drain_target.load(Ordering::SeqCst) {
                    // drain() promises complete statistics: publish before it resolves.
                    latencies.publish(&shared.latencies, now_ns());
                    shared.wake_js(&*self.notify);
                }
            }
            let now = now_ns();
            latencies.publish_if_older(&shared.latencies, now, PUBLISH_MAX_AGE_NS);
            if budget.check(now) {
                counters.rt_demotions.store(budget.demotions(), Ordering::Relaxed);
            }
        }
        latencies.publish(&shared.latencies, now_ns());
        self.ring
    }

    fn notify_drain(&self) {
        if self.shared.drain_target.load(Ordering::SeqCst) != u64::MAX {
            self.shared.wake_js(&*self.notify);
        }
    }

    /// Blocks until `sendData` or `stop()` unparks the thread.
    fn park(&mut self, budget: &mut RunBudget) {
        let shared = &self.shared;
        shared.sender_idle.store(true, Ordering::SeqCst);
        // Pairs with the fence in `UdpEngine::wake_sender`: either the producer sees
        // `sender_idle` and unparks us, or we see its packet here and do not park.
        fence(Ordering::SeqCst);
        if self.ring.available() == 0 && !shared.stop.load(Ordering::SeqCst) {
            budget.before_sleep(u64::MAX);
            let parked_at = now_ns();
            std::thread::park();
            budget.slept(now_ns() - parked_at);
        }
        shared.sender_idle.store(false, Ordering::Relaxed);
    }
}
