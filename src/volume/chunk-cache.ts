// Decrypted chunks in memory, bounded in bytes. Concurrent reads of one chunk share one fetch
// (lru-cache's fetch). Sequential readers load whole chunks; random readers load only the 64 KiB
// AEAD blocks they touch, through an HTTP Range request. Inline chunks (small files, kept in the
// metadata) are already in memory and are served as they are. A sliced chunk (a base under newer
// slices) is put together from its pieces, each fetched and cached like a chunk of its own. Below
// the memory, an optional disk cache keeps the sealed bytes fetched (disk-cache.ts).
import { LRUCache } from 'lru-cache'
import { BLOCK_SIZE, blobId, blockSpan, openBlocks, openChunk, sealedLength } from '../crypto'
import { BlobRef, ChunkRef, SlicedRef, chunkKey, isBlobRef, isInlineRef, sliceBlob } from './chunk-refs'
import { ChunkText } from './chunk-text'
import { type DiskCache, diskCacheKey } from './disk-cache'
import type { ByteRange, VolumeStore } from './store'

interface FetchContext {
  fileId: Buffer
  index: number
  ref: BlobRef | SlicedRef
  block?: number
}

/** Cache key of a whole chunk is its chunkKey (blob id, and place in a pack); of one block, `key/block`. */
const blockKey = (ref: BlobRef, block: number) => `${chunkKey(ref)}/${block}`
/** A sliced chunk put together: named by all its pieces (a new slice makes a new key). */
const slicedKey = (ref: SlicedRef) => `${ref.len}:${ref.base ? chunkKey(ref.base) : '-'}+${ref.slices.map((s) => (s.at === undefined ? s.id : `${s.id}@${s.at}`)).join('+')}`
/** Refs are never changed in place, so a sliced ref's key (up to 256 slices long) is built once. */
const slicedKeys = new WeakMap<SlicedRef, string>()
const keyOf = (ref: BlobRef | SlicedRef): string => {
  if (isBlobRef(ref)) return chunkKey(ref)
  let key = slicedKeys.get(ref)
  if (key === undefined) slicedKeys.set(ref, (key = slicedKey(ref)))
  return key
}
const saltOf = (ref: BlobRef) => (ref.salt === undefined ? undefined : Buffer.from(ref.salt, 'hex'))

/** Bytes [start, end) of a chunk into `out` at 0, from consecutive cached blocks whose first starts at plaintext offset `offset`. */
function copyBlocks(blocks: ChunkText[], offset: number, start: number, end: number, out: Buffer): void {
  blocks.forEach((b, k) => {
    const at = offset + k * BLOCK_SIZE
    b.copyTo(out, Math.max(0, at - start), Math.max(0, start - at), end - at)
  })
}

export class ChunkCache {
  private readonly lru: LRUCache<string, ChunkText, FetchContext>
  /** Keys of whole chunks being fetched (lru-cache's `has` does not count a fetch in flight). */
  private readonly loadingWhole = new Set<string>()
  /**
   * Blocks being loaded, shared by concurrent readers. Not lru-cache's fetch: that makes an
   * AbortController per call, a tenth of a random read's CPU (profiled).
   */
  private readonly loadingBlocks = new Map<string, Promise<ChunkText>>()

  constructor(private readonly store: VolumeStore, private readonly key: Buffer, maxBytes: number, readonly disk: DiskCache | null = null) {
    this.lru = new LRUCache<string, ChunkText, FetchContext>({
      maxSize: Math.max(maxBytes, 1),
      sizeCalculation: (v) => Math.max(v.length, 1),
      fetchMethod: (key, _stale, { context }) => {
        this.loadingWhole.add(key)
        return this.load(context).finally(() => this.loadingWhole.delete(key))
      },
      // A fetch in flight is evicted when the cache fills around it; its reader still wants the bytes.
      ignoreFetchAbort: true,
    })
  }

  /** Reads served from memory, and reads that had to ask the servers (for metrics). */
  hits = 0
  misses = 0

  get bytes(): number {
    return this.lru.calculatedSize
  }

  /** The whole plaintext of a chunk (ref.len bytes). */
  async chunk(fileId: Buffer, index: number, ref: ChunkRef): Promise<ChunkText> {
    if (isInlineRef(ref)) return ChunkText.of(ref.inline)
    const key = keyOf(ref)
    this.count(this.lru.has(key))
    const v = await this.lru.fetch(key, { context: { fileId, index, ref } })
    return v!
  }

  /**
   * Copies plaintext bytes [start, end) of a chunk into `out` if they are in memory now (the chunk
   * whole, or every block of the range); returns whether it did. No promise, no wait: most reads of
   * a stream land in a chunk already here.
   */
  copyNow(ref: ChunkRef, start: number, end: number, out: Buffer): boolean {
    if (isInlineRef(ref)) {
      ref.inline.copy(out, 0, start, end)
      return true
    }
    const whole = this.lru.get(keyOf(ref))
    if (whole) {
      this.hits++
      whole.copyTo(out, 0, start, end)
      return true
    }
    if (!isBlobRef(ref)) return false
    const span = blockSpan(start, end, ref.blob ?? ref.len)
    const blocks: ChunkText[] = []
    for (let block = span.firstBlock; block <= span.lastBlock; block++) {
      const cached = this.lru.get(blockKey(ref, block))
      if (!cached) return false
      blocks.push(cached)
    }
    this.hits++
    copyBlocks(blocks, span.firstBlock * BLOCK_SIZE, start, end, out)
    return true
  }

  /** Plaintext bytes [start, end) of a chunk, fetching only the blocks needed unless the chunk is cached. */
  async range(fileId: Buffer, index: number, ref: ChunkRef, start: number, end: number): Promise<Buffer> {
    if (isInlineRef(ref)) return ref.inline.subarray(start, end)
    const whole = this.lru.get(keyOf(ref))
    if (whole) {
      this.hits++
      return whole.slice(start, end)
    }
    // The whole chunk is on its way (read-ahead, or a sequential reader): wait for it rather than
    // fetch some of its blocks a second time (the kernel's parallel read-ahead arrives out of order).
    if (this.loadingWhole.has(keyOf(ref))) return (await this.chunk(fileId, index, ref)).slice(start, end)
    if (!isBlobRef(ref)) return this.slicedRange(fileId, index, ref, start, end)
    const span = blockSpan(start, end, ref.blob ?? ref.len)
    // Cached blocks are taken with get: a fetch costs an AbortController and a promise even for a
    // hit, and a random read of a cached block is mostly that.
    const found: (ChunkText | Promise<ChunkText>)[] = []
    let fetching = false
    for (let block = span.firstBlock; block <= span.lastBlock; block++) {
      const key = blockKey(ref, block)
      const cached = this.lru.get(key)
      if (cached) found.push(cached)
      else {
        fetching = true
        found.push(this.loadBlock(key, { fileId, index, ref, block }))
      }
    }
    this.count(!fetching)
    const blocks = fetching ? await Promise.all(found) : (found as ChunkText[])
    const offset = span.firstBlock * BLOCK_SIZE
    if (blocks.length === 1) return blocks[0]!.slice(start - offset, end - offset)
    const out = Buffer.allocUnsafe(end - start)
    copyBlocks(blocks, offset, start, end, out)
    return out
  }

  private loadBlock(key: string, ctx: FetchContext): Promise<ChunkText> {
    let loading = this.loadingBlocks.get(key)
    if (!loading) {
      loading = this.load(ctx)
        .then((plain) => {
          this.lru.set(key, plain)
          return plain
        })
        .finally(() => this.loadingBlocks.delete(key))
      this.loadingBlocks.set(key, loading)
    }
    return loading
  }

  private count(hit: boolean): void {
    if (hit) this.hits++
    else this.misses++
  }

  /**
   * Bytes [start, end) of a sliced chunk without putting it all together: the base's blocks in the
   * range, then each slice's parts that overlap it, oldest first (newer bytes win).
   */
  private async slicedRange(fileId: Buffer, index: number, ref: SlicedRef, start: number, end: number): Promise<Buffer> {
    const out = Buffer.alloc(end - start)
    const baseEnd = Math.min(end, ref.base?.len ?? 0)
    const pieces: Promise<{ at: number; bytes: Buffer }>[] = []
    if (ref.base && baseEnd > start) pieces.push(this.range(fileId, index, ref.base, start, baseEnd).then((bytes) => ({ at: 0, bytes })))
    for (const s of ref.slices) {
      const blob = sliceBlob(s)
      for (const [off, n, pos] of s.parts) {
        const a = Math.max(start, off)
        const b = Math.min(end, off + n, ref.len)
        if (a < b) pieces.push(this.range(fileId, index, blob, pos + a - off, pos + b - off).then((bytes) => ({ at: a - start, bytes })))
      }
    }
    // Fetched in parallel, laid down in order: oldest first, so newer bytes land last.
    for (const p of await Promise.all(pieces)) p.bytes.copy(out, p.at)
    return out
  }

  /** A sliced chunk put together from its pieces (each cached on its own). */
  private async assemble(fileId: Buffer, index: number, ref: SlicedRef): Promise<ChunkText> {
    const out = Buffer.alloc(ref.len)
    const [base, ...slices] = await Promise.all([
      ref.base && ref.base.len > 0 ? this.chunk(fileId, index, ref.base) : Promise.resolve(null),
      ...ref.slices.map((s) => this.chunk(fileId, index, sliceBlob(s))),
    ])
    base?.copyTo(out, 0, 0, Math.min(ref.len, ref.base!.len))
    ref.slices.forEach((s, k) => {
      for (const [off, n, pos] of s.parts) if (off < ref.len) slices[k]!.copyTo(out, off, pos, pos + Math.min(n, ref.len - off))
    })
    return ChunkText.of(out)
  }

  /** Starts loading a chunk in the background (read-ahead); errors surface on the real read. */
  prefetch(fileId: Buffer, index: number, ref: ChunkRef): void {
    if (isInlineRef(ref) || this.lru.has(keyOf(ref))) return
    this.lru.fetch(keyOf(ref), { context: { fileId, index, ref } }).catch(() => undefined)
  }

  /** Seeds the cache with a chunk just written (its plaintext is known). */
  put(ref: BlobRef, plain: Buffer): void {
    this.lru.set(chunkKey(ref), ChunkText.of(plain))
  }

  /**
   * A chunk's sealed bytes, opened. A salted sealing is read as a byte range and checked by its
   * AEAD alone: the salt in its ref is bound into every block, so no other sealing (an older
   * version, another file's chunk) opens under it, and hashing the blob would add nothing (see
   * docs/crypto.md). An unsalted chunk alone in its blob (formats 1 and 2) is fetched whole and
   * checked against its blob id too. A chunk in a pack, or some of a chunk's blocks, is a range.
   */
  private async load(ctx: FetchContext): Promise<ChunkText> {
    const { fileId, index } = ctx
    if (!isBlobRef(ctx.ref)) return this.assemble(fileId, index, ctx.ref)
    const ref = ctx.ref
    const blobLen = ref.blob ?? ref.len
    const at = ref.at ?? 0
    const salt = saltOf(ref)
    // Where the whole chunk's sealed bytes are in its blob: a disk cache entry of them serves block reads too.
    const whole = ref.at === undefined && salt === undefined ? null : { start: at, end: at + sealedLength(blobLen) }
    if (ctx.block === undefined) return this.sealed(ref.id, whole, (bytes) => ChunkText.blocks(openChunk(this.key, fileId, index, bytes, salt)))
    const span = blockSpan(ctx.block * BLOCK_SIZE, Math.min((ctx.block + 1) * BLOCK_SIZE, blobLen), blobLen)
    const range = { start: at + span.sealedStart, end: at + span.sealedEnd }
    return this.sealed(ref.id, range, (bytes) => ChunkText.blocks(openBlocks(this.key, fileId, index, blobLen, ctx.block!, bytes, salt)), whole)
  }

  /**
   * Sealed bytes of blob `id` (the whole blob, hash-checked, or `range` of it) from the disk cache
   * if it has them, or has the chunk they lie in (`within`: a range, or null for the whole blob),
   * and they pass the same checks as a server's; else from the servers (and then kept on the disk).
   * Returns what `open` makes of them (it throws on bad bytes).
   */
  private async sealed(id: string, range: ByteRange | null, open: (sealed: Buffer) => ChunkText, within?: ByteRange | null): Promise<ChunkText> {
    const diskKey = (r: ByteRange | null) => diskCacheKey(id, r)
    const key = diskKey(range)
    const disk = this.disk
    if (disk) {
      // The whole chunk it lies in is there: read that entry's part of it (one file kept open per
      // chunk, where entries of single blocks would each be a file of their own to open).
      const outer = range && within !== undefined && disk.has(diskKey(within)) ? diskKey(within) : null
      const from = outer ?? key
      const bytes = await disk.read(from, outer && range ? { offset: range.start - (within?.start ?? 0), length: range.end - range.start } : undefined)
      if (bytes) {
        try {
          if (!range && (await blobId(bytes)) !== id) throw new Error('not the blob')
          return open(bytes) // a buffer of its own: `bytes` are free once it returns
        } catch {
          disk.drop(from)
        } finally {
          disk.recycle(bytes)
        }
      }
    }
    // A range's bytes are lent only while they are opened (getRange): the disk cache copies them then.
    const keep = (bytes: Buffer): ChunkText => {
      const plain = open(bytes)
      disk?.write(key, bytes)
      return plain
    }
    return range ? this.store.getRange(id, range, keep) : keep(await this.store.get(id))
  }
}
