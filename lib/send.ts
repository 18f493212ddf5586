// sendBatch's arguments, flattened for one native call: the payloads copied back to back into a
// byte buffer with their lengths beside them, and the timestamps as a BigUint64Array. Copying in
// JavaScript costs a few tens of ns per packet; reading each element through Node-API cost
// about 870 instructions.

import { invalidArgType, invalidArgValue, outOfRange, unreadable } from './errors'
import { read } from './validate'

/** The intrinsic TypedArray getters: a view's own `buffer` property (a getter) is never run. */
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object
const intrinsic = (name: string): ((this: ArrayBufferView) => unknown) =>
  Object.getOwnPropertyDescriptor(TypedArrayPrototype, name)!.get as (this: ArrayBufferView) => unknown
const getBuffer = intrinsic('buffer') as (this: ArrayBufferView) => ArrayBuffer
const getByteOffset = intrinsic('byteOffset') as (this: ArrayBufferView) => number
const getByteLength = intrinsic('byteLength') as (this: ArrayBufferView) => number
const isTypedArray = (value: unknown): value is ArrayBufferView =>
  ArrayBuffer.isView(value) && !(value instanceof DataView)

/** A flattened batch, valid until the next flatten on this thread. */
export interface FlatBatch {
  bytes: Uint8Array
  lengths: Uint32Array
  count: number
}

/** Buffers kept between calls; a batch larger than this allocates its own. */
const KEEP_BYTES = 4 << 20
const KEEP_PACKETS = 65_536

let sharedBytes = new Uint8Array(64 * 1024)
let sharedLengths = new Uint32Array(1024)
/** A getter that calls sendBatch again while a batch is being flattened gets its own buffers. */
let flattening = false

/** The bytes of a TypedArray (any element type), or a coded error naming it. */
function viewBytes(value: unknown, name: string): Uint8Array {
  if (!isTypedArray(value)) {
    throw invalidArgType(name, 'an instance of Buffer, Uint8Array or another TypedArray', value)
  }
  const length = getByteLength.call(value)
  if (length === 0) {
    const buffer = getBuffer.call(value)
    try {
      new Uint8Array(buffer, 0, 0)
    } catch {
      throw invalidArgValue(name, 'is detached (its ArrayBuffer was transferred)', 'a detached view')
    }
  }
  return value instanceof Uint8Array ? value : new Uint8Array(getBuffer.call(value), getByteOffset.call(value), length)
}

/** Copies `packets` (an array of TypedArrays) back to back. */
export function flattenPackets(packets: unknown, name = 'packets'): FlatBatch {
  if (!Array.isArray(packets)) throw invalidArgType(name, 'an instance of Array', packets)
  const count = read(packets, 'length', name) as number
  const own = !flattening
  flattening = true
  try {
    let bytes = own ? sharedBytes : new Uint8Array(64 * 1024)
    let lengths = own && count <= sharedLengths.length ? sharedLengths : new Uint32Array(Math.max(count, 1))
    let offset = 0
    for (let i = 0; i < count; i++) {
      let element: unknown
      try {
        element = packets[i]
      } catch (exception) {
        throw unreadable(`${name}[${i}]`, exception)
      }
      // The common case without a call or a string: a non-empty Uint8Array (or Buffer).
      const view =
        element instanceof Uint8Array && getByteLength.call(element) !== 0 ? element : viewBytes(element, `${name}[${i}]`)
      const length = getByteLength.call(view)
      if (offset + length > bytes.length) {
        let size = bytes.length * 2
        while (size < offset + length) size *= 2
        const grown = new Uint8Array(size)
        grown.set(bytes.subarray(0, offset))
        bytes = grown
      }
      bytes.set(view, offset)
      lengths[i] = length
      offset += length
    }
    if (own && bytes.length <= KEEP_BYTES) sharedBytes = bytes
    if (own && lengths.length <= KEEP_PACKETS && lengths.length > sharedLengths.length) sharedLengths = lengths
    return { bytes, lengths, count }
  } finally {
    if (own) flattening = false
  }
}

const U64_LIMIT = 1n << 64n

function badTimestamp(element: unknown, name: string): Error {
  if (typeof element !== 'bigint') return invalidArgType(name, 'of type bigint', element)
  return element < 0n ? outOfRange(name, '>= 0n', `${element}n`) : outOfRange(name, '< 2n ** 64n', `${element}n`)
}

/**
 * sendBatch's timestamps: a BigInt64Array or BigUint64Array as they are (the binding checks
 * their length and sign), an array of bigints copied into a BigUint64Array, `undefined` when
 * omitted (all as soon as possible).
 */
export function timestampArray(value: unknown, name = 'timestampsNs'): BigUint64Array | BigInt64Array | undefined {
  if (value === undefined || value === null) return undefined
  if (value instanceof BigUint64Array || value instanceof BigInt64Array) return value
  if (!Array.isArray(value)) {
    throw invalidArgType(name, 'an instance of BigInt64Array, BigUint64Array or Array of bigint', value)
  }
  const count = read(value, 'length', name) as number
  const stamps = new BigUint64Array(count)
  for (let i = 0; i < count; i++) {
    let element: unknown
    try {
      element = value[i]
    } catch (exception) {
      throw unreadable(`${name}[${i}]`, exception)
    }
    if (typeof element !== 'bigint' || element < 0n || element >= U64_LIMIT) throw badTimestamp(element, `${name}[${i}]`)
    stamps[i] = element
  }
  return stamps
}


/**
 * The flat form of sendBatch: `bytes` (a Uint8Array, or Buffer) and `lengths` (a Uint32Array),
 * checked for type here; the binding checks that the lengths add up to at most the bytes.
 */
export function flatBatchArguments(bytes: unknown, lengths: unknown): { bytes: Uint8Array; lengths: Uint32Array } {
  if (!(bytes instanceof Uint8Array)) throw invalidArgType('bytes', 'an instance of Buffer or Uint8Array', bytes)
  if (!(lengths instanceof Uint32Array)) throw invalidArgType('lengths', 'an instance of Uint32Array', lengths)
  return { bytes: viewBytes(bytes, 'bytes'), lengths }
}
