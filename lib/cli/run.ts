// The loop every measuring command runs (runTimers, until.ts): a status line a few times a
// second (on a terminal), one sample per interval, until the run ends by itself (a count
// reached, a stream done), its --duration is over, or Ctrl-C; and the options that say when.

import type { UdpComOptions } from '../types'
import { stringValue, type Context, type OptionSpec, type Values } from './command'
import { UsageError } from './errors'
import { parseCount, parseDuration, parseInteger } from './units'
import { runTimers } from './until'

export interface RunLoop {
  /** Interval of the samples (plain lines, JSON intervals, report samples), ns. */
  intervalNs: number
  /** End after this long (undefined: no limit of its own). */
  durationNs?: number | undefined
  /** The status line (status mode only). */
  status: () => string
  /** Takes one interval's sample. */
  interval: () => void
  /** Resolves with the reason when the run ends by itself ('count', 'completed'). */
  ended?: Promise<string>
}

/** Runs until `ended`, the duration or Ctrl-C (runTimers); resolves with the reason ('duration', 'interrupted' or ended's). */
export async function runUntil(context: Context, loop: RunLoop): Promise<string> {
  const timers = runTimers(context, { intervalNs: loop.intervalNs, durationNs: loop.durationNs, status: loop.status, interval: loop.interval })
  loop.ended?.then(timers.finish, () => timers.finish('failed'))
  if (context.signal.aborted) timers.finish('interrupted')
  return timers.ended
}

/** When a run ends by itself, and how often it samples: --count, --duration, --interval. */
export interface RunLimits {
  count: number | undefined
  durationNs: number | undefined
  intervalNs: number
}

/** Parses --count, --duration (not both when `exclusive`) and --interval (default 1 s, at least 100 ms). */
export function parseRunLimits(values: Values, command: string, exclusive = false): RunLimits {
  const text = (name: string): string | undefined => stringValue(values, name)
  const count = text('count') === undefined ? undefined : parseCount(text('count')!, '--count')
  const durationNs = text('duration') === undefined ? undefined : parseDuration(text('duration')!, '--duration')
  if (exclusive && count !== undefined && durationNs !== undefined) throw new UsageError('give --count or --duration, not both', command)
  if (count === 0) throw new UsageError('--count must be at least 1', command)
  if (durationNs === 0) throw new UsageError('--duration must be above 0', command)
  const intervalNs = text('interval') === undefined ? 1e9 : parseDuration(text('interval')!, '--interval')
  if (intervalNs < 100e6) throw new UsageError('--interval must be at least 100ms', command)
  return { count, durationNs, intervalNs }
}

/** --cpu and --priority of the worker threads. */
export interface Scheduling {
  cpu: number | undefined
  priority: number | undefined
}

export function parseScheduling(values: Values): Scheduling {
  const cpu = stringValue(values, 'cpu')
  const priority = stringValue(values, 'priority')
  return {
    cpu: cpu === undefined ? undefined : parseInteger(cpu, '--cpu', 0, 1023),
    priority: priority === undefined ? undefined : parseInteger(priority, '--priority', 1, 99),
  }
}

/** The instance options for --cpu and --priority. */
export function schedulingOptions(options: Scheduling): UdpComOptions {
  return {
    ...(options.cpu === undefined ? {} : { cpu: options.cpu }),
    ...(options.priority === undefined ? {} : { priority: options.priority }),
  }
}

/** The options of RunLimits and Scheduling, for a command's option table. */
export const RUN_LIMIT_OPTIONS: Record<string, OptionSpec> = {
  count: { type: 'string', short: 'n', value: 'N', help: 'stop after N packets (10k, 1M)' },
  duration: { type: 'string', short: 't', value: '10s', help: 'stop after this long (500ms, 10s, 2m; a bare number is seconds)' },
  interval: { type: 'string', short: 'i', value: '1s', help: 'interval of the plain lines, JSON intervals and report samples (default 1s)' },
}
export const SCHEDULING_OPTIONS: Record<string, OptionSpec> = {
  cpu: { type: 'string', value: 'N', help: 'pin the worker threads to CPU N' },
  priority: { type: 'string', value: 'N', help: 'SCHED_FIFO priority 1..99 for the worker threads' },
}
