// What the panel's server and its page exchange, as JSON: the state the page fetches
// (GET /api/state), the updates it is sent a few times a second (GET /api/events,
// server-sent events), and the forms it draws from the job kinds' field specs. Types only: the
// page's code (lib/web/panel.js) is checked against them too.

import type { SeriesSpec } from '../report/model'

/** One form field, declared by a job kind; the page draws it and the server checks it. */
export interface FieldSpec {
  name: string
  label: string
  type: 'text' | 'number' | 'select'
  help: string
  /** Shown when the page opens; also used when the field is left empty. */
  default?: string | number
  /** For numbers: the limits the server enforces. */
  min?: number
  max?: number
  step?: number
  /** The unit of a number, shown next to it ('pps', 'bytes', 's'). */
  unit?: string
  /** For selects: the choices. */
  options?: string[]
}

/** A kind of job the panel can start: its form and the series its samples carry. */
export interface JobKindInfo {
  kind: string
  title: string
  description: string
  fields: FieldSpec[]
  series: SeriesSpec[]
}

export type JobState = 'running' | 'stopped' | 'failed'

/** One job, as the page lists it. */
export interface JobInfo {
  id: string
  kind: string
  /** e.g. 'receiver on 127.0.0.1:40000'. */
  title: string
  /** The form values it was started with, after checking. */
  params: Record<string, string | number>
  state: JobState
  startedAtMs: number
  endedAtMs: number | null
  /** Why it failed (state 'failed'). */
  error: string | null
  /** The latest totals (counters since the start, e.g. received, dropped): what the page's table shows. */
  totals: Record<string, number | string | null>
  /** Its samples so far (at most the last HISTORY_SAMPLES), column by column as TimeSeries. */
  history: { timeS: number[]; values: (number | null)[][] }
}

/** Limits on what a form may ask for (the server refuses more, with 400). */
export interface PanelLimits {
  /** Jobs running at once. */
  maxJobs: number
  /** Longest job, s. */
  maxDurationS: number
  /** Highest packet rate a stream may ask for, packets/s. */
  maxRatePps: number
  /** Largest datagram payload a stream may ask for, bytes. */
  maxSizeBytes: number
  /** Largest burst a stream may ask for. */
  maxBurst: number
}

/** GET /api/state. */
export interface PanelState {
  /** Changes when the server restarts: the page then starts its plots afresh. */
  serverId: string
  startedAtMs: number
  /** Interval of the samples, ms. */
  sampleEveryMs: number
  kinds: JobKindInfo[]
  jobs: JobInfo[]
  limits: PanelLimits
}

/** One server-sent event 'update'. */
export interface PanelUpdate {
  serverId: string
  nowMs: number
  /** Jobs whose samples are new since the last update, or whose state changed. */
  jobs: {
    id: string
    state: JobState
    error: string | null
    totals: Record<string, number | string | null>
    /** New samples, oldest first. */
    samples: { timeS: number; values: (number | null)[] }[]
  }[]
}
