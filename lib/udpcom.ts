// The public UdpCom class.
//
// `UdpCom` is a thin object over a `Core`, which holds the native instance and everything on
// the JavaScript side: the receive queue, pending receives and drains, the onPackets listener.
// The split decides what garbage collection may do. While an instance runs, its thread-safe
// function (a GC root) references the Core through `onWake`; the Core references the UdpCom
// only while it is started and ref()ed, so that a referenced running instance stays alive like a
// bound dgram socket, while an unref()ed one nobody references is collected, stopped and its
// pending promises rejected (the FinalizationRegistry below).

import type * as Native from '../native/binding'
import { NativeUdpCom } from './binding'
import { abortError, stateError, stoppedError, type CodedError } from './errors'
import { MAX_TAKE, batchOf, takeBatch, takePackets } from './packets'
import { flatBatchArguments, flattenPackets, timestampArray } from './send'
import { Capture, validateCapture, type CaptureTarget } from './capture'
import { Replay, validateReplay } from './replay'
import { Stream, validateStreamOptions } from './stream'
import type {
  AbortOptions,
  BatchIterationOptions,
  CaptureOptions,
  Destination,
  OnPacketsOptions,
  PacketBatch,
  PacketStats,
  ReceivedPacket,
  ReplayOptions,
  SocketInfo,
  StreamOptions,
  StreamStats,
  TimestampingStatus,
  TxTimestamp,
  UdpComOptions,
} from './types'
import {
  checkNames,
  read,
  validateAbortOptions,
  validateBoolean,
  validateCount,
  validateDestination,
  validateFunctionOrNull,
  validateNumber,
  validateOptionalString,
  validateOptions,
  validatePort,
  validateString,
  validateTimeout,
} from './validate'

/** Most packets one receiveBatch, onPackets batch or getTxTimestamps call may ask for. */
const MAX_BATCH = 1 << 20
/** Packets taken out of the receive ring at once for receiveData, ahead of the readers. */
const READ_AHEAD = 256
/** Most onPackets callbacks per wake-up, so that a flood cannot starve the event loop. */
const CALLBACKS_PER_WAKE = 16

type State = 'created' | 'bound' | 'running' | 'closed'
type Listener = (packets: ReceivedPacket[]) => void
type FlatListener = (batch: PacketBatch) => void

/** A pending receiveData/receiveBatch call, or the pending `next()` of an iterator. */
interface Reader {
  /** 0: one packet (receiveData); n: up to n packets (receiveBatch). */
  max: number
  /** CLOCK_MONOTONIC ns at which it settles empty; undefined: never. */
  deadlineNs: bigint | undefined
  deliver(value: ReceivedPacket | ReceivedPacket[] | null): void
  fail(error: Error): void
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

interface Drain {
  /** Resolves once this many packets have left the send ring. */
  target: number
  resolve(): void
  reject(error: Error): void
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined })

/** Received packets taken out of the native ring for readers still to come, in order. */
class PacketQueue {
  items: ReceivedPacket[] = []
  #head = 0

  get length(): number {
    return this.items.length - this.#head
  }

  shift(): ReceivedPacket {
    const packet = this.items[this.#head++]!
    if (this.#head === this.items.length) this.clear()
    return packet
  }

  /** Up to `max` packets from the front. */
  take(max: number): ReceivedPacket[] {
    const packets = this.items.slice(this.#head, this.#head + max)
    this.#head += packets.length
    if (this.#head === this.items.length) this.clear()
    return packets
  }

  /** Empties the queue; returns how many packets it held. */
  clear(): number {
    const count = this.length
    this.items = []
    this.#head = 0
    return count
  }
}

/** Everything an instance is, but the public object (see the file's header). */
class Core {
  readonly native: Native.NativeUdpCom
  readonly receives: boolean
  /** Received packets carry their destination and interface (the packetInfo option). */
  readonly packetInfo: boolean
  state: State = 'created'
  referenced = true
  /** The public object, while started and referenced (see the file's header). */
  keepAlive: UdpCom | null = null
  readonly queue = new PacketQueue()
  readonly readers: Reader[] = []
  readonly drains: Drain[] = []
  listener: { callback: Listener | FlatListener; maxBatch: number; flat: boolean } | null = null
  /** The native receiver was asked to wake us for packets. */
  #receiveArmed = false
  #drainArmed = false
  #pumpScheduled = false
  /** Packets the queue held when stop() discarded it, over the instance's life. */
  discardedFromQueue = 0
  /** Removes the constructor's abort listener. */
  releaseSignal: (() => void) | undefined
  /** Streams and replays whose `done` is not settled yet. */
  readonly streams = new Set<Stream | Replay>()

  constructor(native: Native.NativeUdpCom, receives: boolean, packetInfo: boolean) {
    this.native = native
    this.receives = receives
    this.packetInfo = packetInfo
  }

  start(facade: UdpCom): void {
    this.native.start(() => this.pump())
    this.state = 'running'
    this.#receiveArmed = false
    this.#drainArmed = false
    this.keepAlive = this.referenced ? facade : null
    if (this.listener) {
      this.native.armReceive(null)
      this.#receiveArmed = true
      this.schedulePump()
    }
  }

  /** After the native instance stopped: settles everything pending with ERR_UDPCOM_STOPPED. */
  stopped(reason: string, next: State): void {
    this.state = next
    this.keepAlive = null
    this.#receiveArmed = false
    this.#drainArmed = false
    this.discardedFromQueue += this.queue.clear()
    const error = stoppedError(reason)
    for (const reader of this.readers.splice(0)) {
      forget(reader)
      reader.fail(error)
    }
    for (const drain of this.drains.splice(0)) {
      forget(drain)
      drain.reject(error)
    }
    this.settleStreams()
  }

  /** Settles the `done` of every stream and replay that ended. */
  settleStreams(): void {
    for (const stream of this.streams) {
      if (stream.settleIfEnded()) this.streams.delete(stream)
    }
  }

  /** Why receiving is not possible now. */
  receiveStateError(): Error {
    if (this.listener && this.state === 'running') {
      return stateError('packets go to the onPackets callback: call onPackets(null) first')
    }
    try {
      this.native.checkCanReceive()
    } catch (error) {
      return error as Error
    }
    return stateError('not started: call initSocket() and start() before receiving')
  }

  canReceive(): boolean {
    return this.state === 'running' && this.receives && this.listener === null
  }

  /**
   * receiveData (`max` 0) and receiveBatch (`max` ≥ 1): a promise of a packet (or null), or of
   * 1..max packets (or []), resolved from the queue when it holds packets.
   */
  receive(max: number, timeoutNs: bigint | undefined, signal: AbortSignal | undefined): Promise<ReceivedPacket | ReceivedPacket[] | null> {
    if (!this.canReceive()) return Promise.reject(this.receiveStateError())
    if (signal?.aborted) return Promise.reject(abortError(signal))
    if (this.readers.length === 0) {
      if (this.queue.length > 0 || this.refill(max) > 0) {
        return Promise.resolve(max === 0 ? this.queue.shift() : this.queue.take(max))
      }
      if (timeoutNs === 0n) return Promise.resolve(max === 0 ? null : [])
    } else if (timeoutNs === 0n) {
      // Readers are waiting, so nothing is queued.
      return Promise.resolve(max === 0 ? null : [])
    }
    return new Promise((resolve, reject) => {
      this.#wait({ max, deadlineNs: deadline(timeoutNs), deliver: resolve, fail: reject, signal, onAbort: undefined })
    })
  }

  /**
   * The next result of a packet (`max` 0) or batch iterator; `end` runs when the iteration is
   * over (done, or failed).
   */
  next(
    max: number,
    signal: AbortSignal | undefined,
    first: boolean,
    end: () => void,
  ): Promise<IteratorResult<ReceivedPacket | ReceivedPacket[]>> {
    if (!this.canReceive()) {
      end()
      // stop() and closeSocket() end a loop that was running; a loop that never ran fails.
      return first || this.listener ? Promise.reject(this.receiveStateError()) : Promise.resolve(DONE)
    }
    if (signal?.aborted) {
      end()
      return Promise.reject(abortError(signal))
    }
    if (this.readers.length === 0 && (this.queue.length > 0 || this.refill(max) > 0)) {
      return Promise.resolve({ done: false, value: max === 0 ? this.queue.shift() : this.queue.take(max) })
    }
    return new Promise((resolve, reject) => {
      this.#wait({
        max,
        deadlineNs: undefined,
        deliver: (value) => resolve({ done: false, value: value! }),
        fail: (error) => {
          end()
          if ((error as CodedError).code === 'ERR_UDPCOM_STOPPED') resolve(DONE)
          else reject(error)
        },
        signal,
        onAbort: undefined,
      })
    })
  }

  #wait(reader: Reader): void {
    if (reader.signal) {
      const { signal } = reader
      reader.onAbort = () => {
        const index = this.readers.indexOf(reader)
        if (index < 0) return
        this.readers.splice(index, 1)
        reader.fail(abortError(signal))
      }
      signal.addEventListener('abort', reader.onAbort, { once: true })
    }
    this.readers.push(reader)
    this.serveReaders()
  }

  /** Moves packets from the native ring into the queue; returns how many. */
  refill(max: number): number {
    return takePackets(this.native, Math.max(max, READ_AHEAD), this.queue.items, this.packetInfo)
  }

  /** Runs when a worker has news (the thread-safe function), or soon after onPackets(). */
  pump(): void {
    if (this.state !== 'running') return
    if (this.streams.size > 0 && this.native.takeStreamsEnded()) this.settleStreams()
    if (this.listener) this.#feedListener()
    else this.serveReaders()
    this.serveDrains()
  }

  schedulePump(): void {
    if (this.#pumpScheduled) return
    this.#pumpScheduled = true
    setImmediate(() => {
      this.#pumpScheduled = false
      this.pump()
    })
  }

  /** Settles waiting readers in call order: packets, then expired timeouts; re-arms the receiver. */
  serveReaders(): void {
    const { readers, queue } = this
    for (;;) {
      while (readers.length > 0 && (queue.length > 0 || this.refill(readers[0]!.max) > 0)) {
        const reader = readers.shift()!
        forget(reader)
        reader.deliver(reader.max === 0 ? queue.shift() : queue.take(reader.max))
      }
      if (readers.length > 0) this.#expire()
      if (readers.length === 0) {
        if (this.#receiveArmed) this.native.disarmReceive()
        this.#receiveArmed = false
        return
      }
      let earliest: bigint | undefined
      for (const reader of readers) {
        if (reader.deadlineNs !== undefined && (earliest === undefined || reader.deadlineNs < earliest)) earliest = reader.deadlineNs
      }
      this.native.armReceive(earliest ?? null)
      this.#receiveArmed = true
      // A packet that arrived before the receiver saw the request has not woken us.
      if (this.native.receivedCount() === 0) return
    }
  }

  #expire(): void {
    let now: bigint | undefined
    for (let i = 0; i < this.readers.length; ) {
      const reader = this.readers[i]!
      if (reader.deadlineNs !== undefined && reader.deadlineNs <= (now ??= process.hrtime.bigint())) {
        this.readers.splice(i, 1)
        forget(reader)
        reader.deliver(reader.max === 0 ? null : [])
      } else {
        i++
      }
    }
  }

  #feedListener(): void {
    for (let round = 0; round < CALLBACKS_PER_WAKE; round++) {
      const listener = this.listener
      if (listener === null || this.state !== 'running') return
      let packets: ReceivedPacket[] | PacketBatch
      if (this.queue.length > 0) {
        packets = this.queue.take(listener.maxBatch)
        if (listener.flat) packets = batchOf(this.native, packets)
      } else if (listener.flat) {
        const batch = takeBatch(this.native, listener.maxBatch)
        if (batch === null) return
        packets = batch
      } else {
        packets = []
        if (takePackets(this.native, listener.maxBatch, packets, this.packetInfo) === 0) return
      }
      let threw = true
      try {
        ;(listener.callback as (packets: ReceivedPacket[] | PacketBatch) => void).call(undefined, packets)
        threw = false
      } finally {
        // An exception is the caller's uncaught exception, as in a 'message' listener; the
        // packets still waiting are delivered on a later turn.
        if (threw) this.schedulePump()
      }
    }
    // More may be waiting: go on after other callbacks of the event loop had their turn.
    this.schedulePump()
  }

  setListener(callback: Listener | FlatListener | null, maxBatch: number, flat = false): void {
    if (this.state !== 'running' || !this.receives) throw this.receiveStateError()
    if (callback !== null && this.readers.length > 0) {
      throw stateError('receiveData/receiveBatch calls are pending: onPackets would starve them')
    }
    this.listener = callback === null ? null : { callback, maxBatch, flat }
    if (this.listener) {
      this.native.armReceive(null)
      this.#receiveArmed = true
      // Packets already queued are delivered from the next tick.
      this.schedulePump()
    } else if (this.readers.length === 0) {
      this.native.disarmReceive()
      this.#receiveArmed = false
    }
  }

  drain(signal: AbortSignal | undefined): Promise<void> {
    if (this.state === 'closed') {
      try {
        this.native.checkOpen()
      } catch (error) {
        return Promise.reject(error)
      }
    }
    if (signal?.aborted) return Promise.reject(abortError(signal))
    if (this.state !== 'running') return Promise.resolve()
    const target = this.native.queuedTotal()
    if (this.native.completedTotal() >= target) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const drain: Drain = { target, resolve, reject, signal, onAbort: undefined }
      if (signal) {
        drain.onAbort = () => {
          const index = this.drains.indexOf(drain)
          if (index < 0) return
          this.drains.splice(index, 1)
          reject(abortError(signal))
        }
        signal.addEventListener('abort', drain.onAbort, { once: true })
      }
      this.drains.push(drain)
      this.serveDrains()
    })
  }

  /** Resolves the drains whose target the sender reached; tells it the next target. */
  serveDrains(): void {
    const { drains } = this
    if (drains.length === 0 && !this.#drainArmed) return
    for (;;) {
      const completed = this.native.completedTotal()
      while (drains.length > 0 && drains[0]!.target <= completed) {
        const drain = drains.shift()!
        forget(drain)
        drain.resolve()
      }
      if (drains.length === 0) {
        this.native.setDrainTarget(-1)
        this.#drainArmed = false
        return
      }
      this.native.setDrainTarget(drains[0]!.target)
      this.#drainArmed = true
      // The sender may have passed the target before it saw it.
      if (this.native.completedTotal() < drains[0]!.target) return
    }
  }

  stats(): PacketStats {
    const stats: PacketStats = this.native.stats() as NativeStats
    // The native side counts a packet as delivered once it is taken out of the ring. Those in
    // the queue are still waiting for a reader, and those stop() discarded from it never
    // reached one.
    const queued = this.queue.length
    stats.nPacketsDelivered -= queued + this.discardedFromQueue
    stats.recvQueueLength += queued
    stats.nRecvDiscarded += this.discardedFromQueue
    return stats
  }

  /** The public object was garbage-collected (unreferenced, nothing refers to it). */
  collected(): void {
    this.releaseSignal?.()
    if (this.state !== 'running') return
    this.native.stop()
    this.stopped('the UdpCom instance was garbage-collected', 'bound')
  }
}

/** What the binding's statistics must be: exactly the public fields (checked below). */
type NativeStats = Native.PacketStats & PacketStats
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false
// A compile error here means the native statistics and the public PacketStats have drifted apart.
const statsMatch: SameKeys<Native.PacketStats, PacketStats> = true
const timestampingMatch: SameKeys<Native.TimestampingStatus, TimestampingStatus> = true
const analysisMatch: SameKeys<Native.NativeStreamAnalysis, StreamStats> = true
const socketInfoMatch: SameKeys<Native.SocketStatus, SocketInfo> = true
const multicastMatch: SameKeys<Native.MulticastStatus, SocketInfo['multicast']> = true
const membershipMatch: SameKeys<Native.MembershipStatus, SocketInfo['memberships'][number]> = true
void [statsMatch, timestampingMatch, analysisMatch, socketInfoMatch, multicastMatch, membershipMatch]

/** Removes an abort listener that is no longer needed. */
function forget(pending: { signal: AbortSignal | undefined; onAbort: (() => void) | undefined }): void {
  if (pending.onAbort) pending.signal!.removeEventListener('abort', pending.onAbort)
}

function deadline(timeoutNs: bigint | undefined): bigint | undefined {
  return timeoutNs === undefined ? undefined : process.hrtime.bigint() + timeoutNs
}

/** Stops what an unreferenced instance nobody refers to any more was running. */
const collector = new FinalizationRegistry<Core>((core) => core.collected())

/** An async iterator over received packets (or batches); see UdpCom.packets(). */
class ReceiveIterator<T> implements AsyncIterableIterator<T> {
  readonly #core: Core
  readonly #max: number
  readonly #signal: AbortSignal | undefined
  #first = true
  #done = false

  constructor(core: Core, max: number, signal: AbortSignal | undefined) {
    this.#core = core
    this.#max = max
    this.#signal = signal
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#done) return Promise.resolve(DONE)
    const first = this.#first
    this.#first = false
    return this.#core.next(this.#max, this.#signal, first, this.#end) as Promise<IteratorResult<T>>
  }

  readonly #end = (): void => {
    this.#done = true
  }

  /** Leaving a loop (break, throw) ends the iteration; the instance stays open. */
  return(): Promise<IteratorResult<T>> {
    this.#done = true
    return Promise.resolve(DONE)
  }

  [Symbol.asyncIterator](): this {
    return this
  }
}

/**
 * A UDP endpoint whose native threads send packets at exact CLOCK_MONOTONIC times and receive
 * packets into a ring that JavaScript reads from.
 */
export class UdpCom implements AsyncIterable<ReceivedPacket> {
  readonly #core: Core
  readonly #native: Native.NativeUdpCom

  /**
   * Checks the arguments; no socket is opened until initSocket(). `remotePort` 0 means
   * unconnected: the instance hears anyone and sends with sendTo().
   */
  constructor(localIp: string, localPort: number, remoteIp: string, remotePort: number, options?: UdpComOptions) {
    validateString(localIp, 'localIp')
    validateNumber(localPort, 'localPort')
    validateString(remoteIp, 'remoteIp')
    validateNumber(remotePort, 'remotePort')
    const { native: nativeOptions, signal } = validateOptions(options)
    this.#native = new NativeUdpCom(localIp, localPort, remoteIp, remotePort, nativeOptions)
    const core = new Core(this.#native, nativeOptions.direction !== 0, nativeOptions.packetInfo === true)
    this.#core = core
    collector.register(this, core, core)
    if (signal) {
      const onAbort = (): void => {
        if (core.state !== 'closed') closeCore(core)
      }
      if (signal.aborted) onAbort()
      else {
        signal.addEventListener('abort', onAbort, { once: true })
        core.releaseSignal = () => signal.removeEventListener('abort', onAbort)
      }
    }
  }

  /** The bound port once initSocket() ran (useful with port 0). */
  get localPort(): number {
    return this.#native.localPort
  }

  /** Creates the socket, binds it to the local address and connects it to the remote one (unless remotePort is 0). */
  initSocket(): void {
    this.#native.initSocket()
    this.#core.state = 'bound'
  }

  /** Starts the worker thread(s) for the direction, pinned and real-time as configured. */
  start(): void {
    this.#core.start(this)
  }

  /**
   * Copies `data` into the send ring to leave at `timestampNs` (CLOCK_MONOTONIC ns; omitted or
   * 0n: as soon as possible). Returns false, queuing nothing, when the ring is full.
   */
  sendData(data: Uint8Array, timestampNs?: bigint): boolean {
    return this.#native.sendData(data, timestampNs)
  }

  /**
   * Like sendData, to `address`:`port`, on an unconnected instance (remotePort 0): same ring,
   * same order and timing. On a connected instance it throws ERR_SOCKET_DGRAM_IS_CONNECTED, as
   * node:dgram does. The address must be of the socket's family (IPv6 may carry `%scope`).
   */
  sendTo(data: Uint8Array, address: string, port: number, timestampNs?: bigint): boolean {
    validateString(address, 'address')
    return this.#native.sendTo(data, address, validatePort(port), timestampNs)
  }

  /**
   * Copies packets into the send ring in order, each to leave at its timestamp (omitted: all as
   * soon as possible), and returns how many were queued: it stops at the first that does not
   * fit. Every argument is checked before anything is queued. With `destination`, the batch goes
   * there (an unconnected instance, as sendTo). The flat form `sendBatch(bytes, lengths,
   * timestampsNs?, destination?)` takes the payloads back to back in one Uint8Array with their
   * lengths in a Uint32Array (packet i is the lengths[i] bytes after packet i − 1): no copy in
   * JavaScript, for feeds of hundreds of thousands of packets per second and more.
   */
  sendBatch(packets: Uint8Array[], timestampsNs?: BigInt64Array | BigUint64Array | bigint[] | null, destination?: Destination): number
  sendBatch(
    bytes: Uint8Array,
    lengths: Uint32Array,
    timestampsNs?: BigInt64Array | BigUint64Array | bigint[] | null,
    destination?: Destination,
  ): number
  sendBatch(
    packetsOrBytes: Uint8Array[] | Uint8Array,
    lengthsOrTimestamps?: Uint32Array | BigInt64Array | BigUint64Array | bigint[] | null,
    timestampsOrDestination?: BigInt64Array | BigUint64Array | bigint[] | null | Destination,
    flatDestination?: Destination,
  ): number {
    if (!Array.isArray(packetsOrBytes)) {
      // The flat form: payloads back to back, their lengths beside them; no copy in JavaScript.
      const { bytes, lengths } = flatBatchArguments(packetsOrBytes, lengthsOrTimestamps)
      const to = flatDestination === undefined ? undefined : validateDestination(flatDestination)
      const stamps = timestampArray(timestampsOrDestination)
      return this.#native.sendFlat(bytes, lengths, lengths.length, stamps ?? null, to ?? null)
    }
    const destination = timestampsOrDestination as Destination | undefined
    const to = destination === undefined ? undefined : validateDestination(destination)
    const stamps = timestampArray(lengthsOrTimestamps)
    const { bytes, lengths, count } = flattenPackets(packetsOrBytes)
    return this.#native.sendFlat(bytes, lengths, count, stamps ?? null, to ?? null)
  }

  /**
   * Starts a stream of packets generated natively on the sender thread: tick i leaves at exactly
   * `startNs + i × period` (computed from i, so an hour has no drift and a late tick does not
   * shift the next), `burst` packets per tick, with a udpcom or iperf 2 header written right
   * before the system call. JavaScript does nothing per packet. Streams share the sender and
   * its timing path with queued packets; several may run at once.
   */
  startStream(options: StreamOptions): Stream {
    const native = validateStreamOptions(options)
    const stream = new Stream(this.#core, this.#native.startStream(native))
    this.#core.streams.add(stream)
    return stream
  }

  /**
   * Replays a pcap or pcapng file (a path, streamed with bounded memory; or the bytes of one):
   * datagram i leaves at `startNs + (ts_i − ts_0) / speed`, every deadline from one absolute
   * start, on the sender thread's timing path with queued packets and streams. What is not a
   * replayable UDP datagram is skipped and counted by reason (`stats().skipped`). A file that
   * is corrupt from some byte on rejects `done` with ERR_UDPCOM_PCAP after sending what came
   * before.
   */
  replay(file: string | Uint8Array, options?: ReplayOptions): Replay {
    const { path, bytes, options: native } = validateReplay(file, options)
    const replay = new Replay(this.#core, this.#native.startReplay(path, bytes, native))
    this.#core.streams.add(replay)
    return replay
  }

  /**
   * Captures every datagram this instance receives (and with `sent`, sends) into a pcap or
   * pcapng file that Wireshark, tshark and tcpdump read: kernel receive stamps (turned on if
   * timestamping is off), IP and UDP headers made from the real addresses and ports. `target`
   * is a path, a Node writable stream (ended by close()), or nothing: close() then resolves
   * with the file as `buffer`. Writing happens off the packet paths; what the disk or stream
   * cannot take is dropped from the capture and counted, never from delivery.
   */
  capture(target?: CaptureTarget, options?: CaptureOptions): Capture {
    const { path, writable, options: native } = validateCapture(target, options)
    const start = (onData: (() => void) | null): number => this.#native.startCapture(path, onData, native)
    return new Capture(this.#core, start, writable, path === null)
  }

  /**
   * Resolves with the next received packet, or null once `timeoutNs` has passed (omitted: wait
   * until a packet arrives; 0: only what is already queued). Never throws: errors reject.
   */
  receiveData(timeoutNs?: bigint | number, options?: AbortOptions): Promise<ReceivedPacket | null> {
    let timeout: bigint | undefined
    let signal: AbortSignal | undefined
    try {
      timeout = validateTimeout(timeoutNs, 'timeoutNs')
      signal = validateAbortOptions(options, 'options')
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#core.receive(0, timeout, signal) as Promise<ReceivedPacket | null>
  }

  /**
   * Resolves as soon as at least one packet is there, with up to `max` packets in arrival
   * order, or with [] once `timeoutNs` has passed. JavaScript is woken once per batch.
   */
  receiveBatch(max: number, timeoutNs?: bigint | number, options?: AbortOptions): Promise<ReceivedPacket[]> {
    let count: number
    let timeout: bigint | undefined
    let signal: AbortSignal | undefined
    try {
      timeout = validateTimeout(timeoutNs, 'timeoutNs')
      count = validateCount(max, 'max', MAX_BATCH)
      signal = validateAbortOptions(options, 'options')
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#core.receive(count, timeout, signal) as Promise<ReceivedPacket[]>
  }

  /**
   * Delivers every received packet to `callback`, in arrival order and in batches of up to
   * `maxBatch` (default 1024), with no Promise per packet; `null` stops it. While a callback is
   * set, receiveData/receiveBatch reject with ERR_UDPCOM_STATE. A callback that cannot keep up
   * does not grow memory: the receive ring fills and further packets are dropped and counted
   * (nRecvRingOverflow). An exception thrown by the callback is an uncaught exception, as in a
   * 'message' listener. With `{ flat: true }` the callback gets one PacketBatch per batch (a
   * Buffer of payloads and typed arrays: nothing allocated per packet), for high rates.
   */
  onPackets(callback: ((packets: ReceivedPacket[]) => void) | null, maxBatch?: number): void
  onPackets(callback: (batch: PacketBatch) => void, options: OnPacketsOptions & { flat: true }): void
  onPackets(callback: ((packets: ReceivedPacket[]) => void) | null, options?: OnPacketsOptions & { flat?: false }): void
  onPackets(
    callback: ((packets: ReceivedPacket[]) => void) | ((batch: PacketBatch) => void) | null,
    maxBatchOrOptions?: number | OnPacketsOptions,
  ): void {
    const listener = validateFunctionOrNull<Listener | FlatListener>(callback, 'callback')
    let maxBatch: unknown = maxBatchOrOptions
    let flat = false
    if (typeof maxBatchOrOptions === 'object' && maxBatchOrOptions !== null) {
      const options = maxBatchOrOptions as Record<string, unknown>
      checkNames(options, 'options', ['maxBatch', 'flat'], 'an option of onPackets')
      maxBatch = read(options, 'maxBatch', 'options.maxBatch')
      const flatOption = read(options, 'flat', 'options.flat')
      flat = flatOption === undefined ? false : validateBoolean(flatOption, 'options.flat')
    }
    const name = typeof maxBatchOrOptions === 'object' ? 'options.maxBatch' : 'maxBatch'
    const max = maxBatch === undefined ? 1024 : Math.min(validateCount(maxBatch, name, MAX_BATCH), MAX_TAKE)
    this.#core.setListener(listener, max, flat)
  }


  /**
   * The received packets in arrival order, as an async iterator (also `for await (const p of
   * udp)`). Leaving the loop ends the iteration, not the instance; stop() and closeSocket() end
   * the loop without an error; aborting `signal` rejects the pending step with an AbortError.
   */
  packets(options?: AbortOptions): AsyncIterableIterator<ReceivedPacket> {
    return new ReceiveIterator<ReceivedPacket>(this.#core, 0, validateAbortOptions(options, 'options'))
  }

  /** Like packets(), in batches of up to `max` (default 1024) as they arrive. */
  batches(options?: BatchIterationOptions): AsyncIterableIterator<ReceivedPacket[]> {
    const signal = validateAbortOptions(options, 'options')
    const max = options?.max === undefined ? 1024 : validateCount(options.max, 'options.max', MAX_BATCH)
    return new ReceiveIterator<ReceivedPacket[]>(this.#core, max, signal)
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ReceivedPacket> {
    return this.packets()
  }

  /** Resolves once every packet queued so far has left (or failed). */
  drain(options?: AbortOptions): Promise<void> {
    let signal: AbortSignal | undefined
    try {
      signal = validateAbortOptions(options, 'options')
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#core.drain(signal)
  }

  /**
   * Joins the multicast group `multicastAddress` on `multicastInterface` (a name such as
   * 'eth1', or one of its addresses; IPv6 groups are joined by interface index, which a name,
   * an address or the group's `%scope` gives). Default: the interface of the `interface`
   * option, else the one the route to the group goes through. Works before start() and while
   * the workers run; needs initSocket(). The kernel's refusals throw its errno (EADDRINUSE:
   * joined already; ENOBUFS: more than net.ipv4.igmp_max_memberships groups) with syscall
   * 'setsockopt'. As node:dgram's addMembership.
   */
  addMembership(multicastAddress: string, multicastInterface?: string): void {
    this.#changeMembership(true, undefined, multicastAddress, multicastInterface)
  }

  /** Leaves what addMembership joined with the same arguments (EADDRNOTAVAIL if it was not joined). */
  dropMembership(multicastAddress: string, multicastInterface?: string): void {
    this.#changeMembership(false, undefined, multicastAddress, multicastInterface)
  }

  /**
   * Joins `groupAddress` for datagrams from `sourceAddress` only (source-specific multicast,
   * IGMPv3 / MLDv2), on `multicastInterface` as addMembership. As node:dgram's.
   */
  addSourceSpecificMembership(sourceAddress: string, groupAddress: string, multicastInterface?: string): void {
    validateString(sourceAddress, 'sourceAddress')
    this.#changeMembership(true, sourceAddress, groupAddress, multicastInterface, 'groupAddress')
  }

  /** Leaves what addSourceSpecificMembership joined with the same arguments. */
  dropSourceSpecificMembership(sourceAddress: string, groupAddress: string, multicastInterface?: string): void {
    validateString(sourceAddress, 'sourceAddress')
    this.#changeMembership(false, sourceAddress, groupAddress, multicastInterface, 'groupAddress')
  }

  #changeMembership(join: boolean, source: string | undefined, group: string, iface: string | undefined, groupName = 'multicastAddress'): void {
    validateString(group, groupName)
    const multicastInterface = validateOptionalString(iface, 'multicastInterface')
    this.#native.changeMembership(join, source, group, multicastInterface)
  }

  /**
   * What is in effect on the socket, read back from the kernel: addresses, the interface it is
   * bound to, buffer sizes, TTL, DSCP, socket priority, broadcast and reuse flags, outgoing
   * multicast, packet info and the groups joined. Needs initSocket().
   */
  getSocketInfo(): SocketInfo {
    return this.#native.socketInfo() as SocketInfo
  }

  /** Timestamping of the socket: the interface, what it supports and what is in use. Needs initSocket(). */
  getTimestampingInfo(): TimestampingStatus {
    return this.#native.timestampingInfo() as TimestampingStatus
  }

  /**
   * Takes up to `max` (default all) transmit timestamps read so far, in the order packets left:
   * `{ id, txTimestampNs }` where id is the packet's queue order. Kept in a ring of `capacity`
   * entries; stamps nobody takes in time are dropped and counted (nTxTimestampsDropped).
   */
  getTxTimestamps(max?: number): TxTimestamp[] {
    return this.#native.txTimestamps(max === undefined ? MAX_BATCH : validateCount(max, 'max', MAX_BATCH))
  }

  /** The analysis of every stream received so far (`analyze` option), in order of first arrival. */
  getStreamStats(): StreamStats[] {
    return this.#native.streamAnalysis().map((s) => ({ ...s, streamId: s.streamId ?? null }))
  }

  /** Counters and latency statistics since the instance was created. */
  getPacketStats(): PacketStats {
    return this.#core.stats()
  }

  /**
   * Stops and joins the worker thread(s) (within 100 ms); queued packets are discarded and
   * counted, pending receives and drains reject with ERR_UDPCOM_STOPPED. start() works again.
   */
  stop(): void {
    this.#native.stop()
    this.#core.stopped('stop() was called', this.#core.state === 'created' ? 'created' : 'bound')
  }

  /** Stops if needed and closes the socket; every later call throws ERR_UDPCOM_STATE. */
  closeSocket(): void {
    closeCore(this.#core)
  }

  /** Lets a started instance keep the process alive (the default). */
  ref(): this {
    this.#native.setReferenced(true)
    this.#core.referenced = true
    if (this.#core.state === 'running') this.#core.keepAlive = this
    return this
  }

  /** Lets the process exit while this instance is started. */
  unref(): this {
    this.#native.setReferenced(false)
    this.#core.referenced = false
    this.#core.keepAlive = null
    return this
  }

  /** Closes the instance (`using`); does nothing if it is closed already. */
  [Symbol.dispose](): void {
    if (this.#core.state !== 'closed') closeCore(this.#core)
  }

  /** Closes the instance (`await using`), as dgram's asyncDispose does. */
  [Symbol.asyncDispose](): Promise<void> {
    this[Symbol.dispose]()
    return Promise.resolve()
  }
}

function closeCore(core: Core): void {
  core.native.close()
  core.listener = null
  core.stopped('closeSocket() was called', 'closed')
  core.releaseSignal?.()
  core.releaseSignal = undefined
  collector.unregister(core)
}
