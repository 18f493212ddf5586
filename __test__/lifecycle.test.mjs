// Lifecycle under stress, in child processes (a crash or hang there fails the test instead of
// killing the runner): a thousand lives leave no threads, file descriptors or memory behind;
// closed instances hold no file descriptor; 50 workers terminated at random moments, and
// process.exit() or SIGTERM in the middle of streaming, end cleanly and promptly.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { runNode, startNode } from './helpers.mjs'

const child = fileURLToPath(new URL('./fixtures/lifecycle.mjs', import.meta.url))
// "Promptly": a process that hangs on its way out hangs for ever, so 10 s catches it as surely
// as 2 s, without failing when a loaded machine takes a second or two to tear Node down.
const PROMPT_MS = 10_000

test('1,000 cycles of create/initSocket/start/stop/closeSocket leave no threads, fds or memory behind', async (t) => {
  const { code, stdout, stderr } = await runNode(['--expose-gc', child, 'cycles', '1000'], { timeoutMs: 120_000 })
  assert.equal(code, 0, stderr)
  const r = JSON.parse(stdout)
  t.diagnostic(`${r.cycles} cycles in ${r.ms} ms; RSS ${r.before.rssMb.toFixed(1)} → ${r.after.rssMb.toFixed(1)} MB; ` +
    `tasks ${r.before.tasks} → ${r.after.tasks}; fds ${r.before.fds} → ${r.after.fds}`)
  assert.equal(r.udpcomThreads, 0)
  assert.equal(r.after.tasks, r.before.tasks, 'threads left behind')
  assert.equal(r.after.fds, r.before.fds, 'file descriptors left behind')
  // Each life maps and frees rings of a few hundred KiB and 1 MiB of receive buffers; a leak
  // of any of them would grow RSS by hundreds of MB over 1,000 lives. (The smaller native
  // leak of start()/stop() has its own test below.)
  assert.ok(r.after.rssMb - r.before.rssMb < 16, `RSS grew by ${(r.after.rssMb - r.before.rssMb).toFixed(1)} MB`)
})

test('garbage collection of 20 running, unreferenced instances stops their threads and settles their promises', async () => {
  const { code, stdout, stderr } = await runNode(['--expose-gc', child, 'gc-many'])
  assert.equal(code, 0, stderr)
  const r = JSON.parse(stdout)
  assert.equal(r.during, 20)
  assert.equal(r.after, 0)
  // Each drain and receive either finished before the collection or was rejected by it.
  const total = Object.values(r.outcomes).reduce((a, b) => a + b, 0)
  assert.equal(total, 30)
  assert.deepEqual(Object.keys(r.outcomes).filter((o) => o !== 'resolved' && o !== 'ERR_UDPCOM_STOPPED'), [])
  assert.ok((r.outcomes.ERR_UDPCOM_STOPPED ?? 0) >= 10, JSON.stringify(r.outcomes))
})

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

test('50 workers streaming, terminated at random moments: no threads left, the main thread keeps working', async (t) => {
  const { code, signal, stdout, stderr } = await runNode([child, 'workers', '50'], { timeoutMs: 90_000 })
  assert.equal(signal, null, stderr)
  assert.equal(code, 0, stderr)
  const r = JSON.parse(stdout)
  t.diagnostic(`${r.count} workers (seed ${r.seed}), ${r.streamed} reached streaming before termination, ${r.ms} ms`)
  assert.ok(r.streamed > r.count / 4, `only ${r.streamed} of ${r.count} workers were terminated mid-stream`)
  assert.equal(r.udpcomThreadsAfterTerminate, 2, 'only the main thread\'s stream runs')
  assert.equal(r.mainStillReceives, true)
  assert.equal(r.udpcomThreadsAtEnd, 0)
})

test('process.exit() while 8 workers and the main thread stream exits 0 promptly', async () => {
  const { code, signal, stdout, stderr, ms } = await runNode([child, 'exit-with-workers'], { timeoutMs: 30_000 })
  assert.equal(signal, null, stderr)
  assert.equal(code, 0, stderr)
  assert.match(stdout, /exiting with 18 udpcom threads running/)
  assert.ok(ms < 15_000, `took ${ms} ms`)
})

test('SIGTERM mid-stream, default behaviour: the process dies by the signal, promptly, no abort or core', async () => {
  const run = startNode([child, 'sigterm'])
  await run.waitFor(/streaming with 4 udpcom threads/)
  const sent = Date.now()
  run.kill('SIGTERM')
  const { code, signal, stderr } = await run.exited
  const ms = Date.now() - sent
  assert.equal(signal, 'SIGTERM', `exit code ${code}, stderr: ${stderr}`)
  assert.equal(stderr, '')
  assert.ok(ms < PROMPT_MS, `died ${ms} ms after SIGTERM`)
})

test('SIGTERM mid-stream with a handler that calls closeSocket() and exits 0', async () => {
  const run = startNode([child, 'sigterm', 'handler'])
  await run.waitFor(/streaming with 4 udpcom threads/)
  const sent = Date.now()
  run.kill('SIGTERM')
  const { code, signal, stdout, stderr } = await run.exited
  const ms = Date.now() - sent
  assert.equal(signal, null, stderr)
  assert.equal(code, 0, stderr)
  assert.match(stdout, /closed on SIGTERM, 0 udpcom threads left/)
  assert.ok(ms < PROMPT_MS, `exited ${ms} ms after SIGTERM`)
})
