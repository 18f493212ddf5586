// The udpcom command end to end, as a user runs it: help, usage and OS errors (one line, the
// fix, exit code 2, no stack), `recv` against real senders (node:dgram on loopback, IPv4 and
// IPv6, and across a veth pair between two network namespaces), its three output modes (--json
// objects, plain lines, a status line on a terminal) and its exit codes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, chmodSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { CLI_MAIN, isRoot, jsonLines, oneLineError, runCli, runNode, startCli, startNode, until, vethPair } from './helpers.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const main = CLI_MAIN
const cli = runCli

/** Sends `count` datagrams of `size` bytes to host:port, `perTick` every ms. */
async function sendDatagrams(host, port, count, { size = 64, perTick = 10, type = 'udp4' } = {}) {
  const socket = dgram.createSocket(type)
  try {
    for (let sent = 0; sent < count; sent += perTick) {
      await Promise.all(
        Array.from({ length: Math.min(perTick, count - sent) }, () => new Promise((resolve, reject) => socket.send(Buffer.alloc(size), port, host, (e) => (e ? reject(e) : resolve())))),
      )
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
  } finally {
    socket.close()
  }
}

/** Starts `udpcom recv ... --json` and resolves with the run and the port it listens on. */
async function startRecv(args) {
  const run = startCli(['recv', ...args, '--json'])
  const listening = JSON.parse(await run.waitFor(/"type":"listening"/))
  return { run, port: listening.port }
}

test('help: the top level, every command, --version; exit 0', async () => {
  const top = await cli(['--help'])
  assert.equal(top.code, 0)
  for (const name of ['send', 'recv', 'ping', 'reflect', 'doctor', 'panel']) assert.match(top.stdout, new RegExp(`^  ${name} `, 'm'))
  assert.match(top.stdout, /Exit codes: 0 ok, 1 a measured problem/)
  assert.deepEqual((await cli([])).stdout, top.stdout)
  for (const name of ['send', 'recv', 'ping', 'reflect', 'doctor', 'panel']) {
    const help = await cli([name, '--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, new RegExp(`^usage: udpcom ${name}`))
    assert.match(help.stdout, /--json/)
    assert.deepEqual((await cli(['help', name])).stdout, help.stdout)
  }
  assert.match((await cli(['--version'])).stdout, /^udpcom \d+\.\d+\.\d+\n$/)
})

test('usage errors: one line naming the fix, exit 2', async () => {
  oneLineError(await cli(['bogus']), /^udpcom: unknown command 'bogus' \(commands: send, recv, ping, reflect, replay, capture, doctor, panel\)\. fix: see udpcom --help$/)
  oneLineError(await cli(['recv']), /give the port to listen on: udpcom recv \[HOST:\]PORT\. fix: see udpcom recv --help$/)
  oneLineError(await cli(['recv', '0', '--frob']), /Unknown option '--frob'\. fix: see udpcom recv --help$/)
  oneLineError(await cli(['recv', '0', '--count']), /--count.*fix: see udpcom recv --help$/)
  oneLineError(await cli(['recv', '0', '--count', '5x']), /--count '5x' is not a count \(for example 1000, 10k, 1.5M\)\. fix: see udpcom recv --help$/)
  oneLineError(await cli(['recv', '0', '--duration', '10x']), /--duration '10x' is not a duration/)
  oneLineError(await cli(['recv', '::1:5000']), /write an IPv6 address in brackets, as \[::1\]:5000/)
  oneLineError(await cli(['recv', 'example.com:5000']), /'example.com' is not an IP address/)
  oneLineError(await cli(['recv', '70000']), /'70000' is not a port \(0..65535; 0: any free port\)/)
  oneLineError(await cli(['recv', '0', '--timestamping', 'hardware']), /--timestamping 'hardware' must be software or none/)
  oneLineError(await cli(['recv', '0', '--priority', '100']), /--priority '100' must be a whole number from 1 to 99/)
  oneLineError(await cli(['doctor', 'extra']), /unexpected argument 'extra'\. fix: see udpcom doctor --help$/)
  // With --json the error is also a JSON object on stdout.
  const json = await cli(['recv', '--json'])
  assert.equal(json.code, 2)
  assert.deepEqual(Object.keys(jsonLines(json.stdout)[0]), ['type', 'code', 'message', 'fix'])
  assert.equal(jsonLines(json.stdout)[0].code, 'ERR_UDPCOM_USAGE')
})

test('OS errors: a port in use, an address not on this machine, a CPU that does not exist', async () => {
  const holder = dgram.createSocket('udp4')
  await new Promise((resolve) => holder.bind(0, '127.0.0.1', resolve))
  try {
    const inUse = await cli(['recv', `127.0.0.1:${holder.address().port}`, '--duration', '1s'])
    oneLineError(inUse, /^udpcom: bind EADDRINUSE 127\.0\.0\.1:\d+\. fix: pick another port, or find who holds it: ss -ulpn 'sport = :PORT'$/)
  } finally {
    holder.close()
  }
  oneLineError(await cli(['recv', '192.0.2.1:0', '--duration', '1s']), /EADDRNOTAVAIL.*fix: bind to an address of this machine \(ip -br addr\)/)
  oneLineError(await cli(['recv', '0', '--report', '/nonexistent/folder/r.html']), /^udpcom: ENOENT: no such file or directory, access '\/nonexistent\/folder'\. fix: check the path: its folder must exist$/)
  oneLineError(await cli(['recv', '0', '--cpu', '1000', '--duration', '1s']), /sched_setaffinity EINVAL cpu 1000\. fix: use a CPU this process may run on \(nproc: \d+ CPUs/)
})

test('as an unprivileged user: SCHED_FIFO refused and a low port, each one line with the fix', async (t) => {
  if (!isRoot) return t.skip('needs root to start a child as the unprivileged user nobody')
  // The checkout may sit in a folder only root can read: the child gets its own copy.
  const dir = mkdtempSync(join(tmpdir(), 'udpcom-cli-nobody-'))
  try {
    chmodSync(dir, 0o755)
    for (const folder of ['dist', 'native']) cpSync(join(root, folder), join(dir, folder), { recursive: true })
    cpSync(join(root, 'package.json'), join(dir, 'package.json'))
    execFileSync('chmod', ['-R', 'a+rX', dir])
    const copy = join(dir, 'dist/cli/main.js')
    const fifo = await runNode([copy, 'recv', '0', '--priority', '80', '--duration', '1s'], { uid: 65534 })
    oneLineError(fifo, /^udpcom: real-time scheduling was refused \(sched_setscheduler EPERM SCHED_FIFO priority 80\)\. fix: run as root, or grant CAP_SYS_NICE: sudo setcap cap_sys_nice\+ep .*ulimit -r 99.*or leave out --priority$/)
    oneLineError(await runNode([copy, 'recv', '80', '--duration', '1s'], { uid: 65534 }), /bind EACCES 0\.0\.0\.0:80\. fix: ports below 1024 need root or CAP_NET_BIND_SERVICE/)
    // The doctor says the same, as a verdict.
    const doctor = await runNode([copy, 'doctor', '--no-probe', '--json'], { uid: 65534 })
    assert.equal(doctor.code, 1, doctor.stderr)
    const permission = jsonLines(doctor.stdout).find((line) => line.id === 'rt-permission')
    assert.equal(permission.level, 'warn')
    assert.match(permission.fix, /CAP_SYS_NICE/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('recv --count: every datagram counted, JSON intervals and summary, exit 0', async () => {
  const { run, port } = await startRecv(['127.0.0.1:0', '--count', '2000', '--interval', '200ms'])
  await sendDatagrams('127.0.0.1', port, 2000, { size: 100 })
  const { code, stdout, stderr } = await run.exited
  assert.equal(code, 0, stderr)
  assert.equal(stderr, '')
  const lines = jsonLines(stdout)
  assert.equal(lines[0].type, 'listening')
  assert.deepEqual(lines[0], { type: 'listening', address: '127.0.0.1', port, count: 2000, durationNs: null })
  const summary = lines.at(-1)
  assert.equal(summary.type, 'summary')
  assert.equal(summary.received, 2000)
  assert.equal(summary.bytes, 200_000)
  assert.equal(summary.socketReceived, 2000)
  assert.equal(summary.dropped, 0)
  assert.equal(summary.ended, 'count')
  assert.deepEqual(summary.problems, [])
  assert.equal(summary.exitCode, 0)
  assert.ok(summary.ratePps > 0 && summary.bitRate > 0)
  assert.ok(summary.interArrivalMinNs <= summary.interArrivalMeanNs && summary.interArrivalMeanNs <= summary.interArrivalMaxNs)
  assert.ok(summary.deliveryP50Ns > 0 && summary.deliveryP50Ns <= summary.deliveryMaxNs)
  const intervals = lines.filter((l) => l.type === 'interval')
  assert.ok(intervals.length >= 1)
  assert.equal(intervals.at(-1).received, 2000, 'the last interval has every datagram')
  for (const interval of intervals) {
    for (const key of ['timeS', 'intervalNs', 'received', 'ratePps', 'bitRate', 'dropped', 'droppedTotal', 'interArrivalMeanNs', 'interArrivalJitterNs', 'interArrivalMaxNs', 'deliveryP99Ns']) {
      assert.ok(key in interval, `${key} in ${JSON.stringify(interval)}`)
    }
  }
})

test('recv on IPv6, plain lines when stdout is not a terminal', async () => {
  const run = startCli(['recv', '[::1]:0', '--count', '300', '--interval', '200ms'])
  const port = Number(/listening on \[::1\]:(\d+)/.exec(await run.waitFor(/listening on/))[1])
  await sendDatagrams('::1', port, 300, { type: 'udp6' })
  const { code, stdout } = await run.exited
  assert.equal(code, 0)
  assert.doesNotMatch(stdout, /\x1b/, 'no terminal escapes in a pipe')
  assert.match(stdout, /^ +\d+\.\d s {2}received [\d,]+ {2}[\d.]+ k?pps/m, 'interval lines')
  assert.match(stdout, /^udpcom recv \[::1\]:\d+: count reached$/m)
  assert.match(stdout, /^ {2}received +300$/m)
  assert.match(stdout, /^ {2}dropped by the kernel \(buffer full\) +0$/m)
})

test('recv on a terminal: a status line rewritten in place, then the summary', async (t) => {
  // script(1) gives the command a pseudo-terminal.
  if (spawnSync('script', ['--version']).error) return t.skip('needs script(1) from util-linux for a pseudo-terminal')
  const port = await new Promise((resolve) => {
    const probe = dgram.createSocket('udp4')
    probe.bind(0, '127.0.0.1', () => {
      const { port: free } = probe.address()
      probe.close(() => resolve(free))
    })
  })
  const run = startNode(['-qec', `${process.execPath} ${main} recv 127.0.0.1:${port} --duration 2s`, '/dev/null'], { command: 'script', env: { COLUMNS: '120' } })
  await run.waitFor(/listening on/)
  await sendDatagrams('127.0.0.1', port, 500)
  const { code, stdout } = await run.exited
  assert.equal(code, 0, stdout)
  // \r + "erase line", then the status: several times.
  const updates = stdout.match(/\r\x1b\[2Krecv 127\.0\.0\.1:\d+ {2}[\d.]+ s {2}received [\d,]+ {2}.*pps {2}.*bit\/s {2}dropped \d+ {2}p99 delivery/g) ?? []
  assert.ok(updates.length >= 3, `status updates: ${updates.length}\n${JSON.stringify(stdout)}`)
  assert.match(stdout, /received +500/)
})

test('recv --duration: fewer than --count, or nothing at all, is a measured problem: exit 1', async () => {
  const { run, port } = await startRecv(['127.0.0.1:0', '--count', '1000', '--duration', '1500ms'])
  await sendDatagrams('127.0.0.1', port, 100)
  const short = await run.exited
  assert.equal(short.code, 1, short.stderr)
  const summary = jsonLines(short.stdout).at(-1)
  assert.equal(summary.received, 100)
  assert.equal(summary.ended, 'duration')
  assert.deepEqual(summary.problems, ['only 100 of 1,000 datagrams arrived'])
  const nothing = await cli(['recv', '127.0.0.1:0', '--duration', '300ms'])
  assert.equal(nothing.code, 1)
  assert.match(nothing.stdout, /no datagram arrived/)
})

test('recv until Ctrl-C: SIGINT ends it with the summary', async () => {
  const { run, port } = await startRecv(['127.0.0.1:0'])
  await sendDatagrams('127.0.0.1', port, 50)
  await until(() => false || run.output().stdout.includes('"received":50'), 10_000, 'an interval with the 50 datagrams')
  run.kill('SIGINT')
  const { code, stdout } = await run.exited
  assert.equal(code, 0)
  const summary = jsonLines(stdout).at(-1)
  assert.equal(summary.ended, 'interrupted')
  assert.equal(summary.received, 50)
})

test('recv across a veth pair: a sender in another network namespace', async (t) => {
  if (!isRoot) return t.skip('needs root to create network namespaces')
  const hosts = vethPair('cl', '10.201.9')
  const [nsA, nsB] = [hosts.a.ns, hosts.b.ns]
  try {
    const run = startNode(['netns', 'exec', nsB, process.execPath, main, 'recv', '10.201.9.2:0', '--count', '1000', '--duration', '10s', '--json'], { command: 'ip' })
    const { port } = JSON.parse(await run.waitFor(/"type":"listening"/))
    // Ten at a time, each batch once the last one left (closing a socket cancels what it has not sent).
    const sender = `const s = require('dgram').createSocket('udp4'); let n = 0;
      const send = () => new Promise((resolve) => s.send(Buffer.alloc(200), ${port}, '10.201.9.2', resolve));
      (async () => { while (n < 1000) { await Promise.all(Array.from({ length: 10 }, send)); n += 10; await new Promise((r) => setTimeout(r, 1)) } s.close() })()`
    execFileSync('ip', ['netns', 'exec', nsA, process.execPath, '-e', sender])
    const { code, stdout, stderr } = await run.exited
    assert.equal(code, 0, `${stderr}\n${stdout}`)
    const summary = jsonLines(stdout).at(-1)
    assert.equal(summary.received, 1000)
    assert.equal(summary.bytes, 200_000)
  } finally {
    hosts.remove()
  }
})

test('output into a pipe whose reader went away (| head -1): the command ends quietly, no stack', () => {
  const result = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${main}" recv 127.0.0.1:0 --duration 5s --interval 100ms | head -1`], { encoding: 'utf8', timeout: 20_000 })
  assert.match(result.stdout, /^udpcom recv: listening on 127\.0\.0\.1:\d+/)
  assert.equal(result.stderr, '')
  assert.equal(result.status, 0)
})
