// `udpcom recv [HOST:]PORT`: receive datagrams, show rate, drops, inter-arrival times and the
// receive path's latency live, and summarise (optionally as an HTML report).
//
// Without a stream header it measures what a receiver alone can: arrivals, what the kernel and
// the receive ring dropped, inter-arrival times from the arrival stamps, and the delivery
// latency. Loss by sequence number, reordering, one-way latency and lateness come with
// `--analyze` once the engine analyses streams natively; `--capture` with capture files;
// `--group/--interface` with multicast membership.

import { accessSync, constants } from 'node:fs'
import { dirname, resolve } from 'node:path'

import { formatBitRate, formatCount, formatNs, formatPps } from '../format'
import type { PacketStats } from '../types'
import { UdpCom } from '../udpcom'
import { buildReport, fromBuckets, SeriesRecorder, writeReport } from '../report'
import type { SummaryRow } from '../report/model'
import { RECEIVE_SERIES, ReceiveMeter, type ReceiveSample } from '../report/receive-meter'
import { stringValue, type Command, type Context, type Values } from './command'
import { formatEndpoint, parseEndpoint } from './endpoint'
import { rowPairs } from './rows'
import { UsageError } from './errors'
import { parseCount, parseDuration, parseInteger } from './units'
import { runTimers } from './until'

interface RecvOptions {
  count: number | undefined
  durationNs: number | undefined
  intervalNs: number
  report: string | undefined
  cpu: number | undefined
  priority: number | undefined
  timestamping: 'software' | 'none'
}

function recvOptions(values: Values): RecvOptions {
  const text = (name: string): string | undefined => stringValue(values, name)
  const countText = text('count')
  const durationText = text('duration')
  const intervalText = text('interval')
  const cpuText = text('cpu')
  const priorityText = text('priority')
  const timestamping = text('timestamping') ?? 'software'
  if (timestamping !== 'software' && timestamping !== 'none') {
    throw new UsageError(`--timestamping '${timestamping}' must be software or none`, 'recv')
  }
  const count = countText === undefined ? undefined : parseCount(countText, '--count')
  if (count === 0) throw new UsageError('--count must be at least 1', 'recv')
  const intervalNs = intervalText === undefined ? 1e9 : parseDuration(intervalText, '--interval')
  if (intervalNs < 100e6) throw new UsageError('--interval must be at least 100ms', 'recv')
  const durationNs = durationText === undefined ? undefined : parseDuration(durationText, '--duration')
  if (durationNs === 0) throw new UsageError('--duration must be above 0', 'recv')
  return {
    count,
    durationNs,
    intervalNs,
    report: text('report'),
    cpu: cpuText === undefined ? undefined : parseInteger(cpuText, '--cpu', 0, 1023),
    priority: priorityText === undefined ? undefined : parseInteger(priorityText, '--priority', 1, 99),
    timestamping,
  }
}

/** The live status line: the totals now, the rates of the last full interval. */
function statusText(where: string, meter: ReceiveMeter, last: ReceiveSample | undefined, stats: PacketStats): string {
  return [
    `recv ${where}`,
    `${meter.elapsedS().toFixed(1)} s`,
    `received ${formatCount(meter.received)}`,
    formatPps(last?.ratePps ?? 0),
    formatBitRate(last?.bitRate ?? 0),
    `dropped ${formatCount(ReceiveMeter.dropped(stats))}`,
    `p99 delivery ${stats.nPacketsDelivered > 0 ? formatNs(stats.p99DeliveryLatencyNs) : '–'}`,
  ].join('  ')
}

function intervalText(sample: ReceiveSample): string {
  const gaps =
    sample.interArrivalMeanNs === null
      ? ''
      : `  inter-arrival ${formatNs(sample.interArrivalMeanNs)}${sample.interArrivalJitterNs === null ? '' : ` ±${formatNs(sample.interArrivalJitterNs)}`} (max ${formatNs(sample.interArrivalMaxNs ?? 0)})`
  return `${sample.timeS.toFixed(1).padStart(7)} s  received ${formatCount(sample.received)}  ${formatPps(sample.ratePps)}  ${formatBitRate(sample.bitRate)}  dropped ${sample.dropped}${gaps}`
}

/** Runs until the count is reached, the duration is over, or Ctrl-C. */
async function receive(options: RecvOptions, host: string, port: number, context: Context): Promise<number> {
  const { output } = context
  const udp = new UdpCom(host, port, host, 0, {
    direction: 1,
    timestamping: options.timestamping,
    ...(options.cpu === undefined ? {} : { cpu: options.cpu }),
    ...(options.priority === undefined ? {} : { priority: options.priority }),
  })
  try {
    udp.initSocket()
    udp.start()
  } catch (error) {
    udp.closeSocket()
    throw error
  }
  const where = formatEndpoint({ host, port: udp.localPort })
  const startedAt = new Date()
  const meter = new ReceiveMeter(udp, options.count === undefined ? {} : { maxCount: options.count, onLimit: () => timers.finish('count') })
  const recorder = new SeriesRecorder(RECEIVE_SERIES, options.intervalNs)
  output.event(
    'listening',
    { address: host, port: udp.localPort, count: options.count ?? null, durationNs: options.durationNs ?? null },
    `udpcom recv: listening on ${where}${options.count ? `, for ${formatCount(options.count)} datagrams` : ''}${options.durationNs ? `, for ${formatNs(options.durationNs)}` : ''} (Ctrl-C ends)`,
  )

  let recorded: ReceiveSample | undefined
  const record = (sample: ReceiveSample): void => {
    recorded = sample
    recorder.add(sample.timeS, { ...sample })
    output.interval({ ...sample }, intervalText(sample))
  }
  let lastSample: ReceiveSample | undefined
  const timers = runTimers(context, {
    intervalNs: options.intervalNs,
    durationNs: options.durationNs,
    status: () => statusText(where, meter, lastSample, meter.stats()),
    interval: () => {
      lastSample = meter.sample()
      record(lastSample)
    },
  })
  const reason = await timers.ended
  // The last, partial interval: always when datagrams arrived or were dropped in it (the last
  // interval's totals are the run's), else only when it is not very short (a rate over a few
  // milliseconds would mean little).
  const tail = meter.sample()
  const changed = recorded === undefined || tail.received !== recorded.received || tail.droppedTotal !== recorded.droppedTotal
  if (changed || tail.intervalNs >= 50e6) record(tail)
  udp.stop()
  const stats = udp.getPacketStats()
  udp.closeSocket()
  output.clearStatus()
  return finish({ options, where, reason, meter, stats, recorder, startedAt, context })
}

interface Finish {
  options: RecvOptions
  where: string
  reason: string
  meter: ReceiveMeter
  stats: PacketStats
  recorder: SeriesRecorder
  startedAt: Date
  context: Context
}

/** The summary, the report, the exit code. */
function finish({ options, where, reason, meter, stats, recorder, startedAt, context }: Finish): number {
  const { output } = context
  const elapsedS = meter.elapsedS()
  const arrivalSpanS = meter.firstArrivalNs !== undefined && meter.lastArrivalNs !== undefined ? Number(meter.lastArrivalNs - meter.firstArrivalNs) / 1e9 : 0
  // The mean rate is over the arrivals (first to last), not over the waiting before them.
  const ratePps = arrivalSpanS > 0 ? (meter.received - 1) / arrivalSpanS : 0
  const bitRate = arrivalSpanS > 0 ? (meter.bytes * 8 * (meter.received - 1)) / meter.received / arrivalSpanS : 0
  const dropped = ReceiveMeter.dropped(stats)
  const gaps = meter.interArrival
  const problems: string[] = []
  if (stats.nKernelDrops > 0) problems.push(`the kernel dropped ${formatCount(stats.nKernelDrops)} datagrams (socket receive buffer full)`)
  if (stats.nRecvRingOverflow > 0) problems.push(`${formatCount(stats.nRecvRingOverflow)} datagrams were dropped because the receive ring was full`)
  if (options.count !== undefined && meter.received < options.count) {
    problems.push(`only ${formatCount(meter.received)} of ${formatCount(options.count)} datagrams arrived`)
  } else if (meter.received === 0) {
    problems.push('no datagram arrived')
  }
  const delivered = stats.nPacketsDelivered > 0
  const record = {
    address: where,
    ended: reason,
    elapsedS,
    received: meter.received,
    bytes: meter.bytes,
    ratePps,
    bitRate,
    dropped,
    droppedByKernel: stats.nKernelDrops,
    droppedByRing: stats.nRecvRingOverflow,
    interArrivalMinNs: gaps.count > 0 ? gaps.minNs : null,
    interArrivalMeanNs: gaps.count > 0 ? gaps.meanNs : null,
    interArrivalP99Ns: gaps.count > 0 ? gaps.percentileNs(0.99) : null,
    interArrivalMaxNs: gaps.count > 0 ? gaps.maxNs : null,
    interArrivalJitterNs: meter.variations > 0 ? meter.variationSumNs / meter.variations : null,
    deliveryP50Ns: delivered ? stats.p50DeliveryLatencyNs : null,
    deliveryP99Ns: delivered ? stats.p99DeliveryLatencyNs : null,
    deliveryMaxNs: delivered ? stats.maxDeliveryLatencyNs : null,
    socketReceived: stats.nPacketsReceived,
    problems,
    exitCode: problems.length > 0 ? 1 : 0,
  }
  const rows: SummaryRow[] = [
    { key: 'elapsedS', label: 'time', value: elapsedS, unit: 's' },
    { key: 'received', label: 'received', value: meter.received, unit: 'packets', problem: options.count !== undefined && meter.received < options.count },
    { key: 'bytes', label: 'payload', value: meter.bytes, unit: 'bytes' },
    { key: 'ratePps', label: 'mean rate (first to last arrival)', value: ratePps, unit: 'pps' },
    { key: 'bitRate', label: 'mean payload bit rate', value: bitRate, unit: 'bit/s' },
    { key: 'droppedByKernel', label: 'dropped by the kernel (buffer full)', value: stats.nKernelDrops, unit: 'packets', problem: stats.nKernelDrops > 0 },
    { key: 'droppedByRing', label: 'dropped by the receive ring', value: stats.nRecvRingOverflow, unit: 'packets', problem: stats.nRecvRingOverflow > 0 },
  ]
  if (gaps.count > 0) {
    rows.push(
      { key: 'interArrivalMinNs', label: 'inter-arrival min', value: gaps.minNs, unit: 'ns' },
      { key: 'interArrivalMeanNs', label: 'inter-arrival mean', value: gaps.meanNs, unit: 'ns' },
      { key: 'interArrivalP99Ns', label: 'inter-arrival p99 (±9%)', value: gaps.percentileNs(0.99), unit: 'ns' },
      { key: 'interArrivalMaxNs', label: 'inter-arrival max', value: gaps.maxNs, unit: 'ns' },
    )
  }
  if (record.interArrivalJitterNs !== null) rows.push({ key: 'interArrivalJitterNs', label: 'inter-arrival variation (mean |Δ|)', value: record.interArrivalJitterNs, unit: 'ns' })
  if (delivered) {
    rows.push(
      { key: 'deliveryP50Ns', label: 'delivery latency p50', value: stats.p50DeliveryLatencyNs, unit: 'ns' },
      { key: 'deliveryP99Ns', label: 'delivery latency p99', value: stats.p99DeliveryLatencyNs, unit: 'ns' },
      { key: 'deliveryMaxNs', label: 'delivery latency max', value: stats.maxDeliveryLatencyNs, unit: 'ns' },
    )
  }
  output.summary(record, `udpcom recv ${where}: ${reason === 'count' ? 'count reached' : reason === 'duration' ? 'duration over' : 'stopped'}${problems.length > 0 ? ` — ${problems.join('; ')}` : ''}`, rowPairs(rows))

  if (options.report !== undefined) {
    const histograms = [gaps.toHistogram('interArrival', 'Inter-arrival times', 'Time between consecutive arrival stamps (kernel receive stamps with --timestamping software), in buckets about 9% wide.')]
    const series = recorder.toTimeSeries()
    const notes = [
      'Measured by a receiver alone: loss by sequence number, reordering, one-way latency and lateness against the sender\'s target times need a stream header and the native stream analysis (recv --analyze, which comes with udpcom\'s streams).',
    ]
    if (recorder.notKept > 0) notes.push(`The time series keeps its first ${series.timeS.length} samples; ${recorder.notKept} later ones are left out.`)
    if (stats.latencyHistogram.length > 0 && stats.nPacketsSent > 0) histograms.push(fromBuckets(stats.latencyHistogram, 'sendLateness', 'Send lateness', 'Departure − target time of sent packets.'))
    writeReport(
      options.report,
      buildReport({ title: `udpcom recv ${where}`, command: context.commandLine, startedAt, endedAt: new Date(), summary: rows, series, histograms, notes }),
    )
    output.event('report', { path: options.report }, `report: ${options.report}`)
  }
  return record.exitCode
}

export const recvCommand: Command = {
  name: 'recv',
  summary: 'receive datagrams and measure rate, drops, inter-arrival times and delivery latency',
  usage: 'recv [HOST:]PORT [--count N | --duration 10s] [--report FILE] [--cpu N] [--priority N] [--json]',
  description:
    'Listens on HOST:PORT (default host 0.0.0.0; [::] for IPv6; port 0 picks a free one) and counts what arrives: rate, ' +
    'datagrams the kernel or the receive ring dropped, inter-arrival times from the kernel receive stamps, and the receive ' +
    "path's delivery latency. Ends after --count datagrams, after --duration, or on Ctrl-C, with a summary. Exits with 1 " +
    'when datagrams were dropped, fewer than --count arrived, or none did.',
  options: {
    count: { type: 'string', short: 'n', value: 'N', help: 'stop after N datagrams (10k, 1M)' },
    duration: { type: 'string', short: 't', value: '10s', help: 'stop after this long (500ms, 10s, 2m; a bare number is seconds)' },
    interval: { type: 'string', short: 'i', value: '1s', help: 'interval of the plain lines, JSON intervals and report samples (default 1s)' },
    report: { type: 'string', value: 'FILE', help: 'write an HTML report with plots to FILE' },
    cpu: { type: 'string', value: 'N', help: 'pin the receive thread to CPU N' },
    priority: { type: 'string', value: 'N', help: 'SCHED_FIFO priority 1..99 for the receive thread' },
    timestamping: { type: 'string', value: 'MODE', help: 'software (kernel receive stamps, the default) or none' },
  },
  examples: ['udpcom recv 5000 --duration 10s', 'udpcom recv 127.0.0.1:5000 --count 100k --report recv.html', 'udpcom recv [::]:5000 --json'],
  async run(values, positionals, context) {
    if (positionals.length !== 1) {
      throw new UsageError(positionals.length === 0 ? 'give the port to listen on: udpcom recv [HOST:]PORT' : `unexpected argument '${positionals[1]}'`, 'recv')
    }
    const options = recvOptions(values)
    const { host, port } = parseEndpoint(positionals[0]!, 'recv', '0.0.0.0', true)
    // A report that cannot be written should fail now, not after the run.
    if (options.report !== undefined) accessSync(dirname(resolve(options.report)), constants.W_OK)
    return receive(options, host, port, context)
  },
}
