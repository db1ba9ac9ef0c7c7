// The blobs a writer stored degraded (a home server was down or full), remembered in a local file so
// that a restart of the mount daemon does not forget them: the background repair copies each home
// once its home servers answer. DegradedTracker is the store the volume writes through; it feeds
// the queue. A queue that outgrows its bound asks for a full pass instead of growing.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { ByteRange, RecordCopy, StoreMember, VolumeStore } from './store'
import { isBlobId } from '../protocol'

/** Ids remembered at most (64 hex each: ~7 MB of file); beyond that a full pass finds the rest. */
export const MAX_QUEUED = 100_000
/** A change is written to the file this long after it happened, at the latest. */
const SAVE_DELAY_MS = 200
const FORMAT = 'edfs-repair-queue'
const VERSION = 1

interface QueueFile {
  format: typeof FORMAT
  version: number
  /** id -> copies wanted (R for chunks, more for metadata blobs). */
  blobs: Record<string, number>
  /** More blobs were degraded than the queue holds: a full pass is due. */
  overflow: boolean
  lastPassFinishedAt: number | null
}

export class RepairQueue {
  private readonly blobs = new Map<string, number>()
  overflow = false
  lastPassFinishedAt: number | null = null
  private saveTimer: NodeJS.Timeout | null = null
  private saving: Promise<void> = Promise.resolve()

  private constructor(readonly file: string) {}

  /** The queue in `file` (empty when the file is absent; an unreadable file is reported and replaced). */
  static async load(file: string, log?: (line: string) => void): Promise<RepairQueue> {
    const q = new RepairQueue(file)
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log?.(`repair queue ${file}: ${(err as Error).message}; starting a new one (a full pass is due)`)
      q.overflow = (err as NodeJS.ErrnoException).code !== 'ENOENT'
      return q
    }
    try {
      const f = JSON.parse(text) as QueueFile
      if (f.format !== FORMAT || f.version !== VERSION || typeof f.blobs !== 'object' || f.blobs === null) throw new Error(`not a ${FORMAT} file of version ${VERSION}`)
      for (const [id, copies] of Object.entries(f.blobs)) if (isBlobId(id) && Number.isInteger(copies) && copies > 0) q.blobs.set(id, copies)
      q.overflow = f.overflow === true
      q.lastPassFinishedAt = typeof f.lastPassFinishedAt === 'number' ? f.lastPassFinishedAt : null
    } catch (err) {
      log?.(`repair queue ${file} is damaged (${(err as Error).message}); starting a new one (a full pass is due)`)
      q.overflow = true
    }
    return q
  }

  get size(): number {
    return this.blobs.size
  }

  /** id -> copies wanted, as of now. */
  entries(): [string, number][] {
    return [...this.blobs]
  }

  add(id: string, copies: number): void {
    if (this.blobs.has(id)) return
    if (this.blobs.size >= MAX_QUEUED) this.overflow = true
    else this.blobs.set(id, copies)
    this.changed()
  }

  remove(id: string): void {
    if (this.blobs.delete(id)) this.changed()
  }

  /** A full pass finished: what it did not find is not owed any more. */
  passFinished(at: number): void {
    this.lastPassFinishedAt = at
    this.overflow = false
    this.changed()
  }

  /** Writes any change now (at close). */
  async flush(): Promise<void> {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer)
      this.saveTimer = null
      this.save()
    }
    await this.saving
  }

  private changed(): void {
    this.saveTimer ??= setTimeout(() => {
      this.saveTimer = null
      this.save()
    }, SAVE_DELAY_MS)
  }

  /** Atomic replace (temp file + rename), one write at a time, never throwing (logged by the caller's next load). */
  private save(): void {
    const body: QueueFile = { format: FORMAT, version: VERSION, blobs: Object.fromEntries(this.blobs), overflow: this.overflow, lastPassFinishedAt: this.lastPassFinishedAt }
    const text = JSON.stringify(body)
    this.saving = this.saving.then(async () => {
      const tmp = `${this.file}.${process.pid}.tmp`
      try {
        await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 })
        await writeFile(tmp, text, { mode: 0o600 })
        await rename(tmp, this.file)
      } catch {
        /* the next change tries again; a lost entry is found by the next full pass */
      }
    })
  }
}

/** The store the volume writes through: every degraded put lands in the repair queue. */
export class DegradedTracker implements VolumeStore {
  constructor(private readonly store: VolumeStore, private readonly queue: RepairQueue) {}

  get replicas(): number {
    return this.store.replicas
  }

  members(): StoreMember[] {
    return this.store.members()
  }

  rank(key: string): StoreMember[] {
    return this.store.rank(key)
  }

  async put(id: string, data: Buffer, copies?: number): Promise<{ servers: string[]; degraded: boolean }> {
    const r = await this.store.put(id, data, copies)
    if (r.degraded) this.queue.add(id, copies ?? this.store.replicas)
    return r
  }

  get(id: string): Promise<Buffer> {
    return this.store.get(id)
  }

  getRange<T>(id: string, range: ByteRange, check: (bytes: Buffer) => T): Promise<T> {
    return this.store.getRange(id, range, check)
  }

  getMany(ids: string[], onBlob?: (id: string, data: Buffer) => void): Promise<Map<string, Buffer>> {
    return this.store.getMany(ids, onBlob)
  }

  locate(ids: string[]): Promise<Map<string, string[]>> {
    return this.store.locate(ids)
  }

  delete(id: string): Promise<number> {
    return this.store.delete(id)
  }

  listAll(): AsyncIterable<{ server: string; id: string; size: number; mtimeMs: number }> {
    return this.store.listAll()
  }

  readRecordEverywhere(name: string): Promise<RecordCopy[]> {
    return this.store.readRecordEverywhere(name)
  }

  casRecord(server: string, name: string, expectVersion: number, value: Buffer): Promise<number> {
    return this.store.casRecord(server, name, expectVersion, value)
  }

  capacity(): Promise<{ totalBytes: number; freeBytes: number }> {
    return this.store.capacity()
  }
}
