// Arguments can run JavaScript while udpcom reads them (getters on array elements, on a
// view's `buffer`). Regression: sendBatch took each packet's bytes while reading the packets
// array, so a later getter that detached (transferred) an earlier packet's buffer and let it be
// collected made sendBatch read freed memory (SIGSEGV). In a child, so a crash fails the test.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { runNode } from './helpers.mjs'

const child = fileURLToPath(new URL('./fixtures/detach.mjs', import.meta.url))

test('sendBatch with getters that detach an already-read packet: a coded error or a snapshot, never a crash', async () => {
  const { code, signal, stdout, stderr } = await runNode(['--expose-gc', child])
  assert.equal(signal, null, `the child died by ${signal}: ${stderr}`)
  assert.equal(code, 0, stderr)
  const r = JSON.parse(stdout)
  assert.deepEqual(r.codes, {
    'timestamps getter': 'ERR_INVALID_ARG_VALUE', // the packet is detached by the time it is read
    // sendBatch copies each packet as it reads it: the packet detached later was already
    // copied, and is sent as it was.
    'packets getter': 'returned 2',
    'buffer getter': 'returned 2', // udpcom never reads a view's `buffer` property
  })
  assert.equal(r.queued, 40)
  assert.equal(r.sent, 40)
})

test('a getter or Proxy trap that throws: a coded error (a rejection for receiveData), never the raw exception or ERR_UDPCOM_INTERNAL', async () => {
  // Regression: the getter's exception stayed pending, so receiveData/receiveBatch threw it
  // synchronously (they are documented never to throw), and a throwing options getter
  // surfaced as ERR_UDPCOM_INTERNAL ("a bug").
  const { UdpCom } = await import('./helpers.mjs')
  const trap = () => new Proxy({}, { get() { throw new Error('trap') } })
  const throwingArray = () => {
    const array = []
    Object.defineProperty(array, '0', { get() { throw new Error('getter') }, enumerable: true })
    array.length = 1
    return array
  }
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { get capacity() { throw new Error('getter') } }), {
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_VALUE',
    message: /"options.capacity" property could not be read. Received an exception: getter/,
  })
  assert.throws(() => new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, trap()), { code: 'ERR_INVALID_ARG_VALUE' })
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9)
  udp.initSocket()
  udp.start()
  try {
    let pending
    assert.doesNotThrow(() => { pending = udp.receiveData(trap()) })
    await assert.rejects(pending, { code: 'ERR_INVALID_ARG_TYPE' })
    assert.doesNotThrow(() => { pending = udp.receiveBatch(trap()) })
    await assert.rejects(pending, { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => udp.sendData(trap()), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => udp.sendBatch(throwingArray()), { code: 'ERR_INVALID_ARG_VALUE', message: /"packets\[0\]"/ })
    assert.throws(() => udp.sendBatch([Buffer.from('x')], throwingArray()), { code: 'ERR_INVALID_ARG_VALUE', message: /"timestampsNs\[0\]"/ })
    assert.equal(udp.getPacketStats().nPacketsQueued, 0)
    // Nothing is left pending: the next call works normally.
    assert.equal(udp.sendData(Buffer.from('fine')), true)
  } finally {
    udp.closeSocket()
  }
})
