// Traffic-optimized reads: each blob is asked of one replica; only what that replica lacks, fails
// on, times out on or serves corrupted is asked of the next. Every byte returned is verified.
import { Attempt, ChunkUnavailableError, ClusterConfigError, ServerError, checkBlobId, classify, reasonOf } from './errors'
import { Member } from './member'
import { blobId } from '../crypto'
import type { ByteRange } from '../protocol'
import { Pool } from './pool'
import { setTimeout as sleep } from 'node:timers/promises'
import { backoffDelay } from './retry'

/** Extra passes over servers whose failure was transient (timeout, reset, 5xx) and that are up again. */
const RETRY_ROUNDS = 2
const RETRY_BACKOFF = { baseMs: 100, maxMs: 1000 }

/** Walks one blob's read order; remembers who was asked and why each failed. */
export class ReadCursor {
  readonly tried: Attempt[] = []
  private readonly asked = new Set<Member>()
  private transient: Member[] = []
  private rounds = 0

  constructor(private readonly order: Member[]) {}

  /**
   * The next server to ask: the first not yet asked that is up; when none is, the first down one
   * that failed fast (it may be back before its probe says so). A down server that timed out is not
   * asked again until its probe answers: with every server hung, a read fails after one timeout.
   */
  next(): Member | undefined {
    for (const m of this.order) if (!this.asked.has(m) && m.up) return this.take(m)
    for (const m of this.order) if (!this.asked.has(m) && !m.hung) return this.take(m)
    return undefined
  }

  /** Whether a live server remains to be asked (so a down one can be passed over for now). */
  hasLiveLeft(): boolean {
    return this.order.some((m) => !this.asked.has(m) && m.up)
  }

  failed(m: Member, reason: string, transient: boolean): void {
    this.tried.push({ server: m.name, reason })
    if (transient) this.transient.push(m)
  }

  /** Gives `m` back (skipped because it went down meanwhile): it is tried again last, if at all. */
  putBack(m: Member): void {
    this.asked.delete(m)
  }

  get attempts(): number {
    return this.tried.length
  }

  /** After every server was asked: waits, then re-opens the transient failures that are up again. */
  async nextRound(): Promise<boolean> {
    if (this.rounds >= RETRY_ROUNDS) return false
    const again = this.transient.filter((m) => m.up)
    if (again.length === 0) return false
    await sleep(backoffDelay(this.rounds++, RETRY_BACKOFF))
    this.transient = []
    for (const m of again) this.asked.delete(m)
    return true
  }

  private take(m: Member): Member {
    this.asked.add(m)
    return m
  }
}

type FetchResult<T> = { ok: true; data: T } | { ok: false; reason: string; transient: boolean }

/**
 * One attempt at one server. Whole blobs are hash-checked (sha256 = id); a range goes through the
 * caller's `check`, which sees its bytes only while it runs (their memory is reused afterwards). A
 * corrupt answer is reported and counts as a failure. Caller errors (416) throw.
 */
async function fetchFrom(pool: Pool, m: Member, id: string): Promise<FetchResult<Buffer>>
async function fetchFrom<T>(pool: Pool, m: Member, id: string, range: ByteRange, check: (b: Buffer) => T): Promise<FetchResult<T>>
async function fetchFrom<T>(pool: Pool, m: Member, id: string, range?: ByteRange, check?: (b: Buffer) => T): Promise<FetchResult<T | Buffer>> {
  let data: Buffer | null
  try {
    data = await m.call((c) => c.getBlob(id, range, range ? pool.rangeBuffers : undefined), true)
  } catch (err) {
    if (err instanceof ServerError && err.status === 416) throw err
    const kind = classify(err)
    return { ok: false, reason: reasonOf(err), transient: kind !== 'caller' }
  }
  if (data === null) return { ok: false, reason: 'not found', transient: false }
  m.receivedBytes += data.length
  if (!range) {
    const actual = await blobId(data)
    if (actual !== id) {
      pool.reportCorruption(id, m, `sha256 of the ${data.length} bytes served is ${actual}`)
      return { ok: false, reason: `corrupt (sha256 mismatch: ${actual.slice(0, 16)}...)`, transient: false }
    }
    return { ok: true, data }
  }
  try {
    const checked = check!(data)
    // The bytes go back to the pool when this returns: a check still at work on them would read reused memory.
    if (checked instanceof Promise) {
      checked.catch(() => undefined)
      throw new ClusterConfigError('getRange needs a check that finishes with the bytes before it returns (not async)')
    }
    return { ok: true, data: checked }
  } catch (err) {
    if (err instanceof ClusterConfigError) throw err
    pool.reportCorruption(id, m, `bytes ${range.start}-${range.end} failed the check: ${(err as Error).message}`)
    return { ok: false, reason: `corrupt (check failed: ${(err as Error).message})`, transient: false }
  } finally {
    pool.rangeBuffers.give(data)
  }
}

async function readOne<T>(pool: Pool, id: string, attempt: (m: Member) => Promise<FetchResult<T>>): Promise<T> {
  checkBlobId(id)
  const cursor = new ReadCursor(pool.readOrder(id))
  for (let guard = 0; guard < 64; guard++) {
    const m = cursor.next()
    if (!m) {
      if (await cursor.nextRound()) {
        pool.counters.retries++
        continue
      }
      break
    }
    const r = await attempt(m)
    if (r.ok) {
      if (cursor.attempts > 0) pool.counters.failovers++
      return r.data
    }
    cursor.failed(m, r.reason, r.transient)
  }
  throw new ChunkUnavailableError(id, cursor.tried)
}

export function get(pool: Pool, id: string): Promise<Buffer> {
  return readOne(pool, id, (m) => fetchFrom(pool, m, id))
}

/** Bytes `range` of a blob, as `check` makes them (it throws on bad bytes, and must not keep them: see fetchFrom). */
export function getRange<T>(pool: Pool, id: string, range: ByteRange, check: (bytes: Buffer) => T): Promise<T> {
  if (!range || !Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end <= range.start) {
    return Promise.reject(new ClusterConfigError(`invalid byte range ${JSON.stringify(range)}: need 0 <= start < end`))
  }
  if (typeof check !== 'function') return Promise.reject(new ClusterConfigError('getRange needs a check callback'))
  return readOne(pool, id, (m) => fetchFrom(pool, m, id, range, check))
}

/**
 * Bulk read: ids are grouped by the first live server of their read order and fetched from all
 * servers at once, at most `readConcurrency` requests per server. An id that fails on its server
 * goes at once to the next one in its order. Resolves with every blob; rejects with
 * ChunkUnavailableError (its `missing` lists all unreadable ids) after the rest were delivered.
 */
export function getMany(pool: Pool, ids: string[], onBlob?: (id: string, data: Buffer) => void): Promise<Map<string, Buffer>> {
  const unique = [...new Set(ids)]
  for (const id of unique) checkBlobId(id)
  const result = new Map<string, Buffer>()
  if (unique.length === 0) return Promise.resolve(result)
  const limit = Math.max(1, pool.settings.readConcurrency)
  const queues = new Map<Member, string[]>()
  const active = new Map<Member, number>()
  const cursors = new Map<string, ReadCursor>()
  const unavailable: ChunkUnavailableError[] = []
  let open = unique.length
  let stopped = false

  return new Promise((resolve, reject) => {
    const finish = (): void => {
      if (--open > 0 || stopped) return
      stopped = true
      if (unavailable.length === 0) return resolve(result)
      const first = unavailable[0]!
      first.missing = unavailable.map((e) => e.id)
      if (unavailable.length > 1) first.message += ` (and ${unavailable.length - 1} more unavailable chunks)`
      reject(first)
    }
    const fail = (err: unknown): void => {
      if (stopped) return
      stopped = true
      reject(err)
    }
    const route = (id: string): void => {
      if (stopped) return
      const cursor = cursors.get(id)!
      const m = cursor.next()
      if (m) {
        let q = queues.get(m)
        if (!q) queues.set(m, (q = []))
        q.push(id)
        pump(m)
        return
      }
      cursor.nextRound().then(
        (again) => {
          if (again) {
            pool.counters.retries++
            route(id)
          } else {
            unavailable.push(new ChunkUnavailableError(id, cursor.tried))
            finish()
          }
        },
        fail,
      )
    }
    const pump = (m: Member): void => {
      const q = queues.get(m)!
      while (!stopped && q.length > 0 && (active.get(m) ?? 0) < limit) {
        const id = q.shift()!
        const cursor = cursors.get(id)!
        // The server went down after this id was queued: pass it over while a live one remains.
        if (!m.up && cursor.hasLiveLeft()) {
          cursor.putBack(m)
          route(id)
          continue
        }
        active.set(m, (active.get(m) ?? 0) + 1)
        fetchFrom(pool, m, id).then(
          (r) => {
            active.set(m, active.get(m)! - 1)
            if (stopped) return
            if (r.ok) {
              if (cursor.attempts > 0) pool.counters.failovers++
              result.set(id, r.data)
              try {
                onBlob?.(id, r.data)
              } catch (err) {
                return fail(err)
              }
              finish()
            } else {
              cursor.failed(m, r.reason, r.transient)
              route(id)
            }
            pump(m)
          },
          (err) => {
            active.set(m, active.get(m)! - 1)
            fail(err)
          },
        )
      }
    }
    for (const id of unique) cursors.set(id, new ReadCursor(pool.readOrder(id)))
    for (const id of unique) route(id)
  })
}
