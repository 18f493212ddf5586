// A hostile stranger floods the receiver's port with random datagrams (0..65507 bytes) at full
// speed, from a child process so that this process's event loop is measured fairly.
// A connected instance hears none of it and still hears its peer; an unconnected one reads
// or counts every datagram. Memory stays bounded, the event loop stays responsive, nothing
// crashes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { fileURLToPath } from 'node:url'
import { monitorEventLoopDelay } from 'node:perf_hooks'

import { UdpCom, runNode, until } from './helpers.mjs'

const flooder = fileURLToPath(new URL('./fixtures/flooder.mjs', import.meta.url))
const FLOOD_MS = 2500

async function boundSocket() {
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return socket
}

/**
 * Floods `target` from a child for FLOOD_MS while `peer` sends a numbered packet every 5 ms
 * to it; measures this process's RSS and event-loop delay meanwhile.
 */
async function flood(t, target, peer) {
  let peerSent = 0
  const peerTimer = setInterval(() => {
    peer.send(`PEER ${peerSent}`, target.localPort, '127.0.0.1', (error) => { if (!error) peerSent++ })
  }, 5)
  const delay = monitorEventLoopDelay({ resolution: 10 })
  const rssBefore = process.memoryUsage().rss
  let rssMax = rssBefore
  const rssTimer = setInterval(() => { rssMax = Math.max(rssMax, process.memoryUsage().rss) }, 20)
  delay.enable()
  const result = await runNode([flooder, String(target.localPort), String(FLOOD_MS), '7'], { timeoutMs: 30_000 })
  delay.disable()
  clearInterval(peerTimer)
  clearInterval(rssTimer)
  assert.equal(result.code, 0, result.stderr)
  const stranger = JSON.parse(result.stdout)
  const measured = {
    stranger,
    peerSent,
    rssGrowthMb: (rssMax - rssBefore) / 2 ** 20,
    loopDelayP99Ms: delay.percentile(99) / 1e6,
    loopDelayMaxMs: delay.max / 1e6,
  }
  t.diagnostic(`stranger sent ${stranger.sent} datagrams (${(stranger.bytes / 2 ** 20).toFixed(0)} MiB) in ${FLOOD_MS} ms; ` +
    `peer sent ${peerSent}; RSS +${measured.rssGrowthMb.toFixed(1)} MB; event-loop delay p99 ` +
    `${measured.loopDelayP99Ms.toFixed(1)} ms, max ${measured.loopDelayMaxMs.toFixed(1)} ms`)
  // Bounded memory: the rings are preallocated, so udpcom does not grow with the flood. What
  // does grow is JavaScript's garbage: the unconnected receiver hands GBs of copies to the
  // callback, which V8 collects when it sees fit (measured: +5 MB connected, +40 MB
  // unconnected for 2 GB of datagrams).
  assert.ok(measured.rssGrowthMb < 160, `RSS grew by ${measured.rssGrowthMb.toFixed(1)} MB`)
  // A responsive event loop (generous: two cores shared with the flooder and udpcom's threads).
  assert.ok(measured.loopDelayP99Ms < 100, `event-loop delay p99 ${measured.loopDelayP99Ms} ms`)
  assert.ok(measured.loopDelayMaxMs < 500, `event-loop delay max ${measured.loopDelayMaxMs} ms`)
  assert.ok(stranger.sent > 1000, `the flooder only sent ${stranger.sent} datagrams`)
  return measured
}

test('a connected instance under a stranger\'s flood: nothing of it reaches JavaScript, the peer is still heard', async (t) => {
  const peer = await boundSocket()
  const target = new UdpCom('127.0.0.1', 0, '127.0.0.1', peer.address().port, { direction: 1 })
  target.initSocket()
  target.start()
  const heard = []
  target.onPackets((packets) => { for (const p of packets) heard.push(p.data.toString()) })
  try {
    const { peerSent } = await flood(t, target, peer)
    await until(() => heard.length >= peerSent, 2000, 'every peer packet')
    const s = target.getPacketStats()
    // The kernel filters strangers out for a connected socket: what was read is the peer's.
    assert.equal(s.nPacketsReceived, peerSent)
    assert.equal(s.nKernelDrops, 0)
    assert.deepEqual(heard, Array.from({ length: peerSent }, (_, i) => `PEER ${i}`))
  } finally {
    target.closeSocket()
    peer.close()
  }
})

test('an unconnected instance under the same flood: every datagram is read or counted, the peer gets through', async (t) => {
  const peer = await boundSocket()
  const target = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1 })
  target.initSocket()
  target.start()
  let read = 0
  let peerHeard = 0
  let oversized = 0
  target.onPackets((packets) => {
    read += packets.length
    for (const p of packets) {
      if (p.data.length > 65_507) oversized++
      if (p.data.length >= 5 && p.data.toString('latin1', 0, 5) === 'PEER ') peerHeard++
    }
  })
  try {
    const { stranger, peerSent } = await flood(t, target, peer)
    const arrived = stranger.sent + peerSent
    await until(() => {
      const s = target.getPacketStats()
      return s.nPacketsReceived + s.nKernelDrops >= arrived && s.recvQueueLength === 0 && read === s.nPacketsDelivered
    }, 5000, 'the receiver settling')
    const s = target.getPacketStats()
    t.diagnostic(`read off the socket ${s.nPacketsReceived} (JavaScript ${read}, ring overflow ${s.nRecvRingOverflow}), ` +
      `kernel drops ${s.nKernelDrops}; peer packets heard ${peerHeard} of ${peerSent}`)
    // Everything that was sent to the port was read off the socket or dropped by the kernel.
    assert.equal(s.nPacketsReceived + s.nKernelDrops, arrived)
    assert.equal(s.nPacketsReceived, read + s.nRecvRingOverflow + s.nRecvDiscarded + s.recvQueueLength)
    assert.equal(s.nPacketsDelivered, read)
    assert.equal(oversized, 0)
    assert.ok(peerHeard > 0, 'not one peer packet got through the flood')
  } finally {
    target.closeSocket()
    peer.close()
  }
})
