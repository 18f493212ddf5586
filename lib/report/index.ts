// Reports: one self-contained HTML file (no network needed to open it) with plots drawn by
// uPlot, from a ReportData (model.ts). `--report out.html` on the commands writes one.

import { writeFileSync } from 'node:fs'
import { hostname, release } from 'node:os'

import { diagnose } from '../doctor'
import { readMachineFacts } from '../machine'
import { renderReport } from './html'
import { REPORT_SCHEMA, type Finding, type Histogram, type ReportData, type SummaryRow, type TimeSeries } from './model'

export { renderReport } from './html'
export { fromBuckets, LogHistogram } from './histogram'
export { SeriesRecorder } from './recorder'
export type * from './model'

export interface ReportInput {
  title: string
  command: string
  startedAt: Date
  endedAt: Date
  summary: SummaryRow[]
  series: TimeSeries
  histograms: Histogram[]
  notes?: string[]
  /** Default: the doctor's verdicts on this machine now, without the probe. */
  findings?: Finding[]
}

/** A complete ReportData from what a command collected. */
export function buildReport(input: ReportInput): ReportData {
  return {
    schema: REPORT_SCHEMA,
    title: input.title,
    command: input.command,
    startedAt: input.startedAt.toISOString(),
    endedAt: input.endedAt.toISOString(),
    host: `${hostname()}, Linux ${release()}`,
    summary: input.summary,
    series: input.series,
    histograms: input.histograms,
    findings: input.findings ?? diagnose(readMachineFacts()),
    notes: input.notes ?? [],
  }
}

/** Writes the report's HTML to `path`. */
export function writeReport(path: string, data: ReportData): void {
  writeFileSync(path, renderReport(data))
}
