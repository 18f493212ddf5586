// The original Python example of udpcom (see original.js), in TypeScript.
import { availableParallelism } from 'node:os'
import { UdpCom, type PacketStats, type ReceivedPacket, type UdpComOptions } from 'udpcom'

async function main(): Promise<void> {
  const port = Number(process.env.UDPCOM_EXAMPLE_PORT ?? 5005)
  const options: UdpComOptions = { cpu: Math.min(1, availableParallelism() - 1), capacity: 4096, direction: 2 }
  const udp = new UdpCom('127.0.0.1', port, '127.0.0.1', port, options)
  udp.initSocket()
  udp.start()

  const t0: bigint = process.hrtime.bigint() + 1_000_000n
  for (let i = 0; i < 100; i++) {
    const queued: boolean = udp.sendData(Buffer.from(`trigger ${i}`), t0 + BigInt(i) * 100_000n)
    if (!queued) throw new Error('send ring full')
  }
  let received = 0
  for (let i = 0; i < 100; i++) {
    const packet: ReceivedPacket | null = await udp.receiveData(1_000_000_000n)
    if (packet === null) break
    received++
  }

  await udp.drain()
  const stats: PacketStats = udp.getPacketStats()
  console.log('sent', stats.nPacketsSent, 'received', received, 'max latency', stats.maxLatencyNs, 'ns')
  udp.stop()
  udp.closeSocket()
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
