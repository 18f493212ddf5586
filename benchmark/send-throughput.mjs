// 1. Send throughput: 64-byte datagrams on loopback to an independent receiver that drains
// them (stamp_receiver --mode count, on CPU 0); the figure is packets per second delivered:
// datagrams the receiver read / time from its first to its last datagram. Every packet a
// sender says it sent and the receiver did not get is shown as lost.
//
// Every datagram crosses the kernel's stack on its own here: udpcom and the native run have
// `gso: false` (section 11 has the GSO rows; a GSO sender outruns this plain receiver, and its
// losses would be the receiver's).
//
// Senders, each for `seconds`, as fast as they can:
// - udpcom sendData loop: JavaScript (CPU 0) queues one packet per call; when the ring (65,536
//   packets) is full it sleeps 1 ms. The sender worker (CPU 1) sends with sendmmsg.
// - udpcom sendBatch: the same with 64 packets per call.
// - node:dgram: a connected socket, socket.send(buffer) in a loop on CPU 1 (the send system
//   call happens in the call), yielding to the event loop every 1,024 packets; at the end it
//   waits until libuv's send queue is empty, so that "sent" means handed to the kernel.
// - native ceiling: engine/examples/native_bench send, the same loop as sendData in Rust
//   (producer on CPU 0, worker on CPU 1).
// Each is run `repeats` times, interleaved; the table shows the median and the range. CPU per
// packet: the sender process's CPU time (every thread) over the sending, per packet delivered;
// for udpcom split into the JavaScript thread and the sender worker.
import {
  CPU, tool, nodeRole, roleOptions, emit, loadUdpCom, now, sleep, settle, dgramSocket, cpuMeter, attempt, goodRuns, failedRuns,
  summarize, ratio, verdict, failureNote, fmtPps, fmtNs, fmtRatio, fmtSpread, fmtCount, fmtCpu,
} from './lib.mjs'

const SIZE = 64
const CAPACITY = 65_536

async function measure(variant, seconds) {
  const receiver = tool('stamp_receiver', ['--mode', 'count', '--cpu', CPU.INSTRUMENT, '--idle-ms', 600_000])
  try {
    const port = await receiver.ready()
    let sender
    if (variant === 'native') {
      sender = tool('native_bench', ['send', '--port', port, '--seconds', seconds, '--cpu', CPU.APP, '--worker-cpu', CPU.IO, '--gso', '0'])
    } else {
      const cpu = variant === 'dgram' ? CPU.IO : CPU.APP
      sender = nodeRole(import.meta.url, variant, { port, seconds }, { cpu })
    }
    await sender.ready()
    const sent = await sender.json(seconds * 1000 + 30_000)
    await sender.close()
    const received = await settle(receiver, sent.sent)
    const cpu = sent.cpu ?? { processNs: sent.cpuNs }
    return {
      deliveredPps: received.ratePps,
      received: received.count,
      lost: sent.sent - received.count,
      cpuPerPacketNs: cpu.processNs / received.count,
      jsPerPacketNs: cpu.jsNs / received.count,
      workerPerPacketNs: cpu.workersNs?.['udpcom-send'] / received.count,
      sent,
    }
  } finally {
    await receiver.close()
  }
}

export async function run({ smoke }) {
  const seconds = smoke ? 0.3 : 2
  const repeats = smoke ? 1 : 5
  const variants = ['sendData', 'sendBatch', 'dgram', 'native']
  const runs = Object.fromEntries(variants.map((v) => [v, []]))
  for (let r = 0; r < repeats; r++) {
    for (const v of variants) runs[v].push(await attempt(`send throughput ${v}, repeat ${r + 1}`, () => measure(v, seconds)))
  }
  const stat = (v, key) => summarize(runs[v].map((x) => x[key]))
  const pps = Object.fromEntries(variants.map((v) => [v, stat(v, 'deliveredPps')]))
  const lost = (v) => goodRuns(runs[v]).reduce((sum, x) => sum + x.lost, 0)
  const describe = (v, split) => {
    const cpu = split
      ? `${fmtCpu(runs[v].map((x) => x.cpuPerPacketNs))} (JS ${fmtNs(stat(v, 'jsPerPacketNs').median)} + sender worker ${fmtNs(stat(v, 'workerPerPacketNs').median)})`
      : fmtCpu(runs[v].map((x) => x.cpuPerPacketNs))
    return `${fmtSpread(pps[v], fmtPps)}; lost ${fmtCount(lost(v))}; ${cpu}`
  }
  const row = (name, v) => {
    const vsDgram = ratio(pps[v].median, pps.dgram.median)
    const vsNative = ratio(pps[v].median, pps.native.median)
    const failures = [v, 'dgram', 'native'].map((x) => failureNote(failedRuns(runs[x]), repeats, x)).filter(Boolean)
    const lostBy = [v, 'dgram', 'native'].filter((x) => lost(x) > 0)
    const notes = [...failures, ...(lostBy.length > 0 ? [`packets lost by ${lostBy.join(', ')}`] : [])]
    const judged = verdict(vsDgram >= 1.5 && vsNative >= 0.9 && lost(v) === 0, { 'udpcom/dgram': vsDgram, 'udpcom/native': vsNative }, notes)
    // A sample that lost repeats cannot show the target met.
    const met = failures.length > 0 && judged.met ? null : judged.met
    return {
      section: '1',
      name: `Send throughput, ${name} (64 B, gso: false, delivered; median (range) of ${repeats})`,
      udpcom: describe(v, true),
      dgram: describe('dgram', false),
      ratio: fmtRatio(vsDgram),
      native: `${describe('native', false)} (udpcom = ${fmtRatio(vsNative)})`,
      target: '≥ 1.5× dgram, ≥ 0.9× native, nothing lost',
      met,
      note: judged.note,
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
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', port, { direction: 0, cpu: CPU.IO, capacity: CAPACITY, gso: false })
  udp.initSocket()
  udp.start()
  emit(`READY ${udp.localPort}`)
  const packets = Array.from({ length: 64 }, () => Buffer.alloc(SIZE))
  const payload = packets[0]
  const cpu = cpuMeter()
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
  emit({ queued, sent: stats.nPacketsSent, errors: stats.nSendErrors, spanNs: Number(now() - started), rtDemotions: stats.nRtDemotions, cpu: cpu() })
  udp.closeSocket()
}

/** The node:dgram sender role (also section 11's). */
export async function dgramSender({ port, seconds }) {
  const socket = await dgramSocket(port)
  emit(`READY ${socket.address().port}`)
  const payload = Buffer.alloc(SIZE)
  const cpu = cpuMeter()
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
  // What libuv could not send at once waits in its queue: "sent" is what reached the kernel.
  while (socket.getSendQueueCount() > 0) await new Promise(setImmediate)
  emit({ queued: sent, sent: sent - socket.errors, errors: socket.errors, spanNs: Number(now() - started), cpu: cpu() })
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
