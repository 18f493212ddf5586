// Type checks of the public API's arguments, as Node's own validators make them. Values (ranges,
// addresses, option names' meanings) are checked by the engine, which throws coded errors too;
// here only what JavaScript must look at: types, getters that throw, unknown option names.

import type { NativeOptions } from '../native/binding'
import { badPort, invalidArgType, invalidArgValue, outOfRange, unreadable } from './errors'
import type { Destination, UdpComOptions } from './types'

/** Reads `object[key]`, turning an exception from a getter or Proxy trap into a coded error. */
export function read<T>(object: T, key: keyof T & (string | number), name: string): unknown {
  try {
    return object[key]
  } catch (exception) {
    throw unreadable(name, exception)
  }
}

export function validateString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value)
  return value
}

export function validateNumber(value: unknown, name: string): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
  return value
}

/** An integer count in 1..max (receiveBatch's `max`, onPackets' `maxBatch`). */
export function validateCount(value: unknown, name: string, max: number): number {
  const count = validateNumber(value, name)
  if (!Number.isInteger(count)) throw outOfRange(name, 'an integer', String(count))
  if (count < 1 || count > max) throw outOfRange(name, `>= 1 && <= ${max}`, String(count))
  return count
}

/** Largest safe integer: a number timeout beyond it cannot be an exact count of ns. */
const MAX_SAFE_TIMEOUT_NS = Number.MAX_SAFE_INTEGER
/** 2^64: a bigint timeout this long (584 years) or longer means "forever". */
const U64_LIMIT = 1n << 64n

/**
 * A receive timeout in ns, a bigint or a number: `undefined` when omitted (or so long it is
 * forever), 0n for "only what is queued".
 */
export function validateTimeout(value: unknown, name: string): bigint | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'bigint') {
    if (value < 0n) throw outOfRange(name, '>= 0', `${value}n`)
    return value >= U64_LIMIT ? undefined : value
  }
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', String(value))
    if (value < 0 || value > MAX_SAFE_TIMEOUT_NS) throw outOfRange(name, `>= 0 && <= ${MAX_SAFE_TIMEOUT_NS}`, String(value))
    return BigInt(value)
  }
  throw invalidArgType(name, 'of type bigint or number', value)
}

/** A timestamp in ns (bigint, 0n ≤ t < 2^64): `0n` when omitted. */
export function validateTimestamp(value: unknown, name: string): bigint {
  if (value === undefined) return 0n
  if (typeof value !== 'bigint') throw invalidArgType(name, 'of type bigint', value)
  if (value < 0n) throw outOfRange(name, '>= 0n', `${value}n`)
  if (value >= U64_LIMIT) throw outOfRange(name, '< 2n ** 64n', `${value}n`)
  return value
}

export function validateFunctionOrNull<F>(value: unknown, name: string): F | null {
  if (value === null) return null
  if (typeof value !== 'function') throw invalidArgType(name, 'of type function or null', value)
  return value as F
}

export function validateAbortSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null || !('aborted' in value)) {
    throw invalidArgType(name, 'an instance of AbortSignal', value)
  }
  return value as AbortSignal
}

/** `{ signal }` of the calls that wait; `undefined` or an object. */
export function validateAbortOptions(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'object') throw invalidArgType(name, 'of type object', value)
  return validateAbortSignal(read(value as { signal?: unknown }, 'signal', `${name}.signal`), `${name}.signal`)
}

/** The options the constructor knows: a misspelt `priorty` must not silently run without it. */
const NUMBER_OPTIONS = [
  'cpu', 'rxCpu', 'capacity', 'ringBytes', 'direction', 'priority', 'spinNs', 'napNs', 'rxSpinNs',
  'ttl', 'dscp', 'socketPriority', 'recvBufferSize', 'sendBufferSize',
] as const
const STRING_OPTIONS = ['timestamping', 'timestampingFallback', 'analyze', 'interface'] as const
const BOOLEAN_OPTIONS = [
  'inlineSend', 'deliver', 'reflect', 'reuseAddress', 'reusePort', 'broadcast', 'packetInfo', 'gso', 'gro',
] as const
const OPTION_NAMES: readonly string[] = [...NUMBER_OPTIONS, 'lockMemory', ...STRING_OPTIONS, ...BOOLEAN_OPTIONS, 'multicast', 'signal']
const MULTICAST_NAMES: readonly string[] = ['interface', 'ttl', 'loopback']

/** The constructor's options: types checked here, values by the engine. */
export function validateOptions(value: unknown): { native: NativeOptions; signal: AbortSignal | undefined } {
  const native: NativeOptions = {}
  if (value === undefined) return { native, signal: undefined }
  if (typeof value !== 'object' || value === null) throw invalidArgType('options', 'of type object', value)
  const options = value as Record<string, unknown>
  checkNames(options, 'options', OPTION_NAMES, 'an option of UdpCom')
  const field = (name: keyof UdpComOptions): unknown => read(options, name, `options.${name}`)
  for (const name of NUMBER_OPTIONS) {
    const option = field(name)
    if (option !== undefined) native[name] = validateNumber(option, `options.${name}`)
  }
  for (const name of STRING_OPTIONS) {
    const option = field(name)
    if (option !== undefined) native[name] = validateString(option, `options.${name}`)
  }
  const lockMemory = field('lockMemory')
  if (typeof lockMemory === 'boolean') native.lockMemory = lockMemory ? 'rings' : 'none'
  else if (typeof lockMemory === 'string') native.lockMemory = lockMemory
  else if (lockMemory !== undefined) throw invalidArgType('options.lockMemory', 'of type boolean or string', lockMemory)
  for (const name of BOOLEAN_OPTIONS) {
    const option = field(name)
    if (option !== undefined) native[name] = validateBoolean(option, `options.${name}`)
  }
  const multicast = field('multicast')
  if (multicast !== undefined) native.multicast = validateMulticast(multicast)
  return { native, signal: validateAbortSignal(field('signal'), 'options.signal') }
}

/** Throws on a property that is not in `known`: a misspelt name must not silently do nothing. */
export function checkNames(object: Record<string, unknown>, name: string, known: readonly string[], what: string): void {
  let names: string[]
  try {
    names = Object.keys(object)
  } catch (exception) {
    throw unreadable(name, exception)
  }
  for (const key of names) {
    if (!known.includes(key)) throw invalidArgValue(`${name}.${key}`, `is not ${what} (known: ${known.join(', ')})`, `'${key}'`)
  }
}

export function validateBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value)
  return value
}

/** The `multicast` option: `{ interface?, ttl?, loopback? }`, nothing else. */
function validateMulticast(value: unknown): NonNullable<NativeOptions['multicast']> {
  if (typeof value !== 'object' || value === null) throw invalidArgType('options.multicast', 'of type object', value)
  const multicast = value as Record<string, unknown>
  checkNames(multicast, 'options.multicast', MULTICAST_NAMES, 'a multicast option')
  const field = (name: string): unknown => read(multicast, name, `options.multicast.${name}`)
  const result: NonNullable<NativeOptions['multicast']> = {}
  const iface = field('interface')
  if (iface !== undefined) result.interface = validateString(iface, 'options.multicast.interface')
  const ttl = field('ttl')
  if (ttl !== undefined) result.ttl = validateNumber(ttl, 'options.multicast.ttl')
  const loopback = field('loopback')
  if (loopback !== undefined) result.loopback = validateBoolean(loopback, 'options.multicast.loopback')
  return result
}

/** An optional string argument: a string, or undefined (omitted). */
export function validateOptionalString(value: unknown, name: string): string | undefined {
  return value === undefined ? undefined : validateString(value, name)
}

/** A destination port, 1..65535, checked as node:dgram's send() checks it. */
export function validatePort(value: unknown, name = 'Port'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > 65_535) throw badPort(name, value)
  return value
}

/** sendBatch's `{ address, port }`. */
export function validateDestination(value: unknown): Destination {
  if (typeof value !== 'object' || value === null) throw invalidArgType('destination', 'of type object', value)
  const address = validateString(read(value as Destination, 'address', 'destination.address'), 'destination.address')
  return { address, port: validatePort(read(value as Destination, 'port', 'destination.port')) }
}
