// 7. CPU time of a started, idle instance: a child process starts udpcom (direction 2, both
// worker threads, default options) and does nothing for `seconds`; the CPU time of its
// udpcom-* threads (from /proc/self/task/*/schedstat, exact ns) and of the whole process
// (process.cpuUsage) over that time, as a share of one core. For comparison, a bound
// node:dgram socket with a 'message' listener, idle for as long (whole process).
import { CPU, nodeRole, roleOptions, emit, loadUdpCom, sleep, threadCpuNs } from './lib.mjs'

const pct = (v) => `${(v * 100).toFixed(3)}%`

async function measure(variant, seconds) {
  const child = nodeRole(import.meta.url, variant, { seconds }, { cpu: CPU.APP })
  const result = await child.json(seconds * 1000 + 30_000)
  await child.close()
  return result
}

export async function run({ smoke }) {
  const seconds = smoke ? 0.5 : 5
  const udpcom = await measure('udpcom', seconds)
  const dgram = await measure('dgram', seconds)
  return {
    rows: [
      {
        section: '7',
        name: `CPU of a started, idle instance over ${seconds} s (share of one core): worker threads; whole process`,
        udpcom: `${pct(udpcom.workerShare)}; ${pct(udpcom.processShare)}`,
        dgram: `—; ${pct(dgram.processShare)}`,
        ratio: '—',
        native: '—',
        target: 'workers < 1% of a core',
        met: udpcom.workerShare < 0.01,
      },
    ],
    raw: { udpcom, dgram },
  }
}

async function idle(variant, seconds) {
  let close
  if (variant === 'udpcom') {
    const UdpCom = loadUdpCom()
    const udp = new UdpCom('127.0.0.1', 0, '127.0.0.1', 9, { direction: 2 })
    udp.initSocket()
    udp.start()
    close = () => udp.closeSocket()
  } else {
    const dgram = await import('node:dgram')
    const socket = dgram.createSocket('udp4')
    socket.on('message', () => {})
    await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
    close = () => socket.close()
  }
  await sleep(200) // start-up is not idling
  const workers0 = threadCpuNs('udpcom-')
  const process0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  await sleep(seconds * 1000)
  const after = threadCpuNs('udpcom-')
  const workers = after.ns - workers0.ns
  if (variant === 'udpcom' && after.threads !== 2) throw new Error(`expected 2 udpcom-* threads, found ${after.threads}`)
  const { user, system } = process.cpuUsage(process0)
  const wall = Number(process.hrtime.bigint() - t0)
  close()
  emit({ workerThreads: after.threads, workerCpuNs: workers, processCpuNs: (user + system) * 1000, wallNs: wall, workerShare: workers / wall, processShare: ((user + system) * 1000) / wall })
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  idle(process.argv[2], roleOptions().seconds).catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
