// 1. Send throughput: 64-byte datagrams on loopback to an independent receiver that drains
// them (stamp_receiver --mode count, on CPU 0); the figure is packets per second delivered:
// datagrams the receiver read / time from its first to its last datagram.
//
// Senders, each for `seconds`, as fast as they can:
// - udpcom sendData loop: JavaScript (CPU 0) queues one packet per call; when the ring (65,536
//   packets) is full it sleeps 1 ms. The sender worker (CPU 1) sends with sendmmsg.
// - udpcom sendBatch: the same with 64 packets per call.
// - node:dgram: a connected socket, socket.send(buffer) in a loop on CPU 1 (the send system
//   call happens in the call), yielding to the event loop every 1,024 packets.
// - native ceiling: engine/examples/native_bench send, the same loop as sendData in Rust
//   (producer on CPU 0, worker on CPU 1).
// Each is run `repeats` times, interleaved; the table shows the median.
import { CPU, tool, nodeRole, roleOptions, emit, loadUdpCom, now, sleep, median, settle, dgramSocket, fmtPps, fmtRatio } from './lib.mjs'

const SIZE = 64
const CAPACITY = 65_536

async function measure(variant, seconds) {
  const receiver = tool('stamp_receiver', ['--mode', 'count', '--cpu', CPU.INSTRUMENT, '--idle-ms', 600_000])
  const port = await receiver.ready()
  let sender
  if (variant === 'native') {
    sender = tool('native_bench', ['send', '--port', port, '--seconds', seconds, '--cpu', CPU.APP, '--worker-cpu', CPU.IO])
  } else {
    const cpu = variant === 'dgram' ? CPU.IO : CPU.APP
    sender = nodeRole(import.meta.url, variant, { port, seconds }, { cpu })
  }
  await sender.ready()
  const sent = await sender.json(seconds * 1000 + 30_000)
  await sender.close()
  const received = await settle(receiver, sent.sent)
  await receiver.close()
  return { deliveredPps: received.ratePps, received: received.count, sent }
}

export async function run({ smoke }) {
  const seconds = smoke ? 0.3 : 2
  const repeats = smoke ? 1 : 5
  const variants = ['sendData', 'sendBatch', 'dgram', 'native']
  const runs = Object.fromEntries(variants.map((v) => [v, []]))
  for (let r = 0; r < repeats; r++) {
    for (const v of variants) runs[v].push(await measure(v, seconds))
  }
  const pps = Object.fromEntries(variants.map((v) => [v, median(runs[v].map((x) => x.deliveredPps))]))
  const row = (name, v) => {
    const vsDgram = pps[v] / pps.dgram
    const vsNative = pps[v] / pps.native
    return {
      section: '1',
      name: `Send throughput, ${name} (64 B, delivered)`,
      udpcom: fmtPps(pps[v]),
      dgram: fmtPps(pps.dgram),
      ratio: fmtRatio(vsDgram),
      native: `${fmtPps(pps.native)} (udpcom = ${fmtRatio(vsNative)})`,
      target: '≥ 1.5× dgram, ≥ 0.9× native',
      met: vsDgram >= 1.5 && vsNative >= 0.9,
    }
  }
  return {
    rows: [row('sendData loop', 'sendData'), row('sendBatch ×64', 'sendBatch')],
    raw: runs,
  }
}

// Roles (child processes).
async function udpcomSender({ port, seconds }, batch) {
  const UdpCom = loadUdpCom()
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', port, { direction: 0, cpu: CPU.IO, capacity: CAPACITY })
  udp.initSocket()
  udp.start()
  emit(`READY ${udp.localPort}`)
  const packets = Array.from({ length: 64 }, () => Buffer.alloc(SIZE))
  const payload = packets[0]
  const started = now()
  const end = started + BigInt(Math.round(seconds * 1e9))
  let queued = 0
  while (now() < end) {
    let full = false
    if (batch) {
      for (let k = 0; k < 16 && !full; k++) {
        for (let i = 0; i < 64; i++) packets[i].writeUInt32LE(queued + i, 8)
        const n = udp.sendBatch(packets)
        queued += n
        full = n < 64
        // Not queued: the rest of this batch is sent again (with new numbers) after the wait.
      }
    } else {
      for (let k = 0; k < 1024; k++) {
        payload.writeUInt32LE(queued, 8)
        if (!udp.sendData(payload)) {
          full = true
          break
        }
        queued++
      }
    }
    if (full) await sleep(1)
  }
  await udp.drain()
  const stats = udp.getPacketStats()
  emit({ queued, sent: stats.nPacketsSent, spanNs: Number(now() - started), rtDemotions: stats.nRtDemotions })
  udp.closeSocket()
}

async function dgramSender({ port, seconds }) {
  const socket = await dgramSocket(port)
  emit(`READY ${socket.address().port}`)
  const payload = Buffer.alloc(SIZE)
  const started = now()
  const end = started + BigInt(Math.round(seconds * 1e9))
  let sent = 0
  while (now() < end) {
    for (let k = 0; k < 1024; k++) {
      payload.writeUInt32LE(sent++, 8)
      socket.send(payload)
    }
    await new Promise(setImmediate)
  }
  emit({ queued: sent, sent: sent - socket.errors, errors: socket.errors, spanNs: Number(now() - started) })
  socket.close()
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const role = process.argv[2]
  const options = roleOptions()
  const roles = {
    sendData: () => udpcomSender(options, false),
    sendBatch: () => udpcomSender(options, true),
    dgram: () => dgramSender(options),
  }
  roles[role]().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
