//! `sendBatch`'s packets, flattened by JavaScript into memory native code owns.
//!
//! Reading each array element through Node-API costs about 870 instructions
//! (`napi_get_element` sets up a try/catch scope per call, then `napi_get_typedarray_info`).
//! Instead a small JavaScript function, compiled once per environment, copies the payloads
//! back to back into a byte buffer and their lengths into a Uint32Array, in a JIT-compiled
//! loop. Both buffers are ArrayBuffers created here and visible to no other code, so once the
//! function returns, native code reads them directly: one call into JavaScript per batch and
//! no Node-API call per packet. When the buffers are too small the function says how much it
//! needs and they are replaced by larger ones (up to [`MAX_SCRATCH_BYTES`]).
//!
//! Anything unusual (a non-array, an element that is not a typed array, an empty or detached
//! view, a call from inside a getter) makes the function step aside, and the element-by-element
//! path checks and reports it. Where code cannot be compiled from strings (a locked-down
//! Electron context, or `UDPCOM_NO_JS_HELPERS=1`), the function is simply not used.

use std::cell::RefCell;
use std::ptr;

use napi::{sys, Env};

use crate::napi_raw::{call_helper, compile_helper, create_reference};

/// Returns `{ setBuffers, flatten }`; `flatten(packets)` returns the packet count, -1 to step
/// aside, or -2 - n when the buffers cannot hold the n bytes (or the count) of this batch.
const FLATTEN_HELPER: &str = r#"(function () {
  let bytes = new Uint8Array(0)
  let lengths = new Uint32Array(0)
  let busy = false
  function flatten(packets) {
    // One pass: copy while the buffers hold it, keep counting after, and ask for more room.
    const count = packets.length
    const room = bytes.length
    const fits = count <= lengths.length
    let offset = 0
    for (let i = 0; i < count; i++) {
      let p = packets[i]
      if (!(p instanceof Uint8Array)) {
        if (!ArrayBuffer.isView(p) || p instanceof DataView) return -1
        p = new Uint8Array(p.buffer, p.byteOffset, p.byteLength)
      }
      const length = p.byteLength
      if (length === 0) return -1
      if (fits && offset + length <= room) {
        bytes.set(p, offset)
        lengths[i] = length
      }
      offset += length
    }
    return fits && offset <= room ? count : -2 - offset
  }
  return {
    setBuffers(byteBuffer, lengthBuffer) {
      bytes = new Uint8Array(byteBuffer)
      lengths = new Uint32Array(lengthBuffer)
    },
    flatten(packets) {
      // A getter that calls sendBatch again would share the buffers: it takes the slow path.
      if (busy || !Array.isArray(packets)) return -1
      busy = true
      try {
        return flatten(packets)
      } finally {
        busy = false
      }
    },
  }
})()"#;

/// Largest byte buffer the helper gets; larger batches take the element-by-element path.
pub const MAX_SCRATCH_BYTES: usize = 64 * 1024 * 1024;

/// An ArrayBuffer created here, its backing store, and the reference that keeps it alive.
struct Owned {
    reference: sys::napi_ref,
    data: *mut u8,
    len: usize,
}

/// The helper of one environment and the buffers it writes into.
struct Scratch {
    flatten: sys::napi_ref,
    set_buffers: sys::napi_ref,
    bytes: Owned,
    lengths: Owned,
}

thread_local! {
    /// Per environment of this thread. References live until the environment is torn down.
    static SCRATCH: RefCell<Vec<(usize, Scratch)>> = const { RefCell::new(Vec::new()) };
}

/// Compiles the helper for `env`.
pub fn install(env: &Env) {
    let Some([flatten, set_buffers]) = compile_helper(env, FLATTEN_HELPER, ["flatten", "setBuffers"]) else {
        return;
    };
    let empty = || Owned {
        reference: ptr::null_mut(),
        data: ptr::null_mut(),
        len: 0,
    };
    let mut scratch = Scratch {
        flatten,
        set_buffers,
        bytes: empty(),
        lengths: empty(),
    };
    // Start with room for a typical batch (64 KiB, 1,024 packets), so the first call does not
    // have to run the array's getters twice.
    if grow(env, &mut scratch, 0, 0).is_some() {
        SCRATCH.with(|all| all.borrow_mut().push((env.raw() as usize, scratch)));
    }
}

/// Flattens `packets` (an array of `count` elements) with the helper and hands the payloads to
/// `queue`. None when there is no helper or it stepped aside: take the slow path then. No
/// JavaScript runs between the helper's return and `queue`, so the payloads stay put.
pub fn with_flattened<R>(
    env: &Env,
    packets: sys::napi_value,
    count: usize,
    queue: impl FnOnce(&[&[u8]]) -> R,
) -> Option<R> {
    let key = env.raw() as usize;
    let find = |all: &mut Vec<(usize, Scratch)>| all.iter_mut().position(|(e, _)| *e == key);
    // No borrow is held while the helper runs: it runs the array's getters, which may call
    // sendBatch again.
    let flatten = SCRATCH.with(|all| {
        let mut all = all.borrow_mut();
        find(&mut all).map(|i| all[i].1.flatten)
    })?;
    let mut result = call(env, flatten, packets)?;
    if result <= -2.0 {
        // Too small: replace the buffers and try once more.
        let needed = (-(result + 2.0)) as usize;
        SCRATCH.with(|all| {
            let mut all = all.borrow_mut();
            let i = find(&mut all)?;
            grow(env, &mut all[i].1, needed, count)
        })?;
        result = call(env, flatten, packets)?;
    }
    if result < 0.0 || result as usize != count {
        return None;
    }
    SCRATCH.with(|all| {
        let mut all = all.borrow_mut();
        let i = find(&mut all)?;
        let payloads = split(&all[i].1, count)?;
        Some(queue(&payloads))
    })
}

/// Calls the helper; None if it threw (a getter on the array: the slow path meets it again and
/// reports it) or returned a non-number.
fn call(env: &Env, function: sys::napi_ref, argument: sys::napi_value) -> Option<f64> {
    let result = call_helper(env, function, &[argument])?;
    let mut number = 0.0;
    // SAFETY: a value of this environment.
    (unsafe { sys::napi_get_value_double(env.raw(), result, &mut number) } == sys::Status::napi_ok).then_some(number)
}

/// Gives the helper buffers that hold `bytes` bytes and `count` lengths (doubling sizes).
fn grow(env: &Env, scratch: &mut Scratch, bytes: usize, count: usize) -> Option<()> {
    let byte_len = bytes.max(scratch.bytes.len * 2).max(64 * 1024);
    let length_len = (count * 4).max(scratch.lengths.len * 2).max(4096);
    if bytes > MAX_SCRATCH_BYTES {
        return None;
    }
    let new_bytes = create_buffer(env, byte_len.min(MAX_SCRATCH_BYTES))?;
    let new_lengths = create_buffer(env, length_len)?;
    let (mut set_buffers, mut undefined, mut ignored) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    let mut args = [ptr::null_mut(); 2];
    // SAFETY: references and values of this environment, on its thread.
    unsafe {
        sys::napi_get_reference_value(env.raw(), scratch.set_buffers, &mut set_buffers);
        sys::napi_get_reference_value(env.raw(), new_bytes.reference, &mut args[0]);
        sys::napi_get_reference_value(env.raw(), new_lengths.reference, &mut args[1]);
        sys::napi_get_undefined(env.raw(), &mut undefined);
        if sys::napi_call_function(env.raw(), undefined, set_buffers, 2, args.as_ptr(), &mut ignored)
            != sys::Status::napi_ok
        {
            return None;
        }
        for old in [&scratch.bytes, &scratch.lengths] {
            if !old.reference.is_null() {
                sys::napi_delete_reference(env.raw(), old.reference);
            }
        }
    }
    scratch.bytes = new_bytes;
    scratch.lengths = new_lengths;
    Some(())
}

fn create_buffer(env: &Env, len: usize) -> Option<Owned> {
    let (mut data, mut value) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: creates a new ArrayBuffer in this environment; `data` is its backing store.
    let status = unsafe { sys::napi_create_arraybuffer(env.raw(), len, &mut data, &mut value) };
    if status != sys::Status::napi_ok {
        return None;
    }
    let reference = create_reference(env, value)?;
    Some(Owned {
        reference,
        data: data.cast(),
        len,
    })
}

/// The payloads the helper wrote: `count` lengths, then the bytes back to back.
fn split(scratch: &Scratch, count: usize) -> Option<Vec<&[u8]>> {
    if count * 4 > scratch.lengths.len {
        return None;
    }
    // SAFETY: both ArrayBuffers were created here, are kept alive by their references, and are
    // reachable only from the helper's closure, which has returned: nothing writes them while
    // these slices live (no JavaScript runs until the batch is queued). Lengths are read
    // unaligned-safe as bytes.
    let (lengths, bytes) = unsafe {
        (
            std::slice::from_raw_parts(scratch.lengths.data, count * 4),
            std::slice::from_raw_parts(scratch.bytes.data, scratch.bytes.len),
        )
    };
    let mut offset = 0;
    let mut payloads = Vec::with_capacity(count);
    for length in lengths.chunks_exact(4) {
        let length = u32::from_ne_bytes(length.try_into().ok()?) as usize;
        payloads.push(bytes.get(offset..offset + length)?);
        offset += length;
    }
    Some(payloads)
}
