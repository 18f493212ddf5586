// Received packets as JavaScript objects, made from the flat arrays the native binding fills
// (see src/receive.rs for the layout). One native call moves a whole batch out of the receive
// ring; the objects are then made here, in a loop the JIT compiles, which costs a fraction of
// building them through Node-API.

import type { NativeUdpCom } from '../native/binding'
import type { PacketBatch, ReceivedPacket } from './types'

/** 32-bit words of `info` per packet (src/receive.rs). */
const INFO_WORDS = 8
/** 32-bit words of `destinations` per packet, with packetInfo (src/receive.rs). */
const DESTINATION_WORDS = 6
/** Packets one take can hold at first; grown (up to MAX_TAKE) when a batch asks for more. */
const INITIAL_TAKE = 1024
/** Most packets one take returns. */
export const MAX_TAKE = 65_536
/** Payload bytes one take can hold: at least one largest datagram (65,527 bytes over IPv6). */
const TAKE_BYTES = 1 << 20

const SOURCES = ['user', 'kernel', 'hardware'] as const

/**
 * Scratch arrays the native take fills, shared by every instance of this thread (a take copies
 * what it needs out of them before it returns, and JavaScript runs one take at a time).
 */
const scratch = {
  bytes: new Uint8Array(0),
  stamps: new BigUint64Array(0),
  info: new Uint32Array(0),
  /** Only once an instance with packetInfo takes packets. */
  destinations: new Uint32Array(0),
}

/** Room for `packets` packets in the scratch arrays (with their destinations for packetInfo). */
function reserve(packets: number, packetInfo: boolean): void {
  if (scratch.bytes.length === 0) scratch.bytes = new Uint8Array(TAKE_BYTES)
  if (scratch.stamps.length / 2 < packets) {
    let size = Math.max(INITIAL_TAKE, scratch.stamps.length / 2)
    while (size < packets) size *= 2
    scratch.stamps = new BigUint64Array(2 * size)
    scratch.info = new Uint32Array(INFO_WORDS * size)
  }
  if (packetInfo && scratch.destinations.length / DESTINATION_WORDS < scratch.stamps.length / 2) {
    scratch.destinations = new Uint32Array(DESTINATION_WORDS * (scratch.stamps.length / 2))
  }
}

/**
 * Moves up to `max` packets (fewer if their payloads exceed 1 MiB) out of `native`'s receive
 * ring and appends their objects to `into`; returns how many. With `packetInfo` the packets
 * also get their destination and interface.
 */
export function takePackets(native: NativeUdpCom, max: number, into: ReceivedPacket[], packetInfo = false): number {
  reserve(Math.min(max, MAX_TAKE), packetInfo)
  const { bytes, stamps, info, destinations } = scratch
  const count = native.take(bytes, stamps, info, Math.min(max, stamps.length / 2), packetInfo ? destinations : null)
  if (count === 0) return 0
  const first = into.length
  let total = 0
  for (let i = 0; i < count; i++) total += info[i * INFO_WORDS]!
  // The packets of one take share one ArrayBuffer, like Node's pooled Buffers: a copy of the
  // used part of the scratch, which the next take overwrites.
  const buffer = bytes.buffer.slice(0, total)
  let offset = 0
  for (let i = 0; i < count; i++) {
    const base = i * INFO_WORDS
    const length = info[base]!
    const flags = info[base + 1]!
    const family = flags >>> 8
    const packet: ReceivedPacket = {
      data: Buffer.from(buffer, offset, length),
      timestampNs: stamps[2 * i]!,
      timestampSource: SOURCES[flags & 0xff]!,
      address: family === 6 ? names.ipv6(native, info, base + 4, info[base + 3]!) : names.ipv4(info[base + 4]!),
      port: info[base + 2]!,
      family: family === 6 ? 'IPv6' : 'IPv4',
    }
    const hardware = stamps[2 * i + 1]!
    if (hardware !== 0n) packet.hwTimestampNs = hardware
    into.push(packet)
    offset += length
  }
  if (packetInfo) addDestinations(native, into, first, count)
  return count
}

/** Bytes of a PacketBatch's arrays per packet: two stamps, offset, length, four address words, scope, port, source, family. */
const FLAT_BYTES_PER_PACKET = 8 + 8 + 4 + 4 + 16 + 4 + 2 + 1 + 1

/** A PacketBatch over arrays of its own (see lib/types.ts). */
class FlatBatch implements PacketBatch {
  readonly data: Buffer
  readonly offsets: Uint32Array
  readonly lengths: Uint32Array
  readonly timestampsNs: BigUint64Array
  readonly hwTimestampsNs: BigUint64Array
  readonly timestampSources: Uint8Array
  readonly families: Uint8Array
  readonly ports: Uint16Array
  readonly addresses: Uint32Array
  readonly scopeIds: Uint32Array
  readonly #native: NativeUdpCom

  constructor(native: NativeUdpCom, readonly count: number, data: Buffer) {
    this.#native = native
    this.data = data
    // One allocation for every array of the batch (the 8-byte ones first, for alignment).
    const memory = new ArrayBuffer(count * FLAT_BYTES_PER_PACKET)
    let at = 0
    const view = <T>(Kind: new (buffer: ArrayBuffer, offset: number, length: number) => T, length: number, size: number): T => {
      const array = new Kind(memory, at, length)
      at += length * size
      return array
    }
    this.timestampsNs = view(BigUint64Array, count, 8)
    this.hwTimestampsNs = view(BigUint64Array, count, 8)
    this.offsets = view(Uint32Array, count, 4)
    this.lengths = view(Uint32Array, count, 4)
    this.addresses = view(Uint32Array, 4 * count, 4)
    this.scopeIds = view(Uint32Array, count, 4)
    this.ports = view(Uint16Array, count, 2)
    this.timestampSources = view(Uint8Array, count, 1)
    this.families = view(Uint8Array, count, 1)
  }

  payload(i: number): Buffer {
    return this.data.subarray(this.offsets[i], this.offsets[i]! + this.lengths[i]!)
  }

  address(i: number): string {
    return this.families[i] === 6 ? names.ipv6(this.#native, this.addresses, 4 * i, this.scopeIds[i]!) : names.ipv4(this.addresses[4 * i]!)
  }
}

/**
 * Moves up to `max` packets out of `native`'s receive ring as one PacketBatch (null when the
 * ring is empty): a few allocations per batch, nothing per packet.
 */
export function takeBatch(native: NativeUdpCom, max: number): PacketBatch | null {
  reserve(Math.min(max, MAX_TAKE), false)
  const { bytes, stamps, info } = scratch
  const count = native.take(bytes, stamps, info, Math.min(max, stamps.length / 2), null)
  if (count === 0) return null
  let total = 0
  for (let i = 0; i < count; i++) total += info[i * INFO_WORDS]!
  const batch = new FlatBatch(native, count, Buffer.from(bytes.buffer.slice(0, total)))
  const { offsets, lengths, timestampsNs, hwTimestampsNs, timestampSources, families, ports, addresses, scopeIds } = batch
  let offset = 0
  for (let i = 0; i < count; i++) {
    const base = i * INFO_WORDS
    const length = info[base]!
    const flags = info[base + 1]!
    offsets[i] = offset
    lengths[i] = length
    offset += length
    timestampSources[i] = flags & 0xff
    families[i] = flags >>> 8 === 6 ? 6 : 4
    ports[i] = info[base + 2]!
    scopeIds[i] = info[base + 3]!
    addresses[4 * i] = info[base + 4]!
    addresses[4 * i + 1] = info[base + 5]!
    addresses[4 * i + 2] = info[base + 6]!
    addresses[4 * i + 3] = info[base + 7]!
  }
  // Arrival and hardware stamps are interleaved in the scratch: copied as 32-bit words, so
  // that no BigInt is made per packet.
  const from = new Uint32Array(stamps.buffer, stamps.byteOffset, 4 * count)
  const arrival = new Uint32Array(timestampsNs.buffer, timestampsNs.byteOffset, 2 * count)
  const hardware = new Uint32Array(hwTimestampsNs.buffer, hwTimestampsNs.byteOffset, 2 * count)
  for (let i = 0; i < count; i++) {
    arrival[2 * i] = from[4 * i]!
    arrival[2 * i + 1] = from[4 * i + 1]!
    hardware[2 * i] = from[4 * i + 2]!
    hardware[2 * i + 1] = from[4 * i + 3]!
  }
  return batch
}

/** The flat form of packets already made as objects (taken ahead for receiveData). */
export function batchOf(native: NativeUdpCom, packets: ReceivedPacket[]): PacketBatch {
  const count = packets.length
  const batch = new FlatBatch(native, count, Buffer.concat(packets.map((p) => p.data)))
  let offset = 0
  for (let i = 0; i < count; i++) {
    const packet = packets[i]!
    batch.offsets[i] = offset
    batch.lengths[i] = packet.data.length
    offset += packet.data.length
    batch.timestampsNs[i] = packet.timestampNs
    batch.hwTimestampsNs[i] = packet.hwTimestampNs ?? 0n
    batch.timestampSources[i] = SOURCES.indexOf(packet.timestampSource)
    batch.ports[i] = packet.port
    if (packet.family === 'IPv6') {
      batch.families[i] = 6
      const [address, scope] = packet.address.split('%')
      const words = ipv6Words(address!)
      batch.addresses.set(words, 4 * i)
      // A scope named by interface keeps its name in address(i) only through the index the
      // kernel gave; numeric scopes are kept, names (rare here: link-local senders) become 0.
      batch.scopeIds[i] = scope === undefined ? 0 : Number(scope) || 0
    } else {
      batch.families[i] = 4
      batch.addresses[4 * i] = packet.address.split('.').reduce((bits, octet) => (bits << 8) | Number(octet), 0) >>> 0
    }
  }
  return batch
}

/** The four big-endian words of an IPv6 address in text. */
function ipv6Words(text: string): number[] {
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const groups = (part: string | undefined): string[] => (part ? part.split(':') : [])
  let left = groups(head)
  let right = groups(tail)
  // An embedded IPv4 address (::ffff:1.2.3.4) is two groups.
  const embed = (parts: string[]): string[] => {
    const last = parts[parts.length - 1]
    if (last === undefined || !last.includes('.')) return parts
    const [a, b, c, d] = last.split('.').map(Number) as [number, number, number, number]
    return [...parts.slice(0, -1), ((a << 8) | b).toString(16), ((c << 8) | d).toString(16)]
  }
  if (tail === undefined) left = embed(left)
  else right = embed(right)
  const zeros = new Array<string>(8 - left.length - right.length).fill('0')
  const all = [...left, ...(tail === undefined ? [] : zeros), ...right].map((g) => parseInt(g, 16))
  return [0, 1, 2, 3].map((w) => ((all[2 * w]! << 16) | all[2 * w + 1]!) >>> 0)
}

/** Gives the packets `into[first..first + count]` the destinations the take wrote. */
function addDestinations(native: NativeUdpCom, into: ReceivedPacket[], first: number, count: number): void {
  const { destinations } = scratch
  interfaces.refresh()
  for (let i = 0; i < count; i++) {
    const base = i * DESTINATION_WORDS
    const family = destinations[base]!
    if (family === 0) continue
    const packet = into[first + i]!
    const index = destinations[base + 1]!
    packet.localAddress = family === 6 ? localNames.ipv6(native, destinations, base + 2, 0) : localNames.ipv4(destinations[base + 2]!)
    packet.interfaceIndex = index
    const name = interfaces.name(native, index)
    if (name !== undefined) packet.interface = name
  }
}

/**
 * Interface names by index, looked up natively once per index and kept for a second at most
 * (an interface may be renamed, or deleted and its index given to another).
 */
class InterfaceNames {
  #names = new Map<number, string | null>()
  #since = 0

  refresh(): void {
    const now = Date.now()
    if (now - this.#since < 1000) return
    this.#names.clear()
    this.#since = now
  }

  name(native: NativeUdpCom, index: number): string | undefined {
    let name = this.#names.get(index)
    if (name === undefined) {
      name = native.interfaceName(index)
      this.#names.set(index, name)
    }
    return name ?? undefined
  }
}

const interfaces = new InterfaceNames()

/**
 * Address strings, made once per sender rather than once per packet: datagrams mostly come
 * from one or a few peers, so the last address seen is kept, and a small map for the rest.
 */
class AddressNames {
  #lastV4 = -1
  #lastV4Name = ''
  #v6Key = ''
  #v6Name = ''
  #many = new Map<string | number, string>()

  ipv4(bits: number): string {
    if (bits === this.#lastV4) return this.#lastV4Name
    let name = this.#many.get(bits)
    if (name === undefined) {
      name = `${bits >>> 24}.${(bits >>> 16) & 255}.${(bits >>> 8) & 255}.${bits & 255}`
      this.#remember(bits, name)
    }
    this.#lastV4 = bits
    this.#lastV4Name = name
    return name
  }

  /** The IPv6 address in `words[at..at + 4]` (big-endian 32-bit words) with scope `scope`. */
  ipv6(native: NativeUdpCom, words: Uint32Array, at: number, scope: number): string {
    const key = `${words[at]},${words[at + 1]},${words[at + 2]},${words[at + 3]},${scope}`
    if (key === this.#v6Key) return this.#v6Name
    let name = this.#many.get(key)
    if (name === undefined) {
      // RFC 5952 text with `%<interface>` for a scope, as the engine formats it (rare enough
      // that a native call per new address costs nothing that matters).
      name = native.formatIpv6([words[at]!, words[at + 1]!, words[at + 2]!, words[at + 3]!], scope)
      this.#remember(key, name)
    }
    this.#v6Key = key
    this.#v6Name = name
    return name
  }

  #remember(key: string | number, name: string): void {
    // A flood from many spoofed sources must not grow memory: start over when full.
    if (this.#many.size >= 1024) this.#many.clear()
    this.#many.set(key, name)
  }
}

const names = new AddressNames()
/** Destination addresses: mostly one or two groups, kept apart from the senders' cache. */
const localNames = new AddressNames()
