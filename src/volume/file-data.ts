// File contents: write-back buffers per open file, sealing and upload of chunks in the background
// under a memory budget, reads through the chunk cache with read-ahead, flush and truncate.
// A write into a stored chunk keeps only the bytes written (extents over the chunk, not loaded);
// its upload stores them as a slice over the chunk, or folds everything into a new whole chunk
// (compaction) once slices would cover much of it or become too many.
import { CHUNK_SALT_BYTES, blobId, randomBuffer, sealChunk } from '../crypto'
import { ChunkCache } from './chunk-cache'
import { BlobRef, ChunkRef, INLINE_MAX, Slice, SlicePart, cutRef, isBlobRef, isInlineRef, isSlicedRef, sliceBlob, sliceCoverage } from './chunk-refs'
import { FsError } from './fs-types'
import { Inode } from './namespace'
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

/** Bytes [off, off + len) of a chunk, written since its buffer opened; `buf` grows with them. */
interface Extent {
  off: number
  len: number
  buf: Buffer
}

interface DirtyChunk {
  /**
   * What the chunk held when its buffer opened, never loaded for a write: reads of bytes no extent
   * covers, and a compaction, fetch them from here. null: nothing (a new chunk, a hole). Its `len`
   * never exceeds the buffer's `len`, so bytes between them read as zeros.
   */
  under: ChunkRef | null
  /** The bytes written, sorted and disjoint (touching extents are merged). */
  extents: Extent[]
  /** Bytes of the chunk that hold data; past it, zeros up to the file size. */
  len: number
  /** Memory the extents' buffers take from the budget. */
  held: number
  /** Writes about to copy into the extents: back-pressure leaves such a buffer alone until they have. */
  writers: number
}

/** A chunk stays a base plus at most this many slices; past it, the newest are merged into one. */
export const MAX_SLICES = 256

/** How an upload stores a chunk's buffer. */
type UploadPlan =
  | { kind: 'whole' }
  /** A new slice of the written bytes, and of the bytes of the newest `merge` slices. */
  | { kind: 'slice'; base: BlobRef | null; keep: Slice[]; merge: Slice[] }

/**
 * Whole (a new chunk, a small or inline one, writes covering it, or slices that would shadow half
 * of its base: compaction) or a slice over what is stored. At the bound, the new slice also takes the
 * newest slices, as many as stay small next to the next older one (size-tiered, as an LSM tree
 * merges): each byte is then rewritten about log2(chunk / write) times, not once per merge.
 */
export function planUpload(under: ChunkRef | null, extents: readonly { off: number; len: number }[], len: number): UploadPlan {
  if (!under || isInlineRef(under) || under.len === 0) return { kind: 'whole' }
  if (extents.length === 1 && extents[0]!.off === 0 && extents[0]!.len >= len) return { kind: 'whole' }
  const base = isBlobRef(under) ? under : under.base
  const slices = isSlicedRef(under) ? under.slices : []
  const written: Slice = { id: '', salt: '', blob: 0, parts: extents.map((e): SlicePart => [e.off, e.len, 0]) }
  // Compaction once half the base is shadowed (dead bytes, and a fetch more for each read). Slices
  // past the base's end shadow nothing: a chunk written in pieces (back-pressure split a sequential
  // write) stays a base and its continuation, not rewritten at the next small write.
  const baseLen = base?.len ?? 0
  if (baseLen > 0 && sliceCoverage([...slices, written], baseLen) * 2 >= baseLen) return { kind: 'whole' }
  if (slices.length < MAX_SLICES) return { kind: 'slice', base, keep: slices, merge: [] }
  let run = extents.reduce((n, e) => n + e.len, 0)
  let from = slices.length
  while (from > 0) {
    const size = slices[from - 1]!.blob
    if (from < slices.length && size > run) break
    run += size
    from--
  }
  return { kind: 'slice', base, keep: slices.slice(0, from), merge: slices.slice(from) }
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
  /** FileState.truncations when frozen: the cuts up to it are recorded once this snapshot commits. */
  truncations: number
  /** Chunk index -> its ref as of the freeze (null: the upload failed). */
  refs: Promise<Map<number, ChunkRef | null>>
}

/**
 * Per-inode state while a file is open or has changes not yet committed. Its data moves
 * dirty (a write buffer) -> uploading (sealed, on its way to the servers) -> uploaded (stored, its
 * ref kept here) -> committed (the ref in the namespace, recorded by a commit from a snapshot).
 */
export class FileState {
  /** Open handles of the file (the volume's handle table holds them; this counts them). */
  private handleCount = 0
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
  /** Truncates so far, numbered; each cut below stays pending until a snapshot taken after it commits. */
  truncations = 0
  /**
   * Truncates not yet committed: committed chunks from `fromChunk` on are void, whatever the
   * namespace still says (a commit frozen before the truncate may land after it and record them).
   */
  readonly pendingCuts: { seq: number; fromChunk: number }[] = []
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
    const uploaded = this.uploaded.get(index)
    if (uploaded) return uploaded
    if (this.pendingCuts.some((c) => index >= c.fromChunk)) return null
    return this.node.chunks!.get(index) ?? null
  }

  get busy(): boolean {
    return this.dirty.size > 0 || this.uploads.size > 0
  }

  /** Whether a commit has something of this file to record (data or attributes). */
  get pendingCommit(): boolean {
    return !this.discarded && (this.changed || this.busy || this.uploaded.size > 0)
  }

  get open(): boolean {
    return this.handleCount > 0
  }

  opened(): void {
    this.handleCount++
  }

  /** One handle less; true when it was the last. */
  closed(): boolean {
    this.handleCount--
    return this.handleCount === 0
  }

  /** utimens of an open file: the namespace records the time, the open file's copy follows it. */
  setMtime(mtimeMs: number): void {
    this.mtimeMs = mtimeMs
  }

  /** Settles once every upload under way ended, stored or failed. */
  uploadsSettled(): Promise<unknown> {
    return Promise.allSettled([...this.uploads.values()])
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
      let dc = await this.dirtyChunk(f, i)
      while (f.dirty.get(i) !== dc) {
        dc.writers--
        dc = await this.dirtyChunk(f, i)
      }
      // A file that already reaches this chunk and writes its start is streaming: the chunk will fill,
      // so its buffer gets the chunk's size at once (growing it by doubling copied each chunk ~once
      // more, into fresh memory). A last chunk left partly empty is copied to its size on upload.
      const streaming = i > 0 && from === 0 && f.size >= chunkStart
      this.putExtent(dc, from, data.subarray(chunkStart + from - position, chunkStart + to - position), streaming ? this.C : undefined)
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

  /**
   * read() at once, when every byte asked is in memory now: nothing of the file is buffered or on
   * its way to the servers, and each chunk touched is cached (or inline). Returns the bytes read,
   * or undefined when read() must wait. A stream reads each 4 MiB chunk in 32 pieces, all but the
   * first from memory: this spares them a dozen promises and a deadline timer each.
   */
  readNow(f: FileState, target: Buffer, length: number, position: number, sequential: boolean): number | undefined {
    if (f.dirty.size > 0 || f.uploads.size > 0) return undefined
    const end = Math.min(position + length, f.size)
    if (position >= end) return 0
    const last = Math.floor((end - 1) / this.C)
    for (let i = Math.floor(position / this.C); i <= last; i++) {
      const chunkStart = i * this.C
      const from = Math.max(position, chunkStart) - chunkStart
      const to = Math.min(end, chunkStart + this.C) - chunkStart
      const out = target.subarray(chunkStart + from - position)
      const ref = f.ref(i)
      const dataEnd = Math.min(to, ref?.len ?? 0)
      if (ref && dataEnd > from && !this.cache.copyNow(ref, from, dataEnd, out)) return undefined
      out.fill(0, Math.max(0, dataEnd - from), to - from)
    }
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
      state: f, size: f.size, mtimeMs: f.mtimeMs, version: f.version, minSize: f.minSize, truncations: f.truncations,
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
    for (const dc of f.dirty.values()) this.memory.give(dc.held)
    f.dirty.clear()
    f.uploaded.clear()
    f.pendingCuts.length = 0
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
    for (let k = f.pendingCuts.length - 1; k >= 0; k--) if (f.pendingCuts[k]!.seq <= snap.truncations) f.pendingCuts.splice(k, 1)
    if (f.version === snap.version) f.changed = false
  }

  /** Cuts or extends the file; the next commit records the new size and refs. */
  async truncate(f: FileState, size: number): Promise<void> {
    await Promise.all([...f.uploads.values()])
    const count = Math.ceil(size / this.C)
    for (const [i, dc] of f.dirty) {
      if (i >= count) {
        f.dirty.delete(i)
        this.memory.give(dc.held)
      } else if ((i + 1) * this.C > size) {
        this.cutDirty(dc, size - i * this.C)
      }
    }
    for (const i of [...f.uploaded.keys()]) if (i >= count) f.uploaded.delete(i)
    const tail = Math.floor(size / this.C)
    const ref = size % this.C !== 0 && !f.dirty.has(tail) ? f.ref(tail) : null
    if (ref && ref.len > size - tail * this.C) f.uploaded.set(tail, cutRef(ref, size - tail * this.C))
    f.pendingCuts.push({ seq: ++f.truncations, fromChunk: count })
    f.size = size
    f.minSize = Math.min(f.minSize, size)
    f.touch()
  }

  /** The chunk's write buffer, claimed for one write (the caller releases `writers`). */
  private async dirtyChunk(f: FileState, i: number): Promise<DirtyChunk> {
    for (;;) {
      await f.uploads.get(i)
      const existing = f.dirty.get(i)
      if (existing) {
        existing.writers++
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
    const under = !ref || ref.len === 0 || validEnd === 0 ? null : ref.len > validEnd ? cutRef(ref, validEnd) : ref
    const dc: DirtyChunk = { under, extents: [], len: under?.len ?? 0, held: 0, writers: 1 }
    f.dirty.set(i, dc)
    this.holders.add(f)
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

  /** Copies written bytes into the chunk's extents, merging the extents they overlap or touch. */
  private putExtent(dc: DirtyChunk, from: number, bytes: Buffer, capacity?: number): void {
    const to = from + bytes.length
    const ex = dc.extents
    let lo = 0
    while (lo < ex.length && ex[lo]!.off + ex[lo]!.len < from) lo++
    let hi = lo
    while (hi < ex.length && ex[hi]!.off <= to) hi++
    const first = ex[lo]
    if (hi - lo === 1 && first!.off <= from && first!.buf.length >= to - first!.off) {
      bytes.copy(first!.buf, from - first!.off) // the common case: appending within capacity
      first!.len = Math.max(first!.len, to - first!.off)
      return
    }
    const start = hi > lo ? Math.min(first!.off, from) : from
    const end = hi > lo ? Math.max(ex[hi - 1]!.off + ex[hi - 1]!.len, to) : to
    const buf = Buffer.allocUnsafe(Math.max(capacity ?? 0, this.capacityFor(end - start)))
    let freed = 0
    for (let k = lo; k < hi; k++) {
      ex[k]!.buf.copy(buf, ex[k]!.off - start, 0, ex[k]!.len)
      freed += ex[k]!.buf.length
    }
    bytes.copy(buf, from - start)
    ex.splice(lo, hi - lo, { off: start, len: end - start, buf })
    this.memory.take(buf.length - freed)
    dc.held += buf.length - freed
  }

  /** A truncate inside the buffered chunk: extents and what lies under them end at `n`. */
  private cutDirty(dc: DirtyChunk, n: number): void {
    dc.len = Math.min(dc.len, n)
    if (dc.under && dc.under.len > n) dc.under = cutRef(dc.under, n)
    dc.extents = dc.extents.filter((e) => e.off < n)
    for (const e of dc.extents) e.len = Math.min(e.len, n - e.off)
  }

  /** Whether the extents alone hold bytes [from, to) (nothing under them needs reading). */
  private static covers(dc: DirtyChunk, from: number, to: number): boolean {
    return dc.extents.some((e) => e.off <= from && e.off + e.len >= to)
  }

  /**
   * The chunk's bytes [0, len) as the buffer shows them: what lies under, then the extents. A
   * chunk written whole from its start (a sequential writer) is its one extent's buffer, not a copy.
   */
  private async materialize(f: FileState, i: number, dc: DirtyChunk): Promise<Buffer> {
    const only = dc.extents.length === 1 ? dc.extents[0]! : undefined
    if (only && only.off === 0 && only.len >= dc.len && only.buf.length === dc.len) return only.buf
    const out = Buffer.alloc(dc.len)
    if (dc.under && dc.under.len > 0 && !FileData.covers(dc, 0, dc.len)) {
      const under = await this.cache.chunk(f.fileId, i, dc.under)
      under.copyTo(out, 0, 0, Math.min(dc.under.len, dc.len))
    }
    for (const e of dc.extents) if (e.off < dc.len) e.buf.copy(out, e.off, 0, Math.min(e.len, dc.len - e.off))
    return out
  }

  /** Moves the chunk's buffer to an upload (after the chunk's upload under way, if any). */
  private startUpload(f: FileState, i: number): void {
    const dc = f.dirty.get(i)
    if (!dc) return
    f.dirty.delete(i)
    const held = dc.held
    const before = f.uploads.get(i)
    const upload: Promise<ChunkRef | null> = (before ? before.then(() => this.upload(f, i, dc)) : this.upload(f, i, dc)).finally(() => {
      if (f.uploads.get(i) === upload) f.uploads.delete(i)
      this.memory.give(held)
    })
    f.uploads.set(i, upload)
  }

  /** Seals and stores one chunk; resolves to its ref, or null when it failed (the buffer is kept for a retry). */
  private async upload(f: FileState, i: number, dc: DirtyChunk): Promise<ChunkRef | null> {
    const len = dc.len
    try {
      if (i === 0 && f.size <= INLINE_MAX && len <= INLINE_MAX) {
        // A small file: its data goes into the metadata with the next commit, no blob to store.
        const ref = { inline: await this.materialize(f, i, dc), len }
        f.uploaded.set(0, ref)
        return ref
      }
      const plan = planUpload(dc.under, dc.extents, len)
      const ref = plan.kind === 'whole' ? await this.storeWhole(f, i, await this.materialize(f, i, dc)) : await this.storeSlice(f, i, dc, plan)
      f.uploaded.set(i, ref)
      this.fullAt = -Infinity
      return ref
    } catch (err) {
      f.error = err as Error
      if (isStoreFull(err)) this.fullAt = performance.now()
      // Keep the data for the next commit to retry, unless newer writes replaced it meanwhile.
      if (!f.dirty.has(i) && !f.discarded) {
        f.dirty.set(i, dc)
        this.holders.add(f)
        this.memory.take(dc.held)
      }
      return null
    }
  }

  /** The whole chunk as one sealing: alone, or in a pack when small (a full chunk always alone). */
  private async storeWhole(f: FileState, i: number, plain: Buffer): Promise<BlobRef> {
    const ref = await this.seal(f, i, plain, plain.length < this.C)
    this.cache.put(ref, plain)
    return ref
  }

  /**
   * The written bytes (and those of the slices being merged, fetched) as one new slice over the
   * stored chunk. Its parts are the union of what it holds, newest bytes winning.
   */
  private async storeSlice(f: FileState, i: number, dc: DirtyChunk, plan: Extract<UploadPlan, { kind: 'slice' }>): Promise<ChunkRef> {
    const spans: [number, number][] = []
    for (const s of plan.merge) for (const [off, n] of s.parts) spans.push([off, off + n])
    for (const e of dc.extents) if (e.off < dc.len) spans.push([e.off, Math.min(e.off + e.len, dc.len)])
    spans.sort((a, b) => a[0] - b[0])
    const parts: SlicePart[] = []
    let size = 0
    for (const [a, b] of spans) {
      const last = parts[parts.length - 1]
      if (last && a <= last[0] + last[1]) {
        const grown = Math.max(last[1], b - last[0])
        size += grown - last[1]
        last[1] = grown
      } else {
        parts.push([a, b - a, size])
        size += b - a
      }
    }
    const plain = Buffer.alloc(size)
    const at = (off: number) => {
      const p = parts.find(([o, n]) => off >= o && off < o + n)!
      return p[2] + off - p[0]
    }
    // Oldest first, so that newer bytes are laid down last.
    for (const s of plan.merge) {
      const bytes = await Promise.all(s.parts.map(([, n, pos]) => this.cache.range(f.fileId, i, sliceBlob(s), pos, pos + n)))
      s.parts.forEach(([off], k) => bytes[k]!.copy(plain, at(off)))
    }
    for (const e of dc.extents) if (e.off < dc.len) e.buf.copy(plain, at(e.off), 0, Math.min(e.len, dc.len - e.off))
    const blob = await this.seal(f, i, plain, true)
    this.cache.put(blob, plain)
    const slice: Slice = { id: blob.id, salt: blob.salt!, blob: plain.length, parts }
    if (blob.at !== undefined) slice.at = blob.at
    return { len: dc.len, base: plan.base && plan.base.len > dc.len ? (cutRef(plan.base, dc.len) as BlobRef) : plan.base, slices: [...plan.keep, slice] }
  }

  /**
   * Seals plaintext of chunk `i` under a fresh salt and stores it: in a pack when small enough (and
   * allowed), else alone, sealed inside an upload slot so sealed copies stay bounded by the slots.
   */
  private async seal(f: FileState, i: number, plain: Buffer, mayPack: boolean): Promise<BlobRef> {
    const salt = randomBuffer(CHUNK_SALT_BYTES)
    const hex = salt.toString('hex')
    if (mayPack && plain.length <= PACK_PIECE_MAX) {
      const { id, at } = await this.packer.add(sealChunk(this.contentsKey, f.fileId, i, plain, salt))
      return { id, len: plain.length, at, salt: hex }
    }
    const id = await this.uploadSlots.run(async () => {
      const sealed = sealChunk(this.contentsKey, f.fileId, i, plain, salt)
      const blob = await blobId(sealed)
      await this.store.put(blob, sealed)
      return blob
    })
    return { id, len: plain.length, salt: hex }
  }

  private async readPiece(f: FileState, i: number, from: number, to: number, out: Buffer, sequential: boolean): Promise<void> {
    await f.uploads.get(i)
    const dc = f.dirty.get(i)
    const under = dc ? dc.under : f.ref(i)
    const have = dc ? dc.len : (under?.len ?? 0)
    const dataEnd = Math.min(to, have)
    const underEnd = Math.min(dataEnd, under?.len ?? 0)
    let filled = 0
    if (under && underEnd > from && !(dc && FileData.covers(dc, from, underEnd))) {
      filled = sequential
        ? (await this.cache.chunk(f.fileId, i, under)).copyTo(out, 0, from, underEnd)
        : (await this.cache.range(f.fileId, i, under, from, underEnd)).copy(out, 0)
    }
    out.fill(0, filled, to - from)
    if (dataEnd <= from) return
    // Written bytes over what was stored (taken after any fetch: the newest writes win).
    for (const e of dc?.extents ?? []) {
      const a = Math.max(from, e.off)
      const b = Math.min(dataEnd, e.off + e.len)
      if (a < b) e.buf.copy(out, a - from, a - e.off, b - e.off)
    }
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
