// Back-off arithmetic and a bounded retry loop for idempotent calls.
import { setTimeout as sleep } from 'node:timers/promises'

export interface BackoffPolicy {
  /** First delay. */
  baseMs: number
  /** Largest delay. */
  maxMs: number
}

/** Exponential back-off with "equal jitter": half fixed, half random, so clients do not march in step. */
export function backoffDelay(attempt: number, policy: BackoffPolicy): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(exp / 2 + Math.random() * (exp / 2))
}

/**
 * Waits `ms`. This timer is deliberately NOT unref'd: it is awaited by a caller in the middle of an
 * operation, and an unref'd timer there would let Node exit with the operation half done. It is
 * bounded by the back-off policy (at most `maxMs`). Background timers (probes) are unref'd.
 */
export interface RetryOptions extends BackoffPolicy {
  /** Total attempts, including the first (>= 1). */
  attempts: number
  /** Whether this error is worth another attempt. */
  retryable: (err: unknown) => boolean
  /** Called before each retry (for counting and logging). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void
}

/** Runs `fn` until it succeeds, a non-retryable error is thrown, or `attempts` are spent. Idempotent calls only. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const attempts = Math.max(1, Math.floor(opts.attempts))
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (err) {
      if (attempt + 1 >= attempts || !opts.retryable(err)) throw err
      const delay = backoffDelay(attempt, opts)
      opts.onRetry?.(err, attempt + 1, delay)
      await sleep(delay)
    }
  }
}
