// 10. Replay fidelity: a capture of a perfectly paced 10 kpps stream (20,000 datagrams exactly
// 100 µs apart, written by engine/examples/pcap_synth) replayed across a veth pair by udpcom
// (udp.replay from Node, and the engine's replay from Rust: replay_native), by node:dgram (the
// best JavaScript can do: a busy-wait on process.hrtime then send(), event loop blocked), and by
// tcpreplay with its default timer and with --timer=nano, one after the other in the same run.
//
// The independent measurement: tcpdump in the receiving namespace, on the veth, nanosecond
// kernel stamps of the packet tap (--time-stamp-precision=nano, --immediate-mode), read back
// by tshark. Each datagram carries its sequence number, so gaps are taken only between
// consecutive datagrams that both arrived: |actual gap − recorded gap| p50 / p99 / max, and
// how many arrived. Every replayer runs pinned to CPU 1 (taskset; udpcom's and replay_native's
// sender worker by their `cpu` option, their main threads, which only wait, elsewhere; both
// with gso: false, so that each datagram is a frame tcpdump counts), in its best configuration:
// udpcom's worker and replay_native under SCHED_FIFO 80 (their own options), tcpreplay
// --timer=nano (nanosleep) under SCHED_FIFO 80 (chrt); the two that busy-wait, tcpreplay's
// default timer (gtod: a gettimeofday loop) and the node:dgram loop, at normal priority, since
// a thread that busy-waits for 2 s under SCHED_FIFO is frozen for 50 ms of every second by RT
// throttling (../shared/MACHINE-NOTES.md). tcpdump runs on CPU 0.
// Target: udpcom's p99 ≤ 1/10 of tcpreplay's best p99.
//
// Needs root (network namespaces, SCHED_FIFO), tcpdump, tshark and tcpreplay; the row says which
// is missing otherwise.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import {
  BIN, CPU, RT_PRIORITY, Child, attempt, emit, failedRuns, failureNote, fmtCount, fmtNs, fmtRatio, goodRuns, loadUdpCom, nodeRole,
  now, percentile, ratio, roleOptions, rtUnavailable, summarize, verdict, vethNamespaces,
} from './lib.mjs'

const RATE = 10_000
const PERIOD_NS = 1e9 / RATE
const PORT = 5555
const [SENDER, RECEIVER] = ['10.204.0.1', '10.204.0.2']
const REPLAYERS = ['udpcom', 'native', 'dgram', 'tcpreplay', 'tcpreplay-nano']

/** Why the section cannot run here, or null. */
function unavailable() {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, SCHED_FIFO)'
  for (const [command, args] of [['tcpdump', ['--version']], ['tshark', ['-v']], ['tcpreplay', ['--version']]]) {
    if (spawnSync(command, args, { stdio: 'ignore' }).error) return `${command} is not installed (Debian package ${command})`
  }
  return rtUnavailable()
}

/** tcpdump on the receiving veth until it has `count` datagrams (or `stop()`); `done` when it wrote them. */
async function startCapture(ns, path, count) {
  const capture = new Child('tcpdump', ['-i', 'veth0', '-n', '-U', '--immediate-mode', '-B', '65536', '--time-stamp-precision=nano',
    '-c', String(count), '-w', path, `udp dst port ${PORT}`], { netns: ns.receive, cpu: CPU.INSTRUMENT, name: 'tcpdump' })
  for (;;) {
    if (/listening on/.test(capture.stderr)) break
    if (capture.proc.exitCode !== null) throw new Error(`tcpdump exited: ${capture.stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return capture
}

/** The arrivals tcpdump recorded: sequence number → kernel stamp (ns, as a number since the first). */
function arrivals(path) {
  const out = execFileSync('tshark', ['-r', path, '-n', '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'udp.payload'], { encoding: 'utf8', maxBuffer: 1 << 28 })
  const times = new Map()
  for (const line of out.split('\n')) {
    const [time, payload] = line.split('\t')
    if (!payload) continue
    const [s, f] = time.split('.')
    times.set(Number(BigInt(`0x${payload.slice(0, 16)}`)), BigInt(s) * 1_000_000_000n + BigInt(f.padEnd(9, '0').slice(0, 9)))
  }
  return times
}

/** |actual gap − recorded gap| over consecutive sequence numbers that both arrived. */
function gapErrors(times, count) {
  const errors = []
  for (let k = 0; k + 1 < count; k++) {
    const [a, b] = [times.get(k), times.get(k + 1)]
    if (a !== undefined && b !== undefined) errors.push(Math.abs(Number(b - a) - PERIOD_NS))
  }
  return errors
}

/** One replay by `who`, measured by a fresh tcpdump. */
async function measure(ns, who, file, count, dir) {
  const path = join(dir, `${who}-${Date.now()}.pcap`)
  // A sink, so that udpcom's and node:dgram's connected sockets get no ICMP port unreachable.
  const sink = new Child(BIN('stamp_receiver'), ['--mode', 'count', '--port', String(PORT), '--bind', RECEIVER, '--idle-ms', '600000'],
    { netns: ns.receive, cpu: CPU.INSTRUMENT, name: 'sink' })
  const capture = await startCapture(ns, path, count)
  try {
    await sink.ready()
    const rt = { cpu: CPU.IO, netns: ns.send }
    let replayer
    if (who === 'udpcom' || who === 'dgram') {
      // node:dgram's JavaScript thread is its replayer: on CPU 1. udpcom's replayer is its
      // worker (pinned to CPU 1 by its own `cpu` option); its JavaScript thread only waits, on
      // CPU 0, as replay_native's main thread is not on the worker's CPU either.
      replayer = nodeRole(import.meta.url, who, { file, count }, who === 'udpcom' ? { cpu: CPU.APP, netns: ns.send } : rt)
      await replayer.ready()
      await replayer.json(120_000)
    } else if (who === 'native') {
      replayer = new Child(BIN('replay_native'), ['--file', file, '--to', `${RECEIVER}:${PORT}`, '--from', SENDER, '--cpu', String(CPU.IO), '--priority', String(RT_PRIORITY)],
        { netns: ns.send, name: 'replay_native' })
      await replayer.json(120_000)
    } else {
      const nano = who === 'tcpreplay-nano'
      replayer = new Child('tcpreplay', ['-i', 'veth0', '-q', ...(nano ? ['--timer=nano'] : []), file], { ...rt, ...(nano ? { rt: RT_PRIORITY } : {}), name: who })
      const { code } = await replayer.exited
      if (code !== 0) throw new Error(`tcpreplay exited ${code}: ${replayer.stderr}`)
    }
    await replayer.close()
    // tcpdump ends by itself after `count`; a datagram that never came leaves it waiting.
    const ended = await Promise.race([capture.exited, new Promise((resolve) => setTimeout(() => resolve(null), 3_000))])
    if (ended === null) {
      capture.proc.kill('SIGINT')
      await capture.exited
    }
    const times = arrivals(path)
    const errors = gapErrors(times, count)
    return { arrived: times.size, pairs: errors.length, p50: percentile(errors, 0.5), p99: percentile(errors, 0.99), max: percentile(errors, 1) }
  } finally {
    capture.kill()
    await sink.close()
    rmSync(path, { force: true })
  }
}

export async function run({ smoke }) {
  const name = `Replay fidelity: a ${RATE / 1000} kpps capture replayed across a veth pair, |actual − recorded gap| p50 / p99 / max (tcpdump's kernel stamps)`
  const why = unavailable()
  if (why) return { rows: [{ section: '10', name, udpcom: `— (${why})`, dgram: '—', ratio: '—', native: '—', target: '—', met: undefined }], raw: { skipped: why } }
  const count = smoke ? 1_000 : 20_000
  const repeats = smoke ? 1 : 3
  const dir = mkdtempSync(join(tmpdir(), 'udpcom-bench-replay-'))
  const file = join(dir, 'paced.pcap')
  execFileSync(BIN('pcap_synth'), ['--out', file, '--count', String(count), '--rate', String(RATE), '--from', `${SENDER}:40000`, '--to', `${RECEIVER}:${PORT}`])
  const runs = Object.fromEntries(REPLAYERS.map((who) => [who, []]))
  const { ns, remove } = vethNamespaces('replay', SENDER, RECEIVER)
  try {
    for (let r = 0; r < repeats; r++) {
      for (const who of REPLAYERS) runs[who].push(await attempt(`${who} replay ${r + 1}`, () => measure(ns, who, file, count, dir)))
    }
  } finally {
    remove()
    rmSync(dir, { recursive: true, force: true })
  }
  const p99 = (who) => summarize(runs[who].map((x) => x?.p99)).median
  const describe = (who) => {
    const good = goodRuns(runs[who])
    if (good.length === 0) return 'n/a (every repeat failed)'
    const m = (key) => summarize(good.map((x) => x[key])).median
    const range = summarize(good.map((x) => x.p99))
    return `${fmtNs(m('p50'))} / ${fmtNs(m('p99'))} (${fmtNs(range.min)}–${fmtNs(range.max)}) / ${fmtNs(m('max'))}; ${fmtCount(Math.min(...good.map((x) => x.arrived)))} of ${fmtCount(count)} arrived`
  }
  const bestTcpreplay = Math.min(p99('tcpreplay'), p99('tcpreplay-nano'))
  const notes = REPLAYERS.map((who) => failureNote(failedRuns(runs[who]), repeats, who)).filter(Boolean)
  const judged = verdict(p99('udpcom') <= bestTcpreplay / 10, { 'udpcom p99': p99('udpcom'), 'tcpreplay p99': bestTcpreplay }, notes)
  return {
    rows: [{
      section: '10',
      name,
      udpcom: describe('udpcom'),
      dgram: `${describe('dgram')} (busy-wait, event loop blocked)`,
      ratio: `tcpreplay default: ${describe('tcpreplay')}; --timer=nano: ${describe('tcpreplay-nano')}; udpcom p99 / best tcpreplay p99 ${fmtRatio(ratio(p99('udpcom'), bestTcpreplay))}`,
      native: `${describe('native')} (the engine from Rust)`,
      target: 'udpcom p99 ≤ 1/10 of tcpreplay\'s best p99',
      met: notes.length > 0 && judged.met ? null : judged.met,
      note: judged.note,
    }],
    raw: { runs, count },
  }
}

// Roles.
async function udpcomRole({ file, count }) {
  const UdpCom = loadUdpCom()
  // gso: false, as in replay_native: tcpdump on the veth sees a GSO message (datagrams due
  // together, after a late wake-up) as one frame, which this count of frames would miss.
  const udp = new UdpCom(SENDER, 0, RECEIVER, PORT, { direction: 0, cpu: CPU.IO, priority: RT_PRIORITY, gso: false })
  udp.initSocket()
  udp.start()
  emit('READY 0')
  const replay = udp.replay(file, { startNs: now() + 50_000_000n })
  const stats = await replay.done
  emit({ sent: stats.sent, expected: count, p99LatenessNs: stats.p99LatenessNs })
  udp.closeSocket()
}

async function dgramRole({ count }) {
  const dgram = await import('node:dgram')
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, SENDER, resolve))
  await new Promise((resolve) => socket.connect(PORT, RECEIVER, resolve))
  emit('READY 0')
  const start = now() + 50_000_000n
  for (let k = 0; k < count; k++) {
    const due = start + BigInt(k * PERIOD_NS)
    while (now() < due);
    // A buffer of its own: send() may still hold the last one.
    const payload = Buffer.alloc(64)
    payload.writeBigUInt64BE(BigInt(k), 0)
    socket.send(payload)
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
  emit({ sent: count })
  socket.close()
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const role = process.argv[2]
  const options = roleOptions()
  const roles = { udpcom: () => udpcomRole(options), dgram: () => dgramRole(options) }
  roles[role]().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
