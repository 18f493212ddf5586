// 4. Round trip through JavaScript: an independent native pinger (udp_load ping, CPU 0) sends
// a 64-byte datagram, the JavaScript echo receives it and sends it back, the pinger measures
// the round trip on CLOCK_MONOTONIC; one ping at a time, 200 µs apart; 10,000 pings per run,
// 3 runs interleaved, median of each percentile.
//
// Echoes (JavaScript thread on CPU 1; udpcom's workers on CPU 1 too, SCHED_OTHER):
// - udpcom onPackets: the callback sends each packet back with sendData(packet.data);
// - udpcom receiveData: `await receiveData()` then sendData, in a loop;
// - node:dgram: a 'message' listener that calls socket.send(msg);
// - native ceiling: native_bench echo, the engine's receive ring drained by a Rust thread
//   that sends each packet back through the engine's send ring (no JavaScript).
import { CPU, tool, nodeRole, roleOptions, emit, loadUdpCom, freePort, median, fmtNs, fmtRatio } from './lib.mjs'

// inlineSend: the echo is due at once and nothing is queued before it, so the JavaScript thread
// sends it itself instead of waking the sender worker: the option meant for request/response.
export const ECHO_OPTIONS = { cpu: CPU.IO, inlineSend: true }

async function measure(variant, count) {
  const [echoPort, pingPort] = [await freePort(), await freePort()]
  const echo =
    variant === 'native'
      ? tool('native_bench', ['echo', '--local-port', echoPort, '--port', pingPort, '--cpu', CPU.IO, '--worker-cpu', CPU.IO])
      : nodeRole(import.meta.url, variant, { echoPort, pingPort }, { cpu: CPU.IO })
  await echo.ready()
  const pinger = tool('udp_load', ['ping', '--local-port', pingPort, '--port', echoPort, '--count', count, '--cpu', CPU.INSTRUMENT, '--gap-us', 200])
  await pinger.ready()
  const result = await pinger.json(count + 60_000)
  await pinger.close()
  await echo.close()
  return { p50: result.p50Ns, p99: result.p99Ns, p999: result.p999Ns, max: result.maxNs, lost: result.lost, count: result.count }
}

export async function run({ smoke }) {
  const count = smoke ? 300 : 10_000
  const repeats = smoke ? 1 : 3
  const variants = ['onPackets', 'receiveData', 'dgram', 'native']
  const runs = Object.fromEntries(variants.map((v) => [v, []]))
  for (let r = 0; r < repeats; r++) for (const v of variants) runs[v].push(await measure(v, count))
  const results = Object.fromEntries(
    variants.map((v) => [v, Object.fromEntries(['p50', 'p99'].map((k) => [k, median(runs[v].map((x) => x[k]))]))]),
  )
  const row = (name, v) => ({
    section: '4',
    name: `Round trip through JS, ${name} (inlineSend): p50 / p99`,
    udpcom: `${fmtNs(results[v].p50)} / ${fmtNs(results[v].p99)}`,
    dgram: `${fmtNs(results.dgram.p50)} / ${fmtNs(results.dgram.p99)}`,
    ratio: `p50 ${fmtRatio(results.dgram.p50 / results[v].p50)}`,
    native: `${fmtNs(results.native.p50)} / ${fmtNs(results.native.p99)}`,
    target: 'p50 < dgram p50',
    met: results[v].p50 < results.dgram.p50,
  })
  return { rows: [row('onPackets → sendData', 'onPackets'), row('receiveData → sendData', 'receiveData')], raw: { median: results, runs } }
}

// Roles (child processes).
async function udpcomEcho({ echoPort, pingPort }, variant) {
  const UdpCom = loadUdpCom()
  const udp = new UdpCom('127.0.0.1', echoPort, '127.0.0.1', pingPort, { direction: 2, ...ECHO_OPTIONS })
  udp.initSocket()
  udp.start()
  process.stdin.on('end', () => {
    udp.closeSocket()
    process.exit(0)
  })
  process.stdin.resume()
  emit(`READY ${udp.localPort}`)
  if (variant === 'onPackets') {
    udp.onPackets((packets) => {
      for (const p of packets) udp.sendData(p.data)
    })
  } else {
    for (;;) {
      const p = await udp.receiveData()
      udp.sendData(p.data)
    }
  }
}

async function dgramEcho({ echoPort, pingPort }) {
  const dgram = await import('node:dgram')
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(echoPort, '127.0.0.1', resolve))
  await new Promise((resolve) => socket.connect(pingPort, '127.0.0.1', resolve))
  socket.on('message', (msg) => socket.send(msg))
  process.stdin.on('end', () => process.exit(0))
  process.stdin.resume()
  emit(`READY ${echoPort}`)
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const role = process.argv[2]
  const options = roleOptions()
  const main = role === 'dgram' ? dgramEcho(options) : udpcomEcho(options, role)
  main.catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
