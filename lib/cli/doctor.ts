// `udpcom doctor`: what decides timing on this machine, and what to change (lib/doctor.ts).

import { runDoctor, type Finding } from '../doctor'
import { stringValue, wrap, type Command } from './command'
import { UsageError } from './errors'
import { parseDuration, parseInteger } from './units'

const LEVEL_WIDTH = 5

/** A finding as text: `warn  title  detail`, then `fix: ...`, wrapped under the detail. */
export function findingText(finding: Finding, width = 100): string {
  const indent = ' '.repeat(LEVEL_WIDTH + 2)
  const body = wrap(`${finding.title}: ${finding.detail}`, width - indent.length).split('\n')
  const lines = [`${finding.level.padEnd(LEVEL_WIDTH)}  ${body[0]}`, ...body.slice(1).map((l) => indent + l)]
  if (finding.fix) lines.push(...wrap(`fix: ${finding.fix}`, width - indent.length).split('\n').map((l) => indent + l))
  return lines.join('\n')
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check what decides timing on this machine, and what to change',
  usage: 'doctor [--no-probe] [--probe-duration 1s] [--cpu N] [--json]',
  description:
    'Checks real-time permission (root, CAP_SYS_NICE, the RT priority limit), RT throttling, timer slack, isolated CPUs and ' +
    'interrupts per CPU, the clocksource, the kernel preemption model, CPU frequency, a virtual machine and the time its host ' +
    'steals, locked-memory and socket buffer limits; then a short wake-up probe: how late a timed wake-up is, and how often a ' +
    'running thread loses the CPU and for how long. Every verdict that is not ok names the fix, with the command. Exits with ' +
    '1 when something limits timing (a warn), 0 otherwise.',
  options: {
    'no-probe': { type: 'boolean', help: 'only read the machine; skip the 1.5 s measurement' },
    'probe-duration': { type: 'string', value: '1s', help: 'length of the timed wake-up phase (the CPU-loss phase is half of it, at most 900 ms)' },
    cpu: { type: 'string', value: 'N', help: 'CPU to probe (default: the one doctor suggests for a timed thread)' },
  },
  examples: ['udpcom doctor', 'udpcom doctor --json | jq -r \'select(.level=="warn") | .fix\''],
  async run(values, positionals, { output }) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`, 'doctor')
    const durationText = stringValue(values, 'probe-duration')
    const probeDurationNs = durationText === undefined ? 1_000_000_000 : parseDuration(durationText, '--probe-duration')
    const cpuText = stringValue(values, 'cpu')
    const cpu = cpuText === undefined ? undefined : parseInteger(cpuText, '--cpu', 0, 1023)
    const { facts, findings } = await runDoctor({
      probe: values['no-probe'] !== true,
      probeDurationNs,
      probeSpinNs: Math.min(900_000_000, Math.round(probeDurationNs / 2)),
      ...(cpu === undefined ? {} : { cpu }),
    })
    const machine = {
      hostname: facts.hostname,
      kernel: facts.kernelRelease,
      cpuModel: facts.cpuModel,
      onlineCpus: facts.onlineCpus.length,
      hypervisor: facts.hypervisor,
    }
    output.event('machine', machine, `udpcom doctor: ${facts.hostname ?? 'this machine'}, Linux ${facts.kernelRelease ?? '?'}, ${facts.onlineCpus.length} CPUs (${facts.cpuModel ?? 'unknown model'})${facts.hypervisor ? `, ${facts.hypervisor} guest` : ''}`)
    for (const finding of findings) output.event('finding', { ...finding }, findingText(finding))
    const count = (level: Finding['level']): number => findings.filter((f) => f.level === level).length
    const totals = { warn: count('warn'), info: count('info'), ok: count('ok') }
    output.summary(totals, `summary: ${totals.warn} to fix (warn), ${totals.info} worth knowing (info), ${totals.ok} ok`, [])
    return totals.warn > 0 ? 1 : 0
  },
}
