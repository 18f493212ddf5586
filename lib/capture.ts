// Captures (UdpCom.capture): into a file the native writer thread writes, or into memory that
// is handed here in chunks and written to a Node stream (or kept, for a Buffer). The engine
// copies each datagram on the worker threads and writes off them; nothing here runs per packet.

import type { Writable } from 'node:stream'
import type * as Native from '../native/binding'
import { fromWorkerError, invalidArgType } from './errors'
import type { CaptureOptions, CaptureResult, CaptureStats } from './types'
import { checkNames, read, validateBoolean, validateNumber, validateString } from './validate'

const KNOWN = ['format', 'snaplen', 'sent', 'link']

/** Where a capture writes: a path, a Node writable stream, or memory (no target). */
export type CaptureTarget = string | Writable | null | undefined

/** @internal capture()'s target and options for the binding. */
export function validateCapture(
  target: unknown,
  value: unknown,
): { path: string | null; writable: Writable | null; options: Native.NativeCaptureOptions } {
  let path: string | null = null
  let writable: Writable | null = null
  if (typeof target === 'string') path = target
  else if (isWritable(target)) writable = target
  else if (target !== null && target !== undefined) {
    throw invalidArgType('target', 'of type string or an instance of Writable', target)
  }
  const native: Native.NativeCaptureOptions = {}
  if (value !== undefined) {
    if (typeof value !== 'object' || value === null) throw invalidArgType('options', 'of type object', value)
    const options = value as Record<string, unknown>
    checkNames(options, 'options', KNOWN, 'an option of capture')
    const field = (name: keyof CaptureOptions): unknown => read(options, name, `options.${name}`)
    const format = field('format')
    if (format !== undefined) native.format = validateString(format, 'options.format')
    const snaplen = field('snaplen')
    if (snaplen !== undefined) native.snaplen = validateNumber(snaplen, 'options.snaplen')
    const sent = field('sent')
    if (sent !== undefined) native.sent = validateBoolean(sent, 'options.sent')
    const link = field('link')
    if (link !== undefined) native.link = validateString(link, 'options.link')
  }
  // A file named .pcap gets pcap unless the options say otherwise.
  if (native.format === undefined && path !== null && /\.pcap$/i.test(path)) native.format = 'pcap'
  return { path, writable, options: native }
}

function isWritable(value: unknown): value is Writable {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Writable).write === 'function' &&
    typeof (value as Writable).end === 'function' &&
    typeof (value as Writable).once === 'function'
  )
}

/** @internal What a Capture needs of its instance. */
export interface CaptureHost {
  native: Native.NativeUdpCom
}

/**
 * A capture of what an instance receives (and with `sent`, sends), written as pcap or pcapng
 * off the packet paths (UdpCom.capture).
 */
export class Capture {
  /** The capture's id on its instance. */
  readonly id: number
  readonly #host: CaptureHost
  /** Where memory chunks go: the user's stream, or kept for `buffer`. */
  readonly #writable: Writable | null
  readonly #chunks: Buffer[] | null
  #closing: Promise<CaptureResult> | undefined
  #streamError: Error | undefined
  /** The stream asked us to wait for 'drain': chunks wait natively meanwhile. */
  #waitingForDrain = false

  /** @internal Made by UdpCom.capture. */
  constructor(host: CaptureHost, start: (onData: (() => void) | null) => number, writable: Writable | null, memory: boolean) {
    this.#host = host
    this.#writable = writable
    this.#chunks = memory && writable === null ? [] : null
    if (writable !== null) {
      writable.once('error', (error: Error) => {
        // Nothing more can be written: stop capturing. close() rejects with the error.
        this.#streamError = error
        this.close().catch(() => {})
      })
    }
    this.id = start(memory ? () => this.#moveChunks() : null)
  }

  /** Its counts, as of now. */
  stats(): CaptureStats {
    return this.#host.native.captureStats(this.id) as CaptureStats
  }

  /**
   * Stops capturing and resolves once everything captured is written and the file complete
   * (a writable stream is ended and has finished). Rejects with the writer's error (ENOSPC, ...)
   * or the stream's. Calling it again returns the same promise; stop() and closeSocket() close
   * captures too, and this then resolves at once.
   */
  close(): Promise<CaptureResult> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<CaptureResult> {
    const stats = (await this.#host.native.closeCapture(this.id)) as CaptureStats
    this.#waitingForDrain = false
    this.#moveChunks()
    const writable = this.#writable
    if (writable !== null && this.#streamError === undefined) {
      await new Promise<void>((resolve, reject) => {
        writable.once('error', reject)
        writable.end(() => resolve())
      })
    }
    if (stats.error !== undefined) throw Object.assign(fromWorkerError(stats.error), { stats })
    if (this.#streamError !== undefined) throw this.#streamError
    const result: CaptureResult = { written: stats.written, dropped: stats.dropped }
    if (this.#chunks !== null) result.buffer = Buffer.concat(this.#chunks)
    return result
  }

  /** The writer flushed: move what it wrote to the stream (or keep it). */
  #moveChunks(): void {
    if (this.#waitingForDrain || this.#streamError !== undefined) return
    const bytes = this.#host.native.takeCaptureBytes(this.id)
    if (bytes === null || bytes.length === 0) return
    if (this.#chunks !== null) {
      this.#chunks.push(bytes)
      return
    }
    const writable = this.#writable!
    if (!writable.write(bytes)) {
      // Backpressure: the native side holds what comes next (up to its limit, then counts drops).
      this.#waitingForDrain = true
      writable.once('drain', () => {
        this.#waitingForDrain = false
        this.#moveChunks()
      })
    }
  }
}

type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false
// A compile error here means the native capture statistics and the public ones have drifted apart.
const statsMatch: SameKeys<Native.NativeCaptureStats, CaptureStats> = true
void statsMatch
