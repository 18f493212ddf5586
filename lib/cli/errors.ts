// The command line's errors: a usage error (exit code 2, "see --help"), and the coded errors of
// udpcom and of Node, each turned into one line that says what to do about it.

import { availableParallelism } from 'node:os'

/** A bad command line: wrong option, bad value, missing argument. Exit code 2. */
export class UsageError extends Error {
  readonly code = 'ERR_UDPCOM_USAGE'
  /** The command whose --help to point to (undefined: the top-level help). */
  command: string | undefined
  constructor(message: string, command?: string) {
    super(message)
    this.name = 'UsageError'
    this.command = command
  }
}

/** A coded error as udpcom and Node throw them (`code`, and for OS errors `syscall`). */
interface Coded {
  code?: unknown
  syscall?: unknown
  message?: unknown
}

/** How to fix an expected error: a line for the user, or undefined for an unexpected one (a bug). */
export interface Explained {
  /** What went wrong, in a line. */
  message: string
  /** What to change, naming the command or flag; absent when the message says it. */
  fix?: string
  /** The error's code (errno name, ERR_*), for --json. */
  code: string
}

/** The fix for real-time scheduling that was refused (EPERM from sched_setscheduler). */
export const RT_PERMISSION_FIX =
  'run as root, or grant CAP_SYS_NICE: sudo setcap cap_sys_nice+ep "$(readlink -f "$(which node)")", ' +
  "or raise the RT priority limit: ulimit -r 99 (or '<user> - rtprio 99' in /etc/security/limits.conf); " +
  'or leave out --priority'

/**
 * The part of an engine message before its hint (the engine appends `: <hint>`); Node's own
 * messages (`ENOENT: no such file or directory, access '/x'`) whole.
 */
function firstClause(message: string, code: string): string {
  if (message.startsWith(`${code}:`)) return message
  // "sched_setscheduler EPERM SCHED_FIFO priority 80: this process may not ..." → before ": ".
  const at = message.indexOf(': ')
  return at === -1 ? message : message.slice(0, at)
}

/**
 * The one-line explanation of an error a command may expect: usage errors, udpcom's argument
 * and state errors, and the OS errors of binding, scheduling and memory locking. Undefined for
 * anything else: that is a bug, shown with its stack.
 */
export function explain(error: unknown): Explained | undefined {
  if (error instanceof UsageError) {
    const help = error.command ? `udpcom ${error.command} --help` : 'udpcom --help'
    return { message: error.message, fix: `see ${help}`, code: error.code }
  }
  if (typeof error !== 'object' || error === null) return undefined
  const { code, syscall, message } = error as Coded
  if (typeof code !== 'string' || typeof message !== 'string') return undefined
  const text = firstClause(message, code)
  switch (`${code} ${typeof syscall === 'string' ? syscall : ''}`.trim()) {
    case 'EPERM sched_setscheduler':
      return { code, message: `real-time scheduling was refused (${text})`, fix: RT_PERMISSION_FIX }
    case 'EINVAL sched_setaffinity':
      return { code, message: text, fix: `use a CPU this process may run on (nproc: ${cpuCountHint()}), or leave out --cpu` }
    case 'EADDRINUSE bind':
      return { code, message: text, fix: "pick another port, or find who holds it: ss -ulpn 'sport = :PORT'" }
    case 'EACCES bind':
      return { code, message: text, fix: 'ports below 1024 need root or CAP_NET_BIND_SERVICE: use a port of 1024 or above' }
    case 'EADDRNOTAVAIL bind':
      return { code, message: text, fix: "bind to an address of this machine (ip -br addr), or to 0.0.0.0 / '::' for all" }
    case 'ENOMEM mlock':
    case 'EPERM mlock':
    case 'ENOMEM mlockall':
    case 'EPERM mlockall':
      return { code, message: text, fix: 'raise the locked-memory limit (ulimit -l unlimited), grant CAP_IPC_LOCK, or run as root' }
    case 'ENOENT open':
    case 'ENOENT access':
      return { code, message: text, fix: 'check the path: its folder must exist' }
    case 'EACCES open':
    case 'EACCES access':
      return { code, message: text, fix: 'check the permissions of the path' }
  }
  // 'pcap: truncated block at byte 1024: ...': the whole message says where and what.
  if (code === 'ERR_UDPCOM_PCAP') return { code, message, fix: 'udpcom replays pcap and pcapng files: see what this one holds with capinfos FILE or tshark -r FILE' }
  if (code === 'ERR_UDPCOM_HWTSTAMP_UNSUPPORTED') return { code, message: text, fix: 'use --timestamping software' }
  // udpcom's own argument errors are the command line's values, checked by the engine.
  if (code === 'ERR_OUT_OF_RANGE' || code === 'ERR_INVALID_ARG_VALUE' || code === 'ERR_SOCKET_BAD_PORT') {
    return { code, message }
  }
  // Any other OS error (errno name and syscall): the message is Node's own.
  if (typeof syscall === 'string' && /^E[A-Z0-9]+$/.test(code)) return { code, message }
  return undefined
}

function cpuCountHint(): string {
  const count = availableParallelism()
  return `${count} CPUs, 0..${count - 1}`
}
