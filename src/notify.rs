//! Waking the JavaScript thread from worker threads.
//!
//! One thread-safe function per started instance, around the JavaScript layer's `onWake`.
//! Workers call it without blocking, and the engine coalesces calls (at most one is queued), so
//! JavaScript is woken once per batch of events, never once per packet. While it exists and is
//! referenced it keeps the event loop alive, like a bound `node:dgram` socket; `unref()` and
//! `stop()` let the process exit. An exception thrown by `onWake` becomes an uncaught exception
//! (napi_fatal_exception), as one thrown by a `'message'` listener does.

use std::sync::Arc;

use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use udpcom_engine::Notify;

use crate::napi_raw::set_tsfn_referenced;

type WakeFunction = ThreadsafeFunction<(), (), (), Status, false>;

/// The engine's [`Notify`], backed by a thread-safe function.
pub struct JsNotify(WakeFunction);

impl Notify for JsNotify {
    fn notify(&self) {
        // Non-blocking with an unbounded queue: this never waits, so a worker can always be
        // joined. After the environment is torn down the call is refused, which is fine.
        let _ = self.0.call((), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

impl JsNotify {
    /// A thread-safe function that runs `before_call` and then `on_wake` on the JavaScript
    /// thread.
    pub fn new(on_wake: Function<(), ()>, before_call: impl Fn() + 'static) -> napi::Result<Arc<JsNotify>> {
        let tsfn = on_wake
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .build_callback(move |_| {
                before_call();
                Ok(())
            })?;
        Ok(Arc::new(JsNotify(tsfn)))
    }

    /// Whether the function keeps the event loop alive.
    pub fn set_referenced(&self, env: &Env, referenced: bool) -> napi::Result<()> {
        set_tsfn_referenced(env, self.0.raw(), referenced)
    }
}
