// `udpcom panel`: the live panel in a browser (lib/panel/).

import { isLoopback, startPanel } from '../panel'
import { stringValue, type Command } from './command'
import { UsageError } from './errors'
import { parseBytes, parseDuration, parseInteger, parseRate } from './units'

export const panelCommand: Command = {
  name: 'panel',
  summary: 'serve a live panel in the browser: start and stop receivers and streams, watch rate, loss and lateness',
  usage: 'panel [--port 8080] [--host 127.0.0.1] [--allow-host NAME] [--max-jobs 8] [--max-duration 1h] [--max-rate 100k] [--max-size 1472] [--max-burst 64] [--json]',
  description:
    'Serves a page where forms start and stop receivers and timed streams, and live plots show their rate, drops, latency ' +
    'and lateness (server-sent events, 4 updates a second). A stream from the panel always ends, and its rate, size and ' +
    'burst are capped (--max-rate, --max-size, --max-burst). Listens on 127.0.0.1 only unless --host says otherwise. The printed URL carries a random ' +
    'token (set UDPCOM_PANEL_TOKEN to keep one across restarts); requests without it, from another origin or naming another ' +
    'host are refused (403). Runs until Ctrl-C.',
  options: {
    port: { type: 'string', short: 'p', value: 'PORT', help: 'port to listen on (default 8080; 0: any free port)' },
    host: { type: 'string', value: 'ADDRESS', help: 'address to listen on (default 127.0.0.1; 0.0.0.0 exposes the panel to the network)' },
    'allow-host': { type: 'string', value: 'NAME', help: 'a host name the panel answers to besides its addresses (a DNS name of this machine)' },
    'max-jobs': { type: 'string', value: 'N', help: 'jobs running at once (default 8)' },
    'max-duration': { type: 'string', value: '1h', help: 'longest job a form may ask for (default 1h)' },
    'max-rate': { type: 'string', value: 'PPS', help: 'highest stream rate a form may ask for (default 100k packets/s)' },
    'max-size': { type: 'string', value: 'BYTES', help: 'largest stream payload a form may ask for (default 1472 bytes)' },
    'max-burst': { type: 'string', value: 'N', help: 'largest stream burst a form may ask for (default 64)' },
  },
  examples: ['udpcom panel', 'udpcom panel --port 0 --json', 'UDPCOM_PANEL_TOKEN=$(cat ~/.panel-token) udpcom panel --host 0.0.0.0'],
  async run(values, positionals, { output, signal }) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`, 'panel')
    const text = (name: string): string | undefined => stringValue(values, name)
    const port = text('port') === undefined ? 8080 : parseInteger(text('port')!, '--port', 0, 65_535)
    const host = text('host') ?? '127.0.0.1'
    const maxDurationNs = text('max-duration') === undefined ? undefined : parseDuration(text('max-duration')!, '--max-duration')
    const token = process.env.UDPCOM_PANEL_TOKEN
    if (token !== undefined && !/^[A-Za-z0-9_-]{16,128}$/.test(token)) {
      throw new UsageError('UDPCOM_PANEL_TOKEN must be 16..128 characters of A-Z a-z 0-9 _ -', 'panel')
    }
    const limits = {
      ...(text('max-jobs') === undefined ? {} : { maxJobs: parseInteger(text('max-jobs')!, '--max-jobs', 1, 64) }),
      ...(maxDurationNs === undefined ? {} : { maxDurationS: Math.max(1, Math.round(maxDurationNs / 1e9)) }),
      ...(text('max-rate') === undefined ? {} : { maxRatePps: Math.round(parseRate(text('max-rate')!, '--max-rate')) }),
      ...(text('max-size') === undefined ? {} : { maxSizeBytes: parseBytes(text('max-size')!, '--max-size') }),
      ...(text('max-burst') === undefined ? {} : { maxBurst: parseInteger(text('max-burst')!, '--max-burst', 1, 1024) }),
    }
    const allowHost = text('allow-host')
    const panel = await startPanel({ host, port, limits, ...(token ? { token } : {}), ...(allowHost ? { allowHosts: [allowHost] } : {}) })
    if (!isLoopback(host)) {
      output.warn(`the panel listens on ${host}: anyone who can reach this machine and has the token can make it send and receive traffic. Prefer the default (127.0.0.1) with an SSH tunnel: ssh -L ${panel.port}:127.0.0.1:${panel.port} THIS-HOST`)
    }
    output.event('listening', { url: panel.url, host: panel.host, port: panel.port }, `udpcom panel: open ${panel.url}\n(Ctrl-C stops it and every job it runs)`)
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve()
      else signal.addEventListener('abort', () => resolve(), { once: true })
    })
    await panel.close()
    output.event('stopped', {}, 'udpcom panel: stopped')
    return 0
  },
}
