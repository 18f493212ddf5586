//! Received packets as JavaScript values.
//!
//! Building each `{ data, timestampNs, timestampSource }` object through Node-API costs about
//! 2.5 µs per packet (a Buffer allocation and a property write per field, each interning its
//! key). Instead, a batch is copied out of the receive ring into a few flat arrays — the
//! payloads back to back in one ArrayBuffer, their lengths, stamps and stamp sources in typed
//! arrays — and a small JavaScript function, compiled once per environment, makes the objects
//! in a JIT-compiled loop: each `data` is a Buffer view of the batch's ArrayBuffer. Where code
//! cannot be compiled from strings, the objects are built natively as before.

use std::cell::RefCell;

use napi::bindgen_prelude::{
    ArrayBuffer, BigUint64ArraySlice, BufferSlice, Null, ToNapiValue, Uint32ArraySlice, Uint8ArraySlice, Unknown,
};
use napi::{sys, Env, JsValue};
use udpcom_engine::StampSource;
use udpcom_engine::UdpEngine;

use crate::convert::ReceivedPacket;
use crate::napi_raw::{call_helper, compile_helper};

/// Returns `{ many, one }`: `many` makes the packet objects of a batch from the flat arrays,
/// `one` makes a single packet object around a Buffer.
const MAKE_PACKETS_HELPER: &str = r#"(function () {
  const SOURCES = ['user', 'kernel', 'hardware']
  return {
    many(bytes, lengths, stamps, sources, hardware) {
      const count = lengths.length
      const packets = new Array(count)
      let offset = 0
      for (let i = 0; i < count; i++) {
        const length = lengths[i]
        const packet = { data: Buffer.from(bytes, offset, length), timestampNs: stamps[i], timestampSource: SOURCES[sources[i]] }
        if (hardware !== undefined && hardware[i] !== 0n) packet.hwTimestampNs = hardware[i]
        packets[i] = packet
        offset += length
      }
      return packets
    },
    one(data, stamp, source, hardware) {
      const packet = { data, timestampNs: stamp, timestampSource: SOURCES[source] }
      if (hardware !== 0n) packet.hwTimestampNs = hardware
      return packet
    },
  }
})()"#;

#[derive(Clone, Copy)]
struct Helper {
    many: sys::napi_ref,
    one: sys::napi_ref,
}

thread_local! {
    /// Per environment of this thread. References live until the environment is torn down.
    static HELPERS: RefCell<Vec<(usize, Helper)>> = const { RefCell::new(Vec::new()) };
}

/// Compiles the helper for `env`.
pub fn install(env: &Env) {
    if let Some([many, one]) = compile_helper(env, MAKE_PACKETS_HELPER, ["many", "one"]) {
        HELPERS.with(|all| all.borrow_mut().push((env.raw() as usize, Helper { many, one })));
    }
}

fn helper(env: &Env) -> Option<Helper> {
    let key = env.raw() as usize;
    HELPERS.with(|all| all.borrow().iter().find(|(e, _)| *e == key).map(|(_, h)| *h))
}

/// Packets taken out of the receive ring, kept flat until they become JavaScript values.
/// Reused between batches, so taking packets allocates nothing once it has grown.
#[derive(Default)]
pub struct PacketBatch {
    bytes: Vec<u8>,
    lengths: Vec<u32>,
    stamps: Vec<u64>,
    sources: Vec<u8>,
    hardware: Vec<u64>,
}

impl PacketBatch {
    /// Moves up to `max` packets out of the engine's receive ring into this batch.
    pub fn take(&mut self, engine: &mut UdpEngine, max: usize) {
        self.bytes.clear();
        self.lengths.clear();
        self.stamps.clear();
        self.sources.clear();
        self.hardware.clear();
        engine.receive(max, usize::MAX, |packet| {
            self.bytes.extend_from_slice(packet.payload);
            self.lengths.push(packet.payload.len() as u32);
            self.stamps.push(packet.meta.arrival_ns);
            self.sources.push(match packet.meta.source {
                StampSource::User => 0,
                StampSource::Kernel => 1,
                StampSource::Hardware => 2,
            });
            self.hardware.push(packet.meta.hardware_ns);
        });
    }

    /// Number of packets in the batch.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// The packets as a JavaScript array of `ReceivedPacket` objects.
    pub fn to_array<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        let hardware = match self.hardware.iter().any(|&h| h != 0) {
            true => BigUint64ArraySlice::copy_from(env, &self.hardware)?.raw(),
            false => ().into_unknown(env)?.raw(),
        };
        let args = [
            ArrayBuffer::copy_from(env, &self.bytes)?.raw(),
            Uint32ArraySlice::copy_from(env, &self.lengths)?.raw(),
            BigUint64ArraySlice::copy_from(env, &self.stamps)?.raw(),
            Uint8ArraySlice::copy_from(env, &self.sources)?.raw(),
            hardware,
        ];
        match helper(env).and_then(|helper| call_helper(env, helper.many, &args)) {
            // SAFETY: a value of this environment.
            Some(array) => Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), array) }),
            None => self.packets(env)?.into_unknown(env),
        }
    }

    /// The packets built through Node-API object by object.
    fn packets<'env>(&self, env: &'env Env) -> napi::Result<Vec<ReceivedPacket<'env>>> {
        let mut offset = 0;
        (0..self.len())
            .map(|i| {
                let length = self.lengths[i] as usize;
                offset += length;
                ReceivedPacket::from_parts(
                    env,
                    &self.bytes[offset - length..offset],
                    self.stamps[i],
                    self.sources[i],
                    self.hardware[i],
                )
            })
            .collect()
    }

    /// The first packet as a JavaScript object, or null if the batch is empty.
    pub fn first<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        if self.len() == 0 {
            return Null.into_unknown(env);
        }
        let data = &self.bytes[..self.lengths[0] as usize];
        if let Some(helper) = helper(env) {
            let args = [
                BufferSlice::copy_from(env, data)?.raw(),
                self.stamps[0].into_unknown(env)?.raw(),
                u32::from(self.sources[0]).into_unknown(env)?.raw(),
                self.hardware[0].into_unknown(env)?.raw(),
            ];
            if let Some(packet) = call_helper(env, helper.one, &args) {
                // SAFETY: a value of this environment.
                return Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), packet) });
            }
        }
        ReceivedPacket::from_parts(env, data, self.stamps[0], self.sources[0], self.hardware[0])?.into_unknown(env)
    }
}
