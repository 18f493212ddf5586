// What decides timing on this machine, as verdicts that say what to change: `udpcom doctor`,
// the findings section of reports, and any program that wants to refuse a run on a machine
// that cannot hold its timing.
//
// `diagnose()` is pure: the machine's facts (lib/machine.ts) and, optionally, what a short
// measurement saw (the wake-up probe, steal time and interrupts while it ran) in; findings
// out (their type is in report/model.ts). `runDoctor()` gathers both on this machine.

import { formatCount, formatNs } from './format'
import type { Finding, Level } from './report/model'

export type { Finding, Level } from './report/model'
import { probeWakeups } from './probe'
import type { WakeProbe } from './types'
import {
  interruptsPerCpu,
  readMachineFacts,
  stealSinceBoot,
  watchActivity,
  type CpuInterrupts,
  type MachineActivity,
  type MachineFacts,
} from './machine'

/** What a measurement on the machine saw (runDoctor's probe). */
export interface Measured {
  /** The wake-up probe's result and how its thread was set up. */
  probe?: WakeProbe & { cpu: number | null; priority: number | null; periodNs: number }
  /** Why the probe could not run (a coded error's message). */
  probeError?: string
  /** Steal and interrupts while the probe ran. */
  activity?: MachineActivity
}

/** The fix for a process that may not use SCHED_FIFO. */
export const RT_PERMISSION_FIX =
  'run as root, or grant CAP_SYS_NICE: sudo setcap cap_sys_nice+ep "$(readlink -f "$(which node)")", ' +
  "or raise the RT priority limit: ulimit -r 99 (or '<user> - rtprio 99' in /etc/security/limits.conf)"

/** SCHED_FIFO priority the probe uses when it may (the sender's usual one). */
export const PROBE_PRIORITY = 80

/** Whether this process may use SCHED_FIFO at `priority`, and why. */
export function realTimePermission(facts: MachineFacts, priority = PROBE_PRIORITY): { allowed: boolean; reason: string } {
  if (facts.uid === 0 && facts.capSysNice) return { allowed: true, reason: 'running as root' }
  if (facts.capSysNice) return { allowed: true, reason: 'the process has CAP_SYS_NICE' }
  const soft = facts.rtprio?.soft ?? 0
  if (soft >= priority) return { allowed: true, reason: `the RT priority limit (ulimit -r) is ${soft}` }
  if (soft > 0) return { allowed: false, reason: `the RT priority limit (ulimit -r) is ${soft}, below ${priority}` }
  return { allowed: false, reason: 'not root, no CAP_SYS_NICE, RT priority limit (ulimit -r) 0' }
}

/**
 * The CPU a timed sender should run on: an isolated one if there is any, else, of the CPUs but
 * CPU 0 (where the kernel's housekeeping and the interrupts that cannot move stay), the one that
 * took the fewest device interrupts since boot; ties: the highest number.
 */
export function suggestCpu(facts: MachineFacts): number | null {
  const counted = interruptsPerCpu(facts.interrupts)
  const online = facts.onlineCpus.length > 0 ? facts.onlineCpus : counted.map((c) => c.cpu)
  if (online.length === 0) return null
  const isolated = facts.isolatedCpus.filter((cpu) => online.includes(cpu))
  const candidates = isolated.length > 0 ? isolated : online.length > 1 ? online.filter((cpu) => cpu !== 0) : online
  const load = (cpu: number): number => counted.find((c) => c.cpu === cpu)?.device ?? 0
  return [...candidates].sort((a, b) => load(a) - load(b) || b - a)[0]!
}

const percent = (fraction: number): string => `${(fraction * 100).toFixed(fraction < 0.01 ? 2 : 1)}%`
const list = (cpus: number[]): string => (cpus.length === 0 ? 'none' : cpus.join(','))

/** The verdicts on `facts` and, when given, on what a measurement saw. */
export function diagnose(facts: MachineFacts, measured: Measured = {}): Finding[] {
  const findings: Finding[] = []
  const add = (finding: Finding): void => {
    findings.push(finding)
  }
  const cpu = suggestCpu(facts)

  // Real-time permission.
  const rt = realTimePermission(facts)
  add({
    id: 'rt-permission',
    level: rt.allowed ? 'ok' : 'warn',
    title: 'real-time permission',
    detail: rt.allowed
      ? `SCHED_FIFO is allowed (${rt.reason}): --priority works`
      : `SCHED_FIFO is not allowed (${rt.reason}): senders run under normal scheduling, where any other thread can delay them by milliseconds`,
    ...(rt.allowed ? {} : { fix: RT_PERMISSION_FIX }),
    facts: { uid: facts.uid, capSysNice: facts.capSysNice, rtprioSoft: facts.rtprio?.soft ?? null, rtprioHard: facts.rtprio?.hard ?? null },
  })

  // RT throttling.
  const runtime = facts.schedRtRuntimeUs
  const period = facts.schedRtPeriodUs
  if (runtime !== null) {
    add({
      id: 'rt-throttling',
      level: runtime === -1 ? 'ok' : 'info',
      title: 'RT throttling',
      detail:
        runtime === -1
          ? 'off (kernel.sched_rt_runtime_us = -1): a SCHED_FIFO thread is never stopped'
          : `on: kernel.sched_rt_runtime_us = ${runtime} of ${period ?? '?'} µs, so a SCHED_FIFO thread that runs ${Math.round(runtime / 1000)} ms of a ${Math.round((period ?? 1e6) / 1000)} ms period without sleeping is stopped for the rest of it. udpcom's workers leave SCHED_FIFO before that (nRtDemotions counts it); it matters to a thread that spins without sleeping`,
      ...(runtime === -1 ? {} : { fix: 'to turn it off until the next boot: sudo sysctl -w kernel.sched_rt_runtime_us=-1 (a runaway SCHED_FIFO thread can then hold a CPU for good)' }),
      facts: { schedRtRuntimeUs: runtime, schedRtPeriodUs: period },
    })
  }

  // Timer slack.
  if (facts.timerSlackNs !== null) {
    add({
      id: 'timer-slack',
      level: facts.timerSlackNs <= 1_000 ? 'ok' : 'info',
      title: 'timer slack',
      detail:
        facts.timerSlackNs <= 1_000
          ? `${facts.timerSlackNs} ns`
          : `${formatNs(facts.timerSlackNs)} for this process's threads: their sleeps end up to ${formatNs(facts.timerSlackNs)} late. udpcom's worker threads set theirs to 1 ns, so this affects only JavaScript timers and other threads`,
      ...(facts.timerSlackNs <= 1_000 ? {} : { fix: 'none needed for udpcom; other programs: prctl(PR_SET_TIMERSLACK, 1) in the thread, or run them under SCHED_FIFO (chrt -f 80 PROGRAM), which has no slack' }),
      facts: { timerSlackNs: facts.timerSlackNs },
    })
  }

  // Isolated CPUs.
  const online = facts.onlineCpus.length
  const isolated = facts.isolatedCpus
  if (online <= 1) {
    add({ id: 'isolated-cpus', level: 'info', title: 'isolated CPUs', detail: 'one CPU only: a timed thread shares it with everything, and nothing can be isolated', fix: 'use a machine with at least two CPUs for timed sending', facts: { online } })
  } else if (isolated.length === 0) {
    const suggestion = cpu ?? online - 1
    add({
      id: 'isolated-cpus',
      level: 'warn',
      title: 'isolated CPUs',
      detail: `none (of ${online} online): a timed thread shares its CPU with every other thread and with the kernel's housekeeping`,
      fix: `add isolcpus=${suggestion} nohz_full=${suggestion} rcu_nocbs=${suggestion} to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then sudo update-grub and reboot), then run with --cpu ${suggestion}`,
      facts: { online, isolated: '', nohzFull: list(facts.nohzFullCpus), suggestedCpu: suggestion },
    })
  } else {
    const withoutTick = isolated.filter((c) => !facts.nohzFullCpus.includes(c))
    add({
      id: 'isolated-cpus',
      level: withoutTick.length === 0 ? 'ok' : 'info',
      title: 'isolated CPUs',
      detail: `CPUs ${list(isolated)} are isolated (nohz_full: ${list(facts.nohzFullCpus)}): run timed threads there with --cpu ${isolated[isolated.length - 1]}${withoutTick.length > 0 ? `; CPUs ${list(withoutTick)} still take the periodic tick` : ''}`,
      ...(withoutTick.length > 0 ? { fix: `add nohz_full=${list(withoutTick)} rcu_nocbs=${list(withoutTick)} to the kernel command line and reboot` } : {}),
      facts: { online, isolated: list(isolated), nohzFull: list(facts.nohzFullCpus) },
    })
  }

  // Interrupts per CPU: the shares since boot; the rate on the suggested CPU while the probe ran.
  const sinceBoot = interruptsPerCpu(facts.interrupts)
  if (sinceBoot.length > 0) {
    const totalDevice = sinceBoot.reduce((sum, c) => sum + c.device, 0)
    const share = (c: CpuInterrupts): string => (totalDevice > 0 ? percent(c.device / totalDevice) : '0%')
    const describe = (c: CpuInterrupts): string =>
      `CPU ${c.cpu} ${share(c)}${c.top.length > 0 ? ` (${c.top.slice(0, 3).map((t) => `${t.name || t.irq} ${formatCount(t.count)}`).join(', ')})` : ''}`
    const busiest = [...sinceBoot].sort((a, b) => b.device - a.device)
    const chosen = sinceBoot.find((c) => c.cpu === cpu)
    const during = measured.activity ? interruptsPerCpu(measured.activity.interrupts).find((c) => c.cpu === cpu) : undefined
    const spanS = (measured.activity?.spanNs ?? 0) / 1e9
    const ratePerS = during && spanS > 0 ? during.device / spanS : null
    const heavy = ratePerS !== null && ratePerS > 1000
    const movable = chosen?.top.map((t) => t.irq) ?? []
    const others = (facts.onlineCpus.length > 0 ? facts.onlineCpus : sinceBoot.map((c) => c.cpu)).filter((c) => c !== cpu)
    add({
      id: 'interrupts',
      level: heavy ? 'warn' : 'info',
      title: 'interrupts',
      detail:
        `device interrupts since boot, busiest first: ${busiest.map(describe).join('; ')}. Quietest for a timed thread: CPU ${cpu ?? 'n/a'}` +
        (ratePerS !== null ? `, which took ${Math.round(ratePerS)} device interrupts a second while the probe ran` : ''),
      ...(movable.length > 0 && others.length > 0
        ? { fix: `move device interrupts off CPU ${cpu}: for irq in ${movable.join(' ')}; do echo ${list(others)} | sudo tee /proc/irq/$irq/smp_affinity_list; done (and stop irqbalance, which moves them back: sudo systemctl stop irqbalance)` }
        : {}),
      facts: { suggestedCpu: cpu, deviceShareOfSuggestedCpu: chosen && totalDevice > 0 ? Number((chosen.device / totalDevice).toFixed(4)) : null, deviceInterruptsPerSecond: ratePerS === null ? null : Math.round(ratePerS) },
    })
  }

  // Clocksource.
  if (facts.clocksource !== null) {
    const fast = ['tsc', 'kvm-clock', 'arch_sys_counter', 'hyperv_clocksource_tsc_page'].includes(facts.clocksource)
    const tscOffered = facts.clocksources.includes('tsc')
    add({
      id: 'clocksource',
      level: fast ? 'ok' : 'warn',
      title: 'clocksource',
      detail: fast
        ? `${facts.clocksource}: clock reads are vDSO calls of tens of ns (offered: ${facts.clocksources.join(', ')})`
        : `${facts.clocksource}: every clock read is a system call of a microsecond or more, which a spinning sender does millions of times a second`,
      ...(fast
        ? {}
        : {
            fix: tscOffered
              ? 'echo tsc | sudo tee /sys/devices/system/clocksource/clocksource0/current_clocksource (for good: clocksource=tsc on the kernel command line)'
              : 'the tsc is not offered (unstable?): boot with tsc=reliable if the CPU has an invariant TSC (grep -w constant_tsc /proc/cpuinfo)',
          }),
      facts: { clocksource: facts.clocksource, available: facts.clocksources.join(' ') },
    })
  }

  // Virtual machine, and the time its host steals.
  if (facts.hypervisor !== null) {
    add({
      id: 'virtual-machine',
      level: 'info',
      title: 'virtual machine',
      detail: `this is a virtual machine (${facts.hypervisor}${facts.sysVendor ? `, sys_vendor '${facts.sysVendor}'` : ''}): its host can take a CPU away at any moment, which nothing inside the guest prevents (see cpu-loss)`,
      fix: 'for sub-10 µs timing use bare metal, or ask for dedicated virtual CPUs pinned to host cores (libvirt <vcpupin>, a dedicated-host instance) with nothing else on them',
      facts: { hypervisor: facts.hypervisor, hypervisorFlag: facts.hypervisorFlag, sysVendor: facts.sysVendor, productName: facts.productName },
    })
  }
  const steal = measured.activity?.stealFraction ?? stealSinceBoot(facts)
  if (steal !== null && (facts.hypervisor !== null || steal > 0)) {
    const when = measured.activity?.stealFraction != null ? 'while the probe ran' : 'since boot'
    add({
      id: 'steal',
      level: steal > 0.01 ? 'warn' : 'ok',
      title: 'steal time',
      detail: `the host ran something else on this machine's CPUs ${percent(steal)} of the time ${when}`,
      ...(steal > 0.01 ? { fix: 'the host is overcommitted: ask for dedicated (not shared) virtual CPUs, or move to a less loaded host' } : {}),
      facts: { stealFraction: Number(steal.toFixed(5)) },
    })
  }

  // Preemption model.
  const { model, current } = facts.preemption
  if (model !== 'unknown') {
    const effective = current ?? (model === 'dynamic' ? null : model)
    add({
      id: 'preemption',
      level: model === 'rt' || effective === 'full' ? 'ok' : 'info',
      title: 'kernel preemption',
      detail:
        model === 'rt'
          ? 'PREEMPT_RT: the kernel itself can be preempted almost everywhere, the best case for timing'
          : model === 'dynamic'
            ? `PREEMPT_DYNAMIC${current ? ` (now: ${current})` : ''}: not a real-time kernel; a SCHED_FIFO thread can wait for the kernel to reach a preemption point`
            : `${model}: not a real-time kernel; a SCHED_FIFO thread can wait for the kernel to reach a preemption point`,
      ...(model === 'rt' || effective === 'full'
        ? {}
        : { fix: model === 'dynamic' ? 'boot with preempt=full, or install a PREEMPT_RT kernel (Debian: linux-image-rt-amd64)' : 'install a PREEMPT_RT kernel (Debian: linux-image-rt-amd64)' }),
      facts: { model, current },
    })
  }

  // CPU frequency.
  const slow = facts.governors.filter((g) => g.governor !== 'performance')
  if (facts.governors.length > 0) {
    add({
      id: 'cpu-governor',
      level: slow.length === 0 ? 'ok' : 'warn',
      title: 'CPU frequency',
      detail:
        slow.length === 0
          ? 'every CPU runs the performance governor'
          : `governor ${[...new Set(slow.map((g) => g.governor))].join(', ')} on CPUs ${list(slow.map((g) => g.cpu))}: a CPU that slows down when idle takes longer to wake up and to run`,
      ...(slow.length === 0 ? {} : { fix: 'echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor (or: sudo cpupower frequency-set -g performance)' }),
      facts: { governors: [...new Set(facts.governors.map((g) => g.governor))].join(' ') },
    })
  }

  // Locked memory (lockMemory) and socket buffers.
  const memlock = facts.memlockBytes?.soft ?? null
  if (memlock !== null && !(facts.uid === 0 || facts.capIpcLock)) {
    const enough = memlock >= 256 * 2 ** 20
    add({
      id: 'memlock',
      level: enough ? 'ok' : 'info',
      title: 'locked memory',
      detail: `RLIMIT_MEMLOCK is ${Number.isFinite(memlock) ? `${Math.round(memlock / 2 ** 20)} MiB` : 'unlimited'}${enough ? '' : ': lockMemory (no page faults on the packet path) fails for rings larger than that'}`,
      ...(enough ? {} : { fix: "ulimit -l unlimited in the shell that starts node (or '<user> - memlock unlimited' in /etc/security/limits.conf), or grant CAP_IPC_LOCK" }),
      facts: { memlockBytes: Number.isFinite(memlock) ? memlock : -1 },
    })
  }
  if (facts.rmemMaxBytes !== null) {
    const privileged = facts.uid === 0
    const small = facts.rmemMaxBytes < 8 * 2 ** 20
    add({
      id: 'socket-buffers',
      level: small && !privileged ? 'info' : 'ok',
      title: 'socket buffers',
      detail: `net.core.rmem_max = ${Math.round(facts.rmemMaxBytes / 1024)} KiB${privileged ? ' (udpcom forces larger receive buffers as root: SO_RCVBUFFORCE)' : small ? ': receive buffers are capped there, so a burst larger than that is dropped (counted in nKernelDrops)' : ''}`,
      ...(small && !privileged ? { fix: 'sudo sysctl -w net.core.rmem_max=33554432 net.core.wmem_max=33554432' } : {}),
      facts: { rmemMaxBytes: facts.rmemMaxBytes, wmemMaxBytes: facts.wmemMaxBytes },
    })
  }

  // The measurement.
  if (measured.probeError !== undefined) {
    add({ id: 'wakeups', level: 'warn', title: 'wake-up probe', detail: `could not run: ${measured.probeError}`, fix: 'see the error; udpcom doctor --no-probe skips it', facts: {} })
  }
  const probe = measured.probe
  if (probe?.wakeups) {
    const w = probe.wakeups
    const setup = `${probe.priority ? `SCHED_FIFO ${probe.priority}` : 'normal scheduling'}${probe.cpu !== null ? `, CPU ${probe.cpu}` : ''}`
    const level: Level = w.p99Ns > 200_000 || w.over1ms > 0 ? 'warn' : w.p99Ns > 50_000 ? 'info' : 'ok'
    const fixes = [
      probe.priority ? null : 'make SCHED_FIFO possible (see real-time permission) and run with --priority 80',
      facts.isolatedCpus.length === 0 && online > 1 ? 'isolate a CPU for it (see isolated CPUs)' : null,
    ].filter((f) => f !== null)
    add({
      id: 'wakeups',
      level,
      title: 'timed wake-ups',
      detail: `${w.count} deadlines ${formatNs(probe.periodNs)} apart (${setup}): woke up p50 ${formatNs(w.p50Ns)}, p99 ${formatNs(w.p99Ns)}, max ${formatNs(w.maxNs)} late${w.over1ms > 0 ? `, ${w.over1ms} more than 1 ms late` : ''}. udpcom's sender spins the last part of each wait (adaptive spinNs, 20-500 µs) to cover this`,
      ...(level !== 'ok' && fixes.length > 0 ? { fix: fixes.join('; ') } : {}),
      facts: { count: w.count, p50Ns: w.p50Ns, p99Ns: w.p99Ns, p999Ns: w.p999Ns, maxNs: w.maxNs, over1ms: w.over1ms, priority: probe.priority, cpu: probe.cpu },
    })
  }
  if (probe?.cpuLoss) {
    const c = probe.cpuLoss
    const seconds = c.spinNs / 1e9
    const perSecond = c.gaps / seconds
    const level: Level = c.gaps === 0 ? 'ok' : c.gapMaxNs > 100_000 || perSecond > 100 ? 'warn' : 'info'
    const fixes = [
      facts.isolatedCpus.length === 0 && online > 1 ? 'isolate the CPU (isolcpus, nohz_full)' : null,
      'move device interrupts off it (see interrupts)',
      facts.hypervisor !== null ? 'on a VM: dedicated virtual CPUs pinned on the host' : null,
    ].filter((f) => f !== null)
    add({
      id: 'cpu-loss',
      level,
      title: 'CPU loss while running',
      detail:
        c.gaps === 0
          ? `a thread spinning for ${Math.round(c.spinNs / 1e6)} ms never lost the CPU for more than 5 µs`
          : `a thread spinning for ${Math.round(c.spinNs / 1e6)} ms lost the CPU ${c.gaps} times (${Math.round(perSecond)}/s${c.intervalP50Ns > 0 ? `, every ${formatNs(c.intervalP50Ns)} at the median` : ''}) for p50 ${formatNs(c.gapP50Ns)}, p99 ${formatNs(c.gapP99Ns)}, max ${formatNs(c.gapMaxNs)} (${percent(c.lostNs / c.spinNs)} of its time): a packet due in such a gap leaves late whatever the sender does, so this is the floor of the p99 lateness here`,
      ...(level !== 'ok' ? { fix: fixes.join('; ') } : {}),
      facts: { spinNs: c.spinNs, gaps: c.gaps, gapsPerSecond: Math.round(perSecond), gapP50Ns: c.gapP50Ns, gapP99Ns: c.gapP99Ns, gapMaxNs: c.gapMaxNs, lostNs: c.lostNs, intervalP50Ns: c.intervalP50Ns },
    })
  }
  return findings
}

/** Options of runDoctor(). */
export interface DoctorOptions {
  /** Run the wake-up probe (default true). */
  probe?: boolean
  /** Length of its timed wake-up phase, ns (default 1 s). */
  probeDurationNs?: number
  /** Length of its CPU-loss phase, ns (default 500 ms). */
  probeSpinNs?: number
  /** The CPU to probe (default: suggestCpu()). */
  cpu?: number
  /** Read the machine's files through this (tests). */
  facts?: MachineFacts
}

/** The result of runDoctor(). */
export interface DoctorResult {
  facts: MachineFacts
  measured: Measured
  findings: Finding[]
}

/** Period of the probe's timed wake-ups (the findings describe it). */
const PROBE_PERIOD_NS = 1_000_000

/**
 * Reads this machine's facts and, unless `probe` is false, measures for about 1.5 s: the wake-up
 * probe on the suggested CPU, under SCHED_FIFO when permitted, with the steal time and the
 * interrupts while it ran.
 */
export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorResult> {
  const facts = options.facts ?? readMachineFacts()
  const measured: Measured = {}
  if (options.probe !== false) {
    const cpu = options.cpu ?? suggestCpu(facts)
    const priority = realTimePermission(facts).allowed ? PROBE_PRIORITY : null
    const activity = watchActivity()
    try {
      const result = await probeWakeups({
        durationNs: options.probeDurationNs ?? 1_000_000_000,
        periodNs: PROBE_PERIOD_NS,
        spinNs: options.probeSpinNs ?? 500_000_000,
        ...(cpu === null ? {} : { cpu }),
        ...(priority === null ? {} : { priority }),
      })
      measured.probe = { ...result, cpu, priority, periodNs: PROBE_PERIOD_NS }
    } catch (error) {
      measured.probeError = error instanceof Error ? error.message : String(error)
    }
    measured.activity = activity.done()
  }
  return { facts, measured, findings: diagnose(facts, measured) }
}
