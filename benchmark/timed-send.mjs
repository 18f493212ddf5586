// 3. Timed sending at 1 kpps and 10 kpps: how late packets arrive, measured by an independent
// receiver in its own process (engine/examples/stamp_receiver, CPU 0), which stamps every
// datagram with the kernel's software RX timestamp (SO_TIMESTAMPING, CLOCK_REALTIME converted
// to CLOCK_MONOTONIC with an offset re-sampled every 10 ms from the narrowest of 7 clock read
// triples). The target send time travels in the payload; lateness = kernel arrival − target,
// so it includes the sender's own error and the loopback path (~2-3 µs here). Every packet
// the sender says it sent and the receiver did not stamp is shown as lost.
//
// Senders, `seconds` each, 64-byte packets, targets start + i × period:
// - udpcom: `sendData(payload, target)`, queued up to 200 ms ahead from a 20 ms interval; the
//   sender worker is pinned (`cpu: 1`) and SCHED_FIFO (`priority: 80`); JavaScript on CPU 0.
// - node:dgram, a JavaScript scheduler (JavaScript on CPU 1, normal priority): per packet,
//   setTimeout for the part of the wait above 200 µs when that part is at least 1 ms, else
//   one turn of the event loop (setImmediate); then a spin on process.hrtime.bigint() to the
//   target, then `socket.send()`. At 1 and 10 kpps the period is at most 1 ms, so the
//   setTimeout branch never runs (the role counts it): the scheduler busy-waits, one event
//   loop turn per packet, and uses a whole CPU.
// - node:dgram with the strongest set-up a user has: the same scheduler with the whole Node
//   process under `chrt -f 80`, pinned (taskset) to CPU 1, the CPU of udpcom's sender worker.
//   Its loop never sleeps, so the kernel's RT throttling (sched_rt_runtime_us of every
//   sched_rt_period_us) takes the CPU away from it for the rest of each period once it has
//   used its share: the packets due then are milliseconds late (counted as "> 1 ms late").
//   udpcom's worker sleeps between packets (and leaves SCHED_FIFO for a while if it ever
//   cannot), which is why it does not meet the throttle. Needs root; the rows say so otherwise.
// - the best native sender (engine/examples/timed_sender): a Rust program written the obvious
//   way, with no udpcom code: mlockall, pinned to CPU 1, SCHED_FIFO 80, absolute-deadline
//   clock_nanosleep until 20 µs before each target, a spin to the target, one send() per
//   packet. It has no event loop, so it is the reference of the idle and the blocked rows alike.
// Each JavaScript sender once with an idle event loop and once with the loop blocked by 5 ms of
// synchronous work every 20 ms (setInterval). Every configuration is run `repeats` times,
// interleaved; the table shows the median of each percentile, the range of the p99 across
// the repeats and the worst maximum of any repeat. CPU per packet: the sender process's CPU
// time (every thread) while sending, per packet sent.
//
// With `timestamping: 'software'` (idle loop only), udpcom's sender also reads the kernel's
// transmit stamp of every packet from the socket's error queue: wire latency = TX stamp −
// target, the time the packet really left. These rows are udpcom's own statistics
// (getPacketStats), not the independent receiver's; the row checks them against it: on
// loopback sender clock ≤ TX stamp ≤ RX stamp must hold for every packet, so the medians keep
// that order. node:dgram cannot report transmit stamps.
import {
  CPU, RT_PRIORITY, rtUnavailable, tool, nodeRole, roleOptions, emit, loadUdpCom, now, sleep, blockFor, settle, dgramSocket,
  cpuMeter, attempt, goodRuns, failedRuns, summarize, ratio, verdict, failureNote, environment, fmtNs, fmtPercentiles, fmtRatio,
  fmtCount, fmtCpu,
} from './lib.mjs'

const SIZE = 64
const SPIN_NS = 200_000n
/** The absolute p99 target of timed sending, at 10 kpps and at 1 kpps. */
const TARGET_P99_NS = 10_000

/** One run of a sender (a JavaScript role, or the native sender) against a fresh receiver. */
export async function measure(variant, options) {
  const receiver = tool('stamp_receiver', ['--mode', 'stamp', '--cpu', CPU.INSTRUMENT, '--idle-ms', 600_000])
  try {
    const port = await receiver.ready()
    let sender
    if (variant === 'native') {
      const count = Math.round(options.rate * options.seconds)
      // Without the right to SCHED_FIFO it runs at normal priority, and its cell says so.
      const priority = rtUnavailable() ? 0 : RT_PRIORITY
      sender = tool('timed_sender', ['--port', port, '--rate', options.rate, '--count', count, '--cpu', CPU.IO, '--priority', priority, '--spin-us', 20])
    } else if (variant === 'dgramRt') {
      sender = nodeRole(import.meta.url, 'dgram', { port, ...options }, { cpu: CPU.IO, rt: RT_PRIORITY })
    } else {
      sender = nodeRole(import.meta.url, variant, { port, ...options }, { cpu: variant === 'dgram' ? CPU.IO : CPU.APP })
    }
    await sender.ready()
    const sent = await sender.json(options.seconds * 1000 + 30_000)
    await sender.close()
    const stamps = await settle(receiver, sent.sent)
    const cpuNs = sent.cpu?.processNs ?? sent.cpuNs
    return {
      p50: stamps.p50Ns ?? NaN,
      p99: stamps.p99Ns ?? NaN,
      p999: stamps.p999Ns ?? NaN,
      max: stamps.maxNs ?? NaN,
      min: stamps.minNs ?? NaN,
      early: stamps.early,
      over1ms: stamps.over1ms,
      count: stamps.count,
      lost: sent.sent - stamps.count,
      cpuPerPacketNs: cpuNs / sent.sent,
      offsetWidthMaxNs: stamps.offsetWidthMaxNs,
      sender: sent,
    }
  } finally {
    await receiver.close()
  }
}

/** "Within noise": no more than max(1 µs, 20%) above the reference. */
export const withinNoise = (value, reference) => value <= reference + Math.max(1000, 0.2 * reference)

export async function run({ smoke }) {
  const seconds = smoke ? 0.3 : 5
  const repeats = smoke ? 1 : 3
  const rtMissing = rtUnavailable()
  const configs = []
  for (const rate of [10_000, 1_000]) for (const blocked of [false, true]) configs.push({ rate, blocked, key: `${rate}-${blocked ? 'blocked' : 'idle'}` })
  const jsVariants = ['udpcom', 'dgram', ...(rtMissing ? [] : ['dgramRt'])]
  const runs = Object.fromEntries(configs.map((c) => [c.key, Object.fromEntries(jsVariants.map((v) => [v, []]))]))
  const nativeRuns = { 10000: [], 1000: [] }
  const stampedRuns = { 10000: [], 1000: [] }
  for (let r = 0; r < repeats; r++) {
    for (const { rate, blocked, key } of configs) {
      for (const v of jsVariants) {
        runs[key][v].push(await attempt(`timed send ${key} ${v}, repeat ${r + 1}`, () => measure(v, { rate, seconds, blocked })))
      }
      if (blocked) continue
      nativeRuns[rate].push(await attempt(`timed send ${rate} native, repeat ${r + 1}`, () => measure('native', { rate, seconds })))
      stampedRuns[rate].push(await attempt(`timed send ${rate} udpcom stamped, repeat ${r + 1}`,
        () => measure('udpcom', { rate, seconds, blocked, extra: { timestamping: 'software' } })))
    }
  }

  const p99 = (list) => summarize(list.map((x) => x.p99)).median
  const lost = (list) => goodRuns(list).reduce((sum, x) => sum + x.lost, 0)
  const late = (list) => goodRuns(list).reduce((sum, x) => sum + x.over1ms, 0)
  /** A sender's cell: percentiles, loss, packets over 1 ms late, CPU per packet. */
  const describe = (list) => {
    const good = goodRuns(list)
    if (good.length === 0) return 'n/a (every repeat failed)'
    const sent = good.reduce((sum, x) => sum + x.sender.sent, 0)
    return `${fmtPercentiles(good)}; lost ${fmtCount(lost(list))}; > 1 ms late ${fmtCount(late(list))} of ${fmtCount(sent)}; ${fmtCpu(good.map((x) => x.cpuPerPacketNs))}`
  }
  const failuresOf = (lists) => Object.entries(lists).map(([name, list]) => failureNote(failedRuns(list), repeats, name)).filter(Boolean)
  const nativeCell = (rate) =>
    `best native sender (${rtMissing ? `normal priority: ${rtMissing}` : `FIFO ${RT_PRIORITY}`}, pinned, sleep + 20 µs spin): ${describe(nativeRuns[rate])}`

  const rows = []
  for (const { rate, blocked, key } of configs) {
    const { udpcom, dgram } = runs[key]
    const idle = runs[`${rate}-idle`].udpcom
    const notes = failuresOf({ udpcom, dgram, native: nativeRuns[rate] })
    if (lost(udpcom) > 0) notes.push('udpcom lost packets')
    let target
    let judged
    if (rate === 10_000 && !blocked) {
      target = `p99 ≤ ${fmtNs(TARGET_P99_NS)}, nothing lost`
      judged = verdict(p99(udpcom) <= TARGET_P99_NS && lost(udpcom) === 0, { 'udpcom p99': p99(udpcom) }, notes)
    } else if (rate === 10_000) {
      target = `p99 ≤ ${fmtNs(TARGET_P99_NS)} and ≈ idle (${fmtNs(p99(idle))}); dgram in ms; nothing lost`
      judged = verdict(p99(udpcom) <= TARGET_P99_NS && withinNoise(p99(udpcom), p99(idle)) && p99(dgram) >= 1e6 && lost(udpcom) === 0,
        { 'udpcom p99': p99(udpcom), 'idle p99': p99(idle), 'dgram p99': p99(dgram) }, notes)
    } else {
      // An absolute bound, so that a worse 10 kpps row cannot make this one easier to meet.
      const reference = runs[`10000-${blocked ? 'blocked' : 'idle'}`].udpcom
      target = `p99 ≤ ${fmtNs(TARGET_P99_NS)} and ≤ 10 kpps p99 (${fmtNs(p99(reference))}); nothing lost`
      judged = verdict(p99(udpcom) <= TARGET_P99_NS && withinNoise(p99(udpcom), p99(reference)) && lost(udpcom) === 0,
        { 'udpcom p99': p99(udpcom), '10 kpps p99': p99(reference) }, notes)
    }
    // What the sender itself saw, when it explains the figures: times it left SCHED_FIFO to
    // stay clear of RT throttling, and the spin window it ended with (median over the runs).
    const senders = goodRuns(udpcom).map((x) => x.sender)
    const demotions = summarize(senders.map((x) => x.rtDemotions)).median
    const window = summarize(senders.map((x) => x.spinWindowNs)).median
    const note = demotions > 0 ? ` (sender: ${demotions} RT demotions, spin window ${fmtNs(window)})` : ''
    rows.push({
      section: '3',
      name: `Timed send ${rate / 1000} kpps, ${blocked ? 'loop blocked 5 ms/20 ms' : 'idle loop'}: lateness p50 / p99 (range) / p99.9 / worst max`,
      udpcom: `${describe(udpcom)}${note}`,
      dgram: `JavaScript scheduler (busy-waits), normal priority: ${describe(dgram)}`,
      ratio: `p99 ${fmtRatio(ratio(p99(dgram), p99(udpcom)))}`,
      native: nativeCell(rate),
      target,
      met: failuresOf({ udpcom, dgram }).length > 0 && judged.met ? null : judged.met,
      note: judged.note,
    })
  }
  for (const { rate, blocked, key } of configs) {
    const { udpcom, dgramRt } = runs[key]
    const name = `Timed send ${rate / 1000} kpps, ${blocked ? 'loop blocked 5 ms/20 ms' : 'idle loop'}, node:dgram under chrt -f ${RT_PRIORITY} pinned to CPU ${CPU.IO}: lateness p50 / p99 (range) / p99.9 / worst max`
    if (rtMissing) {
      rows.push({ section: '3', name, udpcom: describe(udpcom), dgram: `— (${rtMissing})`, ratio: '—', native: nativeCell(rate), target: '—', met: undefined })
      continue
    }
    const { schedRtRuntimeUs, schedRtPeriodUs } = environment()
    rows.push({
      section: '3',
      name,
      udpcom: describe(udpcom),
      dgram: `the same scheduler, whole process SCHED_FIFO ${RT_PRIORITY} (RT throttling: ${schedRtRuntimeUs} of every ${schedRtPeriodUs} µs): ${describe(dgramRt)}`,
      ratio: `p99 ${fmtRatio(ratio(p99(dgramRt), p99(udpcom)))}`,
      native: nativeCell(rate),
      target: '— (shows what real-time priority alone does for a JavaScript scheduler)',
      met: undefined,
      note: failuresOf({ dgramRt }).join('; ') || undefined,
    })
  }
  const wire = {}
  for (const rate of [10_000, 1_000]) {
    wire[rate] = wireRow(rate, stampedRuns[rate], repeats)
    rows.push(wire[rate].row)
  }
  return { rows, raw: { rtUnavailable: rtMissing, runs, nativeRuns, stampedRuns, wire: Object.fromEntries(Object.entries(wire).map(([k, v]) => [k, v.summary])) } }
}

/** Wire latency (kernel TX stamp − target) of the timestamped runs, medians over the repeats. */
function wireRow(rate, runs, repeats) {
  const good = goodRuns(runs)
  const pick = (key) => summarize(good.map((r) => r.sender[key])).median
  const sum = (key) => good.reduce((total, r) => total + r.sender[key], 0)
  const summary = {
    wire: { p50: pick('wireP50Ns'), p99: pick('wireP99Ns'), p999: pick('wireP999Ns'), max: summarize(good.map((r) => r.sender.wireMaxNs)).max },
    senderClock: { p50: pick('senderP50Ns'), p99: pick('senderP99Ns') },
    arrival: { p50: summarize(good.map((r) => r.p50)).median },
    sent: sum('sent'),
    txTimestamps: sum('txTimestamps'),
    txTimestampsDropped: sum('txTimestampsDropped'),
    lost: good.reduce((total, r) => total + r.lost, 0),
  }
  const { wire, senderClock, arrival } = summary
  // Per packet the TX stamp falls between the sender's clock read and the RX stamp; medians
  // of the three distributions keep that order, in every run.
  summary.ordered = good.length > 0 && good.every((r) => r.sender.senderP50Ns <= r.sender.wireP50Ns && r.sender.wireP50Ns <= r.p50)
  summary.everyPacket = good.length > 0 && good.every((r) => r.sender.txTimestamps === r.sender.sent)
  const notes = [failureNote(failedRuns(runs), repeats)].filter(Boolean)
  const judged = verdict(summary.ordered && summary.everyPacket && summary.lost === 0, { 'wire p50': wire.p50, 'arrival p50': arrival.p50 }, notes)
  return {
    summary,
    row: {
      section: '3',
      name: `Timed send ${rate / 1000} kpps, idle loop, timestamping 'software': wire latency (kernel TX stamp − target) p50 / p99 / p99.9 / worst max, as udpcom itself reports it (getPacketStats)`,
      udpcom: `${fmtNs(wire.p50)} / ${fmtNs(wire.p99)} / ${fmtNs(wire.p999)} / ${fmtNs(wire.max)} (${fmtCount(summary.txTimestamps)} of ${fmtCount(summary.sent)} packets stamped; lost ${fmtCount(summary.lost)})`,
      dgram: '— (node:dgram has no transmit stamps)',
      ratio: '—',
      native: '—',
      target: `sender clock p50 ${fmtNs(senderClock.p50)} ≤ wire p50 ≤ independent arrival p50 ${fmtNs(arrival.p50)}; every packet stamped; nothing lost`,
      met: notes.length > 0 && judged.met ? null : judged.met,
      note: judged.note,
    },
  }
}

// Roles (child processes). The udpcom sender is also the sender of section 9 (multicast.mjs),
// which gives it other addresses: `local` to bind, `address` to send to.
async function udpcomSender({ port, rate, seconds, blocked, extra = {}, local = '127.0.0.1', address = '127.0.0.1' }) {
  const UdpCom = loadUdpCom()
  const udp = new UdpCom(local, 0, address, port, { direction: 0, cpu: CPU.IO, priority: RT_PRIORITY, capacity: 65_536, ...extra })
  udp.initSocket()
  udp.start()
  emit(`READY ${udp.localPort}`)
  const cpu = cpuMeter()
  const total = Math.round(rate * seconds)
  const period = BigInt(Math.round(1e9 / rate))
  const start = now() + 50_000_000n
  const payload = Buffer.alloc(SIZE)
  let queued = 0
  const queueAhead = () => {
    const horizon = now() + 200_000_000n
    while (queued < total) {
      const target = start + BigInt(queued) * period
      if (target > horizon) break
      payload.writeBigUInt64LE(target, 0)
      payload.writeUInt32LE(queued, 8)
      if (!udp.sendData(payload, target)) throw new Error('send ring full')
      queued++
    }
  }
  queueAhead()
  const refill = setInterval(queueAhead, 20)
  const blocker = blocked ? setInterval(() => blockFor(5), 20) : null
  while (queued < total) await sleep(20)
  await udp.drain()
  clearInterval(refill)
  if (blocker) clearInterval(blocker)
  const s = udp.getPacketStats()
  emit({
    sent: s.nPacketsSent,
    errors: s.nSendErrors,
    senderP50Ns: s.p50LatencyNs,
    senderP99Ns: s.p99LatencyNs,
    senderMaxNs: s.maxLatencyNs,
    late: s.nLatePackets,
    rtDemotions: s.nRtDemotions,
    stalls: s.nStalls,
    spinWindowNs: s.spinWindowNs,
    txTimestamps: s.nTxTimestamps,
    txTimestampsDropped: s.nTxTimestampsDropped,
    wireP50Ns: s.p50WireLatencyNs,
    wireP99Ns: s.p99WireLatencyNs,
    wireP999Ns: s.p999WireLatencyNs,
    wireMaxNs: s.maxWireLatencyNs,
    cpu: cpu(),
  })
  udp.closeSocket()
}

async function dgramScheduler({ port, rate, seconds, blocked }) {
  const { setTimeout: wait } = await import('node:timers/promises')
  const socket = await dgramSocket(port)
  emit(`READY ${socket.address().port}`)
  const cpu = cpuMeter()
  const total = Math.round(rate * seconds)
  const period = BigInt(Math.round(1e9 / rate))
  const start = now() + 50_000_000n
  const payload = Buffer.alloc(SIZE)
  const blocker = blocked ? setInterval(() => blockFor(5), 20) : null
  // How often each kind of wait ran: at 1 and 10 kpps only the event-loop turn does.
  const waits = { setTimeout: 0, setImmediate: 0 }
  for (let i = 0; i < total; i++) {
    const target = start + BigInt(i) * period
    const coarse = target - SPIN_NS - now()
    if (coarse >= 1_000_000n) {
      waits.setTimeout++
      await wait(Number(coarse / 1_000_000n))
    } else {
      waits.setImmediate++
      await new Promise(setImmediate)
    }
    while (now() < target);
    payload.writeBigUInt64LE(target, 0)
    payload.writeUInt32LE(i, 8)
    socket.send(payload)
  }
  if (blocker) clearInterval(blocker)
  while (socket.getSendQueueCount() > 0) await new Promise(setImmediate)
  emit({ sent: total - socket.errors, errors: socket.errors, waits, cpu: cpu() })
  socket.close()
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const role = process.argv[2]
  const options = roleOptions()
  const main = role === 'dgram' ? dgramScheduler(options) : udpcomSender(options)
  main.catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
