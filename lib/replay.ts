// Replays of capture files (UdpCom.replay): the options' types checked here, their values and
// everything per datagram in the engine; `done` settled when the sender says the replay ended.

import type * as Native from '../native/binding'
import { fromWorkerError, invalidArgType } from './errors'
import type { ReplayOptions, ReplayStats } from './types'
import { checkNames, read, validateDestination, validateNumber, validateString } from './validate'

const KNOWN = ['speed', 'startNs', 'loop', 'filter', 'destination']

/** @internal The file argument and options of replay() for the binding. */
export function validateReplay(
  file: unknown,
  value: unknown,
): { path: string | null; bytes: Buffer | null; options: Native.NativeReplayOptions } {
  let path: string | null = null
  let bytes: Buffer | null = null
  if (typeof file === 'string') path = file
  else if (file instanceof Uint8Array) bytes = Buffer.from(file.buffer, file.byteOffset, file.byteLength)
  else throw invalidArgType('file', 'of type string or an instance of Buffer or Uint8Array', file)
  const native: Native.NativeReplayOptions = {}
  if (value === undefined) return { path, bytes, options: native }
  if (typeof value !== 'object' || value === null) throw invalidArgType('options', 'of type object', value)
  const options = value as Record<string, unknown>
  checkNames(options, 'options', KNOWN, 'an option of replay')
  const field = (name: keyof ReplayOptions): unknown => read(options, name, `options.${name}`)
  const speed = field('speed')
  if (speed !== undefined) native.speed = validateNumber(speed, 'options.speed')
  const startNs = field('startNs')
  if (startNs !== undefined) {
    if (typeof startNs !== 'bigint') throw invalidArgType('options.startNs', 'of type bigint', startNs)
    native.startNs = startNs
  }
  const loop = field('loop')
  if (loop !== undefined) native.loops = validateNumber(loop, 'options.loop')
  const filter = field('filter')
  if (filter !== undefined) {
    if (typeof filter !== 'object' || filter === null) throw invalidArgType('options.filter', 'of type object', filter)
    const port = read(filter as { port?: unknown }, 'port', 'options.filter.port')
    if (port !== undefined) native.filterPort = validateNumber(port, 'options.filter.port')
    const address = read(filter as { address?: unknown }, 'address', 'options.filter.address')
    if (address !== undefined) native.filterAddress = validateString(address, 'options.filter.address')
  }
  const destination = field('destination')
  if (typeof destination === 'string') native.destination = destination
  else if (destination !== undefined) native.destinationTo = validateDestination(destination)
  return { path, bytes, options: native }
}

/** @internal What a Replay needs of its instance. */
export interface ReplayHost {
  native: Native.NativeUdpCom
}

/**
 * A capture file replayed by the native sender thread (UdpCom.replay): datagram i leaves at
 * `startNs + (ts_i − ts_0) / speed`, JavaScript does nothing per datagram.
 */
export class Replay {
  /** The replay's id on its instance. */
  readonly id: number
  /**
   * Resolves with the final statistics once the replay ended (completed, stopped, or with its
   * instance); rejects with the file's error (ERR_UDPCOM_PCAP naming the byte offset, or an OS
   * error) after sending what came before it, the statistics as the error's `stats`.
   */
  readonly done: Promise<ReplayStats>
  readonly #host: ReplayHost
  #settle: ((stats: ReplayStats) => void) | undefined
  #fail: ((error: Error) => void) | undefined

  /** @internal Made by UdpCom.replay. */
  constructor(host: ReplayHost, id: number) {
    this.#host = host
    this.id = id
    this.done = new Promise((resolve, reject) => {
      this.#settle = resolve
      this.#fail = reject
    })
  }

  /** Stops it; `done` resolves soon after. */
  stop(): void {
    this.#host.native.stopReplay(this.id)
  }

  /** Its statistics, as of now. */
  stats(): ReplayStats {
    return this.#host.native.replayStats(this.id) as ReplayStats
  }

  /** @internal Settles `done` if the replay ended; returns whether it did. */
  settleIfEnded(): boolean {
    const stats = this.#host.native.replayStats(this.id) as ReplayStats | null
    if (stats === null || stats.state === 'running') return false
    if (stats.error === undefined) {
      this.#settle?.(stats)
    } else {
      this.#fail?.(Object.assign(fromWorkerError(stats.error), { stats }))
    }
    this.#settle = undefined
    this.#fail = undefined
    return true
  }
}

type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false
// A compile error here means the native replay statistics and the public ones have drifted apart.
const statsMatch: SameKeys<Native.NativeReplayStats, ReplayStats> = true
const skippedMatch: SameKeys<Native.NativeReplaySkipped, ReplayStats['skipped']> = true
void statsMatch
void skippedMatch
