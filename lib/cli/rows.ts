// A summary row (the report's SummaryRow) as the command line prints it: in the unit that fits.

import { formatBitRate, formatCount, formatNs, formatPps } from '../format'
import type { SummaryRow } from '../report/model'

/** The value of `row` as text: `12.3 µs`, `10.0 kpps`, `1,280 bytes`, `3.34 s`, `20,000`. */
export function rowText(row: SummaryRow): string {
  if (typeof row.value === 'string') return row.value
  switch (row.unit) {
    case 'ns':
      return formatNs(row.value)
    case 'pps':
      return formatPps(row.value)
    case 'bit/s':
      return formatBitRate(row.value)
    case 's':
      return `${row.value.toFixed(2)} s`
    case 'bytes':
      return `${formatCount(row.value)} bytes`
    case 'ratio':
      return `${(row.value * 100).toFixed(2)}%`
    default:
      return formatCount(row.value)
  }
}

/** The rows as `[label, text]` pairs for Output.summary. */
export const rowPairs = (rows: readonly SummaryRow[]): [string, string][] => rows.map((row) => [row.label, rowText(row)])
