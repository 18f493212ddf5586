// The data a report is drawn from: what a command collects while it runs (time series sampled
// once a second, histograms, a summary) and the machine's doctor findings. Every command that
// measures (send, recv, ping, replay) fills one `ReportData`, and
// `renderReport()` turns any of them into the same HTML page. The panel's live plots use the
// same series descriptions (`SeriesSpec`).
//
// The model is plain JSON (numbers, strings, arrays), embedded as such in the HTML file, so
// that a report can also be read back by a program (`schema` says which layout it is).

/**
 * A doctor's verdict (lib/doctor.ts makes them; declared here so that the model, which the
 * browser code is checked against too, depends on nothing):
 * - ok: nothing to change;
 * - info: worth knowing; udpcom copes with it, or it matters for some uses only; `fix` says how
 *   to change it anyway;
 * - warn: it limits timing here; `fix` says what to change.
 */
export type Level = 'ok' | 'info' | 'warn'

export interface Finding {
  /** Stable name: 'rt-permission', 'rt-throttling', 'timer-slack', 'isolated-cpus', 'interrupts', 'clocksource', 'virtual-machine', 'steal', 'preemption', 'cpu-governor', 'memlock', 'socket-buffers', 'wakeups', 'cpu-loss'. */
  id: string
  level: Level
  /** Short name of what was checked. */
  title: string
  /** What was found, with the figures, in a sentence or two. */
  detail: string
  /** What to do, with the command to type. */
  fix?: string
  /** The figures behind the verdict, for --json and reports. */
  facts: Record<string, number | string | boolean | null>
}

/** The layout of ReportData; bumped when a field changes meaning. */
export const REPORT_SCHEMA = 'udpcom-report/1'

/** Units of series, histograms and summary values. Times are always ns. */
export type Unit = 'ns' | 'pps' | 'bit/s' | 'packets' | 'bytes' | 's' | 'ratio'

/**
 * Which plot a series is drawn in; a plot appears when at least one series of its kind is there.
 * - rate: packets (or bits) per second
 * - lateness: how late packets left or arrived against their target time (ns)
 * - jitter: variation of inter-arrival times or of delay (ns)
 * - loss: packets lost, dropped, reordered or duplicated per interval
 */
export type PlotKind = 'rate' | 'lateness' | 'jitter' | 'loss'

/** One series of a time series: what it is, in which unit, drawn in which plot. */
export interface SeriesSpec {
  /** Key in the samples and in --json interval objects (units in the name: `latenessP99Ns`). */
  key: string
  /** Legend label, e.g. 'p99 lateness'. */
  label: string
  unit: Unit
  plot: PlotKind
  /** What exactly is measured, in a sentence (shown under the plot). */
  description: string
}

/**
 * Samples taken at a fixed interval (once a second by default), column by column: the layout
 * uPlot draws from. `values[i][j]` is series `series[i]` at time `timeS[j]`; null where it was
 * not measured in that interval (e.g. no packet arrived, so no inter-arrival time).
 */
export interface TimeSeries {
  /** Interval between samples, ns. */
  intervalNs: number
  /** Seconds since the start of the measurement, at the end of each interval. */
  timeS: number[]
  series: SeriesSpec[]
  values: (number | null)[][]
}

/**
 * A histogram over ascending bucket bounds: `counts[i]` values were above `upToNs[i - 1]` (0 for
 * the first) and at most `upToNs[i]`. The engine's latency histograms (doubling bounds from
 * 16 ns) and the command line's own (`LogHistogram`, 8 buckets per doubling) both fit.
 */
export interface Histogram {
  key: string
  /** Title, e.g. 'Send lateness'. */
  label: string
  /** What the values are, in a sentence. */
  description: string
  unit: 'ns'
  upToNs: number[]
  counts: number[]
}

/** One row of the summary table. */
export interface SummaryRow {
  key: string
  label: string
  value: number | string
  unit?: Unit
  /** This value is a measured problem (loss, drops): the command exits with 1. */
  problem?: boolean
}

/** Everything one report shows. */
export interface ReportData {
  schema: typeof REPORT_SCHEMA
  /** e.g. 'udpcom recv 0.0.0.0:5000'. */
  title: string
  /** The command line as typed. */
  command: string
  /** Wall-clock time of the start and the end, ISO 8601. */
  startedAt: string
  endedAt: string
  /** Host name and kernel, for the header. */
  host: string
  summary: SummaryRow[]
  series: TimeSeries
  histograms: Histogram[]
  /** The doctor's verdicts on this machine when the report was written. */
  findings: Finding[]
  /** Sentences shown above the plots: what this command could not measure, and why. */
  notes: string[]
}
