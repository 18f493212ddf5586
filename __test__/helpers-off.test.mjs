// Without the JavaScript helpers (as in a context that cannot compile code from strings,
// simulated with UDPCOM_NO_JS_HELPERS=1), sendBatch and the packet objects take the native
// paths and behave the same.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { runNode } from './helpers.mjs'

const child = fileURLToPath(new URL('./fixtures/batch-roundtrip.mjs', import.meta.url))

test('batches and packet objects are the same with and without the JavaScript helpers', async () => {
  const runs = []
  for (const env of [{}, { UDPCOM_NO_JS_HELPERS: '1' }]) {
    const { code, stdout, stderr } = await runNode([child], { env })
    assert.equal(code, 0, stderr)
    runs.push(JSON.parse(stdout))
  }
  assert.deepEqual(runs[1], runs[0])
  assert.equal(runs[0].received.length, 300)
})
