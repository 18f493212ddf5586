// The benchmark's one markdown table.

const cell = (v) => String(v ?? '').replace(/\|/g, '\\|')

export function printTable({ machine, rows, smoke }) {
  const lines = []
  lines.push(`udpcom benchmark — ${machine.cpu}, Linux ${machine.kernel}, Node ${machine.node}; ` +
    `load average ${machine.loadavgStart} at start, ${machine.loadavgEnd} at end; ${machine.started}` +
    (smoke ? ' — SMOKE RUN: the figures mean nothing' : ''))
  lines.push('')
  lines.push('| # | Measurement | udpcom | node:dgram | udpcom advantage (× better) | native-only ceiling | target | met |')
  lines.push('|---|---|---|---|---|---|---|---|')
  for (const r of rows) {
    const met = smoke ? '(smoke)' : r.met ? '✅ met' : '❌ missed'
    lines.push(`| ${[r.section, r.name, r.udpcom, r.dgram, r.ratio, r.native, r.target, met].map(cell).join(' | ')} |`)
  }
  console.log(lines.join('\n'))
}
