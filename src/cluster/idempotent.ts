// One call to a member that is safe to repeat (have, list, verify, delete, record reads, health):
// retried a few times on a fault, or while the member is still counted up.
import { classify } from './errors'
import type { Member } from './member'
import type { MemberClient } from './member-client'
import type { Pool } from './pool'
import { retry } from './retry'

const IDEMPOTENT_RETRY = { attempts: 3, baseMs: 100, maxMs: 1000 }

export function idempotent<T>(pool: Pool, m: Member, fn: (c: MemberClient) => Promise<T>): Promise<T> {
  return retry(() => m.call(fn, true), {
    ...IDEMPOTENT_RETRY,
    retryable: (err) => classify(err) === 'fault' || (classify(err) === 'down' && m.up),
    onRetry: () => pool.counters.retries++,
  })
}
