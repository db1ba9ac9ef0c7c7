// Sealed chunks on the local disk (`edfs mount --cache-dir`), so that a remount or a working set
// larger than memory reads them here instead of from the servers. It holds ciphertext only, exactly
// as a server stores it, and every read of it goes through the same check as a server's copy: a
// file that fails it (flipped, truncated, swapped) is deleted and counted as a miss. It is a cache,
// never a copy of record: any error on it is a miss, and a disk that fills up stops new entries.
//
// Layout: DIR/<first two hex digits>/<key>, where a key is a blob id (a whole blob) or
// `<id>.<start>-<end>` (a byte range of it: a chunk in a pack, or AEAD blocks). A read may take
// part of an entry (the blocks a random read wants, out of a whole chunk read before). Keys name
// immutable bytes (a blob id is the SHA-256 of its contents), so an entry is never rewritten.
// Recency is the file's mtime (touched on a hit at most once a minute), so the LRU order survives a
// remount.
import { LRUCache } from 'lru-cache'
import { type FileHandle, mkdir, open, opendir, readFile, rename, rm, stat, statfs, unlink, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { BufferPool, isBlobId } from '../protocol'
import { Semaphore } from './semaphore'
import type { ByteRange } from './store'

/** An entry's key, also its file name: the blob id, and the byte range when the entry is a range of the blob. */
export function diskCacheKey(id: string, range: ByteRange | null): string {
  return range ? `${id}.${range.start}-${range.end}` : id
}

function isDiskCacheKey(name: string): boolean {
  const dot = name.indexOf('.')
  return dot < 0 ? isBlobId(name) : isBlobId(name.slice(0, dot)) && /^\d+-\d+$/.test(name.slice(dot + 1))
}

/** Default size: 10 GiB, or half the space free where the cache lives if that is less (at least 64 MiB). */
export const DEFAULT_MAX_BYTES = 10 * 1024 ** 3
const MIN_DEFAULT_BYTES = 64 * 1024 * 1024
/** Sealed bytes waiting to be written at most; beyond that a new entry is skipped (never queued). */
export const MAX_PENDING_BYTES = 32 * 1024 * 1024
/** After the disk ran full, new entries wait this long before the next try. */
const FULL_PAUSE_MS = 60_000
const STATS_FILE = 'stats.json'
/** A running mount leaves its counters for `edfs status` at most this often. */
const STATS_EVERY_MS = 10_000
/** Reads and writes of entries up to this size go through recycled memory, of which this much is kept. */
const POOLED_MAX_BYTES = 8 * 1024 * 1024
const POOLED_SPARE_BYTES = 24 * 1024 * 1024
/** Entry files kept open for reads (random reads come back to the same chunks: no open/close each; 256 covers 1 GiB of 4 MiB chunks). */
const OPEN_FILES = 256
/** A hit moves an entry's mtime (the LRU order a remount sees) at most this often. */
const TOUCH_EVERY_MS = 60_000

interface Entry {
  size: number
  /** When its file's mtime was last set (0: not by this mount). */
  touchedMs: number
}

export interface DiskCacheStats {
  dir: string
  maxBytes: number
  bytes: number
  files: number
  /** Reads answered here (their check passed), reads that were not here, entries that failed their check. */
  hits: number
  misses: number
  corrupt: number
  /** Entries not written: the disk was full, or writing failed. */
  skipped: number
}

export class DiskCache {
  private readonly index: LRUCache<string, Entry>
  private readonly files: LRUCache<string, Promise<FileHandle>>
  /** Entries being written, by key. */
  private readonly pending = new Map<string, Promise<void>>()
  /** The last queued entry's indexing: each waits for the one before (see write). */
  private lastIndexed: Promise<void> = Promise.resolve()
  private pendingBytes = 0
  private readonly writers = new Semaphore(2)
  private pausedUntil = 0
  private readonly madeDirs = new Set<string>()
  private closed = false
  private statsSavedAt = 0
  private scanned = false
  /** Memory for reads (given back by recycle) and for the copies being written: no new memory each time. */
  private readonly buffers = new BufferPool(POOLED_MAX_BYTES, POOLED_SPARE_BYTES)
  /** The scan of what an earlier mount left (until it is done, reads try entries unindexed). */
  readonly ready: Promise<void>
  hits = 0
  misses = 0
  corrupt = 0
  skipped = 0

  private constructor(readonly dir: string, readonly maxBytes: number, private readonly log: (line: string) => void) {
    this.index = new LRUCache<string, Entry>({
      maxSize: maxBytes,
      sizeCalculation: (e) => Math.max(e.size, 1),
      // Evicted or dropped: the file goes too (a file that is already gone is fine).
      dispose: (_e, key, reason) => {
        if (reason === 'set') return
        this.files.delete(key)
        void unlink(this.file(key)).catch(() => undefined)
      },
    })
    this.files = new LRUCache<string, Promise<FileHandle>>({
      max: OPEN_FILES,
      dispose: (fh) => void fh.then((h) => h.close()).catch(() => undefined),
    })
    this.ready = this.scan().catch((err: Error) => {
      this.scanned = true
      this.log(`disk cache ${dir}: reading what is there failed (${err.message}); starting empty`)
    })
  }

  /** The cache in `dir` (made if missing), holding at most `maxBytes` (default: DEFAULT_MAX_BYTES). */
  static async open(dir: string, maxBytes?: number, log: (line: string) => void = () => {}): Promise<DiskCache> {
    if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes <= 0)) throw new RangeError(`disk cache size must be a positive number of bytes, not ${maxBytes}`)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    if (maxBytes === undefined) {
      const fs = await statfs(dir)
      maxBytes = Math.max(MIN_DEFAULT_BYTES, Math.min(DEFAULT_MAX_BYTES, Math.floor((fs.bavail * fs.bsize) / 2)))
    }
    return new DiskCache(dir, maxBytes, log)
  }

  get bytes(): number {
    return this.index.calculatedSize
  }

  stats(): DiskCacheStats {
    return { dir: this.dir, maxBytes: this.maxBytes, bytes: this.bytes, files: this.index.size, hits: this.hits, misses: this.misses, corrupt: this.corrupt, skipped: this.skipped }
  }

  /** Whether an entry is indexed (it may still turn out unreadable); until the scan is done, maybe. */
  has(key: string): boolean {
    return this.index.has(key) || !this.scanned
  }

  /**
   * The entry's bytes, or `part` of them (a range of its sealed bytes), or null (not here, or
   * unreadable). The caller checks them and calls `drop` if they fail.
   */
  async read(key: string, part?: { offset: number; length: number }): Promise<Buffer | null> {
    // Before the scan has reached it, an entry left by an earlier mount is read unindexed.
    const entry = this.index.get(key)
    const size = entry?.size ?? (this.scanned ? undefined : Infinity)
    if (size === undefined || (part && part.offset + part.length > size)) {
      this.misses++
      return null
    }
    try {
      // One pread of what is wanted, through a file kept open (a whole unindexed entry: its file read whole).
      const bytes = !part && size === Infinity ? await readFile(this.file(key)) : await readAt(await this.opened(key), part?.offset ?? 0, part?.length ?? size, this.buffers.take(part?.length ?? size))
      this.hits++
      const now = Date.now()
      if (entry && now - entry.touchedMs > TOUCH_EVERY_MS) {
        entry.touchedMs = now
        void utimes(this.file(key), now / 1000, now / 1000).catch(() => undefined)
      }
      if (now - this.statsSavedAt > STATS_EVERY_MS) void this.saveStats()
      return bytes
    } catch {
      this.index.delete(key)
      this.misses++
      return null
    }
  }

  /**
   * Gives back bytes `read` returned, once nothing uses them any more (the caller opened them into
   * a buffer of its own). Their memory serves a later read: fewer new buffers, fewer collections.
   */
  recycle(bytes: Buffer): void {
    this.buffers.give(bytes)
  }

  private opened(key: string): Promise<FileHandle> {
    let fh = this.files.get(key)
    if (!fh) {
      fh = open(this.file(key), 'r')
      fh.catch(() => this.files.delete(key))
      this.files.set(key, fh)
    }
    return fh
  }

  /** An entry that failed its check: deleted, and the read counts as a miss. */
  drop(key: string): void {
    this.corrupt++
    this.hits--
    this.misses++
    this.index.delete(key)
  }

  /**
   * Keeps a copy of `bytes` under `key` in the background (skipped when the disk is full or too
   * much is waiting). The copy is taken at once: the caller may reuse `bytes` when this returns.
   */
  write(key: string, sealed: Buffer): void {
    if (this.closed || this.index.has(key) || this.pending.has(key)) return
    if (sealed.length > this.maxBytes || Date.now() < this.pausedUntil || this.pendingBytes + sealed.length > MAX_PENDING_BYTES) {
      this.skipped++
      return
    }
    const bytes = this.buffers.take(sealed.length)
    sealed.copy(bytes)
    this.pendingBytes += bytes.length
    // Two writes at a time: one alone, each step a trip through a busy event loop, kept up with
    // only ~300 MB/s of reads (13 ms per 4 MiB chunk, measured), and a third of the chunks were skipped.
    const written = this.writers.run(() => this.store(key, bytes)).finally(() => this.buffers.give(bytes))
    // Indexed in the order the writes were queued (the order of the reads), not the order the two
    // writers happen to finish them: the index is the LRU order that decides what a trim removes.
    const indexed = (this.lastIndexed = Promise.all([written, this.lastIndexed]).then(([stored]) => {
      if (stored) this.index.set(key, { size: bytes.length, touchedMs: Date.now() })
    }))
    this.pending.set(key, indexed.finally(() => {
      this.pending.delete(key)
      this.pendingBytes -= bytes.length
      if (Date.now() - this.statsSavedAt > STATS_EVERY_MS) void this.saveStats()
    }))
  }

  /** Waits for the entries being written, and leaves the counters for `edfs status`. */
  async close(): Promise<void> {
    this.closed = true
    await this.ready
    await Promise.all(this.pending.values())
    this.files.clear()
    await this.saveStats()
  }

  private saveStats(): Promise<void> {
    this.statsSavedAt = Date.now()
    return writeFile(path.join(this.dir, STATS_FILE), `${JSON.stringify({ ...this.stats(), at: this.statsSavedAt })}\n`).catch(() => undefined)
  }

  private file(key: string): string {
    return path.join(this.dir, key.slice(0, 2), key)
  }

  /** Writes an entry's file (never throws); true when it is there. */
  private async store(key: string, bytes: Buffer): Promise<boolean> {
    const file = this.file(key)
    const tmp = `${file}.tmp`
    try {
      const sub = path.dirname(file)
      if (!this.madeDirs.has(sub)) {
        await mkdir(sub, { recursive: true, mode: 0o700 })
        this.madeDirs.add(sub)
      }
      await writeWhole(tmp, bytes)
      await rename(tmp, file)
      return true
    } catch (err) {
      this.skipped++
      await unlink(tmp).catch(() => undefined)
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        if (this.pausedUntil === 0) this.log(`disk cache ${this.dir}: the disk is full; new entries wait (reads of what is there go on)`)
        this.pausedUntil = Date.now() + FULL_PAUSE_MS
      } else {
        if (Number.isFinite(this.pausedUntil)) this.log(`disk cache ${this.dir}: cannot write (${(err as Error).message}); no new entries this mount`)
        this.pausedUntil = Infinity
      }
      return false
    }
  }

  /** Indexes what is on disk, oldest first (so the LRU order is the files' mtimes), and removes torn writes. */
  private async scan(): Promise<void> {
    const found: { key: string; size: number; mtimeMs: number }[] = []
    for await (const sub of await opendir(this.dir)) {
      if (!sub.isDirectory() || !/^[0-9a-f]{2}$/.test(sub.name)) continue
      const subDir = path.join(this.dir, sub.name)
      const names: string[] = []
      for await (const e of await opendir(subDir)) names.push(e.name)
      // One directory's files stat'ed together: one by one, each a trip through a busy event loop.
      await Promise.all(
        names.map(async (name) => {
          const file = path.join(subDir, name)
          if (!isDiskCacheKey(name)) {
            if (name.endsWith('.tmp')) await rm(file, { force: true })
            return
          }
          const st = await stat(file).catch(() => null)
          if (st?.isFile()) found.push({ key: name, size: st.size, mtimeMs: st.mtimeMs })
        }),
      )
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs)
    // Entries written by this mount while the scan ran are newer than anything found.
    const fresh = [...this.index.rkeys()].map((k) => [k, this.index.peek(k)!] as const)
    for (const f of found) if (!this.index.has(f.key)) this.index.set(f.key, { size: f.size, touchedMs: 0 })
    for (const [k, e] of fresh) this.index.set(k, e)
    this.scanned = true
  }
}

/**
 * `bytes` into a new file in as few writes as the kernel takes (fs.writeFile goes in 512 KiB steps,
 * each a round trip through the event loop, which a busy mount makes slow).
 */
async function writeWhole(file: string, bytes: Buffer): Promise<void> {
  const fh = await open(file, 'w', 0o600)
  try {
    for (let at = 0; at < bytes.length; ) at += (await fh.write(bytes, at, bytes.length - at)).bytesWritten
  } finally {
    await fh.close()
  }
}

/** `length` bytes at `offset` of an open file, in one pread (a short read is an error). */
async function readAt(fh: FileHandle, offset: number, length: number, buf: Buffer): Promise<Buffer> {
  const { bytesRead } = await fh.read(buf, 0, length, offset)
  if (bytesRead !== length) throw new Error(`short read: ${bytesRead} of ${length} bytes`)
  return buf
}

/** The counters a mount left in `dir` when it closed (for `edfs status`), or null. */
export async function lastDiskCacheStats(dir: string): Promise<(DiskCacheStats & { at: number }) | null> {
  try {
    return JSON.parse(await readFile(path.join(dir, STATS_FILE), 'utf8')) as DiskCacheStats & { at: number }
  } catch {
    return null
  }
}
