// One user's blobs: DATA/users/<user>/blobs/<first 2 hex>/<id>. Content-addressed and immutable.
// A blob is streamed to tmp/, hashed on the way, fsynced, then renamed into place and the directory
// fsynced: it is never visible before it is complete. Byte and blob counts are kept incrementally.
// A copy that no longer hashes to its id (bit rot, a bad disk, a hand edit) is moved aside to
// DATA/users/<user>/quarantine/<id>.<ms> (kept for inspection, never served again), so a good copy
// can take its place.
import { createHash } from 'node:crypto'
import { FileHandle, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises'
import { IncomingMessage } from 'node:http'
import path from 'node:path'
import { isBlobId, mapLimit } from '../src/protocol'
import { receiveBody } from './body'
import { HttpError, fsErrorToHttp } from './errors'
import { fsyncDir, writeAll } from './fsutil'
import { KeyedLock } from './keyed-lock'

const FANOUT = /^[0-9a-f]{2}$/

export interface PutOptions {
  limit: number
  idleMs: number
  onData?: (bytes: number) => void
}

export type Verdict = 'ok' | 'bad' | 'missing'

/** Bytes hashed per read when checking a stored copy. */
const HASH_PIECE = 1024 * 1024

export class BlobStore {
  bytesStored = 0
  blobCount = 0
  /** Copies moved to quarantine/ (on disk now, counted at start). */
  quarantined = 0
  private readonly lock = new KeyedLock()
  private readonly knownDirs = new Set<string>()

  constructor(
    readonly dir: string,
    readonly quarantineDir: string,
    private readonly tmpFile: () => string,
  ) {}

  /** Id must be validated by the caller (isBlobId) before any path is built. */
  pathOf(id: string): string {
    return path.join(this.dir, id.slice(0, 2), id)
  }

  /** Counts what is on disk (once, at start). */
  async scan(): Promise<void> {
    let bytes = 0
    let count = 0
    for (const fan of await listDir(this.dir)) {
      if (!FANOUT.test(fan)) continue
      for (const name of await listDir(path.join(this.dir, fan))) {
        if (!isBlobId(name)) continue
        try {
          bytes += (await stat(path.join(this.dir, fan, name))).size
          count++
        } catch {
          /* removed meanwhile */
        }
      }
    }
    this.bytesStored = bytes
    this.blobCount = count
    this.quarantined = (await listDir(this.quarantineDir)).length
  }

  /**
   * Checks the stored copy against its id. A copy that fails is quarantined at once: 'bad' means
   * it was there, was wrong, and is gone now.
   */
  async verify(id: string): Promise<Verdict> {
    const first = await this.check(id)
    if (first !== 'bad') return first
    return this.lock.run(id, async () => {
      // Checked again under the lock: a PUT may have replaced the copy while it was being hashed.
      const verdict = await this.check(id)
      if (verdict === 'bad') await this.quarantine(id)
      return verdict
    })
  }

  /** Moves a copy that failed its hash aside (callers hold the id's lock). */
  private async quarantine(id: string): Promise<void> {
    const target = this.pathOf(id)
    const size = (await stat(target)).size
    await this.ensureDir(this.quarantineDir)
    await rename(target, path.join(this.quarantineDir, `${id}.${Date.now()}`))
    await fsyncDir(path.dirname(target))
    this.bytesStored -= size
    this.blobCount--
    this.quarantined++
  }

  private async check(id: string): Promise<Verdict> {
    const b = await this.open(id)
    if (!b) return 'missing'
    try {
      return (await hashHandle(b.fh, b.size)) === id ? 'ok' : 'bad'
    } finally {
      await b.fh.close()
    }
  }

  async put(id: string, req: IncomingMessage, opts: PutOptions): Promise<'created' | 'exists'> {
    const tmp = this.tmpFile()
    let fh: FileHandle | null = null
    let moved = false
    try {
      fh = await open(tmp, 'wx', 0o644)
      const file = fh
      const r = await receiveBody(req, { ...opts, sink: (chunks) => writeAll(file, chunks) })
      if (r.sha256 !== id) throw new HttpError('hash-mismatch', 'the body does not hash to the blob id; nothing stored')
      await fh.sync()
      await fh.close()
      fh = null
      return await this.lock.run(id, async () => {
        const target = this.pathOf(id)
        if (await exists(target)) {
          // A copy that rotted is replaced by the good bytes just received, never answered "exists".
          if ((await this.check(id)) !== 'bad') return 'exists'
          await this.quarantine(id)
        }
        await this.ensureDir(path.dirname(target))
        await rename(tmp, target)
        moved = true
        await fsyncDir(path.dirname(target))
        this.bytesStored += r.bytes
        this.blobCount++
        return 'created'
      })
    } catch (err) {
      throw fsErrorToHttp(err) ?? err
    } finally {
      if (fh) await fh.close().catch(() => undefined)
      if (!moved) await rm(tmp, { force: true }).catch(() => undefined)
    }
  }

  /** An open handle and the size, or null when absent. The caller closes the handle. */
  async open(id: string): Promise<{ fh: FileHandle; size: number } | null> {
    let fh: FileHandle
    try {
      fh = await open(this.pathOf(id), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    try {
      return { fh, size: (await fh.stat()).size }
    } catch (err) {
      await fh.close()
      throw err
    }
  }

  /** True when it existed and is gone now. */
  async delete(id: string): Promise<boolean> {
    return this.lock.run(id, async () => {
      const target = this.pathOf(id)
      let size: number
      try {
        size = (await stat(target)).size
        await unlink(target)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
        throw err
      }
      await fsyncDir(path.dirname(target))
      this.bytesStored -= size
      this.blobCount--
      return true
    })
  }

  async have(ids: string[]): Promise<string[]> {
    const found = await mapLimit(ids, 32, (id) => exists(this.pathOf(id)))
    return ids.filter((_, i) => found[i])
  }

  /** Blobs with id > after, in id order, at most `limit`; `next` when more remain. */
  async list(after: string | undefined, limit: number): Promise<{ blobs: { id: string; size: number; mtimeMs: number }[]; next?: string }> {
    const blobs: { id: string; size: number; mtimeMs: number }[] = []
    const fans = (await listDir(this.dir)).filter((f) => FANOUT.test(f) && (!after || f >= after.slice(0, 2))).sort()
    for (const fan of fans) {
      const names = (await listDir(path.join(this.dir, fan))).filter((n) => isBlobId(n) && (!after || n > after)).sort()
      for (const id of names) {
        if (blobs.length === limit) return { blobs, next: blobs[blobs.length - 1]!.id }
        try {
          const st = await stat(path.join(this.dir, fan, id))
          blobs.push({ id, size: st.size, mtimeMs: Math.floor(st.mtimeMs) })
        } catch {
          /* removed meanwhile */
        }
      }
    }
    return { blobs }
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return
    const created = await mkdir(dir, { recursive: true, mode: 0o700 })
    if (created) {
      // Make the new directories themselves durable.
      for (let d = path.dirname(dir); d.length >= path.dirname(created).length; d = path.dirname(d)) {
        await fsyncDir(d)
        if (d === path.dirname(created)) break
      }
    }
    this.knownDirs.add(dir)
  }
}

async function hashHandle(fh: FileHandle, size: number): Promise<string> {
  const hash = createHash('sha256')
  const buf = Buffer.allocUnsafe(Math.min(HASH_PIECE, Math.max(1, size)))
  for (let pos = 0; ; ) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
    if (bytesRead === 0) break
    hash.update(buf.subarray(0, bytesRead))
    pos += bytesRead
  }
  return hash.digest('hex')
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}
