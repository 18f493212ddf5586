// Process lifetime, in child processes: a started instance keeps the process alive unless
// unref'd; process.exit() mid-stream neither hangs nor crashes; terminated workers stop their
// threads; a garbage-collected instance stops its threads.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { runNode } from './helpers.mjs'

const child = fileURLToPath(new URL('./fixtures/lifetime.mjs', import.meta.url))

test('a started instance keeps the process alive until stop()', async () => {
  const { code, stdout, ms } = await runNode([child, 'ref'])
  assert.equal(code, 0)
  assert.match(stdout, /alive after 700 ms/)
  assert.ok(ms >= 700, `exited after ${ms} ms`)
})

// The child's time includes Node's start-up, which on a loaded machine can take seconds; a
// reference that keeps the loop alive keeps it alive for ever (a pending receive without a
// timeout), so 10 s catches it as surely as 2 s would.
const EXITS_MS = 10_000

test('an unref\'d instance (even with a pending receive) lets the process exit by itself', async () => {
  const { code, stdout, ms } = await runNode([child, 'unref'])
  assert.equal(code, 0)
  assert.match(stdout, /unref called/)
  assert.ok(ms < EXITS_MS, `took ${ms} ms`)
  const early = await runNode([child, 'unref-before-start'])
  assert.equal(early.code, 0)
  assert.ok(early.ms < EXITS_MS, `took ${early.ms} ms`)
})

test('ref() undoes unref()', async () => {
  const { code, stdout, ms } = await runNode([child, 'unref-then-ref'])
  assert.equal(code, 0)
  assert.match(stdout, /alive after 500 ms/)
  assert.ok(ms >= 500)
})

test('process.exit() while streaming exits cleanly', async () => {
  const { code, signal, stdout, stderr, ms } = await runNode([child, 'exit-mid-stream'])
  assert.equal(signal, null, stderr)
  assert.equal(code, 0, stderr)
  assert.match(stdout, /exiting with 2 udpcom threads running/)
  assert.ok(ms < EXITS_MS, `took ${ms} ms`)
})

test('terminating workers mid-stream stops their threads; the main thread keeps working', async () => {
  const { code, stdout, stderr } = await runNode([child, 'worker-terminate'])
  assert.equal(code, 0, stderr)
  assert.match(stdout, /workers streaming: 3, threads: 6/)
  assert.match(stdout, /after terminate: 0 udpcom threads/)
  assert.match(stdout, /main thread still works: port true/)
})

test('a garbage-collected running instance stops its threads', async () => {
  const { code, stdout, stderr } = await runNode(['--expose-gc', child, 'gc'])
  assert.equal(code, 0, stderr)
  assert.deepEqual(JSON.parse(stdout), { before: 0, during: 2, after: 0 })
})
