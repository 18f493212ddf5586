// The examples run: the original Python example, translated (examples/original.js), and the
// demo behind `npm run demo`, shortened.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import { freePort, runNode, isRoot, until } from './helpers.mjs'

const example = (name) => fileURLToPath(new URL(`../examples/${name}`, import.meta.url))


/** Runs the translated Python example on `port`; returns how late its first trigger arrived. */
async function runOriginal(port) {
  const { code, stdout, stderr } = await runNode([example('original.js')], { env: { UDPCOM_EXAMPLE_PORT: String(port) } })
  assert.equal(code, 0, stderr)
  const first = /first: "trigger 0" arrived (\d+) ns after its time/.exec(stdout)
  assert.ok(first, stdout)
  const [, sent, received, maxLatency] = /sent (\d+) received (\d+) max latency (\d+) ns/.exec(stdout)
  assert.equal(Number(sent), 100)
  assert.equal(Number(received), 100)
  assert.ok(Number(maxLatency) < 500e6, `max latency ${maxLatency} ns`)
  return BigInt(first[1])
}

test('the original Python example, translated, sends 100 timed triggers and hears them', async () => {
  await runOriginal(await freePort())
})

test('the original example\'s triggers leave 100 µs apart (kernel stamps of tcpdump on lo)', async (t) => {
  if (!isRoot) {
    t.skip('needs root to capture on lo with tcpdump')
    return
  }
  const port = await freePort()
  // -tt: the kernel's stamp of each packet on lo, seconds.nanoseconds (CLOCK_REALTIME: only
  // differences are used). On lo each packet is seen once.
  const tcpdump = spawn('tcpdump', ['-i', 'lo', '-nn', '-l', '-tt', '--time-stamp-precision=nano',
    'udp', 'and', 'src', 'port', String(port), 'and', 'dst', 'port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let missing = null
  let out = ''
  let err = ''
  tcpdump.stdout.on('data', (d) => { out += d })
  tcpdump.stderr.on('data', (d) => { err += d })
  const exited = new Promise((resolve) => {
    tcpdump.on('close', resolve)
    tcpdump.on('error', (error) => {
      missing = error
      resolve()
    })
  })
  try {
    await until(() => missing !== null || /listening on lo/.test(err) || tcpdump.exitCode !== null, 10_000, 'tcpdump listening')
    if (missing?.code === 'ENOENT') {
      t.skip('tcpdump is not installed (Debian package tcpdump)')
      return
    }
    assert.equal(tcpdump.exitCode, null, `tcpdump: ${err}`)
    const firstLateNs = await runOriginal(port)
    const line = new RegExp(`^(\\d+)\\.(\\d{9}) IP 127\\.0\\.0\\.1\\.${port} > 127\\.0\\.0\\.1\\.${port}: UDP, length (\\d+)`, 'gm')
    // Triggers due together (one late, the next already due) leave as one GSO message, which
    // tcpdump on lo shows as one frame of their summed length: each trigger in it gets the
    // frame's stamp (it left then). Trigger i is the payload `trigger ${i}`.
    const stamps = () => {
      const at = []
      for (const m of out.matchAll(line)) {
        const stamp = BigInt(m[1]) * 1_000_000_000n + BigInt(m[2])
        for (let bytes = Number(m[3]); bytes > 0 && at.length < 100; ) {
          bytes -= `trigger ${at.length}`.length
          at.push(stamp)
        }
      }
      return at
    }
    await until(() => stamps().length >= 100, 10_000, 'tcpdump printing the 100 triggers')
    const at = stamps()
    assert.equal(at.length, 100, `tcpdump saw ${at.length} packets`)
    // Never early: trigger i is due i × 100 µs after trigger 0's time, and trigger 0 left at
    // most `firstLateNs` after its time (it arrived then), so it leaves at least
    // i × 100 µs − firstLateNs after trigger 0.
    for (let i = 1; i < at.length; i++) {
      assert.ok(at[i] >= at[i - 1], `trigger ${i} before trigger ${i - 1}`)
      assert.ok(at[i] - at[0] >= BigInt(i) * 100_000n - firstLateNs,
        `trigger ${i} left ${at[i] - at[0]} ns after trigger 0: too early (trigger 0 was ${firstLateNs} ns late)`)
    }
    // Not spread out either: late triggers bunch up (they leave at once), they never drift
    // apart, so most gaps are at most the period.
    const gaps = at.slice(1).map((ns, i) => Number(ns - at[i])).sort((a, b) => a - b)
    const medianGap = gaps[Math.floor(gaps.length / 2)]
    t.diagnostic(`first trigger ${firstLateNs} ns late; gaps on the wire: median ${medianGap} ns, ` +
      `min ${gaps[0]} ns, max ${gaps.at(-1)} ns; span ${at.at(-1) - at[0]} ns`)
    assert.ok(medianGap <= 150_000, `median gap ${medianGap} ns: the triggers are not 100 µs apart`)
  } finally {
    tcpdump.kill('SIGINT')
    await exited
  }
})

test('the demo streams at a steady rate and prints the statistics', async () => {
  const { code, stdout, stderr } = await runNode([example('demo.js')], {
    env: { UDPCOM_DEMO_SECONDS: '0.5', UDPCOM_DEMO_RATE: '2000' },
  })
  assert.equal(code, 0, stderr)
  assert.match(stdout, /sent 1000, received 1000, lost 0/)
  assert.match(stdout, /sender latency \(left - target\): +p50 [\d.]+ µs/)
  assert.match(stdout, /arrival lateness/)
})
