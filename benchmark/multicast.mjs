// 9. Timed sending to a multicast group across a veth pair, against the same stream to a unicast
// peer across the same veth: a group costs the sender nothing in lateness.
//
// Two network namespaces joined by a veth pair (created for the section, deleted after). In
// the receiving one, the independent receiver of section 3 (engine/examples/stamp_receiver,
// CPU 0) stamps every datagram with the kernel's software RX stamp as it comes off the veth:
// bound to 0.0.0.0 and joined to the group for the multicast runs, the same for the unicast
// runs (which it hears on its veth address). In the sending one, section 3's udpcom sender
// (timed-send.mjs, role udpcom: worker pinned to CPU 1 under SCHED_FIFO 80, JavaScript on
// CPU 0) sends 10 kpps of 64-byte packets, each with its target time, connected to the group
// (multicast.interface: the veth, loopback off: nobody on the sending host listens) or to the
// unicast peer. Lateness = kernel arrival − target. Runs alternate, `repeats` of each; the row
// shows medians of the percentiles and the range of p99.
//
// Needs root (network namespaces, SCHED_FIFO); the row says so otherwise.

import { BIN, CPU, Child, attempt, failedRuns, failureNote, fmtCount, fmtNs, fmtPercentiles, fmtRatio, goodRuns, nodeRole, ratio, settle, summarize, verdict, vethNamespaces } from './lib.mjs'
import { withinNoise } from './timed-send.mjs'

const RATE = 10_000
const GROUP = '239.203.0.1'
const [SENDER, RECEIVER] = ['10.203.0.1', '10.203.0.2']

/** One run: the stream to `address` (the group or the peer), stamped by a fresh receiver. */
async function measure(ns, address, seconds) {
  const join = address === GROUP ? ['--join', GROUP, '--join-on', RECEIVER] : []
  const receiver = new Child(BIN('stamp_receiver'), ['--mode', 'stamp', '--bind', '0.0.0.0', ...join, '--cpu', CPU.INSTRUMENT, '--idle-ms', 600_000].map(String),
    { netns: ns.receive, name: 'stamp_receiver' })
  try {
    const port = await receiver.ready()
    const extra = { multicast: { interface: 'veth0', loopback: false } }
    const sender = nodeRole(new URL('./timed-send.mjs', import.meta.url), 'udpcom', { port, rate: RATE, seconds, local: SENDER, address, extra },
      { cpu: CPU.APP, netns: ns.send })
    await sender.ready()
    const sent = await sender.json(seconds * 1000 + 30_000)
    await sender.close()
    const stamps = await settle(receiver, sent.sent)
    return { p50: stamps.p50Ns ?? NaN, p99: stamps.p99Ns ?? NaN, p999: stamps.p999Ns ?? NaN, max: stamps.maxNs ?? NaN, lost: sent.sent - stamps.count, sent: sent.sent, errors: sent.errors }
  } finally {
    await receiver.close()
  }
}

export async function run({ smoke }) {
  const name = `Timed send ${RATE / 1000} kpps across a veth pair, to a multicast group and to a unicast peer: lateness p50 / p99 (range) / p99.9 / worst max`
  if (process.getuid?.() !== 0) {
    const why = 'needs root (network namespaces, SCHED_FIFO)'
    return { rows: [{ section: '9', name, udpcom: `— (${why})`, dgram: '—', ratio: '—', native: '—', target: '—', met: undefined }], raw: { skipped: why } }
  }
  const seconds = smoke ? 0.3 : 5
  const repeats = smoke ? 1 : 3
  const runs = { multicast: [], unicast: [] }
  const { ns, remove } = vethNamespaces('bench', SENDER, RECEIVER)
  try {
    for (let r = 0; r < repeats; r++) {
      runs.multicast.push(await attempt(`multicast repeat ${r + 1}`, () => measure(ns, GROUP, seconds)))
      runs.unicast.push(await attempt(`unicast repeat ${r + 1}`, () => measure(ns, RECEIVER, seconds)))
    }
  } finally {
    remove()
  }
  const p99 = (list) => summarize(list.map((x) => x.p99)).median
  const lost = (list) => goodRuns(list).reduce((sum, x) => sum + x.lost, 0)
  const describe = (list) => {
    const good = goodRuns(list)
    if (good.length === 0) return 'n/a (every repeat failed)'
    return `${fmtPercentiles(good)}; lost ${fmtCount(lost(list))} of ${fmtCount(good.reduce((sum, x) => sum + x.sent, 0))}`
  }
  const notes = Object.entries(runs).map(([what, list]) => failureNote(failedRuns(list), repeats, what)).filter(Boolean)
  const judged = verdict(withinNoise(p99(runs.multicast), p99(runs.unicast)) && lost(runs.multicast) === 0,
    { 'multicast p99': p99(runs.multicast), 'unicast p99': p99(runs.unicast) }, notes)
  return {
    rows: [{
      section: '9',
      name,
      udpcom: `to ${GROUP}: ${describe(runs.multicast)}; to the unicast peer: ${describe(runs.unicast)}`,
      dgram: '— (udpcom against itself: the same sender, two destinations)',
      ratio: `multicast p99 / unicast p99 ${fmtRatio(ratio(p99(runs.multicast), p99(runs.unicast)))}`,
      native: '—',
      target: `multicast p99 ≤ unicast p99 (${fmtNs(p99(runs.unicast))}) + max(1 µs, 20%); nothing lost`,
      met: notes.length > 0 && judged.met ? null : judged.met,
      note: judged.note,
    }],
    raw: { runs },
  }
}
