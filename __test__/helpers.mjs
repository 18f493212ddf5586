// Shared helpers for the node --test suite. Every socket uses port 0 (or the port the kernel
// gave its peer), and every wait has a timeout, so tests neither collide nor hang.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { startedPair } from './fixtures/shared.mjs'

const require = createRequire(import.meta.url)
export const { UdpCom } = require('..')

export const now = () => process.hrtime.bigint()
export const MS = 1_000_000n

/**
 * A started receive-only instance (unconnected: it hears anyone) and a started send-only
 * instance connected to it, on `ip`. `close()` closes both.
 */
export const pair = (senderOptions = {}, receiverOptions = {}, ip = '127.0.0.1') =>
  startedPair(UdpCom, { ip, sender: senderOptions, receiver: receiverOptions })

/** Rejects if `promise` does not settle within `ms`. */
export function within(ms, promise, what = 'operation') {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Collects `count` packets with a per-packet timeout. */
export async function receiveMany(receiver, count, timeoutNs = 2_000_000_000n) {
  const packets = []
  for (let i = 0; i < count; i++) {
    const packet = await receiver.receiveData(timeoutNs)
    if (packet === null) throw new Error(`only ${i} of ${count} packets arrived`)
    packets.push(packet)
  }
  return packets
}

/** Threads of this process, by name (`udpcom-send`, `udpcom-recv`, ...). */
export function threads() {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      return [{ tid: Number(tid), comm: readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() }]
    } catch {
      // The thread ended between the listing and the read.
      return []
    }
  })
}

export const udpcomThreads = () => threads().filter((t) => t.comm.startsWith('udpcom-'))

/**
 * How often a thread of this process has been scheduled in so far (the third field of its
 * schedstat), and its state letter ('S' sleeping, 'R' running...). A parked thread that
 * nothing woke keeps its count.
 */
export function threadActivity(tid) {
  const runs = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').trim().split(' ')[2])
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
  return { runs, state: stat[stat.lastIndexOf(')') + 2] }
}

/** Scheduling policy (0 other, 1 FIFO), RT priority and allowed CPUs of a thread. */
export function threadScheduling(tid) {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // Fields after the command: index 0 is field 3 (state); rt_priority is field 40, policy 41.
  const status = readFileSync(`/proc/self/task/${tid}/status`, 'utf8')
  const cpus = /Cpus_allowed_list:\s*(\S+)/.exec(status)[1]
  return { rtPriority: Number(fields[37]), policy: Number(fields[38]), cpus }
}

export const isRoot = process.getuid?.() === 0

/** Asserts a failed run printed exactly one line on stderr, matching `pattern`, and no stack. */
export function oneLineError(run, pattern, code = 2) {
  assert.equal(run.code, code, run.stderr)
  const lines = run.stderr.trim().split('\n')
  assert.equal(lines.length, 1, `one line: ${run.stderr}`)
  assert.match(lines[0], pattern)
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace')
}

/** Runs a node script; resolves with { code, signal, stdout, stderr, ms }. */
export function runNode(args, { timeoutMs = 20_000, env = {}, uid } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(uid === undefined ? {} : { uid, gid: uid }),
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`node ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
}

/**
 * Starts a node script (or any command with `command`) and returns at once:
 * `waitFor(regex, ms)` resolves with the first stdout line matching `regex` (rejects after
 * `ms`), `exited` resolves like runNode's result, `kill(signal)` signals it. The child is
 * SIGKILLed after `timeoutMs` so nothing outlives the test.
 */
export function startNode(args, { timeoutMs = 30_000, env = {}, command = process.execPath } = {}) {
  const started = Date.now()
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const watchers = new Set()
  child.stdout.on('data', (d) => {
    stdout += d
    for (const w of watchers) w()
  })
  child.stderr.on('data', (d) => { stderr += d })
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(killer)
      for (const w of watchers) w()
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })
  const waitFor = (regex, ms = 10_000) => new Promise((resolve, reject) => {
    const check = () => {
      const line = stdout.split('\n').find((l) => regex.test(l))
      if (line !== undefined) done(resolve, line)
      else if (child.exitCode !== null || child.signalCode !== null) {
        done(reject, new Error(`exited before printing ${regex}\n${stdout}\n${stderr}`))
      }
    }
    const timer = setTimeout(() => done(reject, new Error(`no ${regex} within ${ms} ms\n${stdout}\n${stderr}`)), ms)
    const done = (settle, value) => {
      clearTimeout(timer)
      watchers.delete(check)
      settle(value)
    }
    watchers.add(check)
    check()
  })
  return { child, waitFor, exited, kill: (signal) => child.kill(signal), output: () => ({ stdout, stderr }) }
}

/** Polls `condition` every few ms until it is true; rejects after `ms`. */
export async function until(condition, ms, what = 'condition') {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/**
 * Runs a fixture script as the unprivileged user nobody (needs root); resolves like runNode.
 * The checkout may sit in a folder only root can read, so the child gets its own copy of the
 * package (dist, native) and of the script, loaded through UDPCOM_MODULE; the copy is removed.
 */
export async function runAsNobody(script) {
  const dir = mkdtempSync(join(tmpdir(), 'udpcom-nobody-'))
  chmodSync(dir, 0o755)
  const root = fileURLToPath(new URL('..', import.meta.url))
  try {
    for (const folder of ['dist', 'native']) {
      mkdirSync(join(dir, folder), { mode: 0o755 })
      for (const file of readdirSync(join(root, folder)).filter((f) => /\.(js|node)$/.test(f))) {
        copyFileSync(join(root, folder, file), join(dir, folder, file))
      }
    }
    const copy = join(dir, basename(script))
    copyFileSync(script, copy)
    return await runNode([copy], { uid: 65534, env: { UDPCOM_MODULE: join(dir, 'dist/index.js') } })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Two hosts on this machine (root): network namespaces `a` and `b` joined by a veth pair,
 * addresses `${subnet}.1` and `${subnet}.2`/24, both links up, names unique per call.
 * `remove()` deletes both namespaces (and so the pair).
 */
export function vethPair(tag, subnet) {
  const id = `${process.pid % 100_000}${Math.floor(Math.random() * 1000)}`
  const pair = {
    a: { ns: `udpcom-${tag}a-${id}`, veth: `${tag}a${id}`.slice(0, 15), address: `${subnet}.1` },
    b: { ns: `udpcom-${tag}b-${id}`, veth: `${tag}b${id}`.slice(0, 15), address: `${subnet}.2` },
    remove() {
      for (const side of [pair.a, pair.b]) spawnSync('ip', ['netns', 'del', side.ns])
    },
  }
  const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  try {
    ip('netns', 'add', pair.a.ns)
    ip('netns', 'add', pair.b.ns)
    ip('link', 'add', pair.a.veth, 'netns', pair.a.ns, 'type', 'veth', 'peer', 'name', pair.b.veth, 'netns', pair.b.ns)
    for (const side of [pair.a, pair.b]) {
      ip('-n', side.ns, 'addr', 'add', `${side.address}/24`, 'dev', side.veth)
      ip('-n', side.ns, 'link', 'set', side.veth, 'up')
    }
  } catch (error) {
    pair.remove()
    throw error
  }
  return pair
}

/** The udpcom command (dist/cli/main.js), run as a user runs it. */
export const CLI_MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))
export const runCli = (args, options) => runNode([CLI_MAIN, ...args], options)
export const startCli = (args, options) => startNode([CLI_MAIN, ...args], options)
/** The JSON objects of a command's --json output, one per line. */
export const jsonLines = (stdout) => stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))

/** A UDP port nobody listens on (bound, then closed). */
export async function freePort() {
  const { default: dgram } = await import('node:dgram')
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  await new Promise((resolve) => socket.close(resolve))
  return port
}
