// Property-based tests (fast-check) of the whole API, in a child process so that a crash
// shows as a failing exit (a signal) and a hang as a timeout instead of killing the runner.
// The properties and arbitraries are in fixtures/fuzz.mjs; runs are seeded, so a failure can
// be replayed: UDPCOM_FUZZ_SEED=<seed> node __test__/fixtures/fuzz.mjs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { runNode } from './helpers.mjs'

const child = fileURLToPath(new URL('./fixtures/fuzz.mjs', import.meta.url))

test('random call sequences with hostile arguments: no crash, no hang, only documented errors, identities always hold', async (t) => {
  const seed = process.env.UDPCOM_FUZZ_SEED ?? '20241125'
  const runs = process.env.UDPCOM_FUZZ_RUNS ?? '300'
  const { code, signal, stdout, stderr } = await runNode([child], {
    timeoutMs: 150_000,
    env: { UDPCOM_FUZZ_SEED: seed, UDPCOM_FUZZ_RUNS: runs },
  })
  assert.equal(signal, null, `the fuzzer died by ${signal}\n${stderr}`)
  assert.equal(code, 0, `${stdout}\n${stderr}`)
  const r = JSON.parse(stdout)
  // Every run that was asked for ran: an interrupted or shortened run is not a pass.
  assert.equal(r.numRuns, Number(runs), `${r.numRuns} of ${runs} runs`)
  assert.equal(r.requestedRuns, Number(runs))
  t.diagnostic(`seed ${r.seed}, ${r.numRuns} runs, ${r.calls} calls in ${r.ms} ms; promises resolved ${r.resolved}, ` +
    `rejected ${r.rejected}; packets received ${r.packetsReceived}; error codes ${JSON.stringify(r.codes)}`)
  // The arguments really were hostile and the calls really did something.
  for (const code of ['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE', 'ERR_INVALID_ARG_VALUE', 'ERR_UDPCOM_STATE', 'ERR_UDPCOM_STOPPED']) {
    assert.ok(r.codes[code] > 0, `no ${code} was provoked`)
  }
  assert.ok(r.resolved > 0 && r.packetsReceived > 0)
})
