// UDP GSO on send and GRO on receive (the `gso` and `gro` options, on by default where the
// kernel has them), and the flat forms for high rates: sendBatch(bytes, lengths) and
// onPackets(callback, { flat: true }). Every datagram arrives once, in order, with its bytes,
// and is counted as a datagram (never as a buffer); a GSO message the kernel refuses is sent
// again one by one and counted (nGsoFallbacks), here forced with a veth whose transmit checksum
// offload is off.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { execFileSync } from 'node:child_process'

import { UdpCom, isRoot, now, MS, startNode, until, within } from './helpers.mjs'

/** A started receiver (with `options`) on `ip`. */
function receiver(ip, options = {}) {
  const u = new UdpCom(ip, 0, ip, 0, { direction: 1, capacity: 1 << 17, ...options })
  u.initSocket()
  u.start()
  return u
}

/** A started sender connected to `port` on `ip`. */
function sender(ip, port, options = {}) {
  const u = new UdpCom(ip, 0, ip, port, { direction: 0, capacity: 1 << 16, ringBytes: 64 << 20, ...options })
  u.initSocket()
  u.start()
  return u
}

/** Payload `seq` of `length` bytes: its number in the first 4 bytes (fewer if shorter), then a pattern. */
function numbered(seq, length) {
  const data = Buffer.alloc(length, seq % 251)
  const head = Buffer.alloc(4)
  head.writeUInt32LE(seq)
  head.copy(data, 0, 0, Math.min(4, length))
  return data
}

/** Collects `count` packets through onPackets (flat or not) within `ms`. */
function collect(rx, count, { flat = false, ms = 10_000 } = {}) {
  const payloads = []
  const done = new Promise((resolve) => {
    const take = flat
      ? (batch) => {
          for (let i = 0; i < batch.count; i++) payloads.push(Buffer.from(batch.payload(i)))
          if (payloads.length >= count) resolve(payloads)
        }
      : (packets) => {
          for (const p of packets) payloads.push(Buffer.from(p.data))
          if (payloads.length >= count) resolve(payloads)
        }
    rx.onPackets(take, { flat })
  })
  return within(ms, done, `${count} packets`).finally(() => rx.onPackets(null))
}

/** Sends all of `packets` (waiting for room in the ring when it is full). */
async function sendAll(tx, packets) {
  let sent = 0
  while (sent < packets.length) {
    sent += tx.sendBatch(packets.slice(sent, sent + 4096))
    if (sent < packets.length) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await within(10_000, tx.drain(), 'drain')
}

function sendIdentity(s) {
  assert.equal(s.nPacketsQueued, s.nPacketsSent + s.nSendErrors + s.nPacketsDiscarded + s.sendQueueLength, JSON.stringify(s))
}

function receiveIdentity(s) {
  assert.equal(
    s.nPacketsReceived,
    s.nPacketsDelivered + s.nRecvRingOverflow + s.nRecvDiscarded + s.recvQueueLength + s.nRecvNotDelivered,
    JSON.stringify(s),
  )
}

/** Equal runs, mixed sizes, shorter last segments, 1, 1472 and 65,507 bytes. */
function mixedPayloads(largest) {
  const sizes = [
    ...Array(100).fill(64), 20, ...Array(70).fill(1), ...Array(50).fill(1472), 1000, 1000, 999,
    ...Array(3).fill(largest), ...Array(7).fill(300), 1, 1472,
  ]
  return sizes.map((length, seq) => numbered(seq, length))
}

for (const [family, ip, largest] of [['IPv4', '127.0.0.1', 65_507], ['IPv6', '::1', 65_507]]) {
  test(`${family}: runs, mixed sizes, short last segments, 1 to ${largest} bytes arrive once, in order, counted exactly`, async () => {
    for (const flat of [false, true]) {
      const rx = receiver(ip)
      const tx = sender(ip, rx.localPort)
      try {
        assert.equal(tx.getSocketInfo().gso, true)
        assert.equal(tx.getSocketInfo().gsoMaxSegments, 64)
        assert.equal(rx.getSocketInfo().gro, true)
        const packets = mixedPayloads(largest)
        const heard = collect(rx, packets.length, { flat })
        await sendAll(tx, packets)
        const got = await heard
        assert.equal(got.length, packets.length)
        for (let i = 0; i < packets.length; i++) assert.ok(got[i].equals(packets[i]), `packet ${i} (${packets[i].length} bytes)`)
        const bytes = packets.reduce((sum, p) => sum + p.length, 0)
        const s = tx.getPacketStats()
        assert.deepEqual([s.nPacketsSent, s.nBytesSent, s.nSendErrors, s.nGsoFallbacks], [packets.length, bytes, 0, 0])
        sendIdentity(s)
        const r = rx.getPacketStats()
        assert.deepEqual([r.nPacketsReceived, r.nBytesReceived, r.nPacketsDelivered, r.nKernelDrops], [packets.length, bytes, packets.length, 0])
        receiveIdentity(r)
      } finally {
        tx.closeSocket()
        rx.closeSocket()
      }
    }
  })
}

test('an independent receiver (node:dgram, no GRO) gets every datagram of GSO messages as its own', async () => {
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  socket.setRecvBufferSize(4 << 20)
  const got = []
  const all = new Promise((resolve) => socket.on('message', (m) => { got.push(m); if (got.length === 600) resolve() }))
  const tx = sender('127.0.0.1', socket.address().port)
  try {
    // Six runs of 100, each run one size; the flat form.
    const lengths = new Uint32Array(600).map((_, i) => [64, 1, 1472, 512, 9000, 3][Math.floor(i / 100)])
    const bytes = Buffer.alloc(lengths.reduce((a, b) => a + b, 0))
    let offset = 0
    for (let i = 0; i < 600; i++) {
      numbered(i, lengths[i]).copy(bytes, offset)
      offset += lengths[i]
    }
    assert.equal(tx.sendBatch(bytes, lengths), 600)
    await within(10_000, all, '600 datagrams')
    offset = 0
    for (let i = 0; i < 600; i++) {
      assert.ok(got[i].equals(bytes.subarray(offset, offset + lengths[i])), `datagram ${i}`)
      offset += lengths[i]
    }
    assert.equal(tx.getPacketStats().nPacketsSent, 600)
  } finally {
    tx.closeSocket()
    socket.close()
  }
})

test('a run broken by a later deadline: the due packets leave at once, the later one on time, order kept', async () => {
  const rx = receiver('127.0.0.1')
  const tx = sender('127.0.0.1', rx.localPort)
  try {
    const heard = []
    rx.onPackets((packets) => heard.push(...packets))
    const at = now() + 30n * MS
    const packets = Array.from({ length: 21 }, (_, i) => numbered(i, 100))
    const stamps = new BigUint64Array(21)
    stamps[10] = at
    assert.equal(tx.sendBatch(packets, stamps), 21)
    await until(() => heard.length === 21, 5000, '21 packets')
    assert.deepEqual(heard.map((p) => p.data.readUInt32LE(0)), Array.from({ length: 21 }, (_, i) => i))
    // The first ten did not wait for the eleventh; the ten behind it (FIFO) waited for it.
    assert.ok(heard[9].timestampNs < at, `${heard[9].timestampNs} < ${at}`)
    assert.ok(heard[10].timestampNs >= at, `${heard[10].timestampNs} >= ${at}`)
    assert.ok(heard[11].timestampNs >= heard[10].timestampNs)
    // A lone due packet leaves at once.
    const lone = now()
    tx.sendData(numbered(99, 100))
    await until(() => heard.length === 22, 5000, 'the lone packet')
    assert.ok(heard[21].timestampNs - lone < 20n * MS, `${heard[21].timestampNs - lone} ns`)
    assert.equal(tx.getPacketStats().nLatePackets <= 22, true)
  } finally {
    tx.closeSocket()
    rx.closeSocket()
  }
})

test('300,000 packets with GSO and GRO on, flat forms: exact accounting, identities hold', async () => {
  const TOTAL = 300_000
  const BATCH = 4096
  const rx = receiver('127.0.0.1', { capacity: 1 << 18 })
  const tx = sender('127.0.0.1', rx.localPort, { capacity: 1 << 17 })
  try {
    const seen = { count: 0, next: 0, disorder: 0, bytes: 0 }
    rx.onPackets((batch) => {
      for (let i = 0; i < batch.count; i++) {
        const seq = batch.data.readUInt32LE(batch.offsets[i])
        if (seq !== seen.next) seen.disorder++
        seen.next = seq + 1
      }
      seen.count += batch.count
      seen.bytes += batch.data.length
    }, { flat: true, maxBatch: 8192 })
    const bytes = Buffer.alloc(64 * BATCH)
    const lengths = new Uint32Array(BATCH).fill(64)
    let offered = 0
    let queued = 0
    while (queued < TOTAL) {
      const n = Math.min(BATCH, TOTAL - queued)
      for (let i = 0; i < n; i++) bytes.writeUInt32LE(queued + i, 64 * i)
      const q = tx.sendBatch(bytes.subarray(0, 64 * n), lengths.subarray(0, n))
      offered += n
      queued += q
      if (q < n) await new Promise((resolve) => setImmediate(resolve))
    }
    await within(20_000, tx.drain(), 'drain')
    const s = tx.getPacketStats()
    sendIdentity(s)
    assert.equal(s.nPacketsQueued, TOTAL)
    assert.equal(s.nSendRingFull, offered - TOTAL)
    assert.deepEqual([s.nPacketsSent, s.nSendErrors, s.nGsoFallbacks, s.nBytesSent], [TOTAL, 0, 0, 64 * TOTAL])
    // Loopback loses nothing but what the kernel counts. With GRO the kernel drops (and counts
    // in nKernelDrops) whole buffers: a GSO message it had not cut yet is up to 64 datagrams.
    let last = ''
    let stableSince = Date.now()
    await until(() => {
      const r = rx.getPacketStats()
      const key = `${r.nPacketsReceived},${r.nKernelDrops},${r.nPacketsDelivered}`
      if (key !== last) [last, stableSince] = [key, Date.now()]
      return r.recvQueueLength === 0 && (r.nPacketsReceived === TOTAL || Date.now() - stableSince > 300)
    }, 10_000, 'every datagram received, or the rest dropped').catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(rx.getPacketStats())}`)
    })
    const r = rx.getPacketStats()
    receiveIdentity(r)
    const lost = TOTAL - r.nPacketsReceived
    assert.ok(lost >= r.nKernelDrops && lost <= 64 * r.nKernelDrops, `lost ${lost}, kernel drops ${r.nKernelDrops}`)
    assert.equal(r.nPacketsDelivered, seen.count)
    assert.equal(r.nBytesReceived, 64 * r.nPacketsReceived)
    assert.equal(seen.bytes, 64 * seen.count)
    // In order, with gaps only where something was dropped.
    if (lost === 0 && r.nRecvRingOverflow === 0) assert.deepEqual([seen.count, seen.disorder], [TOTAL, 0])
  } finally {
    tx.closeSocket()
    rx.closeSocket()
  }
})

test('GRO splitting fed by many small senders: per-sender order, every datagram counted', async () => {
  const rx = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1, capacity: 1 << 16 })
  rx.initSocket()
  rx.start()
  const senders = Array.from({ length: 8 }, () => {
    const u = new UdpCom('127.0.0.1', 0, '127.0.0.1', rx.localPort, { direction: 0 })
    u.initSocket()
    u.start()
    return u
  })
  try {
    const PER = 2000
    const heard = []
    rx.onPackets((batch) => {
      for (let i = 0; i < batch.count; i++) heard.push([batch.ports[i], batch.data.readUInt32LE(batch.offsets[i]), batch.lengths[i]])
    }, { flat: true })
    await Promise.all(senders.map(async (u, k) => {
      for (let first = 0; first < PER; first += 500) {
        const packets = Array.from({ length: 500 }, (_, i) => numbered(first + i, 16 + k))
        assert.equal(u.sendBatch(packets), 500)
        await u.drain()
      }
    }))
    await until(() => heard.length === senders.length * PER, 10_000, 'every datagram')
    for (const [k, u] of senders.entries()) {
      const mine = heard.filter(([port]) => port === u.localPort)
      assert.equal(mine.length, PER)
      assert.ok(mine.every(([, seq, length], i) => seq === i && length === 16 + k), `sender ${k} in order`)
    }
    const r = rx.getPacketStats()
    assert.equal(r.nPacketsReceived, senders.length * PER)
    receiveIdentity(r)
  } finally {
    for (const u of senders) u.closeSocket()
    rx.closeSocket()
  }
})

test('PacketBatch: addresses, ports, families and stamps as the object form has them', async () => {
  for (const ip of ['127.0.0.1', '::1']) {
    const rx = receiver(ip, { timestamping: 'software' })
    const tx = sender(ip, rx.localPort)
    try {
      const batches = []
      rx.onPackets((batch) => batches.push(batch), { flat: true, maxBatch: 3 })
      assert.equal(tx.sendBatch(Array.from({ length: 7 }, (_, i) => numbered(i, 10 + i))), 7)
      await until(() => batches.reduce((n, b) => n + b.count, 0) === 7, 5000, '7 packets')
      assert.ok(batches.every((b) => b.count <= 3))
      let seq = 0
      for (const b of batches) {
        for (let i = 0; i < b.count; i++, seq++) {
          assert.equal(b.address(i), ip)
          assert.equal(b.ports[i], tx.localPort)
          assert.equal(b.families[i], ip === '::1' ? 6 : 4)
          assert.equal(b.lengths[i], 10 + seq)
          assert.equal(b.payload(i).readUInt32LE(0), seq)
          assert.equal(b.timestampSources[i], 1) // kernel
          assert.ok(b.timestampsNs[i] > 0n && b.hwTimestampsNs[i] === 0n)
        }
      }
    } finally {
      tx.closeSocket()
      rx.closeSocket()
    }
  }
})

test('with transmit timestamps on, packets leave without GSO: one stamp per packet', async () => {
  const rx = receiver('127.0.0.1')
  const tx = sender('127.0.0.1', rx.localPort, { timestamping: 'software' })
  try {
    assert.equal(tx.sendBatch(Array.from({ length: 200 }, (_, i) => numbered(i, 64))), 200)
    await tx.drain()
    const stamps = []
    await until(() => {
      stamps.push(...tx.getTxTimestamps())
      return stamps.length >= 200
    }, 5000, '200 transmit stamps')
    assert.equal(new Set(stamps.map((s) => s.id)).size, 200)
    assert.equal(tx.getPacketStats().nTxTimestamps, 200)
  } finally {
    tx.closeSocket()
    rx.closeSocket()
  }
})

test('gso: false and gro: false are plain datagrams; bad options and flat arguments get Node codes', async () => {
  const rx = receiver('127.0.0.1', { gro: false })
  const tx = sender('127.0.0.1', rx.localPort, { gso: false })
  try {
    assert.equal(tx.getSocketInfo().gso, false)
    assert.equal(rx.getSocketInfo().gro, false)
    const heard = collect(rx, 300, { flat: true })
    await sendAll(tx, Array.from({ length: 300 }, (_, i) => numbered(i, 64)))
    assert.deepEqual((await heard).map((p) => p.readUInt32LE(0)), Array.from({ length: 300 }, (_, i) => i))
    const arg = (fn, code) => assert.throws(fn, { code })
    arg(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { gso: 'yes' }), 'ERR_INVALID_ARG_TYPE')
    arg(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { gro: 1 }), 'ERR_INVALID_ARG_TYPE')
    arg(() => tx.sendBatch(Buffer.alloc(10), [5, 5]), 'ERR_INVALID_ARG_TYPE')
    arg(() => tx.sendBatch(Buffer.alloc(10), new Uint16Array(2)), 'ERR_INVALID_ARG_TYPE')
    arg(() => tx.sendBatch(Buffer.alloc(10), new Uint32Array([5, 6])), 'ERR_INVALID_ARG_VALUE')
    arg(() => tx.sendBatch(Buffer.alloc(10), new Uint32Array([5]), [1n, 2n]), 'ERR_INVALID_ARG_VALUE')
    arg(() => tx.sendBatch(Buffer.alloc(10), new Uint32Array([5]), null, { address: '127.0.0.1', port: 0 }), 'ERR_SOCKET_BAD_PORT')
    arg(() => rx.onPackets(() => {}, { flat: 'yes' }), 'ERR_INVALID_ARG_TYPE')
    arg(() => rx.onPackets(() => {}, { flatt: true }), 'ERR_INVALID_ARG_VALUE')
    arg(() => rx.onPackets(() => {}, { maxBatch: 0 }), 'ERR_OUT_OF_RANGE')
    assert.equal(tx.sendBatch(Buffer.alloc(0), new Uint32Array(0)), 0)
  } finally {
    tx.closeSocket()
    rx.closeSocket()
  }
})

const noEthtool = (() => {
  if (!isRoot) return 'needs root (network namespaces, ethtool -K)'
  try {
    execFileSync('ethtool', ['--version'], { stdio: 'ignore' })
    return false
  } catch {
    return 'needs ethtool (Debian package ethtool)'
  }
})()

test('fallback: GSO refused on a veth (segment above its MTU): the packets go one by one, counted, none lost; tx checksum off is no refusal here', { skip: noEthtool }, async () => {
  const tag = `${process.pid % 10_000}${Math.floor(Math.random() * 100)}`
  const ns = `gso${tag}`
  const [near, far] = [`gso${tag}a`, `gso${tag}b`]
  const subnet = `10.${200 + (process.pid % 50)}.${Math.floor(Math.random() * 250)}`
  const run = (...args) => execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString()
  run('ip', 'netns', 'add', ns)
  let sinkRun
  try {
    run('ip', 'link', 'add', near, 'type', 'veth', 'peer', 'name', far)
    run('ip', 'link', 'set', far, 'netns', ns)
    run('ip', 'addr', 'add', `${subnet}.1/30`, 'dev', near)
    run('ip', 'link', 'set', near, 'up', 'mtu', '1000')
    run('ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', `${subnet}.2/30`, 'dev', far)
    run('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', far, 'up', 'mtu', '1000')
    // Without transmit checksum offload: kernels before 6.12 refuse GSO with EIO; newer ones
    // checksum in software (measured here on 6.18: no refusal).
    run('ethtool', '-K', near, 'tx', 'off')
    // The sink: node:dgram in the other namespace, printing what it heard once it is quiet.
    const sink = `
      const s = require('node:dgram').createSocket('udp4')
      let n = 0, bytes = 0, next = 0, disorder = 0, timer
      s.on('message', (m) => {
        if (m.readUInt32LE(0) !== next) disorder++
        next = m.readUInt32LE(0) + 1; n++; bytes += m.length
        clearTimeout(timer); timer = setTimeout(() => { console.log(JSON.stringify({ n, bytes, disorder })); process.exit(0) }, 500)
      })
      s.bind(9000, '${subnet}.2', () => { s.setRecvBufferSize(4 << 20); console.log('ready') })`
    sinkRun = startNode(['netns', 'exec', ns, process.execPath, '-e', sink], { command: 'ip', timeoutMs: 30_000 })
    await sinkRun.waitFor(/ready/)
    const tx = new UdpCom(`${subnet}.1`, 0, `${subnet}.2`, 9000, { direction: 0, capacity: 8192 })
    tx.initSocket()
    tx.start()
    try {
      assert.equal(tx.getSocketInfo().gso, true)
      // 1000 of 200 bytes (GSO, checksummed in software or refused with EIO), then 1000 of
      // 1400 bytes: a segment above the MTU, which the kernel refuses as a GSO message and
      // fragments as a plain datagram. Paced, so that the veth's queue loses nothing.
      let seq = 0
      for (const size of [200, 200, 1400, 1400]) {
        assert.equal(tx.sendBatch(Array.from({ length: 500 }, () => numbered(seq++, size))), 500)
        await within(5000, tx.drain(), 'drain')
      }
      const s = tx.getPacketStats()
      assert.equal(s.nGsoFallbacks, 1, JSON.stringify(s))
      assert.deepEqual([s.nPacketsSent, s.nSendErrors], [2000, 0])
      sendIdentity(s)
      assert.equal(tx.getSocketInfo().gso, false)
      const line = await sinkRun.waitFor(/^\{/, 10_000)
      assert.deepEqual(JSON.parse(line), { n: 2000, bytes: 1000 * 200 + 1000 * 1400, disorder: 0 })
    } finally {
      tx.closeSocket()
    }
  } finally {
    sinkRun?.kill('SIGKILL')
    try { run('ip', 'link', 'del', near) } catch {}
    run('ip', 'netns', 'del', ns)
  }
})
