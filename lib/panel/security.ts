// Who the panel obeys: only its own page. The panel can make this machine receive and send
// traffic, so every request must carry the random token of the URL it printed (as Jupyter's),
// name the panel itself in its Host header (a DNS-rebinding page names the attacker's domain),
// and come from the panel's own origin when a browser says where it comes from (a cross-site
// page in the same browser sends its own Origin and Sec-Fetch-Site: cross-site). Pure
// functions of the request's headers, tested without a server.

import { randomBytes, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'

/** A new random token: 24 bytes, base64url (32 characters). */
export function newToken(): string {
  return randomBytes(24).toString('base64url')
}

/** The Host header values the panel answers to, lowercased (`127.0.0.1:8080`, `localhost:8080`). */
export function allowedHosts(bindHost: string, port: number, extraNames: readonly string[] = []): Set<string> {
  const withPort = (host: string): string => `${isIP(host) === 6 ? `[${host}]` : host}:${port}`.toLowerCase()
  const hosts = new Set(['localhost', '127.0.0.1', '::1', ...extraNames].map(withPort))
  if (bindHost === '0.0.0.0' || bindHost === '::') {
    // Listening on every address: each of this machine's addresses names it.
    for (const addresses of Object.values(networkInterfaces())) {
      for (const address of addresses ?? []) {
        if (bindHost === '0.0.0.0' && address.family !== 'IPv4') continue
        hosts.add(withPort(address.address.split('%')[0]!))
      }
    }
  } else {
    hosts.add(withPort(bindHost))
  }
  return hosts
}

/** Whether `host` is a loopback address or name (the panel stays on this machine). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host)
}

/** The parts of a request the checks look at. */
export interface RequestHeaders {
  host?: string | undefined
  origin?: string | undefined
  'sec-fetch-site'?: string | undefined
  authorization?: string | undefined
  'x-udpcom-token'?: string | undefined
}

export type Verdict = { ok: true } | { ok: false; reason: string }

/** The token a request carries: `?token=`, `X-Udpcom-Token` or `Authorization: Bearer`. */
export function requestToken(url: URL, headers: RequestHeaders): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '')
  return url.searchParams.get('token') ?? headers['x-udpcom-token'] ?? bearer?.[1]
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** Checks Host, Origin, Sec-Fetch-Site and the token, in that order; the reason goes into the 403. */
export function checkRequest(url: URL, headers: RequestHeaders, hosts: ReadonlySet<string>, token: string): Verdict {
  const host = (headers.host ?? '').toLowerCase()
  if (!hosts.has(host)) return { ok: false, reason: `Host '${headers.host ?? ''}' is not this panel (DNS rebinding?)` }
  if (headers.origin !== undefined && headers.origin.toLowerCase() !== `http://${host}`) {
    return { ok: false, reason: `Origin '${headers.origin}' is not this panel` }
  }
  if (headers['sec-fetch-site'] === 'cross-site') return { ok: false, reason: 'cross-site request' }
  const given = requestToken(url, headers)
  if (given === undefined) return { ok: false, reason: 'no token: open the URL the panel printed, with its ?token=' }
  if (!sameToken(given, token)) return { ok: false, reason: 'wrong token' }
  return { ok: true }
}
