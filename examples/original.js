// The original Python example of udpcom, translated to JavaScript.
//
// Python:
//   udp = UdpCom("127.0.0.1", 5005, "127.0.0.1", 5005, cpu=1, capacity=4096, direction=2)
//   udp.init_socket()
//   udp.start()
//   t0 = time.monotonic_ns() + 1_000_000
//   for i in range(100):
//       udp.send_data(b"trigger %d" % i, t0 + i * 100_000)    # one every 100 µs
//   for i in range(100):
//       data, timestamp_ns = udp.receive_data(1_000_000_000)  # wait up to 1 s
//   stats = udp.get_packet_stats()
//   print("sent", stats["n_packets_sent"], "max latency", stats["max_latency_ns"], "ns")
//   udp.stop()
//   udp.close_socket()
//
// The socket is bound and connected to the same address, so it hears its own packets.
// UDPCOM_EXAMPLE_PORT changes the port, UDPCOM_EXAMPLE_CPU the CPU (default 1, or 0 on a
// one-CPU machine).
const { availableParallelism } = require('node:os')
const { UdpCom } = require('udpcom')

async function main() {
  const port = Number(process.env.UDPCOM_EXAMPLE_PORT ?? 5005)
  const cpu = Number(process.env.UDPCOM_EXAMPLE_CPU ?? Math.min(1, availableParallelism() - 1))
  const udp = new UdpCom('127.0.0.1', port, '127.0.0.1', port, { cpu, capacity: 4096, direction: 2 })
  udp.initSocket()
  udp.start()

  const t0 = process.hrtime.bigint() + 1_000_000n
  for (let i = 0; i < 100; i++) {
    udp.sendData(Buffer.from(`trigger ${i}`), t0 + BigInt(i) * 100_000n) // one every 100 µs
  }
  let received = 0
  for (let i = 0; i < 100; i++) {
    const packet = await udp.receiveData(1_000_000_000n) // wait up to 1 s
    if (packet === null) break
    const { data, timestampNs } = packet
    if (i === 0) console.log(`first: "${data}" arrived ${timestampNs - t0} ns after its time`)
    received++
  }

  await udp.drain() // every packet has left, so the statistics are complete
  const stats = udp.getPacketStats()
  console.log('sent', stats.nPacketsSent, 'received', received, 'max latency', stats.maxLatencyNs, 'ns')
  udp.stop()
  udp.closeSocket()
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
