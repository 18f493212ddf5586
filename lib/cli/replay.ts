// `udpcom replay FILE [HOST:PORT]`: send the UDP datagrams of a pcap or pcapng file with their
// recorded timing (UdpCom.replay: the native sender thread, nothing per datagram here), show
// progress and lateness live, and summarise how late they left against the capture's timing
// (optionally as an HTML report, and with what was sent captured to a file).

import { accessSync, constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'

import { formatCount, formatNs, formatPps } from '../format'
import type { Replay } from '../replay'
import { buildReport, fromBuckets, SeriesRecorder, writeReport } from '../report'
import type { SeriesSpec, SummaryRow } from '../report/model'
import type { ReplayOptions, ReplaySkipped, ReplayStats } from '../types'
import { UdpCom } from '../udpcom'
import { stringValue, type Command, type Context, type Values } from './command'
import { formatEndpoint, parseEndpoint, type Endpoint } from './endpoint'
import { UsageError } from './errors'
import { rowPairs } from './rows'
import { parseDuration, parseInteger } from './units'
import { STATUS_EVERY_MS } from './until'

/** What a replay records once per interval (keys of ReplaySample). */
export const REPLAY_SERIES: readonly SeriesSpec[] = [
  { key: 'ratePps', label: 'sent', unit: 'pps', plot: 'rate', description: 'Datagrams the kernel accepted per second over the interval.' },
  {
    key: 'latenessMeanNs',
    label: 'mean lateness',
    unit: 'ns',
    plot: 'lateness',
    description: "Mean departure − due time of the datagrams sent in the interval; due = start + (capture time − first capture time) / speed.",
  },
  { key: 'latenessP99Ns', label: 'p99 lateness (since start)', unit: 'ns', plot: 'lateness', description: '99th percentile of the lateness since the start (HDR histogram, within 1%).' },
  { key: 'latenessMaxNs', label: 'max lateness (since start)', unit: 'ns', plot: 'lateness', description: 'Largest lateness since the start.' },
  { key: 'late', label: 'late', unit: 'packets', plot: 'loss', description: 'Datagrams that left more than the spin window after their due time, in the interval.' },
  { key: 'errors', label: 'send errors', unit: 'packets', plot: 'loss', description: 'Datagrams whose send failed in the interval (ECONNREFUSED after an ICMP port unreachable, ...).' },
]

interface ReplaySample {
  timeS: number
  sent: number
  ratePps: number
  latenessMeanNs: number | null
  latenessP99Ns: number | null
  latenessMaxNs: number | null
  late: number
  errors: number
  passes: number
  progress: number | null
}

interface ReplayCommandOptions {
  file: string
  /** Undefined: each datagram to its captured destination. */
  to: Endpoint | undefined
  speed: number
  loops: number
  filterPort: number | undefined
  filterAddress: string | undefined
  intervalNs: number
  report: string | undefined
  capture: string | undefined
  cpu: number | undefined
  priority: number | undefined
}

function replayOptions(values: Values, positionals: string[]): ReplayCommandOptions {
  const text = (name: string): string | undefined => stringValue(values, name)
  if (positionals.length === 0) throw new UsageError('give the capture file to replay: udpcom replay FILE [HOST:PORT]', 'replay')
  if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`, 'replay')
  const speedText = text('speed')
  const speed = speedText === undefined ? 1 : Number(speedText.replace(/x$/, ''))
  if (!(Number.isFinite(speed) && speed >= 0) || speedText?.trim() === '') {
    throw new UsageError(`--speed '${speedText}' must be a number ≥ 0 (2: twice as fast; 0: as fast as possible)`, 'replay')
  }
  const intervalNs = text('interval') === undefined ? 1e9 : parseDuration(text('interval')!, '--interval')
  if (intervalNs < 100e6) throw new UsageError('--interval must be at least 100ms', 'replay')
  const integer = (name: string, min: number, max: number): number | undefined => (text(name) === undefined ? undefined : parseInteger(text(name)!, `--${name}`, min, max))
  return {
    file: positionals[0]!,
    to: positionals[1] === undefined ? undefined : parseEndpoint(positionals[1], 'replay', '127.0.0.1', false),
    speed,
    loops: integer('loop', 1, 1_000_000) ?? 1,
    filterPort: integer('filter-port', 1, 65_535),
    filterAddress: text('filter-address'),
    intervalNs,
    report: text('report'),
    capture: text('capture'),
    cpu: integer('cpu', 0, 1023),
    priority: integer('priority', 1, 99),
  }
}

/** Files larger than this (bytes) are not counted: their progress is not shown. */
const MAX_COUNTED_BYTES = 2 ** 31

/**
 * The frames (packets of any kind) a pcap or pcapng file holds, by walking its record headers;
 * undefined when it is not one of those, or too large. Only for the progress shown: the
 * engine's reader decides what is sent, and reports a corrupt file (where this stops counting).
 */
export async function countFrames(path: string): Promise<number | undefined> {
  const handle = await open(path, 'r')
  try {
    const size = (await handle.stat()).size
    // Counting reads the file once more beside the replay's reader: not for a very large one.
    if (size > MAX_COUNTED_BYTES) return undefined
    const window = Buffer.alloc(1 << 20)
    let windowStart = 0
    let windowLength = 0
    /** `length` bytes at `offset`, or undefined past the end. */
    const bytesAt = async (offset: number, length: number): Promise<Buffer | undefined> => {
      if (offset + length > size) return undefined
      if (offset < windowStart || offset + length > windowStart + windowLength) {
        windowStart = offset
        windowLength = (await handle.read(window, 0, window.length, offset)).bytesRead
        if (windowLength < length) return undefined
      }
      return window.subarray(offset - windowStart, offset - windowStart + length)
    }
    const head = await bytesAt(0, 12)
    if (head === undefined) return undefined
    let frames = 0
    const magic = head.readUInt32LE(0)
    if ([0xa1b2c3d4, 0xa1b23c4d, 0xd4c3b2a1, 0x4d3cb2a1].includes(magic)) {
      const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d
      for (let offset = 24; ; frames++) {
        const record = await bytesAt(offset, 16)
        if (record === undefined) return frames
        offset += 16 + (little ? record.readUInt32LE(8) : record.readUInt32BE(8))
      }
    }
    if (magic !== 0x0a0d0d0a) return undefined
    let little = true
    for (let offset = 0; ; ) {
      const block = await bytesAt(offset, 12)
      if (block === undefined) return frames
      const type = little ? block.readUInt32LE(0) : block.readUInt32BE(0)
      if (type === 0x0a0d0d0a) little = block.readUInt32LE(8) === 0x1a2b3c4d
      const length = little ? block.readUInt32LE(4) : block.readUInt32BE(4)
      if (length < 12 || length % 4 !== 0) return frames
      // Enhanced, simple and (obsolete) packet blocks.
      if (type === 6 || type === 3 || type === 2) frames++
      offset += length
    }
  } finally {
    await handle.close()
  }
}

const SKIP_REASONS: Record<Exclude<keyof ReplaySkipped, 'total'>, string> = {
  notIp: 'not IP',
  notUdp: 'not UDP',
  ipFragment: 'IP fragments',
  truncated: 'cut by the snaplen',
  badHeader: 'bad headers',
  unsupportedLinkType: 'unsupported link type',
  timestampOutOfRange: 'time out of range',
  unsupportedBlock: 'unsupported pcapng blocks',
  filtered: 'left out by the filter',
  otherFamily: 'other address family',
}

/** Per interval: rates and the interval's mean lateness from the cumulative statistics. */
class ReplayMeter {
  readonly #startedNs = process.hrtime.bigint()
  #last = { atNs: this.#startedNs, sent: 0, late: 0, errors: 0, latenessSumNs: 0 }

  elapsedS(): number {
    return Number(process.hrtime.bigint() - this.#startedNs) / 1e9
  }

  sample(stats: ReplayStats, totalFrames: number | undefined, loops: number): ReplaySample {
    const atNs = process.hrtime.bigint()
    const seconds = Number(atNs - this.#last.atNs) / 1e9
    const latenessSumNs = stats.meanLatenessNs * stats.sent
    const sentNow = stats.sent - this.#last.sent
    const handled = stats.sent + stats.errors + stats.skipped.total
    const sample: ReplaySample = {
      timeS: Number(atNs - this.#startedNs) / 1e9,
      sent: stats.sent,
      ratePps: seconds > 0 ? sentNow / seconds : 0,
      latenessMeanNs: sentNow > 0 ? Math.max(0, (latenessSumNs - this.#last.latenessSumNs) / sentNow) : null,
      latenessP99Ns: stats.sent > 0 ? stats.p99LatenessNs : null,
      latenessMaxNs: stats.sent > 0 ? stats.maxLatenessNs : null,
      late: stats.late - this.#last.late,
      errors: stats.errors - this.#last.errors,
      passes: stats.passes,
      progress: totalFrames === undefined || totalFrames === 0 ? null : Math.min(1, handled / (totalFrames * loops)),
    }
    this.#last = { atNs, sent: stats.sent, late: stats.late, errors: stats.errors, latenessSumNs }
    return sample
  }
}

const percent = (fraction: number | null): string => (fraction === null ? '' : ` (${(fraction * 100).toFixed(0)}%)`)

function statusText(where: string, meter: ReplayMeter, stats: ReplayStats, rate: number, progress: number | null, loops: number): string {
  return [
    `replay → ${where}`,
    `${meter.elapsedS().toFixed(1)} s`,
    `sent ${formatCount(stats.sent)}${percent(progress)}`,
    formatPps(rate),
    ...(loops > 1 ? [`pass ${Math.min(loops, stats.passes + 1)}/${loops}`] : []),
    `p99 lateness ${stats.sent > 0 ? formatNs(stats.p99LatenessNs) : '–'}`,
    `errors ${formatCount(stats.errors)}`,
  ].join('  ')
}

function intervalText(sample: ReplaySample): string {
  const lateness = sample.latenessMeanNs === null ? '' : `  lateness mean ${formatNs(sample.latenessMeanNs)} p99 ${formatNs(sample.latenessP99Ns ?? 0)} max ${formatNs(sample.latenessMaxNs ?? 0)}`
  return `${sample.timeS.toFixed(1).padStart(7)} s  sent ${formatCount(sample.sent)}${percent(sample.progress)}  ${formatPps(sample.ratePps)}${lateness}  late ${sample.late}  errors ${sample.errors}`
}

/** The ReplayOptions of the command line. */
function libraryOptions(options: ReplayCommandOptions): ReplayOptions {
  const filter = {
    ...(options.filterPort === undefined ? {} : { port: options.filterPort }),
    ...(options.filterAddress === undefined ? {} : { address: options.filterAddress }),
  }
  return {
    speed: options.speed,
    loop: options.loops,
    destination: options.to === undefined ? 'original' : 'connected',
    ...(Object.keys(filter).length > 0 ? { filter } : {}),
  }
}

async function replayFile(options: ReplayCommandOptions, context: Context): Promise<number> {
  const { output, signal } = context
  const to = options.to
  const family = to?.host.includes(':') ? '::' : '0.0.0.0'
  const udp = new UdpCom(family, 0, to?.host ?? family, to?.port ?? 0, {
    direction: 0,
    ...(options.cpu === undefined ? {} : { cpu: options.cpu }),
    ...(options.priority === undefined ? {} : { priority: options.priority }),
  })
  const where = to === undefined ? 'captured destinations' : formatEndpoint(to)
  const startedAt = new Date()
  const totalFrames = countFrames(options.file).catch(() => undefined)
  let replay: Replay
  let capture: ReturnType<UdpCom['capture']> | undefined
  try {
    udp.initSocket()
    udp.start()
    if (options.capture !== undefined) capture = udp.capture(options.capture, { sent: true })
    replay = udp.replay(options.file, libraryOptions(options))
  } catch (error) {
    udp.closeSocket()
    throw error
  }
  let frames: number | undefined
  void totalFrames.then((count) => {
    frames = count
  })
  output.event(
    'replaying',
    { file: options.file, destination: to === undefined ? 'original' : where, speed: options.speed, loops: options.loops },
    `udpcom replay: ${options.file} → ${where}, ${options.speed === 0 ? 'as fast as possible' : `speed ${options.speed}`}${options.loops > 1 ? `, ${options.loops} passes` : ''} (Ctrl-C ends)`,
  )
  const meter = new ReplayMeter()
  const recorder = new SeriesRecorder(REPLAY_SERIES, options.intervalNs)
  let lastRate = 0
  const record = (): void => {
    const sample = meter.sample(replay.stats(), frames, options.loops)
    lastRate = sample.ratePps
    recorder.add(sample.timeS, { ...sample })
    output.interval({ ...sample }, intervalText(sample))
  }
  const statusTimer =
    output.mode === 'status'
      ? setInterval(() => {
          const stats = replay.stats()
          const handled = stats.sent + stats.errors + stats.skipped.total
          output.status(statusText(where, meter, stats, lastRate, frames ? Math.min(1, handled / (frames * options.loops)) : null, options.loops))
        }, STATUS_EVERY_MS)
      : undefined
  const intervalTimer = setInterval(record, options.intervalNs / 1e6)
  const onAbort = (): void => replay.stop()
  signal.addEventListener('abort', onAbort, { once: true })
  let stats: ReplayStats
  let failure: unknown
  try {
    stats = await replay.done
  } catch (error) {
    failure = error
    stats = (error as { stats?: ReplayStats }).stats ?? replay.stats()
  }
  signal.removeEventListener('abort', onAbort)
  clearInterval(statusTimer)
  clearInterval(intervalTimer)
  // A file that is no capture at all (nothing read): the error says it all.
  const nothingRead = failure !== undefined && stats.read === 0 && stats.skipped.total === 0
  if (!nothingRead) record()
  const captured = capture === undefined ? undefined : await capture.close().catch((error: unknown) => error as Error)
  udp.stop()
  udp.closeSocket()
  output.clearStatus()
  frames = await totalFrames
  if (nothingRead) throw failure
  const exitCode = summarise({ options, where, stats, frames, elapsedS: meter.elapsedS(), recorder, startedAt, context, captured, failed: failure !== undefined })
  if (failure !== undefined) throw failure
  if (captured instanceof Error) throw captured
  return exitCode
}

interface Summary {
  options: ReplayCommandOptions
  where: string
  stats: ReplayStats
  frames: number | undefined
  elapsedS: number
  recorder: SeriesRecorder
  startedAt: Date
  context: Context
  captured: { written: number; dropped: number } | Error | undefined
  failed: boolean
}

function summarise({ options, where, stats, frames, elapsedS, recorder, startedAt, context, captured, failed }: Summary): number {
  const { output } = context
  const problems: string[] = []
  if (stats.errors > 0) problems.push(`${formatCount(stats.errors)} sends failed`)
  if (stats.sent === 0 && !failed) problems.push('no datagram was sent (the file holds no replayable UDP datagram, or the filter left them all out)')
  const capturedOk = captured !== undefined && !(captured instanceof Error) ? captured : undefined
  if (capturedOk !== undefined && capturedOk.dropped > 0) problems.push(`the capture of what was sent dropped ${formatCount(capturedOk.dropped)} datagrams`)
  const sent = stats.sent > 0
  const rows: SummaryRow[] = [
    { key: 'file', label: 'file', value: basename(options.file) },
    ...(frames === undefined ? [] : [{ key: 'frames', label: 'frames in the file', value: frames, unit: 'packets' as const }]),
    { key: 'speed', label: 'speed', value: options.speed === 0 ? 'as fast as possible' : `${options.speed}× the recorded timing` },
    { key: 'passes', label: 'passes completed', value: `${stats.passes} of ${options.loops}` },
    { key: 'elapsedS', label: 'time', value: elapsedS, unit: 's' },
    { key: 'sent', label: 'sent', value: stats.sent, unit: 'packets', problem: stats.sent === 0 },
    { key: 'bytes', label: 'payload', value: stats.bytes, unit: 'bytes' },
    { key: 'errors', label: 'send errors', value: stats.errors, unit: 'packets', problem: stats.errors > 0 },
    { key: 'skipped', label: 'skipped (not replayable)', value: stats.skipped.total, unit: 'packets' },
  ]
  for (const [reason, label] of Object.entries(SKIP_REASONS)) {
    const count = stats.skipped[reason as keyof typeof SKIP_REASONS]
    if (count > 0) rows.push({ key: `skipped.${reason}`, label: `  ${label}`, value: count, unit: 'packets' })
  }
  rows.push({ key: 'late', label: 'late (after the spin window)', value: stats.late, unit: 'packets' })
  if (sent) {
    rows.push(
      { key: 'latenessMinNs', label: 'lateness min', value: stats.minLatenessNs, unit: 'ns' },
      { key: 'latenessMeanNs', label: 'lateness mean', value: stats.meanLatenessNs, unit: 'ns' },
      { key: 'latenessP50Ns', label: 'lateness p50', value: stats.p50LatenessNs, unit: 'ns' },
      { key: 'latenessP90Ns', label: 'lateness p90', value: stats.p90LatenessNs, unit: 'ns' },
      { key: 'latenessP99Ns', label: 'lateness p99', value: stats.p99LatenessNs, unit: 'ns' },
      { key: 'latenessP999Ns', label: 'lateness p99.9', value: stats.p999LatenessNs, unit: 'ns' },
      { key: 'latenessMaxNs', label: 'lateness max', value: stats.maxLatenessNs, unit: 'ns' },
    )
  }
  if (capturedOk !== undefined) {
    rows.push(
      { key: 'captured', label: `captured to ${basename(options.capture!)}`, value: capturedOk.written, unit: 'packets' },
      { key: 'captureDropped', label: 'dropped by the capture', value: capturedOk.dropped, unit: 'packets', problem: capturedOk.dropped > 0 },
    )
  }
  const exitCode = problems.length > 0 ? 1 : 0
  const record = {
    file: options.file,
    destination: options.to === undefined ? 'original' : where,
    ended: failed ? 'error' : stats.state,
    elapsedS,
    frames: frames ?? null,
    speed: options.speed,
    loops: options.loops,
    passes: stats.passes,
    sent: stats.sent,
    bytes: stats.bytes,
    errors: stats.errors,
    late: stats.late,
    read: stats.read,
    skipped: stats.skipped,
    latenessMinNs: sent ? stats.minLatenessNs : null,
    latenessMeanNs: sent ? stats.meanLatenessNs : null,
    latenessP50Ns: sent ? stats.p50LatenessNs : null,
    latenessP90Ns: sent ? stats.p90LatenessNs : null,
    latenessP99Ns: sent ? stats.p99LatenessNs : null,
    latenessP999Ns: sent ? stats.p999LatenessNs : null,
    latenessMaxNs: sent ? stats.maxLatenessNs : null,
    ...(capturedOk === undefined ? {} : { captured: capturedOk.written, captureDropped: capturedOk.dropped }),
    problems,
    exitCode: failed ? 2 : exitCode,
  }
  const how = failed ? 'the file ended in an error' : stats.state === 'completed' ? 'completed' : 'stopped'
  output.summary(record, `udpcom replay ${basename(options.file)} → ${where}: ${how}${problems.length > 0 ? ` — ${problems.join('; ')}` : ''}`, rowPairs(rows))

  if (options.report !== undefined) {
    const series = recorder.toTimeSeries()
    const notes = [
      `Lateness is departure − due time, where datagram i is due at the start + (its capture time − the first one's) / speed${options.speed === 0 ? ' (speed 0: every datagram is due at the start, so lateness is the time it took to send them)' : ''}.`,
    ]
    if (recorder.notKept > 0) notes.push(`The time series keeps its first ${series.timeS.length} samples; ${recorder.notKept} later ones are left out.`)
    writeReport(
      options.report,
      buildReport({
        title: `udpcom replay ${basename(options.file)} → ${where}`,
        command: context.commandLine,
        startedAt,
        endedAt: new Date(),
        summary: rows,
        series,
        histograms: [fromBuckets(stats.latenessHistogram, 'lateness', 'Replay lateness', 'Departure − due time of every datagram sent, in doubling buckets (log-log axes).')],
        notes,
      }),
    )
    output.event('report', { path: options.report }, `report: ${options.report}`)
  }
  return exitCode
}

export const replayCommand: Command = {
  name: 'replay',
  summary: 'send the UDP datagrams of a pcap or pcapng file with their recorded timing',
  usage: 'replay FILE [HOST:PORT] [--speed 1] [--loop N] [--filter-port N] [--report FILE] [--capture FILE] [--cpu N] [--priority N] [--json]',
  description:
    'Replays the UDP datagrams of a pcap or pcapng file (tcpdump, tshark, Wireshark, udpcom capture) from the native sender ' +
    'thread: datagram i leaves at start + (its capture time − the first one\'s) / speed. Their payloads go to HOST:PORT, or ' +
    'without it each to the destination it was captured with. What is not a UDP datagram is skipped and counted by reason. ' +
    'Shows progress and lateness (departure − due time) live and summarises the lateness percentiles. Exits with 1 when ' +
    'sends failed or nothing was sent, 2 for a file that is not a capture or is corrupt (after sending what came before).',
  options: {
    speed: { type: 'string', short: 's', value: 'X', help: 'timing factor: 2 twice as fast, 0.5 half as fast, 0 as fast as possible (default 1)' },
    loop: { type: 'string', short: 'l', value: 'N', help: 'passes through the file (default 1); each starts one mean gap after the last datagram' },
    'filter-port': { type: 'string', value: 'PORT', help: 'only datagrams captured with this destination port' },
    'filter-address': { type: 'string', value: 'ADDRESS', help: 'only datagrams captured from this source address' },
    interval: { type: 'string', short: 'i', value: '1s', help: 'interval of the plain lines, JSON intervals and report samples (default 1s)' },
    report: { type: 'string', value: 'FILE', help: 'write an HTML report with plots to FILE' },
    capture: { type: 'string', value: 'FILE', help: 'also write what was sent, with its departure times, to FILE (.pcap: pcap, else pcapng)' },
    cpu: { type: 'string', value: 'N', help: 'pin the sender thread to CPU N' },
    priority: { type: 'string', value: 'N', help: 'SCHED_FIFO priority 1..99 for the sender thread' },
  },
  examples: [
    'udpcom replay trace.pcap 127.0.0.1:5000',
    'udpcom replay trace.pcapng 192.0.2.10:5000 --speed 2 --loop 3 --priority 80 --cpu 1 --report replay.html',
    'udpcom replay trace.pcap --filter-port 5000 --json',
  ],
  async run(values, positionals, context) {
    const options = replayOptions(values, positionals)
    // A file that cannot be opened, and a report or capture that cannot be written, fail now.
    accessSync(options.file, constants.R_OK)
    for (const path of [options.report, options.capture]) if (path !== undefined) accessSync(dirname(resolve(path)), constants.W_OK)
    return replayFile(options, context)
  },
}
