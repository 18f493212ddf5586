// `udpcom recv [HOST:]PORT`: receive datagrams, show rate, drops, inter-arrival times and the
// receive path's latency live, and summarise (optionally as an HTML report).
//
// Without a stream header it measures what a receiver alone can: arrivals, what the kernel and
// the receive ring dropped, inter-arrival times from the arrival stamps, and the delivery
// latency. With `--analyze udpcom|iperf2` the receive worker also reads every datagram's stream
// header natively (getStreamStats()): loss by sequence number, reordering, duplicates, jitter,
// one-way latency and (udpcom header) lateness against the sender's target times; loss is a
// measured problem (exit code 1). `--group` joins a multicast group (`--source`: source-specific)
// on `--interface`; `--capture FILE` writes every received datagram to a pcapng (or .pcap) file
// from the native capture writer.

import { formatBitRate, formatCount, formatNs, formatPps } from '../format'
import type { Capture } from '../capture'
import type { CaptureResult, PacketStats, StreamStats } from '../types'
import { UdpCom } from '../udpcom'
import { fromBuckets, SeriesRecorder } from '../report'
import type { SummaryRow } from '../report/model'
import { RECEIVE_SERIES, ReceiveMeter, type ReceiveSample } from '../report/receive-meter'
import { ANALYSIS_SERIES, AnalysisMeter, analysisTotals, type AnalysisSample, type AnalysisTotals } from '../report/stream-meter'
import { onePositional, stringValue, type Command, type Context, type Values } from './command'
import { formatEndpoint, parseEndpoint } from './endpoint'
import { UsageError } from './errors'
import { parseRunLimits, parseScheduling, RUN_LIMIT_OPTIONS, runUntil, SCHEDULING_OPTIONS, schedulingOptions, type RunLimits, type Scheduling } from './run'
import { checkReportPath, endedText, printSummary, writeRunReport } from './summary'

interface RecvOptions extends RunLimits, Scheduling {
  report: string | undefined
  timestamping: 'software' | 'none'
  analyze: 'udpcom' | 'iperf2' | undefined
  group: string | undefined
  source: string | undefined
  interface: string | undefined
  capture: string | undefined
}

function recvOptions(values: Values): RecvOptions {
  const text = (name: string): string | undefined => stringValue(values, name)
  const timestamping = text('timestamping') ?? 'software'
  if (timestamping !== 'software' && timestamping !== 'none') {
    throw new UsageError(`--timestamping '${timestamping}' must be software or none`, 'recv')
  }
  const analyze = text('analyze')
  if (analyze !== undefined && analyze !== 'udpcom' && analyze !== 'iperf2') throw new UsageError(`--analyze '${analyze}' must be udpcom or iperf2`, 'recv')
  const group = text('group')
  if (group === undefined && text('source') !== undefined) throw new UsageError('--source names the sender of a source-specific group: give --group too', 'recv')
  if (group === undefined && text('interface') !== undefined) throw new UsageError('--interface names where --group is joined: give --group too', 'recv')
  return {
    ...parseRunLimits(values, 'recv'),
    ...parseScheduling(values),
    report: text('report'),
    timestamping,
    analyze,
    group,
    source: text('source'),
    interface: text('interface'),
    capture: text('capture'),
  }
}

/** The live status line: the totals now, the rates of the last full interval. */
function statusText(where: string, meter: ReceiveMeter, last: ReceiveSample | undefined, stats: PacketStats, streams: StreamStats[] | undefined): string {
  const analysed = streams === undefined ? [] : analysisStatus(analysisTotals(streams))
  return [
    `recv ${where}`,
    `${meter.elapsedS().toFixed(1)} s`,
    `received ${formatCount(meter.received)}`,
    formatPps(last?.ratePps ?? 0),
    formatBitRate(last?.bitRate ?? 0),
    `dropped ${formatCount(ReceiveMeter.dropped(stats))}`,
    ...analysed,
    `p99 delivery ${stats.nPacketsDelivered > 0 ? formatNs(stats.p99DeliveryLatencyNs) : '–'}`,
  ].join('  ')
}

/** The stream analysis's part of the status line: loss, reordering, lateness. */
function analysisStatus(totals: AnalysisTotals): string[] {
  const parts = [`lost ${formatCount(totals.lost)}`, `reordered ${formatCount(totals.reordered)}`]
  if (totals.latenessP99Ns > 0) parts.push(`p99 lateness ${formatNs(totals.latenessP99Ns)}`)
  else if (totals.received > 0) parts.push(`p99 one-way ${formatNs(totals.oneWayLatencyP99Ns)}`)
  return parts
}

function intervalText(sample: ReceiveSample & Partial<AnalysisSample>): string {
  const gaps =
    sample.interArrivalMeanNs === null
      ? ''
      : `  inter-arrival ${formatNs(sample.interArrivalMeanNs)}${sample.interArrivalJitterNs === null ? '' : ` ±${formatNs(sample.interArrivalJitterNs)}`} (max ${formatNs(sample.interArrivalMaxNs ?? 0)})`
  const analysis = sample.lost === undefined ? '' : `  lost ${sample.lost}  reordered ${sample.reordered}  duplicates ${sample.duplicates}${sample.jitterNs === null ? '' : `  jitter ${formatNs(sample.jitterNs ?? 0)}`}`
  return `${sample.timeS.toFixed(1).padStart(7)} s  received ${formatCount(sample.received)}  ${formatPps(sample.ratePps)}  ${formatBitRate(sample.bitRate)}  dropped ${sample.dropped}${analysis}${gaps}`
}

/** Runs until the count is reached, the duration is over, or Ctrl-C. */
async function receive(options: RecvOptions, host: string, port: number, context: Context): Promise<number> {
  const { output } = context
  const udp = new UdpCom(host, port, host, 0, {
    direction: 1,
    timestamping: options.timestamping,
    ...(options.analyze === undefined ? {} : { analyze: options.analyze }),
    // Several receivers of one group on this host each get every datagram.
    ...(options.group === undefined ? {} : { reuseAddress: true }),
    ...schedulingOptions(options),
  })
  let capture: Capture | undefined
  try {
    udp.initSocket()
    if (options.group !== undefined && options.source !== undefined) udp.addSourceSpecificMembership(options.source, options.group, options.interface)
    else if (options.group !== undefined) udp.addMembership(options.group, options.interface)
    udp.start()
    if (options.capture !== undefined) capture = udp.capture(options.capture)
  } catch (error) {
    udp.closeSocket()
    throw error
  }
  const where = formatEndpoint({ host, port: udp.localPort })
  const startedAt = new Date()
  let reachedCount: (reason: string) => void = () => {}
  const counted = new Promise<string>((resolve) => {
    reachedCount = resolve
  })
  const meter = new ReceiveMeter(udp, options.count === undefined ? {} : { maxCount: options.count, onLimit: () => reachedCount('count') })
  const analysis = options.analyze === undefined ? undefined : new AnalysisMeter(() => udp.getStreamStats())
  const recorder = new SeriesRecorder(analysis === undefined ? RECEIVE_SERIES : [...RECEIVE_SERIES, ...ANALYSIS_SERIES], options.intervalNs)
  const joined = options.group === undefined ? '' : `, joined ${options.source === undefined ? '' : `${options.source} → `}${options.group}${options.interface === undefined ? '' : ` on ${options.interface}`}`
  output.event(
    'listening',
    {
      address: host,
      port: udp.localPort,
      count: options.count ?? null,
      durationNs: options.durationNs ?? null,
      ...(options.group === undefined ? {} : { group: options.group, source: options.source ?? null, interface: options.interface ?? null }),
      ...(options.analyze === undefined ? {} : { analyze: options.analyze }),
      ...(options.capture === undefined ? {} : { capture: options.capture }),
    },
    `udpcom recv: listening on ${where}${joined}${options.count ? `, for ${formatCount(options.count)} datagrams` : ''}${options.durationNs ? `, for ${formatNs(options.durationNs)}` : ''}${options.analyze ? `, analysing ${options.analyze} headers` : ''}${options.capture ? `, capturing to ${options.capture}` : ''} (Ctrl-C ends)`,
  )

  let lastSample: ReceiveSample | undefined
  const record = (sample: ReceiveSample): void => {
    const analysed = analysis?.sample()
    const values = analysed === undefined ? { ...sample } : { ...sample, ...analysed }
    recorder.add(sample.timeS, values)
    output.interval(values, intervalText(values))
  }
  const reason = await runUntil(context, {
    intervalNs: options.intervalNs,
    durationNs: options.durationNs,
    status: () => statusText(where, meter, lastSample, meter.stats(), analysis === undefined ? undefined : udp.getStreamStats()),
    interval: () => {
      lastSample = meter.sample()
      record(lastSample)
    },
    ended: counted,
  })
  // The last, partial interval: always when datagrams arrived or were dropped in it (the last
  // interval's totals are the run's), else only when it is not very short (a rate over a few
  // milliseconds would mean little).
  const tail = meter.sample()
  const changed = lastSample === undefined || tail.received !== lastSample.received || tail.droppedTotal !== lastSample.droppedTotal
  if (changed || tail.intervalNs >= 50e6) record(tail)
  // Everything captured is written before the workers stop (close() is exact).
  const captured = capture === undefined ? undefined : await capture.close()
  udp.stop()
  const stats = udp.getPacketStats()
  const streams = analysis === undefined ? undefined : udp.getStreamStats()
  udp.closeSocket()
  output.clearStatus()
  return finish({ options, where, reason, meter, stats, streams, captured, recorder, startedAt, context })
}

interface Finish {
  options: RecvOptions
  where: string
  reason: string
  meter: ReceiveMeter
  stats: PacketStats
  /** The stream analysis (--analyze). */
  streams: StreamStats[] | undefined
  /** The capture's counts (--capture). */
  captured: CaptureResult | undefined
  recorder: SeriesRecorder
  startedAt: Date
  context: Context
}

/** The stream analysis's rows of the summary. */
function analysisRows(totals: AnalysisTotals): SummaryRow[] {
  const worst = totals.streams > 1 ? ` (worst of ${totals.streams} streams)` : ''
  const rows: SummaryRow[] = [
    { key: 'streams', label: 'streams', value: totals.streams, unit: 'packets' },
    { key: 'lost', label: 'lost (missing sequence numbers)', value: totals.lost, unit: 'packets', problem: totals.lost > 0 },
    { key: 'reordered', label: 'reordered', value: totals.reordered, unit: 'packets' },
    { key: 'duplicates', label: 'duplicates', value: totals.duplicates, unit: 'packets' },
  ]
  if (totals.received === 0) return rows
  rows.push(
    { key: 'jitterNs', label: `jitter (RFC 3550)${worst}`, value: totals.jitterNs, unit: 'ns' },
    { key: 'pdvP99Ns', label: `delay variation p99 (RFC 5481)${worst}`, value: totals.pdvP99Ns, unit: 'ns' },
    { key: 'oneWayLatencyP50Ns', label: `one-way latency p50${worst}`, value: totals.oneWayLatencyP50Ns, unit: 'ns' },
    { key: 'oneWayLatencyP99Ns', label: `one-way latency p99${worst}`, value: totals.oneWayLatencyP99Ns, unit: 'ns' },
    { key: 'oneWayLatencyMaxNs', label: `one-way latency max${worst}`, value: totals.oneWayLatencyMaxNs, unit: 'ns' },
  )
  if (totals.latenessP99Ns > 0) {
    rows.push(
      { key: 'latenessP50Ns', label: `arrival lateness p50${worst}`, value: totals.latenessP50Ns, unit: 'ns' },
      { key: 'latenessP99Ns', label: `arrival lateness p99${worst}`, value: totals.latenessP99Ns, unit: 'ns' },
      { key: 'latenessMaxNs', label: `arrival lateness max${worst}`, value: totals.latenessMaxNs, unit: 'ns' },
    )
  }
  return rows
}

/** The summary, the report, the exit code. */
function finish({ options, where, reason, meter, stats, streams, captured, recorder, startedAt, context }: Finish): number {
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
  const totals = streams === undefined ? undefined : analysisTotals(streams)
  if (totals !== undefined) {
    if (totals.lost > 0) problems.push(`${formatCount(totals.lost)} datagrams lost (missing sequence numbers)`)
    if (totals.streams === 0 && meter.received > 0) problems.push(`no datagram carried ${options.analyze === 'udpcom' ? "udpcom's" : "iperf 2's"} header (send with udpcom send${options.analyze === 'udpcom' ? ', or use --analyze iperf2' : ' --header iperf2'})`)
  }
  if (captured !== undefined && captured.dropped > 0) problems.push(`the capture could not keep ${formatCount(captured.dropped)} datagrams (the disk did not keep up)`)
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
    ...(totals === undefined ? {} : { analysis: totals, streams }),
    ...(captured === undefined ? {} : { capture: { path: options.capture, written: captured.written, dropped: captured.dropped } }),
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
  if (totals !== undefined) rows.push(...analysisRows(totals))
  if (captured !== undefined) {
    rows.push(
      { key: 'captured', label: `captured to ${options.capture!}`, value: captured.written, unit: 'packets' },
      { key: 'captureDropped', label: 'not captured (the disk did not keep up)', value: captured.dropped, unit: 'packets', problem: captured.dropped > 0 },
    )
  }
  printSummary(context.output, record, `udpcom recv ${where}: ${endedText(reason)}`, rows)

  if (options.report !== undefined) {
    const histograms = [gaps.toHistogram('interArrival', 'Inter-arrival times', 'Time between consecutive arrival stamps (kernel receive stamps with --timestamping software), in buckets about 9% wide.')]
    const series = recorder.toTimeSeries()
    const notes =
      totals === undefined
        ? ["Measured by a receiver alone: loss by sequence number, reordering, one-way latency and lateness against the sender's target times need a stream header: udpcom send, then recv --analyze udpcom."]
        : [
            `Stream analysis of ${options.analyze!} headers over ${totals.streams} stream${totals.streams === 1 ? '' : 's'}: counts are summed over the streams, percentiles and jitter are the worst stream's. Loss counts the sequence numbers missing between the first and the highest received.`,
          ]
    if (recorder.notKept > 0) notes.push(`The time series keeps its first ${series.timeS.length} samples; ${recorder.notKept} later ones are left out.`)
    if (stats.latencyHistogram.length > 0 && stats.nPacketsSent > 0) histograms.push(fromBuckets(stats.latencyHistogram, 'sendLateness', 'Send lateness', 'Departure − target time of sent packets.'))
    writeRunReport(context, options.report, { title: `udpcom recv ${where}`, startedAt, summary: rows, series, histograms, notes })
  }
  return record.exitCode
}

export const recvCommand: Command = {
  name: 'recv',
  summary: 'receive datagrams and measure rate, drops, inter-arrival times; with --analyze loss, reordering, latency',
  usage: 'recv [HOST:]PORT [--count N | --duration 10s] [--analyze udpcom|iperf2] [--group 239.1.2.3 [--source S] --interface IF] [--capture FILE] [--report FILE] [--cpu N] [--priority N] [--json]',
  description:
    'Listens on HOST:PORT (default host 0.0.0.0; [::] for IPv6; port 0 picks a free one) and counts what arrives: rate, ' +
    'datagrams the kernel or the receive ring dropped, inter-arrival times from the kernel receive stamps, and the receive ' +
    "path's delivery latency. With --analyze it reads each datagram's stream header natively (udpcom send's, or iperf 2's): " +
    'loss by sequence number, reordering, duplicates, jitter, one-way latency and lateness. --group joins a multicast group ' +
    '(--source: only that sender) on --interface; --capture writes what arrives to a pcapng file (.pcap: pcap). Ends after ' +
    '--count datagrams, after --duration, or on Ctrl-C, with a summary. Exits with 1 when datagrams were dropped or lost, ' +
    'fewer than --count arrived, or none did.',
  options: {
    ...RUN_LIMIT_OPTIONS,
    report: { type: 'string', value: 'FILE', help: 'write an HTML report with plots to FILE' },
    ...SCHEDULING_OPTIONS,
    timestamping: { type: 'string', value: 'MODE', help: 'software (kernel receive stamps, the default) or none' },
    analyze: { type: 'string', short: 'a', value: 'HEADER', help: 'analyse the streams: udpcom (udpcom send) or iperf2 (iperf -c -u, udpcom send --header iperf2)' },
    group: { type: 'string', short: 'g', value: 'GROUP', help: 'join this multicast group (IPv4 or IPv6)' },
    source: { type: 'string', value: 'ADDRESS', help: 'with --group: hear only this sender (source-specific multicast)' },
    interface: { type: 'string', value: 'IF', help: 'with --group: the interface to join it on (a name or one of its addresses)' },
    capture: { type: 'string', short: 'w', value: 'FILE', help: 'capture every received datagram to FILE (pcapng; .pcap: pcap)' },
  },
  examples: [
    'udpcom recv 5000 --duration 10s',
    'udpcom recv 127.0.0.1:5000 --count 100k --analyze udpcom --report recv.html',
    'udpcom recv 5004 --group 239.1.2.3 --interface eth1 --analyze udpcom --capture group.pcapng',
    'udpcom recv [::]:5000 --json',
  ],
  async run(values, positionals, context) {
    const endpoint = onePositional(positionals, 'recv', 'give the port to listen on: udpcom recv [HOST:]PORT')
    const options = recvOptions(values)
    const { host, port } = parseEndpoint(endpoint, 'recv', '0.0.0.0', true)
    checkReportPath(options.report)
    checkReportPath(options.capture)
    return receive(options, host, port, context)
  },
}
