//! What the JavaScript thread and the worker threads share: flags, counters and published
//! latencies ([`Shared`]), and the way workers wake the JavaScript thread ([`Notify`]).
//!
//! A leaf below the engine and its workers: [`crate::engine`], [`crate::sender`] and
//! [`crate::receiver`] all use it, and it uses none of them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::capture::CaptureInbox;
use crate::error::Error;
use crate::replay::ActiveReplay;
use crate::stats::{Counters, SharedLatencies};
use crate::stream::ActiveStream;
use crate::time::WakeWord;

/// Wakes the JavaScript thread. The binding implements it with a thread-safe function; the
/// engine calls it at most once until the JavaScript thread calls
/// [`crate::UdpEngine::begin_notification`], however many events happen meanwhile.
pub trait Notify: Send + Sync {
    /// Asks the JavaScript thread to look at the engine again. Must not block.
    fn notify(&self);
}

/// State shared by the JavaScript thread and the workers.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Raised by `stop()`; workers exit when they see it.
    pub(crate) stop: AtomicBool,
    pub(crate) counters: Counters,
    /// Send latency, published by the sender.
    pub(crate) latencies: SharedLatencies,
    /// Wire latency (transmit stamp − target), published by the receiver thread.
    pub(crate) wire_latencies: SharedLatencies,
    /// A notification is on its way to the JavaScript thread.
    pub(crate) notify_pending: AtomicBool,
    /// The sender is parked (or about to park) on an empty ring.
    pub(crate) sender_idle: AtomicBool,
    /// Packets the sender released from the ring (sent or failed), plus those stop() discarded.
    pub(crate) send_completed: AtomicU64,
    /// Wake JavaScript once `send_completed` reaches this (u64::MAX: nobody is waiting).
    pub(crate) drain_target: AtomicU64,
    /// A receiveData call is waiting for a packet.
    pub(crate) rx_waiting: AtomicBool,
    /// Earliest receiveData timeout (CLOCK_MONOTONIC ns), u64::MAX for none.
    pub(crate) rx_deadline_ns: AtomicU64,
    /// The last error a worker saw (send failures, ICMP errors, ...).
    pub(crate) last_error: Mutex<Option<Error>>,
    /// Streams started and not yet taken over by the sender.
    pub(crate) stream_inbox: Mutex<Vec<ActiveStream>>,
    /// Replays started and not yet taken over by the sender.
    pub(crate) replay_inbox: Mutex<Vec<ActiveReplay>>,
    /// The sender sleeps on it while it waits for a stream's tick (or a ring packet): a packet
    /// queued, a stream started or stopped wakes it through the word.
    pub(crate) sender_wake: Arc<WakeWord>,
    /// The sender is waiting for something other than the head of the ring (a stream's tick),
    /// so a packet queued now may be due before it: sendData must wake it.
    pub(crate) sender_waits_for_stream: AtomicBool,
    /// A stream ended: JavaScript may settle its `done`.
    pub(crate) streams_ended: AtomicBool,
    /// Captures' taps on their way to the workers.
    pub(crate) capture_inbox: CaptureInbox,
}

impl Shared {
    /// Nobody waits for anything yet.
    pub(crate) fn new() -> Self {
        Shared {
            drain_target: AtomicU64::new(u64::MAX),
            rx_deadline_ns: AtomicU64::new(u64::MAX),
            ..Default::default()
        }
    }

    /// Notifies JavaScript unless a notification is already pending.
    pub(crate) fn wake_js(&self, notify: &dyn Notify) {
        if !self.notify_pending.swap(true, Ordering::AcqRel) {
            notify.notify();
        }
    }

    /// Remembers the most recent worker error for the statistics.
    pub(crate) fn set_last_error(&self, error: Error) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }
}
