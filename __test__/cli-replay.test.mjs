// `udpcom replay` and `udpcom capture` end to end, as a user runs them: a capture tcpdump
// records on lo is replayed to a udpcom receiver (every datagram arrives, in order, with its
// payload; --speed shortens the recorded gaps; --loop repeats it; --json parsed; --capture of
// what was sent read back by tshark; the --report opened in headless Chromium), bad files give
// one line and exit 2, and `udpcom capture` writes a file tshark and tcpdump read and udpcom
// replays. Timing bounds are generous: precision is the benchmark's (section 10).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { UdpCom, isRoot, oneLineError, receiveMany, runNode, startNode, within } from './helpers.mjs'
import { artifact, browserMissing, canvases, openBrowser } from './browser.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const main = join(root, 'dist/cli/main.js')
const cli = (args, options) => runNode([main, ...args], options)
const jsonLines = (stdout) => stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))
const summaryOf = (stdout) => jsonLines(stdout).find((line) => line.type === 'summary')

const dir = mkdtempSync(join(tmpdir(), 'udpcom-cli-replay-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))

const tool = (name, args) => (spawnSync(name, args, { encoding: 'utf8' }).error ? `${name} cannot be run here (Debian package ${name === 'tshark' ? 'tshark' : name}; .ci/run installs it)` : null)
const noTcpdump = tool('tcpdump', ['--version']) ?? (isRoot ? null : 'recording on lo with tcpdump needs root')
const noTshark = tool('tshark', ['-v'])

/** tshark's payloads of the UDP datagrams in `path`, as text. */
function tsharkPayloads(path) {
  const run = spawnSync('tshark', ['-r', path, '-n', '-T', 'fields', '-e', 'udp.payload'], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
  return run.stdout.trim().split('\n').filter(Boolean).map((hex) => Buffer.from(hex, 'hex').toString())
}

/** A started receive-only udpcom instance on a free port. */
function receiver() {
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 0, { direction: 1 })
  udp.initSocket()
  udp.start()
  return udp
}

const COUNT = 30
const GAP_MS = 10
/**
 * A capture tcpdump records on lo: COUNT datagrams "r <i>" sent by node:dgram GAP_MS apart to a
 * sink. Recorded once, for every test that needs it.
 */
let recording
function recorded() {
  recording ??= (async () => {
    const sink = dgram.createSocket('udp4')
    await new Promise((resolve) => sink.bind(0, '127.0.0.1', resolve))
    const port = sink.address().port
    const path = join(dir, 'recorded.pcap')
    const args = ['-i', 'lo', '-n', '-U', '--immediate-mode', '--time-stamp-precision=nano', '-c', String(COUNT), '-w', path, `udp dst port ${port}`]
    const tcpdump = spawn('tcpdump', args, { stdio: ['ignore', 'ignore', 'pipe'] })
    const exited = new Promise((resolve) => tcpdump.once('exit', resolve))
    let stderr = ''
    await within(20_000, new Promise((resolve, reject) => {
      tcpdump.stderr.on('data', (chunk) => {
        stderr += chunk
        if (/listening on/.test(stderr)) resolve()
      })
      tcpdump.once('exit', (code) => reject(new Error(`tcpdump exited (${code}): ${stderr}`)))
    }), 'tcpdump to listen')
    const socket = dgram.createSocket('udp4')
    for (let i = 0; i < COUNT; i++) {
      await new Promise((resolve) => socket.send(`r ${i}`, port, '127.0.0.1', resolve))
      await new Promise((resolve) => setTimeout(resolve, GAP_MS))
    }
    socket.close()
    // tcpdump -c ends by itself once it wrote them all.
    await within(20_000, exited, 'tcpdump to write the capture and exit').finally(() => tcpdump.kill('SIGINT'))
    sink.close()
    return path
  })()
  return recording
}

test('help: replay and capture are listed, each has --help with --json', async () => {
  const top = await cli(['--help'])
  for (const name of ['replay', 'capture']) {
    assert.match(top.stdout, new RegExp(`^  ${name} `, 'm'))
    const help = await cli([name, '--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, new RegExp(`^usage: udpcom ${name}`))
    assert.match(help.stdout, /--json/)
  }
})

test('replay --speed 2 of a tcpdump capture: every datagram arrives in order with its payload, the gaps halved; --json', async (t) => {
  if (noTcpdump) return t.skip(noTcpdump)
  const file = await recorded()
  const rx = receiver()
  try {
    const run = await cli(['replay', file, `127.0.0.1:${rx.localPort}`, '--speed', '2', '--json'])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(run.stderr, '')
    const lines = jsonLines(run.stdout)
    assert.equal(lines[0].type, 'replaying')
    assert.deepEqual([lines[0].speed, lines[0].loops, lines[0].destination], [2, 1, `127.0.0.1:${rx.localPort}`])
    const summary = summaryOf(run.stdout)
    assert.equal(summary.ended, 'completed')
    assert.equal(summary.frames, COUNT)
    assert.deepEqual([summary.sent, summary.errors, summary.skipped.total, summary.passes, summary.exitCode], [COUNT, 0, 0, 1, 0])
    assert.ok(summary.latenessP50Ns >= 0 && summary.latenessP99Ns >= summary.latenessP50Ns && summary.latenessMaxNs >= summary.latenessP99Ns)
    assert.ok(lines.some((line) => line.type === 'interval'), 'at least the last interval')

    const packets = await receiveMany(rx, COUNT)
    assert.deepEqual(packets.map((p) => p.data.toString()), Array.from({ length: COUNT }, (_, i) => `r ${i}`))
    // Recorded over (COUNT − 1) × GAP_MS or a little more; at speed 2 about half of that.
    const recordedSpanMs = (COUNT - 1) * GAP_MS
    const spanMs = Number(packets.at(-1).timestampNs - packets[0].timestampNs) / 1e6
    t.diagnostic(`arrivals spanned ${spanMs.toFixed(1)} ms; recorded at least ${recordedSpanMs} ms`)
    assert.ok(spanMs > recordedSpanMs * 0.35 && spanMs < recordedSpanMs * 0.8, `span ${spanMs} ms at speed 2, recorded ≥ ${recordedSpanMs} ms`)
  } finally {
    rx.closeSocket()
  }
})

test('replay --loop 3 --capture --report: three passes arrive, tshark reads what was sent, the report renders in Chromium', async (t) => {
  if (noTcpdump) return t.skip(noTcpdump)
  const file = await recorded()
  const rx = receiver()
  const sentFile = join(dir, 'sent.pcapng')
  const reportFile = join(dir, 'replay.html')
  try {
    const run = await cli(['replay', file, `127.0.0.1:${rx.localPort}`, '--loop', '3', '--speed', '4', '--interval', '100ms', '--capture', sentFile, '--report', reportFile, '--json'])
    assert.equal(run.code, 0, run.stderr)
    const summary = summaryOf(run.stdout)
    assert.deepEqual([summary.sent, summary.passes, summary.loops, summary.captured, summary.captureDropped], [3 * COUNT, 3, 3, 3 * COUNT, 0])
    assert.ok(jsonLines(run.stdout).some((line) => line.type === 'report'))
    // The lateness is live: every interval that saw datagrams sent has it, the ones before the end too.
    const intervals = jsonLines(run.stdout).filter((line) => line.type === 'interval' && line.sent > 0)
    assert.ok(intervals.length >= 2, `intervals of 100 ms over a replay of about 220 ms: ${intervals.length}`)
    for (const interval of intervals) assert.ok(interval.latenessP99Ns > 0 && interval.latenessMaxNs >= interval.latenessP99Ns, JSON.stringify(interval))
    const packets = await receiveMany(rx, 3 * COUNT)
    const expected = Array.from({ length: COUNT }, (_, i) => `r ${i}`)
    assert.deepEqual(packets.map((p) => p.data.toString()), [...expected, ...expected, ...expected])
    assert.equal(rx.getPacketStats().nPacketsReceived, 3 * COUNT, 'nothing more')

    if (noTshark) t.diagnostic(`not read back: ${noTshark}`)
    else assert.deepEqual(tsharkPayloads(sentFile), [...expected, ...expected, ...expected])

    const html = readFileSync(reportFile, 'utf8')
    const data = JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)[1])
    assert.equal(data.summary.find((row) => row.key === 'sent').value, 3 * COUNT)
    assert.equal(data.histograms[0].counts.reduce((a, b) => a + b, 0), 3 * COUNT, 'every datagram in the lateness histogram')
    assert.ok(data.findings.some((finding) => finding.id === 'rt-permission'), "the doctor's findings")
    const missing = browserMissing()
    if (missing) return t.diagnostic(`the report is not opened: ${missing}`)
    const browser = await openBrowser()
    try {
      const { page, problems, requests } = browser
      await page.goto(pathToFileURL(reportFile).href)
      await page.waitForSelector('table.findings')
      const drawn = await canvases(page)
      assert.deepEqual(drawn.map((c) => c.kind), ['histogram-lateness', 'rate', 'lateness', 'loss'])
      for (const canvas of drawn) assert.ok(canvas.width > 0 && canvas.drawn > 1000, `${canvas.kind}: ${JSON.stringify(canvas)}`)
      assert.deepEqual(problems, [])
      assert.deepEqual(requests, [pathToFileURL(reportFile).href], 'it works offline')
      await page.screenshot({ path: artifact('report-replay.png'), fullPage: true })
    } finally {
      await browser.close()
    }
  } finally {
    rx.closeSocket()
  }
})

test('replay on a terminal: a status line with progress and lateness rewritten in place; plain lines in a pipe', async (t) => {
  if (noTcpdump) return t.skip(noTcpdump)
  const file = await recorded()
  const rx = receiver()
  try {
    const plain = await cli(['replay', file, `127.0.0.1:${rx.localPort}`, '--speed', '4'])
    assert.equal(plain.code, 0, plain.stderr)
    assert.doesNotMatch(plain.stdout, /\x1b/, 'no terminal escapes in a pipe')
    assert.match(plain.stdout, /^ +\d+\.\d s {2}sent 30 \(100%\) {2}/m)
    assert.match(plain.stdout, /: completed\n {2}file +recorded\.pcap\n {2}frames in the file +30\n/)
    assert.match(plain.stdout, /^ {2}sent +30$/m)
    if (spawnSync('script', ['--version']).error) return t.diagnostic('no terminal test: needs script(1) from util-linux')
    // script(1) gives the command a pseudo-terminal; at speed 0.25 the replay takes about 1.2 s.
    const tty = spawnSync('script', ['-qec', `${process.execPath} ${main} replay ${file} 127.0.0.1:${rx.localPort} --speed 0.25`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '160' }, timeout: 20_000 })
    assert.equal(tty.status, 0, tty.stdout)
    const updates = tty.stdout.match(/\r\x1b\[2Kreplay → 127\.0\.0\.1:\d+ {2}[\d.]+ s {2}sent \d+ \(\d+%\) {2}.*pps {2}p99 lateness \S+ \S+ {2}errors 0/g) ?? []
    assert.ok(updates.length >= 3, `status updates: ${updates.length}\n${JSON.stringify(tty.stdout)}`)
    assert.match(tty.stdout, /sent +30\r?\n/)
  } finally {
    rx.closeSocket()
  }
})

test('replay without HOST:PORT sends each datagram to its captured destination; a filter that leaves nothing is exit 1', async () => {
  // A capture of datagrams to a port, then a receiver on that same port.
  const file = join(dir, 'to-original.pcapng')
  const run = startNode([main, 'capture', '127.0.0.1:0', '--file', file, '--count', '10', '--json'])
  const { port } = JSON.parse(await run.waitFor(/"type":"listening"/))
  const socket = dgram.createSocket('udp4')
  for (let i = 0; i < 10; i++) await new Promise((resolve) => socket.send(`o ${i}`, port, '127.0.0.1', resolve))
  socket.close()
  assert.equal((await within(20_000, run.exited, 'capture to end')).code, 0)
  const rx = new UdpCom('127.0.0.1', port, '127.0.0.1', 0, { direction: 1 })
  rx.initSocket()
  rx.start()
  try {
    const original = await cli(['replay', file, '--speed', '0', '--json'])
    assert.equal(original.code, 0, original.stderr)
    assert.equal(summaryOf(original.stdout).destination, 'original')
    assert.deepEqual((await receiveMany(rx, 10)).map((p) => p.data.toString()), Array.from({ length: 10 }, (_, i) => `o ${i}`))
    const none = await cli(['replay', file, `127.0.0.1:${port}`, '--filter-port', String(port === 65_535 ? 1 : port + 1), '--json'])
    assert.equal(none.code, 1, none.stderr)
    const summary = summaryOf(none.stdout)
    assert.deepEqual([summary.sent, summary.skipped.filtered, summary.exitCode], [0, 10, 1])
    assert.match(summary.problems[0], /no datagram was sent/)
  } finally {
    rx.closeSocket()
  }
})

test('replay: a file that is no capture, a truncated one, a missing one and bad options give one line and exit 2', async (t) => {
  const garbage = join(dir, 'garbage.pcap')
  writeFileSync(garbage, Buffer.from('this is not a capture file at all, only text'.repeat(20)))
  oneLineError(await cli(['replay', garbage, '127.0.0.1:9']), /^udpcom: pcap: bad magic number at byte 0: .*\. fix: udpcom replays pcap and pcapng files: see what this one holds with capinfos FILE or tshark -r FILE$/)
  const empty = join(dir, 'empty.pcapng')
  writeFileSync(empty, '')
  oneLineError(await cli(['replay', empty, '127.0.0.1:9']), /^udpcom: pcap: truncated file header at byte 0/)
  oneLineError(await cli(['replay', join(dir, 'none.pcap'), '127.0.0.1:9']), /^udpcom: ENOENT: no such file or directory, access '.*none\.pcap'\. fix: check the path/)
  oneLineError(await cli(['replay']), /give the capture file to replay: udpcom replay FILE \[HOST:PORT\]\. fix: see udpcom replay --help$/)
  oneLineError(await cli(['replay', garbage, '127.0.0.1:9', '--speed', 'fast']), /--speed 'fast' must be a number ≥ 0/)
  oneLineError(await cli(['replay', garbage, '127.0.0.1:9', '--loop', '0']), /--loop '0' must be a whole number from 1 to/)
  oneLineError(await cli(['replay', garbage, 'example.com:9']), /'example.com' is not an IP address/)
  if (noTcpdump) return t.diagnostic(`the truncated file is not tried: ${noTcpdump}`)
  // Cut in the middle of its 21st record: the 20 before it are sent, then the error.
  const whole = readFileSync(await recorded())
  let offset = 24
  for (let i = 0; i < 20; i++) offset += 16 + whole.readUInt32LE(offset + 8)
  const truncated = join(dir, 'truncated.pcap')
  writeFileSync(truncated, whole.subarray(0, offset + 20))
  const rx = receiver()
  try {
    const run = await cli(['replay', truncated, `127.0.0.1:${rx.localPort}`, '--speed', '0', '--json'])
    oneLineError(run, new RegExp(`^udpcom: pcap: truncated record at byte ${offset}: `))
    const lines = jsonLines(run.stdout)
    assert.equal(summaryOf(run.stdout).sent, 20)
    assert.equal(summaryOf(run.stdout).exitCode, 2)
    assert.equal(lines.at(-1).type, 'error')
    assert.equal(lines.at(-1).code, 'ERR_UDPCOM_PCAP')
    assert.equal((await receiveMany(rx, 20)).length, 20)
  } finally {
    rx.closeSocket()
  }
})

test('capture --count: a pcapng tshark reads and a pcap tcpdump reads, with every payload; udpcom replays it', async (t) => {
  for (const name of ['in.pcapng', 'in.pcap']) {
    const file = join(dir, name)
    const run = startNode([main, 'capture', '127.0.0.1:0', '--file', file, '--count', '20', '--json'])
    const listening = JSON.parse(await run.waitFor(/"type":"listening"/))
    assert.equal(listening.format, name.endsWith('.pcap') ? 'pcap' : 'pcapng')
    const socket = dgram.createSocket('udp4')
    for (let i = 0; i < 20; i++) await new Promise((resolve) => socket.send(`c ${i}`, listening.port, '127.0.0.1', resolve))
    socket.close()
    const done = await within(20_000, run.exited, 'capture to end')
    assert.equal(done.code, 0, done.stderr)
    const summary = summaryOf(done.stdout)
    assert.deepEqual([summary.ended, summary.written, summary.captureDropped, summary.dropped, summary.received, summary.receivedBytes], ['count', 20, 0, 0, 20, 20 * 3 + 10 * 1])
    assert.ok(summary.fileBytes > summary.receivedBytes)
    const expected = Array.from({ length: 20 }, (_, i) => `c ${i}`)
    if (name.endsWith('.pcapng')) {
      if (noTshark) t.diagnostic(`not read back: ${noTshark}`)
      else assert.deepEqual(tsharkPayloads(file), expected)
    } else if (noTcpdump) {
      t.diagnostic(`not read back: ${noTcpdump}`)
    } else {
      const read = spawnSync('tcpdump', ['-r', file, '-n', '-A'], { encoding: 'utf8' })
      assert.equal(read.status, 0, read.stderr)
      assert.equal(read.stdout.match(/ UDP, length \d+/g).length, 20)
    }
    // udpcom replays what it captured, to the same kind of receiver.
    const rx = receiver()
    try {
      const replayed = await cli(['replay', file, `127.0.0.1:${rx.localPort}`, '--speed', '0', '--json'])
      assert.equal(replayed.code, 0, replayed.stderr)
      assert.equal(summaryOf(replayed.stdout).frames, 20, 'the frames counted for the progress')
      assert.deepEqual((await receiveMany(rx, 20)).map((p) => p.data.toString()), expected)
    } finally {
      rx.closeSocket()
    }
  }
})

test('capture: usage errors and a duration with nothing arriving (exit 1)', async () => {
  oneLineError(await cli(['capture', '0']), /give the file to write: --file out\.pcapng\. fix: see udpcom capture --help$/)
  oneLineError(await cli(['capture', '--file', join(dir, 'x.pcapng')]), /give the port to listen on/)
  oneLineError(await cli(['capture', '0', '--file', join(dir, 'x.pcapng'), '--format', 'erf']), /--format 'erf' must be pcap or pcapng/)
  oneLineError(await cli(['capture', '0', '--file', '/nonexistent/folder/x.pcapng']), /ENOENT.*fix: check the path: its folder must exist$/)
  const quiet = await cli(['capture', '127.0.0.1:0', '--file', join(dir, 'quiet.pcapng'), '--duration', '300ms', '--json'])
  assert.equal(quiet.code, 1, quiet.stderr)
  const summary = summaryOf(quiet.stdout)
  assert.deepEqual([summary.ended, summary.written, summary.problems], ['duration', 0, ['no datagram arrived']])
})
