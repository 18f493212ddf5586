// How a receiving command runs: until its count is reached, its duration is over or Ctrl-C, with
// the status line redrawn a few times a second (on a terminal) and one sample per interval.

import type { Context } from './command'

/** How often the status line is redrawn on a terminal, ms. */
export const STATUS_EVERY_MS = 250

export interface RunTimers {
  /** Resolves with why the run ended ('count', 'duration', 'interrupted', or finish()'s reason), the timers stopped. */
  readonly ended: Promise<string>
  /** Ends the run (the count is reached). */
  finish(reason: string): void
}

/** Starts the timers of a run: `status()` (terminal only), `interval()` every `intervalNs`, the duration, Ctrl-C. */
export function runTimers(
  { output, signal }: Context,
  { intervalNs, durationNs, status, interval }: { intervalNs: number; durationNs: number | undefined; status: () => string; interval: () => void },
): RunTimers {
  let finish: (reason: string) => void = () => {}
  const reason = new Promise<string>((resolve) => {
    finish = resolve
  })
  const statusTimer = output.mode === 'status' ? setInterval(() => output.status(status()), STATUS_EVERY_MS) : undefined
  const intervalTimer = setInterval(interval, intervalNs / 1e6)
  const durationTimer = durationNs === undefined ? undefined : setTimeout(() => finish('duration'), durationNs / 1e6)
  const onAbort = (): void => finish('interrupted')
  signal.addEventListener('abort', onAbort, { once: true })
  const ended = reason.then((why) => {
    signal.removeEventListener('abort', onAbort)
    clearInterval(statusTimer)
    clearInterval(intervalTimer)
    clearTimeout(durationTimer)
    return why
  })
  return { ended, finish: (why) => finish(why) }
}
