//! A hand-written Node-API entry point for the per-packet method `sendData`.
//!
//! The glue napi-rs generates around a `&self` method checks the class type tag, registers the
//! borrow in a process-wide table behind a mutex and allocates its bookkeeping: about 3,500
//! instructions per call (measured with callgrind), where the work of `sendData` itself is
//! about 1,000. For a method called once per packet that is most of the cost. These entry
//! points replace the two methods on `UdpCom.prototype` when the module loads and do the same
//! job directly: `napi_unwrap` of `this`, then a check that the pointer is a live
//! `NativeUdpCom` of this thread (a thread-local set, filled by `start()`), then the very same
//! Rust method as before. Anything unusual — `this` not a started instance, a method borrowed
//! onto another object — goes to the original napi-rs method, so behaviour and errors stay
//! identical.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, JsObjectValue, Object, ToNapiValue, Unknown};
use napi::{sys, Env, JsValue, ValueType};

use crate::napi_raw::create_reference;
use crate::NativeUdpCom;

thread_local! {
    /// Addresses of the `NativeUdpCom` objects of this thread that have been started.
    static LIVE: RefCell<HashSet<usize>> = RefCell::new(HashSet::new());
    /// Per environment of this thread: the original napi-rs method.
    /// References are never deleted: the environment frees them when it is torn down.
    static ORIGINALS: RefCell<Vec<(usize, Originals)>> = const { RefCell::new(Vec::new()) };
}

#[derive(Clone, Copy)]
struct Originals {
    send_data: sys::napi_ref,
}

/// Marks `udp` (the address napi-rs wrapped) as a live instance of this thread.
pub fn register(udp: &NativeUdpCom) -> usize {
    let address = udp as *const NativeUdpCom as usize;
    LIVE.with(|live| live.borrow_mut().insert(address));
    address
}

/// Forgets an instance (it is being garbage-collected).
pub fn unregister(address: usize) {
    LIVE.with(|live| live.borrow_mut().remove(&address));
}

/// Replaces `NativeUdpCom.prototype.sendData` with the fast entry point.
pub fn install(env: &Env, exports: &Object) -> napi::Result<()> {
    // The class is a function; Object::from_unknown does not insist on typeof 'object'.
    let class = Object::from_unknown(exports.get_named_property::<Unknown>("NativeUdpCom")?)?;
    let mut prototype: Object = class.get_named_property("prototype")?;
    let original: Unknown = prototype.get_named_property("sendData")?;
    let send_data = create_reference(env, original.raw())
        .ok_or_else(|| napi::Error::from_reason("napi_create_reference failed"))?;
    ORIGINALS.with(|all| all.borrow_mut().push((env.raw() as usize, Originals { send_data })));
    prototype.set_named_property("sendData", create_function(env, "sendData", send_data_entry)?)?;
    Ok(())
}

fn create_function<'env>(
    env: &'env Env,
    name: &str,
    callback: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value,
) -> napi::Result<Unknown<'env>> {
    let mut function = ptr::null_mut();
    // SAFETY: `name` outlives the call (its length is passed); `callback` has the signature
    // Node-API expects.
    napi::check_status!(unsafe {
        sys::napi_create_function(
            env.raw(),
            name.as_ptr().cast(),
            name.len() as isize,
            Some(callback),
            ptr::null_mut(),
            &mut function,
        )
    })?;
    // SAFETY: just created in this environment.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), function) })
}

/// `this` and the first two arguments of a call.
struct Call {
    env: sys::napi_env,
    this: sys::napi_value,
    argc: usize,
    argv: [sys::napi_value; 2],
}

impl Call {
    /// # Safety
    /// `env` and `info` must be the arguments Node-API passed to a callback.
    unsafe fn new(env: sys::napi_env, info: sys::napi_callback_info) -> Option<Call> {
        let mut call = Call {
            env,
            this: ptr::null_mut(),
            argc: 2,
            argv: [ptr::null_mut(); 2],
        };
        // SAFETY: per the contract; missing arguments are filled with `undefined`.
        let status = unsafe {
            sys::napi_get_cb_info(
                env,
                info,
                &mut call.argc,
                call.argv.as_mut_ptr(),
                &mut call.this,
                ptr::null_mut(),
            )
        };
        (status == sys::Status::napi_ok).then_some(call)
    }

    /// The live `NativeUdpCom` that `this` wraps, if it is one.
    fn instance(&self) -> Option<&NativeUdpCom> {
        let mut wrapped: *mut c_void = ptr::null_mut();
        // SAFETY: `this` is a value of `env`; napi_unwrap only reads the wrap slot.
        if unsafe { sys::napi_unwrap(self.env, self.this, &mut wrapped) } != sys::Status::napi_ok {
            return None;
        }
        let live = LIVE.with(|live| live.borrow().contains(&(wrapped as usize)));
        // SAFETY: the address is in LIVE, so napi-rs wrapped a `NativeUdpCom` there, and it stays
        // alive until its finalizer, which removes it from LIVE, runs; it cannot run during
        // this call, because `this` is on the JavaScript stack.
        live.then(|| unsafe { &*(wrapped as *const NativeUdpCom) })
    }

    fn arg(&self, index: usize) -> Unknown<'_> {
        // SAFETY: filled in by napi_get_cb_info for this environment.
        unsafe { Unknown::from_raw_unchecked(self.env, self.argv[index]) }
    }

    /// An argument, or None when it is undefined or null (as napi-rs converts `Option`).
    fn optional_arg(&self, index: usize) -> Option<Unknown<'_>> {
        let arg = self.arg(index);
        (!matches!(arg.get_type(), Ok(ValueType::Undefined | ValueType::Null))).then_some(arg)
    }

    fn originals(&self) -> Option<Originals> {
        let key = self.env as usize;
        ORIGINALS.with(|all| all.borrow().iter().find(|(env, _)| *env == key).map(|(_, o)| *o))
    }

    /// Calls the function behind `reference`; null if it threw (the exception stays pending).
    fn call_function(
        &self,
        reference: sys::napi_ref,
        this: sys::napi_value,
        args: &[sys::napi_value],
    ) -> sys::napi_value {
        let (mut function, mut result) = (ptr::null_mut(), ptr::null_mut());
        // SAFETY: the reference belongs to this environment; `this` and `args` are its values.
        unsafe {
            sys::napi_get_reference_value(self.env, reference, &mut function);
            sys::napi_call_function(self.env, this, function, args.len(), args.as_ptr(), &mut result);
        }
        result
    }

    /// Runs the original napi-rs method; its exceptions stay pending for Node to rethrow.
    fn slow_path(&self, pick: fn(Originals) -> sys::napi_ref) -> sys::napi_value {
        match self.originals() {
            Some(originals) => self.call_function(pick(originals), self.this, &self.argv[..self.argc.min(2)]),
            None => ptr::null_mut(),
        }
    }

    /// Converts the method's result, throwing its error.
    fn finish<T: ToNapiValue>(&self, result: std::thread::Result<napi::Result<T>>) -> sys::napi_value {
        let error = match result {
            // SAFETY: converting a plain value in this environment.
            Ok(Ok(value)) => match unsafe { T::to_napi_value(self.env, value) } {
                Ok(converted) => return converted,
                Err(error) => error,
            },
            Ok(Err(error)) => error,
            Err(_) => napi::Error::from_reason("udpcom: internal error (a panic was caught at the binding)"),
        };
        // SAFETY: throwing into this environment from its own callback.
        unsafe { napi::JsError::from(error).throw_into(self.env) };
        ptr::null_mut()
    }
}

unsafe extern "C" fn send_data_entry(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: called by Node-API with its own env and callback info.
    let Some(call) = (unsafe { Call::new(env, info) }) else {
        return ptr::null_mut();
    };
    let Some(udp) = call.instance() else {
        return call.slow_path(|o| o.send_data);
    };
    let env = Env::from_raw(env);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        udp.send_data(env, call.arg(0), call.optional_arg(1))
    }));
    call.finish(result)
}
