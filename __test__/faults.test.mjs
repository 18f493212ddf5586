// Faults between the ends: a peer that is not listening (ICMP port unreachable, so the next
// send fails with ECONNREFUSED), and a proxy that drops, duplicates, reorders and delays
// packets on a seeded schedule. The counters must tell exactly what happened.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'

import { UdpCom, within, now, MS, until } from './helpers.mjs'
import { random } from './fixtures/shared.mjs'

async function boundSocket(port = 0) {
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(port, '127.0.0.1', resolve)
  })
  return socket
}

/** A port that was free a moment ago. */
async function freePort() {
  const probe = await boundSocket()
  const { port } = probe.address()
  await new Promise((resolve) => probe.close(resolve))
  return port
}

test('a peer that is not listening: each refused packet is counted in nSendErrors, lastError says ECONNREFUSED, sending goes on', async (t) => {
  const port = await freePort()
  const sender = new UdpCom('127.0.0.1', 0, '127.0.0.1', port, { direction: 0 })
  sender.initSocket()
  sender.start()
  let listener
  try {
    // One packet a millisecond: each that arrives at the closed port brings back an ICMP port
    // unreachable, and the kernel fails the next send on the connected socket with it.
    const t0 = now() + 5n * MS
    for (let i = 0; i < 200; i++) sender.sendData(Buffer.from(`packet ${i}`), t0 + BigInt(i) * MS)
    await within(5000, sender.drain(), 'drain')
    const s = sender.getPacketStats()
    t.diagnostic(`200 packets to a closed port: ${s.nPacketsSent} sent, ${s.nSendErrors} refused`)
    assert.equal(s.nPacketsSent + s.nSendErrors, 200, 'every packet is sent or failed')
    assert.equal(s.nPacketsQueued, 200)
    assert.ok(s.nSendErrors >= 50, `only ${s.nSendErrors} send errors`)
    assert.ok(s.nPacketsSent >= 50, `only ${s.nPacketsSent} packets left`)
    assert.deepEqual(
      { code: s.lastError.code, syscall: s.lastError.syscall, errno: s.lastError.errno },
      { code: 'ECONNREFUSED', syscall: 'sendmmsg', errno: -111 },
    )
    assert.match(s.lastError.message, /^sendmmsg ECONNREFUSED/)

    // The sender did not give up: once someone listens there, packets arrive again.
    listener = await boundSocket(port)
    const heard = []
    listener.on('message', (message) => heard.push(message.toString()))
    const t1 = now() + 5n * MS
    for (let i = 0; i < 20; i++) sender.sendData(Buffer.from(`again ${i}`), t1 + BigInt(i) * MS)
    await within(5000, sender.drain(), 'drain')
    await until(() => heard.length >= 19, 2000, 'packets at the new listener')
    const after = sender.getPacketStats()
    assert.equal(after.nPacketsSent + after.nSendErrors, 220)
    // At most the first one can still fail, on an ICMP error from before the listener.
    assert.ok(after.nSendErrors - s.nSendErrors <= 1)
    assert.equal(heard.at(-1), 'again 19')
  } finally {
    sender.closeSocket()
    listener?.close()
  }
})

test('a peer that is not listening, instance that also receives: every packet still sent or failed, lastError ECONNREFUSED', async () => {
  // The receiver thread reads the socket's pending error too (recvmmsg reports it), so some
  // refusals surface there instead of failing a send; either way lastError tells the cause.
  const port = await freePort()
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', port)
  udp.initSocket()
  udp.start()
  try {
    const t0 = now() + 5n * MS
    for (let i = 0; i < 100; i++) udp.sendData(Buffer.from([i]), t0 + BigInt(i) * MS)
    await within(5000, udp.drain(), 'drain')
    const s = udp.getPacketStats()
    assert.equal(s.nPacketsSent + s.nSendErrors, 100)
    assert.equal(s.lastError?.code, 'ECONNREFUSED')
    assert.ok(['sendmmsg', 'recvmmsg'].includes(s.lastError.syscall))
    assert.equal(s.nPacketsReceived, 0)
  } finally {
    udp.closeSocket()
  }
})

test('a lossy proxy (drop, duplicate, reorder, delay; seeded): the counters match what the proxy saw and forwarded', async (t) => {
  const seed = Number(process.env.UDPCOM_TEST_SEED ?? 20241125)
  const rand = random(seed)
  const COUNT = 2000
  const proxy = await boundSocket()
  proxy.setRecvBufferSize(4 * 1024 * 1024)
  const proxyPort = proxy.address().port
  const receiver = new UdpCom('127.0.0.1', 0, '127.0.0.1', proxyPort, { direction: 1 })
  receiver.initSocket()
  receiver.start()
  const sender = new UdpCom('127.0.0.1', 0, '127.0.0.1', proxyPort, { direction: 0 })
  sender.initSocket()
  sender.start()
  const senderPort = sender.localPort
  const receiverPort = receiver.localPort

  // The proxy's log: what it saw from the sender, and what it forwarded, in order.
  const log = { seen: [], forwarded: [], dropped: 0, duplicated: 0, delayed: 0, swapped: 0, strangers: 0 }
  let pendingSends = 0
  let held = null // a packet held back until the next one has gone (a swap)
  const forward = (message) => {
    pendingSends++
    proxy.send(message, receiverPort, '127.0.0.1', (error) => {
      pendingSends--
      if (!error) log.forwarded.push(message.readUInt32LE(0))
    })
  }
  proxy.on('message', (message, rinfo) => {
    if (rinfo.port !== senderPort) {
      log.strangers++
      return
    }
    log.seen.push(message.readUInt32LE(0))
    const roll = rand()
    if (roll < 0.1) {
      log.dropped++
    } else if (roll < 0.2) {
      log.duplicated++
      forward(message)
      forward(message)
    } else if (roll < 0.3) {
      log.delayed++
      pendingSends++
      setTimeout(() => {
        pendingSends--
        forward(message)
      }, 1 + Math.floor(rand() * 20))
    } else if (roll < 0.4 && held === null) {
      log.swapped++
      held = message
      return
    } else {
      forward(message)
    }
    if (held !== null) {
      forward(held)
      held = null
    }
  })

  const received = []
  receiver.onPackets((packets) => {
    for (const p of packets) received.push(p.data.readUInt32LE(0))
  })
  try {
    // 2,000 packets 200 µs apart (a rate node:dgram forwards without loss).
    const t0 = now() + 5n * MS
    const payload = (i) => {
      const data = Buffer.alloc(32)
      data.writeUInt32LE(i)
      return data
    }
    for (let i = 0; i < COUNT; i++) sender.sendData(payload(i), t0 + BigInt(i) * 200_000n)
    await within(10_000, sender.drain(), 'drain')
    await until(() => log.seen.length >= COUNT, 5000, 'the proxy seeing every packet')
    if (held !== null) {
      forward(held)
      held = null
    }
    await until(() => pendingSends === 0, 5000, 'the proxy forwarding everything')
    await until(() => receiver.getPacketStats().nPacketsReceived >= log.forwarded.length, 5000, 'the receiver reading everything')
    await until(() => received.length >= log.forwarded.length, 5000, 'JavaScript reading everything')
    await new Promise((resolve) => setTimeout(resolve, 50)) // nothing more may arrive

    const tx = sender.getPacketStats()
    const rx = receiver.getPacketStats()
    t.diagnostic(`seed ${seed}: proxy saw ${log.seen.length}, dropped ${log.dropped}, duplicated ${log.duplicated}, ` +
      `delayed ${log.delayed}, swapped ${log.swapped}, forwarded ${log.forwarded.length}; receiver read ${rx.nPacketsReceived}`)
    // The sender's count is what the proxy saw, in order.
    assert.equal(tx.nPacketsSent, COUNT)
    assert.equal(log.seen.length, tx.nPacketsSent)
    assert.deepEqual(log.seen, [...Array(COUNT).keys()])
    // The receiver's count is what the proxy forwarded, and the order is the proxy's order.
    assert.equal(log.forwarded.length, COUNT - log.dropped + log.duplicated)
    assert.equal(rx.nPacketsReceived, log.forwarded.length)
    assert.equal(rx.nKernelDrops, 0)
    assert.equal(rx.nPacketsDelivered, received.length)
    assert.deepEqual(received, log.forwarded)
    // The faults really happened: duplicates, gaps and packets out of order reached JavaScript.
    const distinct = new Set(received)
    assert.equal(received.length - distinct.size, log.duplicated)
    assert.equal(COUNT - distinct.size, log.dropped)
    assert.ok(received.some((seq, i) => i > 0 && seq < received[i - 1]), 'nothing arrived out of order')
    assert.equal(log.strangers, 0)
  } finally {
    sender.closeSocket()
    receiver.closeSocket()
    proxy.close()
  }
})
