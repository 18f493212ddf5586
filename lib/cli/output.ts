// Where a command's output goes, in one of three modes:
// - status (stdout is a terminal): one status line rewritten in place a few times a second,
//   events and the summary as text;
// - lines (stdout is a pipe or a file): one plain line per interval, events, the summary;
// - json (--json): one JSON object per line, `type` first: 'interval', an event's name,
//   'summary', 'error'.
// Errors also go to stderr as one line in every mode.

import type { Explained } from './errors'

export type OutputMode = 'status' | 'lines' | 'json'

/** A JSON-able record; undefined fields are left out. */
export type Record_ = Record<string, unknown>

/** What Output writes to (process.stdout and stderr, or test doubles). */
export interface Stream {
  write(text: string): unknown
  isTTY?: boolean
  columns?: number
}

export class Output {
  readonly mode: OutputMode
  readonly #stdout: Stream
  readonly #stderr: Stream
  /** A status line is on the screen (status mode), to be cleared before other text. */
  #statusShown = false

  constructor(json: boolean, stdout: Stream, stderr: Stream) {
    this.mode = json ? 'json' : stdout.isTTY ? 'status' : 'lines'
    this.#stdout = stdout
    this.#stderr = stderr
  }

  /** The live status line (status mode only; the caller calls it a few times a second). */
  status(text: string): void {
    if (this.mode !== 'status') return
    // A pseudo-terminal without a window size says 0 columns.
    const width = Math.max(20, (this.#stdout.columns || 100) - 1)
    // \r and "erase line": the line is rewritten in place.
    this.#stdout.write(`\r\x1b[2K${text.length > width ? text.slice(0, width) : text}`)
    this.#statusShown = true
  }

  /** One interval's figures: a line (lines mode) or a JSON object (json mode); the status line has them otherwise. */
  interval(record: Record_, text: string): void {
    if (this.mode === 'json') this.#json({ type: 'interval', ...record })
    else if (this.mode === 'lines') this.#line(text)
  }

  /** Something that happened (listening, stopped): `{ type, ... }` or a line of text. */
  event(type: string, record: Record_, text: string): void {
    if (this.mode === 'json') this.#json({ type, ...record })
    else this.#line(text)
  }

  /** The final summary: `{ type: 'summary', ... }`, or aligned `label  value` rows under a title. */
  summary(record: Record_, title: string, rows: [string, string][]): void {
    if (this.mode === 'json') {
      this.#json({ type: 'summary', ...record })
      return
    }
    const width = Math.max(0, ...rows.map(([label]) => label.length))
    this.#line([title, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join('\n'))
  }

  /** Free text (help, the doctor's findings); nothing in json mode. */
  text(text: string): void {
    if (this.mode !== 'json') this.#line(text)
  }

  /** An error: one line on stderr (`udpcom: what. fix: how`), and `{ type: 'error', ... }` in json mode. */
  error(explained: Explained): void {
    this.clearStatus()
    if (this.mode === 'json') this.#json({ type: 'error', code: explained.code, message: explained.message, fix: explained.fix })
    this.#stderr.write(`udpcom: ${explained.message}${explained.fix ? `. fix: ${explained.fix}` : ''}\n`)
  }

  /** A warning on stderr (the panel listening beyond localhost). */
  warn(text: string): void {
    this.clearStatus()
    this.#stderr.write(`udpcom: warning: ${text}\n`)
  }

  /** Removes the status line (before exit). */
  clearStatus(): void {
    if (this.#statusShown) this.#stdout.write('\r\x1b[2K')
    this.#statusShown = false
  }

  #line(text: string): void {
    this.clearStatus()
    this.#stdout.write(`${text}\n`)
  }

  #json(record: Record_): void {
    this.#stdout.write(`${JSON.stringify(record, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))}\n`)
  }
}
