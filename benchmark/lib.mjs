// Shared helpers of the benchmark: child processes (Node roles and the Rust instruments in
// engine/examples), CPU placement, statistics and formatting.
//
// Every measurement runs in child processes so that each side has its own event loop and
// CPU placement. Children talk line by line: `READY <port>` once listening, then one JSON
// line per result; commands (`report`, `quit`) go to their stdin.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleepMs } from 'node:timers/promises'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const BIN = (name) => `${ROOT}target/release/examples/${name}`
export const require = createRequire(import.meta.url)
export const loadUdpCom = () => require('..').UdpCom
export const now = () => process.hrtime.bigint()
export const sleep = sleepMs

/**
 * CPU placement (the VM has CPUs 0 and 1). The thread that makes the send system calls gets
 * CPU 1: udpcom's worker threads, node:dgram's JavaScript thread, the native load generator.
 * The independent receiver/stamper and the JavaScript thread that only feeds udpcom's ring
 * get CPU 0.
 */
export const CPU = { APP: 0, IO: 1, INSTRUMENT: 0 }

/** The SCHED_FIFO priority of udpcom's timed sender, and of the processes compared with it. */
export const RT_PRIORITY = 80

/**
 * Whether this benchmark may start processes under SCHED_FIFO (`chrt -f`): root (or
 * CAP_SYS_NICE) and the chrt tool. Null if it may, else why not.
 */
export const rtUnavailable = (() => {
  let cached
  return () => {
    if (cached === undefined) {
      const probe = spawnSync('chrt', ['-f', String(RT_PRIORITY), 'true'], { stdio: 'ignore' })
      cached = probe.error ? 'chrt is not installed' : probe.status !== 0 ? 'SCHED_FIFO is not permitted (needs root or CAP_SYS_NICE)' : null
    }
    return cached
  }
})()

/**
 * A child process speaking the line protocol. `cpu` pins the whole process (taskset), `rt`
 * runs it under SCHED_FIFO at that priority (chrt -f; every thread it creates inherits both),
 * `netns` runs it in that network namespace (ip netns exec).
 */
export class Child {
  constructor(command, args, { cpu, rt, netns, name = command } = {}) {
    let [cmd, argv] = [command, args]
    if (netns !== undefined) [cmd, argv] = ['ip', ['netns', 'exec', netns, cmd, ...argv]]
    if (cpu !== undefined) [cmd, argv] = ['taskset', ['-c', String(cpu), cmd, ...argv]]
    if (rt !== undefined) [cmd, argv] = ['chrt', ['-f', String(rt), cmd, ...argv]]
    this.name = name
    this.proc = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] })
    this.lines = []
    this.waiters = []
    this.stderr = ''
    let buffer = ''
    this.proc.stdout.setEncoding('utf8')
    this.proc.stdout.on('data', (chunk) => {
      buffer += chunk
      let nl
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        const waiter = this.waiters.shift()
        if (waiter) waiter.resolve(line)
        else this.lines.push(line)
      }
    })
    this.proc.stderr.on('data', (d) => { this.stderr += d })
    this.proc.stdin.on('error', () => {})
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`${this.name} exited (${code ?? signal}) before answering\n${this.stderr}`))
      resolve({ code, signal })
    }))
  }

  /** The next stdout line. */
  line(timeoutMs = 60_000) {
    if (this.lines.length > 0) return Promise.resolve(this.lines.shift())
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
      return Promise.reject(new Error(`${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode})\n${this.stderr}`))
    }
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject }
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        reject(new Error(`${this.name}: no answer within ${timeoutMs} ms\n${this.stderr}`))
      }, timeoutMs)
      waiter.resolve = (v) => { clearTimeout(timer); resolve(v) }
      waiter.reject = (e) => { clearTimeout(timer); reject(e) }
      this.waiters.push(waiter)
    })
  }

  /** Waits for `READY <port>`; returns the port. */
  async ready(timeoutMs = 30_000) {
    const line = await this.line(timeoutMs)
    const match = /^READY (\d+)/.exec(line)
    if (!match) throw new Error(`${this.name}: expected READY, got ${line}\n${this.stderr}`)
    return Number(match[1])
  }

  /** The next stdout line, parsed as JSON. */
  async json(timeoutMs) {
    const line = await this.line(timeoutMs)
    try {
      return JSON.parse(line)
    } catch {
      throw new Error(`${this.name}: expected JSON, got ${line}\n${this.stderr}`)
    }
  }

  send(command) {
    this.proc.stdin.write(`${command}\n`)
  }

  /** Sends a command and returns the JSON answer. */
  async ask(command, timeoutMs) {
    this.send(command)
    return this.json(timeoutMs)
  }

  /** Closes stdin (which ends every child of the benchmark) and waits for the exit. */
  async close(timeoutMs = 10_000) {
    this.proc.stdin.end()
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs)
    const result = await this.exited
    clearTimeout(timer)
    return result
  }

  kill() {
    this.proc.kill('SIGKILL')
  }
}

/**
 * Waits until an independent receiver (stamp_receiver) has `expected` datagrams, or until its
 * count stops growing for `quietMs`; returns its measurement (without ending it).
 */
export async function settle(receiver, expected, quietMs = 300) {
  let last = -1
  for (;;) {
    await sleepMs(quietMs)
    const result = await receiver.ask('peek')
    if (result.count >= expected || result.count === last) return result
    last = result.count
  }
}

/** A connected node:dgram socket whose send errors are counted, not thrown. */
export async function dgramSocket(port, options = {}) {
  const dgram = await import('node:dgram')
  const socket = dgram.createSocket({ type: 'udp4', ...options })
  socket.errors = 0
  socket.on('error', () => { socket.errors++ })
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  if (port) await new Promise((resolve) => socket.connect(port, '127.0.0.1', resolve))
  return socket
}

/** A Rust instrument from engine/examples. */
export const tool = (name, args, options) => new Child(BIN(name), args.map(String), { name, ...options })

/** A Node role of a benchmark section: `node <script> <role> '<json options>'`. */
export const nodeRole = (script, role, options = {}, { cpu, rt, netns, nodeArgs = [] } = {}) =>
  new Child(process.execPath, [...nodeArgs, fileURLToPath(script), role, JSON.stringify(options)], {
    cpu,
    rt,
    netns,
    name: `${role}`,
  })

/** Inside a role: its options, and how to answer. */
export const roleOptions = () => JSON.parse(process.argv[3] ?? '{}')
export const emit = (value) => process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`)

/** Inside a role: calls `handler(command)` for each stdin line; `quit` or end of input ends. */
export function onCommands(handler, onQuit = () => process.exit(0)) {
  let buffer = ''
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (chunk) => {
    buffer += chunk
    let nl
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const command = buffer.slice(0, nl).trim()
      buffer = buffer.slice(nl + 1)
      if (command === 'quit') onQuit()
      else handler(command)
    }
  })
  process.stdin.on('end', onQuit)
}

/** Busy-waits (the event loop is blocked) for `ms`. */
export function blockFor(ms) {
  const end = now() + BigInt(Math.round(ms * 1e6))
  while (now() < end);
}

export const median = (values) => summarize(values).median

/**
 * Median (of an even count, the lower of the two middle values), smallest and largest of the
 * repeats' values. A repeat that gave no number (it failed, or measured nothing) is not dropped
 * silently: `failed` counts it.
 */
export function summarize(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  return {
    median: sorted.length === 0 ? NaN : sorted[Math.floor((sorted.length - 1) / 2)],
    min: sorted.length === 0 ? NaN : sorted[0],
    max: sorted.length === 0 ? NaN : sorted.at(-1),
    n: sorted.length,
    failed: values.length - sorted.length,
  }
}

/**
 * Runs one repeat of a measurement. If it throws, the failure is kept as `{ failed: message }`
 * (and said on stderr) instead of ending the benchmark, so the sample shows it.
 */
export async function attempt(what, measure) {
  try {
    return await measure()
  } catch (error) {
    const message = String(error?.message ?? error)
    process.stderr.write(`\nbench: ${what} failed: ${message.split('\n')[0]}\n`)
    return { failed: message }
  }
}

/** How many of the runs failed (see attempt). */
export const failedRuns = (runs) => runs.filter((r) => r?.failed !== undefined).length

/** The runs that did not fail. */
export const goodRuns = (runs) => runs.filter((r) => r?.failed === undefined)

/** a / b, or NaN unless both are positive finite numbers: a zero result never divides. */
export const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && a > 0 && b > 0 ? a / b : NaN)

/**
 * A row's verdict: null (inconclusive) when a figure it rests on is missing, with a note that
 * says which; else whether `condition` holds.
 */
export function verdict(condition, figures, notes = []) {
  const missing = Object.entries(figures).filter(([, v]) => !Number.isFinite(v)).map(([k]) => k)
  if (missing.length > 0) return { met: null, note: [...notes, `not measured: ${missing.join(', ')}`].join('; ') }
  return { met: Boolean(condition), note: notes.length > 0 ? notes.join('; ') : undefined }
}

/** The note for a row whose sample lost repeats: "2 of 5 repeats failed". */
export function failureNote(failed, total, what = '') {
  return failed > 0 ? `${failed} of ${total} ${what}${what ? ' ' : ''}repeats failed (see the raw JSON)` : null
}
/** Nearest-rank percentile of an unsorted array of numbers. */
export function percentile(values, q) {
  const sorted = Float64Array.from(values).sort()
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length))) - 1]
}

/** A free UDP port on 127.0.0.1 (bound and released). */
export async function freePort() {
  const dgram = await import('node:dgram')
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  await new Promise((resolve) => socket.close(resolve))
  return port
}

/** CPU time (ns) of each thread of this process: [{ tid, comm, ns }]. */
function threadTimes() {
  const times = []
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()
      times.push({ tid: Number(tid), comm, ns: Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) })
    } catch {
      // The thread ended meanwhile.
    }
  }
  return times
}

/**
 * Inside a role: starts measuring this process's CPU time; the function it returns gives the
 * CPU time since then: the whole process (every thread, those that ended included:
 * process.cpuUsage), the JavaScript thread (the main thread) and udpcom's workers by name
 * (schedstat, exact ns).
 */
export function cpuMeter() {
  const usage = process.cpuUsage()
  const before = new Map(threadTimes().map((t) => [t.tid, t.ns]))
  return () => {
    const { user, system } = process.cpuUsage(usage)
    const result = { processNs: (user + system) * 1000, jsNs: 0, workersNs: {} }
    for (const t of threadTimes()) {
      const ns = t.ns - (before.get(t.tid) ?? 0)
      if (t.tid === process.pid) result.jsNs = ns
      else if (t.comm.startsWith('udpcom-')) result.workersNs[t.comm] = (result.workersNs[t.comm] ?? 0) + ns
    }
    return result
  }
}

/** CPU time (ns) of this process's threads whose name starts with `prefix` (all: ''), and
 * how many such threads there are. */
export function threadCpuNs(prefix = '') {
  let total = 0
  let threads = 0
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()
      if (!comm.startsWith(prefix)) continue
      threads++
      // schedstat: time on CPU in ns (exact); stat: utime+stime in clock ticks (10 ms).
      const schedstat = `/proc/self/task/${tid}/schedstat`
      if (existsSync(schedstat)) {
        total += Number(readFileSync(schedstat, 'utf8').split(' ')[0])
      } else {
        const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')
        total += (Number(fields[11]) + Number(fields[12])) * 1e7
      }
    } catch {
      // The thread ended meanwhile.
    }
  }
  return { ns: total, threads }
}

// Formatting.
export const fmtPps = (v) => (Number.isFinite(v) ? `${fmtKilo(v)} pps` : 'n/a')
const fmtKilo = (v) => (Number.isFinite(v) ? `${Math.round(v / 1000).toLocaleString('en-US')}k` : 'n/a')
export const fmtNs = (v) => {
  if (!Number.isFinite(v)) return 'n/a'
  const a = Math.abs(v)
  if (a < 1e3) return `${Math.round(v)} ns`
  if (a < 1e6) return `${(v / 1e3).toFixed(a < 1e4 ? 2 : 1)} µs`
  if (a < 1e9) return `${(v / 1e6).toFixed(a < 1e7 ? 2 : 1)} ms`
  return `${(v / 1e9).toFixed(2)} s`
}
export const fmtLat = (s) => (s ? `${fmtNs(s.p50)} / ${fmtNs(s.p99)} / ${fmtNs(s.p999)} / ${fmtNs(s.max)}` : 'n/a')
export const fmtRatio = (v) => (Number.isFinite(v) ? `${v >= 10 ? v.toFixed(0) : v.toFixed(2)}×` : 'n/a')
/** The median of a summary with its range across the repeats: "median (min–max)". */
export const fmtSpread = (s, fmt) => {
  if (s.n <= 1) return fmt(s.median)
  // Packet rates: "230k pps (228k–240k)".
  const range = fmt === fmtPps ? fmtKilo : fmt
  return `${fmt(s.median)} (${range(s.min)}–${range(s.max)})`
}
/** Lateness or round-trip percentiles across repeats: the median of each, the range of the p99,
 * and the worst maximum of any repeat (a median of maxima would hide the worst). */
export function fmtPercentiles(runs, keys = ['p50', 'p99', 'p999']) {
  const parts = keys.map((k) => (k === 'p99' ? fmtSpread(summarize(runs.map((r) => r[k])), fmtNs) : fmtNs(summarize(runs.map((r) => r[k])).median)))
  return `${parts.join(' / ')} / ${fmtNs(summarize(runs.map((r) => r.max)).max)}`
}
export const fmtCount = (v) => (Number.isFinite(v) ? v.toLocaleString('en-US') : 'n/a')
/** CPU time per packet, from the figures of several repeats. */
export const fmtCpu = (values) => `CPU ${fmtSpread(summarize(values), fmtNs)}/packet`

const readText = (path) => {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return null
  }
}

/**
 * What the figures depend on besides the code: CPU frequency governor, clocksource, CPUs
 * taken away from the scheduler (isolcpus, nohz_full), RT throttling, socket buffer limits,
 * the hypervisor, and the commit the addon was built from. The machine's facts are read by
 * lib/machine.ts, the module `udpcom doctor` uses.
 */
export function environment() {
  const facts = require('../dist/machine.js').readMachineFacts()
  const git = (...args) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return null
    }
  }
  const addon = `${ROOT}native/udpcom.linux-x64-gnu.node`
  const governors = new Set(facts.governors.map((g) => g.governor))
  return {
    governor: governors.size > 0 ? [...governors].join(', ') : 'none (no cpufreq)',
    clocksource: facts.clocksource,
    isolcpus: facts.isolatedCpus.join(',') || 'none',
    nohzFull: facts.nohzFullCpus.join(',') || 'none',
    schedRtRuntimeUs: facts.schedRtRuntimeUs,
    schedRtPeriodUs: facts.schedRtPeriodUs,
    rmemMax: facts.rmemMaxBytes,
    wmemMax: facts.wmemMaxBytes,
    hypervisor: facts.hypervisor ?? 'none',
    commit: git('rev-parse', '--short=12', 'HEAD') ?? 'unknown (not a git checkout)',
    // Tracked files changed since that commit: the build is then not exactly the commit.
    dirty: (git('status', '--porcelain', '--untracked-files=no') ?? '') !== '',
    addonBuilt: existsSync(addon) ? statSync(addon).mtime.toISOString() : null,
  }
}

/**
 * The receive buffer the kernel gave the UDP socket bound to 127.0.0.1:port, as `ss` sees it
 * from outside the process (skmem rb: bytes, twice what was asked, as the kernel reports it).
 */
export function socketRecvBuffer(port) {
  try {
    const out = execFileSync('ss', ['-u', '-a', '-m', '-n', '-H', `sport = :${port}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    const rb = /rb(\d+)/.exec(out)
    return rb ? Number(rb[1]) : null
  } catch {
    return null
  }
}

/**
 * Makes net.core.rmem_max at least `bytes` for a while, so that a process that can only ask
 * (SO_RCVBUF, as node:dgram does) gets the buffer a privileged one forces (SO_RCVBUFFORCE, as
 * udpcom does). Returns { before, during, restore() }; nothing changes when it is already
 * large enough or when this process may not change it (then `during` is what it stays).
 */
export function raiseRmemMax(bytes) {
  const path = '/proc/sys/net/core/rmem_max'
  const before = Number(readText(path))
  if (before >= bytes) return { before, during: before, restore: () => {} }
  try {
    writeFileSync(path, String(bytes))
  } catch {
    return { before, during: before, restore: () => {} }
  }
  const restore = () => {
    try {
      writeFileSync(path, String(before))
    } catch {
      // Nothing more can be done; the value is in the raw results.
    }
  }
  process.once('exit', restore)
  return { before, during: bytes, restore }
}

/**
 * What the rest of the machine is doing: CPU time (clock ticks) of every process outside this
 * benchmark's process tree (kernel threads excluded), and user threads outside it that run
 * SCHED_FIFO or SCHED_RR. The VM is shared, so the benchmark records how busy the rest of it
 * was (see NoiseMonitor).
 */
export function machineSnapshot(rootPid = process.pid) {
  const procs = new Map()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const close = stat.lastIndexOf(')')
      const fields = stat.slice(close + 2).split(' ')
      procs.set(Number(entry), {
        comm: stat.slice(stat.indexOf('(') + 1, close),
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]),
      })
    } catch {
      // Gone meanwhile.
    }
  }
  const ours = (pid) => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = procs.get(p)?.ppid ?? 0, hops++) if (p === rootPid) return true
    return false
  }
  const kernel = (pid) => pid === 2 || procs.get(pid)?.ppid === 2
  const ticks = new Map()
  const rt = new Set()
  for (const [pid, p] of procs) {
    if (ours(pid) || kernel(pid)) continue
    ticks.set(pid, p.ticks)
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
        const close = stat.lastIndexOf(')')
        const fields = stat.slice(close + 2).split(' ')
        // Field 41 (policy) is index 38 after the command: 1 FIFO, 2 RR.
        if (fields[38] === '1' || fields[38] === '2') rt.add(`${stat.slice(stat.indexOf('(') + 1, close)}(${p.comm} ${pid})`)
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return { at: Number(process.hrtime.bigint()), ticks, rt }
}

/** /proc/stat's CPU lines: per CPU (and 'cpu', all), [steal, total] in clock ticks. */
function cpuTicks() {
  const ticks = {}
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    if (!line.startsWith('cpu')) continue
    const [name, ...fields] = line.split(/\s+/)
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    const values = fields.slice(0, 8).map(Number)
    ticks[name] = [values[7], values.reduce((a, b) => a + b, 0)]
  }
  return ticks
}

/**
 * Samples machineSnapshot every second; `take()` returns what other processes did since, and
 * the share of time the hypervisor took the CPUs away (steal time, from /proc/stat).
 */
export class NoiseMonitor {
  constructor() {
    this.last = machineSnapshot()
    this.ticks0 = cpuTicks()
    this.reset()
    this.timer = setInterval(() => this.sample(), 1000)
    this.timer.unref()
  }

  reset() {
    this.since = this.last.at
    this.ticks = 0
    this.rt = new Set()
  }

  sample() {
    const next = machineSnapshot()
    for (const [pid, t] of next.ticks) this.ticks += t - (this.last.ticks.get(pid) ?? 0)
    for (const name of next.rt) this.rt.add(name)
    this.last = next
  }

  /**
   * { otherCpuShare: 0..1 of all CPUs, otherRtThreads: [...], steal: { cpu: 0..1, cpu0: ... } }
   * since the last take().
   */
  take() {
    this.sample()
    const seconds = (this.last.at - this.since) / 1e9
    const ticks = cpuTicks()
    const steal = {}
    for (const [name, [stolen, total]] of Object.entries(ticks)) {
      const [stolen0, total0] = this.ticks0[name] ?? [0, 0]
      steal[name] = total > total0 ? (stolen - stolen0) / (total - total0) : 0
    }
    this.ticks0 = ticks
    const result = { otherCpuShare: this.ticks / 100 / seconds / cpus().length, otherRtThreads: [...this.rt], steal }
    this.reset()
    return result
  }

  stop() {
    clearInterval(this.timer)
  }
}

/**
 * Two network namespaces joined by a veth pair (`veth0` on both sides, up, with `sender` and
 * `receiver` /24 addresses); returns their names and a function that removes them. As root.
 */
export function vethNamespaces(tag, sender, receiver) {
  const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const id = `${process.pid % 100_000}${Math.floor(Math.random() * 1000)}`
  const ns = { send: `udpcom-${tag}-tx-${id}`, receive: `udpcom-${tag}-rx-${id}` }
  const remove = () => {
    for (const name of Object.values(ns)) spawnSync('ip', ['netns', 'del', name])
  }
  try {
    for (const name of Object.values(ns)) {
      ip('netns', 'add', name)
      ip('-n', name, 'link', 'set', 'lo', 'up')
    }
    ip('link', 'add', 'veth0', 'netns', ns.send, 'type', 'veth', 'peer', 'name', 'veth0', 'netns', ns.receive)
    for (const [name, address] of [[ns.send, sender], [ns.receive, receiver]]) {
      ip('-n', name, 'addr', 'add', `${address}/24`, 'dev', 'veth0')
      ip('-n', name, 'link', 'set', 'veth0', 'up')
    }
  } catch (error) {
    remove()
    throw error
  }
  return { ns, remove }
}
