//! The few Node-API calls napi-rs does not wrap the way udpcom needs them: promises settled on
//! the JavaScript thread without a thread-safe function per promise, BigInt reads without an
//! allocation, ref/unref of a thread-safe function, and environment cleanup hooks that free
//! their data when removed. All of the binding's `unsafe` is here.

use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::{BigInt, FromNapiValue, JsObjectValue, Object, ToNapiValue, Unknown};
use napi::{check_status, sys, Env, JsValue, Result};

/// A promise's resolver, used only on the JavaScript thread that created it.
///
/// Node-API frees the deferred when it is settled; one that is never settled leaves its
/// promise pending until the environment is torn down, so every owner settles its deferreds
/// (on success, timeout, stop, close or garbage collection).
pub struct Deferred(sys::napi_deferred);

impl Deferred {
    /// A new pending promise and its resolver.
    pub fn new(env: &Env) -> Result<(Deferred, Unknown<'_>)> {
        let mut deferred = ptr::null_mut();
        let mut promise = ptr::null_mut();
        // SAFETY: `env` is the live environment of the calling (JavaScript) thread, and both
        // out-pointers are valid.
        check_status!(unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) })?;
        // SAFETY: `promise` was just created in this environment.
        Ok((Deferred(deferred), unsafe {
            Unknown::from_raw_unchecked(env.raw(), promise)
        }))
    }

    /// Resolves the promise with `value`.
    pub fn resolve<V: ToNapiValue>(self, env: &Env, value: V) -> Result<()> {
        // SAFETY: called on the JavaScript thread of `env`, which owns the deferred; the
        // deferred is consumed, so it is settled at most once.
        unsafe {
            let value = V::to_napi_value(env.raw(), value)?;
            check_status!(sys::napi_resolve_deferred(env.raw(), self.0, value))
        }
    }

    /// Rejects the promise with `error` (a JavaScript value, normally an Error).
    pub fn reject(self, env: &Env, error: Unknown<'_>) -> Result<()> {
        // SAFETY: as in `resolve`; `error` belongs to the same environment.
        check_status!(unsafe { sys::napi_reject_deferred(env.raw(), self.0, error.raw()) })
    }
}

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

/// Calls the JavaScript function behind `function` with `this` undefined. None if it threw:
/// the exception is cleared, for callers that fall back to another way.
pub fn call_helper(env: &Env, function: sys::napi_ref, args: &[sys::napi_value]) -> Option<sys::napi_value> {
    let (mut callee, mut undefined, mut result) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    // SAFETY: the reference and the arguments belong to this environment, on its thread.
    unsafe {
        sys::napi_get_reference_value(env.raw(), function, &mut callee);
        sys::napi_get_undefined(env.raw(), &mut undefined);
        if sys::napi_call_function(env.raw(), undefined, callee, args.len(), args.as_ptr(), &mut result)
            != sys::Status::napi_ok
        {
            let mut exception = ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env.raw(), &mut exception);
            return None;
        }
    }
    Some(result)
}

/// Compiles `source`, an expression whose value is an object of functions, and returns a
/// reference to each function in `names`, in order. None where code cannot be compiled from
/// strings (a locked-down Electron context) or a name is missing: callers then do without.
pub fn compile_helper<const N: usize>(env: &Env, source: &str, names: [&str; N]) -> Option<[sys::napi_ref; N]> {
    let helper = Object::from_unknown(env.run_script::<_, Unknown>(source).ok()?).ok()?;
    let mut references = [ptr::null_mut(); N];
    for (reference, name) in references.iter_mut().zip(names) {
        let function: Unknown = helper.get_named_property(name).ok()?;
        *reference = create_reference(env, function.raw())?;
    }
    Some(references)
}
