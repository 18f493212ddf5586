// A/B measurement behind the `timestamping` default (README, "Default and cost"): floods
// 200,000 64-byte datagrams over loopback with timestamping 'none' and 'software', three
// times each, and prints throughput, process CPU time and the timestamp counters.
//   node scripts/timestamping-cost.mjs
import { createRequire } from 'node:module'

const { UdpCom } = createRequire(import.meta.url)('..')
const COUNT = 200_000

async function run(timestamping) {
  const receiver = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1, capacity: 1 << 16, timestamping })
  receiver.initSocket()
  receiver.start()
  const sender = new UdpCom('127.0.0.1', 0, '127.0.0.1', receiver.localPort, { direction: 0, capacity: 1 << 18, timestamping, cpu: 1 })
  sender.initSocket()
  sender.start()
  receiver.onPackets(() => {}, 4096)
  const packets = Array.from({ length: COUNT }, () => Buffer.alloc(64))
  const cpuBefore = process.cpuUsage()
  const started = process.hrtime.bigint()
  sender.sendBatch(packets)
  await sender.drain()
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  await new Promise((resolve) => setTimeout(resolve, 200))
  const cpu = process.cpuUsage(cpuBefore)
  const tx = sender.getPacketStats()
  const rx = receiver.getPacketStats()
  console.log(
    `${timestamping.padEnd(8)} ${Math.round(COUNT / seconds)} packets/s, CPU ${Math.round((cpu.user + cpu.system) / 1000)} ms, ` +
      `received ${rx.nPacketsReceived} (kernel drops ${rx.nKernelDrops}), transmit stamps ${tx.nTxTimestamps}`,
  )
  sender.closeSocket()
  receiver.closeSocket()
}

for (let round = 0; round < 3; round++) {
  await run('none')
  await run('software')
}
