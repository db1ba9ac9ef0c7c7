// Failed authentication attempts, counted three ways, each with its own free allowance after which
// the key is refused (429) for a back-off that doubles with each further failure, capped:
// - a user at one address (5 free): someone guessing one password;
// - a user from anywhere (20 free): guessing spread over many addresses;
// - an address for any user (20 free): one address trying many names.
// A success clears only its own user's counts. Before, any success from an address cleared that
// address: a guesser with an account of their own logged in between guesses and was never slowed.
import { HttpError } from './errors'

export const FREE_FAILURES = 5
export const FREE_FAILURES_WIDE = 20
const BASE_MS = 1000
const CAP_MS = 60_000
const MAX_KEYS = 10_000
const FORGET_MS = 15 * 60_000

interface Entry {
  failures: number
  blockedUntil: number
  lastSeen: number
}

/** One kind of count: key -> failures in a row, with its back-off. */
class Backoff {
  private readonly entries = new Map<string, Entry>()

  constructor(private readonly free: number, private readonly what: string) {}

  check(key: string, now: number): void {
    const e = this.entries.get(key)
    if (e && now < e.blockedUntil) {
      const seconds = Math.max(1, Math.ceil((e.blockedUntil - now) / 1000))
      throw new HttpError('too-many-attempts', `too many failed attempts ${this.what}; retry in ${seconds} s`,
        { retryAfter: seconds }, { 'retry-after': String(seconds) })
    }
  }

  failure(key: string, now: number): void {
    let e = this.entries.get(key)
    if (e) this.entries.delete(key) // re-insert: the map stays in least-recently-seen order
    else e = { failures: 0, blockedUntil: 0, lastSeen: now }
    e.failures++
    e.lastSeen = now
    if (e.failures >= this.free) e.blockedUntil = now + Math.min(CAP_MS, BASE_MS * 2 ** Math.min(16, e.failures - this.free))
    this.entries.set(key, e)
    for (const [k, old] of this.entries) {
      if (this.entries.size <= MAX_KEYS && now - old.lastSeen < FORGET_MS) break
      this.entries.delete(k)
    }
  }

  clear(key: string): void {
    this.entries.delete(key)
  }
}

export class LoginLimiter {
  private readonly pair = new Backoff(FREE_FAILURES, 'for this user from this address')
  private readonly user = new Backoff(FREE_FAILURES_WIDE, 'for this user')
  private readonly address = new Backoff(FREE_FAILURES_WIDE, 'from this address')

  /** Throws 429 too-many-attempts while the address, or (given) the user, is in its back-off. */
  check(addr: string, user?: string, now = Date.now()): void {
    this.address.check(addr, now)
    if (user === undefined) return
    this.pair.check(`${user}@${addr}`, now)
    this.user.check(user, now)
  }

  /** A failed attempt from `addr`, for `user` when the attempt named one. */
  failure(addr: string, user?: string, now = Date.now()): void {
    this.address.failure(addr, now)
    if (user === undefined) return
    this.pair.failure(`${user}@${addr}`, now)
    this.user.failure(user, now)
  }

  /** `user` proved their password from `addr`: their counts start over; the address's do not. */
  success(addr: string, user: string): void {
    this.pair.clear(`${user}@${addr}`)
    this.user.clear(user)
  }
}
