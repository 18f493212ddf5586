// A few seconds of the soak script (npm run soak runs it for 10 minutes), so that it cannot
// rot: it must exit 0 and print a summary in which the accounting is exact.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { runNode } from './helpers.mjs'

const script = fileURLToPath(new URL('../scripts/soak.mjs', import.meta.url))

test('soak smoke: 3 s at 5 kpps each way, identities hold every second and at the end', async (t) => {
  const { code, stdout, stderr } = await runNode([script], {
    timeoutMs: 30_000,
    env: { UDPCOM_SOAK_SECONDS: '3', UDPCOM_SOAK_PPS: '5000', UDPCOM_SOAK_CAPACITY: '4096' },
  })
  assert.equal(code, 0, `${stdout}\n${stderr}`)
  assert.equal(stdout.match(/^t=\s*\d+s /gm)?.length, 3, 'one line per second')
  const summary = JSON.parse(/^SOAK SUMMARY (.*)$/m.exec(stdout)[1])
  t.diagnostic(`RSS ${summary.rssStartMb} → ${summary.rssEndMb} MB`)
  assert.equal(summary.identitiesHeld, true)
  assert.deepEqual(summary.failures, [])
  for (const lane of summary.lanes) {
    assert.ok(lane.sent >= 0.95 * 3 * 5000, `${lane.lane}: sent ${lane.sent}`)
    assert.equal(lane.received + lane.kernelDrops, lane.sent)
    assert.equal(lane.deliveredToJs + lane.recvRingOverflow, lane.received)
  }
})
