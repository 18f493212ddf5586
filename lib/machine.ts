// The facts about this machine that decide timing, read from /proc and /sys: real-time
// permission, RT throttling, timer slack, isolated CPUs, interrupts per CPU, the clocksource,
// signs of a virtual machine and the time its host steals, the kernel's preemption model.
//
// Each file has a pure parser taking the file's text (tested on sample text), and
// `readMachineFacts()` reads them all through a `ReadText` function (the real files by default,
// a fixture in tests). A file that cannot be read gives null or an empty list, never an
// exception: the machine may be a container that hides parts of /sys. `udpcom doctor`
// (lib/doctor.ts) turns the facts into verdicts; the benchmark prints some of them above its
// table.

import { readFileSync } from 'node:fs'

/** Reads a file's text; undefined when it cannot be read. */
export type ReadText = (path: string) => string | undefined

/** The real files. */
export const readTextFile: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** CAP_SYS_NICE: may use real-time scheduling and set any priority. */
export const CAP_SYS_NICE = 23
/** CAP_IPC_LOCK: may lock memory beyond RLIMIT_MEMLOCK. */
export const CAP_IPC_LOCK = 14

/** A CPU list as the kernel writes it (`0-3,8,10-11`) → [0, 1, 2, 3, 8, 10, 11]; '' → []. */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = []
  for (const part of text.trim().split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (!match) continue
    const first = Number(match[1])
    const last = match[2] === undefined ? first : Number(match[2])
    for (let cpu = first; cpu <= last && cpu - first < 4096; cpu++) cpus.push(cpu)
  }
  return cpus
}

/** The kernel command line (/proc/cmdline) as name → value ('' for a bare flag), up to `--`. */
export function parseCmdline(text: string): Record<string, string> {
  const params: Record<string, string> = {}
  for (const word of text.trim().split(/\s+/)) {
    if (word === '--') break
    if (word === '') continue
    const at = word.indexOf('=')
    if (at === -1) params[word] = ''
    else params[word.slice(0, at)] = word.slice(at + 1)
  }
  return params
}

/** From /proc/self/status: the effective user id and capability set. */
export function parseStatus(text: string): { uid: number | null; capEff: bigint | null } {
  const uid = /^Uid:\s+\d+\s+(\d+)/m.exec(text)
  const capEff = /^CapEff:\s+([0-9a-fA-F]+)/m.exec(text)
  return { uid: uid ? Number(uid[1]) : null, capEff: capEff ? BigInt(`0x${capEff[1]}`) : null }
}

/** A resource limit: a number, or Infinity for 'unlimited'. */
export interface Limit {
  soft: number
  hard: number
}

/** From /proc/self/limits: the RT priority limit (RLIMIT_RTPRIO) and the locked-memory limit in bytes. */
export function parseLimits(text: string): { rtprio: Limit | null; memlockBytes: Limit | null } {
  const limit = (name: string): Limit | null => {
    const match = new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(text)
    if (!match) return null
    const value = (word: string): number => (word === 'unlimited' ? Infinity : Number(word))
    return { soft: value(match[1]!), hard: value(match[2]!) }
  }
  return { rtprio: limit('Max realtime priority'), memlockBytes: limit('Max locked memory') }
}

/** Time one CPU (or all of them: `cpu` -1) spent in each state since boot, in clock ticks. */
export interface CpuTimes {
  cpu: number
  busy: number
  idle: number
  /** Time the hypervisor ran something else while this virtual CPU wanted to run. */
  steal: number
  total: number
}

/** /proc/stat's cpu lines: user nice system idle iowait irq softirq steal guest guest_nice. */
export function parseProcStat(text: string): CpuTimes[] {
  const times: CpuTimes[] = []
  for (const line of text.split('\n')) {
    const match = /^cpu(\d*)\s+(.*)$/.exec(line)
    if (!match) continue
    // guest and guest_nice are already counted in user and nice.
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = match[2]!.trim().split(/\s+/).map(Number)
    const busy = user + nice + system + irq + softirq
    times.push({ cpu: match[1] === '' ? -1 : Number(match[1]), busy, idle: idle + iowait, steal, total: busy + idle + iowait + steal })
  }
  return times
}

/** One line of /proc/interrupts. */
export interface InterruptLine {
  /** The IRQ number ('36') or the name of an architecture interrupt ('LOC', 'RES'). */
  irq: string
  /** Count per CPU, in the order of InterruptTable.cpus. */
  counts: number[]
  /** What raises it: the chip, the trigger and the device ('PCI-MSIX-0000:00:02.0 1-edge virtio1-req.0'). */
  description: string
  /** A device interrupt (numbered): its CPUs can be chosen in /proc/irq/<irq>/smp_affinity_list. */
  device: boolean
}

export interface InterruptTable {
  /** CPU numbers of the columns. */
  cpus: number[]
  lines: InterruptLine[]
}

/** /proc/interrupts: a header of CPU columns, then one line per interrupt source. */
export function parseInterrupts(text: string): InterruptTable {
  const rows = text.split('\n')
  const cpus = (rows[0] ?? '')
    .trim()
    .split(/\s+/)
    .map((name) => /^CPU(\d+)$/.exec(name))
    .filter((match) => match !== null)
    .map((match) => Number(match[1]))
  const lines: InterruptLine[] = []
  for (const row of rows.slice(1)) {
    const match = /^\s*([^:\s]+):\s*(.*)$/.exec(row)
    if (!match) continue
    const words = match[2]!.trim().split(/\s+/)
    const counts: number[] = []
    while (counts.length < cpus.length && words.length > 0 && /^\d+$/.test(words[0]!)) counts.push(Number(words.shift()))
    // ERR and MIS have one count for the whole machine: not per CPU.
    if (counts.length < cpus.length) continue
    const irq = match[1]!
    lines.push({ irq, counts, description: words.join(' '), device: /^\d+$/.test(irq) })
  }
  return { cpus, lines }
}

/** The interrupts counted between two readings of /proc/interrupts (lines in both). */
export function interruptsBetween(before: InterruptTable, after: InterruptTable): InterruptTable {
  const earlier = new Map(before.lines.map((line) => [line.irq, line]))
  const lines: InterruptLine[] = []
  for (const line of after.lines) {
    const old = earlier.get(line.irq)
    if (!old || old.counts.length !== line.counts.length) continue
    lines.push({ ...line, counts: line.counts.map((count, i) => Math.max(0, count - old.counts[i]!)) })
  }
  return { cpus: after.cpus, lines }
}

/** Interrupts per CPU: device interrupts, local timer ticks (LOC) and all. */
export interface CpuInterrupts {
  cpu: number
  device: number
  timer: number
  total: number
  /** The device interrupts on this CPU, most first: IRQ number, count and device name. */
  top: { irq: string; count: number; name: string }[]
}

export function interruptsPerCpu(table: InterruptTable): CpuInterrupts[] {
  return table.cpus.map((cpu, column) => {
    let device = 0
    let timer = 0
    let total = 0
    const top: CpuInterrupts['top'] = []
    for (const line of table.lines) {
      const count = line.counts[column]!
      total += count
      if (line.irq === 'LOC') timer += count
      if (line.device && count > 0) {
        device += count
        top.push({ irq: line.irq, count, name: line.description.split(' ').pop() ?? '' })
      }
    }
    top.sort((a, b) => b.count - a.count)
    return { cpu, device, timer, total, top: top.slice(0, 5) }
  })
}

/** From /proc/cpuinfo: the CPU model and whether the CPU says it runs under a hypervisor. */
export function parseCpuinfo(text: string): { model: string | null; hypervisorFlag: boolean } {
  const model = /^model name\s*:\s*(.+)$/m.exec(text)
  const flags = /^flags\s*:\s*(.+)$/m.exec(text)
  return { model: model ? model[1]!.trim() : null, hypervisorFlag: flags ? flags[1]!.split(/\s+/).includes('hypervisor') : false }
}

/** The kernel's preemption model, from the build string (/proc/sys/kernel/version) and, where debugfs shows it, the current one. */
export type Preemption = 'rt' | 'full' | 'dynamic' | 'voluntary' | 'none' | 'unknown'

export function parsePreemption(version: string | undefined, debugfsPreempt: string | undefined): { model: Preemption; current: string | null } {
  // debugfs writes the choices with the current one in parentheses: "none voluntary (full) lazy".
  const current = debugfsPreempt ? (/\((\w+)\)/.exec(debugfsPreempt)?.[1] ?? null) : null
  if (!version) return { model: 'unknown', current }
  if (/PREEMPT_RT/.test(version)) return { model: 'rt', current }
  if (/PREEMPT_DYNAMIC/.test(version)) return { model: 'dynamic', current }
  if (/PREEMPT\b/.test(version)) return { model: 'full', current }
  if (/PREEMPT_VOLUNTARY/.test(version)) return { model: 'voluntary', current }
  return { model: 'none', current }
}

/**
 * Which hypervisor, if any: from DMI (sys_vendor, product_name), the clocksources the guest
 * was offered (kvm-clock, hyperv_clocksource_*, xen) and the CPU's hypervisor flag.
 */
export function guessHypervisor(facts: { sysVendor: string | null; productName: string | null; clocksources: string[]; hypervisorFlag: boolean }): string | null {
  const dmi = `${facts.sysVendor ?? ''} ${facts.productName ?? ''}`
  const known: [RegExp, string][] = [
    [/QEMU|KVM/i, 'KVM (QEMU)'],
    [/Amazon EC2/i, 'Amazon EC2 (Nitro, KVM)'],
    [/Google/i, 'Google Compute Engine (KVM)'],
    [/Microsoft/i, 'Hyper-V'],
    [/VMware/i, 'VMware'],
    [/Xen/i, 'Xen'],
    [/innotek|VirtualBox/i, 'VirtualBox'],
    [/Parallels/i, 'Parallels'],
  ]
  for (const [pattern, name] of known) if (pattern.test(dmi)) return name
  if (facts.clocksources.includes('kvm-clock')) return 'KVM'
  if (facts.clocksources.some((c) => c.startsWith('hyperv'))) return 'Hyper-V'
  if (facts.clocksources.includes('xen')) return 'Xen'
  return facts.hypervisorFlag ? 'unknown hypervisor' : null
}

/** Everything readMachineFacts() finds. */
export interface MachineFacts {
  hostname: string | null
  kernelRelease: string | null
  preemption: { model: Preemption; current: string | null }
  /** Kernel command line parameters. */
  bootParams: Record<string, string>
  cpuModel: string | null
  onlineCpus: number[]
  /** CPUs taken away from the scheduler's load balancing (isolcpus). */
  isolatedCpus: number[]
  /** CPUs without the periodic tick while they run one task. */
  nohzFullCpus: number[]
  /** Frequency governor per CPU; empty without cpufreq (a VM: the host decides). */
  governors: { cpu: number; governor: string }[]
  uid: number | null
  capSysNice: boolean
  capIpcLock: boolean
  rtprio: Limit | null
  memlockBytes: Limit | null
  /** kernel.sched_rt_runtime_us (-1: no RT throttling) and kernel.sched_rt_period_us. */
  schedRtRuntimeUs: number | null
  schedRtPeriodUs: number | null
  /** Timer slack of this process's main thread, ns (50 µs by default). */
  timerSlackNs: number | null
  clocksource: string | null
  clocksources: string[]
  hypervisorFlag: boolean
  sysVendor: string | null
  productName: string | null
  /** Which hypervisor, or null on bare metal (see guessHypervisor). */
  hypervisor: string | null
  /** CPU times since boot (the all-CPU line first, cpu -1). */
  cpuTimes: CpuTimes[]
  /** Interrupt counts since boot. */
  interrupts: InterruptTable
  rmemMaxBytes: number | null
  wmemMaxBytes: number | null
}

const trimmed = (text: string | undefined): string | null => {
  const value = text?.trim()
  return value === undefined || value === '' ? null : value
}
const numberIn = (text: string | undefined): number | null => {
  const value = trimmed(text)
  return value === null || !/^-?\d+$/.test(value) ? null : Number(value)
}

/** Reads every fact, through `read` (the real files by default). */
export function readMachineFacts(read: ReadText = readTextFile): MachineFacts {
  const status = parseStatus(read('/proc/self/status') ?? '')
  const limits = parseLimits(read('/proc/self/limits') ?? '')
  const cpuinfo = parseCpuinfo(read('/proc/cpuinfo') ?? '')
  const bootParams = parseCmdline(read('/proc/cmdline') ?? '')
  const onlineCpus = parseCpuList(read('/sys/devices/system/cpu/online') ?? '')
  const hasCap = (bit: number): boolean => status.capEff !== null && (status.capEff & (1n << BigInt(bit))) !== 0n
  const cpuListOr = (path: string, param: string): number[] => {
    const fromSys = parseCpuList(read(path) ?? '')
    // isolcpus may carry flags before the list ("isolcpus=domain,managed_irq,2-3").
    return fromSys.length > 0 ? fromSys : parseCpuList((bootParams[param] ?? '').replace(/^([a-z_]+,)+/, ''))
  }
  const governors: MachineFacts['governors'] = []
  for (const cpu of onlineCpus) {
    const governor = trimmed(read(`/sys/devices/system/cpu/cpu${cpu}/cpufreq/scaling_governor`))
    if (governor !== null) governors.push({ cpu, governor })
  }
  const clocksources = (trimmed(read('/sys/devices/system/clocksource/clocksource0/available_clocksource')) ?? '').split(/\s+/).filter(Boolean)
  const sysVendor = trimmed(read('/sys/class/dmi/id/sys_vendor'))
  const productName = trimmed(read('/sys/class/dmi/id/product_name'))
  return {
    hostname: trimmed(read('/proc/sys/kernel/hostname')),
    kernelRelease: trimmed(read('/proc/sys/kernel/osrelease')),
    preemption: parsePreemption(read('/proc/sys/kernel/version'), read('/sys/kernel/debug/sched/preempt')),
    bootParams,
    cpuModel: cpuinfo.model,
    onlineCpus,
    isolatedCpus: cpuListOr('/sys/devices/system/cpu/isolated', 'isolcpus'),
    nohzFullCpus: cpuListOr('/sys/devices/system/cpu/nohz_full', 'nohz_full'),
    governors,
    uid: status.uid,
    capSysNice: hasCap(CAP_SYS_NICE),
    capIpcLock: hasCap(CAP_IPC_LOCK),
    rtprio: limits.rtprio,
    memlockBytes: limits.memlockBytes,
    schedRtRuntimeUs: numberIn(read('/proc/sys/kernel/sched_rt_runtime_us')),
    schedRtPeriodUs: numberIn(read('/proc/sys/kernel/sched_rt_period_us')),
    timerSlackNs: numberIn(read('/proc/self/timerslack_ns')),
    clocksource: trimmed(read('/sys/devices/system/clocksource/clocksource0/current_clocksource')),
    clocksources,
    hypervisorFlag: cpuinfo.hypervisorFlag,
    sysVendor,
    productName,
    hypervisor: guessHypervisor({ sysVendor, productName, clocksources, hypervisorFlag: cpuinfo.hypervisorFlag }),
    cpuTimes: parseProcStat(read('/proc/stat') ?? ''),
    interrupts: parseInterrupts(read('/proc/interrupts') ?? ''),
    rmemMaxBytes: numberIn(read('/proc/sys/net/core/rmem_max')),
    wmemMaxBytes: numberIn(read('/proc/sys/net/core/wmem_max')),
  }
}

/** What a later reading of /proc/stat and /proc/interrupts adds: the steal and interrupts in between. */
export interface MachineActivity {
  /** Wall time the two readings span, ns. */
  spanNs: number
  /** Fraction of CPU time the hypervisor stole from this machine's CPUs (all CPUs). */
  stealFraction: number | null
  interrupts: InterruptTable
}

/** Takes a reading now; `done()` returns what happened since. */
export function watchActivity(read: ReadText = readTextFile): { done(): MachineActivity } {
  const started = process.hrtime.bigint()
  const statBefore = parseProcStat(read('/proc/stat') ?? '')
  const interruptsBefore = parseInterrupts(read('/proc/interrupts') ?? '')
  return {
    done(): MachineActivity {
      const statAfter = parseProcStat(read('/proc/stat') ?? '')
      const all = (times: CpuTimes[]): CpuTimes | undefined => times.find((t) => t.cpu === -1)
      const [before, after] = [all(statBefore), all(statAfter)]
      const total = before && after ? after.total - before.total : 0
      return {
        spanNs: Number(process.hrtime.bigint() - started),
        stealFraction: before && after && total > 0 ? (after.steal - before.steal) / total : null,
        interrupts: interruptsBetween(interruptsBefore, parseInterrupts(read('/proc/interrupts') ?? '')),
      }
    },
  }
}

/** Steal since boot, as a fraction of all CPU time (null without /proc/stat). */
export function stealSinceBoot(facts: MachineFacts): number | null {
  const all = facts.cpuTimes.find((t) => t.cpu === -1)
  return all && all.total > 0 ? all.steal / all.total : null
}
