// `udpcom send HOST:PORT --rate 10k`: a native test stream (UdpCom.startStream) with udpcom's or
// iperf 2's header, its lateness live, and a summary (optionally as an HTML report).
//
// The sender thread generates every packet: tick i leaves at start + i × period, JavaScript only
// reads the stream's statistics a few times a second. What the sender measures is its own side:
// packets sent, send errors, and lateness (departure − target time). Loss, reordering, jitter
// and one-way latency are the receiver's (`udpcom recv --analyze`, or `iperf -s -u` with
// `--header iperf2`); round trips are `udpcom ping`'s.
//
// Exit code 1 (a measured problem): a send failed (counted in errors, e.g. ECONNREFUSED when
// nobody listens on a loopback port), or more packets were late than --max-late allows (late:
// left more than the sender's spin window after its target time; default: 1% of those sent).

import { formatBitRate, formatCount, formatNs, formatPps } from '../format'
import { fromBuckets, SeriesRecorder } from '../report'
import type { Histogram, SummaryRow } from '../report/model'
import { SEND_SERIES, SendMeter, type SendSample } from '../report/stream-meter'
import type { Stream } from '../stream'
import type { PacketStats, StreamOptions, StreamSendStats, UdpComOptions } from '../types'
import { UdpCom } from '../udpcom'
import { onePositional, stringValue, type Command, type Context, type OptionSpec, type Values } from './command'
import { formatEndpoint, parseEndpoint } from './endpoint'
import { UsageError } from './errors'
import { parseRunLimits, parseScheduling, RUN_LIMIT_OPTIONS, runUntil, SCHEDULING_OPTIONS, schedulingOptions, type RunLimits, type Scheduling } from './run'
import { checkReportPath, endedText, printSummary, writeRunReport } from './summary'
import { parseBytes, parseCount, parseInteger, parseRate } from './units'

/** The options of a command that runs a stream (send, ping). */
export interface StreamRunOptions extends RunLimits, Scheduling {
  ratePps: number
  size: number
  burst: number
  report: string | undefined
}

/** The options `send` and `ping` share. */
export const STREAM_RUN_OPTIONS: Record<string, OptionSpec> = {
  rate: { type: 'string', short: 'r', value: '10k', help: 'packets per second (500, 10k, 1M; required)' },
  ...RUN_LIMIT_OPTIONS,
  size: { type: 'string', short: 's', value: '64', help: 'payload bytes per packet, header included (default 64)' },
  burst: { type: 'string', short: 'b', value: '1', help: 'packets per tick, back to back (default 1)' },
  report: { type: 'string', value: 'FILE', help: 'write an HTML report with plots to FILE' },
  ...SCHEDULING_OPTIONS,
}

/** The HOST:PORT a stream goes to (a host is required). */
export function streamDestination(positionals: string[], command: string): { host: string; port: number } {
  const text = onePositional(positionals, command, `give where to send: udpcom ${command} HOST:PORT --rate 10k`)
  const endpoint = parseEndpoint(text, command, '127.0.0.1', false)
  if (!text.includes(':')) throw new UsageError(`give the host too: udpcom ${command} HOST:PORT (127.0.0.1:5000)`, command)
  return endpoint
}

/** A started instance running the stream of `options`, and the 'sending' event said. */
export interface Sending {
  udp: UdpCom
  stream: Stream
  where: string
  startedAt: Date
}

/** Creates and starts the instance, starts the stream and says so ('sending'). */
export function startSending(context: Context, command: string, host: string, port: number, udpOptions: UdpComOptions, options: StreamRunOptions, header: 'udpcom' | 'iperf2' | 'none'): Sending {
  const udp = new UdpCom(anyAddress(host), 0, host, port, { ...udpOptions, ...schedulingOptions(options) })
  let stream: Stream
  try {
    udp.initSocket()
    udp.start()
    stream = udp.startStream(streamOptions(options, header))
  } catch (error) {
    udp.closeSocket()
    throw error
  }
  const where = formatEndpoint({ host, port })
  const limit = `${options.count ? `, ${formatCount(options.count)} packets` : ''}${options.durationNs ? `, for ${formatNs(options.durationNs)}` : ''}${options.count || options.durationNs ? '' : ' (Ctrl-C ends)'}`
  context.output.event(
    'sending',
    { address: host, port, localPort: udp.localPort, streamId: stream.id, ratePps: options.ratePps, count: options.count ?? null, durationNs: options.durationNs ?? null, size: options.size, burst: options.burst, header },
    `udpcom ${command}: to ${where} from port ${udp.localPort}, ${formatPps(options.ratePps)}, ${options.size} bytes${options.burst > 1 ? ` in bursts of ${options.burst}` : ''}, ${header} header${limit}`,
  )
  return { udp, stream, where, startedAt: new Date() }
}

/** Parses the options of STREAM_RUN_OPTIONS. */
export function streamRunOptions(values: Values, command: string): StreamRunOptions {
  const text = (name: string): string | undefined => stringValue(values, name)
  const rateText = text('rate')
  if (rateText === undefined) throw new UsageError('give the packet rate: --rate 10k', command)
  return {
    ...parseRunLimits(values, command, true),
    ...parseScheduling(values),
    ratePps: parseRate(rateText, '--rate'),
    size: text('size') === undefined ? 64 : parseBytes(text('size')!, '--size'),
    burst: text('burst') === undefined ? 1 : parseInteger(text('burst')!, '--burst', 1, 1024),
    report: text('report'),
  }
}

/** startStream's options for a run. */
export function streamOptions(options: StreamRunOptions, header: StreamOptions['header']): StreamOptions {
  return {
    ratePps: options.ratePps,
    size: options.size,
    burst: options.burst,
    header: header ?? 'udpcom',
    ...(options.count === undefined ? {} : { count: options.count }),
    ...(options.durationNs === undefined ? {} : { durationNs: options.durationNs }),
  }
}

/** The wildcard address of `host`'s family, to send from. */
export const anyAddress = (host: string): string => (host.includes(':') ? '::' : '0.0.0.0')

/** The mean rate from the first to the last departure. */
function departureRate(stats: StreamSendStats): number {
  if (stats.firstDepartureNs === undefined || stats.lastDepartureNs === undefined || stats.sent < 2) return 0
  const spanS = Number(stats.lastDepartureNs - stats.firstDepartureNs) / 1e9
  return spanS > 0 ? (stats.sent - 1) / spanS : 0
}

/** A stream's send side: the JSON summary's fields. */
export function sendRecord(stats: StreamSendStats): Record<string, number | string> {
  return {
    state: stats.state,
    sent: stats.sent,
    bytes: stats.bytes,
    ratePps: departureRate(stats),
    periodNs: stats.periodNs,
    errors: stats.errors,
    late: stats.late,
    latenessMinNs: stats.minLatenessNs,
    latenessMeanNs: stats.meanLatenessNs,
    latenessP50Ns: stats.p50LatenessNs,
    latenessP90Ns: stats.p90LatenessNs,
    latenessP99Ns: stats.p99LatenessNs,
    latenessP999Ns: stats.p999LatenessNs,
    latenessMaxNs: stats.maxLatenessNs,
  }
}

/** A stream's send side: the summary table's rows. */
export function sendRows(stats: StreamSendStats, lateAllowed: number): SummaryRow[] {
  const rows: SummaryRow[] = [
    { key: 'sent', label: 'sent', value: stats.sent, unit: 'packets' },
    { key: 'bytes', label: 'payload', value: stats.bytes, unit: 'bytes' },
    { key: 'ratePps', label: 'mean rate (first to last departure)', value: departureRate(stats), unit: 'pps' },
    { key: 'errors', label: 'send errors', value: stats.errors, unit: 'packets', problem: stats.errors > 0 },
    { key: 'late', label: 'late (left more than the spin window after its time)', value: stats.late, unit: 'packets', problem: stats.late > lateAllowed },
  ]
  if (stats.sent > 0) {
    rows.push(
      { key: 'latenessP50Ns', label: 'lateness p50', value: stats.p50LatenessNs, unit: 'ns' },
      { key: 'latenessP90Ns', label: 'lateness p90', value: stats.p90LatenessNs, unit: 'ns' },
      { key: 'latenessP99Ns', label: 'lateness p99', value: stats.p99LatenessNs, unit: 'ns' },
      { key: 'latenessP999Ns', label: 'lateness p99.9', value: stats.p999LatenessNs, unit: 'ns' },
      { key: 'latenessMaxNs', label: 'lateness max', value: stats.maxLatenessNs, unit: 'ns' },
    )
  }
  return rows
}

/** The send lateness histogram of a report. */
export function latenessHistogram(stats: StreamSendStats): Histogram {
  return fromBuckets(stats.latenessHistogram, 'lateness', 'Send lateness', 'Departure − target time of every packet (read right before the send system call), doubling buckets from 16 ns.')
}

/** The problems of a stream's send side: failed sends (with the OS error) and too many late packets. */
export function sendProblems(stats: StreamSendStats, packetStats: PacketStats, lateAllowed: number, maxLateText: string): string[] {
  const problems: string[] = []
  if (stats.errors > 0) {
    const why = packetStats.lastError ? ` (last: ${packetStats.lastError.code}${packetStats.lastError.syscall ? ` ${packetStats.lastError.syscall}` : ''})` : ''
    problems.push(`${formatCount(stats.errors)} sends failed${why}`)
  }
  if (stats.late > lateAllowed) problems.push(`${formatCount(stats.late)} packets were late, more than --max-late ${maxLateText} allows`)
  return problems
}

/** --max-late: a count (`10`) or a share of the packets sent (`1%`). */
export function lateAllowance(text: string, sent: number): number {
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text.trim())
  if (percent) return (Number(percent[1]) / 100) * sent
  return parseCount(text, '--max-late')
}

/** The live status line of a stream. */
export function streamStatus(name: string, where: string, meter: SendMeter, last: SendSample | undefined, stats: StreamSendStats): string {
  return [
    `${name} ${where}`,
    `${meter.elapsedS().toFixed(1)} s`,
    `sent ${formatCount(stats.sent)}`,
    formatPps(last?.ratePps ?? 0),
    `errors ${formatCount(stats.errors)}`,
    `late ${formatCount(stats.late)}`,
    `p99 lateness ${stats.sent > 0 ? formatNs(stats.p99LatenessNs) : '–'}`,
  ].join('  ')
}

/** One interval's plain line (the send side). */
export function sendIntervalText(sample: SendSample): string {
  const lateness = sample.latenessP99Ns === null ? '' : `  lateness p99 ${formatNs(sample.latenessP99Ns)} (interval ≤${formatNs(sample.intervalLatenessP99Ns ?? 0)})  max ${formatNs(sample.latenessMaxNs ?? 0)}`
  return `${sample.timeS.toFixed(1).padStart(7)} s  sent ${formatCount(sample.sent)}  ${formatPps(sample.ratePps)}  ${formatBitRate(sample.bitRate)}  errors ${sample.errors}  late ${sample.late}${lateness}`
}

interface SendOptions extends StreamRunOptions {
  header: 'udpcom' | 'iperf2' | 'none'
  dscp: number | undefined
  multicastInterface: string | undefined
  maxLate: string
}

function sendOptions(values: Values): SendOptions {
  const header = stringValue(values, 'header') ?? 'udpcom'
  if (header !== 'udpcom' && header !== 'iperf2' && header !== 'none') throw new UsageError(`--header '${header}' must be udpcom, iperf2 or none`, 'send')
  const dscp = stringValue(values, 'dscp')
  const maxLate = stringValue(values, 'max-late') ?? '1%'
  lateAllowance(maxLate, 0)
  return {
    ...streamRunOptions(values, 'send'),
    header,
    dscp: dscp === undefined ? undefined : parseInteger(dscp, '--dscp', 0, 63),
    multicastInterface: stringValue(values, 'multicast-interface'),
    maxLate,
  }
}

async function send(options: SendOptions, host: string, port: number, context: Context): Promise<number> {
  const { output } = context
  const udpOptions: UdpComOptions = {
    direction: 0,
    ...(options.dscp === undefined ? {} : { dscp: options.dscp }),
    ...(options.multicastInterface === undefined ? {} : { multicast: { interface: options.multicastInterface } }),
  }
  const { udp, stream, where, startedAt } = startSending(context, 'send', host, port, udpOptions, options, options.header)
  const meter = new SendMeter(() => stream.stats())
  const recorder = new SeriesRecorder(SEND_SERIES, options.intervalNs)
  let last: SendSample | undefined
  const record = (sample: SendSample): void => {
    last = sample
    recorder.add(sample.timeS, { ...sample })
    output.interval({ ...sample }, sendIntervalText(sample))
  }
  const reason = await runUntil(context, {
    intervalNs: options.intervalNs,
    status: () => streamStatus('send', where, meter, last, stream.stats()),
    interval: () => record(meter.sample()),
    ended: stream.done.then(() => 'completed'),
  })
  if (reason !== 'completed') stream.stop()
  const stats = await stream.done
  record(meter.sample(stats))
  const packetStats = udp.getPacketStats()
  udp.closeSocket()
  output.clearStatus()

  const lateAllowed = lateAllowance(options.maxLate, stats.sent)
  const problems = sendProblems(stats, packetStats, lateAllowed, options.maxLate)
  if (stats.sent === 0) problems.push('nothing was sent')
  const rows = sendRows(stats, lateAllowed)
  printSummary(output, { address: where, ended: reason, header: options.header, ...sendRecord(stats), lateAllowed, problems, exitCode: problems.length > 0 ? 1 : 0 }, `udpcom send ${where}: ${endedText(reason)}`, rows)
  if (options.report !== undefined) {
    const series = recorder.toTimeSeries()
    writeRunReport(context, options.report, {
      title: `udpcom send ${where}`,
      startedAt,
      summary: rows,
      series,
      histograms: [latenessHistogram(stats)],
      notes: [
        "Measured at the sender: packets sent, send errors and lateness (departure − target time). Loss, reordering, inter-arrival jitter and one-way latency are the receiver's: udpcom recv --analyze (or iperf -s -u for --header iperf2); round trips: udpcom ping.",
      ],
    })
  }
  return problems.length > 0 ? 1 : 0
}

export const sendCommand: Command = {
  name: 'send',
  summary: 'send a native test stream at a fixed rate and measure its lateness',
  usage: 'send HOST:PORT --rate 10k [--count N | --duration 10s] [--size 64] [--burst 8] [--header udpcom|iperf2|none] [--priority 80 --cpu 1] [--dscp N] [--multicast-interface IF] [--max-late 1%] [--report FILE] [--json]',
  description:
    'Sends a test stream to HOST:PORT (a multicast group too), generated by the native sender thread: tick i leaves at ' +
    'start + i × period, --burst packets per tick, with udpcom\'s header (stream id, sequence, target and departure time; ' +
    'udpcom recv --analyze measures it) or iperf 2\'s (iperf -s -u measures it). Shows the rate, send errors and lateness ' +
    '(departure − target time) live, then a summary. Ends after --count packets, after --duration, or on Ctrl-C. Exits with ' +
    '1 when a send failed, or when more packets were late (left more than the spin window after their time) than --max-late allows.',
  options: {
    ...STREAM_RUN_OPTIONS,
    header: { type: 'string', value: 'NAME', help: 'udpcom (the default), iperf2 (for iperf -s -u) or none' },
    dscp: { type: 'string', value: 'N', help: 'DSCP 0..63 of the packets (46: EF)' },
    'multicast-interface': { type: 'string', value: 'IF', help: 'the interface multicast leaves by (a name or one of its addresses)' },
    'max-late': { type: 'string', value: '1%', help: 'late packets allowed before exit code 1: a count (0, 10) or a share of those sent (default 1%)' },
  },
  examples: [
    'udpcom send 127.0.0.1:5000 --rate 10k --count 100k',
    'udpcom send 192.0.2.10:5001 --rate 1k --duration 10s --header iperf2',
    'udpcom send 239.1.2.3:5004 --rate 1k --multicast-interface eth1 --priority 80 --cpu 1 --report send.html',
  ],
  async run(values, positionals, context) {
    const { host, port } = streamDestination(positionals, 'send')
    const options = sendOptions(values)
    checkReportPath(options.report)
    return send(options, host, port, context)
  },
}
