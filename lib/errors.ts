// Errors with Node's codes and wording. The native binding throws the engine's errors already
// coded (ERR_UDPCOM_*, errno names with syscall); these are the ones the JavaScript layer
// raises itself, worded as Node's own internal/errors.js words them.

import type { WorkerError } from './types'

/** An Error subclass instance with a string `code`, as Node's own errors have. */
export type CodedError = Error & { code: string }

function coded<E extends Error>(error: E, code: string): E & { code: string } {
  return Object.assign(error, { code })
}

/** How Node names an argument: `The "data" argument`, or for an option `The "options.cpu" property`. */
function label(name: string): string {
  return name.includes('.') ? `The "${name}" property` : `The "${name}" argument`
}

/** Node's description of a received value: `type number (5)`, `an instance of Array`, `null`. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  switch (typeof value) {
    case 'bigint':
      return `type bigint (${value}n)`
    case 'number':
      return `type number (${Object.is(value, -0) ? '-0' : String(value)})`
    case 'boolean':
      return `type boolean (${value})`
    case 'symbol':
      return `type symbol (${String(value)})`
    case 'function':
      return `function ${value.name}`
    case 'string': {
      const text = value.length > 28 ? `${value.slice(0, 25)}...` : value
      return text.includes("'") ? `type string (${JSON.stringify(text)})` : `type string ('${text}')`
    }
    default:
      try {
        const name = (value as { constructor?: { name?: unknown } }).constructor?.name
        return typeof name === 'string' && name !== '' ? `an instance of ${name}` : 'an object'
      } catch {
        // A Proxy trap or getter threw: only the message depends on it.
        return 'an object'
      }
  }
}

/** `TypeError [ERR_INVALID_ARG_TYPE]`: `expected` as Node words it ("of type bigint"). */
export function invalidArgType(name: string, expected: string, value: unknown): CodedError {
  return coded(new TypeError(`${label(name)} must be ${expected}. Received ${describe(value)}`), 'ERR_INVALID_ARG_TYPE')
}

/** `TypeError [ERR_INVALID_ARG_VALUE]`. */
export function invalidArgValue(name: string, reason: string, received: string): CodedError {
  return coded(new TypeError(`${label(name)} ${reason}. Received ${received}`), 'ERR_INVALID_ARG_VALUE')
}

/** `TypeError [ERR_INVALID_ARG_VALUE]` for an argument whose getter (or Proxy trap) threw. */
export function unreadable(name: string, exception: unknown): CodedError {
  const message = exception instanceof Error ? exception.message : String(exception)
  return invalidArgValue(name, 'could not be read', `an exception: ${message}`)
}

/** `RangeError [ERR_OUT_OF_RANGE]`. */
export function outOfRange(name: string, range: string, received: string): CodedError {
  return coded(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${received}`),
    'ERR_OUT_OF_RANGE',
  )
}

/** `RangeError [ERR_SOCKET_BAD_PORT]`, as node:dgram's send() throws it. */
export function badPort(name: string, port: unknown): CodedError {
  return coded(new RangeError(`${name} should be > 0 and < 65536. Received ${describe(port)}.`), 'ERR_SOCKET_BAD_PORT')
}

/** `Error [ERR_UDPCOM_STATE]`: the call does not fit the instance's state or direction. */
export function stateError(message: string): CodedError {
  return coded(new Error(message), 'ERR_UDPCOM_STATE')
}

/** `Error [ERR_UDPCOM_STOPPED]`: a pending operation ended because the instance stopped. */
export function stoppedError(message: string): CodedError {
  return coded(new Error(message), 'ERR_UDPCOM_STOPPED')
}

/**
 * What an aborted call rejects with, as Node's own APIs do (`fs`, `timers/promises`): name
 * 'AbortError', code 'ABORT_ERR', cause the signal's reason.
 */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR'
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AbortError'
  }
}

/** The AbortError for `signal`. */
export function abortError(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason })
}

/** The Error for a worker's coded error report (a replay's file error, a capture's write error). */
export function fromWorkerError(report: WorkerError): CodedError {
  const error = coded(new Error(report.message), report.code)
  if (report.syscall !== undefined) Object.assign(error, { errno: report.errno, syscall: report.syscall })
  return error
}
