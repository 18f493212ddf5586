// What a receiving instance measures without a stream header: arrival counts and rates, the
// datagrams the kernel or the ring dropped, inter-arrival times and their variation from the
// arrival stamps, and the receive path's delivery latency. Used by `udpcom recv` and the panel's
// receiver job. Loss by sequence number, reordering and lateness against a sender's target time
// need the stream header and the native analysis: stream-meter.ts (recv --analyze).

import type { PacketStats, ReceivedPacket } from '../types'
import type { UdpCom } from '../udpcom'
import { LogHistogram } from './histogram'
import type { SeriesSpec } from './model'

/** The series a receiver records once per interval (keys of ReceiveSample). */
export const RECEIVE_SERIES: readonly SeriesSpec[] = [
  { key: 'ratePps', label: 'received', unit: 'pps', plot: 'rate', description: 'Datagrams handed to JavaScript per second over the interval.' },
  {
    key: 'dropped',
    label: 'dropped',
    unit: 'packets',
    plot: 'loss',
    description: 'Datagrams dropped in the interval: by the kernel (socket receive buffer full, SO_RXQ_OVFL) or by udpcom (receive ring full).',
  },
  { key: 'interArrivalMeanNs', label: 'mean inter-arrival', unit: 'ns', plot: 'jitter', description: 'Mean time between consecutive arrival stamps in the interval.' },
  {
    key: 'interArrivalJitterNs',
    label: 'inter-arrival variation',
    unit: 'ns',
    plot: 'jitter',
    description: 'Mean |difference| of consecutive inter-arrival times in the interval: 0 for a perfectly periodic arrival.',
  },
  { key: 'interArrivalMaxNs', label: 'longest gap', unit: 'ns', plot: 'jitter', description: 'Longest time between two consecutive arrivals in the interval.' },
  {
    key: 'deliveryP99Ns',
    label: 'p99 delivery (since start)',
    unit: 'ns',
    plot: 'lateness',
    description: 'Receive-path latency, 99th percentile since the start: kernel arrival stamp → taken out of the receive ring for JavaScript.',
  },
]

/** One interval's figures (null: nothing to measure, e.g. fewer than two arrivals). */
export interface ReceiveSample {
  /** Seconds since the meter started, at the end of the interval. */
  timeS: number
  /** Interval length, ns. */
  intervalNs: number
  /** Counted so far. */
  received: number
  /** Datagrams per second, bits per second (payload) over the interval. */
  ratePps: number
  bitRate: number
  /** Dropped (kernel + ring) in the interval, and so far. */
  dropped: number
  droppedTotal: number
  interArrivalMeanNs: number | null
  interArrivalJitterNs: number | null
  interArrivalMaxNs: number | null
  deliveryP99Ns: number | null
}

/** Per interval and in total: arrivals, inter-arrival times and their variation. */
class Arrivals {
  packets = 0
  bytes = 0
  gaps = 0
  gapSumNs = 0
  gapMaxNs = 0
  variationSumNs = 0
  variations = 0

  reset(): void {
    this.packets = this.bytes = this.gaps = this.gapSumNs = this.gapMaxNs = this.variationSumNs = this.variations = 0
  }
}

export interface ReceiveMeterOptions {
  /** Count this many datagrams, then call onLimit (default: no limit). */
  maxCount?: number
  /** Called once, when maxCount datagrams are counted. */
  onLimit?: () => void
}

/** Consumes a started receiving instance's datagrams (through onPackets) and measures them. */
export class ReceiveMeter {
  readonly #udp: UdpCom
  readonly #maxCount: number
  readonly #onLimit: (() => void) | undefined
  readonly #interval = new Arrivals()
  readonly #startedNs = process.hrtime.bigint()
  #intervalStartNs = this.#startedNs
  #lastArrivalNs: bigint | undefined
  #lastGapNs: number | undefined
  #droppedAtIntervalStart = 0
  /** Datagrams counted (at most maxCount). */
  received = 0
  bytes = 0
  firstArrivalNs: bigint | undefined
  lastArrivalNs: bigint | undefined
  /** Times between consecutive arrival stamps, over the whole run. */
  readonly interArrival = new LogHistogram()
  /** Sum and count of |Δ inter-arrival| over the whole run. */
  variationSumNs = 0
  variations = 0

  constructor(udp: UdpCom, options: ReceiveMeterOptions = {}) {
    this.#udp = udp
    this.#maxCount = options.maxCount ?? Infinity
    this.#onLimit = options.onLimit
    udp.onPackets((packets) => this.#take(packets))
  }

  #take(packets: ReceivedPacket[]): void {
    const room = this.#maxCount - this.received
    if (room <= 0) return
    const counted = packets.length <= room ? packets : packets.slice(0, room)
    const interval = this.#interval
    for (const packet of counted) {
      const arrivalNs = packet.timestampNs
      this.firstArrivalNs ??= arrivalNs
      if (this.#lastArrivalNs !== undefined) {
        // Arrival stamps of one socket are in order; a kernel stamp may still tie.
        const gapNs = Math.max(0, Number(arrivalNs - this.#lastArrivalNs))
        this.interArrival.record(gapNs)
        interval.gaps++
        interval.gapSumNs += gapNs
        if (gapNs > interval.gapMaxNs) interval.gapMaxNs = gapNs
        if (this.#lastGapNs !== undefined) {
          const variationNs = Math.abs(gapNs - this.#lastGapNs)
          interval.variationSumNs += variationNs
          interval.variations++
          this.variationSumNs += variationNs
          this.variations++
        }
        this.#lastGapNs = gapNs
      }
      this.#lastArrivalNs = arrivalNs
      interval.bytes += packet.data.length
    }
    interval.packets += counted.length
    this.received += counted.length
    this.bytes += counted.reduce((sum, packet) => sum + packet.data.length, 0)
    this.lastArrivalNs = this.#lastArrivalNs
    if (this.received >= this.#maxCount) {
      this.#udp.onPackets(null)
      this.#onLimit?.()
    }
  }

  /** The instance's statistics (getPacketStats()). */
  stats(): PacketStats {
    return this.#udp.getPacketStats()
  }

  /** Datagrams dropped so far: by the kernel and by the receive ring. */
  static dropped(stats: PacketStats): number {
    return stats.nKernelDrops + stats.nRecvRingOverflow
  }

  /** Seconds since the meter started. */
  elapsedS(now = process.hrtime.bigint()): number {
    return Number(now - this.#startedNs) / 1e9
  }

  /** Ends the current interval: its figures, and a new interval begins. */
  sample(): ReceiveSample {
    const now = process.hrtime.bigint()
    const intervalNs = Number(now - this.#intervalStartNs)
    const stats = this.stats()
    const droppedTotal = ReceiveMeter.dropped(stats)
    const interval = this.#interval
    const seconds = intervalNs / 1e9
    const sample: ReceiveSample = {
      timeS: this.elapsedS(now),
      intervalNs,
      received: this.received,
      ratePps: seconds > 0 ? interval.packets / seconds : 0,
      bitRate: seconds > 0 ? (interval.bytes * 8) / seconds : 0,
      dropped: droppedTotal - this.#droppedAtIntervalStart,
      droppedTotal,
      interArrivalMeanNs: interval.gaps > 0 ? interval.gapSumNs / interval.gaps : null,
      interArrivalJitterNs: interval.variations > 0 ? interval.variationSumNs / interval.variations : null,
      interArrivalMaxNs: interval.gaps > 0 ? interval.gapMaxNs : null,
      deliveryP99Ns: stats.nPacketsDelivered > 0 && stats.p99DeliveryLatencyNs > 0 ? stats.p99DeliveryLatencyNs : null,
    }
    interval.reset()
    this.#intervalStartNs = now
    this.#droppedAtIntervalStart = droppedTotal
    return sample
  }
}
