// udpcom doctor: the parsers of /proc and /sys on sample text (lib/machine.ts), the verdicts on
// two sample machines (a tuned bare-metal host and a VM without real-time permission), and the
// command end to end on this machine.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

import { runNode } from './helpers.mjs'

const require = createRequire(import.meta.url)
const machine = require('../dist/machine.js')
const { diagnose, suggestCpu, realTimePermission } = require('../dist/doctor.js')
const main = join(fileURLToPath(new URL('..', import.meta.url)), 'dist/cli/main.js')

const INTERRUPTS = `           CPU0       CPU1       CPU2       CPU3
  0:         44          0          0          0   IO-APIC   2-edge      timer
 24:     120000          3          0          0  PCI-MSI 524288-edge      nvme0q0
 36:          0     250000          0         10  PCI-MSIX-0000:00:02.0   1-edge      eth0-rx-0
 37:          0          0          0          0  PCI-MSIX-0000:00:02.0   2-edge      eth0-tx-0
NMI:          5          5          5          5   Non-maskable interrupts
LOC:    1615952    3846918       1200       1100   Local timer interrupts
RES:        100        200          3          2   Rescheduling interrupts
ERR:          0
MIS:          0
`
const STATUS_ROOT = 'Name:\tnode\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapEff:\t000001fffeffffff\n'
const STATUS_USER = 'Name:\tnode\nUid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n'
const LIMITS = (rtprio, memlock) => `Limit                     Soft Limit           Hard Limit           Units
Max locked memory         ${memlock}              ${memlock}              bytes
Max realtime priority     ${rtprio}                    ${rtprio}
Max realtime timeout      unlimited            unlimited            us
`
const STAT = `cpu  1000 0 500 8000 100 0 50 350 0 0
cpu0 250 0 125 2000 25 0 12 88 0 0
cpu1 250 0 125 2000 25 0 13 87 0 0
intr 12345
`

/** A machine as a map of file → text; anything else cannot be read. */
const files = (map) => (path) => map[path]

/** A tuned host: 4 CPUs, 2-3 isolated with nohz_full, root, tsc, PREEMPT_RT, performance governor. */
const BARE_METAL = {
  '/proc/self/status': STATUS_ROOT,
  '/proc/self/limits': LIMITS(0, 'unlimited'),
  '/proc/cpuinfo': 'processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6230\nflags\t\t: fpu vme de pse tsc msr constant_tsc\n',
  '/proc/cmdline': 'BOOT_IMAGE=/vmlinuz root=/dev/sda1 isolcpus=managed_irq,domain,2-3 nohz_full=2-3 rcu_nocbs=2-3 quiet',
  '/sys/devices/system/cpu/online': '0-3\n',
  '/sys/devices/system/cpu/isolated': '2-3\n',
  '/sys/devices/system/cpu/nohz_full': '2-3\n',
  ...Object.fromEntries([0, 1, 2, 3].map((cpu) => [`/sys/devices/system/cpu/cpu${cpu}/cpufreq/scaling_governor`, 'performance\n'])),
  '/sys/devices/system/clocksource/clocksource0/available_clocksource': 'tsc hpet acpi_pm \n',
  '/sys/devices/system/clocksource/clocksource0/current_clocksource': 'tsc\n',
  '/proc/sys/kernel/sched_rt_runtime_us': '-1\n',
  '/proc/sys/kernel/sched_rt_period_us': '1000000\n',
  '/proc/self/timerslack_ns': '50000\n',
  '/proc/sys/kernel/version': '#1 SMP PREEMPT_RT Debian 6.1.0-rt\n',
  '/proc/sys/kernel/hostname': 'lab1\n',
  '/proc/sys/kernel/osrelease': '6.1.0-18-rt-amd64\n',
  '/proc/stat': STAT.replace(/ 350 0 0/, ' 0 0 0'),
  '/proc/interrupts': INTERRUPTS,
  '/proc/sys/net/core/rmem_max': '33554432\n',
  '/proc/sys/net/core/wmem_max': '33554432\n',
}

/** A cloud VM: 2 CPUs, no isolation, an ordinary user, hpet offered and in use, powersave, steal. */
const VM_USER = {
  '/proc/self/status': STATUS_USER,
  '/proc/self/limits': LIMITS(0, '8388608'),
  '/proc/cpuinfo': 'processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu tsc hypervisor\n',
  '/proc/cmdline': 'console=ttyS0 -- --init-flag',
  '/sys/devices/system/cpu/online': '0-1\n',
  '/sys/devices/system/cpu/isolated': '\n',
  '/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor': 'powersave\n',
  '/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor': 'powersave\n',
  '/sys/devices/system/clocksource/clocksource0/available_clocksource': 'kvm-clock tsc hpet acpi_pm\n',
  '/sys/devices/system/clocksource/clocksource0/current_clocksource': 'hpet\n',
  '/sys/class/dmi/id/sys_vendor': 'QEMU\n',
  '/sys/class/dmi/id/product_name': 'Standard PC (Q35 + ICH9, 2009)\n',
  '/proc/sys/kernel/sched_rt_runtime_us': '950000\n',
  '/proc/sys/kernel/sched_rt_period_us': '1000000\n',
  '/proc/self/timerslack_ns': '50000\n',
  '/proc/sys/kernel/version': '#1 SMP PREEMPT_DYNAMIC Debian 6.12\n',
  '/sys/kernel/debug/sched/preempt': 'none (voluntary) full lazy\n',
  '/proc/stat': STAT,
  '/proc/interrupts': INTERRUPTS.replace(/CPU2 +CPU3/, '').replace(/^(\s*\S+:\s+\d+\s+\d+)\s+\d+\s+\d+/gm, '$1'),
  '/proc/sys/net/core/rmem_max': '212992\n',
  '/proc/sys/net/core/wmem_max': '212992\n',
}

const byId = (findings) => Object.fromEntries(findings.map((f) => [f.id, f]))

test('parsers: CPU lists, the kernel command line, status, limits, stat, cpuinfo, preemption', () => {
  assert.deepEqual(machine.parseCpuList('0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11])
  assert.deepEqual(machine.parseCpuList(''), [])
  assert.deepEqual(machine.parseCpuList('garbage,5'), [5])
  assert.deepEqual(machine.parseCmdline('a=1 quiet isolcpus=2-3 -- init=x'), { a: '1', quiet: '', isolcpus: '2-3' })
  assert.deepEqual(machine.parseStatus(STATUS_ROOT), { uid: 0, capEff: 0x1fffeffffffn })
  assert.deepEqual(machine.parseStatus(''), { uid: null, capEff: null })
  assert.deepEqual(machine.parseLimits(LIMITS(99, 'unlimited')), { rtprio: { soft: 99, hard: 99 }, memlockBytes: { soft: Infinity, hard: Infinity } })
  const [all, cpu0] = machine.parseProcStat(STAT)
  assert.deepEqual(all, { cpu: -1, busy: 1550, idle: 8100, steal: 350, total: 10_000 })
  assert.equal(cpu0.cpu, 0)
  assert.deepEqual(machine.parseCpuinfo(VM_USER['/proc/cpuinfo']), { model: 'AMD EPYC 7B13', hypervisorFlag: true })
  assert.deepEqual(machine.parsePreemption('#1 SMP PREEMPT_DYNAMIC', 'none (voluntary) full'), { model: 'dynamic', current: 'voluntary' })
  assert.deepEqual(machine.parsePreemption('#1 SMP PREEMPT_RT', undefined), { model: 'rt', current: null })
  assert.deepEqual(machine.parsePreemption('#1 SMP', undefined), { model: 'none', current: null })
  assert.equal(machine.guessHypervisor({ sysVendor: 'Amazon EC2', productName: 'm5.large', clocksources: [], hypervisorFlag: true }), 'Amazon EC2 (Nitro, KVM)')
  assert.equal(machine.guessHypervisor({ sysVendor: null, productName: null, clocksources: ['tsc', 'kvm-clock'], hypervisorFlag: true }), 'KVM')
  assert.equal(machine.guessHypervisor({ sysVendor: null, productName: null, clocksources: ['tsc'], hypervisorFlag: true }), 'unknown hypervisor')
  assert.equal(machine.guessHypervisor({ sysVendor: 'Dell Inc.', productName: 'PowerEdge', clocksources: ['tsc'], hypervisorFlag: false }), null)
})

test('parsers: /proc/interrupts per CPU, and what happened between two readings', () => {
  const table = machine.parseInterrupts(INTERRUPTS)
  assert.deepEqual(table.cpus, [0, 1, 2, 3])
  // ERR and MIS have a single count: not per CPU, left out.
  assert.deepEqual(table.lines.map((l) => l.irq), ['0', '24', '36', '37', 'NMI', 'LOC', 'RES'])
  assert.deepEqual(table.lines[2], { irq: '36', counts: [0, 250000, 0, 10], description: 'PCI-MSIX-0000:00:02.0 1-edge eth0-rx-0', device: true })
  const perCpu = machine.interruptsPerCpu(table)
  assert.deepEqual(perCpu.map((c) => c.device), [120044, 250003, 0, 10])
  assert.deepEqual(perCpu[1].top[0], { irq: '36', count: 250000, name: 'eth0-rx-0' })
  assert.equal(perCpu[0].timer, 1615952)
  const later = machine.parseInterrupts(INTERRUPTS.replace('250000', '250100'))
  const between = machine.interruptsPerCpu(machine.interruptsBetween(table, later))
  assert.deepEqual(between.map((c) => c.device), [0, 100, 0, 0])
  assert.deepEqual(machine.parseInterrupts(''), { cpus: [], lines: [] })
})

test('a tuned bare-metal host: isolated CPUs suggested, nothing to fix', () => {
  const facts = machine.readMachineFacts(files(BARE_METAL))
  assert.deepEqual(facts.isolatedCpus, [2, 3])
  assert.deepEqual(facts.nohzFullCpus, [2, 3])
  assert.equal(facts.hypervisor, null)
  assert.equal(facts.capSysNice, true)
  assert.equal(suggestCpu(facts), 2, 'an isolated CPU, the quieter one')
  const findings = byId(diagnose(facts))
  assert.deepEqual(Object.values(findings).filter((f) => f.level === 'warn').map((f) => f.id), [])
  assert.equal(findings['rt-permission'].level, 'ok')
  assert.equal(findings['rt-throttling'].level, 'ok')
  assert.equal(findings['isolated-cpus'].level, 'ok')
  assert.match(findings['isolated-cpus'].detail, /--cpu 3/)
  assert.equal(findings.clocksource.level, 'ok')
  assert.equal(findings.preemption.level, 'ok')
  assert.equal(findings['cpu-governor'].level, 'ok')
  assert.equal(findings['virtual-machine'], undefined)
  for (const finding of Object.values(findings)) {
    assert.ok(['ok', 'info', 'warn'].includes(finding.level))
    assert.ok(finding.title && finding.detail)
    if (finding.level !== 'ok' && finding.id !== 'interrupts') assert.ok(finding.fix, `${finding.id} names a fix`)
  }
})

test('a VM without permission: each problem a warn whose fix is the command', () => {
  const facts = machine.readMachineFacts(files(VM_USER))
  assert.equal(facts.hypervisor, 'KVM (QEMU)')
  assert.equal(realTimePermission(facts).allowed, false)
  const findings = byId(diagnose(facts))
  assert.equal(findings['rt-permission'].level, 'warn')
  assert.match(findings['rt-permission'].fix, /sudo setcap cap_sys_nice\+ep/)
  assert.match(findings['rt-permission'].fix, /ulimit -r 99/)
  assert.equal(findings['rt-throttling'].level, 'info')
  assert.match(findings['rt-throttling'].fix, /sudo sysctl -w kernel\.sched_rt_runtime_us=-1/)
  assert.equal(findings['isolated-cpus'].level, 'warn')
  assert.match(findings['isolated-cpus'].fix, /isolcpus=1 nohz_full=1 rcu_nocbs=1 .* --cpu 1/)
  assert.equal(findings.clocksource.level, 'warn')
  assert.match(findings.clocksource.fix, /echo tsc \| sudo tee \/sys\/devices\/system\/clocksource\/clocksource0\/current_clocksource/)
  assert.equal(findings['cpu-governor'].level, 'warn')
  assert.match(findings['cpu-governor'].fix, /scaling_governor/)
  assert.equal(findings['virtual-machine'].level, 'info')
  assert.equal(findings.steal.level, 'warn', '3.5% steal since boot')
  assert.match(findings.steal.detail, /3\.5% of the time since boot/)
  assert.equal(findings.preemption.level, 'info')
  assert.match(findings.preemption.detail, /now: voluntary/)
  assert.equal(findings.memlock.level, 'info')
  assert.match(findings.memlock.fix, /ulimit -l unlimited/)
  assert.equal(findings['socket-buffers'].level, 'info')
  assert.match(findings['socket-buffers'].fix, /net\.core\.rmem_max=/)
  // CPU 1 takes the NIC's interrupts (and 3 of the disk's): the fix moves them to CPU 0, busiest first.
  assert.match(findings.interrupts.fix, /for irq in 36 24; do echo 0 \| sudo tee \/proc\/irq\/\$irq\/smp_affinity_list; done/)
})

test('the probe\'s figures: late wake-ups and CPU loss are warns with the fix', () => {
  const facts = machine.readMachineFacts(files(VM_USER))
  const activity = { spanNs: 1.5e9, stealFraction: 0.002, interrupts: machine.interruptsBetween(facts.interrupts, facts.interrupts) }
  const probe = {
    wakeups: { count: 1000, sleeps: 5000, p50Ns: 30_000, p99Ns: 450_000, p999Ns: 900_000, maxNs: 2_100_000, over1ms: 3 },
    cpuLoss: { spinNs: 500_000_000, gaps: 490, gapP50Ns: 20_000, gapP99Ns: 64_000, gapMaxNs: 150_000, lostNs: 10_000_000, intervalP50Ns: 1_000_000 },
    cpu: 1,
    priority: null,
    periodNs: 1_000_000,
  }
  const findings = byId(diagnose(facts, { probe, activity }))
  assert.equal(findings.wakeups.level, 'warn')
  assert.match(findings.wakeups.detail, /1000 deadlines 1\.00 ms apart \(normal scheduling, CPU 1\): woke up p50 30\.0 µs, p99 450 µs, max 2\.10 ms late, 3 more than 1 ms late/)
  assert.match(findings.wakeups.fix, /--priority 80/)
  assert.equal(findings['cpu-loss'].level, 'warn')
  assert.match(findings['cpu-loss'].detail, /lost the CPU 490 times \(980\/s, every 1\.00 ms at the median\) for p50 20\.0 µs, p99 64\.0 µs, max 150 µs \(2\.0% of its time\)/)
  assert.match(findings['cpu-loss'].fix, /isolate the CPU/)
  assert.equal(findings.steal.level, 'ok', 'measured while the probe ran: 0.2%')
  assert.match(findings.steal.detail, /while the probe ran/)
  const quiet = byId(diagnose(facts, { probe: { ...probe, wakeups: { ...probe.wakeups, p99Ns: 20_000, maxNs: 40_000, over1ms: 0 }, cpuLoss: { ...probe.cpuLoss, gaps: 0, gapMaxNs: 0 } }, activity }))
  assert.equal(quiet.wakeups.level, 'ok')
  assert.equal(quiet['cpu-loss'].level, 'ok')
  assert.equal(quiet['cpu-loss'].fix, undefined)
  const failed = byId(diagnose(facts, { probeError: 'sched_setscheduler EPERM' }))
  assert.equal(failed.wakeups.level, 'warn')
})

test('nothing readable (a locked-down container): facts are empty, no exception', () => {
  const facts = machine.readMachineFacts(() => undefined)
  assert.deepEqual(facts.onlineCpus, [])
  assert.equal(facts.clocksource, null)
  const findings = diagnose(facts)
  assert.ok(findings.some((f) => f.id === 'rt-permission'))
})

test('udpcom doctor on this machine: --json findings, the probe, exit 1 exactly when something is a warn', async () => {
  const run = await runNode([main, 'doctor', '--json', '--probe-duration', '300ms'], { timeoutMs: 30_000 })
  const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l))
  assert.equal(lines[0].type, 'machine')
  assert.ok(lines[0].onlineCpus >= 1)
  const findings = lines.filter((l) => l.type === 'finding')
  const ids = findings.map((f) => f.id)
  for (const id of ['rt-permission', 'rt-throttling', 'timer-slack', 'isolated-cpus', 'interrupts', 'clocksource', 'wakeups', 'cpu-loss']) {
    assert.ok(ids.includes(id), `${id} in ${ids}`)
  }
  const wakeups = findings.find((f) => f.id === 'wakeups')
  assert.ok(wakeups.facts.count >= 290, JSON.stringify(wakeups))
  assert.ok(wakeups.facts.p50Ns <= wakeups.facts.p99Ns)
  const cpuLoss = findings.find((f) => f.id === 'cpu-loss')
  assert.equal(cpuLoss.facts.spinNs, 150_000_000)
  for (const finding of findings) {
    assert.ok(['ok', 'info', 'warn'].includes(finding.level))
    if (finding.level === 'warn') assert.ok(finding.fix, `${finding.id}: a warn names its fix`)
  }
  const summary = lines.at(-1)
  assert.equal(summary.type, 'summary')
  assert.equal(summary.warn, findings.filter((f) => f.level === 'warn').length)
  assert.equal(run.code, summary.warn > 0 ? 1 : 0, run.stderr)

  const text = await runNode([main, 'doctor', '--no-probe'], { timeoutMs: 30_000 })
  assert.match(text.stdout, /^udpcom doctor: .*, Linux .*, \d+ CPUs/)
  assert.match(text.stdout, /^(ok|info|warn) {2,}real-time permission: /m)
  assert.match(text.stdout, /^ {7}fix: /m)
  assert.match(text.stdout, /^summary: \d+ to fix \(warn\), \d+ worth knowing \(info\), \d+ ok$/m)
  assert.doesNotMatch(text.stdout, /timed wake-ups/, '--no-probe skips the probe')
})
