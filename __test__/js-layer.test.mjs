// The JavaScript layer's Node conventions: who sent a packet and sending to anyone (sendTo),
// AbortSignal, async iteration, disposal, ref()/unref(), ES module import; and that packets
// come out of the JavaScript receive queue exactly as they went in, counted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { execFileSync, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import { UdpCom, pair, within, receiveMany, isRoot, startNode, until, MS } from './helpers.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const identities = (s) => {
  assert.equal(s.nPacketsQueued, s.nPacketsSent + s.nSendErrors + s.nPacketsDiscarded + s.sendQueueLength, 'send identity')
  assert.equal(s.nPacketsReceived, s.nPacketsDelivered + s.nRecvRingOverflow + s.nRecvDiscarded + s.recvQueueLength, 'receive identity')
}
const numbered = (i) => {
  const b = Buffer.alloc(8)
  b.writeUInt32LE(i)
  return b
}

test('received packets say who sent them, on connected and unconnected instances, IPv4 and IPv6', async () => {
  for (const ip of ['127.0.0.1', '::1']) {
    const { sender, receiver, close } = pair({}, {}, ip)
    const peer = dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4')
    await new Promise((r) => peer.bind(0, ip, r))
    const connected = new UdpCom(ip, 0, ip, peer.address().port)
    connected.initSocket()
    connected.start()
    try {
      sender.sendData(Buffer.from('hello'))
      const [packet] = await receiveMany(receiver, 1)
      assert.deepEqual(
        { address: packet.address, port: packet.port, family: packet.family },
        { address: ip, port: sender.localPort, family: ip.includes(':') ? 'IPv6' : 'IPv4' },
      )
      assert.deepEqual(Object.keys(packet), ['data', 'timestampNs', 'timestampSource', 'address', 'port', 'family'])
      peer.send('from the peer', connected.localPort, ip)
      const [fromPeer] = await receiveMany(connected, 1)
      assert.equal(fromPeer.address, ip)
      assert.equal(fromPeer.port, peer.address().port)
    } finally {
      close()
      connected.closeSocket()
      peer.close()
    }
  }
})

test('an unconnected receiver answers three senders by sendTo(packet.address, packet.port)', async () => {
  const server = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0)
  server.initSocket()
  server.start()
  const clients = [0, 1, 2].map(() => {
    const c = new UdpCom('127.0.0.1', 0, '127.0.0.1', server.localPort)
    c.initSocket()
    c.start()
    return c
  })
  try {
    clients.forEach((c, i) => c.sendData(Buffer.from(`question ${i}`)))
    for (const packet of await receiveMany(server, 3)) {
      assert.equal(server.sendTo(Buffer.from(`answer to ${packet.data}`), packet.address, packet.port), true)
    }
    for (const [i, c] of clients.entries()) {
      const [reply] = await receiveMany(c, 1)
      assert.equal(reply.data.toString(), `answer to question ${i}`)
      assert.equal(reply.port, server.localPort)
    }
    // A batch to one destination keeps its order, and mixes with sendTo in queue order.
    const t0 = process.hrtime.bigint() + 5n * MS
    assert.equal(server.sendBatch([Buffer.from('b0'), Buffer.from('b1')], [t0, t0 + MS], { address: '127.0.0.1', port: clients[0].localPort }), 2)
    server.sendTo(Buffer.from('b2'), '127.0.0.1', clients[0].localPort)
    assert.deepEqual((await receiveMany(clients[0], 3)).map((p) => p.data.toString()), ['b0', 'b1', 'b2'])
    await server.drain()
    assert.equal(server.getPacketStats().nPacketsSent, 6)
  } finally {
    server.closeSocket()
    clients.forEach((c) => c.closeSocket())
  }
})

test('sendTo and sendBatch destinations: the usual coded errors, as node:dgram gives them', () => {
  const connected = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 0 })
  connected.initSocket()
  connected.start()
  const open = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0)
  open.initSocket()
  open.start()
  try {
    assert.throws(() => connected.sendTo(Buffer.from('x'), '127.0.0.1', 9), { code: 'ERR_SOCKET_DGRAM_IS_CONNECTED', name: 'Error' })
    assert.throws(() => connected.sendBatch([Buffer.from('x')], undefined, { address: '127.0.0.1', port: 9 }), { code: 'ERR_SOCKET_DGRAM_IS_CONNECTED' })
    assert.throws(() => open.sendData(Buffer.from('x')), { code: 'ERR_UDPCOM_STATE' })
    assert.throws(() => open.sendTo(Buffer.from('x'), 'not-an-ip', 9), { code: 'ERR_INVALID_ARG_VALUE', name: 'TypeError' })
    assert.throws(() => open.sendTo(Buffer.from('x'), '::1', 9), { code: 'ERR_INVALID_ARG_VALUE', message: /must be an IPv4 address, as the socket is/ })
    assert.throws(() => open.sendTo(Buffer.from('x'), 42, 9), { code: 'ERR_INVALID_ARG_TYPE' })
    for (const port of [0, 65536, 1.5, '9', -1, NaN]) {
      assert.throws(() => open.sendTo(Buffer.from('x'), '127.0.0.1', port), { code: 'ERR_SOCKET_BAD_PORT', name: 'RangeError' }, String(port))
    }
    assert.throws(() => open.sendTo(Buffer.from('x'), '127.0.0.1', 0), {
      message: 'Port should be > 0 and < 65536. Received type number (0).',
    })
    assert.throws(() => open.sendTo('text', '127.0.0.1', 9), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => open.sendTo(Buffer.from('x'), '127.0.0.1', 9, 5), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => open.sendBatch([Buffer.from('x')], undefined, { address: '127.0.0.1' }), { code: 'ERR_SOCKET_BAD_PORT' })
    assert.throws(() => open.sendBatch([Buffer.from('x')], undefined, 'somewhere'), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => open.sendTo(Buffer.from('x'), 'fe80::1%no-such-interface', 9), { code: 'ENODEV' })
    assert.equal(open.getPacketStats().nPacketsQueued, 0, 'nothing was queued by the failed calls')
  } finally {
    connected.closeSocket()
    open.closeSocket()
  }
})

test('an abort during a pending receive, with packets arriving meanwhile, loses and duplicates nothing', async () => {
  const { sender, receiver, close } = pair({ capacity: 20_000 }, { capacity: 20_000 })
  try {
    const total = 5000
    const seen = []
    let aborted = 0
    let next = 0
    const feed = setInterval(() => {
      const batch = []
      for (let i = 0; i < 50 && next < total; i++) batch.push(numbered(next++))
      if (batch.length) sender.sendBatch(batch)
    }, 1)
    for (let call = 0; seen.length < total; call++) {
      const controller = new AbortController()
      // Abort some calls at once, some after a moment, some never.
      const mode = call % 3
      const pending = receiver.receiveData(2_000_000_000n, { signal: controller.signal })
      if (mode === 0) controller.abort(new Error('changed my mind'))
      else if (mode === 1) setImmediate(() => controller.abort())
      try {
        const packet = await pending
        if (packet === null) throw new Error(`only ${seen.length} of ${total} arrived`)
        seen.push(packet.data.readUInt32LE(0))
      } catch (error) {
        assert.equal(error.name, 'AbortError')
        assert.equal(error.code, 'ABORT_ERR')
        assert.equal(error.cause, controller.signal.reason)
        aborted++
      }
    }
    clearInterval(feed)
    assert.deepEqual(seen, [...Array(total).keys()], 'every packet once, in order')
    // Only a receive that was still waiting can be aborted (one with a packet queued resolves at once).
    assert.ok(aborted >= 10, `${aborted} waiting receives were aborted`)
    const stats = receiver.getPacketStats()
    assert.equal(stats.nPacketsDelivered, total)
    assert.equal(stats.nPacketsReceived, total)
    identities(stats)
  } finally {
    close()
  }
})

test('an already aborted signal rejects at once; receiveBatch and drain take a signal too', async () => {
  const { sender, receiver, close } = pair()
  try {
    const reason = new Error('no')
    const signal = AbortSignal.abort(reason)
    for (const call of [() => receiver.receiveData(undefined, { signal }), () => receiver.receiveBatch(10, undefined, { signal }), () => sender.drain({ signal })]) {
      if (call === undefined) continue
      await assert.rejects(call(), (e) => e.name === 'AbortError' && e.code === 'ABORT_ERR' && e.cause === reason)
    }
    // A drain waiting for a packet due in an hour, aborted: the packet stays queued.
    sender.sendData(Buffer.from('later'), process.hrtime.bigint() + 3_600_000n * MS)
    const controller = new AbortController()
    const drained = sender.drain({ signal: controller.signal })
    controller.abort()
    await assert.rejects(drained, { name: 'AbortError' })
    assert.equal(sender.getPacketStats().sendQueueLength, 1)
    // receiveBatch aborted while waiting; the next reader gets what arrives.
    const waiting = new AbortController()
    const batch = receiver.receiveBatch(10, undefined, { signal: waiting.signal })
    waiting.abort()
    await assert.rejects(batch, { name: 'AbortError' })
    const after = receiver.receiveData(2_000_000_000n)
    const tx = new UdpCom('127.0.0.1', 0, '127.0.0.1', receiver.localPort, { direction: 0 })
    tx.initSocket()
    tx.start()
    tx.sendData(Buffer.from('now'))
    assert.equal((await within(3000, after)).data.toString(), 'now')
    tx.closeSocket()
    await assert.rejects(receiver.receiveData(undefined, { signal: 'no' }), { code: 'ERR_INVALID_ARG_TYPE' })
  } finally {
    close()
  }
})

test('the constructor signal closes the instance like closeSocket()', async () => {
  const controller = new AbortController()
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { signal: controller.signal })
  udp.initSocket()
  udp.start()
  const pending = udp.receiveData()
  controller.abort()
  await assert.rejects(pending, { code: 'ERR_UDPCOM_STOPPED', message: /closeSocket\(\)/ })
  assert.throws(() => udp.getPacketStats(), { code: 'ERR_UDPCOM_STATE' })
  const early = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { signal: AbortSignal.abort() })
  assert.throws(() => early.initSocket(), { code: 'ERR_UDPCOM_STATE' })
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { signal: {} }), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('for await yields 100,000 packets in arrival order; break ends the loop, not the instance', async () => {
  const { sender, receiver, close } = pair({ capacity: 1 << 17 }, { capacity: 1 << 17 })
  try {
    const total = 100_000
    let queued = 0
    const feed = async () => {
      while (queued < total) {
        const batch = []
        for (let i = 0; i < 256 && queued + batch.length < total; i++) batch.push(numbered(queued + batch.length))
        queued += sender.sendBatch(batch)
        await sender.drain()
      }
    }
    const feeding = feed()
    let expected = 0
    for await (const packet of receiver) {
      assert.equal(packet.data.readUInt32LE(0), expected)
      if (++expected === total) break
    }
    await feeding
    assert.equal(expected, total)
    // The instance is still open and receiving.
    sender.sendData(Buffer.from('after the loop'))
    assert.equal((await receiveMany(receiver, 1))[0].data.toString(), 'after the loop')
    identities(receiver.getPacketStats())
  } finally {
    close()
  }
})

test('batches() yields arrays in order; stop() and closeSocket() end a waiting loop without an error', async () => {
  const { sender, receiver, close } = pair()
  try {
    sender.sendBatch(Array.from({ length: 300 }, (_, i) => numbered(i)))
    const seen = []
    for await (const batch of receiver.batches({ max: 64 })) {
      assert.ok(batch.length >= 1 && batch.length <= 64)
      seen.push(...batch.map((p) => p.data.readUInt32LE(0)))
      if (seen.length === 300) break
    }
    assert.deepEqual(seen, [...Array(300).keys()])

    for (const how of ['stop', 'closeSocket']) {
      const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0)
      udp.initSocket()
      udp.start()
      const loop = (async () => {
        let n = 0
        for await (const packet of udp.packets()) n += packet.data.length
        return n
      })()
      setTimeout(() => udp[how](), 50)
      assert.equal(await within(3000, loop, `the loop ended by ${how}()`), 0)
      if (how === 'stop') udp.closeSocket()
    }
    // A loop that never started (the instance is not started) fails with the state error.
    const idle = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0)
    await assert.rejects(idle.packets().next(), { code: 'ERR_UDPCOM_STATE' })
    // An abort ends it with an AbortError.
    const controller = new AbortController()
    const step = receiver.packets({ signal: controller.signal }).next()
    controller.abort()
    await assert.rejects(step, { name: 'AbortError' })
  } finally {
    close()
  }
})

test('Symbol.dispose and Symbol.asyncDispose close the instance; a second dispose does nothing', async () => {
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0)
  udp.initSocket()
  udp.start()
  const pending = udp.receiveData()
  await udp[Symbol.asyncDispose]()
  await assert.rejects(pending, { code: 'ERR_UDPCOM_STOPPED' })
  assert.throws(() => udp.localPort, { code: 'ERR_UDPCOM_STATE' })
  await udp[Symbol.asyncDispose]()
  udp[Symbol.dispose]()
  const other = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0)
  other[Symbol.dispose]()
  assert.throws(() => other.initSocket(), { code: 'ERR_UDPCOM_STATE' })
})

test('ref() and unref() return the instance, as node:dgram sockets do', () => {
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0)
  assert.equal(udp.unref(), udp)
  assert.equal(udp.ref(), udp)
  udp.initSocket()
  udp.start()
  assert.equal(udp.unref().ref(), udp)
  udp.closeSocket()
})

test('packets read ahead into the JavaScript queue count as waiting, and stop() discards and counts them', async () => {
  const { sender, receiver, close } = pair()
  try {
    sender.sendBatch(Array.from({ length: 50 }, (_, i) => numbered(i)))
    await sender.drain()
    await until(() => receiver.getPacketStats().nPacketsReceived === 50, 5000, 'all 50 received')
    assert.equal((await receiver.receiveData(0)).data.readUInt32LE(0), 0)
    let stats = receiver.getPacketStats()
    assert.equal(stats.nPacketsDelivered, 1)
    assert.equal(stats.recvQueueLength, 49)
    identities(stats)
    receiver.stop()
    stats = receiver.getPacketStats()
    assert.equal(stats.nPacketsDelivered, 1)
    assert.equal(stats.nRecvDiscarded, 49)
    assert.equal(stats.recvQueueLength, 0)
    identities(stats)
  } finally {
    close()
  }
})

test('receiveData, receiveBatch and onPackets hand over exactly what was sent: bytes, sizes, fields', async () => {
  const { sender, receiver, close } = pair({}, { timestamping: 'software' })
  try {
    const packet = (i) => (i % 3 === 0 ? new Uint16Array([i, i + 1]) : Buffer.from(`packet ${i}`.repeat(1 + (i % 5))))
    const bytes = (i) => {
      const p = packet(i)
      return Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('hex')
    }
    const got = []
    const check = (p) => {
      assert.ok(Buffer.isBuffer(p.data))
      assert.equal(typeof p.timestampNs, 'bigint')
      assert.ok(['kernel', 'user'].includes(p.timestampSource))
      got.push(p.data.toString('hex'))
    }
    sender.sendBatch(Array.from({ length: 100 }, (_, i) => packet(i)))
    for (let i = 0; i < 100; i++) check(await receiver.receiveData(2_000_000_000n))
    sender.sendBatch(Array.from({ length: 100 }, (_, i) => packet(100 + i)), Array.from({ length: 100 }, () => 0n))
    while (got.length < 200) for (const p of await receiver.receiveBatch(64, 2_000_000_000n)) check(p)
    await within(5000, new Promise((resolve) => {
      receiver.onPackets((packets) => {
        packets.forEach(check)
        if (got.length === 300) resolve()
      })
      sender.sendBatch(Array.from({ length: 100 }, (_, i) => packet(200 + i)))
    }), 'the onPackets packets')
    receiver.onPackets(null)
    assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => bytes(i)))
  } finally {
    close()
  }
})

test('import { UdpCom } from "udpcom" works as an ES module, without a warning, and is the class require() gives', () => {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', "import { UdpCom } from 'udpcom'; import { createRequire } from 'node:module'; const cjs = createRequire(import.meta.url)('udpcom'); console.log(typeof UdpCom, UdpCom === cjs.UdpCom)"], { cwd: root, encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  assert.equal(run.stdout.trim(), 'function true')
  assert.equal(run.stderr, '')
})

test('IPv6 link-local addresses with their scope, over a veth pair between two namespaces', async (t) => {
  if (!isRoot) {
    t.skip('needs root to create network namespaces')
    return
  }
  const fixture = fileURLToPath(new URL('./fixtures/scoped-echo.mjs', import.meta.url))
  const id = `${process.pid % 100_000}${Math.floor(Math.random() * 1000)}`
  const [nsA, nsB] = [`udpcom-6a-${id}`, `udpcom-6b-${id}`]
  const [vethA, vethB] = [`u6a${id}`.slice(0, 15), `u6b${id}`.slice(0, 15)]
  const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString()
  const runs = []
  try {
    ip('netns', 'add', nsA)
    ip('netns', 'add', nsB)
    ip('link', 'add', vethA, 'netns', nsA, 'type', 'veth', 'peer', 'name', vethB, 'netns', nsB)
    ip('-n', nsA, 'link', 'set', vethA, 'up')
    ip('-n', nsB, 'link', 'set', vethB, 'up')
    // nodad: usable at once, without duplicate address detection.
    ip('-n', nsA, 'addr', 'add', 'fe80::a/64', 'dev', vethA, 'nodad')
    ip('-n', nsB, 'addr', 'add', 'fe80::b/64', 'dev', vethB, 'nodad')
    const echo = startNode(['netns', 'exec', nsB, process.execPath, fixture, 'echo', `fe80::b%${vethB}`], { command: 'ip', timeoutMs: 30_000 })
    runs.push(echo)
    const port = (await echo.waitFor(/^ready \d+/)).split(' ')[1]
    const ask = startNode(['netns', 'exec', nsA, process.execPath, fixture, 'ask', `fe80::a%${vethA}`, `fe80::b%${vethA}`, port, '3'], { command: 'ip', timeoutMs: 30_000 })
    runs.push(ask)
    const { code, stdout, stderr } = await ask.exited
    assert.equal(code, 0, stderr)
    const result = JSON.parse(stdout.trim().split('\n').at(-1))
    assert.deepEqual(result.replies.map((r) => r.data), ['echo ask 0', 'echo ask 1', 'echo ask 2'])
    for (const reply of result.replies) assert.deepEqual([reply.from, reply.family], [`fe80::b%${vethA}`, 'IPv6'])
    const heard = echo.output().stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    assert.equal(heard.length, 3)
    for (const h of heard) assert.deepEqual(h, { from: `fe80::a%${vethB}`, port: result.localPort, family: 'IPv6' })
  } finally {
    for (const run of runs) run.kill('SIGKILL')
    for (const ns of [nsA, nsB]) spawnSync('ip', ['netns', 'del', ns])
  }
})
