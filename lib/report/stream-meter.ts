// What the commands that drive native streams record once per interval: a stream's send side
// (rate, errors, lateness: `udpcom send`, `udpcom ping`) from Stream.stats(), and the receive
// side's stream analysis (loss, reordering, duplicates, jitter, one-way latency and lateness:
// `udpcom recv --analyze`, the replies of `udpcom ping`) from getStreamStats(). Both read the
// engine's cumulative statistics and difference them, so nothing runs per packet here.

import type { HistogramBucket, StreamSendStats, StreamStats } from '../types'
import type { SeriesSpec } from './model'

/** The series of a stream's send side (keys of SendSample). */
export const SEND_SERIES: readonly SeriesSpec[] = [
  { key: 'ratePps', label: 'sent', unit: 'pps', plot: 'rate', description: 'Packets the kernel accepted per second over the interval.' },
  {
    key: 'intervalLatenessP99Ns',
    label: 'p99 lateness (interval)',
    unit: 'ns',
    plot: 'lateness',
    description: "Departure − target time, 99th percentile of the interval's packets, as the upper bound of its doubling bucket (at most 2× high).",
  },
  { key: 'latenessP99Ns', label: 'p99 lateness (since start)', unit: 'ns', plot: 'lateness', description: 'Departure − target time, 99th percentile since the start (within 1%).' },
  { key: 'latenessMaxNs', label: 'max lateness (since start)', unit: 'ns', plot: 'lateness', description: 'Largest departure − target time since the start.' },
  { key: 'errors', label: 'send errors', unit: 'packets', plot: 'loss', description: 'Packets whose send system call failed in the interval (never sent).' },
]

/** One interval of a stream's send side. */
export interface SendSample {
  /** Seconds since the meter started, at the end of the interval. */
  timeS: number
  intervalNs: number
  /** Sent so far. */
  sent: number
  ratePps: number
  bitRate: number
  /** Send errors and late packets in the interval. */
  errors: number
  late: number
  intervalLatenessP99Ns: number | null
  latenessP99Ns: number | null
  latenessMaxNs: number | null
}

/** The upper bound of the bucket holding the `quantile` of the counts `now − before` (null: none). */
function bucketQuantile(now: readonly HistogramBucket[], before: readonly HistogramBucket[], quantile: number): number | null {
  const counts = now.map((bucket, i) => bucket.count - (before[i]?.count ?? 0))
  const total = counts.reduce((sum, count) => sum + count, 0)
  if (total <= 0) return null
  const rank = Math.max(1, Math.ceil(quantile * total))
  let seen = 0
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!
    if (seen >= rank) return now[i]!.upToNs
  }
  return now.at(-1)!.upToNs
}

/** Samples a stream's send statistics once per interval. */
export class SendMeter {
  readonly #read: () => StreamSendStats
  readonly #startedNs = process.hrtime.bigint()
  #intervalStartNs = this.#startedNs
  #last: StreamSendStats | undefined

  constructor(read: () => StreamSendStats) {
    this.#read = read
  }

  /** Seconds since the meter started. */
  elapsedS(now = process.hrtime.bigint()): number {
    return Number(now - this.#startedNs) / 1e9
  }

  /** Ends the current interval: its figures. */
  sample(stats = this.#read()): SendSample {
    const now = process.hrtime.bigint()
    const seconds = Number(now - this.#intervalStartNs) / 1e9
    const last = this.#last
    const sent = stats.sent - (last?.sent ?? 0)
    const sample: SendSample = {
      timeS: this.elapsedS(now),
      intervalNs: Number(now - this.#intervalStartNs),
      sent: stats.sent,
      ratePps: seconds > 0 ? sent / seconds : 0,
      bitRate: seconds > 0 ? ((stats.bytes - (last?.bytes ?? 0)) * 8) / seconds : 0,
      errors: stats.errors - (last?.errors ?? 0),
      late: stats.late - (last?.late ?? 0),
      intervalLatenessP99Ns: bucketQuantile(stats.latenessHistogram, last?.latenessHistogram ?? [], 0.99),
      latenessP99Ns: stats.sent > 0 ? stats.p99LatenessNs : null,
      latenessMaxNs: stats.sent > 0 ? stats.maxLatenessNs : null,
    }
    this.#last = stats
    this.#intervalStartNs = now
    return sample
  }
}

/** The series of the receive side's stream analysis (keys of AnalysisSample). */
export const ANALYSIS_SERIES: readonly SeriesSpec[] = [
  {
    key: 'lost',
    label: 'lost',
    unit: 'packets',
    plot: 'loss',
    description: 'Sequence numbers found missing in the interval (between the first and the highest received; a late arrival fills its loss in).',
  },
  { key: 'reordered', label: 'reordered', unit: 'packets', plot: 'loss', description: 'Datagrams that arrived below the next expected sequence number (RFC 4737), in the interval.' },
  { key: 'duplicates', label: 'duplicates', unit: 'packets', plot: 'loss', description: 'Datagrams whose sequence number had arrived before, in the interval.' },
  { key: 'jitterNs', label: 'interarrival jitter (RFC 3550)', unit: 'ns', plot: 'jitter', description: 'RFC 3550 A.8 interarrival jitter of the stream at the end of the interval.' },
  { key: 'pdvP99Ns', label: 'p99 delay variation (since start)', unit: 'ns', plot: 'jitter', description: 'RFC 5481 §4.2: 99th percentile of one-way delay − its minimum, since the start.' },
  {
    key: 'oneWayLatencyP99Ns',
    label: 'p99 one-way latency (since start)',
    unit: 'ns',
    plot: 'lateness',
    description: 'Arrival − departure in the header (CLOCK_REALTIME: meaningful when the clocks are one), 99th percentile since the start.',
  },
  {
    key: 'arrivalLatenessP99Ns',
    label: 'p99 arrival lateness (since start)',
    unit: 'ns',
    plot: 'lateness',
    description: "Arrival − the header's target time (udpcom header only), 99th percentile since the start.",
  },
]

/** One interval of the stream analysis, over every stream seen (counts summed, times the worst stream's). */
export interface AnalysisSample {
  streams: number
  /** Lost, reordered and duplicates in the interval, and lost so far. */
  lost: number
  lostTotal: number
  reordered: number
  duplicates: number
  jitterNs: number | null
  pdvP99Ns: number | null
  oneWayLatencyP99Ns: number | null
  arrivalLatenessP99Ns: number | null
}

/** The analysis of several streams as one: counts summed; percentiles and jitter the largest of them. */
export interface AnalysisTotals {
  streams: number
  received: number
  lost: number
  duplicates: number
  reordered: number
  maxReorderExtent: number
  jitterNs: number
  ipdvP99Ns: number
  pdvP99Ns: number
  oneWayLatencyP50Ns: number
  oneWayLatencyP99Ns: number
  oneWayLatencyMaxNs: number
  latenessP50Ns: number
  latenessP99Ns: number
  latenessMaxNs: number
}

const SUMMED = ['received', 'lost', 'duplicates', 'reordered'] as const
const WORST = ['maxReorderExtent', 'jitterNs', 'ipdvP99Ns', 'pdvP99Ns', 'oneWayLatencyP50Ns', 'oneWayLatencyP99Ns', 'oneWayLatencyMaxNs', 'latenessP50Ns', 'latenessP99Ns', 'latenessMaxNs'] as const

/** Sums and worst values over `streams`. */
export function analysisTotals(streams: readonly StreamStats[]): AnalysisTotals {
  const totals = { streams: streams.length } as AnalysisTotals
  for (const key of SUMMED) totals[key] = streams.reduce((sum, s) => sum + s[key], 0)
  for (const key of WORST) totals[key] = streams.reduce((worst, s) => Math.max(worst, s[key]), 0)
  return totals
}

/** Samples getStreamStats() once per interval. */
export class AnalysisMeter {
  readonly #read: () => StreamStats[]
  #last: AnalysisTotals | undefined

  constructor(read: () => StreamStats[]) {
    this.#read = read
  }

  /** Ends the current interval: its figures. */
  sample(streams = this.#read()): AnalysisSample {
    const totals = analysisTotals(streams)
    const last = this.#last
    const any = totals.received > 0
    this.#last = totals
    return {
      streams: totals.streams,
      // A late arrival fills its loss in: the interval's change can be negative.
      lost: totals.lost - (last?.lost ?? 0),
      lostTotal: totals.lost,
      reordered: totals.reordered - (last?.reordered ?? 0),
      duplicates: totals.duplicates - (last?.duplicates ?? 0),
      jitterNs: any ? totals.jitterNs : null,
      pdvP99Ns: any ? totals.pdvP99Ns : null,
      oneWayLatencyP99Ns: any ? totals.oneWayLatencyP99Ns : null,
      arrivalLatenessP99Ns: any && totals.latenessP99Ns > 0 ? totals.latenessP99Ns : null,
    }
  }
}
