//! What one `NativeUdpCom` object holds on the JavaScript thread: the engine, the thread-safe
//! function that wakes JavaScript while it runs, and the environment cleanup hook that stops
//! the workers if the environment goes away first (a terminated worker thread, process exit).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use napi::bindgen_prelude::Function;
use napi::Env;
use udpcom_engine::UdpEngine;

use crate::errors::OrThrow;
use crate::napi_raw::CleanupHook;
use crate::notify::JsNotify;

/// The instance as shared between the class object, its thread-safe function and its
/// environment cleanup hook (the latter two hold weak references).
pub type SharedInstance = Rc<RefCell<Instance>>;

/// State of one `NativeUdpCom` on the JavaScript thread.
pub struct Instance {
    /// The engine (socket, rings, workers, statistics).
    pub engine: UdpEngine,
    /// Wakes this thread while started.
    notify: Option<std::sync::Arc<JsNotify>>,
    /// Whether a started instance keeps the event loop alive (ref()/unref()).
    referenced: bool,
    /// Stops the workers if the environment is torn down while started.
    cleanup_hook: Option<CleanupHook<Weak<RefCell<Instance>>>>,
    /// The address registered with `fast_path` by start(), removed when collected.
    pub fast_path_address: Option<usize>,
    /// Native memory last reported to V8 with napi_adjust_external_memory.
    reported_memory: i64,
}

impl Instance {
    /// A new instance around an engine.
    pub fn new(engine: UdpEngine) -> SharedInstance {
        Rc::new(RefCell::new(Instance {
            engine,
            notify: None,
            referenced: true,
            cleanup_hook: None,
            fast_path_address: None,
            reported_memory: 0,
        }))
    }

    /// Starts the workers with a fresh thread-safe function that calls `on_wake`.
    pub fn start(this: &SharedInstance, env: &Env, on_wake: Function<(), ()>) -> napi::Result<()> {
        let weak = Rc::downgrade(this);
        let notify = JsNotify::new(on_wake, move || {
            // Before JavaScript looks at the engine: events from now on notify again.
            if let Some(instance) = weak.upgrade() {
                if let Ok(instance) = instance.try_borrow() {
                    instance.engine.begin_notification();
                }
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
            // join the workers before the thread-safe function disappears.
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

    /// Tells V8 how much native memory the instance holds (rings can be hundreds of MB), so
    /// that unreachable instances are collected as promptly as their size deserves. `bytes`:
    /// what the instance holds now (None: what the engine reports).
    pub fn report_memory(&mut self, env: &Env, bytes: Option<usize>) {
        let bytes = bytes.unwrap_or_else(|| self.engine.memory_bytes()) as i64;
        if bytes != self.reported_memory && env.adjust_external_memory(bytes - self.reported_memory).is_ok() {
            self.reported_memory = bytes;
        }
    }

    /// Stops the workers and releases the thread-safe function.
    pub fn stop(&mut self, env: &Env) {
        self.engine.stop();
        self.notify = None;
        if let Some(hook) = self.cleanup_hook.take() {
            let _ = hook.remove(env);
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
}
