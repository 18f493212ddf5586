// Kernel and hardware timestamps (SO_TIMESTAMPING) on loopback and on a veth pair between two
// network namespaces. There is no timestamping NIC here: the hardware request must fail with
// its coded error, and the fallback must work.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import { UdpCom, pair, receiveMany, within, isRoot, now, MS } from './helpers.mjs'

const fixture = fileURLToPath(new URL('./fixtures/stamps.mjs', import.meta.url))
// How late a packet may be: the senders here are unpinned and at normal priority on a loaded
// machine, so tens of ms happen; what these tests guard against (a stamp on the wrong clock,
// a wrong offset) is off by seconds or by decades.
const LATE_BOUND_NS = 500n * MS

/** Checks the receive-side stamps of packets that carry their target time in the payload. */
function checkReceiveStamps(packets) {
  let previous = 0n
  for (const [i, p] of packets.entries()) {
    assert.equal(p.source, 'kernel', `packet ${i}`)
    assert.ok(p.arrival >= previous, `packet ${i}: kernel stamps go back in time`)
    assert.ok(p.arrival <= p.seen, `packet ${i}: stamped after JavaScript saw it`)
    assert.ok(p.arrival >= p.target, `packet ${i}: arrived before its time`)
    assert.ok(p.arrival - p.target < LATE_BOUND_NS, `packet ${i}: ${p.arrival - p.target} ns after its time`)
    previous = p.arrival
  }
}

test('on loopback: kernel RX stamps on CLOCK_MONOTONIC, TX stamps one per packet, wire ≥ user-space latency', async () => {
  const { sender, receiver, close } = pair({ timestamping: 'software' }, { timestamping: 'software' })
  try {
    const start = now() + 20n * MS
    const count = 50
    for (let i = 0; i < count; i++) {
      const payload = Buffer.alloc(16)
      payload.writeBigUInt64LE(start + BigInt(i) * MS, 0)
      sender.sendData(payload, start + BigInt(i) * MS)
    }
    const packets = []
    for (const packet of await receiveMany(receiver, count)) {
      packets.push({ target: packet.data.readBigUInt64LE(0), arrival: packet.timestampNs, seen: now(), source: packet.timestampSource })
      assert.equal(packet.hwTimestampNs, undefined)
    }
    checkReceiveStamps(packets)

    await sender.drain()
    let stats = sender.getPacketStats()
    for (let i = 0; i < 1000 && stats.nTxTimestamps < count; i++) { // up to 10 s
      await new Promise((r) => setTimeout(r, 10))
      stats = sender.getPacketStats()
    }
    assert.equal(stats.nPacketsSent, count)
    assert.equal(stats.nTxTimestamps, count, 'one transmit stamp per packet')
    // The kernel stamps after the sender's last clock read, so each wire latency is at least
    // its user-space latency, and so is every percentile.
    assert.ok(stats.p50WireLatencyNs >= stats.p50LatencyNs, `${stats.p50WireLatencyNs} < ${stats.p50LatencyNs}`)
    assert.ok(stats.p99WireLatencyNs >= stats.p99LatencyNs)
    assert.ok(stats.maxWireLatencyNs >= stats.maxLatencyNs)
    assert.ok(stats.maxWireLatencyNs < Number(LATE_BOUND_NS), `max wire latency ${stats.maxWireLatencyNs} ns`)

    const tx = sender.getTxTimestamps()
    assert.deepEqual(tx.map((t) => t.id), [...Array(count).keys()])
    tx.forEach((t, i) => {
      const target = start + BigInt(i) * MS
      assert.ok(t.txTimestampNs >= target && t.txTimestampNs - target < LATE_BOUND_NS, `packet ${i}: left ${t.txTimestampNs - target} ns after its time`)
      assert.ok(t.txTimestampNs <= packets[i].arrival, `packet ${i} arrived before it left`)
    })
    assert.deepEqual(sender.getTxTimestamps(), [], 'taken once')

    const rxStats = receiver.getPacketStats()
    assert.ok(rxStats.p50DeliveryLatencyNs > 0 && rxStats.maxDeliveryLatencyNs >= rxStats.p99DeliveryLatencyNs)
  } finally {
    close()
  }
})

test('getTimestampingInfo reports the interface, its capabilities and what is in use', () => {
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { timestamping: 'software' })
  assert.throws(() => udp.getTimestampingInfo(), { code: 'ERR_UDPCOM_STATE' })
  udp.initSocket()
  const info = udp.getTimestampingInfo()
  assert.equal(info.interface, 'lo')
  assert.equal(info.requested, 'software')
  assert.equal(info.inUse, 'software')
  assert.equal(info.fallbackReason, undefined)
  assert.ok(info.supported.modes.includes('rx_software'))
  assert.ok(info.supported.modes.includes('tx_software'))
  assert.equal(info.supported.phcIndex, -1)
  assert.equal(info.supported.hardware, false)
  udp.closeSocket()
})

test('defaults: receive-only instances stamp in the kernel, sending ones use user-space stamps', async () => {
  const { sender, receiver, close } = pair()
  try {
    assert.equal(receiver.getTimestampingInfo().inUse, 'software')
    assert.equal(sender.getTimestampingInfo().inUse, 'none')
    assert.deepEqual(sender.getTxTimestamps(), [])
  } finally {
    close()
  }
  const { sender: peer, receiver: plain, close: closePlain } = pair({}, { timestamping: 'none' })
  try {
    peer.sendData(Buffer.from('x'))
    const packet = await within(2000, plain.receiveData(2_000_000_000n))
    assert.equal(packet.timestampSource, 'user')
  } finally {
    closePlain()
  }
})

test('hardware stamps on loopback: ERR_UDPCOM_HWTSTAMP_UNSUPPORTED naming the interface, or the fallback', async () => {
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { timestamping: 'hardware' })
  assert.throws(() => udp.initSocket(), (err) => {
    assert.equal(err.code, 'ERR_UDPCOM_HWTSTAMP_UNSUPPORTED')
    assert.match(err.message, /interface lo: the driver reports no hardware timestamping/)
    return true
  })
  const soft = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { timestamping: 'hardware', timestampingFallback: 'software' })
  soft.initSocket()
  const info = soft.getTimestampingInfo()
  assert.deepEqual([info.requested, info.inUse], ['hardware', 'software'])
  assert.match(info.fallbackReason, /lo/)
  soft.closeSocket()
  const none = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { timestamping: 'hardware', timestampingFallback: 'none' })
  none.initSocket()
  assert.equal(none.getTimestampingInfo().inUse, 'none')
  none.closeSocket()
})

test('timestamping options are checked', () => {
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { timestamping: 'kernel' }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: /'none', 'software', 'hardware'/,
  })
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { timestamping: 5 }), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { timestampingFallback: 'hardware' }), {
    code: 'ERR_INVALID_ARG_VALUE',
  })
})

/** Runs `node stamps.mjs ...` inside a network namespace and parses its JSON output. */
function inNamespace(namespace, args, { onStderr } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, fixture, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d; onStderr?.(String(d)) })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`timed out: ${stderr}`)) }, 20_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (code !== 0) reject(new Error(`exit ${code}: ${stderr}`))
      else resolve(JSON.parse(stdout, (_, v) => (typeof v === 'string' && /^\d+$/.test(v) ? BigInt(v) : v)))
    })
  })
}

test('on a veth pair between two network namespaces: kernel stamps both ways, hardware refused', async (t) => {
  if (!isRoot) {
    t.skip('needs root to create network namespaces and a veth pair')
    return
  }
  const tag = `${process.pid % 100000}`
  const [a, b] = [`udpcom-ts${tag}-a`, `udpcom-ts${tag}-b`]
  const [vethA, vethB] = [`uts${tag}a`, `uts${tag}b`]
  const ip = (...args) => execFileSync('ip', args, { stdio: 'pipe' })
  try {
    ip('netns', 'add', a)
    ip('netns', 'add', b)
    ip('link', 'add', vethA, 'netns', a, 'type', 'veth', 'peer', 'name', vethB, 'netns', b)
    ip('-n', a, 'addr', 'add', '10.231.7.1/24', 'dev', vethA)
    ip('-n', b, 'addr', 'add', '10.231.7.2/24', 'dev', vethB)
    for (const [ns, dev] of [[a, vethA], [b, vethB]]) {
      ip('-n', ns, 'link', 'set', dev, 'up')
      ip('-n', ns, 'link', 'set', 'lo', 'up')
    }
    const count = 40
    let ready
    const listening = new Promise((resolve) => { ready = resolve })
    const received = inNamespace(b, ['receive', '10.231.7.2', '47000', String(count)], {
      onStderr: (text) => text.includes('ready') && ready(),
    })
    await within(10_000, listening, 'receiver start')
    const sent = await inNamespace(a, ['send', '10.231.7.1', '47001', '10.231.7.2', '47000', String(count)])
    const { packets, stats, info } = await received

    assert.equal(info.interface, vethB)
    assert.equal(packets.length, count)
    checkReceiveStamps(packets)
    assert.equal(stats.nPacketsReceived, count)

    assert.equal(sent.info.interface, vethA)
    assert.equal(sent.stats.nPacketsSent, count)
    assert.equal(sent.stats.nTxTimestamps, count, 'one transmit stamp per packet')
    assert.ok(sent.stats.p50WireLatencyNs >= sent.stats.p50LatencyNs)
    assert.deepEqual(sent.tx.map((x) => Number(x.id)), [...Array(count).keys()])
    sent.tx.forEach((x, i) => assert.ok(x.txTimestampNs <= packets[i].arrival, `packet ${i}`))

    const hardware = await inNamespace(a, ['hardware', '10.231.7.1'])
    assert.equal(hardware.error.code, 'ERR_UDPCOM_HWTSTAMP_UNSUPPORTED')
    assert.match(hardware.error.message, new RegExp(`interface ${vethA}`))
    assert.equal(hardware.fallback.inUse, 'software')
    assert.equal(hardware.fallback.requested, 'hardware')
  } finally {
    for (const ns of [a, b]) {
      try { ip('netns', 'del', ns) } catch { /* already gone */ }
    }
  }
})
