// lockMemory: the rings, or everything but V8's heap ('all'), are locked into RAM at start.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { UdpCom, isRoot, runNode } from './helpers.mjs'

const child = fileURLToPath(new URL('./fixtures/lock-memory.mjs', import.meta.url))

/** Runs the fixture with one lockMemory value; it must exit 0 (a crash at exit is a failure). */
async function locked(value) {
  const { code, signal, stdout, stderr } = await runNode(['--expose-gc', child, value])
  assert.equal(signal, null, `lockMemory ${value}: the process died by ${signal}\n${stderr.slice(0, 2000)}`)
  assert.equal(code, 0, `lockMemory ${value}: exit code ${code}\n${stderr.slice(0, 2000)}`)
  return JSON.parse(stdout)
}

test('lockMemory locks the rings, or the whole process', async (t) => {
  if (!isRoot) {
    t.skip('needs root (or CAP_IPC_LOCK and a large ulimit -l) to lock tens of MB')
    return
  }
  const none = await locked('false')
  assert.equal(none.after, none.before)
  // Two rings of 65536 packets: 2 × 32 MiB arenas plus the slots; the rest of the process
  // (Node, V8's heap) is not locked, so less than what is resident is.
  const rings = await locked('true')
  assert.ok(rings.after - rings.before >= 64 * 1024, `locked ${rings.after - rings.before} kB`)
  assert.ok(rings.after < rings.residentKb, `rings only, yet ${rings.after} of ${rings.residentKb} kB resident are locked`)
  // 'all': the rings, and every readable file-backed mapping (Node's, its libraries' and the
  // addon's code and data), not V8's heap — and the process survives garbage collection and exit.
  const all = await locked('all')
  const ringsKb = rings.after - rings.before
  assert.ok(all.after - all.before >= ringsKb + 0.9 * all.filesKb, `'all' locked ${all.after - all.before} kB: rings ${ringsKb} kB + files ${all.filesKb} kB`)
  assert.ok(all.filesKb > 10 * 1024, `${all.filesKb} kB of file mappings`)
})

test('lockMemory values are checked', () => {
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { lockMemory: 'heap' }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { lockMemory: 1 }), { code: 'ERR_INVALID_ARG_TYPE' })
})

