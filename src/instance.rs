//! What one `UdpCom` object holds on the JavaScript thread: the engine, the promises waiting
//! for packets or for a drain, and the thread-safe function that wakes them.
//!
//! Everything here runs on the JavaScript thread. Pending promises are settled in three places:
//! when a worker wakes the thread ([`Instance::pump`]), when a call can settle them at once,
//! and when the instance stops, closes or is garbage-collected (rejected with
//! ERR_UDPCOM_STOPPED). None is ever left pending while its instance is gone.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use napi::bindgen_prelude::FunctionRef;
use napi::bindgen_prelude::{Null, Unknown};
use napi::Env;
use udpcom_engine::now_ns;
use udpcom_engine::{Error, Notify, UdpEngine};

use crate::errors::{js_error, OrThrow};
use crate::napi_raw::{CleanupHook, Deferred};
use crate::notify::JsNotify;
use crate::packets::PacketBatch;

/// The instance as shared between the class object, its thread-safe function and its
/// environment cleanup hook (the latter two hold weak references).
pub type SharedInstance = Rc<RefCell<Instance>>;

struct PendingReceive {
    deferred: Deferred,
    /// CLOCK_MONOTONIC time at which it resolves with null (or []); `None`: never.
    deadline_ns: Option<u64>,
    /// `receiveBatch(max)`: resolves with an array of up to `max` packets; `None`:
    /// `receiveData`, resolves with one packet.
    batch: Option<usize>,
}

/// The `onPackets` callback and the largest batch it takes.
struct Listener {
    callback: FunctionRef<Unknown<'static>, ()>,
    max_batch: usize,
}

/// Most callback invocations per wake-up, so that a flood cannot starve the event loop: after
/// that many, the instance wakes itself again through the thread-safe function, letting other
/// callbacks run in between. Packets that keep arriving meanwhile wait in the receive ring,
/// and overflow it (counted) if JavaScript cannot keep up.
const CALLBACKS_PER_WAKE: usize = 16;

struct PendingDrain {
    deferred: Deferred,
    /// Resolve once this many packets have left the send ring.
    target: u64,
}

/// State of one `UdpCom` on the JavaScript thread.
pub struct Instance {
    /// The engine (socket, rings, workers, statistics).
    pub engine: UdpEngine,
    receives: VecDeque<PendingReceive>,
    drains: VecDeque<PendingDrain>,
    /// Wakes this thread while started.
    notify: Option<std::sync::Arc<JsNotify>>,
    /// Receives every packet while set (`onPackets`).
    listener: Option<Listener>,
    /// Whether a started instance keeps the event loop alive (ref()/unref()).
    referenced: bool,
    /// Stops the workers if the environment is torn down (worker thread terminated) while
    /// started.
    cleanup_hook: Option<CleanupHook<Weak<RefCell<Instance>>>>,
    /// The address registered with `fast_path` by start(), removed when collected.
    pub fast_path_address: Option<usize>,
    /// Native memory last reported to V8 with napi_adjust_external_memory.
    reported_memory: i64,
    /// Packets on their way from the receive ring to JavaScript (reused).
    batch: PacketBatch,
}

impl Instance {
    /// A new instance around an engine.
    pub fn new(engine: UdpEngine) -> SharedInstance {
        Rc::new(RefCell::new(Instance {
            engine,
            receives: VecDeque::new(),
            drains: VecDeque::new(),
            notify: None,
            listener: None,
            referenced: true,
            cleanup_hook: None,
            fast_path_address: None,
            reported_memory: 0,
            batch: PacketBatch::default(),
        }))
    }

    /// Starts the workers with a fresh thread-safe function that pumps this instance.
    pub fn start(this: &SharedInstance, env: &Env) -> napi::Result<()> {
        let weak = Rc::downgrade(this);
        let notify = JsNotify::new(env, move |env| {
            if let Some(instance) = weak.upgrade() {
                if let Ok(mut borrowed) = instance.try_borrow_mut() {
                    borrowed.engine.begin_notification();
                    borrowed.pump(env);
                } else {
                    return;
                }
                // Not borrowed while JavaScript runs: the callback may call any method.
                Instance::call_listener(&instance, env);
            }
        })?;
        let mut instance = this.borrow_mut();
        if !instance.referenced {
            notify.set_referenced(env, false)?;
        }
        instance.engine.start(notify.clone()).or_throw(env)?;
        instance.notify = Some(notify);
        let hook = CleanupHook::add(env, Rc::downgrade(this), |weak| {
            // The environment is going away (worker terminated, process exiting): stop and
            // join the workers before the thread-safe function disappears. No JavaScript can
            // run now, so pending promises are left to the environment's teardown.
            if let Some(instance) = weak.upgrade() {
                if let Ok(mut instance) = instance.try_borrow_mut() {
                    instance.cleanup_hook = None;
                    instance.engine.stop();
                    instance.notify = None;
                }
            }
        })?;
        instance.cleanup_hook = Some(hook);
        Ok(())
    }

    /// Tells V8 how much native memory the instance holds (rings can be hundreds of MB), so that
    /// unreachable instances are collected as promptly as their size deserves. `bytes`: what
    /// the instance holds now (None: what the engine reports).
    pub fn report_memory(&mut self, env: &Env, bytes: Option<usize>) {
        let bytes = bytes.unwrap_or_else(|| self.engine.memory_bytes()) as i64;
        if bytes != self.reported_memory && env.adjust_external_memory(bytes - self.reported_memory).is_ok() {
            self.reported_memory = bytes;
        }
    }

    /// Stops the workers and rejects every pending promise with ERR_UDPCOM_STOPPED.
    pub fn stop(&mut self, env: &Env, reason: &str) {
        self.engine.stop();
        self.notify = None;
        if let Some(hook) = self.cleanup_hook.take() {
            let _ = hook.remove(env);
        }
        let error = Error::stopped(reason);
        for pending in self.receives.drain(..) {
            reject(env, pending.deferred, &error);
        }
        for pending in self.drains.drain(..) {
            reject(env, pending.deferred, &error);
        }
    }

    /// Sets whether a started instance keeps the event loop alive.
    pub fn set_referenced(&mut self, env: &Env, referenced: bool) -> napi::Result<()> {
        self.referenced = referenced;
        match &self.notify {
            Some(notify) => notify.set_referenced(env, referenced),
            None => Ok(()),
        }
    }

    /// `receiveData` (`batch` None): a promise of the next packet, or of null after
    /// `timeout_ns`. `receiveBatch(max)` (`batch` Some(max)): a promise of 1..=max packets, or
    /// of [] after `timeout_ns`.
    pub fn receive<'env>(
        &mut self,
        env: &'env Env,
        timeout_ns: Result<Option<u64>, Error>,
        batch: Result<Option<usize>, Error>,
    ) -> napi::Result<Unknown<'env>> {
        let (deferred, promise) = Deferred::new(env)?;
        let checked = timeout_ns.and_then(|timeout_ns| {
            let batch = batch?;
            self.engine.check_can_receive()?;
            if self.listener.is_some() {
                return Err(Error::state(
                    "packets go to the onPackets callback: call onPackets(null) first",
                ));
            }
            Ok((timeout_ns, batch))
        });
        let (timeout_ns, batch) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                reject(env, deferred, &error);
                return Ok(promise);
            }
        };
        // Earlier calls are served first.
        self.pump(env);
        let pending = PendingReceive {
            deferred,
            deadline_ns: None,
            batch,
        };
        if self.receives.is_empty() && self.engine.received_count() > 0 {
            self.deliver(env, pending);
        } else if timeout_ns == Some(0) {
            resolve_empty(env, pending);
        } else {
            let deadline_ns = timeout_ns.map(|t| now_ns().saturating_add(t));
            self.receives.push_back(PendingReceive { deadline_ns, ..pending });
            self.pump(env);
        }
        Ok(promise)
    }

    /// `onPackets`: delivers every packet to `callback` in batches of up to `max_batch`, or
    /// stops doing so (`None`). Packets already queued are delivered from the next tick.
    pub fn set_listener(
        &mut self,
        env: &Env,
        callback: Option<FunctionRef<Unknown<'static>, ()>>,
        max_batch: usize,
    ) -> Result<(), Error> {
        self.engine.check_can_receive()?;
        if callback.is_some() && !self.receives.is_empty() {
            return Err(Error::state(
                "receiveData/receiveBatch calls are pending: onPackets would starve them",
            ));
        }
        self.listener = callback.map(|callback| Listener { callback, max_batch });
        if self.listener.is_some() {
            self.wake_soon();
        }
        self.pump(env);
        Ok(())
    }

    /// Forgets the `onPackets` callback (closeSocket), so that nothing native keeps it, or
    /// what it refers to, alive.
    pub fn clear_listener(&mut self) {
        self.listener = None;
    }

    /// Queues a call of the thread-safe function, so that `pump` runs on a later tick.
    fn wake_soon(&self) {
        if let Some(notify) = &self.notify {
            notify.notify();
        }
    }

    /// `drain`: a promise that resolves once every packet queued so far has left.
    pub fn drain<'env>(&mut self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        let (deferred, promise) = Deferred::new(env)?;
        if let Err(error) = self.engine.check_open() {
            reject(env, deferred, &error);
            return Ok(promise);
        }
        let target = self.engine.queued_total();
        if !self.engine.is_running() || self.engine.completed_total() >= target {
            deferred.resolve(env, ())?;
        } else {
            self.drains.push_back(PendingDrain { deferred, target });
            self.pump(env);
        }
        Ok(promise)
    }

    /// Settles whatever can be settled now: packets to waiting receives (in call order),
    /// expired receive timeouts, reached drains; then tells the engine what to wake us for.
    pub fn pump(&mut self, env: &Env) {
        loop {
            while !self.receives.is_empty() && self.engine.received_count() > 0 {
                let pending = self.receives.pop_front().expect("not empty");
                self.deliver(env, pending);
            }
            if !self.receives.is_empty() {
                let now = now_ns();
                let (expired, waiting) = std::mem::take(&mut self.receives)
                    .into_iter()
                    .partition::<Vec<_>, _>(|p| p.deadline_ns.is_some_and(|d| d <= now));
                self.receives = waiting.into();
                for pending in expired {
                    resolve_empty(env, pending);
                }
            }
            if self.listener.is_some() {
                self.engine.wait_for_receive(None);
            } else if self.receives.is_empty() {
                self.engine.stop_waiting_for_receive();
            } else {
                let earliest = self.receives.iter().filter_map(|p| p.deadline_ns).min();
                self.engine.wait_for_receive(earliest);
                // A packet that arrived before the receiver saw the request has not woken us.
                if self.engine.received_count() > 0 {
                    continue;
                }
            }

            let completed = self.engine.completed_total();
            while self.drains.front().is_some_and(|d| d.target <= completed) {
                let pending = self.drains.pop_front().expect("not empty");
                let _ = pending.deferred.resolve(env, ());
            }
            match self.drains.front() {
                None => self.engine.set_drain_target(u64::MAX),
                Some(next) => {
                    self.engine.set_drain_target(next.target);
                    // The sender may have passed the target before it saw it.
                    if self.engine.completed_total() >= next.target {
                        continue;
                    }
                }
            }
            return;
        }
    }

    /// Copies up to `max` packets out of the receive ring into a JavaScript array.
    fn take_packets<'env>(&mut self, env: &'env Env, max: usize) -> napi::Result<Unknown<'env>> {
        self.batch.take(&mut self.engine, max);
        self.batch.to_array(env)
    }

    /// Settles a pending receive with what the receive ring holds.
    fn deliver(&mut self, env: &Env, pending: PendingReceive) {
        self.batch.take(&mut self.engine, pending.batch.unwrap_or(1));
        let value = match pending.batch {
            Some(_) => self.batch.to_array(env),
            None => self.batch.first(env),
        };
        let _ = match value {
            Ok(value) => pending.deferred.resolve(env, value),
            Err(error) => pending
                .deferred
                .reject(env, napi::JsError::from(error).into_unknown(*env)),
        };
    }

    /// Hands queued packets to the `onPackets` callback, a bounded number of times per wake.
    /// The instance is borrowed only to take the packets, never while the callback runs, so
    /// the callback may call any method of the instance (getPacketStats, onPackets(null),
    /// closeSocket, ...).
    fn call_listener(this: &SharedInstance, env: &Env) {
        for _ in 0..CALLBACKS_PER_WAKE {
            let (callback, packets) = {
                let Ok(mut instance) = this.try_borrow_mut() else {
                    return;
                };
                let Some(listener) = &instance.listener else { return };
                let max_batch = listener.max_batch;
                let Ok(callback) = listener.callback.borrow_back(env) else {
                    return;
                };
                if instance.engine.received_count() == 0 {
                    return;
                }
                let Ok(packets) = instance.take_packets(env, max_batch) else {
                    return;
                };
                (callback, packets)
            };
            if callback.call(packets).is_err() {
                // The callback threw: the exception stays pending and becomes an uncaught
                // exception when this wake-up returns, as for a throwing 'message' listener.
                return;
            }
        }
        if let Ok(mut instance) = this.try_borrow_mut() {
            if instance.listener.is_some() && instance.engine.received_count() > 0 {
                instance.wake_soon();
            }
        }
    }
}

/// Settles a receive that found nothing: null for receiveData, [] for receiveBatch.
fn resolve_empty(env: &Env, pending: PendingReceive) {
    let _ = match pending.batch {
        Some(_) => pending.deferred.resolve(env, Vec::<()>::new()),
        None => pending.deferred.resolve(env, Null),
    };
}

fn reject(env: &Env, deferred: Deferred, error: &Error) {
    if let Ok(value) = js_error(env, error) {
        let _ = deferred.reject(env, value);
    }
}
