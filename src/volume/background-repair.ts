// Repair in the background, by the lease holder (the mount daemon), with no command to run:
// - the queue: blobs written degraded are copied home as soon as all their home servers answer;
// - the full pass: every `passIntervalMs` (and at once when the queue overflowed) every committed
//   blob's copies are located and anything short, off home or surplus is repaired, at a bounded
//   rate and paused while the file system is busy, so what servers lost or scrub quarantined comes
//   back without anyone noticing first.
// Both use fsck's repairBlob: a copy onto each live home server, surplus copies trimmed only once
// every home copy verifies.
import { setTimeout as sleep } from 'node:timers/promises'
import { FsckStore, Placement, RepairCounts, atHome, repairBlob, wantedCopies } from './fsck'
import { RepairQueue } from './repair-queue'

export interface BackgroundRepairOptions {
  queue: RepairQueue
  /** The store repairs go through (the cluster: it can verify, put and delete on one server). */
  store: FsckStore
  /** How often the queue is looked at (default 5 s). */
  checkIntervalMs?: number
  /** Time between full passes (default 24 h; 0: none, the queue only). */
  passIntervalMs?: number
  /** Repair copies written per second, at most (default 32 MiB). */
  bytesPerSecond?: number
  log?: (line: string) => void
}

export interface RepairVolume {
  committedReferences(): Promise<Set<string> | null>
  metadataBlobs(): string[]
  /** True while the file system serves reads and writes: the full pass waits. */
  busy(): boolean
}

export const BACKGROUND_REPAIR_DEFAULTS = { checkIntervalMs: 5000, passIntervalMs: 24 * 3600_000, bytesPerSecond: 32 * 1024 * 1024 }
/** Ids per locate while a pass walks the volume. */
const PASS_BATCH = 10_000

export interface RepairStatus {
  queued: number
  overflow: boolean
  lastPassFinishedAt: number | null
  /** Since the daemon started. */
  copied: number
  trimmed: number
  failed: number
}

export class BackgroundRepair {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private stopping = false
  private readonly counts: RepairCounts = { copied: 0, copiedBytes: 0, trimmed: 0 }
  private failed = 0
  private readonly started = Date.now()
  /** The servers changed: blobs whose home moved go there at the next round. */
  private rebalanceWanted = false

  constructor(private readonly volume: RepairVolume, private readonly opts: BackgroundRepairOptions) {}

  start(): void {
    if (this.timer) return
    this.timer = setInterval(() => void this.tick(), this.opts.checkIntervalMs ?? BACKGROUND_REPAIR_DEFAULTS.checkIntervalMs)
    this.timer.unref()
  }

  /** Stops the timer, lets the blob under repair finish, and writes the queue. */
  async stop(): Promise<void> {
    this.stopping = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running
    await this.opts.queue.flush()
  }

  status(): RepairStatus {
    const q = this.opts.queue
    return { queued: q.size, overflow: q.overflow, lastPassFinishedAt: q.lastPassFinishedAt, copied: this.counts.copied, trimmed: this.counts.trimmed, failed: this.failed }
  }

  /** One round (skipped while one runs): the queue, then a full pass when one is due. Never throws. */
  tick(): Promise<void> {
    this.running ??= this.round().finally(() => (this.running = null))
    return this.running
  }

  private async round(): Promise<void> {
    try {
      if (this.opts.queue.size > 0) await this.drainQueue()
      if (this.passDue()) await this.fullPass()
    } catch (err) {
      this.opts.log?.(`repair: round failed (will retry): ${(err as Error).message}`)
    }
  }

  /** The volume's servers changed: move every blob whose rendezvous home moved (a full pass, at the rate limit). */
  rebalance(): void {
    this.rebalanceWanted = true
  }

  private passDue(): boolean {
    if (this.rebalanceWanted) return true
    const every = this.opts.passIntervalMs ?? BACKGROUND_REPAIR_DEFAULTS.passIntervalMs
    if (every <= 0) return false
    if (this.opts.queue.overflow) return true
    return Date.now() - (this.opts.queue.lastPassFinishedAt ?? this.started) >= every
  }

  /** Queued blobs whose home servers are all up go home now; the others wait for their servers. */
  private async drainQueue(): Promise<void> {
    const { store, queue } = this.opts
    const ready = queue.entries().filter(([id, wanted]) => store.rank(id).slice(0, wanted).every((m) => m.up))
    if (ready.length === 0) return
    const referenced = await this.volume.committedReferences()
    if (!referenced) return
    const where = await store.locate(ready.map(([id]) => id))
    let done = 0
    for (const [id, wanted] of ready) {
      if (this.stopping) return
      if (!referenced.has(id)) {
        queue.remove(id) // deleted meanwhile: nothing to repair
        continue
      }
      const p: Placement = { id, wanted: Math.min(wanted, store.members().length), good: where.get(id) ?? [] }
      if (p.good.length === 0) continue // no copy answers now: wait for a server that has one
      if (await this.repair(p)) {
        queue.remove(id)
        done++
      }
    }
    if (done > 0) this.opts.log?.(`repair: ${done} blobs written while a server was away are home (${queue.size} still queued)`)
  }

  /** Every committed blob checked for presence and placement; the queue is settled by it. */
  private async fullPass(): Promise<void> {
    const wanted = this.rebalanceWanted
    this.rebalanceWanted = false // a change during the pass asks for another one
    let finished = false
    try {
      finished = await this.walk()
    } finally {
      if (!finished && wanted) this.rebalanceWanted = true
    }
  }

  /** The pass itself; false when it could not finish (stopping, the volume never settled). */
  private async walk(): Promise<boolean> {
    const { store, queue } = this.opts
    const referenced = await this.volume.committedReferences()
    if (!referenced) return false
    const wantedOf = wantedCopies(store, new Set(this.volume.metadataBlobs()))
    const ids = [...referenced]
    const before = { ...this.counts }
    let repaired = 0
    for (let i = 0; i < ids.length; i += PASS_BATCH) {
      const where = await store.locate(ids.slice(i, i + PASS_BATCH))
      for (const [id, good] of where) {
        if (this.stopping) return false
        const p: Placement = { id, wanted: wantedOf(id), good }
        if (good.length === 0 || atHome(store, p)) continue
        while (this.volume.busy() && !this.stopping) await sleep(500, undefined, { ref: false })
        if (await this.repair(p)) {
          queue.remove(id)
          repaired++
        }
      }
    }
    queue.passFinished(Date.now())
    const copied = this.counts.copied - before.copied
    const trimmed = this.counts.trimmed - before.trimmed
    this.opts.log?.(`repair: full pass over ${ids.length} blobs done: ${repaired} repaired (${copied} copies written, ${trimmed} surplus removed)`)
    return true
  }

  /** One blob, at the rate limit; false when it could not be repaired now (logged). */
  private async repair(p: Placement): Promise<boolean> {
    const t0 = performance.now()
    const bytesBefore = this.counts.copiedBytes
    try {
      await repairBlob(this.opts.store, p, this.counts)
      return true
    } catch (err) {
      this.failed++
      this.opts.log?.(`repair: blob ${p.id}: ${(err as Error).message}`)
      return false
    } finally {
      const rate = this.opts.bytesPerSecond ?? BACKGROUND_REPAIR_DEFAULTS.bytesPerSecond
      const due = ((this.counts.copiedBytes - bytesBefore) / rate) * 1000 - (performance.now() - t0)
      if (due > 0 && !this.stopping) await sleep(due, undefined, { ref: false })
    }
  }
}
