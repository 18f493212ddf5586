// A command's final summary: the rows of the report's summary table, printed as aligned
// `label  value` lines (rows.ts; or the record as JSON), so that the terminal and the report say
// the same; and writing the report.

import { accessSync, constants } from 'node:fs'
import { dirname, resolve } from 'node:path'

import { buildReport, writeReport, type ReportInput } from '../report'
import type { SummaryRow } from '../report/model'
import type { Context } from './command'
import type { Output, Record_ } from './output'
import { rowPairs } from './rows'

/** Prints the summary: `record` in json mode, else `title` (with the problems) and the rows. */
export function printSummary(output: Output, record: Record_ & { problems: string[] }, title: string, rows: readonly SummaryRow[]): void {
  const problems = record.problems.length > 0 ? ` — ${record.problems.join('; ')}` : ''
  output.summary(record, `${title}${problems}`, rowPairs(rows))
}

/** The words for how a run ended, in the summary's title. */
export function endedText(reason: string): string {
  switch (reason) {
    case 'count':
      return 'count reached'
    case 'duration':
      return 'duration over'
    case 'completed':
      return 'stream completed'
    default:
      return 'stopped'
  }
}

/** Writes the report of a run to `path` and says so. */
export function writeRunReport(context: Context, path: string, input: Omit<ReportInput, 'command' | 'endedAt'>): void {
  writeReport(path, buildReport({ ...input, command: context.commandLine, endedAt: new Date() }))
  context.output.event('report', { path }, `report: ${path}`)
}

/** Fails now, not after the run, when the report could not be written. */
export function checkReportPath(path: string | undefined): void {
  if (path !== undefined) accessSync(dirname(resolve(path)), constants.W_OK)
}
