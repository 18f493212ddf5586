// Two hosts on one machine: network namespaces joined by a veth pair, a sender in one and a
// receiver in the other (child processes run with `ip netns exec`). The link goes down and
// comes back mid-stream, on the sender's side and on the receiver's side. What really happens
// (found out on Linux 6.18):
// - sender's link down: its route is gone, every send fails with ENETUNREACH; each failed
//   packet is counted in nSendErrors and lastError says so; nothing is sent, nothing hangs;
// - link up again: the route is back and packets flow again (the first few may wait for ARP);
// - receiver's link down: the sender's side loses carrier; no send fails, and the receiver
//   hears nothing. Two outcomes, depending on the state the sender's ARP entry is in:
//   - still valid: the kernel accepts every packet and the veth drops it (counted only in the
//     veth's TX dropped statistics); the sender goes on at full rate;
//   - being resolved again: packets wait in the neighbour's queue, which is charged to the
//     socket's send buffer; once that is full (~400 small packets) sendmmsg blocks
//     (SO_SNDTIMEO, retried), so the sender stalls and the backlog stays in udpcom's ring
//     (sendQueueLength grows).
//   When the link is back, traffic resumes and any backlog drains. Packets dropped meanwhile
//   are lost without any error: only sender.nPacketsSent - receiver.nPacketsReceived shows
//   them.
// Needs root (network namespaces); skips otherwise. Namespaces are unique per run and always
// deleted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import { isRoot, startNode, until } from './helpers.mjs'

const host = fileURLToPath(new URL('./fixtures/netns-host.mjs', import.meta.url))
const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString()

/** The last statistics line a child printed. */
function latest(run) {
  const lines = run.output().stdout.trim().split('\n').filter((l) => l.startsWith('{'))
  return lines.length ? JSON.parse(lines.at(-1)) : null
}

/** Waits until the child has printed a statistics line newer than now, and returns it. */
async function fresh(run) {
  const count = run.output().stdout.length
  await until(() => run.output().stdout.length > count + 10 && run.output().stdout.endsWith('\n'), 5000, 'fresh statistics')
  return latest(run)
}

/** Waits until two statistics lines in a row (50 ms apart) agree on `key`; returns it. */
async function stopsGrowing(run, key, ms = 10_000) {
  const deadline = Date.now() + ms
  let value = (await fresh(run))[key]
  for (;;) {
    const next = (await fresh(run))[key]
    if (next === value) return value
    if (Date.now() > deadline) throw new Error(`${key} still growing after ${ms} ms`)
    value = next
  }
}

function identities(s) {
  assert.equal(s.queued, s.sent + s.errors + s.discarded + s.sendQueue, `send identity: ${JSON.stringify(s)}`)
  assert.equal(s.received, s.delivered + s.overflow + s.recvDiscarded + s.recvQueue, `receive identity: ${JSON.stringify(s)}`)
  assert.equal(s.delivered, s.jsDelivered)
}

test('two hosts over a veth pair: the link goes down and comes back mid-stream', async (t) => {
  if (!isRoot) {
    t.skip('needs root to create network namespaces')
    return
  }
  const id = `${process.pid % 100_000}${Math.floor(Math.random() * 1000)}`
  const nsA = `udpcom-a-${id}`
  const nsB = `udpcom-b-${id}`
  const vethA = `uca${id}`.slice(0, 15)
  const vethB = `ucb${id}`.slice(0, 15)
  const [addrA, addrB] = ['10.201.7.1', '10.201.7.2']
  const runs = []
  try {
    ip('netns', 'add', nsA)
    ip('netns', 'add', nsB)
    ip('link', 'add', vethA, 'netns', nsA, 'type', 'veth', 'peer', 'name', vethB, 'netns', nsB)
    ip('-n', nsA, 'addr', 'add', `${addrA}/24`, 'dev', vethA)
    ip('-n', nsB, 'addr', 'add', `${addrB}/24`, 'dev', vethB)
    ip('-n', nsA, 'link', 'set', vethA, 'up')
    ip('-n', nsB, 'link', 'set', vethB, 'up')

    const receiver = startNode(['netns', 'exec', nsB, process.execPath, host, 'receive', addrB], { command: 'ip', timeoutMs: 60_000 })
    runs.push(receiver)
    const port = (await receiver.waitFor(/^ready \d+/)).split(' ')[1]
    const sender = startNode(['netns', 'exec', nsA, process.execPath, host, 'send', addrA, addrB, port, '2000'], { command: 'ip', timeoutMs: 60_000 })
    runs.push(sender)
    await sender.waitFor(/^ready \d+/)
    await until(() => (latest(receiver)?.received ?? 0) > 200, 10_000, 'packets flowing')

    // The sender's side goes down: every send fails with ENETUNREACH, counted.
    const linkUp = await fresh(sender)
    ip('-n', nsA, 'link', 'set', vethA, 'down')
    // What was under way settles: the sends have started failing.
    await until(() => latest(sender).errors > linkUp.errors, 10_000, 'sends failing once the link is down')
    const down = await fresh(sender)
    // Then 500 more failed sends (250 ms at 2 kpps), and not one sent without a link.
    await until(() => latest(sender).errors >= down.errors + 500, 10_000, '500 more sends failing while the link is down')
    const downLater = await fresh(sender)
    const heardWhileDown = latest(receiver).received
    t.diagnostic(`sender's link down: sent ${down.sent} → ${downLater.sent}, errors ${down.errors} → ${downLater.errors} (${downLater.lastError})`)
    assert.equal(downLater.sent, down.sent, 'packets were sent without a link')
    assert.equal(downLater.lastError, 'ENETUNREACH')
    assert.equal(downLater.lastSyscall, 'sendmmsg')
    identities(downLater)

    // Up again: traffic resumes.
    ip('-n', nsA, 'link', 'set', vethA, 'up')
    await until(() => latest(receiver).received > heardWhileDown + 500, 10_000, 'traffic resuming after the link came back')
    const resumed = await fresh(sender)
    assert.ok(resumed.sent > downLater.sent + 500)

    // The receiver's side goes down: no send fails, the receiver hears nothing (the sender
    // either goes on into the void or stalls with a backlog, see above). Then it comes back.
    const before = await fresh(sender)
    ip('-n', nsB, 'link', 'set', vethB, 'down')
    // Packets in flight land: the receiver's count stops moving.
    const heardBefore = await stopsGrowing(receiver, 'received')
    // Then 1,000 packets' worth of time (500 ms at 2 kpps) with the far end down.
    await until(() => latest(sender).queued >= before.queued + 1000, 10_000, '1,000 more packets queued while the far end is down')
    const during = await fresh(sender)
    const heardDuring = (await fresh(receiver)).received
    t.diagnostic(`receiver's link down: sender queued ${during.queued - before.queued} and sent ${during.sent - before.sent} more, errors ` +
      `+${during.errors - before.errors}, backlog in the ring ${before.sendQueue} → ${during.sendQueue}; ` +
      `receiver heard +${heardDuring - heardBefore}`)
    assert.equal(during.errors, before.errors, 'no send fails when the far end of the link is down')
    assert.equal(heardDuring, heardBefore, 'the receiver heard something over a link that is down')
    identities(during)
    ip('-n', nsB, 'link', 'set', vethB, 'up')
    await until(() => latest(receiver).received > heardDuring + 500, 10_000, 'traffic resuming on the receiver\'s side')
    await until(() => latest(sender).sendQueue < 200, 10_000, 'the backlog draining')

    // Both ends stop promptly and account for everything.
    sender.child.stdin.write('stop\n')
    const senderFinal = JSON.parse((await sender.waitFor(/^final /, 5000)).slice(6))
    receiver.child.stdin.write('stop\n')
    const receiverFinal = JSON.parse((await receiver.waitFor(/^final /, 5000)).slice(6))
    const [senderExit, receiverExit] = await Promise.all([sender.exited, receiver.exited])
    assert.equal(senderExit.code, 0, senderExit.stderr)
    assert.equal(receiverExit.code, 0, receiverExit.stderr)
    identities(senderFinal)
    identities(receiverFinal)
    assert.equal(receiverFinal.kernelDrops, 0)
    const lost = senderFinal.sent - receiverFinal.received
    t.diagnostic(`final: sender queued ${senderFinal.queued}, sent ${senderFinal.sent}, errors ${senderFinal.errors}, ` +
      `discarded ${senderFinal.discarded}; receiver got ${receiverFinal.received}; lost on the wire without an error ${lost}`)
    assert.ok(lost >= 0, 'the receiver got more than was sent')
    // At most what was sent while the receiver's link was down, and what the kernel held then
    // (a send buffer's worth), is lost.
    assert.ok(lost <= during.sent - before.sent + 1000, `${lost} packets lost`)
  } finally {
    for (const run of runs) run.kill('SIGKILL')
    await Promise.all(runs.map((run) => run.exited))
    for (const ns of [nsA, nsB]) {
      try {
        ip('netns', 'del', ns)
      } catch {
        // not created
      }
    }
  }
})
