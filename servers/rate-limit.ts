// Failed authentication attempts per remote address: after FREE_FAILURES failures in a row the
// address is refused (429) for a back-off that doubles with each further failure, capped.
import { HttpError } from './errors'

export const FREE_FAILURES = 5
const BASE_MS = 1000
const CAP_MS = 60_000
const MAX_ADDRESSES = 10_000
const FORGET_MS = 15 * 60_000

interface Entry {
  failures: number
  blockedUntil: number
  lastSeen: number
}

export class RateLimiter {
  private readonly entries = new Map<string, Entry>()

  /** Throws 429 too-many-attempts when the address is in its back-off. */
  check(addr: string, now = Date.now()): void {
    const e = this.entries.get(addr)
    if (e && now < e.blockedUntil) {
      const seconds = Math.max(1, Math.ceil((e.blockedUntil - now) / 1000))
      throw new HttpError('too-many-attempts', `too many failed attempts from this address; retry in ${seconds} s`,
        { retryAfter: seconds }, { 'retry-after': String(seconds) })
    }
  }

  failure(addr: string, now = Date.now()): void {
    let e = this.entries.get(addr)
    if (e) this.entries.delete(addr) // re-insert: the map stays in least-recently-seen order
    else e = { failures: 0, blockedUntil: 0, lastSeen: now }
    e.failures++
    e.lastSeen = now
    if (e.failures >= FREE_FAILURES) e.blockedUntil = now + Math.min(CAP_MS, BASE_MS * 2 ** Math.min(16, e.failures - FREE_FAILURES))
    this.entries.set(addr, e)
    this.prune(now)
  }

  success(addr: string): void {
    this.entries.delete(addr)
  }

  private prune(now: number): void {
    for (const [addr, e] of this.entries) {
      if (this.entries.size <= MAX_ADDRESSES && now - e.lastSeen < FORGET_MS) break
      this.entries.delete(addr)
    }
  }
}
