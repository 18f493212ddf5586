//! The receiver worker: reads datagrams off the socket into the receive ring and wakes
//! JavaScript when someone is waiting.
//!
//! It reads with `recvmmsg(MSG_DONTWAIT)` until the socket is empty, then blocks in `poll` on
//! the socket and on an eventfd that `stop()` and JavaScript use to wake it. The poll timeout
//! is the earliest `receiveData` timeout, so timeouts are served from here too and JavaScript
//! never polls. A datagram that finds the ring full is dropped and counted; datagrams the
//! kernel dropped because the socket buffer was full are counted from `SO_RXQ_OVFL`.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use rustix::event::{PollFd, PollFlags};
use rustix::time::Timespec;

use crate::clock::{now_ns, NS_PER_SEC};
use crate::engine::{Notify, Shared};
use crate::error::Error;
use crate::ring::Producer;
use crate::rt::RunBudget;
use crate::socket::UdpSocket;
use crate::stats::bump;
use crate::sys::RecvBatch;

/// What the receive ring stores beside each payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecvMeta {
    /// CLOCK_MONOTONIC time at which the receiver thread had the datagram.
    pub arrival_ns: u64,
}

/// Everything the receiver thread owns.
pub(crate) struct Receiver {
    pub socket: Arc<UdpSocket>,
    pub shared: Arc<Shared>,
    pub ring: Producer<RecvMeta>,
    pub notify: Arc<dyn Notify>,
    pub wake_fd: Arc<OwnedFd>,
    pub batch: RecvBatch,
    pub fifo: bool,
}

impl Receiver {
    /// Runs until `shared.stop` is set; gives the ring and buffers back for the next start.
    pub fn run(mut self) -> (Producer<RecvMeta>, RecvBatch) {
        let shared = self.shared.clone();
        let counters = &shared.counters.receiver;
        let mut budget = RunBudget::new(self.fifo);
        let mut kernel_drops_seen = None;

        while !shared.stop.load(Ordering::Relaxed) {
            match self.batch.recv(self.socket.as_fd()) {
                Ok(count) => {
                    let arrival_ns = now_ns();
                    let (mut bytes, mut overflow) = (0, 0);
                    for i in 0..count {
                        let (payload, _truncated, ancillary) = self.batch.datagram(i);
                        bytes += payload.len() as u64;
                        if self.ring.stage(RecvMeta { arrival_ns }, payload).is_err() {
                            overflow += 1;
                        }
                        if ancillary.dropped_total.is_some() {
                            kernel_drops_seen = ancillary.dropped_total;
                        }
                    }
                    self.ring.publish();
                    bump(&counters.packets_received, count as u64);
                    bump(&counters.bytes_received, bytes);
                    bump(&counters.recv_ring_overflow, overflow);
                    if let Some(total) = kernel_drops_seen {
                        counters.kernel_drops.store(total as u64, Ordering::Relaxed);
                    }
                    // Pairs with the fence in `UdpEngine::wait_for_receive`.
                    fence(Ordering::SeqCst);
                    if shared.rx_waiting.load(Ordering::Relaxed) {
                        shared.wake_js(&*self.notify);
                    }
                    if budget.check(now_ns()) {
                        counters.rt_pauses.store(budget.pauses(), Ordering::Relaxed);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.wait(&mut budget),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A connected socket reports ICMP errors caused by our own sends here too
                // (ECONNREFUSED): remember it and go on.
                Err(e) => {
                    shared.set_last_error(Error::from_io("recvmmsg", &e, ""));
                    if e.raw_os_error() != Some(libc::ECONNREFUSED) {
                        // Unexpected; do not spin on an error that repeats.
                        crate::clock::sleep_until(now_ns() + 1_000_000);
                    }
                }
            }
        }
        (self.ring, self.batch)
    }

    /// Blocks until a datagram arrives, the wake fd is written, or the earliest receive
    /// timeout passes (then wakes JavaScript to resolve it with `null`).
    fn wait(&mut self, budget: &mut RunBudget) {
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
            return;
        }
        let timeout = (deadline_ns != u64::MAX).then(|| {
            let wait = deadline_ns - now;
            Timespec {
                tv_sec: (wait / NS_PER_SEC) as i64,
                tv_nsec: (wait % NS_PER_SEC) as _,
            }
        });
        let mut fds = [
            PollFd::new(&*self.socket, PollFlags::IN),
            PollFd::new(&*self.wake_fd, PollFlags::IN),
        ];
        let _ = rustix::event::poll(&mut fds, timeout.as_ref());
        let woken = !fds[1].revents().is_empty();
        budget.slept(now_ns() - now);
        if woken {
            let mut counter = [0u8; 8];
            let _ = rustix::io::read(&*self.wake_fd, &mut counter);
        }
    }
}
