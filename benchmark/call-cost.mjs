// 6. Cost of sending, on the JavaScript thread and in all.
//
// Queue cost, wall clock (child process on CPU 1): `rounds` rounds of `calls` calls, median ns
// per call, with the range across rounds:
// - udpcom sendData(payload64, t): packets due in an hour, so the sender thread stays asleep
//   and only the call (argument checks, copy into the ring) is measured; the ring is emptied
//   (stop/start) between rounds;
// - udpcom sendBatch: 64 packets per call with a BigInt64Array of timestamps, per packet;
// - native: UdpEngine::send / send_batch from Rust (native_bench cost), the part below the
//   binding.
// node:dgram has no queue to compare with: its socket.send() makes the system call inside the
// call. Its wall-clock cost per send() (connected socket, to a sink in the same process) is
// measured in the same rounds and shown as what it is, beside the whole cost below, not as a
// ratio to a queue operation.
//
// Whole cost: CPU time per packet delivered. A sender process (JavaScript on CPU 0, udpcom's
// worker on CPU 1; node:dgram on CPU 1) sends `wholePackets` 64-byte packets as fast as it can
// (udpcom: sendData with no time, into a ring that holds them all, then drain(); node:dgram:
// send() in a loop, yielding every 1,024, then until libuv's queue is empty) to an independent
// receiver process (stamp_receiver --mode count) that counts what arrives. CPU time of the
// JavaScript thread, of udpcom's sender worker and of the whole process over the sending,
// divided by the packets the receiver counted; `repeats` runs, interleaved.
//
// Receive cost: an awaited receiveData(0) on packets already received (a child process on
// CPU 1 fills a receive ring with `calls` 64-byte packets from a sender of its own, waits
// until all are in, then times the awaited reads): the JavaScript thread's cost of taking one
// packet, from the native ring through the JavaScript queue to a resolved promise.
//
// Instructions (valgrind --tool=callgrind, deterministic where the wall clock is not): the
// same queue loop run with N and with 3N calls after the same warm-up; (Ir(3N) − Ir(N)) / 2N
// is the cost of one call including the JavaScript loop around it. The functions that account
// for it are listed in the raw results (self cost per call, from callgrind_annotate).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import {
  CPU, tool, nodeRole, roleOptions, emit, loadUdpCom, now, sleep, settle, dgramSocket, cpuMeter, attempt, goodRuns, failedRuns,
  summarize, ratio, verdict, failureNote, fmtNs, fmtRatio, fmtSpread, fmtCount,
} from './lib.mjs'

const SIZE = 64
const BATCH = 64
const HOUR = 3_600_000_000_000n

function udpcomInstance(capacity) {
  const UdpCom = loadUdpCom()
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 0, capacity, ringBytes: capacity * 128 })
  udp.initSocket()
  udp.start()
  return udp
}

// The measured loops, shared by the wall-clock and the callgrind roles.
function sendDataLoop(udp, calls, payload, at) {
  for (let i = 0; i < calls; i++) {
    if (!udp.sendData(payload, at)) throw new Error('ring full')
  }
}
function sendBatchLoop(udp, calls, packets, stamps) {
  for (let i = 0; i < calls; i += BATCH) {
    if (udp.sendBatch(packets, stamps) !== BATCH) throw new Error('ring full')
  }
}
/** A started receiver holding `count` 64-byte packets in its ring, and the sender that sent them. */
async function filledReceiver(count) {
  const UdpCom = loadUdpCom()
  const capacity = 2 ** Math.ceil(Math.log2(count + 1))
  const rx = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1, capacity, timestamping: 'none' })
  rx.initSocket()
  rx.start()
  const tx = new UdpCom('127.0.0.1', 0, '127.0.0.1', rx.localPort, { direction: 0, capacity })
  tx.initSocket()
  tx.start()
  const packets = Array.from({ length: BATCH }, () => Buffer.alloc(SIZE))
  for (let sent = 0; sent < count;) {
    sent += tx.sendBatch(packets.slice(0, Math.min(BATCH, count - sent)))
    // Paced by the sender, so that the receiving socket never overflows.
    await tx.drain()
  }
  while (rx.getPacketStats().nPacketsReceived < count) await sleep(5)
  tx.closeSocket()
  return rx
}
async function receiveDataLoop(rx, calls) {
  for (let i = 0; i < calls; i++) {
    if ((await rx.receiveData(0)) === null) throw new Error('the receive ring ran dry')
  }
}

function restart(udp) {
  udp.stop()
  udp.start()
}

async function timing({ calls, rounds }) {
  const udp = udpcomInstance(2 ** Math.ceil(Math.log2(calls + BATCH)))
  const payload = Buffer.alloc(SIZE)
  const at = now() + HOUR
  const packets = Array.from({ length: BATCH }, () => Buffer.alloc(SIZE))
  const stamps = new BigInt64Array(BATCH).fill(at)
  const dgram = await import('node:dgram')
  const sink = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 16 })
  sink.on('message', () => {})
  await new Promise((resolve) => sink.bind(0, '127.0.0.1', resolve))
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  await new Promise((resolve) => socket.connect(sink.address().port, '127.0.0.1', resolve))
  const time = (fn) => {
    const t = now()
    fn()
    return Number(now() - t) / calls
  }
  const result = { sendData: [], sendBatch: [], dgram: [] }
  for (let r = 0; r <= rounds; r++) {
    const sd = time(() => sendDataLoop(udp, calls, payload, at))
    restart(udp)
    const sb = time(() => sendBatchLoop(udp, calls, packets, stamps))
    restart(udp)
    const dg = time(() => {
      for (let i = 0; i < calls; i++) socket.send(payload)
    })
    await new Promise((resolve) => setTimeout(resolve, 20))
    if (r === 0) continue // warm-up
    result.sendData.push(sd)
    result.sendBatch.push(sb)
    result.dgram.push(dg)
  }
  udp.closeSocket()
  socket.close()
  sink.close()
  result.receiveData = []
  for (let r = 0; r <= rounds; r++) {
    const rx = await filledReceiver(calls)
    const t = now()
    await receiveDataLoop(rx, calls)
    const perCall = Number(now() - t) / calls
    rx.closeSocket()
    if (r > 0) result.receiveData.push(perCall)
  }
  emit(result)
}

async function callgrindRole({ method, calls, warmup, fill }) {
  if (method === 'receiveData') {
    // The same fill in both runs (N and 3N reads): only the reads differ.
    const rx = await filledReceiver(fill)
    await receiveDataLoop(rx, warmup)
    await receiveDataLoop(rx, calls)
    rx.closeSocket()
    return
  }
  const udp = udpcomInstance(2 ** Math.ceil(Math.log2(warmup + calls + BATCH)))
  const payload = Buffer.alloc(SIZE)
  const at = now() + HOUR
  const packets = Array.from({ length: BATCH }, () => Buffer.alloc(SIZE))
  const stamps = new BigInt64Array(BATCH).fill(at)
  const loop = method === 'sendData' ? sendDataLoop : sendBatchLoop
  const args = method === 'sendData' ? [payload, at] : [packets, stamps]
  loop(udp, warmup, ...args)
  loop(udp, calls, ...args)
  udp.closeSocket()
}

/** Per-function cost ("function [object]" → Ir) from callgrind_annotate, self or inclusive. */
function annotate(out, inclusive) {
  const annotated = execFileSync('callgrind_annotate', ['--threshold=100', `--inclusive=${inclusive ? 'yes' : 'no'}`, out], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  // Lines: "42,805,362 ( 5.65%)  file:function [object]".
  const functions = new Map()
  for (const line of annotated.split('\n')) {
    const m = /^\s*([\d,]+)\s+\([^)]*\)\s+[^:\s]*:(.+?)\s*$/.exec(line)
    if (!m || m[2].startsWith('0x')) continue
    const key = m[2].replace(/ \[(?:.*\/)?([^/\]]+)\]$/, ' [$1]')
    functions.set(key, (functions.get(key) ?? 0) + Number(m[1].replace(/,/g, '')))
  }
  return functions
}

/** Total instructions and per-function costs of `node call-cost.mjs callgrind ...`. */
function callgrind(dir, method, calls, warmup, fill) {
  const out = join(dir, `${method}-${calls}.out`)
  const script = fileURLToPath(import.meta.url)
  execFileSync('taskset', ['-c', String(CPU.IO), 'valgrind', '--tool=callgrind', `--callgrind-out-file=${out}`,
    process.execPath, script, 'callgrind', JSON.stringify({ method, calls, warmup, fill })], { stdio: 'ignore' })
  const total = Number(/^(?:summary|totals):\s*(\d+)/m.exec(readFileSync(out, 'utf8'))[1])
  return { total, self: annotate(out, false), inclusive: annotate(out, true) }
}

export function instructionCounts(method, n, warmup) {
  const dir = mkdtempSync(join(tmpdir(), 'udpcom-callgrind-'))
  try {
    const fill = warmup + 3 * n
    const small = callgrind(dir, method, n, warmup, fill)
    const large = callgrind(dir, method, 3 * n, warmup, fill)
    const perCall = (large.total - small.total) / (2 * n)
    const top = (kind, count) =>
      [...large[kind]]
        .map(([name, ir]) => [name, (ir - (small[kind].get(name) ?? 0)) / (2 * n)])
        .filter(([, ir]) => ir >= 5 && ir <= perCall * (kind === 'self' ? 1.01 : 0.9))
        .sort((a, b) => b[1] - a[1])
        .slice(0, count)
        .map(([name, ir]) => ({ function: name, irPerCall: Math.round(ir) }))
    return { perCall, selfTop: top('self', 25), inclusiveTop: top('inclusive', 40), totals: [small.total, large.total], n }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** One run of the whole-cost measurement: a sender process against an independent counter. */
async function measureWhole(variant, packets) {
  const receiver = tool('stamp_receiver', ['--mode', 'count', '--cpu', CPU.INSTRUMENT, '--idle-ms', 600_000])
  try {
    const port = await receiver.ready()
    const sender = nodeRole(import.meta.url, `whole-${variant}`, { port, packets }, { cpu: variant === 'dgram' ? CPU.IO : CPU.APP })
    await sender.ready()
    const sent = await sender.json(120_000)
    await sender.close()
    const received = (await settle(receiver, sent.sent)).count
    return {
      sent: sent.sent,
      received,
      lost: sent.sent - received,
      processPerPacketNs: sent.cpu.processNs / received,
      jsPerPacketNs: sent.cpu.jsNs / received,
      workerPerPacketNs: (sent.cpu.workersNs['udpcom-send'] ?? NaN) / received,
      cpu: sent.cpu,
    }
  } finally {
    await receiver.close()
  }
}

export async function run({ smoke, callgrind: withCallgrind = !smoke }) {
  const calls = smoke ? 10_000 : 100_000
  const rounds = smoke ? 1 : 7
  const wholePackets = smoke ? 10_000 : 200_000
  const repeats = smoke ? 1 : 5
  const child = nodeRole(import.meta.url, 'timing', { calls, rounds }, { cpu: CPU.IO })
  const wall = await child.json(300_000)
  await child.close()
  const nativeTool = tool('native_bench', ['cost', '--calls', calls, '--rounds', rounds, '--cpu', CPU.IO])
  const native = await nativeTool.json(300_000)
  await nativeTool.close()
  const ns = { sendData: summarize(wall.sendData), sendBatch: summarize(wall.sendBatch), dgram: summarize(wall.dgram), receiveData: summarize(wall.receiveData) }

  const whole = { udpcom: [], dgram: [] }
  for (let r = 0; r < repeats; r++) {
    for (const v of ['udpcom', 'dgram']) whole[v].push(await attempt(`whole cost ${v}, repeat ${r + 1}`, () => measureWhole(v, wholePackets)))
  }
  const per = (v, key) => summarize(whole[v].map((x) => x[key]))
  const lost = (v) => goodRuns(whole[v]).reduce((sum, x) => sum + x.lost, 0)

  let ir = null
  if (withCallgrind) {
    ir = {
      sendData: instructionCounts('sendData', 20_000, 20_000),
      sendBatch: instructionCounts('sendBatch', 20_000 * BATCH / 16, 20_000),
      receiveData: instructionCounts('receiveData', 5_000, 5_000),
    }
  }
  const irText = (m, perWhat) => (ir ? `; ${Math.round(ir[m].perCall).toLocaleString('en-US')} instr${perWhat}` : '')
  const dgramSend = `no queue: send() makes the system call in the call, ${fmtSpread(ns.dgram, fmtNs)} wall clock per send() (its whole cost: row below)`
  const failures = ['udpcom', 'dgram'].map((v) => failureNote(failedRuns(whole[v]), repeats, v)).filter(Boolean)
  const lostBy = ['udpcom', 'dgram'].filter((v) => lost(v) > 0)
  const wholeRatio = ratio(per('dgram', 'processPerPacketNs').median, per('udpcom', 'processPerPacketNs').median)
  const wholeVerdict = verdict(true, { 'udpcom CPU': per('udpcom', 'processPerPacketNs').median, 'dgram CPU': per('dgram', 'processPerPacketNs').median },
    [...failures, ...(lostBy.length > 0 ? [`packets lost by ${lostBy.join(', ')}`] : [])])
  const queueRow = (name, method, perWhat, nativeNs, nativeName, targetNs) => {
    const judged = verdict(ns[method].median <= targetNs, { [method]: ns[method].median })
    return {
      section: '6',
      name,
      udpcom: `${fmtSpread(ns[method], fmtNs)}${irText(method, perWhat)}`,
      dgram: dgramSend,
      ratio: '— (no queue in node:dgram)',
      native: `${fmtNs(nativeNs)} (${nativeName})`,
      target: `≤ ${fmtNs(targetNs)}`,
      met: judged.met,
      note: judged.note,
    }
  }
  return {
    rows: [
      queueRow('Queue cost of one sendData call (64 B, due in an hour) — wall-clock median (range of rounds); callgrind instructions',
        'sendData', '', native.sendNs, 'UdpEngine::send', 500),
      queueRow('Queue cost of sendBatch per packet (64 per call, due in an hour) — wall-clock median (range of rounds); callgrind instructions',
        'sendBatch', '/packet', native.sendBatchPerPacketNs, 'UdpEngine::send_batch', 150),
      (() => {
        const instructions = ir?.receiveData.perCall
        const judged = verdict(ns.receiveData.median <= 1000 && (instructions === undefined || instructions <= 4000), {
          receiveData: ns.receiveData.median,
        })
        return {
          section: '6',
          name: 'Cost of an awaited receiveData(0) on queued packets (64 B) — wall-clock median (range of rounds); callgrind instructions',
          udpcom: `${fmtSpread(ns.receiveData, fmtNs)}${irText('receiveData', '/packet')}`,
          dgram: "— (node:dgram pushes 'message' events; its receive rate is section 2)",
          ratio: '—',
          native: '—',
          target: withCallgrind ? '≤ 1 µs and ≤ 4,000 instructions' : '≤ 1 µs',
          met: judged.met,
          note: judged.note,
        }
      })(),
      {
        section: '6',
        name: `Whole cost: CPU time per packet delivered (${fmtCount(wholePackets)} × 64 B as fast as possible; median (range) of ${repeats})`,
        udpcom: `sendData: ${fmtSpread(per('udpcom', 'processPerPacketNs'), fmtNs)} whole process = JS thread ${fmtNs(per('udpcom', 'jsPerPacketNs').median)} + ` +
          `sender worker ${fmtNs(per('udpcom', 'workerPerPacketNs').median)} + other threads; lost ${fmtCount(lost('udpcom'))}`,
        dgram: `send(): ${fmtSpread(per('dgram', 'processPerPacketNs'), fmtNs)} whole process, JS thread ${fmtNs(per('dgram', 'jsPerPacketNs').median)}; lost ${fmtCount(lost('dgram'))}`,
        ratio: fmtRatio(wholeRatio),
        native: '—',
        target: '—',
        met: wholeVerdict.met === null ? null : undefined,
        note: wholeVerdict.note,
      },
    ],
    raw: { wall, native, whole, instructions: ir },
  }
}

// Roles of the whole-cost measurement.
async function wholeUdpcom({ port, packets }) {
  const UdpCom = loadUdpCom()
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', port, { direction: 0, cpu: CPU.IO, capacity: 2 ** Math.ceil(Math.log2(packets)) })
  udp.initSocket()
  udp.start()
  emit(`READY ${udp.localPort}`)
  const payload = Buffer.alloc(SIZE)
  await sleep(50) // the sender worker is parked: nothing of the start-up is measured
  const cpu = cpuMeter()
  for (let i = 0; i < packets; i++) {
    payload.writeUInt32LE(i, 8)
    if (!udp.sendData(payload)) throw new Error('ring full')
  }
  await udp.drain()
  const used = cpu()
  const s = udp.getPacketStats()
  emit({ sent: s.nPacketsSent, errors: s.nSendErrors, cpu: used })
  udp.closeSocket()
}

async function wholeDgram({ port, packets }) {
  const socket = await dgramSocket(port)
  emit(`READY ${socket.address().port}`)
  const payload = Buffer.alloc(SIZE)
  await sleep(50)
  const cpu = cpuMeter()
  for (let i = 0; i < packets;) {
    for (let k = 0; k < 1024 && i < packets; k++, i++) {
      payload.writeUInt32LE(i, 8)
      socket.send(payload)
    }
    await new Promise(setImmediate)
  }
  while (socket.getSendQueueCount() > 0) await new Promise(setImmediate)
  const used = cpu()
  emit({ sent: packets - socket.errors, errors: socket.errors, cpu: used })
  socket.close()
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const role = process.argv[2]
  const options = roleOptions()
  const roles = {
    callgrind: async () => callgrindRole(options),
    timing: () => timing(options),
    'whole-udpcom': () => wholeUdpcom(options),
    'whole-dgram': () => wholeDgram(options),
  }
  const main = roles[role]()
  main.catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
