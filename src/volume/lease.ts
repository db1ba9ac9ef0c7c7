// One writer at a time: a writer holds a lease record (sealed, on the metadata servers), renews it
// while active and gives it back when done. An expired lease may be taken over.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { VolumeKeys, recordName } from '../crypto'
import { RecordConflictError, ReplicatedRecord } from './replicated-record'
import { VolumeStore, metadataCopies } from './store'

export interface LeaseValue {
  /** Who holds it, for people: host and process. */
  holder: string
  /** The holder's host name and process id: a holder on this host whose process is gone is dead. */
  host: string
  pid: number
  /** Random id of this holding. */
  token: string
  sinceMs: number
  expiresMs: number
}

export const LEASE_TTL_MS = 60_000

export class LeaseHeldError extends Error {
  constructor(readonly lease: LeaseValue) {
    super(
      `the volume is open for writing by ${lease.holder} since ${new Date(lease.sinceMs).toISOString()} ` +
        `(lease valid until ${new Date(lease.expiresMs).toISOString()}); unmount it there, or mount read-only`,
    )
    this.name = 'LeaseHeldError'
  }
}

export class Lease {
  private timer: NodeJS.Timeout | null = null
  private value: LeaseValue
  /** Set when renewing found another holder: commits must stop. */
  lost: Error | null = null

  private constructor(private readonly record: ReplicatedRecord<LeaseValue>, value: LeaseValue, private readonly ttlMs: number) {
    this.value = value
  }

  static record(store: VolumeStore, keys: VolumeKeys): ReplicatedRecord<LeaseValue> {
    return new ReplicatedRecord<LeaseValue>(store, recordName(keys.names, 'lease'), keys.metadata, metadataCopies(store))
  }

  /** The live lease of someone else, if any. */
  static async current(store: VolumeStore, keys: VolumeKeys): Promise<LeaseValue | null> {
    return live(await Lease.record(store, keys).readAll(), Date.now())
  }

  static async acquire(store: VolumeStore, keys: VolumeKeys, who = `${hostname()} pid ${process.pid}`, ttlMs = LEASE_TTL_MS): Promise<Lease> {
    const record = Lease.record(store, keys)
    const now = Date.now()
    const held = live(await record.readAll(), now)
    const heldGone = held !== null && (await goneHere(held))
    if (held && !heldGone) throw new LeaseHeldError(held)
    const value: LeaseValue = { holder: who, host: hostname(), pid: process.pid, token: randomBytes(16).toString('hex'), sinceMs: now, expiresMs: now + ttlMs }
    const lease = new Lease(record, value, ttlMs)
    try {
      await record.write(value, (copy) => !copy || copy.expiresMs <= Date.now() || (heldGone && copy.token === held!.token))
    } catch (err) {
      const now2 = live(await record.readAll(), Date.now())
      if (now2 && now2.token !== value.token) throw new LeaseHeldError(now2)
      throw err
    }
    lease.timer = setInterval(() => void lease.renew(), Math.floor(ttlMs / 3))
    lease.timer.unref()
    return lease
  }

  get holder(): LeaseValue {
    return this.value
  }

  async renew(): Promise<void> {
    if (this.lost) return
    const next = { ...this.value, expiresMs: Date.now() + this.ttlMs }
    try {
      await this.record.write(next, (copy) => !copy || copy.token === this.value.token || copy.expiresMs <= Date.now())
      this.value = next
    } catch (err) {
      if (err instanceof RecordConflictError) this.lost = err
      // Unreachable servers: keep the lease and try again at the next tick.
    }
  }

  /**
   * Before a commit: a lease that ran out (this holder was cut off from the servers for its whole
   * TTL) is renewed first; if another writer took it meanwhile, the lease is lost and the commit
   * must not happen, so two writers never both advance the head.
   */
  async ensureValid(marginMs = 5000): Promise<void> {
    if (this.lost || Date.now() < this.value.expiresMs - marginMs) return
    await this.renew()
    if (!this.lost && Date.now() >= this.value.expiresMs - marginMs) {
      this.lost = new Error('the lease could not be renewed before it expired (servers unreachable)')
    }
  }

  /** Gives the lease back (an expired copy), so another writer need not wait. */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    if (this.lost) return
    await this.record.write({ ...this.value, expiresMs: 0 }, (copy) => !copy || copy.token === this.value.token).catch(() => undefined)
  }
}

/** A lease held by a process of this host that no longer exists (a crashed mount daemon). */
/**
 * The holder ran on this host and its process is gone, or is a zombie (killed with -9 and not yet
 * reaped: for a moment kill(pid, 0) still finds it, yet it holds nothing any more).
 */
async function goneHere(lease: LeaseValue): Promise<boolean> {
  if (lease.host !== hostname() || !Number.isInteger(lease.pid) || lease.pid <= 0 || lease.pid === process.pid) return false
  try {
    const stat = await readFile(`/proc/${lease.pid}/stat`, 'utf8')
    const state = stat.charAt(stat.lastIndexOf(')') + 2) // "pid (comm) S ...": comm may hold spaces and parentheses
    return state === 'Z' || state === 'X'
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true
    try {
      process.kill(lease.pid, 0) // no /proc here: ask the kernel whether the pid exists
      return false
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ESRCH'
    }
  }
}

function live(copies: { value: LeaseValue | null }[], now: number): LeaseValue | null {
  let best: LeaseValue | null = null
  for (const c of copies) if (c.value && c.value.expiresMs > now && (!best || c.value.expiresMs > best.expiresMs)) best = c.value
  return best
}
