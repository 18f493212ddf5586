// The benchmark's one markdown table, with the environment it was measured in above it and
// how busy the rest of the machine was below it.

const cell = (v) => String(v ?? '').replace(/\|/g, '\\|')
const pct = (share) => `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`

/** The verdict of a row: met, missed, inconclusive, or '—' for a row without a target. */
function verdictCell(row, smoke) {
  const verdict = smoke ? '(smoke)' : row.met === undefined ? '—' : row.met === null ? '⚠️ inconclusive' : row.met ? '✅ met' : '❌ missed'
  return row.note ? `${verdict}: ${row.note}` : verdict
}

export function formatTable({ machine, rows, smoke }) {
  const lines = []
  const env = machine.env ?? {}
  lines.push(`udpcom benchmark — ${machine.cpu}, Linux ${machine.kernel}, Node ${machine.node}; ` +
    `load average ${machine.loadavgStart} at start, ${machine.loadavgEnd} at end; ${machine.started}` +
    (smoke ? ' — SMOKE RUN: the figures mean nothing' : ''))
  lines.push('')
  lines.push(`Built from commit ${env.commit}${env.dirty ? ' with uncommitted changes' : ''}; CPU governor ${env.governor}; ` +
    `clocksource ${env.clocksource}; isolcpus ${env.isolcpus}, nohz_full ${env.nohzFull}; hypervisor ${env.hypervisor ?? '?'}; ` +
    `RT throttling ${env.schedRtRuntimeUs} of every ${env.schedRtPeriodUs} µs; ` +
    `rmem_max ${env.rmemMax?.toLocaleString('en-US')} B, wmem_max ${env.wmemMax?.toLocaleString('en-US')} B. ` +
    `Raw results: \`${machine.rawJson}\`.`)
  lines.push('')
  lines.push('| # | Measurement | udpcom | node:dgram | udpcom advantage (× better) | native reference | target | met |')
  lines.push('|---|---|---|---|---|---|---|---|')
  for (const r of rows) {
    lines.push(`| ${[r.section, r.name, r.udpcom, r.dgram, r.ratio, r.native, r.target, verdictCell(r, smoke)].map(cell).join(' | ')} |`)
  }
  if (machine.noise) {
    const sections = Object.entries(machine.noise)
    const share = sections.map(([n, v]) => `${n}: ${pct(v.otherCpuShare)}`)
    const steal = sections.map(([n, v]) => {
      const perCpu = Object.entries(v.steal ?? {}).filter(([name]) => name !== 'cpu')
      return `${n}: ${pct(v.steal?.cpu ?? 0)}${perCpu.length > 0 ? ` (${perCpu.map(([name, s]) => `${name} ${pct(s)}`).join(', ')})` : ''}`
    })
    const rt = [...new Set(sections.flatMap(([, v]) => v.otherRtThreads))]
    lines.push('')
    lines.push(`Other processes on the machine during each section (share of both CPUs): ${share.join(', ')}.` +
      (rt.length > 0 ? ` Other SCHED_FIFO/RR threads seen: ${rt.join(', ')}.` : ' No other SCHED_FIFO/RR threads seen.'))
    lines.push(`Steal time (the hypervisor running something else on our CPUs, /proc/stat) during each section: ${steal.join('; ')}.`)
  }
  return lines.join('\n')
}
