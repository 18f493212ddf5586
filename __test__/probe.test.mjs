// probeWakeups(): the engine's wake-up probe through the public API. Only shapes, counts and
// errors are checked: the figures themselves depend on the machine (see `udpcom doctor`).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isRoot, threadScheduling, within } from './helpers.mjs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { probeWakeups } = require('..')

test('probeWakeups measures both phases and leaves the calling thread as it was', async () => {
  const before = threadScheduling(process.pid)
  const probe = await within(10_000, probeWakeups({ durationNs: 100_000_000, periodNs: 1_000_000, spinNs: 50_000_000, cpu: 0 }), 'probe')
  assert.deepEqual(Object.keys(probe).sort(), ['cpuLoss', 'wakeups'])
  const { wakeups, cpuLoss } = probe
  assert.equal(wakeups.count, 100)
  assert.ok(wakeups.sleeps >= 100)
  assert.ok(wakeups.p50Ns <= wakeups.p99Ns && wakeups.p99Ns <= wakeups.p999Ns && wakeups.p999Ns <= wakeups.maxNs, JSON.stringify(wakeups))
  assert.ok(wakeups.over1ms <= wakeups.count)
  assert.equal(cpuLoss.spinNs, 50_000_000)
  assert.ok(cpuLoss.gapP50Ns <= cpuLoss.gapP99Ns && cpuLoss.gapP99Ns <= cpuLoss.gapMaxNs, JSON.stringify(cpuLoss))
  assert.ok(cpuLoss.gaps === 0 || cpuLoss.gapP50Ns > 5000, 'a gap is longer than 5 µs')
  assert.ok(cpuLoss.lostNs >= cpuLoss.gapMaxNs)
  assert.deepEqual(threadScheduling(process.pid), before, 'the main thread is neither pinned nor real-time afterwards')
})

test('probeWakeups under SCHED_FIFO, where permitted', async (t) => {
  if (!isRoot) return t.skip('needs root (or CAP_SYS_NICE) for SCHED_FIFO')
  const probe = await within(10_000, probeWakeups({ durationNs: 20_000_000, spinNs: 10_000_000, priority: 10, cpu: 1 }), 'probe')
  assert.equal(probe.wakeups.count, 20)
})

test('a phase of length 0 is left out', async () => {
  assert.deepEqual(await probeWakeups({ durationNs: 0, spinNs: 0 }), {})
  const only = await probeWakeups({ durationNs: 0, spinNs: 1_000_000 })
  assert.deepEqual(Object.keys(only), ['cpuLoss'])
})

test('bad options reject with coded errors naming the option', async () => {
  await assert.rejects(probeWakeups(5), { code: 'ERR_INVALID_ARG_TYPE' })
  await assert.rejects(probeWakeups({ spinMs: 5 }), { code: 'ERR_INVALID_ARG_VALUE', message: /"options.spinMs".*known: durationNs/ })
  await assert.rejects(probeWakeups({ durationNs: '1s' }), { code: 'ERR_INVALID_ARG_TYPE', message: /options.durationNs/ })
  await assert.rejects(probeWakeups({ periodNs: 1.5e6 + 0.5 }), { code: 'ERR_OUT_OF_RANGE', message: /options.periodNs.*an integer/ })
  await assert.rejects(probeWakeups({ periodNs: 1000 }), { code: 'ERR_OUT_OF_RANGE', message: /options.periodNs/ })
  await assert.rejects(probeWakeups({ priority: 10, spinNs: 950_000_000 }), { code: 'ERR_OUT_OF_RANGE', message: /options.spinNs.*900000000/ })
  await assert.rejects(probeWakeups({ priority: 100 }), { code: 'ERR_OUT_OF_RANGE', message: /options.priority/ })
  await assert.rejects(probeWakeups({ cpu: 1000, durationNs: 0, spinNs: 0 }), { code: 'EINVAL', syscall: 'sched_setaffinity' })
})
