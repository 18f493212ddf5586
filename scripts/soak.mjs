#!/usr/bin/env node
// Soak: two instances on loopback stream to each other at a steady rate for a long time, and
// the statistics must keep telling the truth while memory stays flat.
//
//   npm run soak                                   10 minutes at 50 kpps in each direction
//   UDPCOM_SOAK_SECONDS=30 UDPCOM_SOAK_PPS=20000 npm run soak
//
// Environment: UDPCOM_SOAK_SECONDS (600), UDPCOM_SOAK_PPS (50000, per direction),
// UDPCOM_SOAK_PAYLOAD (64 bytes, at least 8), UDPCOM_SOAK_SPIN_NS (0: the senders sleep until
// each deadline and never spin; 'adaptive': udpcom's default window, with which two senders
// 20 µs apart spin without pause and, on a 2-core machine, starve the receivers and the event
// loop: the soak is about accounting and memory, not precision), UDPCOM_SOAK_CAPACITY (16384
// packets per ring),
// UDPCOM_SOAK_RSS_GROWTH_MB (32: allowed RSS growth after the warm-up).
//
// Every second it prints one line per second and checks, on both instances, that
//   nPacketsQueued   = nPacketsSent + nSendErrors + nPacketsDiscarded + sendQueueLength
//   nPacketsReceived = nPacketsDelivered + nRecvRingOverflow + nRecvDiscarded + recvQueueLength
//   nPacketsDelivered = the packets the onPackets callback was given
// and that sequence numbers arrive in order, each at most once. At the end, once everything has
// drained, every packet sent is received or counted as dropped by the kernel:
//   receiver.nPacketsReceived + receiver.nKernelDrops = sender.nPacketsSent
// It exits 1 if any check fails, if RSS grew by more than the allowance after the warm-up,
// or if less than 95% of the packets were sent; it prints a summary line 'SOAK SUMMARY {json}'.
import { createRequire } from 'node:module'
import dgram from 'node:dgram'

const { UdpCom } = createRequire(import.meta.url)(process.env.UDPCOM_MODULE ?? '..')

const env = (name, fallback) => (process.env[name] === undefined || process.env[name] === '' ? fallback : Number(process.env[name]))
const seconds = env('UDPCOM_SOAK_SECONDS', 600)
const pps = env('UDPCOM_SOAK_PPS', 50_000)
const payloadBytes = Math.max(8, env('UDPCOM_SOAK_PAYLOAD', 64))
const spinNs = process.env.UDPCOM_SOAK_SPIN_NS === 'adaptive' ? undefined : env('UDPCOM_SOAK_SPIN_NS', 0)
const rssGrowthMb = env('UDPCOM_SOAK_RSS_GROWTH_MB', 32)
const warmupSeconds = Math.min(30, Math.max(1, Math.ceil(seconds / 10)))

const failures = []
const fail = (message) => {
  failures.push(message)
  console.log(`FAIL ${message}`)
}
const rssMb = () => process.memoryUsage().rss / 2 ** 20
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A port nobody uses right now (a bound-then-closed node:dgram socket). */
async function freePort() {
  const probe = dgram.createSocket('udp4')
  await new Promise((resolve) => probe.bind(0, '127.0.0.1', resolve))
  const { port } = probe.address()
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/** Two instances connected to each other, both directions, started. */
async function connectedPair(options) {
  for (let attempt = 0; ; attempt++) {
    const portB = await freePort()
    const a = new UdpCom('127.0.0.1', 0, '127.0.0.1', portB, options)
    a.initSocket()
    const b = new UdpCom('127.0.0.1', portB, '127.0.0.1', a.localPort, options)
    try {
      b.initSocket()
    } catch (error) {
      a.closeSocket()
      if (error.code === 'EADDRINUSE' && attempt < 5) continue // someone took the port
      throw error
    }
    a.start()
    b.start()
    return [a, b]
  }
}

/** One direction: `from` sends numbered packets at `pps`; `to` checks and counts them. */
function lane(name, from, to) {
  const state = { name, from, to, delivered: 0, nextExpected: 0n, outOfOrder: 0, duplicates: 0, seq: 0n }
  const period = 1e9 / pps
  const start = process.hrtime.bigint() + 5_000_000n
  const batchMax = 1024
  const payloads = Array.from({ length: batchMax }, () => Buffer.alloc(payloadBytes))
  const stamps = new BigInt64Array(batchMax)
  // Queue everything due within the next 50 ms (the timer runs every 10 ms); what the ring
  // refuses is offered again on the next tick, so nothing is skipped.
  state.refill = () => {
    const horizon = process.hrtime.bigint() + 50_000_000n
    for (;;) {
      let n = 0
      for (; n < batchMax; n++) {
        const at = start + BigInt(Math.round(Number(state.seq + BigInt(n)) * period))
        if (at > horizon) break
        payloads[n].writeBigUInt64LE(state.seq + BigInt(n))
        stamps[n] = at
      }
      if (n === 0) return
      const queued = from.sendBatch(payloads.slice(0, n), stamps.subarray(0, n))
      state.seq += BigInt(queued)
      if (queued < n) return
    }
  }
  to.onPackets((packets) => {
    state.delivered += packets.length
    for (const p of packets) {
      const seq = p.data.readBigUInt64LE(0)
      if (seq < state.nextExpected) {
        state.duplicates++
      } else {
        state.nextExpected = seq + 1n
      }
    }
  }, 1024)
  return state
}

function identities(label, s, delivered) {
  const send = s.nPacketsSent + s.nSendErrors + s.nPacketsDiscarded + s.sendQueueLength
  const recv = s.nPacketsDelivered + s.nRecvRingOverflow + s.nRecvDiscarded + s.recvQueueLength
  if (s.nPacketsQueued !== send) fail(`${label}: nPacketsQueued ${s.nPacketsQueued} != sent+errors+discarded+queue ${send}`)
  if (s.nPacketsReceived !== recv) fail(`${label}: nPacketsReceived ${s.nPacketsReceived} != delivered+overflow+discarded+queue ${recv}`)
  if (delivered !== undefined && s.nPacketsDelivered !== delivered) {
    fail(`${label}: nPacketsDelivered ${s.nPacketsDelivered} != ${delivered} packets given to onPackets`)
  }
}

const options = { capacity: env('UDPCOM_SOAK_CAPACITY', 16_384), ...(spinNs === undefined ? {} : { spinNs }) }
const [a, b] = await connectedPair(options)
const lanes = [lane('A→B', a, b), lane('B→A', b, a)]
const refill = () => lanes.forEach((l) => l.refill())
refill()
const timer = setInterval(refill, 10)

console.log(`soak: ${seconds} s, ${pps} packets/s each way, ${payloadBytes}-byte payloads, spinNs ${spinNs ?? 'adaptive'}, ` +
  `RSS growth allowed after ${warmupSeconds} s warm-up: ${rssGrowthMb} MB`)
const samples = []
const started = Date.now()
let previous = lanes.map(() => ({ sent: 0, received: 0 }))
let baselineRss = null
for (let second = 1; second <= seconds; second++) {
  await sleep(started + second * 1000 - Date.now())
  const rss = rssMb()
  if (second === warmupSeconds) baselineRss = rss
  const parts = lanes.map((l, i) => {
    const tx = l.from.getPacketStats()
    const rx = l.to.getPacketStats()
    identities(`${l.name} sender`, tx)
    identities(`${l.name} receiver`, rx, l.delivered)
    const line = `${l.name} sent ${tx.nPacketsSent - previous[i].sent} recv ${rx.nPacketsReceived - previous[i].received}` +
      ` drops ${rx.nKernelDrops} ovfl ${rx.nRecvRingOverflow} err ${tx.nSendErrors} full ${tx.nSendRingFull}` +
      ` late ${tx.nLatePackets} p99 ${(tx.p99LatencyNs / 1000).toFixed(0)}µs`
    previous[i] = { sent: tx.nPacketsSent, received: rx.nPacketsReceived }
    return line
  })
  samples.push(rss)
  console.log(`t=${String(second).padStart(4)}s ${parts.join(' | ')} | rss ${rss.toFixed(1)} MB${failures.length ? ' FAILING' : ''}`)
  if (failures.length > 20) break
}

// Stop offering, let everything queued leave and arrive, then compare both ends exactly.
clearInterval(timer)
await Promise.all([a.drain(), b.drain()])
const quiet = async () => {
  for (let i = 0; i < 200; i++) {
    const settled = lanes.every((l) => {
      const tx = l.from.getPacketStats()
      const rx = l.to.getPacketStats()
      return rx.nPacketsReceived + rx.nKernelDrops >= tx.nPacketsSent && rx.recvQueueLength === 0
    })
    if (settled) return
    await sleep(10)
  }
}
await quiet()
const finalRss = rssMb()
const summary = { seconds: samples.length, ppsPerDirection: pps, payloadBytes, lanes: [] }
for (const l of lanes) {
  const tx = l.from.getPacketStats()
  const rx = l.to.getPacketStats()
  identities(`${l.name} sender (final)`, tx)
  identities(`${l.name} receiver (final)`, rx, l.delivered)
  if (rx.nPacketsReceived + rx.nKernelDrops !== tx.nPacketsSent) {
    fail(`${l.name}: received ${rx.nPacketsReceived} + kernel drops ${rx.nKernelDrops} != sent ${tx.nPacketsSent}`)
  }
  if (tx.sendQueueLength !== 0 || tx.nPacketsDiscarded !== 0) fail(`${l.name}: packets left queued after drain`)
  if (l.duplicates !== 0) fail(`${l.name}: ${l.duplicates} packets arrived out of order or twice`)
  const expected = pps * samples.length
  if (tx.nPacketsSent < 0.95 * expected) fail(`${l.name}: sent ${tx.nPacketsSent}, less than 95% of ${expected}`)
  summary.lanes.push({
    lane: l.name,
    queued: tx.nPacketsQueued,
    sent: tx.nPacketsSent,
    sendErrors: tx.nSendErrors,
    sendRingFull: tx.nSendRingFull,
    received: rx.nPacketsReceived,
    kernelDrops: rx.nKernelDrops,
    recvRingOverflow: rx.nRecvRingOverflow,
    deliveredToJs: l.delivered,
    latePackets: tx.nLatePackets,
    p50LatencyUs: tx.p50LatencyNs / 1000,
    p99LatencyUs: tx.p99LatencyNs / 1000,
    maxLatencyUs: tx.maxLatencyNs / 1000,
  })
}
a.closeSocket()
b.closeSocket()
const tail = samples.slice(-Math.max(1, Math.ceil(samples.length / 10)))
const endRss = Math.max(...tail)
if (baselineRss !== null && endRss - baselineRss > rssGrowthMb) {
  fail(`RSS grew from ${baselineRss.toFixed(1)} MB (after warm-up) to ${endRss.toFixed(1)} MB`)
}
Object.assign(summary, {
  rssStartMb: +(samples[0] ?? finalRss).toFixed(1),
  rssAfterWarmupMb: baselineRss === null ? null : +baselineRss.toFixed(1),
  rssMaxMb: +Math.max(...samples).toFixed(1),
  rssEndMb: +finalRss.toFixed(1),
  identitiesHeld: !failures.some((f) => /!=/.test(f)),
  failures,
})
console.log(`SOAK SUMMARY ${JSON.stringify(summary)}`)
process.exit(failures.length === 0 ? 0 : 1)
