// lockMemory: the rings (mlock) or the whole process (mlockall) are locked into RAM at start.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { UdpCom, isRoot, runNode } from './helpers.mjs'

const child = fileURLToPath(new URL('./fixtures/lock-memory.mjs', import.meta.url))

test('lockMemory locks the rings, or the whole process', async (t) => {
  if (!isRoot) {
    t.skip('needs root (or CAP_IPC_LOCK and a large ulimit -l) to lock tens of MB')
    return
  }
  const none = JSON.parse((await runNode([child, 'false'])).stdout)
  assert.equal(none.after, none.before)
  // Two rings of 65536 packets: 2 × 32 MiB arenas plus the slots.
  const rings = JSON.parse((await runNode([child, 'true'])).stdout)
  assert.ok(rings.after - rings.before >= 64 * 1024, `locked ${rings.after - rings.before} kB`)
  const all = JSON.parse((await runNode([child, 'all'])).stdout)
  assert.ok(all.after >= rings.after, `mlockall locked ${all.after} kB`)
})

test('lockMemory values are checked', () => {
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { lockMemory: 'heap' }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { lockMemory: 1 }), { code: 'ERR_INVALID_ARG_TYPE' })
})

