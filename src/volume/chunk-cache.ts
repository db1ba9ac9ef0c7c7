// Decrypted chunks in memory, bounded in bytes. Concurrent reads of one chunk share one fetch
// (lru-cache's fetch). Sequential readers load whole chunks; random readers load only the 64 KiB
// AEAD blocks they touch, through an HTTP Range request. Inline chunks (small files, kept in the
// metadata) are already in memory and are served as they are.
import { LRUCache } from 'lru-cache'
import { BLOCK_SIZE, blockSpan, openBlocks, openChunk, sealedLength } from '../crypto'
import { BlobRef, ChunkRef, chunkKey, isBlobRef } from './namespace'
import { VolumeStore } from './store'

interface FetchContext {
  fileId: Buffer
  index: number
  ref: BlobRef
  block?: number
}

/** Cache key of a whole chunk is its chunkKey (blob id, and place in a pack); of one block, `key/block`. */
const blockKey = (ref: BlobRef, block: number) => `${chunkKey(ref)}/${block}`

export class ChunkCache {
  private readonly lru: LRUCache<string, Buffer, FetchContext>

  constructor(private readonly store: VolumeStore, private readonly key: Buffer, maxBytes: number) {
    this.lru = new LRUCache<string, Buffer, FetchContext>({
      maxSize: Math.max(maxBytes, 1),
      sizeCalculation: (v) => Math.max(v.length, 1),
      fetchMethod: (_k, _stale, { context }) => this.load(context),
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
  async chunk(fileId: Buffer, index: number, ref: ChunkRef): Promise<Buffer> {
    if (!isBlobRef(ref)) return ref.inline
    this.count(this.lru.has(chunkKey(ref)))
    const v = await this.lru.fetch(chunkKey(ref), { context: { fileId, index, ref } })
    return v!
  }

  /** Plaintext bytes [start, end) of a chunk, fetching only the blocks needed unless the chunk is cached. */
  async range(fileId: Buffer, index: number, ref: ChunkRef, start: number, end: number): Promise<Buffer> {
    if (!isBlobRef(ref)) return ref.inline.subarray(start, end)
    const whole = this.lru.get(chunkKey(ref))
    if (whole) {
      this.hits++
      return whole.subarray(start, end)
    }
    const span = blockSpan(start, end, ref.blob ?? ref.len)
    this.count(Array.from({ length: span.lastBlock - span.firstBlock + 1 }, (_, k) => span.firstBlock + k).every((b) => this.lru.has(blockKey(ref, b))))
    const blocks = await Promise.all(
      Array.from({ length: span.lastBlock - span.firstBlock + 1 }, (_, k) => {
        const block = span.firstBlock + k
        return this.lru.fetch(blockKey(ref, block), { context: { fileId, index, ref, block } }) as Promise<Buffer>
      }),
    )
    const joined = blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks)
    const offset = span.firstBlock * BLOCK_SIZE
    return joined.subarray(start - offset, end - offset)
  }

  private count(hit: boolean): void {
    if (hit) this.hits++
    else this.misses++
  }

  /** Starts loading a chunk in the background (read-ahead); errors surface on the real read. */
  prefetch(fileId: Buffer, index: number, ref: ChunkRef): void {
    if (!isBlobRef(ref) || this.lru.has(chunkKey(ref))) return
    this.lru.fetch(chunkKey(ref), { context: { fileId, index, ref } }).catch(() => undefined)
  }

  /** Seeds the cache with a chunk just written (its plaintext is known). */
  put(ref: BlobRef, plain: Buffer): void {
    this.lru.set(chunkKey(ref), plain)
  }

  /**
   * A chunk alone in its blob is fetched whole and checked against the blob id; a chunk in a pack
   * is a Range read of its sealed bytes, checked by its AEAD (bound to the file and the index).
   */
  private async load(ctx: FetchContext): Promise<Buffer> {
    const { fileId, index, ref } = ctx
    const blobLen = ref.blob ?? ref.len
    const at = ref.at ?? 0
    if (ctx.block === undefined) {
      if (ref.at === undefined) return openChunk(this.key, fileId, index, await this.store.get(ref.id))
      return this.store.getRange(ref.id, { start: at, end: at + sealedLength(blobLen) }, (bytes) => openChunk(this.key, fileId, index, bytes))
    }
    const span = blockSpan(ctx.block * BLOCK_SIZE, Math.min((ctx.block + 1) * BLOCK_SIZE, blobLen), blobLen)
    return this.store.getRange(ref.id, { start: at + span.sealedStart, end: at + span.sealedEnd }, (bytes) =>
      openBlocks(this.key, fileId, index, blobLen, ctx.block!, bytes),
    )
  }
}
