// What a command is: its options (parsed with Node's util.parseArgs), its help text, and the
// function that runs it. main.ts dispatches to one; every command gets --help and --json.

import { parseArgs } from 'node:util'

import { UsageError } from './errors'
import type { Output } from './output'

/** One option, as util.parseArgs takes it, with its help line. */
export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  /** The value's name in the help (`N`, `10s`, `FILE`). */
  value?: string
  help: string
}

/** What a running command may use. */
export interface Context {
  output: Output
  /** Aborted on Ctrl-C (SIGINT) or SIGTERM: stop, print the summary, exit. */
  signal: AbortSignal
  /** The command line as typed, for reports. */
  commandLine: string
}

export type Values = Record<string, string | boolean | undefined>

export interface Command {
  name: string
  /** One line for `udpcom --help`. */
  summary: string
  /** The usage line after `udpcom `. */
  usage: string
  /** What it does, a paragraph. */
  description: string
  options: Record<string, OptionSpec>
  examples: string[]
  /** Runs; resolves with the exit code (0 ok, 1 measured problem). Throws for usage and OS errors. */
  run(values: Values, positionals: string[], context: Context): Promise<number>
}

/** The options every command has. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', help: 'one JSON object per line on stdout (intervals, events, the summary)' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
}

/** The options of `command` and the common ones, parsed; a UsageError for anything unknown. */
export function parseCommandLine(command: Command, argv: string[]): { values: Values; positionals: string[] } {
  const options = { ...command.options, ...COMMON_OPTIONS }
  const config: Record<string, { type: 'string' | 'boolean'; short?: string }> = {}
  for (const [name, spec] of Object.entries(options)) config[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type }
  try {
    const { values, positionals } = parseArgs({ args: argv, options: config, allowPositionals: true, strict: true })
    return { values: values as Values, positionals }
  } catch (error) {
    // util.parseArgs errors are TypeErrors coded ERR_PARSE_ARGS_*; their first sentence says it.
    const message = error instanceof Error ? error.message.split('. ')[0]! : String(error)
    throw new UsageError(message.replace(/^Option '(.+?)' argument missing$/, "option '$1' needs a value"), command.name)
  }
}

/** The help text of `command`. */
export function helpText(command: Command): string {
  const options = { ...command.options, ...COMMON_OPTIONS }
  const left = (name: string, spec: OptionSpec): string =>
    `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`
  const width = Math.max(...Object.entries(options).map(([name, spec]) => left(name, spec).length))
  const lines = [
    `usage: udpcom ${command.usage}`,
    '',
    wrap(command.description, 90),
    '',
    'options:',
    ...Object.entries(options).map(([name, spec]) => `  ${left(name, spec).padEnd(width)}  ${spec.help}`),
  ]
  if (command.examples.length > 0) lines.push('', 'examples:', ...command.examples.map((e) => `  ${e}`))
  return `${lines.join('\n')}\n`
}

/** Breaks a paragraph into lines of at most `width` characters. */
export function wrap(text: string, width: number): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  if (line !== '') lines.push(line)
  return lines.join('\n')
}

/** The value of a string option, or undefined. */
export function stringValue(values: Values, name: string): string | undefined {
  const value = values[name]
  return typeof value === 'string' ? value : undefined
}

/** The one positional argument of a command; a UsageError saying `missing` without one, or for a second. */
export function onePositional(positionals: string[], command: string, missing: string): string {
  if (positionals.length === 0) throw new UsageError(missing, command)
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`, command)
  return positionals[0]!
}
