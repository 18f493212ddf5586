// The benchmark's one markdown table.

const cell = (v) => String(v ?? '').replace(/\|/g, '\\|')

export function formatTable({ machine, rows, smoke }) {
  const lines = []
  lines.push(`udpcom benchmark — ${machine.cpu}, Linux ${machine.kernel}, Node ${machine.node}; ` +
    `load average ${machine.loadavgStart} at start, ${machine.loadavgEnd} at end; ${machine.started}` +
    (smoke ? ' — SMOKE RUN: the figures mean nothing' : ''))
  lines.push('')
  lines.push('| # | Measurement | udpcom | node:dgram | udpcom advantage (× better) | native-only ceiling | target | met |')
  lines.push('|---|---|---|---|---|---|---|---|')
  for (const r of rows) {
    const met = smoke ? '(smoke)' : r.met === null ? '⚠️ inconclusive' : r.met ? '✅ met' : '❌ missed'
    lines.push(`| ${[r.section, r.name, r.udpcom, r.dgram, r.ratio, r.native, r.target, met].map(cell).join(' | ')} |`)
  }
  if (machine.noise) {
    const share = Object.entries(machine.noise).map(([n, v]) => `${n}: ${(v.otherCpuShare * 100).toFixed(0)}%`)
    const rt = [...new Set(Object.values(machine.noise).flatMap((v) => v.otherRtThreads))]
    lines.push('')
    lines.push(`Other processes on the machine during each section (share of both CPUs): ${share.join(', ')}.` +
      (rt.length > 0 ? ` Other SCHED_FIFO/RR threads seen: ${rt.join(', ')}.` : ' No other SCHED_FIFO/RR threads seen.'))
  }
  return lines.join('\n')
}
