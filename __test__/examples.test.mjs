// The examples run: the original Python example, translated (examples/original.js), and the
// demo behind `npm run demo`, shortened.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { fileURLToPath } from 'node:url'

import { runNode } from './helpers.mjs'

const example = (name) => fileURLToPath(new URL(`../examples/${name}`, import.meta.url))

async function freePort() {
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  await new Promise((resolve) => socket.close(resolve))
  return port
}

test('the original Python example, translated, sends 100 triggers 100 µs apart and hears them', async () => {
  const port = await freePort()
  const { code, stdout, stderr } = await runNode([example('original.js')], { env: { UDPCOM_EXAMPLE_PORT: String(port) } })
  assert.equal(code, 0, stderr)
  assert.match(stdout, /first: "trigger 0" arrived \d+ ns after its time/)
  const [, sent, received, maxLatency] = /sent (\d+) received (\d+) max latency (\d+) ns/.exec(stdout)
  assert.equal(Number(sent), 100)
  assert.equal(Number(received), 100)
  assert.ok(Number(maxLatency) < 50e6)
})

test('the demo streams at a steady rate and prints the statistics', async () => {
  const { code, stdout, stderr } = await runNode([example('demo.js')], {
    env: { UDPCOM_DEMO_SECONDS: '0.5', UDPCOM_DEMO_RATE: '2000' },
  })
  assert.equal(code, 0, stderr)
  assert.match(stdout, /sent 1000, received 1000, lost 0/)
  assert.match(stdout, /sender latency \(left - target\): +p50 [\d.]+ µs/)
  assert.match(stdout, /arrival lateness/)
})
