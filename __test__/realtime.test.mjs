// Real-time set-up: workers pinned to CPUs and under SCHED_FIFO as configured (root only),
// timer slack, and timing under FIFO within generous bounds.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { availableParallelism } from 'node:os'

import { UdpCom, pair, receiveMany, udpcomThreads, threadScheduling, isRoot, now, until, within, MS } from './helpers.mjs'

const SCHED_OTHER = 0
const SCHED_FIFO = 1
const lastCpu = availableParallelism() - 1

test('cpu and rxCpu pin the workers', () => {
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { cpu: 0, rxCpu: lastCpu })
  udp.initSocket()
  udp.start()
  try {
    const byName = Object.fromEntries(udpcomThreads().map((t) => [t.comm, threadScheduling(t.tid)]))
    assert.equal(byName['udpcom-send'].cpus, '0')
    assert.equal(byName['udpcom-recv'].cpus, String(lastCpu))
    assert.equal(byName['udpcom-send'].policy, SCHED_OTHER)
  } finally {
    udp.closeSocket()
  }
  // rxCpu defaults to cpu.
  const both = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { cpu: lastCpu })
  both.initSocket()
  both.start()
  try {
    for (const t of udpcomThreads()) assert.equal(threadScheduling(t.tid).cpus, String(lastCpu), t.comm)
  } finally {
    both.closeSocket()
  }
})

test('priority puts the workers under SCHED_FIFO', (t) => {
  if (!isRoot) {
    t.skip('needs root (or CAP_SYS_NICE) to use SCHED_FIFO')
    return
  }
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { priority: 10 })
  udp.initSocket()
  udp.start()
  try {
    const workers = udpcomThreads()
    assert.equal(workers.length, 2)
    for (const worker of workers) {
      assert.deepEqual(
        { policy: threadScheduling(worker.tid).policy, rtPriority: threadScheduling(worker.tid).rtPriority },
        { policy: SCHED_FIFO, rtPriority: 10 },
        worker.comm,
      )
    }
  } finally {
    udp.closeSocket()
  }
})

test('a send-only instance with transmit stamps: the sender under SCHED_FIFO, its stamp reader not (RT throttling counts them together)', (t) => {
  if (!isRoot) {
    t.skip('needs root (or CAP_SYS_NICE) to use SCHED_FIFO')
    return
  }
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 0, priority: 10, timestamping: 'software' })
  udp.initSocket()
  udp.start()
  try {
    const policies = Object.fromEntries(udpcomThreads().map((worker) => [worker.comm, threadScheduling(worker.tid).policy]))
    assert.deepEqual(policies, { 'udpcom-send': SCHED_FIFO, 'udpcom-recv': SCHED_OTHER })
  } finally {
    udp.closeSocket()
  }
})

test('priority 0 means normal scheduling', () => {
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { priority: 0 })
  udp.initSocket()
  udp.start()
  try {
    for (const worker of udpcomThreads()) assert.equal(threadScheduling(worker.tid).policy, SCHED_OTHER)
  } finally {
    udp.closeSocket()
  }
})

test('pinned SCHED_FIFO sender keeps time at 1 kpps (generous bound)', async (t) => {
  if (!isRoot) {
    t.skip('needs root (or CAP_SYS_NICE) to use SCHED_FIFO')
    return
  }
  const { sender, receiver, close } = pair({ cpu: lastCpu, priority: 10 })
  try {
    const start = now() + 20n * MS
    for (let i = 0; i < 200; i++) sender.sendData(Buffer.from([i & 255]), start + BigInt(i) * MS)
    await receiveMany(receiver, 200)
    // A packet can reach a local receiver before the sender's counters include it.
    await within(10_000, sender.drain(), 'drain')
    const stats = sender.getPacketStats()
    assert.equal(stats.nPacketsSent, 200)
    // The benchmark measures the real figure (tens of ns); a test only guards against breakage.
    assert.ok(stats.p50LatencyNs < 1_000_000, `p50 ${stats.p50LatencyNs} ns`)
    assert.equal(stats.nRtDemotions, 0, 'the sender slept between packets, so it never left SCHED_FIFO')
  } finally {
    close()
  }
})

test('a SCHED_FIFO sender that never gets to sleep leaves SCHED_FIFO (and counts it) instead of being throttled', async (t) => {
  if (!isRoot) {
    t.skip('needs root (or CAP_SYS_NICE) to use SCHED_FIFO')
    return
  }
  const { sender, close } = pair({ cpu: lastCpu, priority: 10, capacity: 300_000 })
  try {
    const payload = Buffer.alloc(16)
    let queued = 0
    while (queued < 300_000 && sender.sendData(payload)) queued++
    const started = now()
    await sender.drain()
    const stats = sender.getPacketStats()
    assert.equal(stats.nPacketsSent + stats.nSendErrors, queued)
    // Sending 300k packets flat out takes far more than 10 ms of uninterrupted running.
    assert.ok(stats.nRtDemotions > 0, `never left SCHED_FIFO in ${Number(now() - started) / 1e6} ms of sending`)
    // Idle again, it parks, and returns to SCHED_FIFO before it does (a worker stuck in
    // SCHED_OTHER is caught at the timeout).
    const worker = udpcomThreads().find((t) => t.comm === 'udpcom-send')
    await until(() => threadScheduling(worker.tid).policy === SCHED_FIFO, 10_000, 'the idle sender back in SCHED_FIFO')
    assert.equal(threadScheduling(worker.tid).rtPriority, 10)
  } finally {
    close()
  }
})
