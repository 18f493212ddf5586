// Numbers with units on the command line, and the same units in what the commands print.
//
// Counts, rates and sizes take SI suffixes (k = 1000, M = 10^6, G = 10^9); sizes also the
// binary Ki/Mi/Gi (1024...). Durations take ns, us (or µs), ms, s, m (minutes) and h; a bare
// number is seconds, as iperf's -t. Every parser returns a plain number (ns for durations) and
// throws a UsageError naming the flag and showing examples for anything else. The same units in
// what the commands print: lib/format.ts.

import { UsageError } from './errors'

const NUMBER = /^(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?\s*([a-zA-Zµμ/]*)$/

const SI: Record<string, number> = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9 }
const BINARY: Record<string, number> = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }
const DURATION_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3,
  'μs': 1e3,
  ms: 1e6,
  '': 1e9,
  s: 1e9,
  m: 60e9,
  min: 60e9,
  h: 3600e9,
}

/** Splits `10.5k` into 10.5 and 'k'; undefined when it is not a number with a suffix. */
function split(text: string): { value: number; suffix: string } | undefined {
  const match = NUMBER.exec(text.trim())
  if (!match) return undefined
  const value = Number(match[1]) * 10 ** Number(match[2] ?? 0)
  return Number.isFinite(value) ? { value, suffix: match[3]! } : undefined
}

function scaled(text: string, name: string, scales: Record<string, number>, what: string, examples: string): number {
  const parts = split(text)
  const scale = parts === undefined ? undefined : scales[parts.suffix]
  if (parts === undefined || scale === undefined) {
    throw new UsageError(`${name} '${text}' is not ${what} (for example ${examples})`)
  }
  // Round away the binary fraction of decimal scaling (1.1 × 1000 = 1100.0000000000002).
  return Number((parts.value * scale).toPrecision(15))
}

function wholeNumber(value: number, text: string, name: string, what: string): number {
  if (!Number.isSafeInteger(value)) throw new UsageError(`${name} '${text}' must be a whole number of ${what}`)
  return value
}

/** A count of packets: `1000`, `10k`, `1.5M` (a whole number ≥ 0). */
export function parseCount(text: string, name: string): number {
  return wholeNumber(scaled(text, name, SI, 'a count', '1000, 10k, 1.5M'), text, name, 'packets')
}

/** A packet rate in packets/s: `500`, `10k`, `1.5M`, optionally with `pps` (`10kpps`); > 0. */
export function parseRate(text: string, name: string): number {
  const rate = scaled(text.replace(/pps$/, ''), name, SI, 'a packet rate', '500, 10k, 1M')
  if (rate <= 0) throw new UsageError(`${name} '${text}' must be above 0`)
  return rate
}

/** A bit rate in bits/s: `100M`, `1G`, `64k`, optionally with `bit/s`, `bps` or `b` (`100Mbit/s`); > 0. */
export function parseBitRate(text: string, name: string): number {
  const rate = scaled(text.replace(/(bit\/s|bps|b)$/, ''), name, SI, 'a bit rate', '64k, 100M, 1G')
  if (rate <= 0) throw new UsageError(`${name} '${text}' must be above 0`)
  return rate
}

/** A size in bytes: `64`, `1k` (1000), `1Ki` (1024), optionally with `B` (`1KiB`); a whole number. */
export function parseBytes(text: string, name: string): number {
  const bytes = scaled(text.replace(/B$/, ''), name, { ...SI, ...BINARY }, 'a size', '64, 1472, 9k, 64Ki')
  return wholeNumber(bytes, text, name, 'bytes')
}

/** A duration in ns: `10s`, `500ms`, `1.5us`, `250ns`, `2m`, `1h`; a bare number is seconds. */
export function parseDuration(text: string, name: string): number {
  const ns = scaled(text, name, DURATION_NS, 'a duration', '10s, 500ms, 1.5us')
  return wholeNumber(ns, text, name, 'nanoseconds')
}

/** An integer in min..max: CPU numbers, priorities, ports. */
export function parseInteger(text: string, name: string, min: number, max: number): number {
  const value = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${name} '${text}' must be a whole number from ${min} to ${max}`)
  }
  return value
}
