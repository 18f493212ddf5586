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

test('start()/stop() leaks no native memory (10,000 lives)', async (t) => {
  // Regression: napi-rs's remove_env_cleanup_hook never freed the hook's data, so every
  // start()/stop() leaked it and, through the Weak in it, the instance's whole allocation
  // (about 1 KB; +6 MB here before the fix).
  const { code, stdout, stderr } = await runNode(['--expose-gc', child, 'start-stop', '10000'], { timeoutMs: 120_000 })
  assert.equal(code, 0, stderr)
  const r = JSON.parse(stdout)
  const grownMb = r.after - r.before
  t.diagnostic(`native memory (RSS - V8 heap) ${r.before.toFixed(1)} → ${r.after.toFixed(1)} MB over ${r.lives} lives`)
  assert.ok(grownMb < 2, `native memory grew by ${grownMb.toFixed(1)} MB`)
})
