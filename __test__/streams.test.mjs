// Native test streams (startStream): the schedule is exact (no drift), the headers are what
// the README documents, JavaScript does nothing per packet, and iperf 2 measures a stream.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

import { UdpCom, pair, within, until, now, MS } from './helpers.mjs'

/** The udpcom header, read independently of the engine (README, "Streams"). */
function udpcomHeader(data) {
  assert.equal(data.toString('latin1', 0, 4), 'UDPC')
  return {
    version: data[4],
    flags: data[5],
    headerLength: data.readUInt16BE(6),
    streamId: data.readUInt32BE(8),
    sequence: data.readBigUInt64BE(16),
    targetNs: data.readBigUInt64BE(24),
    departureNs: data.readBigUInt64BE(32),
  }
}

/** Collects `count` packets with batches(), with a timeout. */
async function collect(receiver, count, ms = 10_000) {
  const packets = []
  await within(ms, (async () => {
    for await (const batch of receiver.batches({ max: 1024 })) {
      packets.push(...batch)
      if (packets.length >= count) break
    }
  })(), `${count} packets`)
  return packets
}

const identities = (s) => {
  assert.equal(s.nPacketsQueued, s.nPacketsSent + s.nSendErrors + s.nPacketsDiscarded + s.sendQueueLength, 'send identity')
}

test('a 100 kpps stream: every tick at exactly startNs + i × period, in order, each packet once', async () => {
  const { sender, receiver, close } = pair({}, { capacity: 1 << 16 })
  try {
    const startNs = now() + 5n * MS
    const count = 50_000
    const stream = sender.startStream({ ratePps: 100_000, startNs, count, size: 64 })
    assert.equal(typeof stream.id, 'number')
    const packets = await collect(receiver, count)
    const headers = packets.map((p) => udpcomHeader(p.data))
    const t0 = headers[0].targetNs
    headers.forEach((h, i) => {
      assert.equal(h.sequence, BigInt(i))
      assert.equal(h.streamId, stream.id)
      assert.equal(h.targetNs - t0, BigInt(i) * 10_000n, `tick ${i} drifted`)
    })
    assert.equal(headers.at(-1).flags & 2, 2, 'the last packet says so')
    // The last arrival is where it belongs: about (count - 1) periods after the start.
    const span = packets.at(-1).timestampNs - startNs
    assert.ok(span >= BigInt(count - 1) * 10_000n, `the stream ended ${span} ns after its start`)
    const summary = await within(5000, stream.done, 'done')
    assert.equal(summary.state, 'completed')
    assert.equal(summary.sent, count)
    assert.equal(summary.errors, 0)
    assert.equal(summary.startNs, startNs)
    assert.equal(summary.periodNs, 10_000)
    assert.ok(summary.p50LatenessNs <= summary.p99LatenessNs && summary.p99LatenessNs <= summary.maxLatenessNs)
    assert.equal(summary.latenessHistogram.reduce((n, b) => n + b.count, 0), count)
    assert.deepEqual(stream.stats(), summary)
    const stats = sender.getPacketStats()
    assert.equal(stats.nPacketsSent, count)
    identities(stats)
  } finally {
    close()
  }
})

test('bursts, bitsPerSecond, durationNs, payload templates and the three headers', async () => {
  const { sender, receiver, close } = pair()
  try {
    const payload = Buffer.alloc(100, 0xab)
    const bursty = sender.startStream({ bitsPerSecond: 8 * 100 * 8 * 1000, burst: 8, durationNs: 5_000_000, payload, streamId: 9 })
    const packets = await collect(receiver, 40)
    assert.equal(packets.length, 40, '5 ms of ticks every 1 ms, 8 packets each')
    for (const [i, p] of packets.entries()) {
      const h = udpcomHeader(p.data)
      assert.equal(h.streamId, 9)
      assert.equal(p.data.length, 100)
      assert.ok(p.data.subarray(56).every((b) => b === 0xab), 'the template after the header')
      assert.equal(h.targetNs - udpcomHeader(packets[0].data).targetNs, BigInt(Math.floor(i / 8)) * 1_000_000n)
    }
    assert.equal((await within(5000, bursty.done)).state, 'completed')

    sender.startStream({ periodNs: 1_000_000n, count: 3, header: 'none', payload: Buffer.from('plain') })
    assert.deepEqual((await collect(receiver, 3)).map((p) => p.data.toString()), ['plain', 'plain', 'plain'])
    sender.startStream({ ratePps: 1000, count: 3, header: 'iperf2', size: 64 })
    const iperf = await collect(receiver, 3)
    assert.deepEqual(iperf.map((p) => p.data.readInt32BE(0)), [1, 2, -3], 'iperf 2 numbers from 1, the last negative')
  } finally {
    close()
  }
})

test('stop() ends a stream, stopping the instance ends them all; done says how', async () => {
  const { sender, receiver, close } = pair()
  try {
    const endless = sender.startStream({ ratePps: 2000 })
    await collect(receiver, 20)
    endless.stop()
    const summary = await within(5000, endless.done, 'the stopped stream')
    assert.equal(summary.state, 'stopped')
    assert.ok(summary.sent >= 20)
    const later = sender.startStream({ ratePps: 1000, startNs: now() + 3_600_000n * MS })
    const other = sender.startStream({ ratePps: 10, count: 1_000_000 })
    sender.stop()
    for (const s of [later, other]) assert.equal((await within(5000, s.done)).state, 'instanceStopped')
    assert.equal(later.stats().sent, 0)
    identities(sender.getPacketStats())
  } finally {
    close()
  }
})

test('streams share the sender with queued packets: both keep their timing', async () => {
  const { sender, receiver, close } = pair()
  try {
    // A stream whose next tick is half a second away does not hold back a packet queued now.
    const slow = sender.startStream({ periodNs: 500_000_000, count: 2 })
    await collect(receiver, 1)
    const queuedAt = now()
    sender.sendData(Buffer.from('queued'))
    const [packet] = await collect(receiver, 1)
    assert.equal(packet.data.toString(), 'queued')
    assert.ok(packet.timestampNs - queuedAt < 200n * MS, `the queued packet took ${(packet.timestampNs - queuedAt) / MS} ms`)
    await within(5000, slow.done)
  } finally {
    close()
  }
})

test('JavaScript does nothing per packet: a blocked event loop does not stop the stream', async () => {
  const { sender, receiver, close } = pair({}, { capacity: 1 << 14 })
  try {
    const stream = sender.startStream({ ratePps: 10_000, count: 5000, startNs: now() + 20n * MS })
    // Block this thread for most of the stream's half second.
    const until = Date.now() + 300
    while (Date.now() < until) {}
    const packets = await collect(receiver, 5000)
    const gaps = packets.slice(1).map((p, i) => p.timestampNs - packets[i].timestampNs)
    const widest = gaps.reduce((a, b) => (b > a ? b : a), 0n)
    assert.ok(widest < 100n * MS, `a gap of ${widest / MS} ms between packets while JavaScript was blocked`)
    assert.equal((await within(5000, stream.done)).sent, 5000)
  } finally {
    close()
  }
})

test('startStream options get coded errors', async () => {
  const { sender, receiver, close } = pair()
  const open = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0)
  open.initSocket()
  open.start()
  try {
    const cases = [
      [{}, 'ERR_INVALID_ARG_VALUE'],
      [{ ratePps: 10, periodNs: 5 }, 'ERR_INVALID_ARG_VALUE'],
      [{ ratePps: 10, count: 1, durationNs: 5 }, 'ERR_INVALID_ARG_VALUE'],
      [{ ratePps: 10, rate: 5 }, 'ERR_INVALID_ARG_VALUE'],
      [{ ratePps: '10' }, 'ERR_INVALID_ARG_TYPE'],
      [{ ratePps: 0 }, 'ERR_OUT_OF_RANGE'],
      [{ ratePps: 10, burst: 0 }, 'ERR_OUT_OF_RANGE'],
      [{ ratePps: 10, count: 1.5 }, 'ERR_OUT_OF_RANGE'],
      [{ ratePps: 10, size: 20 }, 'ERR_OUT_OF_RANGE'], // shorter than the udpcom header
      [{ ratePps: 10, size: 70_000, header: 'none' }, 'ERR_OUT_OF_RANGE'],
      [{ ratePps: 10, header: 'tcp' }, 'ERR_INVALID_ARG_VALUE'],
      [{ ratePps: 10, startNs: 5 }, 'ERR_INVALID_ARG_TYPE'],
      [{ ratePps: 10, payload: 'x' }, 'ERR_INVALID_ARG_TYPE'],
      [{ ratePps: 10, destination: { address: '127.0.0.1', port: 9 } }, 'ERR_SOCKET_DGRAM_IS_CONNECTED'],
      ['fast', 'ERR_INVALID_ARG_TYPE'],
    ]
    for (const [options, code] of cases) assert.throws(() => sender.startStream(options), { code }, JSON.stringify(options))
    assert.throws(() => open.startStream({ ratePps: 10 }), { code: 'ERR_UDPCOM_STATE' }, 'unconnected, no destination')
    assert.throws(() => receiver.startStream({ ratePps: 10 }), { code: 'ERR_UDPCOM_STATE' }, 'a receive-only instance')
    // An unconnected instance streams to a destination.
    const s = open.startStream({ ratePps: 1000, count: 1, destination: { address: '127.0.0.1', port: receiver.localPort } })
    assert.equal((await within(5000, s.done)).sent, 1)
    assert.equal((await collect(receiver, 1)).length, 1)
  } finally {
    close()
    open.closeSocket()
  }
})

const iperf = spawnSync('iperf', ['-v'], { encoding: 'utf8' })
const iperfMissing = iperf.error ? `iperf (iperf 2, Debian package iperf) cannot be run: ${iperf.error.message}` : null

/** Whether a UDP socket is bound to 127.0.0.1:port (/proc/net/udp). */
const bound = (port) => readFileSync('/proc/net/udp', 'utf8').includes(`0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} `)

test('iperf 2 measures a udpcom stream with header iperf2: the same count, nothing lost', async (t) => {
  if (iperfMissing) {
    t.skip(iperfMissing)
    return
  }
  const probe = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1 })
  probe.initSocket()
  const port = probe.localPort
  probe.closeSocket()
  const server = spawn('iperf', ['-s', '-u', '-e', '-P', '1', '-w', '4M', '-B', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  server.stdout.on('data', (d) => { output += d })
  server.stderr.on('data', (d) => { output += d })
  const exited = new Promise((resolve) => server.on('exit', resolve))
  const sender = new UdpCom('127.0.0.1', 0, '127.0.0.1', port, { direction: 0 })
  try {
    await until(() => bound(port), 10_000, 'iperf -s listening')
    sender.initSocket()
    sender.start()
    const count = 3000
    const stream = sender.startStream({ ratePps: 10_000, count, size: 200, header: 'iperf2' })
    assert.equal((await within(10_000, stream.done)).sent, count)
    await within(15_000, exited, 'iperf -s to finish its report')
    const report = output.split('\n').reverse().map((line) => /\s(\d+)\/(\d+)\s+\(/.exec(line)).find(Boolean)
    assert.ok(report, `no lost/total in iperf's report:\n${output}`)
    assert.deepEqual([Number(report[1]), Number(report[2])], [0, count], output)
  } finally {
    server.kill()
    sender.closeSocket()
  }
})

/** Nearest-rank percentile of numbers (the analysis's definition, exact here). */
function nearestRank(values, q) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]
}
const close = (actual, expected, what) => {
  // The analysis's percentiles are HDR histogram values (2 significant digits: within 1%).
  const tolerance = Math.abs(expected) * 0.011 + 16
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected} computed independently`)
}

test('stream analysis through a faulty proxy: every counter is what the proxy did; jitter and IPDV match an independent computation', async () => {
  const { random } = await import('./fixtures/shared.mjs')
  const dgram = await import('node:dgram')
  const seed = Number(process.env.UDPCOM_FUZZ_SEED ?? 4242)
  const rand = random(seed)
  const proxy = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 })
  await new Promise((resolve) => proxy.bind(0, '127.0.0.1', resolve))
  const receiver = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1, analyze: 'udpcom', capacity: 1 << 14 })
  receiver.initSocket()
  receiver.start()
  const sender = new UdpCom('127.0.0.1', 0, '127.0.0.1', proxy.address().port, { direction: 0 })
  sender.initSocket()
  sender.start()
  const forwarded = []
  let pending = 0
  let held = null
  const forward = (message) => {
    pending++
    proxy.send(message, receiver.localPort, '127.0.0.1', () => pending--)
  }
  proxy.on('message', (message) => {
    const roll = rand()
    if (roll < 0.05) return // dropped
    if (roll < 0.1) {
      forward(message)
      forward(message) // duplicated
    } else if (roll < 0.2 && held === null) {
      held = message // held back behind the next one: reordered
      return
    } else {
      forward(message)
    }
    if (held !== null) {
      forward(held)
      held = null
    }
  })
  const arrivals = []
  receiver.onPackets((packets) => arrivals.push(...packets))
  try {
    const count = 2000
    const stream = sender.startStream({ ratePps: 5000, count, streamId: 5 })
    await within(10_000, stream.done, 'the stream')
    await until(() => pending === 0 && proxy.getSendQueueCount() === 0, 5000, 'the proxy forwarding everything')
    if (held !== null) forward(held)
    await until(() => arrivals.length > 0 && receiver.getPacketStats().recvQueueLength === 0 && pending === 0, 5000, 'everything read')
    await new Promise((resolve) => setTimeout(resolve, 100))

    // What arrived, in arrival order, as the analysis saw it.
    // Times relative to the first packet's, so that they are exact as JavaScript numbers (ns
    // since 1970 are not: above 2^53 a double keeps only multiples of 256).
    const [arrival0, departure0] = [arrivals[0].timestampNs, udpcomHeader(arrivals[0].data).departureNs]
    const seen = arrivals.map((p) => {
      const h = udpcomHeader(p.data)
      return { seq: Number(h.sequence), arrival: Number(p.timestampNs - arrival0), departure: Number(h.departureNs - departure0) }
    })
    const firstCopies = []
    const got = new Set()
    let duplicates = 0
    let reordered = 0
    let highest = -1
    for (const a of seen) {
      if (got.has(a.seq)) {
        duplicates++
        continue
      }
      got.add(a.seq)
      if (a.seq < highest + 1) reordered++
      highest = Math.max(highest, a.seq)
      firstCopies.push(a)
    }
    let lossRuns = 0
    for (let s = 0; s <= highest; s++) if (!got.has(s) && (s === 0 || got.has(s - 1))) lossRuns++
    // RFC 3550 A.8 over consecutive first copies in arrival order.
    let jitter = 0
    for (let i = 1; i < firstCopies.length; i++) {
      const d = (firstCopies[i].arrival - firstCopies[i - 1].arrival) - (firstCopies[i].departure - firstCopies[i - 1].departure)
      jitter += (Math.abs(d) - jitter) / 16
    }
    // RFC 5481 IPDV over consecutive sequence numbers both received.
    const delay = new Map(firstCopies.map((a) => [a.seq, a.arrival - a.departure]))
    const ipdv = []
    for (let s = 1; s <= highest; s++) if (delay.has(s) && delay.has(s - 1)) ipdv.push(delay.get(s) - delay.get(s - 1))

    const [analysis, ...others] = receiver.getStreamStats()
    assert.deepEqual(others, [])
    assert.equal(analysis.streamId, 5)
    assert.equal(analysis.address, '127.0.0.1')
    assert.equal(analysis.port, proxy.address().port)
    assert.equal(analysis.received, seen.length)
    assert.equal(analysis.duplicates, duplicates)
    assert.equal(analysis.lost, highest + 1 - got.size)
    assert.equal(analysis.lossRuns, lossRuns)
    assert.equal(analysis.reordered, reordered)
    assert.ok(duplicates > 0 && reordered > 0 && analysis.lost > 0, 'the faults really happened')
    close(analysis.jitterNs, jitter, 'jitter')
    close(analysis.ipdvP50Ns, nearestRank(ipdv, 0.5), 'IPDV p50')
    close(analysis.ipdvP99Ns, nearestRank(ipdv, 0.99), 'IPDV p99')
    assert.equal(analysis.firstArrivalNs, arrivals[0].timestampNs)
    assert.equal(analysis.lastArrivalNs, arrivals.at(-1).timestampNs)
    assert.ok(analysis.oneWayLatencyP50Ns > 0 && analysis.oneWayLatencyP50Ns <= analysis.oneWayLatencyMaxNs)
    assert.ok(analysis.ratePps > 1000 && analysis.ratePps < 10_000, `${analysis.ratePps} pps`)
  } finally {
    sender.closeSocket()
    receiver.closeSocket()
    proxy.close()
  }
})

test('deliver: false counts and analyses without handing packets to JavaScript; the identities hold', async () => {
  const receiver = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1, analyze: 'udpcom', deliver: false })
  receiver.initSocket()
  receiver.start()
  const sender = new UdpCom('127.0.0.1', 0, '127.0.0.1', receiver.localPort, { direction: 0 })
  sender.initSocket()
  sender.start()
  try {
    const stream = sender.startStream({ ratePps: 20_000, count: 10_000 })
    await within(10_000, stream.done)
    await until(() => receiver.getPacketStats().nPacketsReceived === 10_000, 5000, 'all received')
    const s = receiver.getPacketStats()
    assert.equal(s.nRecvNotDelivered, 10_000)
    assert.equal(s.nPacketsDelivered, 0)
    assert.equal(s.nPacketsReceived, s.nPacketsDelivered + s.nRecvRingOverflow + s.nRecvDiscarded + s.recvQueueLength + s.nRecvNotDelivered)
    assert.equal(receiver.getStreamStats()[0].received, 10_000)
    assert.equal(receiver.getStreamStats()[0].lost, 0)
    assert.equal(await receiver.receiveData(0), null)
  } finally {
    sender.closeSocket()
    receiver.closeSocket()
  }
})

test('the native reflector: every datagram comes back once; the sender splits the round trip', async () => {
  const reflector = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { reflect: true, deliver: false })
  reflector.initSocket()
  reflector.start()
  const pinger = new UdpCom('127.0.0.1', 0, '127.0.0.1', reflector.localPort, { analyze: 'udpcom', deliver: false })
  pinger.initSocket()
  pinger.start()
  try {
    const stream = pinger.startStream({ ratePps: 5000, count: 2000, streamId: 3 })
    await within(10_000, stream.done)
    await until(() => pinger.getPacketStats().nPacketsReceived === 2000, 5000, 'every reply back')
    assert.equal(reflector.getPacketStats().nReflected, 2000)
    assert.equal(reflector.getPacketStats().nReflectErrors, 0)
    const [back] = pinger.getStreamStats()
    assert.equal(back.received, 2000)
    assert.equal(back.duplicates, 0)
    assert.equal(back.lost, 0)
    const { roundTrip } = stream.stats()
    assert.equal(roundTrip.count, 2000)
    assert.ok(roundTrip.rttP50Ns > 0 && roundTrip.rttP50Ns <= roundTrip.rttP99Ns && roundTrip.rttP99Ns <= roundTrip.rttMaxNs)
    assert.ok(roundTrip.forwardP50Ns > 0 && roundTrip.backwardP50Ns > 0)
    // Stopping the reflector during a stream: what it had reflected is counted, nothing hangs.
    const endless = pinger.startStream({ ratePps: 5000 })
    await until(() => reflector.getPacketStats().nReflected > 2100, 5000, 'reflecting again')
    reflector.stop()
    endless.stop()
    await within(5000, endless.done)
  } finally {
    pinger.closeSocket()
    reflector.closeSocket()
  }
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { reflect: true, direction: 1 }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { analyze: 'tcp' }), { code: 'ERR_INVALID_ARG_VALUE' })
})
