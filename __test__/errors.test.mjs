// Every error is an Error with a string code: Node's codes for arguments, errno names with
// syscall and errno for OS errors, ERR_UDPCOM_* for ours. No input crashes the process.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'

import { UdpCom, isRoot, runAsNobody, udpcomThreads } from './helpers.mjs'

const make = (...args) => () => new UdpCom(...args)

test('ERR_INVALID_ARG_TYPE (TypeError) for wrong argument types', async () => {
  const cases = [
    make(1, 0, '127.0.0.1', 1),
    make('127.0.0.1', '0', '127.0.0.1', 1),
    make('127.0.0.1', 0, null, 1),
    make('127.0.0.1', 0, '127.0.0.1', 1n),
    make('127.0.0.1', 0, '127.0.0.1', 1, 'options'),
    make('127.0.0.1', 0, '127.0.0.1', 1, { capacity: '10' }),
    make('127.0.0.1', 0, '127.0.0.1', 1, { priority: null }),
    make('127.0.0.1', 0, '127.0.0.1', 1, { lockMemory: 1 }),
    make(),
  ]
  for (const call of cases) {
    assert.throws(call, (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG_TYPE', String(call))
  }
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9)
  udp.initSocket()
  udp.start()
  try {
    for (const bad of ['a string', 42, null, undefined, {}, [1, 2], new ArrayBuffer(4), new DataView(new ArrayBuffer(4))]) {
      assert.throws(() => udp.sendData(bad), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    }
    assert.throws(() => udp.sendData(Buffer.from('x'), 5), {
      code: 'ERR_INVALID_ARG_TYPE',
      message: 'The "timestampNs" argument must be of type bigint. Received type number (5)',
    })
    await assert.rejects(udp.receiveData('1000'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    await assert.rejects(udp.receiveData({}), { code: 'ERR_INVALID_ARG_TYPE' })
  } finally {
    udp.closeSocket()
  }
})

test('ERR_OUT_OF_RANGE (RangeError) for numbers outside their range', async () => {
  const cases = [
    make('127.0.0.1', 70000, '127.0.0.1', 1),
    make('127.0.0.1', -1, '127.0.0.1', 1),
    make('127.0.0.1', 1.5, '127.0.0.1', 1),
    make('127.0.0.1', NaN, '127.0.0.1', 1),
    make('127.0.0.1', 0, '127.0.0.1', 65536),
    make('127.0.0.1', 0, '127.0.0.1', 1, { capacity: 0 }),
    make('127.0.0.1', 0, '127.0.0.1', 1, { capacity: 2 ** 24 + 1 }),
    make('127.0.0.1', 0, '127.0.0.1', 1, { priority: 150 }),
    make('127.0.0.1', 0, '127.0.0.1', 1, { direction: 3 }),
    make('127.0.0.1', 0, '127.0.0.1', 1, { cpu: -1 }),
    make('127.0.0.1', 0, '127.0.0.1', 1, { rxCpu: 4096 }),
    make('127.0.0.1', 0, '127.0.0.1', 1, { spinNs: Infinity }),
    make('127.0.0.1', 0, '127.0.0.1', 1, { ringBytes: 1024 }),
  ]
  for (const call of cases) {
    assert.throws(call, (err) => err instanceof RangeError && err.code === 'ERR_OUT_OF_RANGE', String(call))
  }
  assert.throws(make('127.0.0.1', 70000, '127.0.0.1', 1), {
    message: 'The value of "localPort" is out of range. It must be >= 0 && <= 65535. Received 70000',
  })
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9)
  udp.initSocket()
  udp.start()
  try {
    assert.throws(() => udp.sendData(Buffer.from('x'), -1n), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => udp.sendData(Buffer.from('x'), 2n ** 64n), { code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => udp.sendData(Buffer.alloc(65508)), { code: 'ERR_OUT_OF_RANGE' })
    await assert.rejects(udp.receiveData(-1), { code: 'ERR_OUT_OF_RANGE' })
    await assert.rejects(udp.receiveData(-1n), { code: 'ERR_OUT_OF_RANGE' })
    await assert.rejects(udp.receiveData(1.5), { code: 'ERR_OUT_OF_RANGE' })
    await assert.rejects(udp.receiveData(NaN), { code: 'ERR_OUT_OF_RANGE' })
    // Nothing was queued by the failed calls.
    assert.equal(udp.getPacketStats().nPacketsQueued, 0)
  } finally {
    udp.closeSocket()
  }
})

test('ERR_INVALID_ARG_VALUE for unusable values', () => {
  assert.throws(make('not-an-ip', 0, '127.0.0.1', 1), {
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_VALUE',
    message: "The argument 'localIp' must be an IPv4 or IPv6 address. Received 'not-an-ip'",
  })
  assert.throws(make('127.0.0.1', 0, '::1', 1), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(make('127.0.0.1', 0, '300.1.1.1', 1), { code: 'ERR_INVALID_ARG_VALUE' })
  // A misspelt option is reported, not ignored.
  assert.throws(make('127.0.0.1', 0, '127.0.0.1', 1, { prority: 80 }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: /options\.prority/,
  })
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9)
  udp.initSocket()
  udp.start()
  try {
    const buffer = new ArrayBuffer(8)
    const view = new Uint8Array(buffer)
    structuredClone(buffer, { transfer: [buffer] })
    assert.throws(() => udp.sendData(view), { code: 'ERR_INVALID_ARG_VALUE', message: /detached/ })
  } finally {
    udp.closeSocket()
  }
})

test('ERR_UDPCOM_STATE for calls in the wrong order or direction', async () => {
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9)
  assert.throws(() => udp.start(), { code: 'ERR_UDPCOM_STATE', name: 'Error' })
  assert.throws(() => udp.sendData(Buffer.from('x')), { code: 'ERR_UDPCOM_STATE' })
  await assert.rejects(udp.receiveData(), { code: 'ERR_UDPCOM_STATE' })
  udp.initSocket()
  assert.throws(() => udp.initSocket(), { code: 'ERR_UDPCOM_STATE' })
  assert.throws(() => udp.sendData(Buffer.from('x')), { code: 'ERR_UDPCOM_STATE' }, 'sendData before start')
  udp.start()
  assert.throws(() => udp.start(), { code: 'ERR_UDPCOM_STATE' })
  udp.closeSocket()
})

test('OS errors carry the errno name as code, syscall and errno, like Node', () => {
  const holder = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9)
  holder.initSocket()
  const taken = new UdpCom('127.0.0.1', holder.localPort, '127.0.0.1', 9)
  assert.throws(() => taken.initSocket(), (err) => {
    assert.ok(err instanceof Error)
    assert.equal(err.code, 'EADDRINUSE')
    assert.equal(err.syscall, 'bind')
    assert.equal(err.errno, -98)
    assert.match(err.message, /^bind EADDRINUSE 127\.0\.0\.1:\d+$/)
    return true
  })
  holder.closeSocket()
  // Not an address of this machine (TEST-NET-1).
  assert.throws(() => new UdpCom('192.0.2.1', 0, '192.0.2.2', 9).initSocket(), {
    code: 'EADDRNOTAVAIL',
    syscall: 'bind',
  })
})

test('start() refuses a CPU that does not exist with EINVAL, naming the syscall, and leaves nothing running', () => {
  assert.deepEqual(udpcomThreads(), [], 'an earlier test left a worker running')
  // Each worker alone, and both where the other one's CPU exists (so that it may have started
  // before the refusal and must be stopped again).
  const cases = [{ cpu: 1000, direction: 0 }, { cpu: 1000, direction: 1 }, { cpu: 0, rxCpu: 1000 }, { cpu: 1000, rxCpu: 0 }]
  for (const options of cases) {
    const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, options)
    udp.initSocket()
    assert.throws(() => udp.start(), (err) => {
      assert.equal(err.code, 'EINVAL')
      assert.equal(err.syscall, 'sched_setaffinity')
      assert.match(err.message, /CPU 1000 does not exist/)
      return true
    })
    // Not a worker left behind (the one that failed, nor one started before it), right away.
    assert.deepEqual(udpcomThreads(), [], `${JSON.stringify(options)}: threads left running after the refused start`)
    // And the instance is not half started: it may be started again, which fails the same way.
    assert.throws(() => udp.start(), { code: 'EINVAL' })
    assert.deepEqual(udpcomThreads(), [])
    udp.closeSocket()
  }
})

const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

test('EACCES, EPERM, ENOMEM (as an unprivileged user): a low port, SCHED_FIFO, locking 128 MB', async (t) => {
  if (!isRoot) {
    t.skip('needs root to start a child as the unprivileged user nobody')
    return
  }
  const { code, stdout, stderr } = await runAsNobody(fixture('unprivileged.mjs'))
  assert.equal(code, 0, stderr)
  const result = JSON.parse(stdout)
  assert.equal(result.bind.code, 'EACCES')
  assert.equal(result.bind.syscall, 'bind')
  assert.equal(result.fifo.code, 'EPERM')
  assert.equal(result.fifo.syscall, 'sched_setscheduler')
  assert.match(result.fifo.message, /CAP_SYS_NICE/)
  assert.match(result.fifo.message, /ulimit -r/)
  assert.match(result.fifo.message, /limits\.conf/)
  assert.ok(['ENOMEM', 'EPERM'].includes(result.mlock.code), result.mlock.code)
  assert.equal(result.mlock.syscall, 'mlock')
  assert.match(result.mlock.message, /ulimit -l/)
  assert.equal(result.threadsAfter, 0, 'a refused start leaves no thread running')
})

test('methods called on something that is not a UdpCom throw a TypeError, never crash', () => {
  for (const name of ['sendData', 'sendBatch', 'getPacketStats', 'start']) {
    for (const receiver of [{}, null, undefined, Buffer.alloc(8), new (class Foo {})()]) {
      assert.throws(() => UdpCom.prototype[name].call(receiver, Buffer.from('x')), TypeError, `${name} on ${receiver}`)
    }
  }
  // A borrowed method on a real, started instance works through the hand-written fast path.
  const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 0 })
  udp.initSocket()
  udp.start()
  const { sendData } = UdpCom.prototype
  assert.equal(sendData.call(udp, Buffer.from('x')), true)
  udp.closeSocket()
  assert.throws(() => sendData.call(udp, Buffer.from('x')), { code: 'ERR_UDPCOM_STATE' })
})
