#!/usr/bin/env node
// The `udpcom` command (package.json `bin`): `udpcom <command> [options]`.
//
// Exit codes: 0 ok; 1 a measured problem (packets lost or dropped, the machine's timing needs a
// fix); 2 a usage error or an OS error (a port in use, a priority not permitted). Expected
// errors print one line naming the fix; anything else is a bug and prints its stack.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { helpText, parseCommandLine, wrap, type Command } from './command'
import { captureCommand } from './capture'
import { doctorCommand } from './doctor'
import { explain, UsageError } from './errors'
import { Output, type Stream } from './output'
import { panelCommand } from './panel'
import { pingCommand } from './ping'
import { recvCommand } from './recv'
import { reflectCommand } from './reflect'
import { replayCommand } from './replay'
import { sendCommand } from './send'

/**
 * The commands, in the order `udpcom --help` lists them: a native test stream (send) and its
 * receiver (recv, which also analyses streams, joins multicast groups and captures), round trips
 * (ping through reflect), pcap files (replay, capture), the machine check (doctor) and the live
 * panel.
 */
export const COMMANDS: readonly Command[] = [sendCommand, recvCommand, pingCommand, reflectCommand, replayCommand, captureCommand, doctorCommand, panelCommand]

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length))
  return [
    'usage: udpcom <command> [options]',
    '',
    wrap('Deterministic UDP on Linux: send timed test streams, receive and analyse them, measure round trips, replay and capture pcap files, check what decides timing on this machine, watch it live in a browser.', 90),
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'udpcom <command> --help shows its options. Exit codes: 0 ok, 1 a measured problem (loss, drops, a machine that needs a fix), 2 a usage or OS error.',
    '',
  ].join('\n')
}

function version(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
  return `udpcom ${pkg.version}\n`
}

/** Runs the command line `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: string[], stdout: Stream = process.stdout, stderr: Stream = process.stderr): Promise<number> {
  const json = argv.includes('--json')
  const output = new Output(json, stdout, stderr)
  const [name, ...rest] = argv
  let command: Command | undefined
  const controller = new AbortController()
  const onSignal = (): void => {
    // A second Ctrl-C while the command winds down ends the process at once.
    if (controller.signal.aborted) process.exit(130)
    controller.abort()
  }
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      const topic = COMMANDS.find((c) => c.name === rest[0])
      stdout.write(topic ? helpText(topic) : topHelp())
      return 0
    }
    if (name === '--version' || name === '-V') {
      stdout.write(version())
      return 0
    }
    command = COMMANDS.find((c) => c.name === name)
    if (!command) {
      throw new UsageError(`unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`)
    }
    const { values, positionals } = parseCommandLine(command, rest)
    if (values.help) {
      stdout.write(helpText(command))
      return 0
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    return await command.run(values, positionals, { output, signal: controller.signal, commandLine: ['udpcom', ...argv].join(' ') })
  } catch (error) {
    // The unit parsers do not know which command they serve.
    if (error instanceof UsageError && error.command === undefined && command) error.command = command.name
    const explained = explain(error)
    if (explained) {
      output.error(explained)
    } else {
      output.clearStatus()
      stderr.write(`udpcom: unexpected error (a bug: please report it with this text):\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    }
    return 2
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

if (require.main === module) {
  // The reader of our output went away (`udpcom recv 5000 | head`): end at once and quietly,
  // as a command killed by SIGPIPE would, instead of an unhandled 'error' event's stack.
  const onOutputError = (error: NodeJS.ErrnoException): void => {
    if (error.code !== 'EPIPE') throw error
    process.exit(process.exitCode ?? 0)
  }
  process.stdout.on('error', onOutputError)
  process.stderr.on('error', onOutputError)
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (error: unknown) => {
      // main() catches everything; this is only for a failure while printing.
      process.stderr.write(`udpcom: ${String(error)}\n`)
      process.exitCode = 2
    },
  )
}
