// Reports (lib/report/): the histogram and recorder on their own, then the HTML in headless
// Chromium: a report of a real timed send (its lateness histogram and lateness over time) and
// one written by `udpcom recv --report` against a real sender. Each plot must be drawn (a canvas
// with pixels), with no console error and no request beyond the file itself (it works offline).
// Screenshots go to .tmp/; UDPCOM_DOCS_SCREENSHOTS=1 also writes docs/report.png.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL, fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

import { MS, now, pair, startNode } from './helpers.mjs'
import { browserMissing, checkReportInBrowser, openBrowser } from './browser.mjs'

const require = createRequire(import.meta.url)
const report = require('../dist/report/index.js')
const root = fileURLToPath(new URL('..', import.meta.url))

test('LogHistogram: buckets about 9% wide, percentiles within a bucket, exact count/min/max', () => {
  const histogram = new report.LogHistogram()
  for (let ns = 1; ns <= 100_000; ns++) histogram.record(ns)
  assert.equal(histogram.count, 100_000)
  assert.equal(histogram.minNs, 1)
  assert.equal(histogram.maxNs, 100_000)
  assert.equal(histogram.meanNs, 50_000.5)
  for (const q of [0.5, 0.9, 0.99]) {
    const exact = q * 100_000
    const got = histogram.percentileNs(q)
    assert.ok(got >= exact && got <= exact * 1.095, `p${q * 100}: ${got} vs ${exact}`)
  }
  const { upToNs, counts } = histogram.toHistogram('k', 'K', 'd')
  assert.equal(counts.reduce((a, b) => a + b, 0), 100_000)
  for (let i = 1; i < upToNs.length; i++) {
    assert.ok(upToNs[i] > upToNs[i - 1])
    // 2^(1/8) = 1.0905, a little more for small bounds, which are whole ns (rounded down).
    assert.ok(upToNs[i] / upToNs[i - 1] <= 1.0906 * ((upToNs[i - 1] + 1) / upToNs[i - 1]), `${upToNs[i - 1]} → ${upToNs[i]}`)
  }
  assert.ok(upToNs.at(-1) >= 100_000)
  // Values on a bound go into that bucket, values just above into the next.
  const edges = new report.LogHistogram()
  edges.record(16)
  edges.record(17)
  edges.record(18)
  assert.deepEqual(edges.toHistogram('e', 'E', '').counts, [1, 1, 1])
  assert.deepEqual(new report.LogHistogram().toHistogram('x', 'X', ''), { key: 'x', label: 'X', description: '', unit: 'ns', upToNs: [], counts: [] })
})

test('fromBuckets and SeriesRecorder: engine histograms and columns for uPlot', () => {
  const histogram = report.fromBuckets([{ upToNs: 16, count: 0 }, { upToNs: 32, count: 5 }, { upToNs: 64, count: 0 }, { upToNs: 128, count: 2 }], 'k', 'K', 'd')
  assert.deepEqual(histogram.upToNs, [32, 64, 128])
  assert.deepEqual(histogram.counts, [5, 0, 2])
  const recorder = new report.SeriesRecorder([{ key: 'a', label: 'A', unit: 'pps', plot: 'rate', description: '' }, { key: 'b', label: 'B', unit: 'ns', plot: 'jitter', description: '' }], 1e9)
  recorder.add(1, { a: 10, b: null })
  recorder.add(2, { a: 20, b: 5, other: 7 })
  recorder.add(3, { b: NaN })
  assert.deepEqual(recorder.toTimeSeries().timeS, [1, 2, 3])
  assert.deepEqual(recorder.toTimeSeries().values, [[10, 20, null], [null, 5, null]])
})

test('renderReport: data embedded as JSON that cannot close its script element', () => {
  const data = report.buildReport({
    title: 'a </script><script>window.pwned = 1</script> title',
    command: 'udpcom x',
    startedAt: new Date(0),
    endedAt: new Date(1000),
    summary: [],
    series: { intervalNs: 1e9, timeS: [], series: [], values: [] },
    histograms: [],
    findings: [],
  })
  const html = report.renderReport(data)
  assert.equal(html.match(/<\/script>/g).length, 5, 'one closing tag per script element, none from the data')
  assert.match(html, /<title>a &#60;\/script&#62;/)
  const embedded = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)[1]
  assert.deepEqual(JSON.parse(embedded), data)
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/)
})

test('a report of a real timed send, in Chromium: lateness histogram (log-log), lateness, jitter and loss over time', async (t) => {
  const missing = browserMissing()
  if (missing) return t.skip(missing)
  // 3,000 packets 200 µs apart; the sender's statistics sampled every 100 ms.
  const { sender, receiver, close } = await pair()
  const dir = mkdtempSync(join(tmpdir(), 'udpcom-report-'))
  try {
    const start = now() + 20n * MS
    const packets = Array.from({ length: 3000 }, (_, i) => {
      const packet = Buffer.alloc(64)
      packet.writeUInt32LE(i, 0)
      return packet
    })
    const stamps = BigUint64Array.from(packets, (_, i) => start + BigInt(i) * 200_000n)
    assert.equal(sender.sendBatch(packets, stamps), 3000)
    const series = [
      { key: 'ratePps', label: 'sent', unit: 'pps', plot: 'rate', description: 'Packets sent per second.' },
      { key: 'latenessP99Ns', label: 'p99 lateness (since start)', unit: 'ns', plot: 'lateness', description: 'Departure − target, 99th percentile.' },
      { key: 'latenessMaxNs', label: 'max lateness', unit: 'ns', plot: 'lateness', description: 'Largest departure − target.' },
      { key: 'interArrivalJitterNs', label: 'inter-arrival variation', unit: 'ns', plot: 'jitter', description: 'Mean |Δ inter-arrival| at the receiver.' },
      { key: 'lost', label: 'lost', unit: 'packets', plot: 'loss', description: 'Sent − received in the interval.' },
      { key: 'reordered', label: 'reordered', unit: 'packets', plot: 'loss', description: 'Arrived below the highest sequence number so far.' },
    ]
    const recorder = new report.SeriesRecorder(series, 100e6)
    let [lastSent, lastReceived, lastArrivalNs, lastGapNs] = [0, 0, undefined, undefined]
    let variation = { sum: 0, n: 0 }
    let lastSequence = -1
    let reordered = 0
    const started = Date.now()
    while (sender.getPacketStats().nPacketsSent < 3000 && Date.now() - started < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      for (const packet of await receiver.receiveBatch(4096, 0)) {
        const sequence = packet.data.readUInt32LE(0)
        if (sequence < lastSequence) reordered++
        lastSequence = Math.max(lastSequence, sequence)
        if (lastArrivalNs !== undefined) {
          const gapNs = Number(packet.timestampNs - lastArrivalNs)
          if (lastGapNs !== undefined) variation = { sum: variation.sum + Math.abs(gapNs - lastGapNs), n: variation.n + 1 }
          lastGapNs = gapNs
        }
        lastArrivalNs = packet.timestampNs
        lastReceived++
      }
      const stats = sender.getPacketStats()
      recorder.add((Date.now() - started) / 1000, {
        ratePps: (stats.nPacketsSent - lastSent) * 10,
        latenessP99Ns: stats.p99LatencyNs,
        latenessMaxNs: stats.maxLatencyNs,
        interArrivalJitterNs: variation.n > 0 ? variation.sum / variation.n : null,
        lost: Math.max(0, stats.nPacketsSent - lastReceived),
        reordered,
      })
      lastSent = stats.nPacketsSent
      variation = { sum: 0, n: 0 }
    }
    const stats = sender.getPacketStats()
    const data = report.buildReport({
      title: 'udpcom send 127.0.0.1 (3,000 packets, 200 µs apart)',
      command: 'report.test.mjs',
      startedAt: new Date(started),
      endedAt: new Date(),
      summary: [
        { key: 'sent', label: 'sent', value: stats.nPacketsSent, unit: 'packets' },
        { key: 'p99', label: 'lateness p99', value: stats.p99LatencyNs, unit: 'ns' },
        { key: 'late', label: 'late packets', value: stats.nLatePackets, unit: 'packets', problem: stats.nLatePackets > 0 },
      ],
      series: recorder.toTimeSeries(),
      histograms: [report.fromBuckets(stats.latencyHistogram, 'lateness', 'Send lateness', 'Departure − target time, doubling buckets.')],
      notes: ['A test report: a timed send through udpcom on loopback.'],
    })
    const file = join(dir, 'send.html')
    report.writeReport(file, data)
    await checkReportInBrowser(t, file, 'report-send.png', ['histogram-lateness', 'rate', 'lateness', 'jitter', 'loss'])
    if (process.env.UDPCOM_DOCS_SCREENSHOTS === '1') {
      const browser = await openBrowser({ width: 1100, height: 1000 })
      await browser.page.goto(pathToFileURL(file).href)
      await browser.page.waitForSelector('table.findings')
      await browser.page.screenshot({ path: join(root, 'docs/report.png'), clip: { x: 0, y: 0, width: 1100, height: 1000 } })
      await browser.close()
    }
  } finally {
    await close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('udpcom recv --report against a real sender, in Chromium', async (t) => {
  const missing = browserMissing()
  if (missing) return t.skip(missing)
  const dir = mkdtempSync(join(tmpdir(), 'udpcom-report-'))
  try {
    const file = join(dir, 'recv.html')
    const run = startNode([join(root, 'dist/cli/main.js'), 'recv', '127.0.0.1:0', '--count', '1000', '--interval', '200ms', '--report', file, '--json'])
    const { port } = JSON.parse(await run.waitFor(/"type":"listening"/))
    const socket = dgram.createSocket('udp4')
    for (let i = 0; i < 1000; i++) {
      await new Promise((resolve) => socket.send(Buffer.alloc(80), port, '127.0.0.1', resolve))
      if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 2))
    }
    socket.close()
    const { code, stdout, stderr } = await run.exited
    assert.equal(code, 0, stderr)
    assert.match(stdout, /"type":"report"/)
    const html = readFileSync(file, 'utf8')
    const data = JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)[1])
    assert.equal(data.schema, 'udpcom-report/1')
    assert.equal(data.summary.find((r) => r.key === 'received').value, 1000)
    assert.ok(data.series.timeS.length >= 1)
    assert.ok(data.findings.some((f) => f.id === 'rt-permission'))
    await checkReportInBrowser(t, file, 'report-recv.png', ['histogram-interArrival', 'rate', 'lateness', 'jitter', 'loss'])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
