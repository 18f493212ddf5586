// `udpcom reflect [HOST:]PORT`: the native reflector (the `reflect` option): the receive worker
// sends every datagram straight back to its source, with no JavaScript in the loop, and stamps
// a udpcom header with its receive and send times so that `udpcom ping` splits the round trip.
// Shows what it reflected live and summarises. Exit code 1: a reply could not be sent, fewer
// than --count datagrams came, or none did.

import { formatCount, formatNs, formatPps } from '../format'
import type { SummaryRow } from '../report/model'
import type { PacketStats } from '../types'
import { UdpCom } from '../udpcom'
import { onePositional, type Command, type Context } from './command'
import { formatEndpoint, parseEndpoint } from './endpoint'
import { parseRunLimits, parseScheduling, RUN_LIMIT_OPTIONS, runUntil, SCHEDULING_OPTIONS, schedulingOptions, type RunLimits, type Scheduling } from './run'
import { endedText, printSummary } from './summary'

/** How often a --count is checked, ms: the reflector may reflect a few more in that time (counted). */
const COUNT_POLL_MS = 20

type ReflectOptions = RunLimits & Scheduling

interface ReflectSample {
  timeS: number
  received: number
  reflected: number
  ratePps: number
  errors: number
}

async function reflect(options: ReflectOptions, host: string, port: number, context: Context): Promise<number> {
  const { output } = context
  const udp = new UdpCom(host, port, host.includes(':') ? '::' : '0.0.0.0', 0, { direction: 2, reflect: true, deliver: false, ...schedulingOptions(options) })
  try {
    udp.initSocket()
    udp.start()
  } catch (error) {
    udp.closeSocket()
    throw error
  }
  const where = formatEndpoint({ host, port: udp.localPort })
  output.event(
    'listening',
    { address: host, port: udp.localPort, count: options.count ?? null, durationNs: options.durationNs ?? null },
    `udpcom reflect: reflecting on ${where}${options.count ? `, ${formatCount(options.count)} datagrams` : ''}${options.durationNs ? `, for ${formatNs(options.durationNs)}` : ''} (Ctrl-C ends)`,
  )
  const startedNs = process.hrtime.bigint()
  let last = { ns: startedNs, reflected: 0 }
  let lastRate = 0
  const sample = (stats: PacketStats = udp.getPacketStats()): ReflectSample => {
    const now = process.hrtime.bigint()
    const seconds = Number(now - last.ns) / 1e9
    lastRate = seconds > 0 ? (stats.nReflected - last.reflected) / seconds : 0
    last = { ns: now, reflected: stats.nReflected }
    return { timeS: Number(now - startedNs) / 1e9, received: stats.nPacketsReceived, reflected: stats.nReflected, ratePps: lastRate, errors: stats.nReflectErrors }
  }
  const intervalText = (s: ReflectSample): string =>
    `${s.timeS.toFixed(1).padStart(7)} s  received ${formatCount(s.received)}  reflected ${formatCount(s.reflected)}  ${formatPps(s.ratePps)}  errors ${s.errors}`
  let countTimer: NodeJS.Timeout | undefined
  const counted =
    options.count === undefined
      ? undefined
      : new Promise<string>((resolve) => {
          countTimer = setInterval(() => {
            if (udp.getPacketStats().nPacketsReceived >= options.count!) resolve('count')
          }, COUNT_POLL_MS)
        })
  const reason = await runUntil(context, {
    intervalNs: options.intervalNs,
    durationNs: options.durationNs,
    status: () => {
      const stats = udp.getPacketStats()
      return [`reflect ${where}`, `${(Number(process.hrtime.bigint() - startedNs) / 1e9).toFixed(1)} s`, `reflected ${formatCount(stats.nReflected)}`, formatPps(lastRate), `errors ${formatCount(stats.nReflectErrors)}`].join('  ')
    },
    interval: () => {
      const s = sample()
      output.interval({ ...s }, intervalText(s))
    },
    ...(counted === undefined ? {} : { ended: counted }),
  })
  clearInterval(countTimer)
  udp.stop()
  const stats = udp.getPacketStats()
  udp.closeSocket()
  output.clearStatus()
  const final = sample(stats)
  output.interval({ ...final }, intervalText(final))

  const elapsedS = final.timeS
  const problems: string[] = []
  if (stats.nReflectErrors > 0) problems.push(`${formatCount(stats.nReflectErrors)} replies could not be sent${stats.lastError ? ` (last: ${stats.lastError.code})` : ''}`)
  if (options.count !== undefined && stats.nPacketsReceived < options.count) problems.push(`only ${formatCount(stats.nPacketsReceived)} of ${formatCount(options.count)} datagrams arrived`)
  else if (stats.nPacketsReceived === 0) problems.push('no datagram arrived')
  if (stats.nKernelDrops > 0) problems.push(`the kernel dropped ${formatCount(stats.nKernelDrops)} datagrams (socket receive buffer full)`)
  const rows: SummaryRow[] = [
    { key: 'elapsedS', label: 'time', value: elapsedS, unit: 's' },
    { key: 'received', label: 'received', value: stats.nPacketsReceived, unit: 'packets' },
    { key: 'reflected', label: 'reflected', value: stats.nReflected, unit: 'packets' },
    { key: 'errors', label: 'replies not sent (errors)', value: stats.nReflectErrors, unit: 'packets', problem: stats.nReflectErrors > 0 },
    { key: 'droppedByKernel', label: 'dropped by the kernel (buffer full)', value: stats.nKernelDrops, unit: 'packets', problem: stats.nKernelDrops > 0 },
  ]
  const record = {
    address: where,
    ended: reason,
    elapsedS,
    received: stats.nPacketsReceived,
    reflected: stats.nReflected,
    bytes: stats.nBytesReceived,
    errors: stats.nReflectErrors,
    droppedByKernel: stats.nKernelDrops,
    problems,
    exitCode: problems.length > 0 ? 1 : 0,
  }
  printSummary(output, record, `udpcom reflect ${where}: ${endedText(reason)}`, rows)
  return record.exitCode
}

export const reflectCommand: Command = {
  name: 'reflect',
  summary: 'send every datagram back to its source, natively (the peer of udpcom ping)',
  usage: 'reflect [HOST:]PORT [--count N | --duration 10s] [--cpu N] [--priority N] [--json]',
  description:
    'Listens on HOST:PORT (default host 0.0.0.0; port 0 picks a free one) and sends every datagram straight back to its ' +
    'source from the receive thread, with no JavaScript per datagram. A udpcom header gets the reflector\'s receive and ' +
    'send times, so that udpcom ping splits the round trip and leaves out the time spent here. Ends after --count ' +
    'datagrams (checked every 20 ms: a few more may be reflected, and are counted), after --duration, or on Ctrl-C. Exits ' +
    'with 1 when a reply could not be sent, fewer than --count datagrams arrived, or none did.',
  options: {
    ...RUN_LIMIT_OPTIONS,
    ...SCHEDULING_OPTIONS,
  },
  examples: ['udpcom reflect 5000', 'udpcom reflect 192.0.2.10:5000 --priority 80 --cpu 1', 'udpcom reflect [::]:5000 --duration 1m --json'],
  async run(values, positionals, context) {
    const endpoint = onePositional(positionals, 'reflect', 'give the port to reflect on: udpcom reflect [HOST:]PORT')
    const options: ReflectOptions = { ...parseRunLimits(values, 'reflect'), ...parseScheduling(values) }
    const { host, port } = parseEndpoint(endpoint, 'reflect', '0.0.0.0', true)
    return reflect(options, host, port, context)
  },
}
