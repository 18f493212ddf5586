// Replay and capture against the tools that define the formats: files tcpdump and tshark
// record are replayed in order with their gaps; files udpcom writes are read by tshark and
// tcpdump and say exactly what was received; capture → replay → capture keeps payloads and
// gaps. (The reader's robustness is the fuzz target's job: engine/fuzz, scripts/fuzz-pcap.sh.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import dgram from 'node:dgram'

import { UdpCom, isRoot, within, receiveMany, startNode, until, now, MS } from './helpers.mjs'

const dir = mkdtempSync(join(tmpdir(), 'udpcom-pcap-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
let files = 0
const file = (ext) => join(dir, `f${++files}.${ext}`)

/** Why `tool` cannot be used here, or null. */
function missing(tool, args = ['--version']) {
  const run = spawnSync(tool, args, { encoding: 'utf8' })
  if (run.error) return `${tool} cannot be run (${run.error.code}); .ci/run installs it (Debian package ${tool === 'tcpdump' ? 'tcpdump' : 'tshark'})`
  return null
}
const noTcpdump = missing('tcpdump')
const noTshark = missing('tshark', ['-v'])
const noRoot = isRoot ? null : 'capturing on an interface with tcpdump/tshark needs root'

/**
 * Starts `tool` capturing `count` UDP datagrams to `port` on `iface` into `path`; resolves once
 * it listens. `stop()` resolves when the tool has written them and exited: it stops by itself
 * after `count` (dumpcap has no immediate mode, so a SIGINT could lose its last buffered block).
 */
async function startTool(tool, iface, port, path, count) {
  const args =
    tool === 'tcpdump'
      ? ['-i', iface, '-n', '-U', '--immediate-mode', '--time-stamp-precision=nano', '-c', String(count), '-w', path, `udp port ${port}`]
      : ['-i', iface, '-n', '-F', 'pcapng', '-c', String(count), '-w', path, '-f', `udp port ${port}`]
  const child = spawn(tool, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  const exited = new Promise((resolve) => child.once('exit', resolve))
  await within(20_000, new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      stderr += chunk
      // tshark says 'Capturing on' before its dumpcap captures; 'Capture started' after.
      if (/listening on|Capture started/.test(stderr)) resolve()
    })
    child.once('exit', (code) => reject(new Error(`${tool} exited (${code}): ${stderr}`)))
  }), `${tool} to listen`)
  return {
    async stop() {
      try {
        await within(20_000, exited, `${tool} to capture ${count} datagrams and exit`)
      } finally {
        child.kill('SIGINT')
      }
    },
  }
}

/** tshark's view of a capture file: one object per UDP datagram. */
function tsharkRead(path) {
  const fields = ['frame.time_epoch', 'ip.src', 'ip.dst', 'udp.srcport', 'udp.dstport', 'udp.payload', 'frame.comment', 'frame.packet_flags_direction', 'udp.checksum.status', 'ip.checksum.status']
  const run = spawnSync('tshark', ['-r', path, '-n', '-o', 'udp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  return run.stdout.trim().split('\n').filter(Boolean).map((line) => {
    const [time, src, dst, sport, dport, payload, comment, direction, udpChecksum, ipChecksum] = line.split('|')
    return { time, src, dst, sport: Number(sport), dport: Number(dport), payload: Buffer.from(payload, 'hex'), comment, direction, udpChecksum, ipChecksum }
  })
}

/** "1764619200.123456789" → ns as a bigint, exactly. */
const epochNs = (text) => {
  const [s, f = ''] = text.split('.')
  return BigInt(s) * 1_000_000_000n + BigInt(f.padEnd(9, '0').slice(0, 9))
}

/** Sends `count` datagrams "p <i>" `gapMs` apart from a node:dgram socket to `port`. */
async function dgramStream(port, count, gapMs) {
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  for (let i = 0; i < count; i++) {
    await new Promise((resolve) => socket.send(`p ${i}`, port, '127.0.0.1', resolve))
    await new Promise((resolve) => setTimeout(resolve, gapMs))
  }
  const from = socket.address().port
  socket.close()
  return from
}

const bound = (options = {}) => {
  const u = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, options)
  u.initSocket()
  return u
}

/** A receiving instance started on a fresh port. */
const receiver = (options = {}) => {
  const u = bound({ direction: 1, ...options })
  u.start()
  return u
}

/** A sender connected to `port`. */
const sender = (port, options = {}) => {
  const u = new UdpCom('127.0.0.1', 0, '127.0.0.1', port, { direction: 0, ...options })
  u.initSocket()
  u.start()
  return u
}

/**
 * Asserts that arrivals (ns) keep the recorded timing: every arrival within `toleranceNs` of its
 * recorded offset from the first, and the median gap within 1 ms of its recorded gap. Generous,
 * as a test on a loaded machine must be (the host can stall a thread for milliseconds); the
 * benchmark measures precision.
 */
function assertTiming(arrivals, recorded, what, toleranceNs = 20_000_000) {
  assert.equal(arrivals.length, recorded.length)
  const gapErrors = []
  for (let i = 1; i < arrivals.length; i++) {
    const offset = Number(arrivals[i] - arrivals[0])
    const want = Number(recorded[i] - recorded[0])
    assert.ok(Math.abs(offset - want) <= toleranceNs, `${what}: datagram ${i} arrived ${offset} ns after the first, recorded ${want} ns`)
    gapErrors.push(Math.abs(Number(arrivals[i] - arrivals[i - 1]) - Number(recorded[i] - recorded[i - 1])))
  }
  gapErrors.sort((a, b) => a - b)
  const median = gapErrors[gapErrors.length >> 1]
  assert.ok(median <= 1_000_000, `${what}: median gap error ${median} ns`)
}

for (const [tool, why] of [['tcpdump', noTcpdump], ['tshark', noTshark]]) {
  test(`a capture ${tool} recorded on lo is replayed in order, to the right place, with the recorded gaps`, async (t) => {
    if (why || noRoot) return t.skip(why ?? noRoot)
    const rx = receiver()
    const path = file(tool === 'tcpdump' ? 'pcap' : 'pcapng')
    const recording = await startTool(tool, 'lo', rx.localPort, path, 20)
    await dgramStream(rx.localPort, 20, 5)
    await receiveMany(rx, 20)
    await recording.stop()
    const recorded = tsharkOrNull(path)
    if (recorded) assert.equal(recorded.length, 20, `${tool} recorded the 20 datagrams`)
    // Replay to a second receiver, from a connected instance.
    const rx2 = receiver()
    const tx = sender(rx2.localPort)
    try {
      const replay = tx.replay(path, { speed: 1 })
      const packets = await receiveMany(rx2, 20, 5_000_000_000n)
      assert.deepEqual(packets.map((p) => p.data.toString()), Array.from({ length: 20 }, (_, i) => `p ${i}`))
      const stats = await within(10_000, replay.done, 'replay done')
      assert.equal(stats.state, 'completed')
      assert.equal(stats.sent, 20)
      assert.equal(stats.skipped.total, 0)
      if (recorded) {
        // Generous bounds here (a loaded CI machine); precision is the benchmark's.
        assertTiming(packets.map((p) => p.timestampNs), recorded.map((r) => epochNs(r.time)), tool)
      }
    } finally {
      for (const u of [rx, rx2, tx]) u.closeSocket()
    }
  })
}

/** tshark's reading of `path`, or null when tshark is missing (gaps then go unchecked). */
function tsharkOrNull(path) {
  return noTshark ? null : tsharkRead(path)
}

/** A discard server on 10.203.0.2:9, for the namespace. */
const SINK = "const s = require('dgram').createSocket('udp4'); let n = 0; s.on('message', (m) => console.log('got ' + ++n + ' ' + m)); s.bind(9, '10.203.0.2', () => console.log('ready'))"

test('a tshark capture on a veth pair between two namespaces is replayed to each datagram\'s original destination', async (t) => {
  if (noTshark || noRoot) return t.skip(noTshark ?? noRoot)
  const id = `${process.pid % 10000}`
  const [ns, vethA, vethB] = [`ucap${id}`, `ucapa${id}`, `ucapb${id}`]
  const ip = (...args) => {
    const run = spawnSync('ip', args, { encoding: 'utf8' })
    assert.equal(run.status, 0, `ip ${args.join(' ')}: ${run.stderr}`)
  }
  const path = file('pcapng')
  let sink
  let tx
  try {
    ip('netns', 'add', ns)
    ip('link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB, 'netns', ns)
    ip('addr', 'add', '10.203.0.1/24', 'dev', vethA)
    ip('link', 'set', vethA, 'up')
    ip('-n', ns, 'addr', 'add', '10.203.0.2/24', 'dev', vethB)
    ip('-n', ns, 'link', 'set', vethB, 'up')
    // A sink in the namespace (else ICMP port unreachable would refuse the next sends); the
    // capture on our side is what counts.
    sink = startNode(['netns', 'exec', ns, process.execPath, '-e', SINK], { command: 'ip', timeoutMs: 60_000 })
    await sink.waitFor(/^ready/)
    // gso: false: tshark on the veth sees a GSO message (datagrams due together, as after a
    // late wake-up on a loaded machine) as one frame, and this test counts frames.
    tx = new UdpCom('10.203.0.1', 0, '10.203.0.2', 9, { direction: 0, gso: false })
    tx.initSocket()
    tx.start()
    const recording = await startTool('tshark', vethA, 9, path, 10)
    const start = now() + 5n * MS
    for (let i = 0; i < 10; i++) tx.sendData(Buffer.from(`v ${i}`), start + BigInt(i) * 2n * MS)
    await tx.drain()
    await recording.stop()
    tx.closeSocket()
    tx = undefined
    const recorded = tsharkRead(path)
    assert.equal(recorded.length, 10, 'tshark recorded the 10 datagrams')
    assert.ok(recorded.every((r) => r.dst === '10.203.0.2' && r.dport === 9))
    // Replayed on loopback by an unconnected instance: 'original' would go to 10.203.0.2:9;
    // a fixed destination brings them back here, in order, with the recorded gaps.
    const rx = receiver()
    // Unconnected and on every address: to this host's loopback and over the veth.
    const replayer = new UdpCom('0.0.0.0', 0, '0.0.0.0', 0, { direction: 0 })
    replayer.initSocket()
    replayer.start()
    try {
      const replay = replayer.replay(readFileSync(path), { destination: { address: '127.0.0.1', port: rx.localPort } })
      const packets = await receiveMany(rx, 10, 5_000_000_000n)
      assert.deepEqual(packets.map((p) => p.data.toString()), Array.from({ length: 10 }, (_, i) => `v ${i}`))
      assertTiming(packets.map((p) => p.timestampNs), recorded.map((r) => epochNs(r.time)), 'veth')
      assert.equal((await within(10_000, replay.done, 'replay done')).sent, 10)
      // 'original' sends each to its recorded destination: here 10.203.0.2:9 over the veth.
      const original = replayer.replay(path, { destination: 'original', speed: 0 })
      const stats = await within(10_000, original.done, 'replay to the original destinations')
      assert.equal(stats.sent, 10)
      // The sink had the first 10 (sendData's); these are 11..20, the same payloads.
      assert.match(await sink.waitFor(/^got 20 /), /^got 20 v 9$/)
    } finally {
      rx.closeSocket()
      replayer.closeSocket()
    }
  } finally {
    // Closed here too: an instance left open when a step above fails keeps the test file's
    // process alive.
    tx?.closeSocket()
    sink?.kill('SIGKILL')
    spawnSync('ip', ['link', 'del', vethA])
    spawnSync('ip', ['netns', 'del', ns])
  }
})

test('what is not a UDP datagram is skipped and counted by reason; filters and loops', async (t) => {
  if (noTcpdump || noRoot) return t.skip(noTcpdump ?? noRoot)
  const rx = receiver()
  const server = net.createServer((c) => c.end('bye'))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const tcpPort = server.address().port
  // A TCP connection, then UDP to the receiver, in one file. tcpdump prints each packet it
  // wrote (--print): once it printed the sixth UDP datagram, everything is in the file.
  const both = file('pcap')
  const tool = startNode(['-i', 'lo', '-n', '-l', '-U', '--immediate-mode', '--print', '--time-stamp-precision=nano', '-w', both, `udp port ${rx.localPort} or tcp port ${tcpPort}`], { command: 'tcpdump' })
  await within(20_000, until(() => /listening on/.test(tool.output().stderr), 20_000, 'tcpdump to listen'), 'tcpdump to listen')
  await new Promise((resolve) => net.connect(tcpPort, '127.0.0.1').on('data', () => {}).on('close', resolve))
  const from = await dgramStream(rx.localPort, 6, 1)
  await receiveMany(rx, 6)
  await until(() => tool.output().stdout.split('\n').filter((l) => l.includes('UDP')).length === 6, 20_000, 'tcpdump to write the 6 datagrams')
  tool.kill('SIGINT')
  await within(20_000, tool.exited, 'tcpdump to exit')
  server.close()
  const rx2 = receiver()
  const tx = sender(rx2.localPort)
  try {
    const replay = tx.replay(both, { speed: 0, loop: 2, filter: { port: rx.localPort, address: '127.0.0.1' } })
    const packets = await receiveMany(rx2, 12, 5_000_000_000n)
    assert.deepEqual(packets.map((p) => p.data.toString()), [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5].map((i) => `p ${i}`))
    const stats = await within(10_000, replay.done, 'replay done')
    assert.equal(stats.passes, 2)
    const tcp = noTshark ? null : spawnSync('tshark', ['-r', both, '-Y', 'tcp'], { encoding: 'utf8' }).stdout.trim().split('\n').length
    assert.ok(stats.skipped.notUdp > 0, 'TCP segments are not UDP')
    if (tcp !== null) assert.equal(stats.skipped.notUdp, 2 * tcp, `each pass counts the ${tcp} TCP segments: ${JSON.stringify(stats.skipped)}`)
    assert.equal(stats.skipped.total, stats.skipped.notUdp + stats.skipped.filtered + stats.skipped.otherFamily + stats.skipped.truncated + stats.skipped.notIp + stats.skipped.ipFragment + stats.skipped.badHeader + stats.skipped.unsupportedLinkType + stats.skipped.timestampOutOfRange + stats.skipped.unsupportedBlock)
    // A filter on another source port's address leaves nothing.
    const none = tx.replay(both, { speed: 0, filter: { address: '127.0.0.2' } })
    const noneStats = await within(10_000, none.done, 'filtered replay')
    assert.equal(noneStats.sent, 0)
    assert.equal(noneStats.skipped.filtered, 6)
    assert.ok(from > 0)
  } finally {
    for (const u of [rx, rx2, tx]) u.closeSocket()
  }
})

test('files udpcom writes are read by tshark and tcpdump as exactly what was received, times to the ns', async (t) => {
  if (noTshark) return t.skip(noTshark)
  const rx = receiver()
  const pcapng = file('pcapng')
  const pcap = file('pcap')
  const captures = [rx.capture(pcapng), rx.capture(pcap, { link: 'ethernet' })]
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const payloads = Array.from({ length: 30 }, (_, i) => Buffer.from(`datagram ${i} `.repeat(i + 1)))
  for (const payload of payloads) await new Promise((resolve) => socket.send(payload, rx.localPort, '127.0.0.1', resolve))
  const received = await receiveMany(rx, 30)
  const results = await Promise.all(captures.map((c) => c.close()))
  socket.close()
  for (const result of results) assert.deepEqual(result, { written: 30, dropped: 0 })
  for (const path of [pcapng, pcap]) {
    const seen = tsharkRead(path)
    assert.equal(seen.length, 30, path)
    seen.forEach((s, i) => {
      assert.deepEqual([s.src, s.sport, s.dst, s.dport], [received[i].address, received[i].port, '127.0.0.1', rx.localPort])
      assert.deepEqual(s.payload, received[i].data, `payload ${i}`)
      // tshark's checksum status: 0 bad, 1 good, 2 unverified.
      assert.equal(s.udpChecksum, '1', 'UDP checksum good')
      assert.equal(s.ipChecksum, '1', 'IP checksum good')
      if (path === pcapng) {
        assert.equal(s.comment, 'timestamp: kernel')
        assert.equal(Number(s.direction), 1, 'inbound')
      }
    })
    // The kernel's receive stamp, converted to CLOCK_MONOTONIC for receiveData: the same
    // instants, so the gaps agree to within the conversion's rounding.
    assert.ok(received.every((p) => p.timestampSource === 'kernel'), 'a capture turns kernel receive stamps on')
    received.forEach((p, i) => {
      if (i === 0) return
      const gap = Number(p.timestampNs - received[i - 1].timestampNs)
      const written = Number(epochNs(seen[i].time) - epochNs(seen[i - 1].time))
      assert.ok(Math.abs(gap - written) <= 1_000, `${path}: gap ${i}: ${gap} ns received, ${written} ns written`)
    })
  }
  const pcapngTimes = tsharkRead(pcapng).map((s) => s.time)
  assert.deepEqual(tsharkRead(pcap).map((s) => s.time), pcapngTimes, 'pcap and pcapng hold the same ns')
  assert.ok(pcapngTimes.every((time) => /^\d+\.\d{9}$/.test(time)), 'nine decimals: ns')
  if (noTcpdump) return
  const read = spawnSync('tcpdump', ['-r', pcap, '-n', '-tt', '--time-stamp-precision=nano'], { encoding: 'utf8' })
  assert.equal(read.status, 0, read.stderr)
  const lines = read.stdout.trim().split('\n')
  assert.equal(lines.length, 30)
  lines.forEach((line, i) => {
    const [time] = line.split(' ')
    assert.equal(time, pcapngTimes[i], 'tcpdump prints the same ns')
    assert.ok(line.includes(`IP 127.0.0.1.${received[i].port} > 127.0.0.1.${rx.localPort}: UDP, length ${payloads[i].length}`), line)
  })
  rx.closeSocket()
})

test('sent datagrams are captured with their transmit stamps, outbound; snaplen cuts frames and keeps their length', async (t) => {
  if (noTshark) return t.skip(noTshark)
  const rx = receiver()
  const tx = sender(rx.localPort, { timestamping: 'software' })
  const path = file('pcapng')
  const capture = tx.capture(path, { sent: true, snaplen: 60 })
  const start = now() + 5n * MS
  for (let i = 0; i < 10; i++) tx.sendData(Buffer.alloc(100, i), start + BigInt(i) * MS)
  await receiveMany(rx, 10)
  await tx.drain()
  assert.deepEqual(await capture.close(), { written: 10, dropped: 0 })
  const seen = tsharkRead(path)
  assert.equal(seen.length, 10)
  for (const s of seen) {
    assert.equal(s.comment, 'timestamp: kernel', 'the kernel transmit stamp')
    assert.equal(Number(s.direction), 2, 'outbound')
    assert.deepEqual([s.src, s.dst, s.dport], ['127.0.0.1', '127.0.0.1', rx.localPort])
  }
  const lengths = spawnSync('tshark', ['-r', path, '-T', 'fields', '-e', 'frame.len', '-e', 'frame.cap_len'], { encoding: 'utf8' })
  assert.ok(lengths.stdout.trim().split('\n').every((l) => l === '128\t60'), lengths.stdout)
  // Without timestamping: the departure time, said so.
  const plain = sender(rx.localPort, { timestamping: 'none' })
  const second = file('pcapng')
  const c2 = plain.capture(second, { sent: true })
  plain.sendData(Buffer.from('x'))
  await receiveMany(rx, 1)
  await plain.drain()
  await c2.close()
  assert.equal(tsharkRead(second)[0].comment, 'timestamp: departure')
  for (const u of [rx, tx, plain]) u.closeSocket()
})

test('capture → replay → capture keeps the payloads and the gaps', async () => {
  const rx = receiver()
  const first = rx.capture()
  const tx = sender(rx.localPort)
  const start = now() + 5n * MS
  const gapsMs = [0, 2, 3, 1, 5, 2, 4, 1, 3, 2]
  let at = start
  gapsMs.forEach((gap, i) => {
    at += BigInt(gap) * MS
    tx.sendData(Buffer.from(`r ${i}`), at)
  })
  const original = await receiveMany(rx, 10)
  const { buffer, written } = await first.close()
  assert.equal(written, 10)
  const rx2 = receiver()
  const second = rx2.capture()
  const replayer = sender(rx2.localPort)
  const replay = replayer.replay(buffer)
  const replayed = await receiveMany(rx2, 10, 5_000_000_000n)
  await within(10_000, replay.done, 'replay done')
  const again = await second.close()
  assert.equal(again.written, 10)
  assert.deepEqual(replayed.map((p) => p.data.toString()), original.map((p) => p.data.toString()))
  assertTiming(replayed.map((p) => p.timestampNs), original.map((p) => p.timestampNs), 'round trip')
  for (const u of [rx, rx2, tx, replayer]) u.closeSocket()
})

test('a capture into a Node stream; stop() finishes a capture; errors are coded', async (t) => {
  const rx = receiver()
  const path = file('pcapng')
  const out = createWriteStream(path)
  const capture = rx.capture(out)
  const tx = sender(rx.localPort)
  for (let i = 0; i < 5; i++) tx.sendData(Buffer.from(`w ${i}`))
  await receiveMany(rx, 5)
  assert.deepEqual(await capture.close(), { written: 5, dropped: 0 })
  assert.ok(out.writableFinished, 'close() ended the stream')
  if (!noTshark) assert.deepEqual(tsharkRead(path).map((s) => s.payload.toString()), [0, 1, 2, 3, 4].map((i) => `w ${i}`))
  // stop() closes captures: close() then resolves with the final counts.
  const file2 = file('pcap')
  const stopped = rx.capture(file2)
  tx.sendData(Buffer.from('last'))
  await receiveMany(rx, 1)
  rx.stop()
  assert.equal(stopped.stats().closed, true)
  assert.deepEqual(await stopped.close(), { written: 1, dropped: 0 })
  assert.equal(readFileSync(file2).readUInt32LE(0), 0xa1b23c4d, 'a nanosecond pcap')
  // Coded errors.
  assert.throws(() => rx.capture(42), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => rx.capture(null, { format: 'json' }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => rx.capture(null, { snaplen: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => rx.capture(null, { color: 'red' }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => rx.capture(join(dir, 'missing', 'x.pcap')), { code: 'ENOENT', syscall: 'open' })
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 0).capture(), { code: 'ERR_UDPCOM_STATE' })
  assert.throws(() => tx.replay(42), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => tx.replay(Buffer.alloc(0), { speed: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => tx.replay(Buffer.alloc(0), { loop: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => tx.replay(Buffer.alloc(0), { destination: 'original' }), { code: 'ERR_SOCKET_DGRAM_IS_CONNECTED' })
  assert.throws(() => tx.replay(Buffer.alloc(0), { destination: 'elsewhere' }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => tx.replay(join(dir, 'missing.pcap')), { code: 'ENOENT' })
  // Not a capture file: rejects done, nothing sent.
  const junk = tx.replay(Buffer.from('this is not a pcap file at all'))
  await assert.rejects(junk.done, (error) => error.code === 'ERR_UDPCOM_PCAP' && /at byte 0/.test(error.message) && error.stats.sent === 0)
  for (const u of [rx, tx]) u.closeSocket()
  t.diagnostic('capture errors are coded')
})

test('a replay stops on request, and with its instance', async () => {
  const rx = receiver()
  const capture = rx.capture()
  const tx = sender(rx.localPort)
  const start = now() + 5n * MS
  for (let i = 0; i < 5; i++) tx.sendData(Buffer.from(`s ${i}`), start + BigInt(i) * 100n * MS)
  await receiveMany(rx, 5, 5_000_000_000n)
  const { buffer } = await capture.close()
  const slow = tx.replay(buffer, { loop: 100 })
  await receiveMany(rx, 1, 5_000_000_000n)
  slow.stop()
  const stats = await within(5_000, slow.done, 'stopped replay')
  assert.equal(stats.state, 'stopped')
  assert.ok(stats.sent >= 1 && stats.sent < 500)
  const withInstance = tx.replay(buffer, { loop: 100 })
  tx.stop()
  assert.equal((await within(5_000, withInstance.done, 'replay of a stopped instance')).state, 'instanceStopped')
  for (const u of [rx, tx]) u.closeSocket()
})
