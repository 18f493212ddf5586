// Exact accounting at full speed: 300,000 packets as fast as udpcom and loopback go, consumed
// in JavaScript; every packet offered is queued or refused, every packet queued is sent or
// failed, and every packet sent is received or counted as dropped by the kernel (loopback
// loses nothing else), with the payloads' sequence numbers to prove it.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { UdpCom, within } from './helpers.mjs'

const TOTAL = 300_000
const BATCH = 4096

function packet(seq) {
  const data = Buffer.alloc(16)
  data.writeUInt32LE(seq, 0)
  data.writeUInt32LE(~seq >>> 0, 12) // a second copy, inverted, catches torn payloads
  return data
}

/** Sends TOTAL numbered packets as fast as the send ring takes them; `consume` reads them. */
async function floodAndAccount(t, consumer) {
  const receiver = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1, capacity: 65_536 })
  receiver.initSocket()
  receiver.start()
  const sender = new UdpCom('127.0.0.1', 0, '127.0.0.1', receiver.localPort, { direction: 0, capacity: 65_536 })
  sender.initSocket()
  sender.start()
  const seen = { count: 0, last: -1, disorder: 0, torn: 0 }
  const take = (packets) => {
    for (const p of packets) {
      const seq = p.data.readUInt32LE(0)
      if (p.data.length !== 16 || p.data.readUInt32LE(12) !== (~seq >>> 0)) seen.torn++
      if (seq <= seen.last) seen.disorder++
      seen.last = seq
      seen.count++
    }
  }
  const consuming = consumer(receiver, take)
  try {
    const started = process.hrtime.bigint()
    let offered = 0
    let next = 0
    let refusedRounds = 0
    while (next < TOTAL) {
      const batch = []
      for (let i = next; i < Math.min(TOTAL, next + BATCH); i++) batch.push(packet(i))
      const queued = sender.sendBatch(batch)
      offered += batch.length
      next += queued
      if (queued < batch.length) {
        refusedRounds++
        await new Promise((resolve) => setImmediate(resolve)) // let the ring drain
      }
    }
    await within(20_000, sender.drain(), 'drain')
    const sendSeconds = Number(process.hrtime.bigint() - started) / 1e9
    // Everything sent is now in the receiver's socket, ring or JavaScript, or was dropped.
    const settled = () => {
      const rx = receiver.getPacketStats()
      return rx.nPacketsReceived + rx.nKernelDrops >= sender.getPacketStats().nPacketsSent &&
        rx.recvQueueLength === 0 && seen.count === rx.nPacketsDelivered
    }
    const deadline = Date.now() + 10_000
    while (!settled() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
    await new Promise((resolve) => setTimeout(resolve, 50)) // nothing more may arrive
    await consuming.stop()
    const tx = sender.getPacketStats()
    const rx = receiver.getPacketStats()
    t.diagnostic(`${TOTAL} packets sent in ${sendSeconds.toFixed(2)} s (${Math.round(TOTAL / sendSeconds)} pps); ` +
      `offered ${offered}, refused by a full ring ${tx.nSendRingFull} (${refusedRounds} rounds); ` +
      `received ${rx.nPacketsReceived}, kernel drops ${rx.nKernelDrops}, ring overflow ${rx.nRecvRingOverflow}, ` +
      `read by JavaScript ${seen.count}`)

    // Offered = queued + refused; queued = sent + failed (nothing discarded, nothing left).
    assert.equal(tx.nPacketsQueued, TOTAL)
    assert.equal(tx.nPacketsQueued + tx.nSendRingFull, offered)
    assert.equal(tx.nPacketsSent + tx.nSendErrors, tx.nPacketsQueued)
    assert.equal(tx.nSendErrors, 0, `send errors on loopback: ${JSON.stringify(tx.lastError)}`)
    assert.equal(tx.nPacketsDiscarded, 0)
    assert.equal(tx.sendQueueLength, 0)
    // Read by JavaScript + ring overflow = read off the socket.
    assert.equal(seen.count, rx.nPacketsDelivered)
    assert.equal(seen.count + rx.nRecvRingOverflow, rx.nPacketsReceived)
    assert.equal(rx.recvQueueLength, 0)
    // Read off the socket + dropped by the kernel = sent.
    assert.equal(rx.nPacketsReceived + rx.nKernelDrops, tx.nPacketsSent)
    // And the payloads agree: in order, intact, each once; the missing ones are the counted ones.
    assert.equal(seen.disorder, 0, 'sequence numbers out of order or repeated')
    assert.equal(seen.torn, 0, 'torn payloads')
    assert.equal(TOTAL - seen.count, rx.nKernelDrops + rx.nRecvRingOverflow)
    assert.equal(rx.nBytesReceived, rx.nPacketsReceived * 16)
  } finally {
    sender.closeSocket()
    receiver.closeSocket()
  }
}

test('300,000 packets at full speed, read with onPackets: the counters account for every one', async (t) => {
  await floodAndAccount(t, (receiver, take) => {
    receiver.onPackets(take, 4096)
    return { stop: async () => receiver.onPackets(null) }
  })
})

test('300,000 packets at full speed, read with receiveBatch: the counters account for every one', async (t) => {
  await floodAndAccount(t, (receiver, take) => {
    let running = true
    const loop = (async () => {
      while (running) take(await receiver.receiveBatch(4096, 20_000_000))
    })()
    return {
      stop: async () => {
        running = false
        await loop
      },
    }
  })
})
