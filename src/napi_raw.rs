//! The few Node-API calls napi-rs does not wrap the way udpcom needs them: BigInt reads without
//! an allocation, ref/unref of a thread-safe function, and environment cleanup hooks that free
//! their data when removed. All of the binding's `unsafe` is here, but for the hand-written
//! entry point in `fast_path`.

use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::{BigInt, FromNapiValue, JsObjectValue, Object, Unknown};
use napi::{check_status, sys, Env, JsValue, Result};

/// A BigInt read as a u64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum U64 {
    /// It fits.
    Value(u64),
    /// It is negative.
    Negative,
    /// It is larger than 2^64 - 1.
    TooLarge,
}

/// Reads a BigInt (the caller checked the type) as a u64, without allocating in the common case.
pub fn bigint_u64(value: &Unknown<'_>) -> Result<U64> {
    let (mut number, mut lossless) = (0u64, false);
    // SAFETY: `value` is a live value of its environment; the out-pointers are valid.
    check_status!(unsafe {
        sys::napi_get_value_bigint_uint64(value.value().env, value.raw(), &mut number, &mut lossless)
    })?;
    if lossless {
        return Ok(U64::Value(number));
    }
    // Rare: negative or huge. Read the sign from the full value.
    let big = BigInt::from_unknown(*value)?;
    Ok(if big.sign_bit { U64::Negative } else { U64::TooLarge })
}

/// Whether the ArrayBuffer under a TypedArray (the caller checked the type) is detached. Unlike
/// reading the view's `buffer` property, this runs no JavaScript.
pub fn typed_array_detached(view: &Unknown<'_>) -> Result<bool> {
    let env = view.value().env;
    let mut buffer = ptr::null_mut();
    let mut detached = false;
    // SAFETY: `view` is a live value of `env`; Node-API skips the null out-pointers, and
    // `buffer` and `detached` are valid for writes.
    unsafe {
        check_status!(sys::napi_get_typedarray_info(
            env,
            view.raw(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut buffer,
            ptr::null_mut(),
        ))?;
        check_status!(sys::napi_is_detached_arraybuffer(env, buffer, &mut detached))?;
    }
    Ok(detached)
}

/// Clears the JavaScript exception pending in `env`, if any (a getter or Proxy trap of an
/// argument threw), and returns its message.
pub fn take_exception_message(env: sys::napi_env) -> Option<String> {
    let mut pending = false;
    let mut exception = ptr::null_mut();
    // SAFETY: `env` is the live environment of the calling (JavaScript) thread; the
    // out-pointers are valid for writes.
    unsafe {
        if sys::napi_is_exception_pending(env, &mut pending) != sys::Status::napi_ok || !pending {
            return None;
        }
        if sys::napi_get_and_clear_last_exception(env, &mut exception) != sys::Status::napi_ok {
            return None;
        }
    }
    // SAFETY: `exception` was just returned by Node-API for this environment.
    let exception = unsafe { Unknown::from_raw_unchecked(env, exception) };
    // Reading `message` may itself run JavaScript that throws; then there is no message.
    let message = Object::from_unknown(exception)
        .and_then(|o| o.get_named_property::<String>("message"))
        .ok();
    if message.is_none() {
        let mut ignored = ptr::null_mut();
        // SAFETY: as above; drops whatever reading the message threw.
        unsafe { sys::napi_get_and_clear_last_exception(env, &mut ignored) };
    }
    message
}

/// Makes a thread-safe function keep the event loop alive (`referenced`) or not.
pub fn set_tsfn_referenced(env: &Env, tsfn: sys::napi_threadsafe_function, referenced: bool) -> Result<()> {
    // SAFETY: called on the JavaScript thread that created `tsfn`, which its owner keeps alive
    // (not released) while it can call this.
    check_status!(unsafe {
        if referenced {
            sys::napi_ref_threadsafe_function(env.raw(), tsfn)
        } else {
            sys::napi_unref_threadsafe_function(env.raw(), tsfn)
        }
    })
}

/// An environment cleanup hook (run when the environment is torn down: worker terminated,
/// process exiting) that frees its data when it is removed.
///
/// napi-rs's `Env::remove_env_cleanup_hook` unregisters the hook but never frees the data it
/// boxed, so every start()/stop() leaked a box and, through the `Weak` in it, the whole
/// instance's allocation (about 1 KB per instance).
pub struct CleanupHook<T: 'static>(*mut HookData<T>);

struct HookData<T> {
    /// Taken by the first (and only) run.
    data: Option<T>,
    run: fn(T),
}

unsafe extern "C" fn run_cleanup_hook<T: 'static>(arg: *mut c_void) {
    // SAFETY: `arg` is the pointer `CleanupHook::add` registered; it stays allocated until
    // `remove`, which unregisters the hook first, so it is live whenever Node runs the hook.
    // The box is not freed here, so a later `remove` (a no-op for Node) cannot free it twice;
    // a hook that ran leaks its small box once, at environment teardown.
    let hook = unsafe { &mut *arg.cast::<HookData<T>>() };
    if let Some(data) = hook.data.take() {
        (hook.run)(data);
    }
}

impl<T: 'static> CleanupHook<T> {
    /// Registers `run(data)` to run when the environment is torn down.
    pub fn add(env: &Env, data: T, run: fn(T)) -> Result<Self> {
        let hook = Box::into_raw(Box::new(HookData { data: Some(data), run }));
        // SAFETY: called on the JavaScript thread of the live `env`; `hook` is a valid pointer
        // that stays allocated until `remove` (or forever, if the hook runs).
        let status = unsafe { sys::napi_add_env_cleanup_hook(env.raw(), Some(run_cleanup_hook::<T>), hook.cast()) };
        if status != sys::Status::napi_ok {
            // SAFETY: not registered, so nothing else refers to `hook`.
            drop(unsafe { Box::from_raw(hook) });
        }
        check_status!(status)?;
        Ok(CleanupHook(hook))
    }

    /// Unregisters the hook and frees its data.
    pub fn remove(self, env: &Env) -> Result<()> {
        // SAFETY: called on the JavaScript thread of the live `env`, with the same function
        // and pointer `add` registered.
        check_status!(unsafe {
            sys::napi_remove_env_cleanup_hook(env.raw(), Some(run_cleanup_hook::<T>), self.0.cast())
        })?;
        // SAFETY: Node no longer refers to the pointer (the hook is unregistered, or it already
        // ran and only took the data out), and `self` is consumed, so it is freed exactly once.
        drop(unsafe { Box::from_raw(self.0) });
        Ok(())
    }
}

/// A reference that keeps `value` alive until the environment is torn down.
pub fn create_reference(env: &Env, value: sys::napi_value) -> Option<sys::napi_ref> {
    let mut reference = ptr::null_mut();
    // SAFETY: `value` is a live value of `env`; the reference is owned by the env.
    let status = unsafe { sys::napi_create_reference(env.raw(), value, 1, &mut reference) };
    (status == sys::Status::napi_ok).then_some(reference)
}
