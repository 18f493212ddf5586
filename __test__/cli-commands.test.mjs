// The udpcom commands that drive native streams, end to end against real peers, as a user runs
// them: `send` → `recv --analyze` on loopback, through a proxy that drops, and across a veth
// pair between two network namespaces (also to a multicast group there, any-source and
// source-specific); `send --header iperf2` → a real `iperf -s -u`; `ping` → `reflect`; `recv
// --group` on loopback; `recv --capture` read back by tshark; the exit codes (loss, failed sends,
// late packets → 1; bad arguments → 2 with a one-line error); and the reports of send, ping and
// recv --analyze in headless Chromium. Output is parsed from --json; every port is 0 or the one
// a peer got from the kernel; every wait has a timeout.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { CLI_MAIN, freePort, isRoot, jsonLines, oneLineError, runCli, startCli, startNode, until, vethPair } from './helpers.mjs'
import { browserMissing, checkReportInBrowser } from './browser.mjs'

const missing = (command, args) => (spawnSync(command, args).error ? `needs ${command} (Debian package ${command}; .ci/run installs it)` : undefined)
const noIperf = missing('iperf', ['-v'])
const noTshark = missing('tshark', ['-v'])

/** Starts a listening command (`recv`, `reflect`) with --json; resolves with the run and its port. */
async function listening(args, options) {
  const run = startCli([...args, '--json'], options)
  const event = JSON.parse(await run.waitFor(/"type":"listening"/))
  return { run, port: event.port, event }
}

/** A finished run's summary object, after checking its exit code. */
function summaryOf(run, code = 0) {
  assert.equal(run.code, code, `exit code ${run.code}\n${run.stderr}\n${run.stdout.slice(-2000)}`)
  const summary = jsonLines(run.stdout).find((line) => line.type === 'summary')
  assert.equal(summary.exitCode, code)
  return summary
}

const tempDir = () => mkdtempSync(join(tmpdir(), 'udpcom-cli-commands-'))

test('help and bad arguments: each a one-line error naming the fix, exit 2', async () => {
  for (const name of ['send', 'ping', 'reflect']) {
    const help = await runCli([name, '--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, new RegExp(`^usage: udpcom ${name}`))
  }
  assert.match((await runCli(['recv', '--help'])).stdout, /--analyze HEADER.*\n(.*\n)*.*--group GROUP.*\n(.*\n)*.*--capture FILE/)
  oneLineError(await runCli(['send', '127.0.0.1:5000']), /^udpcom: give the packet rate: --rate 10k\. fix: see udpcom send --help$/)
  oneLineError(await runCli(['send', '5000', '--rate', '1k']), /give the host too: udpcom send HOST:PORT/)
  oneLineError(await runCli(['send', '127.0.0.1:0', '--rate', '1k']), /'0' is not a port \(1\.\.65535\)/)
  oneLineError(await runCli(['send', '127.0.0.1:5000', '--rate', 'fast']), /--rate 'fast' is not a packet rate \(for example 500, 10k, 1M\)\. fix: see udpcom send --help$/)
  oneLineError(await runCli(['send', '127.0.0.1:5000', '--rate', '1k', '--count', '5', '--duration', '1s']), /give --count or --duration, not both/)
  oneLineError(await runCli(['send', '127.0.0.1:5000', '--rate', '1k', '--header', 'rtp']), /--header 'rtp' must be udpcom, iperf2 or none/)
  oneLineError(await runCli(['send', '127.0.0.1:5000', '--rate', '1k', '--dscp', '64']), /--dscp '64' must be a whole number from 0 to 63/)
  oneLineError(await runCli(['send', '127.0.0.1:5000', '--rate', '1k', '--size', '10', '--count', '1']), /options\.size.*>= 56 with header 'udpcom'/)
  oneLineError(await runCli(['send', '127.0.0.1:5000', '--rate', '1k', '--multicast-interface', 'udpcom-none0', '--count', '1']), /ENODEV/)
  oneLineError(await runCli(['ping', '127.0.0.1:5000']), /give the packet rate: --rate 10k\. fix: see udpcom ping --help$/)
  oneLineError(await runCli(['ping', '127.0.0.1:5000', '--rate', '1k', '--wait', 'long']), /--wait 'long' is not a duration/)
  oneLineError(await runCli(['reflect']), /give the port to reflect on: udpcom reflect \[HOST:\]PORT/)
  oneLineError(await runCli(['reflect', '0', '--count', '0']), /--count must be at least 1\. fix: see udpcom reflect --help$/)
  oneLineError(await runCli(['recv', '0', '--analyze', 'rtp']), /--analyze 'rtp' must be udpcom or iperf2/)
  oneLineError(await runCli(['recv', '0', '--interface', 'lo']), /--interface names where --group is joined: give --group too/)
  oneLineError(await runCli(['recv', '0', '--source', '10.0.0.1']), /--source names the sender of a source-specific group: give --group too/)
  oneLineError(await runCli(['recv', '0', '--group', '10.1.2.3', '--duration', '1s']), /'multicastAddress' must be a multicast address/)
  oneLineError(await runCli(['recv', '0', '--group', '239.1.2.3', '--interface', 'udpcom-none0', '--duration', '1s']), /ENODEV/)
  oneLineError(await runCli(['recv', '0', '--capture', '/nonexistent/folder/c.pcapng']), /ENOENT.*fix: check the path: its folder must exist$/)
})

test('send → recv --analyze on loopback: every packet sent, received and analysed; exit 0', async () => {
  const { run: recv, port } = await listening(['recv', '127.0.0.1:0', '--analyze', 'udpcom', '--count', '3000', '--interval', '200ms', '--duration', '20s'])
  const send = await runCli(['send', `127.0.0.1:${port}`, '--rate', '5k', '--count', '3000', '--size', '100', '--burst', '2', '--max-late', '100%', '--interval', '200ms', '--json'])
  const sent = summaryOf(send)
  const received = summaryOf(await recv.exited)
  const lines = jsonLines(send.stdout)
  assert.equal(lines[0].type, 'sending')
  assert.equal(lines[0].streamId, 1)
  assert.deepEqual([sent.state, sent.sent, sent.bytes, sent.errors, sent.header], ['completed', 3000, 300_000, 0, 'udpcom'])
  assert.ok(sent.latenessP50Ns <= sent.latenessP99Ns && sent.latenessP99Ns <= sent.latenessMaxNs)
  assert.ok(Math.abs(sent.ratePps - 5000) < 500, `rate ${sent.ratePps}`)
  const intervals = lines.filter((l) => l.type === 'interval')
  assert.equal(intervals.at(-1).sent, 3000, 'the last interval has every packet')
  for (const key of ['ratePps', 'errors', 'late', 'intervalLatenessP99Ns', 'latenessP99Ns', 'latenessMaxNs']) assert.ok(key in intervals[0], key)
  // A running stream's lateness is published while it runs (at most 20 ms old), not only at its end.
  assert.ok(intervals[0].sent > 0 && intervals[0].latenessMaxNs > 0 && intervals[0].intervalLatenessP99Ns > 0, JSON.stringify(intervals[0]))

  assert.equal(received.received, 3000)
  assert.equal(received.analysis.streams, 1)
  assert.deepEqual([received.analysis.received, received.analysis.lost, received.analysis.duplicates, received.analysis.reordered], [3000, 0, 0, 0])
  const [stream] = received.streams
  assert.equal(stream.streamId, 1)
  assert.equal(stream.port, lines[0].localPort, 'the stream is keyed by its source')
  assert.ok(stream.oneWayLatencyP50Ns > 0 && stream.oneWayLatencyP50Ns <= stream.oneWayLatencyMaxNs)
  assert.ok(stream.latenessP50Ns > 0, 'lateness against the target times (udpcom header)')
  const analysed = jsonLines((await recv.exited).stdout).filter((l) => l.type === 'interval')
  assert.equal(analysed.reduce((sum, l) => sum + l.lost, 0), 0)
  for (const key of ['lost', 'reordered', 'duplicates', 'jitterNs', 'oneWayLatencyP99Ns', 'arrivalLatenessP99Ns']) assert.ok(key in analysed.at(-1), key)
})

test('send --header iperf2 → recv --analyze iperf2 on IPv6 loopback', async () => {
  const { run: recv, port } = await listening(['recv', '[::1]:0', '--analyze', 'iperf2', '--count', '500', '--duration', '15s'])
  summaryOf(await runCli(['send', `[::1]:${port}`, '--rate', '2k', '--count', '500', '--header', 'iperf2', '--max-late', '100%', '--json']))
  const received = summaryOf(await recv.exited)
  assert.deepEqual([received.received, received.analysis.streams, received.analysis.lost], [500, 1, 0])
  assert.equal(received.streams[0].streamId, null, 'iperf 2 streams are keyed by source')
  assert.ok(received.analysis.oneWayLatencyP50Ns > 0)
})

test('send on a terminal: a status line rewritten in place; Ctrl-C stops the stream with its summary', async (t) => {
  const sink = dgram.createSocket('udp4')
  await new Promise((resolve) => sink.bind(0, '127.0.0.1', resolve))
  try {
    const target = `127.0.0.1:${sink.address().port}`
    const endless = startCli(['send', target, '--rate', '2k', '--interval', '200ms', '--max-late', '100%', '--json'])
    await endless.waitFor(/"type":"interval"/)
    endless.kill('SIGINT')
    const stopped = summaryOf(await endless.exited)
    assert.deepEqual([stopped.ended, stopped.state], ['interrupted', 'stopped'])
    assert.ok(stopped.sent > 0)
    // script(1) gives the command a pseudo-terminal.
    if (spawnSync('script', ['--version']).error) return t.skip('needs script(1) from util-linux for a pseudo-terminal')
    const run = startNode(['-qec', `${process.execPath} ${CLI_MAIN} send ${target} --rate 2k --count 3000 --max-late 100%`, '/dev/null'], { command: 'script', env: { COLUMNS: '140' } })
    const { code, stdout } = await run.exited
    assert.equal(code, 0, stdout)
    const updates = stdout.match(/\r\x1b\[2Ksend 127\.0\.0\.1:\d+ {2}[\d.]+ s {2}sent [\d,]+ {2}.*pps {2}errors 0 {2}late \d+ {2}p99 lateness /g) ?? []
    assert.ok(updates.length >= 3, `status updates: ${updates.length}\n${JSON.stringify(stdout)}`)
    assert.match(stdout, /sent +3,000/)
  } finally {
    sink.close()
  }
})

test('recv --analyze through a proxy that drops every tenth datagram: the loss counted exactly, exit 1', async () => {
  const { run: recv, port } = await listening(['recv', '127.0.0.1:0', '--analyze', 'udpcom', '--count', '1800', '--duration', '20s'])
  const proxy = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 22 })
  await new Promise((resolve) => proxy.bind(0, '127.0.0.1', resolve))
  let seen = 0
  proxy.on('message', (message) => {
    // Datagrams 3, 13, 23, ... of the 2,000 are dropped: 200, none of them the last.
    if (seen++ % 10 !== 3) proxy.send(message, port, '127.0.0.1')
  })
  try {
    const sent = summaryOf(await runCli(['send', `127.0.0.1:${proxy.address().port}`, '--rate', '4k', '--count', '2000', '--max-late', '100%', '--json']))
    assert.equal(sent.sent, 2000)
    const received = summaryOf(await recv.exited, 1)
    assert.equal(seen, 2000)
    assert.equal(received.received, 1800)
    assert.equal(received.analysis.lost, 200)
    assert.deepEqual(received.problems, ['200 datagrams lost (missing sequence numbers)'])
  } finally {
    proxy.close()
  }
})

test('send: failed sends and late packets are measured problems (exit 1); a receiver without headers says so', async () => {
  // Nobody listens: loopback answers with ICMP port unreachable, and the next send fails.
  const refused = summaryOf(await runCli(['send', `127.0.0.1:${await freePort()}`, '--rate', '2k', '--count', '200', '--max-late', '100%', '--json']), 1)
  assert.ok(refused.errors > 0, `errors: ${refused.errors}`)
  assert.equal(refused.sent + refused.errors, 200, 'every packet sent or failed')
  assert.match(refused.problems[0], /^[\d,]+ sends failed \(last: ECONNREFUSED sendmmsg\)$/)
  // 2 million packets a second is beyond one core here: most leave late.
  const sink = dgram.createSocket('udp4')
  await new Promise((resolve) => sink.bind(0, '127.0.0.1', resolve))
  try {
    const late = summaryOf(await runCli(['send', `127.0.0.1:${sink.address().port}`, '--rate', '2M', '--count', '50k', '--max-late', '10', '--json']), 1)
    assert.ok(late.late > 10, `late: ${late.late}`)
    assert.equal(late.lateAllowed, 10)
    assert.ok(late.problems.some((p) => /packets were late, more than --max-late 10 allows/.test(p)), late.problems.join('; '))
  } finally {
    sink.close()
  }
  // Plain datagrams (--header none) carry no header to analyse.
  const { run: recv, port } = await listening(['recv', '127.0.0.1:0', '--analyze', 'udpcom', '--count', '100', '--duration', '10s'])
  summaryOf(await runCli(['send', `127.0.0.1:${port}`, '--rate', '2k', '--count', '100', '--header', 'none', '--max-late', '100%', '--json']))
  const plain = summaryOf(await recv.exited, 1)
  assert.equal(plain.received, 100)
  assert.match(plain.problems.join('; '), /no datagram carried udpcom's header/)
})

test('send --header iperf2 → a real iperf -s -u: iperf counts every datagram', async (t) => {
  if (noIperf) return t.skip(noIperf)
  const iperf = startNode(['-s', '-u', '-e', '-B', '127.0.0.1', '-p', '0'], { command: 'iperf', timeoutMs: 20_000 })
  try {
    await iperf.waitFor(/Server listening on UDP port/)
    let port
    await until(() => {
      const line = spawnSync('ss', ['-Hulpn'], { encoding: 'utf8' }).stdout.split('\n').find((l) => l.includes(`pid=${iperf.child.pid},`))
      port = line && Number(/127\.0\.0\.1:(\d+)/.exec(line)?.[1])
      return port > 0
    }, 5000, "iperf's port")
    const sent = summaryOf(await runCli(['send', `127.0.0.1:${port}`, '--rate', '2k', '--count', '3000', '--header', 'iperf2', '--max-late', '100%', '--json']))
    assert.deepEqual([sent.header, sent.sent, sent.errors], ['iperf2', 3000, 0])
    // iperf's report: "... 0/3000 (0%) ..." once the last (negative) datagram ended its test.
    const report = await iperf.waitFor(/\d+\/\d+ +\(/, 10_000)
    const [, lost, total] = /(\d+)\/(\d+) +\(/.exec(report)
    t.diagnostic(`iperf: ${report.trim()}`)
    assert.equal(Number(total), 3000)
    assert.equal(Number(lost), 0)
  } finally {
    iperf.kill('SIGKILL')
    await iperf.exited
  }
})

test('ping → reflect on loopback: every packet comes back, round trip measured; no reflector is loss, exit 1', async () => {
  const { run: reflect, port } = await listening(['reflect', '127.0.0.1:0', '--count', '2000', '--duration', '20s'])
  const ping = summaryOf(await runCli(['ping', `127.0.0.1:${port}`, '--rate', '2k', '--count', '2000', '--interval', '250ms', '--json']))
  const reflected = summaryOf(await reflect.exited)
  assert.deepEqual([ping.sent, ping.replies, ping.lost, ping.duplicates, ping.roundTrips], [2000, 2000, 0, 0, 2000])
  assert.ok(ping.rttP50Ns > 0 && ping.rttP50Ns <= ping.rttP99Ns && ping.rttP99Ns <= ping.rttMaxNs, JSON.stringify(ping))
  assert.ok(ping.forwardP50Ns > 0 && ping.backwardP50Ns > 0)
  assert.deepEqual([reflected.received, reflected.reflected, reflected.errors, reflected.ended], [2000, 2000, 0, 'count'])
  const intervals = jsonLines(reflect.output().stdout).filter((l) => l.type === 'interval')
  assert.equal(intervals.at(-1).reflected, 2000)
  // Nobody reflects: every packet is lost.
  const unanswered = summaryOf(await runCli(['ping', `127.0.0.1:${await freePort()}`, '--rate', '2k', '--count', '100', '--wait', '300ms', '--json']), 1)
  // ICMP port unreachable may also fail a send (ECONNREFUSED) before the receive worker reads it.
  assert.equal(unanswered.sent + unanswered.errors, 100)
  assert.deepEqual([unanswered.replies, unanswered.lost, unanswered.rttP50Ns], [0, unanswered.sent, null])
  assert.match(unanswered.problems[0], /^(\d+) of \1 packets got no reply \(100\.00%\)$/)
})

test('recv --group on loopback: send to the group, recv hears and analyses it', async () => {
  const group = '239.77.1.1'
  const { run: recv, port, event } = await listening(['recv', '0.0.0.0:0', '--group', group, '--interface', '127.0.0.1', '--analyze', 'udpcom', '--count', '500', '--duration', '15s'])
  assert.deepEqual([event.group, event.interface, event.source], [group, '127.0.0.1', null])
  const sent = summaryOf(await runCli(['send', `${group}:${port}`, '--rate', '2k', '--count', '500', '--multicast-interface', '127.0.0.1', '--dscp', '46', '--max-late', '100%', '--json']))
  assert.equal(sent.sent, 500)
  const received = summaryOf(await recv.exited)
  assert.equal(received.received, 500)
  assert.equal(received.analysis.lost, 0)
})

test('recv --capture: tshark reads back every datagram received, udpcom headers in their payloads', async (t) => {
  if (noTshark) return t.skip(noTshark)
  const dir = tempDir()
  try {
    const file = join(dir, 'received.pcapng')
    const { run: recv, port } = await listening(['recv', '127.0.0.1:0', '--capture', file, '--count', '300', '--duration', '15s'])
    summaryOf(await runCli(['send', `127.0.0.1:${port}`, '--rate', '2k', '--count', '300', '--size', '80', '--max-late', '100%', '--json']))
    const received = summaryOf(await recv.exited)
    assert.deepEqual(received.capture, { path: file, written: 300, dropped: 0 })
    const read = spawnSync('tshark', ['-r', file, '-n', '-T', 'fields', '-E', 'separator=|', '-e', 'udp.dstport', '-e', 'udp.length', '-e', 'udp.payload'], { encoding: 'utf8' })
    assert.equal(read.status, 0, read.stderr)
    const frames = read.stdout.trim().split('\n').map((line) => line.split('|'))
    assert.equal(frames.length, 300)
    frames.forEach(([dport, length, payload], i) => {
      assert.equal(Number(dport), port)
      assert.equal(Number(length), 8 + 80)
      const bytes = Buffer.from(payload, 'hex')
      assert.equal(bytes.subarray(0, 4).toString(), 'UDPC', 'the udpcom magic')
      assert.equal(bytes.readBigUInt64BE(16), BigInt(i), 'sequence numbers in order')
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('across a veth pair: send in one namespace → recv --analyze in the other; to a group, any-source and source-specific', async (t) => {
  if (!isRoot) return t.skip('needs root to create network namespaces')
  const hosts = vethPair('cc', '10.201.11')
  const inNs = (ns, args) => ['netns', 'exec', ns, process.execPath, CLI_MAIN, ...args]
  const recvIn = async (args) => {
    const run = startNode(inNs(hosts.b.ns, [...args, '--json']), { command: 'ip' })
    return { run, port: JSON.parse(await run.waitFor(/"type":"listening"/)).port }
  }
  const sendFrom = (args) => startNode(inNs(hosts.a.ns, [...args, '--max-late', '100%', '--json']), { command: 'ip' }).exited
  try {
    const unicast = await recvIn(['recv', `${hosts.b.address}:0`, '--analyze', 'udpcom', '--count', '2000', '--duration', '20s'])
    const sent = summaryOf(await sendFrom(['send', `${hosts.b.address}:${unicast.port}`, '--rate', '5k', '--count', '2000', '--size', '200']))
    assert.equal(sent.sent, 2000)
    const received = summaryOf(await unicast.run.exited)
    assert.equal(received.received, 2000)
    assert.deepEqual([received.analysis.lost, received.analysis.reordered, received.analysis.duplicates], [0, 0, 0])
    assert.equal(received.streams[0].address, hosts.a.address)

    const group = '239.77.2.1'
    const anySource = await recvIn(['recv', '0.0.0.0:0', '--group', group, '--interface', hosts.b.veth, '--analyze', 'udpcom', '--count', '500', '--duration', '20s'])
    summaryOf(await sendFrom(['send', `${group}:${anySource.port}`, '--rate', '2k', '--count', '500', '--multicast-interface', hosts.a.veth]))
    const heard = summaryOf(await anySource.run.exited)
    assert.deepEqual([heard.received, heard.analysis.lost], [500, 0])

    const ssm = '232.77.2.1'
    const sourceSpecific = await recvIn(['recv', '0.0.0.0:0', '--group', ssm, '--source', hosts.a.address, '--interface', hosts.b.veth, '--analyze', 'udpcom', '--count', '500', '--duration', '20s'])
    summaryOf(await sendFrom(['send', `${ssm}:${sourceSpecific.port}`, '--rate', '2k', '--count', '500', '--multicast-interface', hosts.a.veth]))
    const heardSsm = summaryOf(await sourceSpecific.run.exited)
    assert.deepEqual([heardSsm.received, heardSsm.analysis.lost], [500, 0])
  } finally {
    hosts.remove()
  }
})

test('reports of send, ping and recv --analyze, in Chromium: plots drawn, the findings, no console errors', async (t) => {
  const noBrowser = browserMissing()
  if (noBrowser) return t.skip(noBrowser)
  const dir = tempDir()
  try {
    const files = { send: join(dir, 'send.html'), ping: join(dir, 'ping.html'), recv: join(dir, 'recv.html') }
    const { run: recv, port } = await listening(['recv', '127.0.0.1:0', '--analyze', 'udpcom', '--count', '2000', '--interval', '200ms', '--report', files.recv, '--duration', '20s'])
    summaryOf(await runCli(['send', `127.0.0.1:${port}`, '--rate', '4k', '--count', '2000', '--interval', '200ms', '--max-late', '100%', '--report', files.send, '--json']))
    summaryOf(await recv.exited)
    const { run: reflect, port: reflectPort } = await listening(['reflect', '127.0.0.1:0', '--count', '1500', '--duration', '20s'])
    summaryOf(await runCli(['ping', `127.0.0.1:${reflectPort}`, '--rate', '3k', '--count', '1500', '--interval', '200ms', '--report', files.ping, '--json']))
    summaryOf(await reflect.exited)

    const data = (file) => JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(readFileSync(file, 'utf8'))[1])
    const sendReport = data(files.send)
    assert.equal(sendReport.summary.find((r) => r.key === 'sent').value, 2000)
    assert.equal(sendReport.histograms[0].counts.reduce((a, b) => a + b, 0), 2000, 'the lateness histogram holds every packet')
    const pingReport = data(files.ping)
    assert.equal(pingReport.summary.find((r) => r.key === 'lost').value, 0)
    assert.ok(pingReport.summary.find((r) => r.key === 'rttP99Ns').value > 0)
    const recvReport = data(files.recv)
    assert.equal(recvReport.summary.find((r) => r.key === 'lost').value, 0)
    for (const report of [sendReport, pingReport, recvReport]) assert.ok(report.findings.some((f) => f.id === 'rt-permission'), "the doctor's findings")

    await checkReportInBrowser(t, files.send, 'report-cli-send.png', ['histogram-lateness', 'rate', 'lateness', 'loss'])
    await checkReportInBrowser(t, files.ping, 'report-cli-ping.png', ['histogram-lateness', 'rate', 'lateness', 'jitter', 'loss'])
    await checkReportInBrowser(t, files.recv, 'report-cli-recv-analyze.png', ['histogram-interArrival', 'rate', 'lateness', 'jitter', 'loss'])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
