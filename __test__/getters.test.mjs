// Arguments can run JavaScript while udpcom reads them (getters on array elements, on a
// view's `buffer`). Regression: sendBatch took each packet's bytes while reading the packets
// array, so a later getter that detached (transferred) an earlier packet's buffer and let it be
// collected made sendBatch read freed memory (SIGSEGV). In a child, so a crash fails the test.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { runNode } from './helpers.mjs'

const child = fileURLToPath(new URL('./fixtures/detach.mjs', import.meta.url))

test('sendBatch with getters that detach an already-read packet: a coded error, never a crash', async () => {
  const { code, signal, stdout, stderr } = await runNode(['--expose-gc', child])
  assert.equal(signal, null, `the child died by ${signal}: ${stderr}`)
  assert.equal(code, 0, stderr)
  const r = JSON.parse(stdout)
  assert.deepEqual(r.codes, {
    'timestamps getter': 'ERR_INVALID_ARG_VALUE', // the packet is detached by the time it is read
    'packets getter': 'ERR_INVALID_ARG_VALUE',
    'buffer getter': 'returned 2', // udpcom never reads a view's `buffer` property
  })
  assert.equal(r.queued, 20)
  assert.equal(r.sent, 20)
})
