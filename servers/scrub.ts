// Scrub: every stored copy is read back and checked against its id, so bit rot is found while a good
// copy still exists elsewhere. The background pass walks all users' blobs in id order at a bounded
// rate (one full pass per period) and remembers where it got to (DATA/scrub.json), so restarts do
// not start it over. A user may also ask for a pass over their own blobs now (POST /v1/scrub).
// Failing copies are quarantined by BlobStore.verify: counted, kept aside, never served again.
import { readFile } from 'node:fs/promises'
import { ScrubStatus } from '../src/protocol'
import { BlobStore } from './blob-store'
import { writeFileAtomic } from './fsutil'
import { UserStores } from './user-stores'

/** The background pass never goes slower than this (a small store is done in minutes, not a week). */
const MIN_BYTES_PER_SECOND = 1024 * 1024
const PAGE = 1000
const SAVE_EVERY_MS = 10_000

interface PassState {
  /** When the pass under way started (ms since epoch); null between passes. */
  startedAt: number | null
  user: string
  after?: string
  lastPassFinishedAt: number | null
}

export interface ScrubProgress {
  checked: number
  bad: number
}

/**
 * Checks the blobs of one store with id > `after`, in id order, at most `bytesPerSecond` on
 * average. `onBlob` sees each id as it is done (to save a resume point). Returns false if stopped.
 */
export async function scrubStore(
  store: BlobStore, progress: ScrubProgress,
  opts: {
    after?: string
    bytesPerSecond: number
    stopped: () => boolean
    /** How the pass waits to keep its rate (a wait the owner can cut short). */
    pause: (ms: number) => Promise<void>
    onBlob?: (id: string) => Promise<void> | void
  },
): Promise<boolean> {
  let after = opts.after
  for (;;) {
    const page = await store.list(after, PAGE)
    for (const b of page.blobs) {
      if (opts.stopped()) return false
      const t0 = performance.now()
      const verdict = await store.verify(b.id)
      progress.checked++
      if (verdict === 'bad') progress.bad++
      await opts.onBlob?.(b.id)
      const due = (b.size / opts.bytesPerSecond) * 1000 - (performance.now() - t0)
      if (due > 0) await opts.pause(due)
    }
    if (!page.next) return true
    after = page.next
  }
}

export class Scrubber {
  private state: PassState = { startedAt: null, user: '', lastPassFinishedAt: null }
  private stopping = false
  /** Bad copies found by the background pass under way. */
  private passBad = 0
  private wake: (() => void) | null = null
  private loop: Promise<void> | null = null
  /** Each user's own passes (POST /v1/scrub), at full speed, one at a time. */
  private readonly onDemand = new Map<string, { running: Promise<void> | null; progress: ScrubProgress; startedAt: number; finishedAt: number | null }>()

  constructor(
    private readonly stores: UserStores,
    private readonly stateFile: string,
    private readonly tmpFile: () => string,
    /** One full background pass per this many ms; 0: no background scrub. */
    private readonly periodMs: number,
    private readonly log: (line: string) => void,
  ) {}

  async start(): Promise<void> {
    try {
      this.state = { ...this.state, ...(JSON.parse(await readFile(this.stateFile, 'utf8')) as PassState) }
    } catch {
      /* first start, or an unreadable file: begin afresh */
    }
    if (this.periodMs > 0) this.loop = this.run()
  }

  async stop(): Promise<void> {
    this.stopping = true
    this.wake?.()
    await this.loop
    await Promise.all([...this.onDemand.values()].map((d) => d.running))
  }

  /** Starts a pass over the user's blobs now, unless one runs; returns its status. */
  async scrubNow(user: string): Promise<ScrubStatus> {
    const d = this.onDemand.get(user)
    if (!d?.running) {
      const store = (await this.stores.of(user)).blobs
      const entry = { running: null as Promise<void> | null, progress: { checked: 0, bad: 0 }, startedAt: Date.now(), finishedAt: null as number | null }
      entry.running = scrubStore(store, entry.progress, { bytesPerSecond: Infinity, stopped: () => this.stopping, pause: async () => {} })
        .then(() => void (entry.finishedAt = Date.now()))
        .catch((err) => this.log(`scrub of ${user}'s blobs failed: ${(err as Error).message}`))
        .finally(() => (entry.running = null))
      this.onDemand.set(user, entry)
    }
    return this.status(user)
  }

  status(user: string): ScrubStatus {
    const d = this.onDemand.get(user)
    return {
      running: !!d?.running,
      checked: d?.progress.checked ?? 0,
      bad: d?.progress.bad ?? 0,
      startedAt: d?.startedAt ?? null,
      finishedAt: d?.finishedAt ?? null,
      lastBackgroundPassFinishedAt: this.state.lastPassFinishedAt,
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      if (this.state.startedAt === null) {
        const next = (this.state.lastPassFinishedAt ?? 0) + this.periodMs
        if (Date.now() < next) {
          await this.pause(next - Date.now())
          continue
        }
        this.state = { startedAt: Date.now(), user: '', lastPassFinishedAt: this.state.lastPassFinishedAt }
        this.passBad = 0
      }
      try {
        if (await this.pass()) {
          const found = this.passBad
          this.state = { startedAt: null, user: '', lastPassFinishedAt: Date.now() }
          this.log(`scrub: full pass done${found ? `, ${found} bad copies quarantined` : ''}`)
          await this.save()
        }
      } catch (err) {
        this.log(`scrub: pass interrupted (${(err as Error).message}); resuming in a minute`)
        await this.pause(60_000)
      }
    }
    await this.save().catch(() => undefined)
  }

  /** Continues the pass under way; true when it reached the end. */
  private async pass(): Promise<boolean> {
    const users = (await this.stores.users()).filter((u) => u >= this.state.user)
    let total = 0
    for (const u of users) total += (await this.stores.of(u)).blobs.bytesStored
    const bytesPerSecond = Math.max(MIN_BYTES_PER_SECOND, total / (this.periodMs / 1000))
    let savedAt = performance.now()
    for (const user of users) {
      if (user !== this.state.user) this.state = { ...this.state, user, after: undefined }
      const progress = { checked: 0, bad: 0 }
      const done = await scrubStore((await this.stores.of(user)).blobs, progress, {
        after: this.state.after, bytesPerSecond, stopped: () => this.stopping, pause: (ms) => this.pause(ms),
        onBlob: async (id) => {
          this.state.after = id
          if (performance.now() - savedAt > SAVE_EVERY_MS) {
            savedAt = performance.now()
            await this.save()
          }
        },
      })
      this.passBad += progress.bad
      if (!done) return false
    }
    return true
  }

  private async save(): Promise<void> {
    await writeFileAtomic(this.tmpFile(), this.stateFile, [Buffer.from(JSON.stringify(this.state))], 0o600)
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.min(ms, 2 ** 31 - 1))
      timer.unref()
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.wake = done
    })
  }
}

