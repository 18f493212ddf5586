// An onPackets callback is ordinary JavaScript: it may call any method of the instance that
// calls it (regression: the binding held the instance borrowed while the callback ran, so
// getPacketStats() or closeSocket() from inside it panicked "RefCell already borrowed" and
// aborted the process).
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { pair, within, until, MS } from './helpers.mjs'

test('an onPackets callback may call getPacketStats, onPackets(null) and receiveData on its own instance', async () => {
  const { sender, receiver, close } = pair()
  try {
    let statsInside = null
    let resolveFirst
    const first = new Promise((resolve) => { resolveFirst = resolve })
    receiver.onPackets((packets) => {
      statsInside = receiver.getPacketStats()
      receiver.onPackets(null)
      resolveFirst(packets)
    })
    sender.sendData(Buffer.from('one'))
    const packets = await within(2000, first, 'the callback')
    assert.equal(packets[0].data.toString(), 'one')
    assert.equal(statsInside.nPacketsReceived, 1)
    assert.equal(statsInside.nPacketsDelivered, 1)
    // The callback removed itself: receiveData works again.
    sender.sendData(Buffer.from('two'))
    assert.equal((await within(2000, receiver.receiveData(2000n * MS))).data.toString(), 'two')
  } finally {
    close()
  }
})

test('an onPackets callback may stop or close its own instance; nothing runs afterwards', async () => {
  for (const how of ['stop', 'closeSocket']) {
    const { sender, receiver } = pair()
    try {
      let calls = 0
      let done
      const called = new Promise((resolve) => { done = resolve })
      receiver.onPackets(() => {
        calls++
        receiver[how]()
        done()
      }, 1)
      sender.sendBatch([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')])
      await within(2000, called, `the callback that calls ${how}()`)
      await new Promise((r) => setTimeout(r, 50))
      assert.equal(calls, 1, `the callback ran again after ${how}()`)
      if (how === 'closeSocket') {
        assert.throws(() => receiver.getPacketStats(), { code: 'ERR_UDPCOM_STATE' })
      } else {
        const stats = receiver.getPacketStats()
        assert.equal(stats.nPacketsReceived, stats.nPacketsDelivered + stats.nRecvRingOverflow + stats.nRecvDiscarded)
      }
    } finally {
      sender.closeSocket()
      if (how === 'stop') receiver.closeSocket()
    }
  }
})

test('onPackets set while packets are queued delivers them on a later tick, not inside the call', async () => {
  const { sender, receiver, close } = pair()
  try {
    sender.sendData(Buffer.from('queued'))
    await sender.drain()
    // The packet waits in the receive ring before onPackets is set (else this test would show
    // nothing about packets already queued).
    await until(() => receiver.getPacketStats().recvQueueLength === 1, 10_000, 'the packet queued in the receive ring')
    assert.equal(receiver.getPacketStats().nPacketsDelivered, 0)
    let insideCall = true
    let sawInside = null
    let done
    const delivered = new Promise((resolve) => { done = resolve })
    receiver.onPackets((packets) => {
      sawInside = insideCall
      receiver.getPacketStats()
      done(packets)
    })
    insideCall = false
    const packets = await within(2000, delivered, 'delivery of the queued packet')
    assert.equal(packets[0].data.toString(), 'queued')
    assert.equal(sawInside, false, 'the callback ran inside onPackets()')
  } finally {
    close()
  }
})
