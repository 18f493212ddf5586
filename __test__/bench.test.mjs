// The benchmark (npm run bench) is not a test; this shows that it works: every section runs in
// its short smoke mode (seconds, not minutes), the one table comes out complete, and the raw
// results show that every section really moved packets (a sender that delivers nothing would
// otherwise print "0k pps" and pass).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { runNode } from './helpers.mjs'

const bench = fileURLToPath(new URL('../benchmark/index.mjs', import.meta.url))

/** Every run of a list of repeats succeeded and counted more than zero of `key`. */
function moved(runs, key, what) {
  assert.ok(runs.length > 0, `${what}: no run`)
  for (const [i, run] of runs.entries()) {
    assert.equal(run.failed, undefined, `${what}, repeat ${i + 1} failed: ${run.failed}`)
    assert.ok(run[key] > 0, `${what}, repeat ${i + 1}: ${key} = ${run[key]}`)
  }
}

test('npm run bench works: the smoke run prints one table with every section, and every section moves packets', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'udpcom-bench-'))
  try {
    const json = join(dir, 'results.json')
    const { code, stdout, stderr } = await runNode([bench, '--smoke', '--json', json], { timeoutMs: 180_000 })
    assert.equal(code, 0, stderr)
    const tableLines = stdout.split('\n').filter((line) => line.startsWith('| '))
    assert.match(tableLines[0], /\| # \| Measurement \| udpcom \| node:dgram \|/)
    const sections = new Set(tableLines.slice(1).map((line) => line.split(' | ')[0].slice(2)))
    assert.deepEqual([...sections].sort((a, b) => a - b), ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11'])
    assert.match(stdout, /Built from commit \S+.*clocksource .*RT throttling .*rmem_max/)
    assert.match(stdout, /Steal time .* during each section: 1: /)
    const results = JSON.parse(readFileSync(json, 'utf8'))
    assert.equal(results.smoke, true)
    assert.equal(results.rows.length, tableLines.length - 1)
    for (const row of results.rows) {
      assert.ok(!/n\/a/.test(`${row.udpcom} ${row.dgram}`), `a figure is missing: ${JSON.stringify(row)}`)
      assert.ok(!/repeats failed/.test(row.note ?? ''), `a repeat failed: ${JSON.stringify(row)}`)
    }
    const raw = results.raw

    // 1. Every sender delivered packets to the independent receiver.
    for (const [variant, runs] of Object.entries(raw['send-throughput'])) moved(runs, 'received', `send throughput ${variant}`)

    // 2. Every receiver's search found a lossless rate above zero.
    for (const repeat of raw['receive-throughput'].repeats) {
      assert.equal(repeat.failed, undefined, repeat.failed)
      for (const [variant, result] of Object.entries(repeat)) {
        assert.ok(result.best > 0, `receive ${variant}: best lossless rate ${result.best}`)
        assert.ok(result.recvBufferBytes > 0, `receive ${variant}: socket buffer not read`)
      }
    }

    // 3. Every timed sender's packets were stamped by the receiver; the wire rows had a
    // transmit stamp for every packet, in the order sender clock ≤ TX stamp ≤ RX stamp.
    const timed = raw['timed-send']
    for (const [config, variants] of Object.entries(timed.runs)) {
      for (const [variant, runs] of Object.entries(variants)) moved(runs, 'count', `timed send ${config} ${variant}`)
    }
    for (const [rate, runs] of Object.entries(timed.nativeRuns)) moved(runs, 'count', `timed send ${rate} native`)
    for (const [rate, runs] of Object.entries(timed.stampedRuns)) moved(runs, 'count', `timed send ${rate} stamped`)
    for (const [rate, wire] of Object.entries(timed.wire)) {
      assert.ok(wire.sent > 0, `wire ${rate}: nothing sent`)
      assert.equal(wire.everyPacket, true, `wire ${rate}: ${wire.txTimestamps} of ${wire.sent} packets stamped`)
      assert.equal(wire.ordered, true, `wire ${rate}: sender clock ≤ wire ≤ arrival does not hold: ${JSON.stringify(wire)}`)
    }
    if (timed.rtUnavailable) t.diagnostic(`node:dgram under chrt not measured: ${timed.rtUnavailable}`)

    // 4. Every echo answered pings.
    for (const [variant, runs] of Object.entries(raw['round-trip'].runs)) moved(runs, 'count', `round trip ${variant}`)

    // 5. Both streams reached the receiver.
    for (const [variant, runs] of Object.entries(raw['event-loop-delay'])) moved(runs, 'received', `event-loop delay ${variant}`)

    // 6. Calls were timed, and the whole-cost senders delivered.
    const cost = raw['call-cost']
    for (const method of ['sendData', 'sendBatch', 'dgram', 'receiveData']) {
      assert.ok(cost.wall[method].length > 0 && cost.wall[method].every((ns) => ns > 0), `call cost ${method}: ${cost.wall[method]}`)
    }
    for (const [variant, runs] of Object.entries(cost.whole)) moved(runs, 'received', `whole cost ${variant}`)

    // 7. The idle instance really had its two workers.
    assert.equal(raw['idle-cpu'].udpcom.workerThreads, 2)

    // 8. The streams reached the independent receiver; the fast one too; the analysis was timed.
    const streams = raw.streams
    for (const [variant, runs] of Object.entries(streams.runs)) moved(runs, 'count', `stream section ${variant}`)
    assert.ok(streams.fast.received > 0, `fast stream: ${JSON.stringify(streams.fast)}`)
    assert.ok(streams.cost.udpcomNs > 0 && streams.cost.interleavedNs > 0, JSON.stringify(streams.cost))
    assert.ok(streams.idle.sent > 0, JSON.stringify(streams.idle))
    // 9. Both streams across the veth were stamped (as root; the row says why otherwise).
    if (raw.multicast.skipped) t.diagnostic(`multicast across a veth not measured: ${raw.multicast.skipped}`)
    else for (const [destination, runs] of Object.entries(raw.multicast.runs)) moved(runs, 'sent', `multicast section, ${destination}`)
    // 10. Every replayer's datagrams reached the independent capture.
    if (raw.replay.skipped) t.diagnostic(`replay fidelity not measured: ${raw.replay.skipped}`)
    else for (const [replayer, runs] of Object.entries(raw.replay.runs)) moved(runs, 'pairs', `replay section, ${replayer}`)
    // 11. Every GSO sender reached the counting receiver; every receiver had a lossless rate; the
    // event-loop receiver got its burst; the udpcom senders really used GSO.
    const gso = raw.gso
    for (const [sender, runs] of Object.entries(gso.send)) moved(runs, 'received', `GSO send ${sender}`)
    for (const v of ['sendBatchGso', 'flatGso']) assert.ok(gso.send[v].every((r) => r.sent.gso === true && r.sent.gsoFallbacks === 0), v)
    assert.ok(gso.send.sendBatchNoGso.every((r) => r.sent.gso === false))
    assert.equal(gso.receive.failed, undefined, gso.receive.failed)
    // node:dgram may lose a few on a loaded machine even at the smoke rate: it must have received.
    for (const [receiver, result] of Object.entries(gso.receive)) {
      const ok = receiver === 'dgram' ? result.trials.every((t) => t.received > 0) : result.best > 0
      assert.ok(ok, `GRO receive ${receiver}: ${JSON.stringify(result.trials)}`)
    }
    assert.ok(gso.eventLoop.received > 0 && Number.isFinite(gso.eventLoop.eventLoopP99Ns), JSON.stringify(gso.eventLoop))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
