// Garbage collection in the background, by the lease holder (the mount daemon): without it a busy
// mount fills the servers' disks, since `edfs gc` cannot run beside a read-write mount. Every pass
// takes the committed references (Volume.committedReferences) and deletes blobs that are
// unreferenced, older than the grace period, and were found unreferenced by passes at least holdMs
// apart (readers that follow an older head for a while still find their chunks). The first pass
// after a start only marks candidates: nothing dereferenced before the start is deleted sooner.
import { GcReport, GcStore, collectGarbage } from './gc'

export interface BackgroundGcOptions {
  /** Time between passes (default 60 s). */
  intervalMs?: number
  /** Unreferenced blobs younger than this are kept: uploads not yet committed (default 5 min). */
  graceMs?: number
  /** A blob must be unreferenced this long before it goes (default 5 min). */
  holdMs?: number
  log?: (line: string) => void
}

export interface GcVolume {
  committedReferences(): Promise<Set<string> | null>
}

export const BACKGROUND_GC_DEFAULTS = { intervalMs: 60_000, graceMs: 5 * 60_000, holdMs: 5 * 60_000 }

export class BackgroundGc {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private readonly unreferencedSince = new Map<string, number>()
  /** The last pass's report (for status). */
  last: GcReport | null = null

  constructor(private readonly volume: GcVolume, private readonly store: GcStore, private readonly opts: BackgroundGcOptions = {}) {}

  start(): void {
    if (this.timer) return
    this.timer = setInterval(() => void this.pass(), this.opts.intervalMs ?? BACKGROUND_GC_DEFAULTS.intervalMs)
    this.timer.unref()
  }

  /** Stops the timer and waits for a pass under way. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running
  }

  /** One pass (skipped while one runs). Never throws: a failed pass is logged and the next one tries again. */
  pass(now?: number): Promise<void> {
    this.running ??= this.run(now).finally(() => (this.running = null))
    return this.running
  }

  private async run(now?: number): Promise<void> {
    try {
      const referenced = await this.volume.committedReferences()
      if (!referenced) return // the volume never settled long enough to know: next pass
      const r = await collectGarbage(this.store, referenced, {
        graceMs: this.opts.graceMs ?? BACKGROUND_GC_DEFAULTS.graceMs,
        holdMs: this.opts.holdMs ?? BACKGROUND_GC_DEFAULTS.holdMs,
        unreferencedSince: this.unreferencedSince,
        concurrency: 4, // background work: leave the servers to the foreground
        now,
        log: this.opts.log,
      })
      this.last = r
      if (r.removedCopies > 0 || r.failed.length > 0) {
        this.opts.log?.(`gc: freed ${r.garbage.blobs - r.failed.length} blobs (${r.removedCopies} copies, ${r.garbage.bytes} bytes); ${r.failed.length} failed`)
      }
    } catch (err) {
      this.opts.log?.(`gc pass failed (will retry): ${(err as Error).message}`)
    }
  }
}
