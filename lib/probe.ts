// probeWakeups(): what this machine does to a timed thread, measured by the engine on a thread
// of its own (engine/src/probe.rs). `udpcom doctor` runs it; programs can too, e.g. to choose
// spinNs or to refuse a run on a machine that is too noisy.

import type * as Native from '../native/binding'
import { nativeProbeWakeups } from './binding'
import { invalidArgType, invalidArgValue, unreadable } from './errors'
import type { WakeProbe, WakeProbeOptions } from './types'
import { read, validateNumber } from './validate'

const OPTION_NAMES = ['durationNs', 'periodNs', 'napNs', 'spinNs', 'cpu', 'priority'] as const

// A compile error here means the native result and the public types have drifted apart.
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false
const probeMatch: SameKeys<Native.NativeWakeProbe, WakeProbe> = true
const wakeupsMatch: SameKeys<Native.NativeWakeLateness, NonNullable<WakeProbe['wakeups']>> = true
const cpuLossMatch: SameKeys<Native.NativeCpuLoss, NonNullable<WakeProbe['cpuLoss']>> = true
void [probeMatch, wakeupsMatch, cpuLossMatch]

/**
 * Measures, for `durationNs` (default 1 s), how late timed wake-ups `periodNs` apart are, then
 * spins for `spinNs` (default 500 ms) and counts how often and how long the thread lost the
 * CPU. The probe thread is set up like udpcom's sender (timer slack 1 ns, pinned to `cpu`,
 * SCHED_FIFO at `priority`); the calling thread is not touched. Rejects with ERR_OUT_OF_RANGE
 * for bad values, EPERM (syscall sched_setscheduler) when the priority is not permitted, EINVAL
 * (sched_setaffinity) for a CPU that does not exist.
 */
export function probeWakeups(options?: WakeProbeOptions): Promise<WakeProbe> {
  try {
    return nativeProbeWakeups(validateProbeOptions(options)) as Promise<WakeProbe>
  } catch (error) {
    return Promise.reject(error)
  }
}

function validateProbeOptions(value: unknown): Native.NativeProbeOptions {
  const native: Native.NativeProbeOptions = {}
  if (value === undefined) return native
  if (typeof value !== 'object' || value === null) throw invalidArgType('options', 'of type object', value)
  let names: string[]
  try {
    names = Object.keys(value)
  } catch (exception) {
    throw unreadable('options', exception)
  }
  for (const name of names) {
    if (!(OPTION_NAMES as readonly string[]).includes(name)) {
      throw invalidArgValue(`options.${name}`, `is not an option of probeWakeups (known: ${OPTION_NAMES.join(', ')})`, `'${name}'`)
    }
  }
  for (const name of OPTION_NAMES) {
    const option = read(value as WakeProbeOptions, name, `options.${name}`)
    if (option !== undefined) native[name] = validateNumber(option, `options.${name}`)
  }
  return native
}
