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
