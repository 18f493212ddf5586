// The API's semantics, on loopback. Timing is asserted only with generous bounds; precise
// figures belong in the benchmark (npm run bench).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { once } from 'node:events'

import { UdpCom, pair, within, receiveMany, now, MS, udpcomThreads, threadActivity, until } from './helpers.mjs'

test('packets leave in order, not before their time, and arrive with CLOCK_MONOTONIC stamps', async () => {
  const { sender, receiver, close } = pair()
  try {
    const start = now() + 20n * MS
    for (let i = 0; i < 50; i++) {
      assert.equal(sender.sendData(Buffer.from(`packet ${i}`), start + BigInt(i) * MS), true)
    }
    const packets = await receiveMany(receiver, 50)
    packets.forEach((p, i) => {
      assert.equal(p.data.toString(), `packet ${i}`)
      assert.ok(Buffer.isBuffer(p.data))
      assert.equal(typeof p.timestampNs, 'bigint')
      const target = start + BigInt(i) * MS
      assert.ok(p.timestampNs >= target, `packet ${i} arrived ${target - p.timestampNs} ns early`)
      assert.ok(p.timestampNs - target < 500n * MS, `packet ${i} arrived ${p.timestampNs - target} ns late`)
    })
    await within(2000, sender.drain(), 'drain')
    const stats = sender.getPacketStats()
    assert.equal(stats.nPacketsSent, 50)
    assert.equal(stats.nBytesSent, packets.reduce((sum, p) => sum + p.data.length, 0))
    assert.equal(stats.latencyHistogram.reduce((sum, b) => sum + b.count, 0), 50)
    // Each packet's latency (departure − target) is at most its arrival − target (the
    // receiver's kernel stamp comes after the departure), so the exact minimum is too.
    const earliestArrival = packets.reduce((least, p, i) => {
      const afterTarget = p.timestampNs - (start + BigInt(i) * MS)
      return afterTarget < least ? afterTarget : least
    }, 2n ** 63n)
    assert.ok(Number.isInteger(stats.minLatencyNs) && BigInt(stats.minLatencyNs) <= earliestArrival,
      `minimum latency ${stats.minLatencyNs} ns, yet a packet arrived ${earliestArrival} ns after its time`)
    assert.ok(stats.minLatencyNs <= stats.p50LatencyNs)
    assert.ok(stats.p50LatencyNs <= stats.p90LatencyNs && stats.p90LatencyNs <= stats.p99LatencyNs)
    assert.ok(stats.p99LatencyNs <= stats.p999LatencyNs && stats.p999LatencyNs <= stats.maxLatencyNs)
    assert.ok(stats.meanLatencyNs >= stats.minLatencyNs && stats.meanLatencyNs <= stats.maxLatencyNs)
    assert.ok(stats.maxLatencyNs < 500e6, `max latency ${stats.maxLatencyNs} ns`)
    const rxStats = receiver.getPacketStats()
    assert.equal(rxStats.nPacketsReceived, 50)
    assert.equal(rxStats.nPacketsDelivered, 50)
    assert.equal(rxStats.nBytesReceived, stats.nBytesSent)
  } finally {
    close()
  }
})

test('a packet whose time has passed, or that has none, leaves at once; FIFO order wins over time', async () => {
  const { sender, receiver, close } = pair()
  try {
    sender.sendData(Buffer.from('past'), now() - 1000n * MS)
    sender.sendData(Buffer.from('asap'))
    sender.sendData(Buffer.from('zero'), 0n)
    // Queued after a packet due in 30 ms, an earlier time still waits its turn.
    const later = now() + 30n * MS
    sender.sendData(Buffer.from('later'), later)
    sender.sendData(Buffer.from('earlier-but-queued-after'), later - 20n * MS)
    const packets = await receiveMany(receiver, 5)
    assert.deepEqual(packets.map((p) => p.data.toString()), ['past', 'asap', 'zero', 'later', 'earlier-but-queued-after'])
    assert.ok(packets[4].timestampNs >= later)
  } finally {
    close()
  }
})

test('payloads of 0 bytes up to 65507 bytes (IPv4) and 65527 bytes (IPv6) are carried intact', async () => {
  const { sender, receiver, close } = pair()
  try {
    const sizes = [0, 1, 1472, 9000, 65507]
    for (const size of sizes) sender.sendData(Buffer.alloc(size, size % 251))
    const packets = await receiveMany(receiver, sizes.length)
    assert.deepEqual(packets.map((p) => p.data.length), sizes)
    packets.forEach((p, i) => assert.ok(p.data.every((b) => b === sizes[i] % 251)))
    assert.throws(() => sender.sendData(Buffer.alloc(65508)), { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' })
  } finally {
    close()
  }
  const { sender: tx6, receiver: rx6, close: close6 } = pair({}, {}, '::1')
  try {
    assert.equal(tx6.sendData(new Uint8Array(65527).fill(6)), true)
    assert.throws(() => tx6.sendData(new Uint8Array(65528)), { code: 'ERR_OUT_OF_RANGE' })
    const [packet] = await receiveMany(rx6, 1)
    assert.equal(packet.data.length, 65527)
  } finally {
    close6()
  }
})

test('any TypedArray is sent as its bytes, including views into a larger buffer', async () => {
  const { sender, receiver, close } = pair()
  try {
    const backing = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7])
    sender.sendData(backing.subarray(2, 5))
    sender.sendData(new Uint16Array([0x0201, 0x0403]))
    const [view, wide] = await receiveMany(receiver, 2)
    assert.deepEqual([...view.data], [2, 3, 4])
    assert.deepEqual([...wide.data], [1, 2, 3, 4])
  } finally {
    close()
  }
})

test('receiveData: null on timeout, 0 means only what is queued, pending calls served in call order', async () => {
  const { sender, receiver, close } = pair()
  try {
    const before = now()
    assert.equal(await within(2000, receiver.receiveData(30_000_000)), null)
    assert.ok(now() - before >= 30n * MS, 'resolved before the timeout')
    assert.equal(await receiver.receiveData(0), null)
    assert.equal(await receiver.receiveData(0n), null)

    const first = receiver.receiveData()
    const second = receiver.receiveData(5_000_000_000n)
    const third = receiver.receiveData(5_000_000_000)
    for (const word of ['one', 'two', 'three']) sender.sendData(Buffer.from(word))
    const results = await within(2000, Promise.all([first, second, third]))
    assert.deepEqual(results.map((p) => p.data.toString()), ['one', 'two', 'three'])

    sender.sendData(Buffer.from('queued'))
    await within(2000, sender.drain())
    // Wait until it is in the ring, then a zero timeout returns it.
    let packet = null
    for (let i = 0; i < 200 && packet === null; i++) {
      packet = await receiver.receiveData(0)
      if (packet === null) await new Promise((r) => setTimeout(r, 5))
    }
    assert.equal(packet?.data.toString(), 'queued')

    // A short timeout among long waiters expires on its own.
    const long = receiver.receiveData(10_000_000_000n)
    const short = receiver.receiveData(20_000_000n)
    assert.equal(await within(2000, short), null)
    sender.sendData(Buffer.from('for-the-long-one'))
    assert.equal((await within(2000, long)).data.toString(), 'for-the-long-one')
  } finally {
    close()
  }
})

test('drain resolves when everything queued so far has left', async () => {
  const { sender, receiver, close } = pair()
  try {
    const start = now() + 50n * MS
    for (let i = 0; i < 20; i++) sender.sendData(Buffer.from([i]), start + BigInt(i) * MS)
    const before = sender.getPacketStats().nPacketsSent
    assert.equal(before, 0)
    await within(3000, sender.drain(), 'drain')
    assert.ok(now() >= start + 19n * MS)
    assert.equal(sender.getPacketStats().nPacketsSent, 20)
    // Nothing queued: resolves at once; several drains all resolve.
    await within(500, Promise.all([sender.drain(), sender.drain()]))
    await receiveMany(receiver, 20)
  } finally {
    close()
  }
})

test('a full send ring refuses and counts; a million-packet ring is normal use', async () => {
  const { sender, close } = pair({ capacity: 3 })
  try {
    const hour = now() + 3_600_000n * MS
    const results = [0, 1, 2, 3, 4].map(() => sender.sendData(Buffer.from('x'), hour))
    assert.deepEqual(results, [true, true, true, false, false])
    const stats = sender.getPacketStats()
    assert.equal(stats.nSendRingFull, 2)
    assert.equal(stats.nPacketsQueued, 3)
    assert.equal(stats.sendQueueLength, 3)
  } finally {
    close()
  }

  const rssBefore = process.memoryUsage().rss
  const big = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 0, capacity: 1_000_000 })
  big.initSocket()
  big.start()
  try {
    const hour = now() + 3_600_000n * MS
    const payload = Buffer.alloc(64)
    let queued = 0
    while (queued < 1_000_000 && big.sendData(payload, hour)) queued++
    assert.equal(queued, 1_000_000)
    const grownMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20
    // 1M × 64 B of payload + slots: tens of MB, not capacity × 64 KiB (61 GiB).
    assert.ok(grownMb < 250, `RSS grew by ${grownMb.toFixed(0)} MB`)
  } finally {
    big.closeSocket()
  }
})

test('stop() returns within 100 ms with a packet due in an hour, discards and counts, rejects pending', async () => {
  const { sender, receiver, close } = pair()
  try {
    const hour = now() + 3_600_000n * MS
    for (let i = 0; i < 10; i++) sender.sendData(Buffer.from('later'), hour)
    const drained = sender.drain()
    const pendingReceive = receiver.receiveData()
    const pendingWithTimeout = receiver.receiveData(10_000_000_000n)
    await new Promise((r) => setTimeout(r, 20))
    const started = process.hrtime.bigint()
    sender.stop()
    const stopMs = Number(process.hrtime.bigint() - started) / 1e6
    assert.ok(stopMs < 100, `stop() took ${stopMs} ms`)
    await assert.rejects(drained, { code: 'ERR_UDPCOM_STOPPED' })
    const stats = sender.getPacketStats()
    assert.equal(stats.nPacketsDiscarded, 10)
    assert.equal(stats.nPacketsSent, 0)
    assert.equal(stats.sendQueueLength, 0)

    receiver.stop()
    await assert.rejects(pendingReceive, { code: 'ERR_UDPCOM_STOPPED', name: 'Error' })
    await assert.rejects(pendingWithTimeout, { code: 'ERR_UDPCOM_STOPPED' })
    assert.equal(udpcomThreads().length, 0, 'worker threads are joined')

    // Stopped: sending and receiving are state errors; stop() again is harmless.
    assert.throws(() => sender.sendData(Buffer.from('x')), { code: 'ERR_UDPCOM_STATE' })
    await assert.rejects(receiver.receiveData(0), { code: 'ERR_UDPCOM_STATE' })
    sender.stop()

    // start() after stop() works again.
    sender.start()
    receiver.start()
    sender.sendData(Buffer.from('again'))
    const [packet] = await receiveMany(receiver, 1)
    assert.equal(packet.data.toString(), 'again')
  } finally {
    close()
  }
})

test('received packets JavaScript did not read are discarded by stop() and counted', async () => {
  const { sender, receiver, close } = pair()
  try {
    for (let i = 0; i < 5; i++) sender.sendData(Buffer.from([i]))
    await sender.drain()
    for (let i = 0; i < 100 && receiver.getPacketStats().nPacketsReceived < 5; i++) {
      await new Promise((r) => setTimeout(r, 5))
    }
    receiver.stop()
    const stats = receiver.getPacketStats()
    assert.equal(stats.nPacketsReceived, 5)
    assert.equal(stats.nRecvDiscarded, 5)
    assert.equal(stats.recvQueueLength, 0)
  } finally {
    close()
  }
})

test('closeSocket() stops first; every call after it throws ERR_UDPCOM_STATE', async () => {
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9)
  udp.initSocket()
  udp.start()
  const pending = udp.receiveData()
  udp.closeSocket()
  await assert.rejects(pending, { code: 'ERR_UDPCOM_STOPPED' })
  assert.equal(udpcomThreads().length, 0)
  for (const call of [
    () => udp.localPort,
    () => udp.initSocket(),
    () => udp.start(),
    () => udp.sendData(Buffer.from('x')),
    () => udp.getPacketStats(),
    () => udp.stop(),
    () => udp.closeSocket(),
    () => udp.ref(),
    () => udp.unref(),
  ]) {
    assert.throws(call, { code: 'ERR_UDPCOM_STATE' })
  }
  await assert.rejects(udp.receiveData(), { code: 'ERR_UDPCOM_STATE' })
  await assert.rejects(udp.drain(), { code: 'ERR_UDPCOM_STATE' })
})

test('localPort reports the port the kernel chose for port 0', () => {
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9)
  assert.throws(() => udp.localPort, { code: 'ERR_UDPCOM_STATE' })
  udp.initSocket()
  assert.ok(udp.localPort > 0 && udp.localPort < 65536)
  udp.closeSocket()
})

test('a connected instance hears only its peer; an unconnected one hears anyone but cannot send', async () => {
  const stranger = dgram.createSocket('udp4')
  await new Promise((r) => stranger.bind(0, '127.0.0.1', r))
  const peer = dgram.createSocket('udp4')
  await new Promise((r) => peer.bind(0, '127.0.0.1', r))
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', peer.address().port)
  udp.initSocket()
  udp.start()
  const open = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0)
  open.initSocket()
  open.start()
  try {
    stranger.send('from-stranger', udp.localPort, '127.0.0.1')
    peer.send('from-peer', udp.localPort, '127.0.0.1')
    const packet = await within(2000, udp.receiveData(2_000_000_000n))
    assert.equal(packet.data.toString(), 'from-peer')
    assert.equal(await udp.receiveData(50_000_000), null)

    // And it sends to its peer.
    udp.sendData(Buffer.from('to-peer'))
    const [message] = await within(2000, once(peer, 'message'))
    assert.equal(message.toString(), 'to-peer')

    stranger.send('anyone', open.localPort, '127.0.0.1')
    assert.equal((await within(2000, open.receiveData(2_000_000_000n))).data.toString(), 'anyone')
    assert.throws(() => open.sendData(Buffer.from('x')), { code: 'ERR_UDPCOM_STATE' })
  } finally {
    udp.closeSocket()
    open.closeSocket()
    stranger.close()
    peer.close()
  }
})

test('direction: send-only cannot receive, receive-only cannot send, and only the needed threads run', async () => {
  const sendOnly = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 0 })
  sendOnly.initSocket()
  sendOnly.start()
  assert.deepEqual(udpcomThreads().map((t) => t.comm), ['udpcom-send'])
  await assert.rejects(sendOnly.receiveData(), { code: 'ERR_UDPCOM_STATE' })
  sendOnly.closeSocket()

  const receiveOnly = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 1 })
  receiveOnly.initSocket()
  receiveOnly.start()
  assert.deepEqual(udpcomThreads().map((t) => t.comm), ['udpcom-recv'])
  assert.throws(() => receiveOnly.sendData(Buffer.from('x')), { code: 'ERR_UDPCOM_STATE' })
  receiveOnly.closeSocket()

  const both = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9)
  both.initSocket()
  both.start()
  assert.deepEqual(udpcomThreads().map((t) => t.comm).sort(), ['udpcom-recv', 'udpcom-send'])
  both.closeSocket()
})

test('both directions on one instance: echo through a node:dgram peer', async () => {
  const peer = dgram.createSocket('udp4')
  await new Promise((r) => peer.bind(0, '127.0.0.1', r))
  peer.on('message', (msg, rinfo) => peer.send(msg, rinfo.port, rinfo.address))
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', peer.address().port)
  udp.initSocket()
  udp.start()
  try {
    for (let i = 0; i < 10; i++) udp.sendData(Buffer.from(`echo ${i}`), now() + BigInt(i) * MS)
    const packets = await receiveMany(udp, 10)
    assert.deepEqual(packets.map((p) => p.data.toString()), [...Array(10).keys()].map((i) => `echo ${i}`))
  } finally {
    udp.closeSocket()
    peer.close()
  }
})

test('an idle started instance costs (almost) no CPU', async () => {
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9)
  udp.initSocket()
  udp.start()
  try {
    const cpu = () => udpcomThreads().reduce((sum, t) => {
      const stat = readTaskStat(t.tid)
      return sum + stat.utime + stat.stime
    }, 0)
    const before = cpu()
    await new Promise((r) => setTimeout(r, 500))
    const ticks = cpu() - before
    // Clock ticks are 10 ms: a busy-polling worker would burn ~50 of them in 500 ms.
    assert.ok(ticks <= 2, `workers used ${ticks} clock ticks while idle`)
  } finally {
    udp.closeSocket()
  }
})

import { readFileSync } from 'node:fs'
function readTaskStat(tid) {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { utime: Number(fields[11]), stime: Number(fields[12]) }
}

test('sendBatch queues in order with BigInt64Array, bigint[] or no timestamps, and stops at the first that does not fit', async () => {
  const { sender, receiver, close } = pair({ capacity: 8 })
  try {
    const t0 = now() + 5n * MS
    assert.equal(sender.sendBatch([Buffer.from('a'), Buffer.from('b')], BigInt64Array.from([t0, t0 + MS])), 2)
    assert.equal(sender.sendBatch([Buffer.from('c')], [t0 + 2n * MS]), 1)
    assert.equal(sender.sendBatch([Buffer.from('d'), new Uint8Array([101])]), 2)
    assert.equal(sender.sendBatch([]), 0)
    const packets = await receiveMany(receiver, 5)
    assert.deepEqual(packets.map((p) => p.data.toString()), ['a', 'b', 'c', 'd', 'e'])
    assert.ok(packets[1].timestampNs >= t0 + MS)
    // The sender frees ring slots just after the send call returns, which can be a moment
    // after the receiver has the packets.
    await sender.drain()

    const hour = now() + 3_600_000n * MS
    const ten = Array.from({ length: 10 }, (_, i) => Buffer.from([i]))
    assert.equal(sender.sendBatch(ten, new BigUint64Array(10).fill(hour)), 8)
    const stats = sender.getPacketStats()
    assert.equal(stats.nSendRingFull, 2, 'each refused packet is counted')
    assert.equal(stats.nPacketsQueued, 13)
  } finally {
    close()
  }
})

test('sendBatch checks every argument before queuing anything', () => {
  const { sender, close } = pair()
  try {
    assert.throws(() => sender.sendBatch([Buffer.from('ok'), 'text']), {
      code: 'ERR_INVALID_ARG_TYPE',
      message: /"packets\[1\]"/,
    })
    assert.throws(() => sender.sendBatch(Buffer.from('x')), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => sender.sendBatch([Buffer.from('x')], [1n, 2n]), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => sender.sendBatch([Buffer.from('x')], [1]), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => sender.sendBatch([Buffer.from('x')], BigInt64Array.from([-1n])), { code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => sender.sendBatch([Buffer.from('x')], new Float64Array(1)), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => sender.sendBatch([Buffer.from('x'), Buffer.alloc(70000)]), { code: 'ERR_OUT_OF_RANGE' })
    assert.equal(sender.getPacketStats().nPacketsQueued, 0)
  } finally {
    close()
  }
})

test('receiveBatch resolves with up to max packets as soon as one is there, [] on timeout', async () => {
  const { sender, receiver, close } = pair()
  try {
    assert.deepEqual(await within(2000, receiver.receiveBatch(10, 20_000_000)), [])
    assert.deepEqual(await receiver.receiveBatch(10, 0), [])
    const pending = receiver.receiveBatch(3)
    sender.sendBatch([1, 2, 3, 4, 5].map((i) => Buffer.from([i])))
    await sender.drain()
    const first = await within(2000, pending)
    assert.ok(first.length >= 1 && first.length <= 3)
    const rest = []
    while (first.length + rest.length < 5) rest.push(...(await within(2000, receiver.receiveBatch(10, 2_000_000_000n))))
    assert.deepEqual([...first, ...rest].map((p) => p.data[0]), [1, 2, 3, 4, 5])
    await assert.rejects(receiver.receiveBatch(0), { code: 'ERR_OUT_OF_RANGE' })
    await assert.rejects(receiver.receiveBatch('10'), { code: 'ERR_INVALID_ARG_TYPE' })
  } finally {
    close()
  }
})

test('onPackets delivers every packet in order without a Promise per packet, and excludes receiveData', async () => {
  const { sender, receiver, close } = pair({ capacity: 10_000 }, { capacity: 10_000 })
  try {
    const seen = []
    let calls = 0
    let done
    const all = new Promise((resolve) => { done = resolve })
    receiver.onPackets((packets) => {
      calls++
      assert.ok(packets.length <= 100)
      for (const p of packets) seen.push(p.data.readUInt32LE(0))
      if (seen.length === 5000) done()
    }, 100)
    await assert.rejects(receiver.receiveData(), { code: 'ERR_UDPCOM_STATE' })
    const batch = Array.from({ length: 5000 }, (_, i) => { const b = Buffer.alloc(4); b.writeUInt32LE(i); return b })
    assert.equal(sender.sendBatch(batch), 5000)
    await within(5000, all, 'all 5000 packets')
    assert.deepEqual(seen, [...Array(5000).keys()])
    assert.ok(calls >= 50 && calls < 5000, `${calls} callbacks`)
    receiver.onPackets(null)
    sender.sendData(Buffer.from('after'))
    assert.equal((await within(2000, receiver.receiveData(2_000_000_000n))).data.toString(), 'after')
    assert.throws(() => receiver.onPackets('nope'), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => sender.onPackets(() => {}), { code: 'ERR_UDPCOM_STATE' })
  } finally {
    close()
  }
})

test('a slow onPackets consumer ends in counted ring overflow, not unbounded memory', async () => {
  const { sender, receiver, close } = pair({ capacity: 20_000 }, { capacity: 64 })
  try {
    let delivered = 0
    receiver.onPackets((packets) => {
      delivered += packets.length
      const until = Date.now() + 2
      while (Date.now() < until) {} // a callback that cannot keep up
    }, 8)
    sender.sendBatch(Array.from({ length: 20_000 }, () => Buffer.alloc(32)))
    await sender.drain()
    await until(() => receiver.getPacketStats().nRecvRingOverflow > 0, 10_000, 'the receive ring overflowing')
    receiver.onPackets(null)
    const stats = receiver.getPacketStats()
    assert.ok(stats.nRecvRingOverflow > 0, 'the receive ring overflowed')
    assert.equal(stats.nPacketsDelivered, delivered)
    assert.equal(
      stats.nPacketsReceived,
      stats.nPacketsDelivered + stats.nRecvRingOverflow + stats.recvQueueLength,
      'every datagram read off the socket is delivered, overflowed or queued',
    )
  } finally {
    close()
  }
})

test('inlineSend: due packets leave from the calling thread when nothing is queued, in order, counted', async () => {
  const { sender, receiver, close } = pair({ inlineSend: true })
  try {
    // Only two threads could send on the sender's socket: this one and its worker. Once the
    // worker has parked, it runs again only if something wakes it; if it stays parked while
    // packets leave, this thread sent them.
    const worker = udpcomThreads().find((t) => t.comm === 'udpcom-send').tid
    let parked
    await until(() => {
      const now = threadActivity(worker)
      const settled = now.state === 'S' && parked?.runs === now.runs
      parked = now
      return settled
    }, 10_000, 'the sender worker parked')
    const inline = ['inline 0', 'inline 1', 'inline 2']
    for (const text of inline) {
      assert.equal(sender.sendData(Buffer.from(text)), true)
      assert.equal((await receiveMany(receiver, 1))[0].data.toString(), text)
    }
    assert.equal(sender.getPacketStats().nPacketsSent, inline.length)
    assert.equal(threadActivity(worker).runs, parked.runs, 'the sender worker ran: the packets were not sent from the calling thread')
    // Queued behind a later packet, a due packet waits its turn (FIFO), not sent inline: the
    // worker wakes and sends both (which also shows the check above can see it run).
    const later = now() + 20n * MS
    sender.sendData(Buffer.from('later'), later)
    sender.sendData(Buffer.from('after-later'))
    const packets = await receiveMany(receiver, 2)
    assert.deepEqual(packets.map((p) => p.data.toString()), ['later', 'after-later'])
    // The receiver's stamps are the kernel's (receive-only instances stamp in the kernel).
    assert.ok(packets[0].timestampNs >= later, `a timed packet left ${later - packets[0].timestampNs} ns before its time`)
    await sender.drain()
    assert.ok(threadActivity(worker).runs > parked.runs, 'the sender worker never ran for the queued packets')
    const stats = sender.getPacketStats()
    assert.equal(stats.nPacketsSent, 5)
    assert.equal(stats.nPacketsQueued, 5)
    assert.equal(stats.latencyHistogram.reduce((sum, b) => sum + b.count, 0), 5)
    assert.equal(stats.nPacketsQueued, stats.nPacketsSent + stats.nSendErrors + stats.nPacketsDiscarded + stats.sendQueueLength)
  } finally {
    close()
  }
  // A peer that is not listening: inline failures are counted like the sender thread's.
  const probe = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1 })
  probe.initSocket()
  const deadPort = probe.localPort
  probe.closeSocket()
  const lonely = new UdpCom('127.0.0.1', 0, '127.0.0.1', deadPort, { direction: 0, inlineSend: true })
  lonely.initSocket()
  lonely.start()
  for (let i = 0; i < 20; i++) {
    lonely.sendData(Buffer.from('anyone?'))
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  await lonely.drain()
  const stats = lonely.getPacketStats()
  assert.equal(stats.nPacketsSent + stats.nSendErrors, 20)
  assert.ok(stats.nSendErrors > 0)
  assert.equal(stats.lastError.code, 'ECONNREFUSED')
  lonely.closeSocket()
})

test('napNs: timed packets leave in order and never early, napping or sleeping in one go', async () => {
  for (const napNs of [100_000, 0]) {
    const { sender, receiver, close } = pair({ napNs, spinNs: 20_000 }, {})
    try {
      const start = now() + 5n * MS
      const targets = Array.from({ length: 10 }, (_, i) => start + BigInt(i) * 2n * MS)
      targets.forEach((target, i) => assert.equal(sender.sendData(Buffer.from([i]), target), true))
      const packets = await receiveMany(receiver, 10)
      assert.deepEqual(packets.map((p) => p.data[0]), [...Array(10).keys()], `napNs ${napNs}`)
      packets.forEach((p, i) => assert.ok(p.timestampNs >= targets[i], `napNs ${napNs}: packet ${i} arrived before its time`))
      // A packet can reach a local receiver before the sender's counters include it.
      await within(2000, sender.drain(), 'drain')
      assert.equal(sender.getPacketStats().nPacketsSent, 10)
    } finally {
      close()
    }
  }
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { napNs: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { napNs: 20_000_001 }), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { napNs: '1' }), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('rxSpinNs: a polling receiver still delivers in order and still serves receive timeouts', async () => {
  const { sender, receiver, close } = pair({}, { rxSpinNs: 2_000_000 })
  try {
    for (let i = 0; i < 20; i++) sender.sendData(Buffer.from([i]))
    const packets = await receiveMany(receiver, 20)
    assert.deepEqual(packets.map((p) => p.data[0]), [...Array(20).keys()])
    const before = now()
    assert.equal(await within(2000, receiver.receiveData(10_000_000)), null)
    assert.ok(now() - before >= 10n * MS)
  } finally {
    close()
  }
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { rxSpinNs: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { inlineSend: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' })
})
