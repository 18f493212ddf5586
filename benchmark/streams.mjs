// 8. Native test streams (startStream), side by side in one run:
//
// - Timed stream, 10 kpps for `seconds`: lateness measured by the independent kernel-stamped
//   receiver (stamp_receiver --payload udpcom: arrival stamp, CLOCK_REALTIME, minus the target
//   time in the stream's udpcom header), against the best native timed sender written the obvious
//   way (timed_sender: absolute-deadline sleep, 20 µs spin, SCHED_FIFO, pinned) and udpcom's own
//   sendData path (section 3's udpcom role), interleaved over `repeats`. udpcom's sender worker
//   on CPU 1, SCHED_FIFO 80. Target: stream p99 ≤ 1.5 × the native sender's p99 of the same run,
//   and no worse than the sendData path (within noise).
// - Fast stream, 64-byte packets at 1 Mpps for 2 s (loopback), counted by the independent
//   receiver (stamp_receiver --mode count): delivered and lost. Target: nothing lost at 1 Mpps.
// - Analysis cost per datagram on the receive thread: engine/examples/analysis_cost (1M prebuilt
//   datagrams through the analyzer, best of several rounds), for one udpcom stream and for 64
//   interleaved streams.
// - CPU of an idle stream: a stream at 10 packets/s for `idleSeconds`: the sender worker's CPU
//   time (schedstat) per second between its ticks.
import {
  CPU, RT_PRIORITY, rtUnavailable, tool, nodeRole, roleOptions, emit, loadUdpCom, now, sleep, settle, cpuMeter, threadCpuNs,
  attempt, goodRuns, failedRuns, summarize, ratio, verdict, failureNote, fmtNs, fmtPercentiles, fmtRatio, fmtCount, fmtCpu, fmtPps,
} from './lib.mjs'
import { measure as measureTimed } from './timed-send.mjs'

const SIZE = 64

/** A stream's lateness at the independent receiver. */
async function measureStream({ rate, seconds }) {
  const receiver = tool('stamp_receiver', ['--mode', 'stamp', '--payload', 'udpcom', '--cpu', CPU.INSTRUMENT, '--idle-ms', 600_000])
  try {
    const port = await receiver.ready()
    const sender = nodeRole(import.meta.url, 'stream', { port, rate, seconds }, { cpu: CPU.APP })
    await sender.ready()
    const sent = await sender.json(seconds * 1000 + 30_000)
    await sender.close()
    const stamps = await settle(receiver, sent.sent)
    return {
      p50: stamps.p50Ns ?? NaN,
      p99: stamps.p99Ns ?? NaN,
      p999: stamps.p999Ns ?? NaN,
      max: stamps.maxNs ?? NaN,
      count: stamps.count,
      lost: sent.sent - stamps.count,
      over1ms: stamps.over1ms,
      cpuPerPacketNs: sent.cpu.processNs / sent.sent,
      sender: sent,
    }
  } finally {
    await receiver.close()
  }
}

/** A fast stream, counted by the independent receiver. */
async function measureFast({ rate, seconds }) {
  const receiver = tool('stamp_receiver', ['--mode', 'count', '--cpu', CPU.INSTRUMENT, '--idle-ms', 600_000])
  try {
    const port = await receiver.ready()
    const sender = nodeRole(import.meta.url, 'stream', { port, rate, seconds, fast: true }, { cpu: CPU.APP })
    await sender.ready()
    const sent = await sender.json(seconds * 1000 + 60_000)
    await sender.close()
    const counted = await settle(receiver, sent.sent)
    return { offered: sent.offered, sent: sent.sent, received: counted.count, lost: sent.sent - counted.count, ratePps: counted.ratePps, sender: sent }
  } finally {
    await receiver.close()
  }
}

export async function run({ smoke }) {
  const seconds = smoke ? 0.3 : 5
  const repeats = smoke ? 1 : 3
  const rate = 10_000
  const runs = { stream: [], native: [], sendData: [] }
  for (let r = 0; r < repeats; r++) {
    runs.stream.push(await attempt(`stream ${rate} pps, repeat ${r + 1}`, () => measureStream({ rate, seconds })))
    runs.native.push(await attempt(`native timed sender ${rate} pps, repeat ${r + 1}`, () => measureTimed('native', { rate, seconds })))
    runs.sendData.push(await attempt(`sendData ${rate} pps, repeat ${r + 1}`, () => measureTimed('udpcom', { rate, seconds, blocked: false })))
  }
  const fast = await attempt('1 Mpps stream', () => measureFast({ rate: 1_000_000, seconds: smoke ? 0.2 : 2 }))
  const cost = await attempt('analysis cost', async () => {
    const t = tool('analysis_cost', ['--datagrams', smoke ? 100_000 : 1_000_000, '--rounds', smoke ? 1 : 5])
    const result = {}
    for (let i = 0; i < 3; i++) {
      const line = await t.json(300_000)
      result[line.scenario] = line
    }
    await t.close()
    return {
      udpcomNs: result['1-stream'].bestNsPerDatagram,
      interleavedNs: result['64-streams'].bestNsPerDatagram,
      iperf2Ns: result.iperf2.bestNsPerDatagram,
      scenarios: result,
    }
  })
  const idle = await attempt('idle stream', async () => {
    const child = nodeRole(import.meta.url, 'idle', { seconds: smoke ? 0.5 : 5 }, { cpu: CPU.IO })
    await child.ready()
    const result = await child.json(60_000)
    await child.close()
    return result
  })

  const p99 = (list) => summarize(goodRuns(list).map((x) => x.p99)).median
  const lost = (list) => goodRuns(list).reduce((sum, x) => sum + x.lost, 0)
  const describe = (list) => {
    const good = goodRuns(list)
    if (good.length === 0) return 'n/a (every repeat failed)'
    const sent = good.reduce((sum, x) => sum + (x.sender.sent ?? 0), 0)
    return `${fmtPercentiles(good)}; lost ${fmtCount(lost(list))}; > 1 ms late ${fmtCount(good.reduce((s, x) => s + x.over1ms, 0))} of ${fmtCount(sent)}; ${fmtCpu(good.map((x) => x.cpuPerPacketNs))}`
  }
  const notes = Object.entries(runs).map(([name, list]) => failureNote(failedRuns(list), repeats, name)).filter(Boolean)
  if (lost(runs.stream) > 0) notes.push('the stream lost packets')
  const rtMissing = rtUnavailable()
  const withinNoise = (value, reference) => value <= reference + Math.max(1000, 0.2 * reference)
  const timed = verdict(p99(runs.stream) <= 1.5 * p99(runs.native) && withinNoise(p99(runs.stream), p99(runs.sendData)) && lost(runs.stream) === 0,
    { 'stream p99': p99(runs.stream), 'native p99': p99(runs.native), 'sendData p99': p99(runs.sendData) }, notes)
  const rows = [{
    section: '8',
    name: `Stream 10 kpps for ${seconds} s (startStream, udpcom header), lateness at the independent receiver: p50 / p99 (range) / p99.9 / worst max`,
    udpcom: `${describe(runs.stream)}; sendData path of the same run: ${describe(runs.sendData)}`,
    dgram: '— (node:dgram has no native stream; its JavaScript scheduler is section 3)',
    ratio: `p99 vs native ${fmtRatio(ratio(p99(runs.stream), p99(runs.native)))} (lower is better)`,
    native: `best native sender (${rtMissing ? `normal priority: ${rtMissing}` : `FIFO ${RT_PRIORITY}`}, pinned, sleep + 20 µs spin): ${describe(runs.native)}`,
    target: '≤ 1.5 × native p99, ≤ sendData p99 (within noise), nothing lost',
    met: timed.met,
    note: timed.note,
  }]
  const fastOk = fast.failed === undefined
  rows.push({
    section: '8',
    name: 'Stream at 1 Mpps (64 B, loopback, 2 s): delivered to the independent receiver',
    udpcom: fastOk ? `${fmtCount(fast.received)} of ${fmtCount(fast.sent)} sent delivered (${fmtPps(fast.ratePps)} at the receiver), lost ${fmtCount(fast.lost)}; ${fmtCount(fast.offered)} ticks due` : `n/a (${fast.failed})`,
    dgram: '—',
    ratio: '—',
    native: '—',
    target: '1 Mpps delivered, nothing lost',
    ...(() => {
      const v = verdict(fastOk && fast.lost === 0 && fast.ratePps >= 0.95e6 && fast.sent >= 0.95 * fast.offered, { 'received rate': fastOk ? fast.ratePps : NaN })
      return { met: v.met, note: v.note }
    })(),
  })
  rows.push({
    section: '8',
    name: 'Stream analysis on the receive thread: cost per datagram (analysis_cost, 1M datagrams, best round)',
    udpcom: cost.failed === undefined ? `one udpcom stream ${fmtNs(cost.udpcomNs)}, one iperf 2 stream ${fmtNs(cost.iperf2Ns)}, 64 interleaved streams ${fmtNs(cost.interleavedNs)}` : `n/a (${cost.failed})`,
    dgram: '—',
    ratio: '—',
    native: '—',
    target: '—',
    met: undefined,
  })
  rows.push({
    section: '8',
    name: 'CPU of an idle stream (10 packets/s): the sender worker between ticks, share of one core',
    udpcom: idle.failed === undefined ? `${(idle.workerShare * 100).toFixed(3)}% (${fmtCount(idle.sent)} packets in ${idle.seconds} s)` : `n/a (${idle.failed})`,
    dgram: '—',
    ratio: '—',
    native: '—',
    target: '< 1% of a core',
    ...(() => {
      const v = verdict(idle.failed === undefined && idle.workerShare < 0.01, { share: idle.workerShare })
      return { met: v.met, note: v.note }
    })(),
  })
  return { rows, raw: { runs, fast, cost, idle } }
}

// Roles.
async function streamRole({ port, rate, seconds, fast }) {
  const UdpCom = loadUdpCom()
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', port, { direction: 0, cpu: CPU.IO, ...(rtUnavailable() ? {} : { priority: RT_PRIORITY }) })
  udp.initSocket()
  udp.start()
  emit(`READY ${udp.localPort}`)
  const count = Math.round(rate * seconds)
  const cpu = cpuMeter()
  const stream = udp.startStream({ ratePps: rate, count, size: SIZE, startNs: now() + 50_000_000n, ...(fast ? { burst: 64 } : {}) })
  const summary = await stream.done
  const s = udp.getPacketStats()
  emit({ offered: count, sent: summary.sent, errors: summary.errors, senderP99Ns: summary.p99LatenessNs, rtDemotions: s.nRtDemotions, cpu: cpu() })
  udp.closeSocket()
}

async function idleRole({ seconds }) {
  const UdpCom = loadUdpCom()
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 0, cpu: CPU.IO })
  udp.initSocket()
  udp.start()
  emit('READY 0')
  const stream = udp.startStream({ ratePps: 10, header: 'none', size: 8 })
  await sleep(200)
  const before = threadCpuNs('udpcom-send').ns
  await sleep(seconds * 1000)
  const used = threadCpuNs('udpcom-send').ns - before
  stream.stop()
  const summary = await stream.done
  emit({ seconds, sent: summary.sent, workerShare: used / (seconds * 1e9) })
  udp.closeSocket()
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const role = process.argv[2]
  const options = roleOptions()
  const roles = { stream: () => streamRole(options), idle: () => idleRole(options) }
  roles[role]().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
