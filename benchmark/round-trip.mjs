// 4. Round trip through JavaScript: an independent native pinger (udp_load ping, CPU 0) sends
// a 64-byte datagram, the echo receives it and sends it back, the pinger measures the round
// trip on CLOCK_MONOTONIC; one ping at a time, 200 µs apart; 10,000 pings per run, 3 runs
// interleaved: median of each percentile, range of the p50, worst maximum. A ping not
// answered within 200 ms is lost: counted, shown, and no udpcom row with a lost ping is met.
//
// Echoes (JavaScript thread on CPU 1; udpcom's workers on CPU 1 too, SCHED_OTHER):
// - udpcom onPackets: the callback sends each packet back with sendData(packet.data);
// - udpcom receiveData: `await receiveData()` then sendData, in a loop;
// - udpcom's native reflector (reflect: true, deliver: false): the receive worker sends each
//   datagram straight back, no JavaScript in the loop (issue 11's target: p50 ≤ 0.6 × dgram);
// - node:dgram: a 'message' listener that calls socket.send(msg);
// - native ceiling: native_bench echo, the engine's receive ring drained by a Rust thread
//   that sends each packet back through the engine, with inlineSend as the udpcom rows (no
//   JavaScript).
// CPU per ping: the echo process's CPU time (every thread) from its start to the end of the
// run, per ping answered.
import {
  CPU, tool, nodeRole, roleOptions, emit, loadUdpCom, freePort, cpuMeter, attempt, goodRuns, failedRuns, summarize, ratio,
  verdict, failureNote, fmtNs, fmtRatio, fmtSpread, fmtCount, fmtCpu,
} from './lib.mjs'

// inlineSend: the echo is due at once and nothing is queued before it, so the JavaScript thread
// sends it itself instead of waking the sender worker: the option meant for request/response.
export const ECHO_OPTIONS = { cpu: CPU.IO, inlineSend: true }

async function measure(variant, count) {
  const [echoPort, pingPort] = [await freePort(), await freePort()]
  const echo =
    variant === 'native'
      ? tool('native_bench', ['echo', '--local-port', echoPort, '--port', pingPort, '--cpu', CPU.IO, '--worker-cpu', CPU.IO, '--inline-send'])
      : nodeRole(import.meta.url, variant, { echoPort, pingPort }, { cpu: CPU.IO })
  try {
    await echo.ready()
    const pinger = tool('udp_load', ['ping', '--local-port', pingPort, '--port', echoPort, '--count', count, '--cpu', CPU.INSTRUMENT, '--gap-us', 200])
    await pinger.ready()
    const result = await pinger.json(count + 60_000)
    await pinger.close()
    // The end of its input ends the echo, which says how much it echoed and the CPU it used.
    echo.proc.stdin.end()
    const done = await echo.json()
    return {
      p50: result.p50Ns,
      p99: result.p99Ns,
      p999: result.p999Ns,
      max: result.maxNs,
      lost: result.lost,
      count: result.count,
      echoed: done.echoed,
      cpuPerPingNs: done.cpuNs / result.count,
    }
  } finally {
    await echo.close()
  }
}

export async function run({ smoke }) {
  const count = smoke ? 300 : 10_000
  const repeats = smoke ? 1 : 3
  const variants = ['onPackets', 'receiveData', 'reflector', 'dgram', 'native']
  const runs = Object.fromEntries(variants.map((v) => [v, []]))
  for (let r = 0; r < repeats; r++) {
    for (const v of variants) runs[v].push(await attempt(`round trip ${v}, repeat ${r + 1}`, () => measure(v, count)))
  }
  const p50 = (v) => summarize(runs[v].map((x) => x.p50))
  const lost = (v) => goodRuns(runs[v]).reduce((sum, x) => sum + x.lost, 0)
  const pings = (v) => goodRuns(runs[v]).reduce((sum, x) => sum + x.lost + x.count, 0)
  const describe = (v) => {
    const good = goodRuns(runs[v])
    if (good.length === 0) return 'n/a (every repeat failed)'
    return `${fmtSpread(p50(v), fmtNs)} / ${fmtNs(summarize(good.map((x) => x.p99)).median)} / ${fmtNs(summarize(good.map((x) => x.max)).max)}; ` +
      `lost ${fmtCount(lost(v))} of ${fmtCount(pings(v))}; ${fmtCpu(good.map((x) => x.cpuPerPingNs)).replace('packet', 'ping')}`
  }
  const row = (name, v) => {
    const failures = [v, 'dgram'].map((x) => failureNote(failedRuns(runs[x]), repeats, x)).filter(Boolean)
    const notes = [...failures, ...(lost(v) > 0 ? [`udpcom lost ${lost(v)} pings`] : [])]
    const judged = verdict(p50(v).median < p50('dgram').median && lost(v) === 0, { 'udpcom p50': p50(v).median, 'dgram p50': p50('dgram').median }, notes)
    return {
      section: '4',
      name: `Round trip through JS, ${name} (inlineSend): p50 (range) / p99 / worst max`,
      udpcom: describe(v),
      dgram: describe('dgram'),
      ratio: `p50 ${fmtRatio(ratio(p50('dgram').median, p50(v).median))}`,
      native: `engine echo from Rust, inlineSend: ${describe('native')}`,
      target: 'p50 < dgram p50, no ping lost',
      met: failures.length > 0 && judged.met ? null : judged.met,
      note: judged.note,
    }
  }
  const reflector = (() => {
    const failures = ['reflector', 'dgram'].map((x) => failureNote(failedRuns(runs[x]), repeats, x)).filter(Boolean)
    const notes = [...failures, ...(lost('reflector') > 0 ? [`the reflector lost ${lost('reflector')} pings`] : [])]
    const judged = verdict(p50('reflector').median <= 0.6 * p50('dgram').median && lost('reflector') === 0,
      { 'reflector p50': p50('reflector').median, 'dgram p50': p50('dgram').median }, notes)
    return {
      section: '4',
      name: "Round trip through udpcom's native reflector (reflect: true, deliver: false; no JavaScript): p50 (range) / p99 / worst max",
      udpcom: describe('reflector'),
      dgram: `node:dgram echo: ${describe('dgram')}`,
      ratio: `p50 ${fmtRatio(ratio(p50('dgram').median, p50('reflector').median))}`,
      native: `engine echo from Rust, inlineSend: ${describe('native')}`,
      target: 'p50 ≤ 0.6 × dgram p50, no ping lost',
      met: failures.length > 0 && judged.met ? null : judged.met,
      note: judged.note,
    }
  })()
  return { rows: [row('onPackets → sendData', 'onPackets'), row('receiveData → sendData', 'receiveData'), reflector], raw: { runs } }
}

// Roles (child processes): echo until the end of stdin, then print { echoed, cpuNs } and exit.
function endOnInputEnd(echoed, close) {
  const cpu = cpuMeter()
  process.stdin.on('end', () => {
    emit({ echoed: echoed(), cpuNs: cpu().processNs })
    close()
    process.exit(0)
  })
  process.stdin.resume()
}

async function udpcomEcho({ echoPort, pingPort }, variant) {
  const UdpCom = loadUdpCom()
  const udp = new UdpCom('127.0.0.1', echoPort, '127.0.0.1', pingPort, { direction: 2, ...ECHO_OPTIONS })
  udp.initSocket()
  udp.start()
  let echoed = 0
  endOnInputEnd(() => echoed, () => udp.closeSocket())
  emit(`READY ${udp.localPort}`)
  if (variant === 'onPackets') {
    udp.onPackets((packets) => {
      for (const p of packets) udp.sendData(p.data)
      echoed += packets.length
    })
  } else {
    for (;;) {
      const p = await udp.receiveData()
      udp.sendData(p.data)
      echoed++
    }
  }
}

async function udpcomReflector({ echoPort, pingPort }) {
  const UdpCom = loadUdpCom()
  const udp = new UdpCom('127.0.0.1', echoPort, '127.0.0.1', pingPort, { reflect: true, deliver: false, cpu: CPU.IO })
  udp.initSocket()
  udp.start()
  endOnInputEnd(() => udp.getPacketStats().nReflected, () => udp.closeSocket())
  emit(`READY ${udp.localPort}`)
}

async function dgramEcho({ echoPort, pingPort }) {
  const dgram = await import('node:dgram')
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(echoPort, '127.0.0.1', resolve))
  await new Promise((resolve) => socket.connect(pingPort, '127.0.0.1', resolve))
  let echoed = 0
  socket.on('message', (msg) => {
    socket.send(msg)
    echoed++
  })
  endOnInputEnd(() => echoed, () => socket.close())
  emit(`READY ${echoPort}`)
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const role = process.argv[2]
  const options = roleOptions()
  const main = role === 'dgram' ? dgramEcho(options) : role === 'reflector' ? udpcomReflector(options) : udpcomEcho(options, role)
  main.catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
