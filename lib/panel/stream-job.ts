// The panel's stream job: a send-only UdpCom connected to the destination from the form, with
// one native stream (startStream: every packet timed by the sender thread), sampled from the
// stream's statistics and stopped with stream.stop(). A stream from the panel always ends
// (durationS ≥ 1), and its rate, size and burst are capped by the panel's limits.

import { isIP } from 'node:net'

import type { SeriesSpec } from '../report/model'
import type { Stream } from '../stream'
import type { StreamSendStats } from '../types'
import { UdpCom } from '../udpcom'
import { FormError, type JobKind, type RunningJob } from './jobs'
import type { FieldSpec, PanelLimits } from './protocol'

export interface StreamParams extends Record<string, string | number> {
  destination: string
  ratePps: number
  size: number
  burst: number
  durationS: number
  header: string
  /** 0: normal scheduling. */
  priority: number
  /** -1: not pinned. */
  cpu: number
}

/** What a stream's samples carry (keys of the values sample() returns, in this order). */
export const STREAM_SERIES: readonly SeriesSpec[] = [
  { key: 'ratePps', label: 'sent', unit: 'pps', plot: 'rate', description: 'Packets the kernel accepted per second over the interval.' },
  { key: 'latenessP99Ns', label: 'p99 lateness (since start)', unit: 'ns', plot: 'lateness', description: 'Departure − target time, 99th percentile since the start.' },
  { key: 'latenessMaxNs', label: 'max lateness (since start)', unit: 'ns', plot: 'lateness', description: 'Largest departure − target time since the start.' },
  { key: 'late', label: 'late', unit: 'packets', plot: 'loss', description: 'Packets that left more than the spin window after their time, in the interval.' },
  { key: 'errors', label: 'send errors', unit: 'packets', plot: 'loss', description: 'Packets whose send failed in the interval.' },
]

/** `HOST:PORT` ([v6]:PORT) of a destination: an IP literal and a port 1..65535. */
export function parseDestination(text: string): { address: string; port: number } {
  const match = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text)
  const address = match?.[1] === 'localhost' ? '127.0.0.1' : match?.[1]
  const port = Number(match?.[2])
  if (address === undefined || isIP(address.split('%')[0]!) === 0 || !(port >= 1 && port <= 65_535)) {
    throw new FormError(`destination: '${text}' is not HOST:PORT with an IP address (127.0.0.1:5000, [::1]:5000)`)
  }
  return { address, port }
}

/** A running stream. `stream` and `udp` are its own (tests compare the page with their statistics). */
export class StreamJob implements RunningJob {
  readonly title: string
  readonly udp: UdpCom
  readonly stream: Stream
  readonly ended: Promise<string | null>
  #stopped = false
  #final: StreamSendStats | undefined
  #last = { atMs: Date.now(), sent: 0, late: 0, errors: 0 }

  constructor(params: StreamParams) {
    const { address, port } = parseDestination(params.destination)
    const local = address.includes(':') ? '::' : '0.0.0.0'
    this.udp = new UdpCom(local, 0, address, port, {
      direction: 0,
      ...(params.priority > 0 ? { priority: params.priority } : {}),
      ...(params.cpu >= 0 ? { cpu: params.cpu } : {}),
    })
    try {
      this.udp.initSocket()
      this.udp.start()
      this.stream = this.udp.startStream({
        ratePps: params.ratePps,
        size: params.size,
        burst: params.burst,
        durationNs: params.durationS * 1e9,
        header: params.header as 'udpcom' | 'iperf2' | 'none',
      })
    } catch (error) {
      this.udp.closeSocket()
      throw error
    }
    this.title = `stream to ${params.destination}, ${params.ratePps} pps × ${params.size} bytes`
    // Completed (its duration is over) or stopped: the instance closes with it.
    this.ended = this.stream.done.then((stats) => {
      this.#close(stats)
      return null
    })
  }

  sample(): { values: (number | null)[]; totals: Record<string, number | string | null> } {
    const stats = this.#final ?? this.stream.stats()
    const atMs = Date.now()
    const seconds = (atMs - this.#last.atMs) / 1000
    const sent = stats.sent > 0
    const ratePps = seconds > 0 ? (stats.sent - this.#last.sent) / seconds : 0
    const values = [ratePps, sent ? stats.p99LatenessNs : null, sent ? stats.maxLatenessNs : null, stats.late - this.#last.late, stats.errors - this.#last.errors]
    this.#last = { atMs, sent: stats.sent, late: stats.late, errors: stats.errors }
    return {
      values,
      totals: {
        state: stats.state,
        sent: stats.sent,
        bytes: stats.bytes,
        errors: stats.errors,
        late: stats.late,
        ratePps,
        p50LatenessNs: sent ? stats.p50LatenessNs : null,
        p99LatenessNs: sent ? stats.p99LatenessNs : null,
        maxLatenessNs: sent ? stats.maxLatenessNs : null,
      },
    }
  }

  stop(): void {
    if (this.#stopped) return
    this.stream.stop()
    this.#close(undefined)
    // Stopped from the panel (the instance's stop() may have come before the stream noticed).
    if (this.#final?.state === 'instanceStopped') this.#final = { ...this.#final, state: 'stopped' }
  }

  /** Stops the instance, keeps the stream's final statistics (`stats`, or read once the sender stopped), closes it. */
  #close(stats: StreamSendStats | undefined): void {
    if (this.#stopped) return
    this.#stopped = true
    // After stop() the sender thread has let go of the stream: its figures are final.
    this.udp.stop()
    this.#final = stats ?? this.stream.stats()
    this.udp.closeSocket()
  }
}

export const streamJobKind: JobKind<StreamParams> = {
  kind: 'stream',
  title: 'Stream',
  description: 'Sends a timed stream of packets (the native sender thread times each one) to HOST:PORT for a while: rate, lateness, late packets, send errors.',
  series: STREAM_SERIES,
  fields(limits: PanelLimits): FieldSpec[] {
    return [
      { name: 'destination', label: 'destination', type: 'text', help: 'HOST:PORT with an IP address: 127.0.0.1:5000, [::1]:5000' },
      { name: 'ratePps', label: 'rate', type: 'number', default: 1000, min: 1, max: limits.maxRatePps, step: 1, unit: 'pps', help: `packets per second, at most ${limits.maxRatePps}` },
      { name: 'size', label: 'size', type: 'number', default: 64, min: 0, max: limits.maxSizeBytes, step: 1, unit: 'bytes', help: `payload bytes (the header's included), at most ${limits.maxSizeBytes}` },
      { name: 'burst', label: 'burst', type: 'number', default: 1, min: 1, max: limits.maxBurst, step: 1, unit: 'packets', help: 'packets per tick, back to back' },
      { name: 'durationS', label: 'duration', type: 'number', default: 10, min: 1, max: limits.maxDurationS, step: 1, unit: 's', help: 'a stream from the panel always ends' },
      { name: 'header', label: 'header', type: 'select', default: 'udpcom', options: ['udpcom', 'iperf2', 'none'], help: "udpcom's (sequence, target and departure time), iperf 2's (for iperf -s -u), or none" },
      { name: 'priority', label: 'priority', type: 'number', default: 0, min: 0, max: 99, step: 1, help: 'SCHED_FIFO priority of the sender thread; 0: normal scheduling' },
      { name: 'cpu', label: 'cpu', type: 'number', default: -1, min: -1, max: 1023, step: 1, help: 'CPU to pin the sender thread to; -1: not pinned' },
    ]
  },
  parse(values) {
    parseDestination(values.destination as string)
    return {
      destination: values.destination as string,
      ratePps: values.ratePps as number,
      size: values.size as number,
      burst: values.burst as number,
      durationS: values.durationS as number,
      header: values.header as string,
      priority: values.priority as number,
      cpu: values.cpu as number,
    }
  },
  start(params) {
    return new StreamJob(params)
  },
}
