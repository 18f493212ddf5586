// npm run bench: runs every section of issue #3's benchmark and prints one markdown table in
// which each row shows udpcom and node:dgram measured in the same run, how many times better
// udpcom is, the native-only ceiling where it makes sense, and the target.
//
//   node benchmark/index.mjs [--smoke] [--only 1,3] [--no-build] [--no-callgrind] [--json FILE]
//                            [--readme]
//
// --smoke runs every section briefly (seconds, not minutes) to show that it works; its
// figures mean nothing. Full results (every repeat, every raw figure) go to
// .tmp/bench-results.json (or --json FILE). --readme writes the table into README.md, between
// the bench:start and bench:end markers of its Benchmark section.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { cpus, release } from 'node:os'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'

import { ROOT, BIN, NoiseMonitor } from './lib.mjs'
import { formatTable } from './table.mjs'

const SECTIONS = [
  ['1', 'send-throughput'],
  ['2', 'receive-throughput'],
  ['3', 'timed-send'],
  ['4', 'round-trip'],
  ['5', 'event-loop-delay'],
  ['6', 'call-cost'],
  ['7', 'idle-cpu'],
]

const { values: opts } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    'no-callgrind': { type: 'boolean', default: false },
    readme: { type: 'boolean', default: false },
    json: { type: 'string', default: `${ROOT}.tmp/bench-results.json` },
  },
})

function build() {
  // The instruments and the native ceiling are Rust examples of the engine crate.
  execFileSync('cargo', ['build', '--release', '--examples', '-p', 'udpcom-engine'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
  for (const name of ['stamp_receiver', 'udp_load', 'native_bench']) {
    if (!existsSync(BIN(name))) throw new Error(`missing ${BIN(name)}`)
  }
  if (!existsSync(`${ROOT}udpcom.linux-x64-gnu.node`)) throw new Error('missing addon: run npm run build first')
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')

async function main() {
  if (!opts['no-build']) build()
  const only = opts.only ? new Set(opts.only.split(',')) : null
  const machine = {
    cpu: `${cpus().length} × ${cpus()[0].model.trim()}`,
    kernel: release(),
    node: process.version,
    started: new Date().toISOString(),
    loadavgStart: loadavg(),
  }
  const rows = []
  const raw = {}
  const timings = {}
  const noise = {}
  const monitor = new NoiseMonitor()
  for (const [number, name] of SECTIONS) {
    if (only && !only.has(number)) continue
    const started = Date.now()
    process.stderr.write(`bench: ${number}. ${name}${opts.smoke ? ' (smoke)' : ''} ... `)
    const section = await import(`./${name}.mjs`)
    const result = await section.run({ smoke: opts.smoke, callgrind: !opts.smoke && !opts['no-callgrind'] })
    timings[name] = (Date.now() - started) / 1000
    noise[number] = monitor.take()
    process.stderr.write(`${timings[name].toFixed(1)} s; other processes used ${(noise[number].otherCpuShare * 100).toFixed(0)}% of the CPUs\n`)
    rows.push(...result.rows)
    raw[name] = result.raw
  }
  monitor.stop()
  machine.loadavgEnd = loadavg()
  machine.noise = noise
  machine.finished = new Date().toISOString()
  mkdirSync(dirname(opts.json), { recursive: true })
  writeFileSync(opts.json, JSON.stringify({ machine, smoke: opts.smoke, rows, raw, timings, noise }, null, 1))
  const table = formatTable({ machine, rows, smoke: opts.smoke })
  console.log(table)
  if (opts.readme) {
    const readme = readFileSync(`${ROOT}README.md`, 'utf8')
    const marked = /(<!-- bench:start -->\n)[\s\S]*?(<!-- bench:end -->)/
    if (!marked.test(readme)) throw new Error('README.md has no bench:start/bench:end markers')
    const command = `node benchmark/index.mjs ${process.argv.slice(2).join(' ')}`.trim()
    writeFileSync(`${ROOT}README.md`, readme.replace(marked, (_, start, end) => `${start}\`${command}\`:\n\n${table}\n${end}`))
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
