// Lifecycle under stress, in child processes (a crash or hang there fails the test instead of
// killing the runner): a thousand lives leave no threads, file descriptors or memory behind;
// closed instances hold no file descriptor; 50 workers terminated at random moments, and
// process.exit() or SIGTERM in the middle of streaming, end cleanly and promptly.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { runNode } from './helpers.mjs'

const child = fileURLToPath(new URL('./fixtures/lifecycle.mjs', import.meta.url))

test('closed instances that JavaScript still references hold no file descriptor', async () => {
  // Regression: closeSocket() kept the receiver's eventfd until garbage collection.
  const { code, stdout, stderr } = await runNode([child, 'closed-kept', '300'])
  assert.equal(code, 0, stderr)
  const r = JSON.parse(stdout)
  assert.equal(r.kept, 300)
  assert.ok(r.after - r.before <= 2, `${r.after - r.before} fds held by 300 closed instances`)
})
