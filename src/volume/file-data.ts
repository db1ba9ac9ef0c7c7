// File contents: write-back buffers per open file, sealing and upload of chunks in the background
// under a memory budget, reads through the chunk cache with read-ahead, flush and truncate.
import { blobId, sealChunk } from '../crypto'
import { ChunkCache } from './chunk-cache'
import { FsError } from './fs-types'
import { BlobRef, ChunkRef, INLINE_MAX, Inode, cutRef } from './namespace'
import { PACK_PIECE_MAX, Packer } from './packer'
import { Semaphore } from './semaphore'
import { VolumeStore, isStoreFull } from './store'

export interface FileDataOptions {
  chunkSize: number
  /** Most bytes held in write buffers (dirty and uploading) before writers wait. */
  maxDirtyBytes: number
  /** Most chunk uploads in flight at once. */
  maxUploads: number
  /** Chunks fetched ahead of a sequential reader. */
  readAheadChunks: number
}

interface DirtyChunk {
  /**
   * Grows with the data (a 4 KiB file needs 64 KiB, not a whole chunk). Bytes past `len` are
   * undefined: a write past `len` zeroes the gap first, reads stop at `len`.
   */
  buf: Buffer
  /** Bytes of the chunk that hold data; past it, zeros up to the file size. */
  len: number
  /** Settles once the chunk's previous contents are loaded into `buf`. */
  ready: Promise<void>
  /** Writes about to copy into `buf`: back-pressure leaves such a buffer alone until they have. */
  writers: number
}

/**
 * What a commit records of a file: its data as of the moment the commit began (frozen then,
 * synchronously), complete once `refs` settle.
 */
export interface FileSnapshot {
  state: FileState
  size: number
  mtimeMs: number
  /** FileState.version when frozen: unchanged after the commit means nothing is left to record. */
  version: number
  /** The smallest size since the last snapshot: committed chunks at or past it are gone. */
  minSize: number
  /** Chunk index -> its ref as of the freeze (null: the upload failed). */
  refs: Promise<Map<number, ChunkRef | null>>
}

/**
 * Per-inode state while a file is open or has changes not yet committed. Its data moves
 * dirty (a write buffer) -> uploading (sealed, on its way to the servers) -> uploaded (stored, its
 * ref kept here) -> committed (the ref in the namespace, recorded by a commit from a snapshot).
 */
export class FileState {
  handles = 0
  size: number
  mtimeMs: number
  /** Whether the file changed since the last snapshot a commit recorded. */
  changed = false
  /** Bumped by every change of the contents or size. */
  version = 0
  /** When the contents or size last changed (ctime; mtime may be set to anything by utimens). */
  changedMs = 0
  /** The smallest size since the last snapshot (a truncate down). */
  minSize: number
  readonly dirty = new Map<number, DirtyChunk>()
  /** The newest upload of each chunk; a newer one waits for the one before it. */
  readonly uploads = new Map<number, Promise<ChunkRef | null>>()
  /** Chunks stored but not yet recorded in the namespace. */
  readonly uploaded = new Map<number, ChunkRef>()
  /** The last upload failure, reported by the commit that needed the chunk. */
  error: Error | null = null
  /** The file lost its last name and handle: nothing it buffered is ever stored or committed. */
  discarded = false
  readonly fileId: Buffer

  constructor(public node: Inode) {
    this.size = node.size
    this.minSize = node.size
    this.mtimeMs = node.mtimeMs
    this.fileId = Buffer.from(node.id, 'hex')
  }

  /** Marks a change of contents, size or mtime that a commit must record. */
  touch(mtimeMs = Date.now()): void {
    this.mtimeMs = mtimeMs
    this.changedMs = mtimeMs
    this.changed = true
    this.version++
  }

  /** A reader's open file moves to the inode of a newer namespace (it holds no writes of its own). */
  rebase(node: Inode): void {
    this.node = node
    this.size = node.size
    this.mtimeMs = node.mtimeMs
  }

  ref(index: number): ChunkRef | null {
    return this.uploaded.get(index) ?? this.node.chunks!.get(index) ?? null
  }

  get busy(): boolean {
    return this.dirty.size > 0 || this.uploads.size > 0
  }
}

/** A counting budget that writers wait on (back-pressure) instead of growing memory. */
class Budget {
  used = 0
  private waiters: (() => void)[] = []

  constructor(private readonly limit: number) {}

  get full(): boolean {
    return this.used >= this.limit
  }

  take(n: number): void {
    this.used += n
  }

  give(n: number): void {
    this.used -= n
    const waiting = this.waiters
    this.waiters = []
    for (const wake of waiting) wake()
  }

  /** Resolves at the next `give`. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve))
  }
}

/** After the servers said "full", writers get ENOSPC for this long (or until an upload succeeds). */
const FULL_HOLD_MS = 5000

export class FileData {
  /** When an upload last found every server out of space. */
  private fullAt = -Infinity
  private readonly memory: Budget
  private readonly uploadSlots: Semaphore
  private readonly packer: Packer
  private readonly C: number
  /** Files holding write buffers: all of them are pushed out when memory runs short. */
  private readonly holders = new Set<FileState>()

  constructor(
    private readonly store: VolumeStore,
    private readonly contentsKey: Buffer,
    private readonly cache: ChunkCache,
    private readonly opts: FileDataOptions,
  ) {
    this.C = opts.chunkSize
    this.memory = new Budget(opts.maxDirtyBytes)
    this.uploadSlots = new Semaphore(opts.maxUploads)
    this.packer = new Packer(store, this.uploadSlots)
  }

  async write(f: FileState, data: Buffer, position: number): Promise<void> {
    this.checkSpace()
    const end = position + data.length
    for (let i = Math.floor(position / this.C); i * this.C < end; i++) {
      const chunkStart = i * this.C
      const from = Math.max(position, chunkStart) - chunkStart
      const to = Math.min(end, chunkStart + this.C) - chunkStart
      // The buffer may have gone to upload (a flush) while we waited for it: then take the next one.
      let dc = await this.dirtyChunk(f, i, from, to)
      while (f.dirty.get(i) !== dc) {
        dc.writers--
        dc = await this.dirtyChunk(f, i, from, to)
      }
      if (to > dc.buf.length) this.grow(dc, to)
      if (from > dc.len) dc.buf.fill(0, dc.len, from)
      data.copy(dc.buf, from, chunkStart + from - position, chunkStart + to - position)
      dc.len = Math.max(dc.len, to)
      dc.writers--
      // A full chunk is done; under back-pressure, so is any buffer no other write holds.
      if ((dc.len === this.C && to === this.C) || (this.memory.full && dc.writers === 0)) this.startUpload(f, i)
    }
    f.size = Math.max(f.size, end)
    f.touch()
  }

  async read(f: FileState, target: Buffer, length: number, position: number, sequential: boolean): Promise<number> {
    const end = Math.min(position + length, f.size)
    if (position >= end) return 0
    const last = Math.floor((end - 1) / this.C)
    const parts: Promise<void>[] = []
    for (let i = Math.floor(position / this.C); i <= last; i++) {
      const chunkStart = i * this.C
      const from = Math.max(position, chunkStart) - chunkStart
      const to = Math.min(end, chunkStart + this.C) - chunkStart
      parts.push(this.readPiece(f, i, from, to, target.subarray(chunkStart + from - position), sequential))
    }
    await Promise.all(parts)
    if (sequential) this.readAhead(f, last)
    return end - position
  }

  /** Bytes of write buffers held now (data not yet stored). */
  get dirtyBytes(): number {
    return this.memory.used
  }

  /** ENOSPC while the servers recently said they are full: a write would only pile up in memory. */
  private checkSpace(): void {
    if (performance.now() - this.fullAt < FULL_HOLD_MS) throw new FsError('ENOSPC', 'the storage servers are out of space (delete files, then run gc)')
  }

  /** Starts uploading every buffered chunk of the file (write-back after close). */
  startUploads(f: FileState): void {
    for (const i of [...f.dirty.keys()]) this.startUpload(f, i)
  }

  /**
   * Freezes the file for a commit, synchronously: every buffered chunk starts uploading (behind an
   * upload of the same chunk already under way), and the snapshot's refs settle once the data
   * written up to now is stored. Writes made afterwards go to new buffers, for the next commit.
   */
  snapshot(f: FileState): FileSnapshot {
    const refs = new Map<number, ChunkRef | null>(f.uploaded)
    this.startUploads(f)
    const waiting = [...f.uploads].map(([i, upload]) => upload.then((ref) => void refs.set(i, ref)))
    if (waiting.length > 0) this.packer.flushSoon() // small chunks among them wait in a pack
    const snap: FileSnapshot = {
      state: f, size: f.size, mtimeMs: f.mtimeMs, version: f.version, minSize: f.minSize,
      refs: Promise.all(waiting).then(() => refs),
    }
    f.minSize = f.size
    return snap
  }

  /**
   * Drops what a file that lost its last name and handle still buffers: it will never be read, so
   * it must not be stored (on full servers it could not be, and every commit would fail for it).
   */
  discard(f: FileState): void {
    f.discarded = true
    f.changed = false
    for (const dc of f.dirty.values()) this.memory.give(dc.buf.length)
    f.dirty.clear()
    f.uploaded.clear()
    this.holders.delete(f)
  }

  /** After a commit failed: the snapshot's truncation still has to be recorded. */
  unfreeze(snap: FileSnapshot): void {
    if (snap.state.discarded) return
    snap.state.minSize = Math.min(snap.state.minSize, snap.minSize)
    snap.state.changed = true
  }

  /** After a commit recorded `snap`: refs now in the namespace leave `uploaded`; the state is clean unless it changed since. */
  committed(snap: FileSnapshot, recorded: Map<number, ChunkRef | null>): void {
    const f = snap.state
    for (const [i, ref] of recorded) if (f.uploaded.get(i) === ref) f.uploaded.delete(i)
    if (f.version === snap.version) f.changed = false
  }

  /** Cuts or extends the file; the next commit records the new size and refs. */
  async truncate(f: FileState, size: number): Promise<void> {
    await Promise.all([...f.uploads.values()])
    const count = Math.ceil(size / this.C)
    for (const [i, dc] of f.dirty) {
      if (i >= count) {
        f.dirty.delete(i)
        this.memory.give(dc.buf.length)
      } else if ((i + 1) * this.C > size) {
        dc.len = Math.min(dc.len, size - i * this.C)
      }
    }
    for (const i of [...f.uploaded.keys()]) if (i >= count) f.uploaded.delete(i)
    const tail = Math.floor(size / this.C)
    const ref = size % this.C !== 0 && !f.dirty.has(tail) ? f.ref(tail) : null
    if (ref && ref.len > size - tail * this.C) f.uploaded.set(tail, cutRef(ref, size - tail * this.C))
    f.size = size
    f.minSize = Math.min(f.minSize, size)
    f.touch()
  }

  /** The chunk's write buffer, claimed for one write (the caller releases `writers`). */
  private async dirtyChunk(f: FileState, i: number, from: number, to: number): Promise<DirtyChunk> {
    for (;;) {
      await f.uploads.get(i)
      const existing = f.dirty.get(i)
      if (existing) {
        existing.writers++
        try {
          await existing.ready
        } catch (err) {
          existing.writers--
          throw new FsError('EIO', `could not read chunk ${i} to modify it: ${(err as Error).message}`)
        }
        return existing
      }
      if (!this.memory.full) break
      // Back-pressure: push out every buffered chunk no write is about to fill, then wait for memory.
      for (const holder of this.holders) {
        if (holder.dirty.size === 0) this.holders.delete(holder)
        for (const [j, dc] of [...holder.dirty]) if (dc.writers === 0) this.startUpload(holder, j)
      }
      await this.memory.changed()
      // Buffers that could not be stored because the servers are full will not free memory soon.
      this.checkSpace()
    }
    const ref = f.ref(i)
    const validEnd = Math.min(this.C, Math.max(0, f.size - i * this.C))
    const load = !!ref && ref.len > 0 && !(from === 0 && to >= Math.min(ref.len, validEnd))
    const capacity = this.capacityFor(Math.max(to, load ? ref!.len : 0))
    this.memory.take(capacity)
    const dc: DirtyChunk = { buf: Buffer.allocUnsafe(capacity), len: 0, ready: Promise.resolve(), writers: 1 }
    f.dirty.set(i, dc)
    this.holders.add(f)
    if (load) {
      dc.ready = this.cache.chunk(f.fileId, i, ref).then((plain) => {
        plain.copy(dc.buf, 0, 0, ref!.len)
        dc.len = Math.min(ref!.len, validEnd)
      })
      try {
        await dc.ready
      } catch (err) {
        // An upload that took the buffer meanwhile drops it and gives its memory back.
        if (f.dirty.get(i) === dc) {
          f.dirty.delete(i)
          this.memory.give(dc.buf.length)
        }
        throw new FsError('EIO', `could not read chunk ${i} to modify it: ${(err as Error).message}`)
      }
    }
    return dc
  }

  /**
   * Buffer size for `n` bytes of a chunk: a power of two from 4 KiB, at most the chunk size (small
   * files held in the write-back pipeline cost what they hold, not 64 KiB each).
   */
  private capacityFor(n: number): number {
    let cap = 4096
    while (cap < n) cap *= 2
    return Math.min(cap, this.C)
  }

  private grow(dc: DirtyChunk, needed: number): void {
    const bigger = Buffer.allocUnsafe(this.capacityFor(needed))
    dc.buf.copy(bigger, 0, 0, dc.len)
    this.memory.take(bigger.length - dc.buf.length)
    dc.buf = bigger
  }

  /** Moves the chunk's buffer to an upload (after the chunk's upload under way, if any). */
  private startUpload(f: FileState, i: number): void {
    const dc = f.dirty.get(i)
    if (!dc) return
    f.dirty.delete(i)
    const held = dc.buf.length
    const before = f.uploads.get(i)
    const upload: Promise<ChunkRef | null> = (before ? before.then(() => this.upload(f, i, dc)) : this.upload(f, i, dc)).finally(() => {
      if (f.uploads.get(i) === upload) f.uploads.delete(i)
      this.memory.give(held)
    })
    f.uploads.set(i, upload)
  }

  /** Seals and stores one chunk; resolves to its ref, or null when it failed (the buffer is kept for a retry). */
  private async upload(f: FileState, i: number, dc: DirtyChunk): Promise<ChunkRef | null> {
    try {
      await dc.ready
    } catch {
      return null // loading the old contents failed: no write went into this buffer
    }
    const len = dc.len
    if (i === 0 && f.size <= INLINE_MAX && len <= INLINE_MAX) {
      // A small file: its data goes into the metadata with the next commit, no blob to store.
      const ref = { inline: Buffer.from(dc.buf.subarray(0, len)), len }
      f.uploaded.set(0, ref)
      return ref
    }
    try {
      const plain = dc.buf.subarray(0, len)
      // Small files and the tails of big ones share packs; a full chunk always has a blob of its own.
      const packed = len <= PACK_PIECE_MAX && len < this.C
      const ref = packed ? await this.storePacked(f, i, plain) : await this.uploadSlots.run(() => this.storeAlone(f, i, plain))
      f.uploaded.set(i, ref)
      this.fullAt = -Infinity
      // The cache charges what it holds: hand it the buffer only when no spare capacity hides behind it.
      this.cache.put(ref, plain.length === dc.buf.length ? dc.buf : Buffer.from(plain))
      return ref
    } catch (err) {
      f.error = err as Error
      if (isStoreFull(err)) this.fullAt = performance.now()
      // Keep the data for the next commit to retry, unless newer writes replaced it meanwhile.
      if (!f.dirty.has(i) && !f.discarded) {
        f.dirty.set(i, dc)
        this.holders.add(f)
        this.memory.take(dc.buf.length)
      }
      return null
    }
  }

  /** A chunk in a blob of its own. */
  private async storeAlone(f: FileState, i: number, plain: Buffer): Promise<BlobRef> {
    const sealed = sealChunk(this.contentsKey, f.fileId, i, plain)
    const id = await blobId(sealed)
    await this.store.put(id, sealed)
    return { id, len: plain.length }
  }

  /** A small chunk in a pack shared with others (packer.ts). */
  private async storePacked(f: FileState, i: number, plain: Buffer): Promise<BlobRef> {
    const { id, at } = await this.packer.add(sealChunk(this.contentsKey, f.fileId, i, plain))
    return { id, len: plain.length, at }
  }

  private async readPiece(f: FileState, i: number, from: number, to: number, out: Buffer, sequential: boolean): Promise<void> {
    await f.uploads.get(i)
    const dc = f.dirty.get(i)
    if (dc) {
      try {
        await dc.ready
      } catch (err) {
        throw new FsError('EIO', `could not read chunk ${i}: ${(err as Error).message}`)
      }
    }
    const ref = dc ? null : f.ref(i)
    const have = dc ? dc.len : (ref?.len ?? 0)
    const dataEnd = Math.min(to, have)
    if (dataEnd > from) {
      let bytes: Buffer
      if (dc) bytes = dc.buf.subarray(from, dataEnd)
      else if (sequential) bytes = (await this.cache.chunk(f.fileId, i, ref!)).subarray(from, dataEnd)
      else bytes = await this.cache.range(f.fileId, i, ref!, from, dataEnd)
      bytes.copy(out, 0)
    }
    out.fill(0, Math.max(0, dataEnd - from), to - from)
  }

  private readAhead(f: FileState, last: number): void {
    const count = Math.ceil(f.size / this.C)
    for (let i = last + 1; i <= last + this.opts.readAheadChunks && i < count; i++) {
      if (f.dirty.has(i) || f.uploads.has(i)) continue
      const ref = f.ref(i)
      if (ref && ref.len > 0) this.cache.prefetch(f.fileId, i, ref)
    }
  }
}
