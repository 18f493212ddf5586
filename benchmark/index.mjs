// npm run bench: runs every section of issue #3's benchmark and prints one markdown table in
// which each row shows udpcom and node:dgram measured in the same run (median and range of the
// repeats, what was lost, CPU per packet), how many times better udpcom is, a native reference
// where it makes sense (the engine driven from Rust, or the best native timed sender), the
// target and the verdict; above the table, the environment the figures depend on.
//
//   node benchmark/index.mjs [--smoke] [--only 1,3] [--no-build] [--no-callgrind] [--json FILE]
//                            [--readme]
//
// --smoke runs every section briefly (seconds, not minutes) to show that it works; its
// figures mean nothing. Full results (every repeat, every raw figure, the environment) go to
// .tmp/bench/<start time>.json, one file per run so that a figure in the README can be traced
// to its run (or to --json FILE). --readme writes the table into README.md, between the
// bench:start and bench:end markers of its Benchmark section.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { cpus, release } from 'node:os'
import { dirname, relative } from 'node:path'
import { parseArgs } from 'node:util'

import { ROOT, BIN, NoiseMonitor, environment } from './lib.mjs'
import { formatTable } from './table.mjs'

const SECTIONS = [
  ['1', 'send-throughput'],
  ['2', 'receive-throughput'],
  ['3', 'timed-send'],
  ['4', 'round-trip'],
  ['5', 'event-loop-delay'],
  ['6', 'call-cost'],
  ['7', 'idle-cpu'],
  ['8', 'streams'],
  ['9', 'multicast'],
  ['10', 'replay'],
  ['11', 'gso'],
]

const { values: opts } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    'no-callgrind': { type: 'boolean', default: false },
    readme: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
})

const started = new Date()
// An ISO time without colons, so that the name is a plain file name everywhere.
const jsonPath = opts.json ?? `${ROOT}.tmp/bench/${started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`

function build() {
  // The instruments and the native ceiling are Rust examples of the engine crate.
  execFileSync('cargo', ['build', '--release', '--examples', '-p', 'udpcom-engine'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
  for (const name of ['stamp_receiver', 'udp_load', 'native_bench', 'timed_sender', 'analysis_cost', 'pcap_synth', 'replay_native']) {
    if (!existsSync(BIN(name))) throw new Error(`missing ${BIN(name)}`)
  }
  if (!existsSync(`${ROOT}native/udpcom.linux-x64-gnu.node`)) throw new Error('missing addon: run npm run build first')
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')

async function main() {
  if (!opts['no-build']) build()
  const only = opts.only ? new Set(opts.only.split(',')) : null
  const machine = {
    cpu: `${cpus().length} × ${cpus()[0].model.trim()}`,
    kernel: release(),
    node: process.version,
    started: started.toISOString(),
    loadavgStart: loadavg(),
    env: environment(),
    rawJson: relative(ROOT, jsonPath),
  }
  const rows = []
  const raw = {}
  const timings = {}
  const noise = {}
  const monitor = new NoiseMonitor()
  for (const [number, name] of SECTIONS) {
    if (only && !only.has(number)) continue
    const sectionStarted = Date.now()
    process.stderr.write(`bench: ${number}. ${name}${opts.smoke ? ' (smoke)' : ''} ... `)
    monitor.take() // what happened before this section is not its noise
    const section = await import(`./${name}.mjs`)
    const result = await section.run({ smoke: opts.smoke, callgrind: !opts.smoke && !opts['no-callgrind'] })
    timings[name] = (Date.now() - sectionStarted) / 1000
    noise[number] = monitor.take()
    process.stderr.write(`${timings[name].toFixed(1)} s; other processes used ${(noise[number].otherCpuShare * 100).toFixed(0)}% of the CPUs, ` +
      `steal ${(noise[number].steal.cpu * 100).toFixed(1)}%\n`)
    rows.push(...result.rows)
    raw[name] = result.raw
  }
  monitor.stop()
  machine.loadavgEnd = loadavg()
  machine.noise = noise
  machine.finished = new Date().toISOString()
  mkdirSync(dirname(jsonPath), { recursive: true })
  writeFileSync(jsonPath, JSON.stringify({ machine, smoke: opts.smoke, rows, raw, timings, noise }, null, 1))
  process.stderr.write(`bench: raw results in ${jsonPath}\n`)
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
