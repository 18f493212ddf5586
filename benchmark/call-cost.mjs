// 6. Cost of one call on the JavaScript thread.
//
// Wall clock (child process on CPU 1): `rounds` rounds of `calls` calls, median ns per call:
// - udpcom sendData(payload64, t): packets due in an hour, so the sender thread stays asleep
//   and only the call (argument checks, copy into the ring) is measured; the ring is emptied
//   (stop/start) between rounds;
// - udpcom sendBatch: 64 packets per call with a BigInt64Array of timestamps, per packet;
// - node:dgram socket.send(payload64) on a connected socket, to a sink in the same process
//   (this call includes the send system call, which udpcom leaves to its worker thread);
// - native: UdpEngine::send / send_batch from Rust (native_bench cost), the part below the
//   binding.
// Instructions (valgrind --tool=callgrind, deterministic where the wall clock is not): the
// same loop run with N and with 3N calls after the same warm-up; (Ir(3N) − Ir(N)) / 2N is
// the cost of one call including the JavaScript loop around it. The functions that account
// for it are listed in the raw results (self cost per call, from callgrind_annotate).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { CPU, tool, nodeRole, roleOptions, emit, loadUdpCom, now, median, fmtNs, fmtRatio } from './lib.mjs'

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
  emit(result)
}

function callgrindRole({ method, calls, warmup }) {
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
function callgrind(dir, method, calls, warmup) {
  const out = join(dir, `${method}-${calls}.out`)
  const script = fileURLToPath(import.meta.url)
  execFileSync('taskset', ['-c', String(CPU.IO), 'valgrind', '--tool=callgrind', `--callgrind-out-file=${out}`,
    process.execPath, script, 'callgrind', JSON.stringify({ method, calls, warmup })], { stdio: 'ignore' })
  const total = Number(/^(?:summary|totals):\s*(\d+)/m.exec(readFileSync(out, 'utf8'))[1])
  return { total, self: annotate(out, false), inclusive: annotate(out, true) }
}

export function instructionCounts(method, n, warmup) {
  const dir = mkdtempSync(join(tmpdir(), 'udpcom-callgrind-'))
  try {
    const small = callgrind(dir, method, n, warmup)
    const large = callgrind(dir, method, 3 * n, warmup)
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

export async function run({ smoke, callgrind: withCallgrind = !smoke }) {
  const calls = smoke ? 10_000 : 100_000
  const rounds = smoke ? 1 : 7
  const child = nodeRole(import.meta.url, 'timing', { calls, rounds }, { cpu: CPU.IO })
  const wall = await child.json(300_000)
  await child.close()
  const nativeTool = tool('native_bench', ['cost', '--calls', calls, '--rounds', rounds, '--cpu', CPU.IO])
  const native = await nativeTool.json(300_000)
  await nativeTool.close()
  const ns = { sendData: median(wall.sendData), sendBatch: median(wall.sendBatch), dgram: median(wall.dgram) }

  let ir = null
  if (withCallgrind) {
    ir = {
      sendData: instructionCounts('sendData', 20_000, 20_000),
      sendBatch: instructionCounts('sendBatch', 20_000 * BATCH / 16, 20_000),
    }
  }
  const irText = (m, per) => (ir ? `; ${Math.round(ir[m].perCall).toLocaleString('en-US')} instr${per}` : '')
  return {
    rows: [
      {
        section: '6',
        name: 'Cost of one sendData call (64 B, timed) — wall-clock median; callgrind instructions',
        udpcom: `${fmtNs(ns.sendData)}${irText('sendData', '')}`,
        dgram: `${fmtNs(ns.dgram)} per send()`,
        ratio: fmtRatio(ns.dgram / ns.sendData),
        native: `${fmtNs(native.sendNs)} (UdpEngine::send)`,
        target: '≤ 500 ns',
        met: ns.sendData <= 500,
      },
      {
        section: '6',
        name: 'Cost of sendBatch per packet (64 per call) — wall-clock median; callgrind instructions',
        udpcom: `${fmtNs(ns.sendBatch)}${irText('sendBatch', '/packet')}`,
        dgram: `${fmtNs(ns.dgram)} per send()`,
        ratio: fmtRatio(ns.dgram / ns.sendBatch),
        native: `${fmtNs(native.sendBatchPerPacketNs)} (UdpEngine::send_batch)`,
        target: '≤ 150 ns',
        met: ns.sendBatch <= 150,
      },
    ],
    raw: { wall, native, instructions: ir },
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const role = process.argv[2]
  const options = roleOptions()
  const main = role === 'callgrind' ? Promise.resolve().then(() => callgrindRole(options)) : timing(options)
  main.catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
