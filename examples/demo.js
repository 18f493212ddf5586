// npm run demo: a loopback sender and receiver at a steady rate for a few seconds, printing
// what arrived and the latency statistics.
//
//   UDPCOM_DEMO_SECONDS  how long to run (default 3)
//   UDPCOM_DEMO_RATE     packets per second (default 1000)
//   UDPCOM_DEMO_PRIORITY SCHED_FIFO priority for the workers (default: normal scheduling)
const { availableParallelism } = require('node:os')
const { UdpCom } = require('udpcom')

const seconds = Number(process.env.UDPCOM_DEMO_SECONDS ?? 3)
const rate = Number(process.env.UDPCOM_DEMO_RATE ?? 1000)
const priority = process.env.UDPCOM_DEMO_PRIORITY ? Number(process.env.UDPCOM_DEMO_PRIORITY) : undefined
const lastCpu = availableParallelism() - 1

const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
const us = (ns) => `${(Number(ns) / 1000).toFixed(1)} µs`

async function main() {
  const receiver = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1 })
  receiver.initSocket()
  receiver.start()
  const sender = new UdpCom('127.0.0.1', 0, '127.0.0.1', receiver.localPort, { direction: 0, cpu: lastCpu, priority })
  sender.initSocket()
  sender.start()
  console.log(`udpcom demo: ${rate} packets/s for ${seconds} s, 127.0.0.1:${sender.localPort} -> :${receiver.localPort}` +
    `${priority ? `, SCHED_FIFO ${priority}` : ''}, sender pinned to CPU ${lastCpu}`)

  // Queue every packet up front with its send time in the payload; the sender thread does the
  // timing, so JavaScript is free (here it just waits for packets).
  const total = Math.round(rate * seconds)
  const period = BigInt(Math.round(1e9 / rate))
  const start = process.hrtime.bigint() + 20_000_000n
  const payload = Buffer.alloc(64)
  let queued = 0
  const queueAhead = () => {
    const horizon = process.hrtime.bigint() + 200_000_000n
    while (queued < total) {
      const target = start + BigInt(queued) * period
      if (target > horizon) break
      payload.writeBigUInt64LE(target, 0)
      payload.writeUInt32LE(queued, 8)
      if (!sender.sendData(payload, target)) break
      queued++
    }
  }
  queueAhead()
  const refill = setInterval(queueAhead, 50)

  const lateness = []
  let lastReport = start
  let lastCount = 0
  for (let received = 0; received < total; received++) {
    const packet = await receiver.receiveData(1_000_000_000n)
    if (packet === null) {
      console.log('no packet for 1 s: stopping')
      break
    }
    lateness.push(packet.timestampNs - packet.data.readBigUInt64LE(0))
    if (packet.timestampNs - lastReport >= 1_000_000_000n) {
      console.log(`  ${lateness.length} packets arrived (${lateness.length - lastCount} in the last second), ` +
        `last: #${packet.data.readUInt32LE(8)} ${us(lateness.at(-1))} after its time`)
      lastReport = packet.timestampNs
      lastCount = lateness.length
    }
  }
  clearInterval(refill)
  await sender.drain()

  const s = sender.getPacketStats()
  const r = receiver.getPacketStats()
  const sorted = [...lateness].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  console.log(`\nsent ${s.nPacketsSent}, received ${r.nPacketsReceived}, lost ${s.nPacketsSent - r.nPacketsReceived}, ` +
    `late ${s.nLatePackets}, ring full ${s.nSendRingFull}, send errors ${s.nSendErrors}`)
  console.log(`sender latency (left - target):   p50 ${us(s.p50LatencyNs)}  p99 ${us(s.p99LatencyNs)}  ` +
    `p99.9 ${us(s.p999LatencyNs)}  max ${us(s.maxLatencyNs)}  (spin window ${us(s.spinWindowNs)})`)
  if (sorted.length > 0) {
    console.log(`arrival lateness (receiver thread): p50 ${us(percentile(sorted, 0.5))}  p99 ${us(percentile(sorted, 0.99))}  ` +
      `max ${us(sorted.at(-1))}`)
  }
  console.log('sender latency histogram:')
  for (const bucket of s.latencyHistogram.filter((b) => b.count > 0)) {
    console.log(`  <= ${String(bucket.upToNs).padStart(10)} ns  ${String(bucket.count).padStart(7)}`)
  }
  sender.closeSocket()
  receiver.closeSocket()
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
