// `udpcom capture [HOST:]PORT --file FILE`: receive on an address and port and write every
// datagram, with its kernel receive stamp and real addresses, to a pcap or pcapng file that
// Wireshark, tshark and tcpdump read (UdpCom.capture: written by the native writer thread).

import { accessSync, constants, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

import type { Capture } from '../capture'
import { formatCount, formatNs, formatPps } from '../format'
import { ReceiveMeter } from '../report/receive-meter'
import type { SummaryRow } from '../report/model'
import type { CaptureOptions, CaptureResult } from '../types'
import { UdpCom } from '../udpcom'
import { stringValue, type Command, type Context, type Values } from './command'
import { formatEndpoint, parseEndpoint } from './endpoint'
import { UsageError } from './errors'
import { rowPairs } from './rows'
import { parseBytes, parseCount, parseDuration } from './units'
import { runTimers } from './until'

interface CaptureCommandOptions {
  file: string
  count: number | undefined
  durationNs: number | undefined
  intervalNs: number
  format: 'pcap' | 'pcapng'
  snaplen: number | undefined
  link: 'raw' | 'ethernet'
}

function captureOptions(values: Values): CaptureCommandOptions {
  const text = (name: string): string | undefined => stringValue(values, name)
  const file = text('file')
  if (file === undefined) throw new UsageError('give the file to write: --file out.pcapng', 'capture')
  const formatText = text('format') ?? (/\.pcap$/i.test(file) ? 'pcap' : 'pcapng')
  if (formatText !== 'pcap' && formatText !== 'pcapng') throw new UsageError(`--format '${formatText}' must be pcap or pcapng`, 'capture')
  const link = text('link') ?? 'raw'
  if (link !== 'raw' && link !== 'ethernet') throw new UsageError(`--link '${link}' must be raw or ethernet`, 'capture')
  const count = text('count') === undefined ? undefined : parseCount(text('count')!, '--count')
  if (count === 0) throw new UsageError('--count must be at least 1', 'capture')
  const durationNs = text('duration') === undefined ? undefined : parseDuration(text('duration')!, '--duration')
  if (durationNs === 0) throw new UsageError('--duration must be above 0', 'capture')
  const intervalNs = text('interval') === undefined ? 1e9 : parseDuration(text('interval')!, '--interval')
  if (intervalNs < 100e6) throw new UsageError('--interval must be at least 100ms', 'capture')
  return {
    file,
    count,
    durationNs,
    intervalNs,
    format: formatText,
    snaplen: text('snaplen') === undefined ? undefined : parseBytes(text('snaplen')!, '--snaplen'),
    link,
  }
}

async function captureTo(options: CaptureCommandOptions, host: string, port: number, context: Context): Promise<number> {
  const { output } = context
  const udp = new UdpCom(host, port, host, 0, { direction: 1, timestamping: 'software' })
  const libraryOptions: CaptureOptions = { format: options.format, link: options.link, ...(options.snaplen === undefined ? {} : { snaplen: options.snaplen }) }
  let capture: Capture
  try {
    udp.initSocket()
    capture = udp.capture(options.file, libraryOptions)
    udp.start()
  } catch (error) {
    udp.closeSocket()
    throw error
  }
  const where = formatEndpoint({ host, port: udp.localPort })
  // The meter takes the datagrams off the receive ring and counts them; the capture has them already.
  const meter = new ReceiveMeter(udp, options.count === undefined ? {} : { maxCount: options.count, onLimit: () => timers.finish('count') })
  output.event(
    'listening',
    { address: host, port: udp.localPort, file: options.file, format: options.format, count: options.count ?? null, durationNs: options.durationNs ?? null },
    `udpcom capture: listening on ${where}, writing ${options.format} to ${options.file}${options.count ? `, for ${formatCount(options.count)} datagrams` : ''}${options.durationNs ? `, for ${formatNs(options.durationNs)}` : ''} (Ctrl-C ends)`,
  )
  let rate = 0
  const timers = runTimers(context, {
    intervalNs: options.intervalNs,
    durationNs: options.durationNs,
    status: () => {
      const { written, dropped } = capture.stats()
      return `capture ${where}  ${meter.elapsedS().toFixed(1)} s  captured ${formatCount(written)}  ${formatPps(rate)}  dropped ${formatCount(dropped + ReceiveMeter.dropped(meter.stats()))}`
    },
    interval: () => {
      const sample = meter.sample()
      rate = sample.ratePps
      const { written, dropped } = capture.stats()
      const record = { timeS: sample.timeS, received: sample.received, ratePps: sample.ratePps, written, captureDropped: dropped, dropped: sample.droppedTotal }
      output.interval(record, `${sample.timeS.toFixed(1).padStart(7)} s  received ${formatCount(sample.received)}  ${formatPps(sample.ratePps)}  written ${formatCount(written)}  dropped ${dropped + sample.droppedTotal}`)
    },
  })
  const reason = await timers.ended
  let result: CaptureResult | Error
  try {
    result = await capture.close()
  } catch (error) {
    result = error as Error
  }
  udp.stop()
  const stats = udp.getPacketStats()
  udp.closeSocket()
  output.clearStatus()
  if (result instanceof Error) throw result

  const fileBytes = statSync(options.file).size
  const kernelDrops = ReceiveMeter.dropped(stats)
  const problems: string[] = []
  if (result.dropped > 0) problems.push(`the capture dropped ${formatCount(result.dropped)} datagrams (the disk did not keep up)`)
  if (kernelDrops > 0) problems.push(`${formatCount(kernelDrops)} datagrams were dropped before the capture (socket buffer or receive ring full)`)
  if (result.written === 0) problems.push('no datagram arrived')
  else if (options.count !== undefined && result.written < options.count) problems.push(`only ${formatCount(result.written)} of ${formatCount(options.count)} datagrams arrived`)
  const rows: SummaryRow[] = [
    { key: 'file', label: 'file', value: `${options.file} (${options.format}${options.link === 'ethernet' ? ', Ethernet frames' : ', raw IP frames'})` },
    { key: 'elapsedS', label: 'time', value: meter.elapsedS(), unit: 's' },
    { key: 'written', label: 'captured', value: result.written, unit: 'packets', problem: result.written === 0 },
    { key: 'received', label: 'received by the socket', value: stats.nPacketsReceived, unit: 'packets' },
    { key: 'receivedBytes', label: 'their payload', value: stats.nBytesReceived, unit: 'bytes' },
    { key: 'fileBytes', label: 'file size', value: fileBytes, unit: 'bytes' },
    { key: 'captureDropped', label: 'dropped by the capture (disk too slow)', value: result.dropped, unit: 'packets', problem: result.dropped > 0 },
    { key: 'dropped', label: 'dropped before it (buffer or ring full)', value: kernelDrops, unit: 'packets', problem: kernelDrops > 0 },
  ]
  // The count ends the capture once that many were taken; what arrived while it closed is in the file too.
  if (options.count !== undefined && result.written > options.count) {
    rows.push({ key: 'extra', label: 'arrived while stopping (kept)', value: result.written - options.count, unit: 'packets' })
  }
  const record = {
    address: where,
    file: options.file,
    format: options.format,
    ended: reason,
    elapsedS: meter.elapsedS(),
    written: result.written,
    captureDropped: result.dropped,
    dropped: kernelDrops,
    received: stats.nPacketsReceived,
    receivedBytes: stats.nBytesReceived,
    fileBytes,
    problems,
    exitCode: problems.length > 0 ? 1 : 0,
  }
  const how = reason === 'count' ? 'count reached' : reason === 'duration' ? 'duration over' : 'stopped'
  output.summary(record, `udpcom capture ${where}: ${how}${problems.length > 0 ? ` — ${problems.join('; ')}` : ''}`, rowPairs(rows))
  return record.exitCode
}

export const captureCommand: Command = {
  name: 'capture',
  summary: 'receive datagrams and write them to a pcap or pcapng file (Wireshark, tshark, tcpdump read it)',
  usage: 'capture [HOST:]PORT --file FILE [--count N | --duration 10s] [--format pcap|pcapng] [--snaplen N] [--link raw|ethernet] [--json]',
  description:
    'Listens on HOST:PORT (default host 0.0.0.0; [::] for IPv6; port 0 picks a free one) and writes every datagram that ' +
    'arrives to FILE, off the receive path: the kernel receive stamp, the real source and destination addresses and ports, ' +
    'IP and UDP headers with valid checksums. pcapng (the default, unless FILE ends in .pcap) also records each datagram\'s ' +
    'direction and where its time came from; pcap is the nanosecond variant. Ends after --count datagrams, after --duration, ' +
    'or on Ctrl-C. Exits with 1 when datagrams were dropped (before or by the capture) or none arrived. udpcom replay sends ' +
    'such a file again.',
  options: {
    file: { type: 'string', short: 'w', value: 'FILE', help: 'the file to write (required; .pcap: pcap, else pcapng)' },
    count: { type: 'string', short: 'n', value: 'N', help: 'stop after N datagrams (what arrives while it stops is kept too)' },
    duration: { type: 'string', short: 't', value: '10s', help: 'stop after this long (500ms, 10s, 2m; a bare number is seconds)' },
    format: { type: 'string', value: 'FORMAT', help: 'pcap or pcapng (default: from the file name, else pcapng)' },
    snaplen: { type: 'string', value: 'BYTES', help: 'longest frame kept whole, IP and UDP headers included (default 65535)' },
    link: { type: 'string', value: 'TYPE', help: 'raw (frames start with the IP header, the default) or ethernet' },
    interval: { type: 'string', short: 'i', value: '1s', help: 'interval of the plain lines and JSON intervals (default 1s)' },
  },
  examples: ['udpcom capture 5000 --file in.pcapng --duration 10s', 'udpcom capture 127.0.0.1:5000 -w in.pcap --count 10k && tshark -r in.pcap', 'udpcom capture [::]:5000 --file in.pcapng --json'],
  async run(values, positionals, context) {
    if (positionals.length !== 1) {
      throw new UsageError(positionals.length === 0 ? 'give the port to listen on: udpcom capture [HOST:]PORT --file FILE' : `unexpected argument '${positionals[1]}'`, 'capture')
    }
    const options = captureOptions(values)
    const { host, port } = parseEndpoint(positionals[0]!, 'capture', '0.0.0.0', true)
    accessSync(dirname(resolve(options.file)), constants.W_OK)
    return captureTo(options, host, port, context)
  },
}
