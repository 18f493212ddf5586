// The panel's jobs: what a form can start (a receiver, receiver-job.ts; a native stream,
// stream-job.ts), behind one small interface, and the registry that samples them a few times
// a second for the page.
//
// A job kind declares its form (FieldSpec[], with the limits the server enforces), the series
// its samples carry (the report's SeriesSpec, so the page plots them like a report), a parser
// of the form's values and a start function. Another kind of job is one more JobKind.

import type { SeriesSpec } from '../report/model'
import type { FieldSpec, JobInfo, JobKindInfo, JobState, PanelLimits, PanelUpdate } from './protocol'

/** The limits unless the command line says otherwise. */
export const DEFAULT_LIMITS: PanelLimits = { maxJobs: 8, maxDurationS: 3600, maxRatePps: 100_000, maxSizeBytes: 1472, maxBurst: 64 }

/** Samples of each job kept for a page that opens later (5 minutes at 4 a second). */
export const HISTORY_SAMPLES = 1200
/** Ended jobs kept in the list. */
export const ENDED_KEPT = 20

/** A form that asks for something wrong or too much: 400, with the message. */
export class FormError extends Error {
  readonly status = 400
}

/** A job that runs. */
export interface RunningJob {
  /** e.g. 'receiver on 127.0.0.1:40000'. */
  readonly title: string
  /**
   * Ends the current sample interval: its values, aligned with the kind's series, and the
   * totals so far (counters since the start).
   */
  sample(): { values: (number | null)[]; totals: Record<string, number | string | null> }
  /** Resolves when the job ends by itself (its duration is over): null, or why it failed. */
  readonly ended: Promise<string | null>
  /** Stops it (idempotent); sample() still gives the final totals afterwards. */
  stop(): void
}

/** A kind of job a form can start. */
export interface JobKind<Params extends Record<string, string | number> = Record<string, string | number>> {
  readonly kind: string
  readonly title: string
  readonly description: string
  /** The form, with the limits in force. */
  fields(limits: PanelLimits): FieldSpec[]
  readonly series: readonly SeriesSpec[]
  /** Checks the form's values (after parseFields): the params, or a FormError. */
  parse(values: Record<string, string | number>, limits: PanelLimits): Params
  /** Starts it; throws a coded error (EADDRINUSE...) if it cannot. */
  start(params: Params): RunningJob
}

/**
 * The values of a submitted form, checked against its fields: numbers finite and within
 * min..max (whole when step is 1), selects one of their options, texts at most 200 characters;
 * a missing value takes the field's default. Unknown names are refused.
 */
export function parseFields(fields: readonly FieldSpec[], form: unknown): Record<string, string | number> {
  if (typeof form !== 'object' || form === null || Array.isArray(form)) throw new FormError('the form must be a JSON object')
  const given = form as Record<string, unknown>
  for (const name of Object.keys(given)) {
    if (!fields.some((f) => f.name === name)) throw new FormError(`unknown field '${name}'`)
  }
  const values: Record<string, string | number> = {}
  for (const field of fields) {
    let value = given[field.name]
    if (value === undefined || value === '') value = field.default
    if (value === undefined) throw new FormError(`${field.label}: a value is needed`)
    if (field.type === 'number') {
      const number = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN
      if (!Number.isFinite(number)) throw new FormError(`${field.label}: '${String(value)}' is not a number`)
      if (field.step === 1 && !Number.isInteger(number)) throw new FormError(`${field.label}: a whole number is needed`)
      if ((field.min !== undefined && number < field.min) || (field.max !== undefined && number > field.max)) {
        throw new FormError(`${field.label}: ${number} is outside ${field.min ?? '-∞'}..${field.max ?? '∞'}${field.unit ? ` ${field.unit}` : ''}`)
      }
      values[field.name] = number
    } else {
      if (typeof value !== 'string') throw new FormError(`${field.label}: text is needed`)
      if (value.length > 200) throw new FormError(`${field.label}: at most 200 characters`)
      if (field.type === 'select' && !(field.options ?? []).includes(value)) {
        throw new FormError(`${field.label}: '${value}' is not one of ${(field.options ?? []).join(', ')}`)
      }
      values[field.name] = value
    }
  }
  return values
}

/** A job in the registry. */
interface Entry {
  info: JobInfo
  job: RunningJob
  /** Samples not yet sent to the pages. */
  fresh: { timeS: number; values: (number | null)[] }[]
  /** State or totals changed since the last update. */
  changed: boolean
}

/** The jobs of one panel: started from forms, sampled on a timer, listed for the pages. */
export class JobRegistry {
  readonly kinds: ReadonlyMap<string, JobKind>
  readonly limits: PanelLimits
  readonly #entries = new Map<string, Entry>()
  #nextId = 1

  constructor(kinds: readonly JobKind[], limits: PanelLimits) {
    this.kinds = new Map(kinds.map((k) => [k.kind, k]))
    this.limits = limits
  }

  kindInfos(): JobKindInfo[] {
    return [...this.kinds.values()].map((k) => ({ kind: k.kind, title: k.title, description: k.description, fields: k.fields(this.limits), series: [...k.series] }))
  }

  list(): JobInfo[] {
    return [...this.#entries.values()].map((e) => e.info)
  }

  /** The running job `id` (for tests and embedders: e.g. a receiver's UdpCom). */
  job(id: string): RunningJob | undefined {
    return this.#entries.get(id)?.job
  }

  running(): number {
    return [...this.#entries.values()].filter((e) => e.info.state === 'running').length
  }

  /** Starts a job of `kind` from a submitted form; FormError for a bad form or too many jobs. */
  start(kindName: unknown, form: unknown): JobInfo {
    const kind = typeof kindName === 'string' ? this.kinds.get(kindName) : undefined
    if (!kind) throw new FormError(`unknown job kind '${String(kindName)}' (kinds: ${[...this.kinds.keys()].join(', ')})`)
    if (this.running() >= this.limits.maxJobs) throw new FormError(`at most ${this.limits.maxJobs} jobs run at once: stop one first`)
    const params = kind.parse(parseFields(kind.fields(this.limits), form), this.limits)
    const job = kind.start(params)
    const id = String(this.#nextId++)
    const now = Date.now()
    const info: JobInfo = {
      id,
      kind: kind.kind,
      title: job.title,
      params,
      state: 'running',
      startedAtMs: now,
      endedAtMs: null,
      error: null,
      totals: job.sample().totals,
      history: { timeS: [], values: kind.series.map(() => []) },
    }
    const entry: Entry = { info, job, fresh: [], changed: true }
    this.#entries.set(id, entry)
    void job.ended.then((error) => this.#ended(entry, error))
    this.#forgetOldEnded()
    return info
  }

  /** Stops job `id`; FormError if there is none. */
  stop(id: string): JobInfo {
    const entry = this.#entries.get(id)
    if (!entry) throw new FormError(`no job ${id}`)
    if (entry.info.state === 'running') {
      entry.job.stop()
      this.#ended(entry, null)
    }
    return entry.info
  }

  /** Takes a sample of every running job; what pages must be sent. */
  tick(): PanelUpdate['jobs'] {
    for (const entry of this.#entries.values()) {
      if (entry.info.state !== 'running') continue
      this.#sample(entry)
    }
    const updates: PanelUpdate['jobs'] = []
    for (const entry of this.#entries.values()) {
      if (!entry.changed && entry.fresh.length === 0) continue
      const { id, state, error, totals } = entry.info
      updates.push({ id, state, error, totals, samples: entry.fresh })
      entry.fresh = []
      entry.changed = false
    }
    return updates
  }

  /** Stops every job (the panel closes). */
  stopAll(): void {
    for (const entry of this.#entries.values()) if (entry.info.state === 'running') this.stop(entry.info.id)
  }

  #sample(entry: Entry): void {
    const { values, totals } = entry.job.sample()
    const timeS = (Date.now() - entry.info.startedAtMs) / 1000
    const history = entry.info.history
    history.timeS.push(timeS)
    values.forEach((v, i) => history.values[i]?.push(v))
    if (history.timeS.length > HISTORY_SAMPLES) {
      history.timeS.shift()
      for (const column of history.values) column.shift()
    }
    entry.info.totals = totals
    entry.fresh.push({ timeS, values })
  }

  #ended(entry: Entry, error: string | null): void {
    if (entry.info.state !== 'running') return
    // The last figures, after the job stopped counting.
    this.#sample(entry)
    const state: JobState = error === null ? 'stopped' : 'failed'
    entry.info.state = state
    entry.info.error = error
    entry.info.endedAtMs = Date.now()
    entry.changed = true
  }

  #forgetOldEnded(): void {
    const ended = [...this.#entries.values()].filter((e) => e.info.state !== 'running')
    for (const entry of ended.slice(0, Math.max(0, ended.length - ENDED_KEPT))) this.#entries.delete(entry.info.id)
  }
}
