// The panel: an HTTP server (node:http) serving one page and a small JSON API, pushing live
// samples to the page with server-sent events. udpcom runs here, in Node; the page only draws
// what it is sent and posts forms. The same pattern fits an Electron main process or
// utilityProcess (README, Command line).
//
//   GET  /?token=T              the page
//   GET  /api/state             PanelState (kinds and their forms, jobs with their history, limits)
//   GET  /api/events?token=T    server-sent events: 'hello' { serverId }, then 'update' (PanelUpdate)
//   POST /api/jobs              { kind, params } → 201 JobInfo; 400 for a bad form
//   POST /api/jobs/:id/stop     → JobInfo
//
// Every request passes security.ts's checks first (403 otherwise).

import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

import { PAGE_STYLES, pageScripts } from '../report/html'
import * as assets from '../web/assets'
import { DEFAULT_LIMITS, FormError, JobRegistry, type JobKind } from './jobs'
import type { PanelLimits, PanelState, PanelUpdate } from './protocol'
import { receiverJobKind } from './receiver-job'
import { allowedHosts, checkRequest, newToken } from './security'
import { streamJobKind } from './stream-job'

/** Largest request body, bytes. */
export const MAX_BODY_BYTES = 16 * 1024
/** Pages listening at once. */
export const MAX_EVENT_STREAMS = 16
/** How often jobs are sampled and pages updated, ms. */
export const SAMPLE_EVERY_MS = 250

export interface PanelOptions {
  /** Address to listen on; default 127.0.0.1. Beyond loopback, the caller should warn. */
  host?: string
  /** Port; default 8080; 0: any free port. */
  port?: number
  /** The token; default: a new random one. Pass the old one to keep open pages working across a restart. */
  token?: string
  /** Host names (besides localhost and the machine's addresses) the panel answers to. */
  allowHosts?: string[]
  limits?: Partial<PanelLimits>
  /** The job kinds its forms offer; default: the receiver and the stream. */
  kinds?: JobKind[]
}

export interface Panel {
  /** The page's URL, with the token. */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly token: string
  readonly jobs: JobRegistry
  /** Stops every job, ends the event streams, closes the server. */
  close(): Promise<void>
}

const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; form-action 'none'; frame-ancestors 'none'"

function pageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>udpcom panel</title>
${PAGE_STYLES}
</head>
<body>
<header><h1>udpcom panel</h1><p id="connection" class="status">connecting…</p></header>
<main id="panel"></main>
${pageScripts(assets.panelJs)}
</body>
</html>
`
}

function send(response: ServerResponse, status: number, body: unknown, type = 'application/json; charset=utf-8'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  response.writeHead(status, {
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    // The token is in the page's URL: never in a Referer.
    'Referrer-Policy': 'no-referrer',
    'Content-Security-Policy': CSP,
    'X-Frame-Options': 'DENY',
    ...(status === 413 ? { Connection: 'close' } : {}),
  })
  response.end(text)
}

/** Reads a JSON body of at most MAX_BODY_BYTES. */
function readJson(request: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (!/^application\/json\b/i.test(request.headers['content-type'] ?? '')) {
      reject(Object.assign(new Error('the body must be application/json'), { status: 415 }))
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        // Nothing more is kept; the 413 closes the connection (see send), which ends the upload.
        request.off('data', onData)
        reject(Object.assign(new Error(`the body is larger than ${MAX_BODY_BYTES} bytes`), { status: 413 }))
        return
      }
      chunks.push(chunk)
    }
    request.on('data', onData)
    request.on('end', () => {
      if (size > MAX_BODY_BYTES) return
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
      } catch {
        reject(Object.assign(new Error('the body is not JSON'), { status: 400 }))
      }
    })
    request.on('error', reject)
  })
}

/** Starts a panel; resolves once it listens. */
export async function startPanel(options: PanelOptions = {}): Promise<Panel> {
  const host = options.host ?? '127.0.0.1'
  const token = options.token ?? newToken()
  const limits: PanelLimits = { ...DEFAULT_LIMITS, ...options.limits }
  const jobs = new JobRegistry(options.kinds ?? [receiverJobKind, streamJobKind], limits)
  const serverId = randomUUID()
  const startedAtMs = Date.now()
  const streams = new Set<ServerResponse>()
  let hosts = new Set<string>()

  const state = (): PanelState => ({ serverId, startedAtMs, sampleEveryMs: SAMPLE_EVERY_MS, kinds: jobs.kindInfos(), jobs: jobs.list(), limits })

  const events = (response: ServerResponse): void => {
    if (streams.size >= MAX_EVENT_STREAMS) {
      send(response, 429, { error: `at most ${MAX_EVENT_STREAMS} pages at once` })
      return
    }
    response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' })
    // retry: how soon the browser reconnects after the server went away (a restart).
    response.write(`retry: 1000\nevent: hello\ndata: ${JSON.stringify({ serverId })}\n\n`)
    streams.add(response)
    response.on('close', () => streams.delete(response))
  }

  const api = async (request: IncomingMessage, url: URL, response: ServerResponse): Promise<void> => {
    const path = url.pathname
    if (request.method === 'GET' && path === '/') return send(response, 200, pageHtml(), 'text/html; charset=utf-8')
    if (request.method === 'GET' && path === '/api/state') return send(response, 200, state())
    if (request.method === 'GET' && path === '/api/events') return events(response)
    if (request.method === 'POST' && path === '/api/jobs') {
      const body = (await readJson(request)) as { kind?: unknown; params?: unknown } | null
      return send(response, 201, jobs.start(body?.kind, body?.params ?? {}))
    }
    const stop = /^\/api\/jobs\/(\d+)\/stop$/.exec(path)
    if (request.method === 'POST' && stop) return send(response, 200, jobs.stop(stop[1]!))
    send(response, 404, { error: `no ${request.method} ${path}` })
  }

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://panel.invalid')
    const verdict = checkRequest(url, request.headers, hosts, token)
    if (!verdict.ok) {
      send(response, 403, { error: verdict.reason })
      return
    }
    api(request, url, response).catch((error: unknown) => {
      const status = error instanceof FormError ? 400 : ((error as { status?: number }).status ?? 400)
      // Coded errors from udpcom (EADDRINUSE, EACCES...) are the form's fault too: 400 with the message.
      const message = error instanceof Error ? error.message : String(error)
      if (!response.headersSent) send(response, status, { error: message, code: (error as { code?: unknown }).code ?? null })
    })
  })
  server.headersTimeout = 10_000
  server.requestTimeout = 30_000

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  hosts = allowedHosts(host, port, options.allowHosts)

  const timer = setInterval(() => {
    const updates = jobs.tick()
    if (updates.length === 0 || streams.size === 0) return
    const update: PanelUpdate = { serverId, nowMs: Date.now(), jobs: updates }
    const text = `event: update\ndata: ${JSON.stringify(update)}\n\n`
    for (const stream of streams) stream.write(text)
  }, SAMPLE_EVERY_MS)
  // A comment now and then keeps idle connections from being cut by proxies.
  const keepAlive = setInterval(() => {
    for (const stream of streams) stream.write(': keep-alive\n\n')
  }, 15_000)

  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host
  return {
    url: `http://${shownHost === '[::]' ? '[::1]' : shownHost}:${port}/?token=${token}`,
    host,
    port,
    token,
    jobs,
    close(): Promise<void> {
      clearInterval(timer)
      clearInterval(keepAlive)
      jobs.stopAll()
      for (const stream of streams) stream.end()
      return new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}
