// `udpcom ping HOST:PORT --rate 1k`: round trips through a native reflector (`udpcom reflect`).
// A udpcom-header stream leaves from the native sender; the replies come back to the same
// instance, whose receive worker analyses them natively (`analyze: 'udpcom'`): the four times
// of the header give the round trip without the reflector's hold time, and its two one-way
// halves; the replies' sequence numbers give loss, reordering and duplicates. JavaScript only
// reads the statistics a few times a second.
//
// Loss = packets sent − distinct replies received once the stream ended and --wait passed (or
// every reply came). Exit code 1: a reply was lost, or a send failed.

import { formatCount, formatNs, formatPps } from '../format'
import { SeriesRecorder } from '../report'
import type { SeriesSpec, SummaryRow } from '../report/model'
import { ANALYSIS_SERIES, AnalysisMeter, analysisTotals, SEND_SERIES, SendMeter, type AnalysisSample, type SendSample } from '../report/stream-meter'
import type { StreamSendStats } from '../types'
import { stringValue, type Command, type Context } from './command'
import { runUntil } from './run'
import { latenessHistogram, sendIntervalText, sendProblems, sendRecord, sendRows, startSending, STREAM_RUN_OPTIONS, streamDestination, streamRunOptions, type StreamRunOptions } from './send'
import { checkReportPath, endedText, printSummary, writeRunReport } from './summary'
import { parseDuration } from './units'

/** How often the wait for the last replies checks, ms. */
const REPLY_POLL_MS = 10

/** The round-trip series, next to the send side's and the replies' analysis. */
const ROUND_TRIP_SERIES: readonly SeriesSpec[] = [
  { key: 'replyRatePps', label: 'replies', unit: 'pps', plot: 'rate', description: 'Replies received per second over the interval.' },
  {
    key: 'rttP50Ns',
    label: 'p50 round trip (since start)',
    unit: 'ns',
    plot: 'lateness',
    description: 'Round-trip time without the reflector\'s hold time (arrival − departure − (reflector send − reflector receive)), median since the start.',
  },
  { key: 'rttP99Ns', label: 'p99 round trip (since start)', unit: 'ns', plot: 'lateness', description: 'The same, 99th percentile since the start.' },
]

const PING_SERIES: readonly SeriesSpec[] = [
  ...SEND_SERIES,
  ...ROUND_TRIP_SERIES,
  ...ANALYSIS_SERIES.filter((s) => s.key !== 'oneWayLatencyP99Ns' && s.key !== 'arrivalLatenessP99Ns'),
]

interface PingOptions extends StreamRunOptions {
  waitNs: number
}

interface PingSample extends SendSample, Omit<AnalysisSample, 'streams'> {
  replies: number
  replyRatePps: number
  rttP50Ns: number | null
  rttP99Ns: number | null
}

function pingText(sample: PingSample): string {
  const rtt = sample.rttP50Ns === null ? '' : `  rtt p50 ${formatNs(sample.rttP50Ns)} p99 ${formatNs(sample.rttP99Ns ?? 0)}`
  return `${sendIntervalText(sample)}  replies ${formatCount(sample.replies)}  lost ${sample.lost}${rtt}`
}

async function ping(options: PingOptions, host: string, port: number, context: Context): Promise<number> {
  const { output, signal } = context
  const { udp, stream, where, startedAt } = startSending(context, 'ping', host, port, { direction: 2, analyze: 'udpcom', deliver: false }, options, 'udpcom')
  const sendMeter = new SendMeter(() => stream.stats())
  const analysisMeter = new AnalysisMeter(() => udp.getStreamStats())
  const recorder = new SeriesRecorder(PING_SERIES, options.intervalNs)
  let previous = { ns: process.hrtime.bigint(), replies: 0 }
  let last: PingSample | undefined
  const take = (stats: StreamSendStats = stream.stats()): PingSample => {
    const sent = sendMeter.sample(stats)
    const { streams: _streams, ...analysis } = analysisMeter.sample()
    const replies = udp.getPacketStats().nPacketsReceived
    const now = process.hrtime.bigint()
    const seconds = Number(now - previous.ns) / 1e9
    const replyRatePps = seconds > 0 ? (replies - previous.replies) / seconds : 0
    previous = { ns: now, replies }
    const roundTrip = stats.roundTrip
    const measured = roundTrip !== undefined && roundTrip.count > 0
    return { ...sent, ...analysis, replies, replyRatePps, rttP50Ns: measured ? roundTrip.rttP50Ns : null, rttP99Ns: measured ? roundTrip.rttP99Ns : null }
  }
  const record = (sample: PingSample): void => {
    last = sample
    recorder.add(sample.timeS, { ...sample })
    output.interval({ ...sample }, pingText(sample))
  }
  const status = (): string => {
    const stats = stream.stats()
    const replies = udp.getPacketStats().nPacketsReceived
    const rtt = stats.roundTrip && stats.roundTrip.count > 0 ? `rtt p50 ${formatNs(stats.roundTrip.rttP50Ns)} p99 ${formatNs(stats.roundTrip.rttP99Ns)}` : 'rtt –'
    return [`ping ${where}`, `${sendMeter.elapsedS().toFixed(1)} s`, `sent ${formatCount(stats.sent)}`, formatPps(last?.ratePps ?? 0), `replies ${formatCount(replies)}`, `lost ${formatCount(Math.max(0, stats.sent - replies))} (in flight included)`, rtt].join('  ')
  }
  const reason = await runUntil(context, {
    intervalNs: options.intervalNs,
    status,
    interval: () => record(take()),
    ended: stream.done.then(() => 'completed'),
  })
  if (reason !== 'completed') stream.stop()
  let stats = await stream.done
  // The last replies are still on their way: wait for them, up to --wait (Ctrl-C ends the wait).
  const waitUntil = Date.now() + options.waitNs / 1e6
  const distinctReplies = (): number => {
    const totals = analysisTotals(udp.getStreamStats())
    return totals.received - totals.duplicates
  }
  while (distinctReplies() < stats.sent && Date.now() < waitUntil && !signal.aborted) {
    if (output.mode === 'status') output.status(status())
    await new Promise((resolve) => setTimeout(resolve, REPLY_POLL_MS))
  }
  stats = stream.stats()
  const final = take(stats)
  udp.stop()
  const packetStats = udp.getPacketStats()
  const totals = analysisTotals(udp.getStreamStats())
  udp.closeSocket()
  output.clearStatus()
  // Loss by sequence number counts the gaps below the highest reply; the tail's are the rest.
  const lost = Math.max(0, stats.sent - (totals.received - totals.duplicates))
  final.lost += lost - final.lostTotal
  final.lostTotal = lost
  record(final)

  const problems = sendProblems(stats, packetStats, Infinity, '')
  if (lost > 0) problems.unshift(`${formatCount(lost)} of ${formatCount(stats.sent)} packets got no reply (${((lost / Math.max(1, stats.sent)) * 100).toFixed(2)}%)`)
  if (stats.sent === 0) problems.push('nothing was sent')
  const roundTrip = stats.roundTrip
  const rows: SummaryRow[] = [
    ...sendRows(stats, Infinity),
    { key: 'replies', label: 'replies', value: totals.received, unit: 'packets' },
    { key: 'lost', label: 'lost (no reply)', value: lost, unit: 'packets', problem: lost > 0 },
    { key: 'lossRatio', label: 'loss', value: stats.sent > 0 ? lost / stats.sent : 0, unit: 'ratio', problem: lost > 0 },
    { key: 'duplicates', label: 'duplicate replies', value: totals.duplicates, unit: 'packets' },
    { key: 'reordered', label: 'reordered replies', value: totals.reordered, unit: 'packets' },
  ]
  if (roundTrip !== undefined && roundTrip.count > 0) {
    rows.push(
      { key: 'rttP50Ns', label: 'round trip p50', value: roundTrip.rttP50Ns, unit: 'ns' },
      { key: 'rttP99Ns', label: 'round trip p99', value: roundTrip.rttP99Ns, unit: 'ns' },
      { key: 'rttMaxNs', label: 'round trip max', value: roundTrip.rttMaxNs, unit: 'ns' },
      { key: 'forwardP50Ns', label: 'one way out p50 (clocks must agree)', value: roundTrip.forwardP50Ns, unit: 'ns' },
      { key: 'backwardP50Ns', label: 'one way back p50 (clocks must agree)', value: roundTrip.backwardP50Ns, unit: 'ns' },
    )
  }
  if (totals.received > 1) rows.push({ key: 'jitterNs', label: 'reply jitter (RFC 3550)', value: totals.jitterNs, unit: 'ns' })
  const record_ = {
    address: where,
    ended: reason,
    ...sendRecord(stats),
    replies: totals.received,
    lost,
    duplicates: totals.duplicates,
    reordered: totals.reordered,
    roundTrips: roundTrip?.count ?? 0,
    rttP50Ns: roundTrip && roundTrip.count > 0 ? roundTrip.rttP50Ns : null,
    rttP99Ns: roundTrip && roundTrip.count > 0 ? roundTrip.rttP99Ns : null,
    rttMaxNs: roundTrip && roundTrip.count > 0 ? roundTrip.rttMaxNs : null,
    forwardP50Ns: roundTrip && roundTrip.count > 0 ? roundTrip.forwardP50Ns : null,
    backwardP50Ns: roundTrip && roundTrip.count > 0 ? roundTrip.backwardP50Ns : null,
    jitterNs: totals.received > 1 ? totals.jitterNs : null,
    problems,
    exitCode: problems.length > 0 ? 1 : 0,
  }
  printSummary(output, record_, `udpcom ping ${where}: ${endedText(reason)}`, rows)
  if (options.report !== undefined) {
    writeRunReport(context, options.report, {
      title: `udpcom ping ${where}`,
      startedAt,
      summary: rows,
      series: recorder.toTimeSeries(),
      histograms: [latenessHistogram(stats)],
      notes: [
        'Round trips through a native reflector (udpcom reflect): the round-trip time leaves out the time the reflector held each packet. Loss, reordering, duplicates and jitter are those of the replies, as this instance received them; the last interval includes the replies that never came.',
      ],
    })
  }
  return record_.exitCode
}

export const pingCommand: Command = {
  name: 'ping',
  summary: 'round trips through udpcom reflect: round-trip time, its two halves, loss',
  usage: 'ping HOST:PORT --rate 1k [--count N | --duration 10s] [--size 64] [--burst N] [--wait 1s] [--priority 80 --cpu 1] [--report FILE] [--json]',
  description:
    'Sends a udpcom-header stream from the native sender to a reflector (udpcom reflect) and analyses the replies natively: ' +
    'round-trip time without the reflector\'s hold time (p50, p99, max), the two one-way halves (meaningful when both ' +
    'clocks agree), loss, reordering, duplicates and jitter of the replies, and the send side\'s lateness. After the ' +
    'stream ends it waits up to --wait for the last replies. Exits with 1 when a reply was lost or a send failed.',
  options: {
    ...STREAM_RUN_OPTIONS,
    wait: { type: 'string', short: 'w', value: '1s', help: 'how long to wait for the last replies after the stream ended (default 1s)' },
  },
  examples: ['udpcom ping 127.0.0.1:5000 --rate 1k --count 10k', 'udpcom ping 192.0.2.10:5000 --rate 10k --duration 10s --priority 80 --cpu 1 --report ping.html'],
  async run(values, positionals, context) {
    const { host, port } = streamDestination(positionals, 'ping')
    const wait = stringValue(values, 'wait')
    const options: PingOptions = { ...streamRunOptions(values, 'ping'), waitNs: wait === undefined ? 1e9 : parseDuration(wait, '--wait') }
    checkReportPath(options.report)
    return ping(options, host, port, context)
  },
}
