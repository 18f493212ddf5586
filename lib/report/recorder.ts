// Collects a command's time series while it runs: one sample per interval, column by column
// (the report's TimeSeries).

import type { SeriesSpec, TimeSeries } from './model'

/** Samples kept at most: a week of one-second intervals. Later samples are counted, not kept. */
export const MAX_SAMPLES = 7 * 24 * 3600

export class SeriesRecorder {
  readonly #series: SeriesSpec[]
  readonly #intervalNs: number
  readonly #timeS: number[] = []
  readonly #values: (number | null)[][]
  /** Samples not kept because MAX_SAMPLES were (the report says so). */
  notKept = 0

  constructor(series: readonly SeriesSpec[], intervalNs: number) {
    this.#series = [...series]
    this.#intervalNs = intervalNs
    this.#values = this.#series.map(() => [])
  }

  /** One sample: the value of each series by key (missing or null: not measured). */
  add(timeS: number, values: Readonly<Record<string, number | null | undefined>>): void {
    if (this.#timeS.length >= MAX_SAMPLES) {
      this.notKept++
      return
    }
    this.#timeS.push(timeS)
    this.#series.forEach((spec, i) => {
      const value = values[spec.key]
      this.#values[i]!.push(typeof value === 'number' && Number.isFinite(value) ? value : null)
    })
  }

  toTimeSeries(): TimeSeries {
    return { intervalNs: this.#intervalNs, timeS: [...this.#timeS], series: [...this.#series], values: this.#values.map((v) => [...v]) }
  }
}
