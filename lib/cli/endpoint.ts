// `[HOST:]PORT` on the command line: `5000`, `127.0.0.1:5000`, `[::1]:5000`, `localhost:5000`.

import { isIP } from 'node:net'

import { UsageError } from './errors'

export interface Endpoint {
  /** An IP address (names are resolved by the caller). */
  host: string
  port: number
}

/**
 * Parses `[HOST:]PORT`; without a host, `defaultHost`. IPv6 addresses go in brackets. `localhost`
 * is 127.0.0.1; other names are refused here (udpcom binds to addresses).
 */
export function parseEndpoint(text: string, command: string, defaultHost: string, allowPortZero: boolean): Endpoint {
  let host = defaultHost
  let portText = text
  const bracketed = /^\[([^\]]+)\]:(.*)$/.exec(text)
  if (bracketed) {
    host = bracketed[1]!
    portText = bracketed[2]!
  } else if (text.includes(':')) {
    if (text.indexOf(':') !== text.lastIndexOf(':')) {
      throw new UsageError(`'${text}': write an IPv6 address in brackets, as [::1]:5000`, command)
    }
    ;[host, portText] = text.split(':') as [string, string]
    if (host === '') host = defaultHost
  }
  if (host === 'localhost') host = '127.0.0.1'
  if (isIP(host.split('%')[0]!) === 0) throw new UsageError(`'${host}' is not an IP address (give one, as 127.0.0.1 or [::1])`, command)
  const port = /^\d+$/.test(portText) ? Number(portText) : NaN
  if (!(port >= (allowPortZero ? 0 : 1) && port <= 65_535)) {
    throw new UsageError(`'${portText}' is not a port (${allowPortZero ? '0' : '1'}..65535${allowPortZero ? '; 0: any free port' : ''})`, command)
  }
  return { host, port }
}

/** `host:port`, with brackets for IPv6. */
export const formatEndpoint = ({ host, port }: Endpoint): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)
