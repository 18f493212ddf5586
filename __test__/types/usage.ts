// Type-checked (tsc --noEmit) as part of npm test: the declarations in index.d.ts must accept
// correct use and reject wrong use (each @ts-expect-error must be an error).
import {
  UdpCom, type Destination, type Direction, type MulticastMembership, type MulticastOptions, type OnPacketsOptions, type PacketBatch,
  type PacketStats, type ReceivedPacket,
  type SocketInfo, type UdpComOptions,
} from 'udpcom'

const direction: Direction = 2
const options: UdpComOptions = { cpu: 1, rxCpu: 0, capacity: 4096, direction, priority: 80, spinNs: 20_000, napNs: 150_000, lockMemory: 'all', inlineSend: true, rxSpinNs: 100_000 }
const udp: UdpCom = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, options)
new UdpCom('::1', 0, '::1', 0)
udp.initSocket()
const port: number = udp.localPort
udp.start()
const queued: boolean = udp.sendData(new Uint8Array([1, 2, 3]), process.hrtime.bigint() + 1_000_000n)
udp.sendData(Buffer.from('asap'))

async function use(): Promise<void> {
  const packet: ReceivedPacket | null = await udp.receiveData(1_000_000n)
  if (packet !== null) {
    const data: Buffer = packet.data
    const when: bigint = packet.timestampNs
    void [data, when]
  }
  await udp.receiveData(5)
  await udp.receiveData()
  const drained: void = await udp.drain()
  void drained
}

const stats: PacketStats = udp.getPacketStats()
const counts: number[] = [
  stats.nPacketsSent, stats.nBytesSent, stats.nPacketsReceived, stats.nBytesReceived, stats.nSendRingFull,
  stats.nRecvRingOverflow, stats.nPacketsDiscarded, stats.nSendErrors, stats.nLatePackets,
  stats.minLatencyNs, stats.maxLatencyNs, stats.meanLatencyNs, stats.p50LatencyNs, stats.p90LatencyNs,
  stats.p99LatencyNs, stats.p999LatencyNs,
]
const histogram: Array<{ upToNs: number; count: number }> = stats.latencyHistogram
udp.unref()
udp.ref()
udp.stop()
udp.closeSocket()
void [port, queued, use, counts, histogram]

// @ts-expect-error: data must be bytes, not a string
udp.sendData('text')
// @ts-expect-error: timestamps are bigint nanoseconds
udp.sendData(new Uint8Array(1), 5)
// @ts-expect-error: direction is 0, 1 or 2
new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 3 })
// @ts-expect-error: ports are numbers
new UdpCom('127.0.0.1', '0', '127.0.0.1', 9)
// @ts-expect-error: timeouts are bigint or number
udp.receiveData('1s')
// @ts-expect-error: localPort is read-only
udp.localPort = 5

// Batching (issue #3).
async function batches(u: UdpCom): Promise<void> {
  const queuedCount: number = u.sendBatch([new Uint8Array(4), Buffer.alloc(8)], BigInt64Array.from([1n, 2n]))
  u.sendBatch([Buffer.alloc(1)], [5n])
  u.sendBatch([Buffer.alloc(1)])
  const packets: ReceivedPacket[] = await u.receiveBatch(64, 1_000_000n)
  u.onPackets((batch: ReceivedPacket[]) => void batch.length, 256)
  u.onPackets(null)
  void [queuedCount, packets]
  // @ts-expect-error: sendBatch takes an array of packets
  u.sendBatch(new Uint8Array(4))
}
void batches

// Millions of packets per second (issue #15): GSO/GRO options, the flat forms.
function offloads(u: UdpCom): void {
  const o: UdpComOptions = { gso: false, gro: true }
  void o
  const info: SocketInfo = u.getSocketInfo()
  const flags: [boolean, number, boolean] = [info.gso, info.gsoMaxSegments, info.gro]
  const fallbacks: number = u.getPacketStats().nGsoFallbacks
  const queuedFlat: number = u.sendBatch(Buffer.alloc(128), new Uint32Array([64, 64]))
  u.sendBatch(new Uint8Array(8), Uint32Array.of(8), BigUint64Array.of(0n), { address: '127.0.0.1', port: 9 })
  u.onPackets((batch: PacketBatch) => {
    const first: Buffer = batch.payload(0)
    const stamp: bigint | undefined = batch.timestampsNs[0]
    const from: string = batch.address(0)
    void [first, stamp, from, batch.count, batch.offsets, batch.lengths, batch.ports, batch.families, batch.addresses]
  }, { flat: true, maxBatch: 4096 })
  u.onPackets((packets: ReceivedPacket[]) => void packets, { maxBatch: 16 })
  const opts: OnPacketsOptions = { flat: false, maxBatch: 1 }
  void [flags, fallbacks, queuedFlat, opts]
  // @ts-expect-error: the flat form's lengths are a Uint32Array
  u.sendBatch(Buffer.alloc(8), [8])
  // @ts-expect-error: flat batches are not arrays of packets
  u.onPackets((packets: ReceivedPacket[]) => void packets, { flat: true })
}
void offloads

// Timestamping (issue #5).
function stamps(): void {
  const u = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { timestamping: 'hardware', timestampingFallback: 'software' })
  u.initSocket()
  const info = u.getTimestampingInfo()
  const inUse: 'none' | 'software' | 'hardware' = info.inUse
  const modes: string[] | undefined = info.supported?.modes
  const tx: Array<{ id: number; txTimestampNs: bigint; hwTxTimestampNs?: bigint }> = u.getTxTimestamps(100)
  const s = u.getPacketStats()
  const wire: number[] = [s.nTxTimestamps, s.p50WireLatencyNs, s.p99WireLatencyNs, s.p999WireLatencyNs, s.maxWireLatencyNs]
  const delivery: number[] = [s.p50DeliveryLatencyNs, s.p99DeliveryLatencyNs, s.maxDeliveryLatencyNs]
  void [inUse, modes, tx, wire, delivery]
  // @ts-expect-error: not a timestamping mode
  new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { timestamping: 'kernel' })
}
async function packetSource(u: UdpCom): Promise<void> {
  const p = await u.receiveData()
  if (p) {
    const source: 'hardware' | 'kernel' | 'user' = p.timestampSource
    const hw: bigint | undefined = p.hwTimestampNs
    void [source, hw]
  }
}
void [stamps, packetSource]

// The JavaScript layer (issue #9): addresses, sendTo, abort signals, iteration, disposal.
async function nodeConventions(): Promise<void> {
  const controller = new AbortController()
  await using udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { signal: controller.signal })
  udp.initSocket()
  udp.start()
  const sent: boolean = udp.sendTo(Buffer.from('hi'), '127.0.0.1', 9, process.hrtime.bigint())
  udp.sendTo(new Uint8Array(1), 'fe80::1%eth0', 9)
  const destination: Destination = { address: '127.0.0.1', port: 9 }
  const queuedTo: number = udp.sendBatch([Buffer.alloc(1)], undefined, destination)
  const packet = await udp.receiveData(1_000_000n, { signal: controller.signal })
  if (packet) {
    const who: [string, number, 'IPv4' | 'IPv6'] = [packet.address, packet.port, packet.family]
    udp.sendTo(packet.data, packet.address, packet.port)
    void who
  }
  const batch: ReceivedPacket[] = await udp.receiveBatch(16, undefined, { signal: AbortSignal.timeout(1000) })
  await udp.drain({ signal: controller.signal })
  for await (const p of udp) {
    const data: Buffer = p.data
    void data
    break
  }
  for await (const p of udp.packets({ signal: controller.signal })) void p
  const batches: AsyncIterableIterator<ReceivedPacket[]> = udp.batches({ max: 64 })
  const chained: UdpCom = udp.unref().ref()
  const truncated: number = udp.getPacketStats().nControlTruncated
  void [sent, queuedTo, batch, batches, chained, truncated]
  // @ts-expect-error: a port is a number
  udp.sendTo(Buffer.alloc(1), '127.0.0.1', '9')
  // @ts-expect-error: a destination needs a port
  udp.sendBatch([Buffer.alloc(1)], undefined, { address: '127.0.0.1' })
  // @ts-expect-error: signals are AbortSignals
  void udp.receiveData(0, { signal: true })
}
function dispose(): void {
  using udp = new UdpCom('::1', 0, '::1', 0)
  udp[Symbol.dispose]()
}
void [nodeConventions, dispose]

// Lab networks (issue #10): interfaces, multicast, broadcast, DSCP, TTL, buffers, packet info.
async function labNetworks(): Promise<void> {
  const multicast: MulticastOptions = { interface: 'eth1', ttl: 4, loopback: false }
  const options: UdpComOptions = {
    interface: 'eth1', reuseAddress: true, reusePort: true, broadcast: true, ttl: 16, dscp: 46, socketPriority: 5,
    recvBufferSize: 8 << 20, sendBufferSize: 1 << 20, multicast, packetInfo: true,
  }
  const udp = new UdpCom('0.0.0.0', 5000, '0.0.0.0', 0, options)
  udp.initSocket()
  udp.addMembership('239.1.2.3')
  udp.addMembership('239.1.2.4', 'eth1')
  udp.dropMembership('239.1.2.4', '10.0.0.2')
  udp.addSourceSpecificMembership('10.0.0.1', '232.1.2.3', 'eth1')
  udp.dropSourceSpecificMembership('10.0.0.1', '232.1.2.3')
  const info: SocketInfo = udp.getSocketInfo()
  const sizes: number[] = [info.recvBufferSize, info.sendBufferSize, info.ttl, info.dscp, info.socketPriority, info.multicast.ttl]
  const flags: boolean[] = [info.broadcast, info.reuseAddress, info.reusePort, info.multicast.loopback, info.packetInfo]
  const bound: string | undefined = info.interface
  const memberships: MulticastMembership[] = info.memberships
  const first: [string, string | undefined, string | undefined, number] | undefined = memberships[0] && [
    memberships[0].group, memberships[0].source, memberships[0].interface, memberships[0].interfaceIndex,
  ]
  udp.start()
  const packet = await udp.receiveData()
  if (packet) {
    const where: [string | undefined, number | undefined, string | undefined] = [packet.localAddress, packet.interfaceIndex, packet.interface]
    void where
  }
  void [sizes, flags, bound, first]
  // @ts-expect-error: dscp is a number
  new UdpCom('0.0.0.0', 0, '0.0.0.0', 0, { dscp: 'EF' })
  // @ts-expect-error: multicast is an object of its own
  new UdpCom('0.0.0.0', 0, '0.0.0.0', 0, { multicastTtl: 4 })
  // @ts-expect-error: the group is a string
  udp.addMembership(0xef010203)
  // @ts-expect-error: a source-specific membership needs its group
  udp.addSourceSpecificMembership('10.0.0.1')
}
void labNetworks
// probeWakeups: the wake-up probe.
import { probeWakeups, type WakeProbe, type WakeProbeOptions } from 'udpcom'
async function probe(): Promise<number> {
  const options: WakeProbeOptions = { durationNs: 1e9, periodNs: 1e6, napNs: 150_000, spinNs: 5e8, cpu: 1, priority: 80 }
  const result: WakeProbe = await probeWakeups(options)
  // @ts-expect-error: a phase may be skipped, so its result may be absent
  const p99: number = result.wakeups.p99Ns
  // @ts-expect-error: durations are ns numbers, not strings
  void probeWakeups({ durationNs: '1s' })
  return (result.cpuLoss?.gapP99Ns ?? 0) + p99
}
void probe

// Replay and capture (issue #12).
import type { Capture, CaptureOptions, CaptureResult, CaptureStats, Replay, ReplayOptions, ReplaySkipped, ReplayStats } from 'udpcom'
import { createWriteStream } from 'node:fs'
async function replayAndCapture(udp: UdpCom): Promise<void> {
  const options: ReplayOptions = { speed: 2, startNs: process.hrtime.bigint(), loop: 3, filter: { port: 5005, address: '10.0.0.1' }, destination: 'original' }
  const replay: Replay = udp.replay('trace.pcapng', options)
  udp.replay(new Uint8Array(24), { destination: { address: '127.0.0.1', port: 9 } })
  const stats: ReplayStats = await replay.done
  const skipped: ReplaySkipped = stats.skipped
  const figures: number[] = [stats.sent, stats.late, stats.p99LatenessNs, skipped.total, skipped.notUdp, skipped.filtered]
  const state: 'running' | 'completed' | 'stopped' | 'instanceStopped' = replay.stats().state
  replay.stop()
  const captureOptions: CaptureOptions = { format: 'pcap', snaplen: 128, sent: true, link: 'ethernet' }
  const toFile: Capture = udp.capture('out.pcapng', captureOptions)
  const toStream: Capture = udp.capture(createWriteStream('out.pcap'))
  const toMemory: Capture = udp.capture()
  const now: CaptureStats = toFile.stats()
  const result: CaptureResult = await toMemory.close()
  const bytes: Buffer | undefined = result.buffer
  await toStream.close()
  void [figures, state, now.written, now.dropped, now.closed, bytes]
  // @ts-expect-error: speed is a number
  udp.replay('trace.pcap', { speed: '2x' })
  // @ts-expect-error: a destination is 'connected', 'original' or an address
  udp.replay('trace.pcap', { destination: 'elsewhere' })
  // @ts-expect-error: the format is pcap or pcapng
  udp.capture('out.pcap', { format: 'json' })
  // @ts-expect-error: a capture target is a path, a stream or nothing
  udp.capture(42)
}
void replayAndCapture
