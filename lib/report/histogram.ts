// A histogram of nanosecond values with 8 buckets per doubling (bounds about 9% apart), for
// what the command line measures itself in JavaScript (inter-arrival times); and the
// conversion of the engine's doubling-bucket histograms into the report's model.

import type { HistogramBucket } from '../types'
import type { Histogram } from './model'

/** Buckets per doubling. */
const STEPS = 8
/** The first bucket holds 0..16 ns (the engine's histograms start there too). */
const FIRST_BOUND_NS = 16
/** Buckets up to 16 ns × 2^44 (about 3 days), enough for any duration. */
const BUCKETS = 44 * STEPS + 1

/** Upper bound of bucket `index`, ns: ⌊16 × 2^(index/8)⌋ (strictly increasing). */
const BOUNDS_NS: readonly number[] = Array.from({ length: BUCKETS }, (_, index) => Math.floor(FIRST_BOUND_NS * 2 ** (index / STEPS)))

/** The bucket of `ns`: the first whose bound is at least `ns`. */
function bucketOf(ns: number): number {
  if (ns <= FIRST_BOUND_NS) return 0
  let index = Math.min(BUCKETS - 1, Math.ceil(STEPS * Math.log2(ns / FIRST_BOUND_NS)))
  // Floating point and the floor of the bounds can put the estimate one off either way.
  while (index > 0 && BOUNDS_NS[index - 1]! >= ns) index--
  while (index < BUCKETS - 1 && BOUNDS_NS[index]! < ns) index++
  return index
}

/** Counts of ns values in buckets about 9% wide; exact count, sum, minimum and maximum. */
export class LogHistogram {
  readonly #counts = new Float64Array(BUCKETS)
  count = 0
  sumNs = 0
  minNs = Infinity
  maxNs = 0

  record(ns: number): void {
    this.#counts[bucketOf(ns)]!++
    this.count++
    this.sumNs += ns
    if (ns < this.minNs) this.minNs = ns
    if (ns > this.maxNs) this.maxNs = ns
  }

  /** Mean value, ns (0 when empty). */
  get meanNs(): number {
    return this.count === 0 ? 0 : this.sumNs / this.count
  }

  /**
   * The value below which a fraction `quantile` of the values lie, as the upper bound of its
   * bucket (at most 9% high; up to 12% below 100 ns, where the bounds are whole ns), capped at the maximum; 0 when empty.
   */
  percentileNs(quantile: number): number {
    if (this.count === 0) return 0
    const rank = Math.max(1, Math.ceil(quantile * this.count))
    let seen = 0
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.#counts[index]!
      if (seen >= rank) return Math.min(BOUNDS_NS[index]!, this.maxNs)
    }
    return this.maxNs
  }

  /** The histogram for a report: the buckets from the first to the last that holds a value. */
  toHistogram(key: string, label: string, description: string): Histogram {
    const upToNs: number[] = []
    const counts: number[] = []
    if (this.count > 0) {
      for (let index = bucketOf(this.minNs); index <= bucketOf(this.maxNs); index++) {
        upToNs.push(BOUNDS_NS[index]!)
        counts.push(this.#counts[index]!)
      }
    }
    return { key, label, description, unit: 'ns', upToNs, counts }
  }
}

/** An engine histogram (PacketStats.latencyHistogram: doubling bounds from 16 ns) for a report. */
export function fromBuckets(buckets: readonly HistogramBucket[], key: string, label: string, description: string): Histogram {
  let first = buckets.findIndex((bucket) => bucket.count > 0)
  if (first < 0) first = buckets.length
  const used = buckets.slice(first)
  return { key, label, description, unit: 'ns', upToNs: used.map((b) => b.upToNs), counts: used.map((b) => b.count) }
}
